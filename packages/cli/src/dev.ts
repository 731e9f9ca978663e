/**
 * `tessera dev`: an embedded cluster for development — a coordinator and N signer processes, each
 * with its own LevelDB and KEK under the data dir, a dev PKI for mTLS, and `client.json` so the
 * other commands need no flags. A supervisor restarts a crashed child; SIGINT/SIGTERM stop all.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { EncKem, ParticipantIdentity, toHex } from '@tessera/core';
import { createDevPki } from '@tessera/runtime';
import { initSignerIdentity } from '@tessera/signer';

const bin = (pkg: string) => fileURLToPath(new URL('./main.js', import.meta.resolve(pkg)));

export interface DevOptions {
  dir: string;
  signers: number;
  port: number;
  gatewayPort?: number;
  /** Extra signer policy (e.g. `devices: {maxReservations}` for benchmarks). */
  signerPolicy?: Record<string, unknown>;
  onLine?: (s: string) => void;
}

interface Child {
  name: string;
  args: string[];
  proc?: ChildProcess;
  restarts: number;
  info?: Record<string, unknown>;
}

function kekFile(dir: string, name: string): string {
  const f = join(dir, 'keks', `${name}.kek`);
  if (!existsSync(f)) writeFileSync(f, randomBytes(32).toString('hex'), { mode: 0o600 });
  return f;
}

/** An identity kept in `<dir>/<file>` (mode 0600), created on first start: the dev requester, the dev operator. */
function identityFile(dir: string, file: string, id: string): ParticipantIdentity {
  const f = join(dir, file);
  if (existsSync(f)) {
    const j = JSON.parse(readFileSync(f, 'utf8')) as { id: string; signSecret: string; encSecret: string };
    return ParticipantIdentity.fromSecrets(j.id, Buffer.from(j.signSecret, 'hex'), Buffer.from(j.encSecret, 'hex'));
  }
  // A requester or an operator only signs (nothing is ever sealed to it): an X25519 key keeps the
  // file the format it always had.
  const identity = ParticipantIdentity.generate(id, undefined, EncKem.X25519);
  const s = identity.exportSecrets();
  writeFileSync(
    f,
    JSON.stringify(
      {
        id: identity.id,
        signSecret: toHex(s.signSecret),
        encSecret: toHex(s.encSecret),
        publicKey: toHex(identity.public.signKey),
      },
      null,
      2,
    ),
    { mode: 0o600 },
  );
  return identity;
}

/** Starts the dev cluster; resolves when every process is up, with a stop function. */
export async function startDev(
  opts: DevOptions,
): Promise<{ stop(): Promise<void>; children: Child[]; clientFile: string }> {
  const dir = resolve(opts.dir);
  const say = opts.onLine ?? (() => {});
  mkdirSync(join(dir, 'keks'), { recursive: true, mode: 0o700 });
  const ids = Array.from({ length: opts.signers }, (_, i) => `signer-${i + 1}`);
  say(`creating dev certificates in ${join(dir, 'pki')}`);
  const pki = await createDevPki(join(dir, 'pki'), ['coordinator', 'client', ...ids]);
  const req = identityFile(dir, 'requester.json', 'dev-client');
  const coordCfg = join(dir, 'coordinator.json');
  // Only the dev signers may link as participants (the client certificate cannot join a DKG).
  // Devices (phones, browsers) reach the coordinator through its HTTP device gateway on loopback.
  const coordinatorConfig = (port: number, gatewayPort: number) =>
    JSON.stringify(
      {
        dataDir: join(dir, 'coordinator'),
        port,
        kekFile: kekFile(dir, 'coordinator'),
        tls: pki.certs.coordinator,
        participants: ids,
        gateway: { host: '127.0.0.1', port: gatewayPort },
      },
      null,
      2,
    );
  writeFileSync(coordCfg, coordinatorConfig(opts.port, opts.gatewayPort ?? 7480));
  const children: Child[] = [
    { name: 'coordinator', args: [bin('@tessera/coordinator'), '--config', coordCfg], restarts: 0 },
  ];
  let stopping = false;
  /** Starts a child; resolves on its ready line, rejects if it exits before. A crash later is restarted. */
  const launch = (c: Child): Promise<void> =>
    new Promise<void>((ready, fail) => {
      let isReady = false;
      // TESSERA_CPU_PROF=<dir>: every process writes a V8 CPU profile there when it stops (bench/README.md).
      const prof = process.env.TESSERA_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.TESSERA_CPU_PROF}`] : [];
      const p = spawn(process.execPath, [...prof, ...c.args], {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, TESSERA_LOG_LEVEL: process.env.TESSERA_LOG_LEVEL ?? 'warn' },
      });
      c.proc = p;
      createInterface({ input: p.stdout! }).once('line', (l) => {
        try {
          c.info = JSON.parse(l) as Record<string, unknown>;
        } catch {
          // not a ready line
        }
        isReady = true;
        ready();
      });
      p.once('exit', (code, signal) => {
        if (stopping) return;
        if (!isReady) return fail(new Error(`${c.name} exited before it was ready (${signal ?? code})`));
        say(`${c.name} exited (${signal ?? code}); restarting`);
        restart(c);
      });
    });
  /** Restarts a crashed child with backoff; a restart that dies before it is ready is retried too. */
  const restart = (c: Child): void => {
    c.restarts++;
    if (c.restarts > 20) {
      say(`${c.name} keeps crashing; not restarting it again`);
      return;
    }
    setTimeout(
      () => {
        if (stopping) return;
        launch(c).catch((e: Error) => {
          say(`${c.name} failed to restart: ${e.message}`);
          restart(c);
        });
      },
      Math.min(5000, 200 * c.restarts),
    );
  };
  // Pinned like production: every signer knows its peers' identity keys and the dev operator's
  // key, so a coordinator cannot slip a participant into a key or reshare without approval.
  const operator = identityFile(dir, 'operator.json', 'dev-operator');
  const cfgOf = (id: string) => join(dir, `${id}.json`);
  const writeSignerConfig = (id: string, address: string, peers: { id: string; publicKey: string; encKey: string }[]) =>
    writeFileSync(
      cfgOf(id),
      JSON.stringify(
        {
          id,
          dataDir: join(dir, id),
          coordinator: address,
          kekFile: kekFile(dir, id),
          tls: pki.certs[id],
          policy: {
            allowKeygen: true,
            requesters: [{ id: req.id, publicKey: toHex(req.public.signKey), keys: ['*'] }],
            peers: peers.filter((p) => p.id !== id),
            operators: { keys: [toHex(operator.public.signKey)], approvals: 1 },
            ...(opts.signerPolicy ?? {}),
          },
        },
        null,
        2,
      ),
    );
  /** Each signer's identity, created in its store on the first run (in this process: no signer runs yet). */
  const readIdentities = async () => {
    for (const id of ids) writeSignerConfig(id, `localhost:${opts.port}`, []);
    const peers: { id: string; publicKey: string; encKey: string }[] = [];
    for (const id of ids) {
      const p = await initSignerIdentity(cfgOf(id));
      peers.push({ id: p.id, publicKey: p.signKey, encKey: p.encKey });
    }
    return peers;
  };
  const coordinator = children[0] as Child;
  // The identities are read while the coordinator process starts.
  const [, peers] = await Promise.all([launch(coordinator), readIdentities()]);
  const port = Number(coordinator.info?.port ?? opts.port);
  const deviceUrl = String(coordinator.info?.gatewayUrl ?? '');
  const gatewayPort = Number(new URL(deviceUrl || 'http://127.0.0.1:7480').port);
  // Keep the chosen ports across supervisor restarts so signers and devices find the coordinator again.
  writeFileSync(coordCfg, coordinatorConfig(port, gatewayPort));
  const address = `localhost:${port}`;
  say(`coordinator listening on ${address} (pid ${coordinator.proc?.pid}); device gateway ${deviceUrl}`);
  for (const id of ids) {
    writeSignerConfig(id, address, peers);
    children.push({ name: id, args: [bin('@tessera/signer'), '--config', cfgOf(id)], restarts: 0 });
  }
  const s = req.exportSecrets();
  const clientFile = join(dir, 'client.json');
  writeFileSync(
    clientFile,
    JSON.stringify(
      {
        coordinator: address,
        deviceUrl,
        tls: pki.certs.client,
        requester: { id: req.id, signSecret: toHex(s.signSecret), encSecret: toHex(s.encSecret) },
        operator: 'operator.json',
      },
      null,
      2,
    ),
    { mode: 0o600 },
  );
  await Promise.all(children.slice(1).map(launch));
  say(`${ids.length} signers started: ${ids.join(', ')}`);
  return {
    children,
    clientFile,
    async stop() {
      stopping = true;
      await Promise.all(
        children.map(
          (c) =>
            new Promise<void>((r) => {
              if (!c.proc || c.proc.exitCode !== null || c.proc.signalCode !== null) return r();
              c.proc.once('exit', () => r());
              c.proc.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}

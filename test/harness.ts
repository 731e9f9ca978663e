/**
 * A real cluster for tests: a coordinator process and N signer processes (each its own LevelDB
 * and KEK) on loopback, mTLS with a dev PKI, started from the compiled daemons in dist/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ParticipantIdentity, createSignIntent, decodeMessage, getSuite, toHex, type SuiteId } from '@tessera/core';
import { channelCredentials, createDevPki, type grpc, loadTessera, unary, type TlsFiles } from '@tessera/runtime';
import { operators } from './authority.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const COORDINATOR_BIN = join(ROOT, 'packages/coordinator/dist/main.js');
export const SIGNER_BIN = join(ROOT, 'packages/signer/dist/main.js');

export interface Proc {
  child: ChildProcess;
  ready: Promise<Record<string, unknown>>;
  stderr: string[];
}

/** Every daemon a test started; killed when the test process exits, whatever happened. */
const started = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of started) if (c.exitCode === null) c.kill('SIGKILL');
});

export function startProcess(bin: string, config: string, env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, [bin, '--config', config], {
    env: { ...process.env, TESSERA_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(child);
  child.once('exit', () => started.delete(child));
  const stderr: string[] = [];
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (line) => {
      try {
        resolve(JSON.parse(line) as Record<string, unknown>);
      } catch (e) {
        reject(e);
      }
    });
    child.once('exit', (code) => reject(new Error(`${bin} exited with ${code}: ${stderr.join('')}`)));
  });
  return { child, ready, stderr };
}

export interface TestCluster {
  dir: string;
  address: string;
  requester: ParticipantIdentity;
  signers: Map<string, Proc>;
  coordinator: Proc;
  client: grpc.Client;
  tls: Record<string, TlsFiles>;
  call<Res = Record<string, unknown>>(method: string, req: unknown, deadlineMs?: number): Promise<Res>;
  startSigner(id: string): Promise<void>;
  killSigner(id: string, signal?: NodeJS.Signals): Promise<void>;
  restartCoordinator(): Promise<void>;
  waitConnected(ids: string[], connected?: boolean): Promise<void>;
  keygen(
    suite: SuiteId,
    threshold: number,
    participants?: string[],
  ): Promise<{ keyId: string; publicKey: Buffer; participants: string[] }>;
  sign(
    suite: SuiteId,
    keyId: string,
    message: Uint8Array,
    opts?: { signers?: string[]; requestId?: Uint8Array },
  ): Promise<{ signature: Buffer; signers: string[]; publicKey: Buffer }>;
  stop(): Promise<void>;
}

export async function startCluster(n: number): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-cluster-'));
  const ids = Array.from({ length: n }, (_, i) => `signer-${i + 1}`);
  const pki = await createDevPki(join(dir, 'pki'), ['coordinator', 'client', ...ids]);
  const requester = ParticipantIdentity.generate('test-client');
  const kekFile = (name: string) => {
    const f = join(dir, `${name}.kek`);
    writeFileSync(f, randomBytes(32).toString('hex'), { mode: 0o600 });
    return f;
  };
  const coordCfg = join(dir, 'coordinator.json');
  writeFileSync(
    coordCfg,
    JSON.stringify({
      dataDir: join(dir, 'coordinator'),
      port: 0,
      kekFile: kekFile('coordinator'),
      tls: pki.certs.coordinator,
      taskTimeoutMs: 4000,
    }),
  );
  let coordinator = startProcess(COORDINATOR_BIN, coordCfg);
  const port = (await coordinator.ready).port as number;
  // Restarts keep the port so signers reconnect to the same address.
  writeFileSync(
    coordCfg,
    JSON.stringify({
      dataDir: join(dir, 'coordinator'),
      port,
      kekFile: join(dir, 'coordinator.kek'),
      tls: pki.certs.coordinator,
      taskTimeoutMs: 4000,
    }),
  );
  const address = `127.0.0.1:${port}`;
  const signers = new Map<string, Proc>();
  const signerCfg = (id: string) => {
    const f = join(dir, `${id}.json`);
    mkdirSync(join(dir, id), { recursive: true });
    writeFileSync(
      f,
      JSON.stringify({
        id,
        dataDir: join(dir, id, 'data'),
        coordinator: address,
        kekFile: join(dir, `${id}.kek`),
        tls: pki.certs[id],
        // Fixture: rosters unpinned (dev escape); lifecycle approved by the test operator.
        policy: {
          allowKeygen: true,
          allowUnpinnedPeers: true,
          operators,
          requesters: [{ id: 'test-client', publicKey: toHex(requester.public.signKey), keys: ['*'] }],
        },
      }),
    );
    return f;
  };
  for (const id of ids) kekFile(id);
  const { Coordinator } = loadTessera();
  const client = new Coordinator(address, channelCredentials(pki.certs.client));
  const call = <Res>(method: string, req: unknown, deadlineMs = 20_000) =>
    unary<unknown, Res>(client, method, req, { deadlineMs });
  const intents = new Map<string, Uint8Array>();
  const cluster: TestCluster = {
    dir,
    address,
    requester,
    signers,
    get coordinator() {
      return coordinator;
    },
    client,
    tls: pki.certs,
    call,
    async startSigner(id) {
      const p = startProcess(SIGNER_BIN, signerCfg(id));
      signers.set(id, p);
      await p.ready;
    },
    async killSigner(id, signal = 'SIGKILL') {
      const p = signers.get(id);
      if (!p) return;
      const exited = new Promise((r) => p.child.once('exit', r));
      p.child.kill(signal);
      await exited;
      signers.delete(id);
    },
    async restartCoordinator() {
      const exited = new Promise((r) => coordinator.child.once('exit', r));
      coordinator.child.kill('SIGKILL');
      await exited;
      coordinator = startProcess(COORDINATOR_BIN, coordCfg);
      await coordinator.ready;
    },
    async waitConnected(want, connected = true) {
      const deadline = Date.now() + 20_000;
      for (;;) {
        try {
          const s = await call<{ participants: { id: string; connected: boolean }[] }>('Status', {}, 2000);
          const ok = want.every((id) => (s.participants.find((p) => p.id === id)?.connected ?? false) === connected);
          if (ok) return;
        } catch {
          // coordinator still starting
        }
        if (Date.now() > deadline)
          throw new Error(`participants ${want.join(',')} not ${connected ? 'connected' : 'disconnected'} in time`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async keygen(suite, threshold, participants = []) {
      // An ECDSA key's pairwise setup is seconds of CPU per signer (more on a loaded machine).
      const deadline = getSuite(suite).scheme === 'ecdsa' ? 90_000 : 20_000;
      return call('Keygen', { suite: getSuite(suite).wireId, threshold, participants }, deadline);
    },
    async sign(suite, keyId, message, opts = {}) {
      // A retry (same request id) resends the very same signed intent, as a real client does.
      const rid = opts.requestId ?? new Uint8Array(randomBytes(16));
      const cacheKey = `${keyId}/${toHex(rid)}`;
      const intentBytes =
        intents.get(cacheKey) ??
        createSignIntent(requester, {
          suite: getSuite(suite),
          keyId,
          message,
          requestId: rid,
          notAfter: Date.now() + 60_000,
        });
      intents.set(cacheKey, intentBytes);
      return call('Sign', { intent: decodeMessage('Envelope', intentBytes), signers: opts.signers ?? [] });
    },
    async stop() {
      client.close();
      for (const id of [...signers.keys()]) await cluster.killSigner(id, 'SIGTERM');
      const exited = new Promise((r) => coordinator.child.once('exit', r));
      coordinator.child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(ids.map((id) => cluster.startSigner(id)));
    await cluster.waitConnected(ids);
  } catch (e) {
    // A half-started cluster must not leave daemons behind.
    await cluster.stop().catch(() => {});
    throw e;
  }
  return cluster;
}

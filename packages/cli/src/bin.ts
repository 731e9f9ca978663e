#!/usr/bin/env node
/**
 * The `tessera` command. Errors are one line on stderr (with `--json`, `{"error":{"code",
 * "message","culprits"}}`) and an exit code: 2 for a usage error (unknown option, missing or
 * malformed argument), 1 for anything else (see README, "Exit codes").
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Argument, Command, CommanderError, Option } from 'commander';
import { int, list } from './args.js';
import { SUITE_IDS, fromHex, getSuite, utf8ToBytes, type SuiteId } from '@tessera/core';
import { printDemo, runDemo } from './demo.js';
import { openClient, resolveDir, type Client } from './client.js';
import { auditVerify, derive, keygen, keys, lifecycle, packages, sign, status } from './commands.js';
import { createDevPki } from '@tessera/runtime';
import { startDev } from './dev.js';
import { serveWallet, type WalletServer } from './wallet-server.js';
import { serveConsole, type ConsoleServer } from './console-server.js';
import { registerDeviceCommands } from './device.js';
import { registerKekCommands } from './kek.js';
import {
  approve,
  authorisationFor,
  createOperator,
  devOperatorFiles,
  prepare,
  readRequest,
  writeRequest,
} from './operators.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;
const program = new Command('tessera')
  .description('Tessera threshold-signing cluster')
  .version(VERSION, '-V, --version', 'print the version')
  .exitOverride()
  .configureOutput({ outputError: () => {} });

function out(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write((json ? JSON.stringify(value) : human()) + '\n');
}

async function withClient<T>(dir: string | undefined, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = openClient(dir);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

program
  .command('demo')
  .description('run DKG, sign and verify in one process (no cluster)')
  .addOption(new Option('--suite <suite>').choices([...SUITE_IDS]).default('ed25519'))
  .option('--json', 'JSON output')
  .action((o: { suite: SuiteId; json?: boolean }) => {
    const r = runDemo(o.suite);
    if (o.json) out(true, r, () => '');
    else printDemo(r);
    if (!r.verified) process.exitCode = 1;
  });

program
  .command('keygen')
  .description('create a key by DKG among signer nodes')
  .addOption(new Option('--suite <suite>').choices([...SUITE_IDS]).default('ed25519'))
  .requiredOption('--threshold <t>', 'signers needed', int)
  .option('--participants <ids>', 'comma-separated participant ids (default: all connected)', list)
  .option('--dir <dir>', 'cluster directory')
  .option('--json', 'JSON output')
  .action(async (o: { suite: string; threshold: number; participants?: string[]; dir?: string; json?: boolean }) => {
    if (process.stderr.isTTY && !o.json) process.stderr.write('running DKG…\n');
    const k = await withClient(o.dir, (c) => keygen(c, o));
    out(
      !!o.json,
      k,
      () =>
        `key ${k.keyId}  ${k.suite} ${k.threshold}-of-${k.participants.length} (${k.participants.join(', ')})\npublic key ${k.publicKey}`,
    );
  });

program
  .command('sign')
  .description('sign a message with a key')
  .requiredOption('--key <id>', 'key id')
  .option('--message <hex>', 'message as hex')
  .option('--message-file <file>', 'message as raw bytes from a file')
  .option('--signers <ids>', 'preferred signers, comma-separated', list)
  .option('--path <path>', 'sign with the HD child key at this path (m/0/5)')
  .option('--dir <dir>', 'cluster directory')
  .option('--json', 'JSON output')
  .action(
    async (o: {
      key: string;
      message?: string;
      messageFile?: string;
      signers?: string[];
      path?: string;
      dir?: string;
      json?: boolean;
    }) => {
      const r = await withClient(o.dir, (c) => sign(c, o));
      out(
        !!o.json,
        r,
        () =>
          `signature ${r.signature}\nsigned by ${r.signers.join(', ')} for key ${r.keyId}${o.path ? ` at ${o.path} (${r.publicKey})` : ''}`,
      );
    },
  );

const approveOpts = (cmd: Command) =>
  cmd
    .option(
      '--approve-with <files>',
      'operator key files that approve it (default in a dev cluster: its operator)',
      list,
    )
    .option('--authorisation <file>', 'an authorisation request approved with `tessera approve`');

approveOpts(
  program
    .command('refresh')
    .description(
      'proactive refresh: every share changes, the public key does not (new epoch); offline participants catch up when they link',
    )
    .requiredOption('--key <id>', 'key id')
    .option('--dir <dir>', 'cluster directory')
    .option('--json', 'JSON output'),
).action(async (o: { key: string; approveWith?: string[]; authorisation?: string; dir?: string; json?: boolean }) => {
  const r = await withClient(o.dir, async (c) =>
    lifecycle(c, 'Refresh', {
      keyId: o.key,
      authorisation: await authorisationFor(c, { keyId: o.key, operation: 'refresh' }, o),
    }),
  );
  out(
    !!o.json,
    { keyId: r.keyId, epoch: r.epoch, publicKey: r.publicKey },
    () => `key ${r.keyId} refreshed: epoch ${r.epoch}, public key unchanged ${r.publicKey}`,
  );
});

approveOpts(
  program
    .command('reshare')
    .description('move a key to a new threshold and/or set of participants; the public key does not change')
    .requiredOption('--key <id>', 'key id')
    .requiredOption('--threshold <t>', 'new threshold', int)
    .requiredOption('--participants <ids>', 'new participants (linked), comma-separated', list)
    .option('--allow-threshold-decrease', 'the operators allow a threshold below the current one')
    .option(
      '--allow-unpinned <ids>',
      'new participants the signers have not pinned, vouched for by the operators',
      list,
    )
    .option('--dir <dir>', 'cluster directory')
    .option('--json', 'JSON output'),
).action(
  async (o: {
    key: string;
    threshold: number;
    participants: string[];
    allowThresholdDecrease?: boolean;
    allowUnpinned?: string[];
    approveWith?: string[];
    authorisation?: string;
    dir?: string;
    json?: boolean;
  }) => {
    const r = await withClient(o.dir, async (c) => {
      const authorisation = await authorisationFor(
        c,
        {
          keyId: o.key,
          operation: 'reshare',
          threshold: o.threshold,
          participants: o.participants,
          allowThresholdDecrease: !!o.allowThresholdDecrease,
          allowUnpinned: o.allowUnpinned ?? [],
        },
        o,
      );
      return lifecycle(c, 'Reshare', {
        keyId: o.key,
        threshold: o.threshold,
        participants: o.participants,
        revoke: [],
        authorisation,
      });
    });
    out(
      !!o.json,
      r,
      () =>
        `key ${r.keyId} reshared: epoch ${r.epoch}, ${r.threshold}-of-${r.participants.length} (${r.participants.join(', ')}), public key unchanged ${r.publicKey}`,
    );
  },
);

program
  .command('authorise')
  .description(
    'write the authorisation request for a refresh or reshare, for operators to check and approve (`tessera approve`)',
  )
  .addArgument(new Argument('<operation>').choices(['refresh', 'reshare', 'revoke']))
  .requiredOption('--key <id>', 'key id ("*" with --any-epoch: every key, for scheduled refreshes)')
  .requiredOption('--out <file>', 'request file to write')
  .option('--threshold <t>', 'reshare: new threshold', int)
  .option('--participants <ids>', 'reshare: new participants', list)
  .option('--revoke <ids>', 'devices the operation revokes', list)
  .option('--ttl <seconds>', 'valid for (default 3600)', int)
  .option('--allow-threshold-decrease', 'allow a threshold below the current one')
  .option('--allow-unpinned <ids>', 'new participants the signers have not pinned', list)
  .option('--any-epoch', 'refresh: a standing authorisation for scheduled refreshes')
  .option('--approve-with <files>', 'operator key files approving it now', list)
  .option('--dir <dir>', 'cluster directory')
  .option('--json', 'JSON output')
  .action(
    async (
      operation: 'refresh' | 'reshare' | 'revoke',
      o: {
        key: string;
        out: string;
        threshold?: number;
        participants?: string[];
        revoke?: string[];
        ttl?: number;
        allowThresholdDecrease?: boolean;
        allowUnpinned?: string[];
        anyEpoch?: boolean;
        approveWith?: string[];
        dir?: string;
        json?: boolean;
      },
    ) => {
      const r = await withClient(o.dir, async (c) => {
        const req = await prepare(c, {
          keyId: o.key,
          operation,
          ...(o.threshold !== undefined ? { threshold: o.threshold } : {}),
          participants: o.participants ?? [],
          revoke: o.revoke ?? [],
          ttlMs: (o.ttl ?? 3600) * 1000,
          allowThresholdDecrease: !!o.allowThresholdDecrease,
          allowUnpinned: o.allowUnpinned ?? [],
          anyEpoch: !!o.anyEpoch,
        });
        return o.approveWith?.length ? approve(req, o.approveWith) : req;
      });
      writeRequest(o.out, r);
      out(
        !!o.json,
        { file: o.out, approvals: r.approvals.length, ...r.summary },
        () => `wrote ${o.out} (${r.approvals.length} approval(s)):\n${JSON.stringify(r.summary, null, 2)}`,
      );
    },
  );

program
  .command('approve')
  .description('approve an authorisation request with an operator key (check its summary first)')
  .argument('<file>', 'request file (from `tessera authorise`)')
  .option('--approve-with <files>', 'operator key files (default in a dev cluster: its operator)', list)
  .option('--out <file>', 'write here instead of updating the file')
  .option('--dir <dir>', 'cluster directory')
  .option('--json', 'JSON output')
  .action((file: string, o: { approveWith?: string[]; out?: string; dir?: string; json?: boolean }) => {
    const r = approve(readRequest(file), o.approveWith?.length ? o.approveWith : devOperatorFiles(o.dir));
    writeRequest(o.out ?? file, r);
    out(
      !!o.json,
      { file: o.out ?? file, approvals: r.approvals.length, ...r.summary },
      () =>
        `approved (${r.approvals.length} approval(s) now) in ${o.out ?? file}:\n${JSON.stringify(r.summary, null, 2)}`,
    );
  });

program
  .command('operator')
  .description('operator keys that approve refresh, reshare and device replacement')
  .command('keygen')
  .description("create an operator key file (pin its public key in every signer's policy.operators.keys)")
  .requiredOption('--out <file>', 'operator key file to create (mode 0600)')
  .option('--id <name>', 'operator name', 'operator')
  .option('--dir <dir>', 'ignored (accepted like every command)')
  .option('--json', 'JSON output')
  .action((o: { out: string; id: string; json?: boolean }) => {
    const r = createOperator(o.out, o.id);
    out(!!o.json, r, () => `operator ${r.id}: ${r.file}\npublic key ${r.publicKey}`);
  });

program
  .command('derive')
  .description(
    "an HD child key (non-hardened, public derivation) and its address, derived locally from the key's public record",
  )
  .requiredOption('--key <id>', 'key id')
  .requiredOption('--path <path>', 'derivation path, e.g. m/0/5')
  .option('--testnet', 'Bitcoin testnet address (tb1p…)')
  .option('--dir <dir>', 'cluster directory')
  .option('--json', 'JSON output')
  .action(async (o: { key: string; path: string; testnet?: boolean; dir?: string; json?: boolean }) => {
    const r = await withClient(o.dir, (c) =>
      derive(c, { key: o.key, path: o.path, network: o.testnet ? 'testnet' : 'mainnet' }),
    );
    out(!!o.json, r, () => `${r.path}  ${r.publicKey}\naddress ${r.address}`);
  });

program
  .command('keys')
  .description('list keys')
  .option('--dir <dir>', 'cluster directory')
  .option('--json', 'JSON output')
  .action(async (o: { dir?: string; json?: boolean }) => {
    const ks = await withClient(o.dir, keys);
    out(
      !!o.json,
      ks,
      () =>
        ks
          .map((k) => `${k.keyId}  ${k.suite.padEnd(12)} ${k.threshold}-of-${k.participants.length}  ${k.publicKey}`)
          .join('\n') || '(no keys)',
    );
  });

program
  .command('status')
  .description('cluster health')
  .option('--dir <dir>', 'cluster directory')
  .option('--json', 'JSON output')
  .action(async (o: { dir?: string; json?: boolean }) => {
    const s = await withClient(o.dir, status);
    out(!!o.json, s, () =>
      [
        `coordinator ${s.coordinator.address} pid ${s.coordinator.pid} keys ${s.coordinator.keys} metrics ${s.coordinator.metrics}`,
        ...s.signers.map(
          (x) =>
            `  ${x.id.padEnd(12)} ${x.healthy ? 'healthy' : 'DOWN   '} keys ${x.keys} pool ${x.pooledCommitments} ${x.metrics}`,
        ),
        ...(s.offline
          ? [
              `offline payments: ${s.offline.completed} completed, ${s.offline.refused} refused, ${s.offline.pendingOnDevices} waiting on devices; success ${
                Object.entries(s.offline.successRate)
                  .map(([c, r]) => `${c} ${(r * 100).toFixed(1)}%`)
                  .join(', ') || '—'
              }; allowance used ${(s.offline.allowanceUtilisation * 100).toFixed(1)}%; reuse attempts ${s.offline.compromiseIndicators.reservationReuse}, culprits ${s.offline.compromiseIndicators.culprits}`,
            ]
          : []),
      ].join('\n'),
    );
  });

program
  .command('packages')
  .description('offline packages as the cluster decided them (completed, refused with why), newest first')
  .option('--device <id>', 'one device only')
  .addOption(new Option('--state <state>', 'one state only').choices(['completed', 'refused']))
  .option('--limit <n>', 'at most this many (1-1000)', int, 100)
  .option('--dir <dir>', 'cluster directory')
  .option('--json', 'JSON output')
  .action(async (o: { device?: string; state?: string; limit: number; dir?: string; json?: boolean }) => {
    const r = await withClient(o.dir, (c) =>
      packages(c, {
        ...(o.device ? { device: o.device } : {}),
        ...(o.state ? { state: o.state } : {}),
        limit: o.limit,
      }),
    );
    out(!!o.json, r, () =>
      [
        ...r.packages.map(
          (p) =>
            `${p.at}  ${p.state.padEnd(9)} ${p.packageId}  ${p.device}  key ${p.keyId}${p.code ? `  ${p.code}` : ''}`,
        ),
        ...(r.truncated ? ['… more: raise --limit'] : []),
        ...(r.packages.length ? [] : ['no offline packages yet']),
      ].join('\n'),
    );
  });

const audit = program.command('audit').description('audit logs');
audit
  .command('verify')
  .description('verify the hash-chained audit log of the coordinator and every signer')
  .option('--dir <dir>', 'cluster directory')
  .option('--json', 'JSON output')
  .action(async (o: { dir?: string; json?: boolean }) => {
    const r = await withClient(o.dir, auditVerify);
    out(!!o.json, r, () =>
      r.processes
        .map(
          (p) =>
            `${p.id.padEnd(12)} ${p.ok ? `OK      ${p.count} entries, head ${p.head.slice(0, 16)}…` : `FAILED  ${p.reason} at entry ${p.problemSeq}`}`,
        )
        .join('\n'),
    );
    if (!r.ok) process.exitCode = 1;
  });

registerDeviceCommands(program, out, withClient);
registerKekCommands(program, out);

program
  .command('certs')
  .description('create a dev certificate authority and certificates (ECDSA P-256) for mTLS')
  .requiredOption('--out <dir>', 'output directory')
  .requiredOption('--names <names>', 'certificate names (CN), comma-separated', list)
  .option('--hosts <hosts>', 'extra DNS names or IPs for the certificates', list)
  .option('--force', 'reissue existing certificates')
  .option('--json', 'JSON output')
  .action(async (o: { out: string; names: string[]; hosts?: string[]; force?: boolean; json?: boolean }) => {
    const r = await createDevPki(o.out, o.names, {
      ...(o.hosts ? { hosts: o.hosts } : {}),
      ...(o.force ? { force: true } : {}),
    });
    out(!!o.json, r, () =>
      [`CA ${r.ca}`, ...Object.entries(r.certs).map(([n, f]) => `${n.padEnd(12)} ${f.cert}`)].join('\n'),
    );
  });

program
  .command('console')
  .description('serve the operator console for this cluster (loopback by default; the printed link logs in)')
  .option('--dir <dir>', 'cluster directory')
  .option(
    '--host <host>',
    'address to listen on (anything but loopback exposes the console to the network)',
    '127.0.0.1',
  )
  .option('--port <port>', 'HTTP port', int, 7491)
  .option(
    '--approve-with <files>',
    'operator key files approving admissions, revocations, refreshes (default in a dev cluster: its operator)',
    list,
  )
  .option('--apps-dir <dir>', 'the built web apps (default: apps/dist)')
  .option('--json', 'JSON output')
  .action(
    async (o: {
      dir?: string;
      host: string;
      port: number;
      approveWith?: string[];
      appsDir?: string;
      json?: boolean;
    }) => {
      const client = openClient(o.dir);
      const server = await serveConsole({
        client,
        host: o.host,
        port: o.port,
        ...(o.approveWith ? { approveWith: o.approveWith } : {}),
        ...(o.appsDir ? { dir: join(o.appsDir, 'console') } : {}),
      });
      out(
        !!o.json,
        { url: server.url, login: server.loginUrl },
        () => `operator console: ${server.loginUrl}   (Ctrl-C stops)`,
      );
      const stop = async () => {
        await server.close();
        client.close();
        process.exit(0);
      };
      process.on('SIGINT', () => void stop());
      process.on('SIGTERM', () => void stop());
    },
  );

program
  .command('dev')
  .description('run an embedded dev cluster (coordinator + signer processes) and keep serving')
  .option('--dir <dir>', 'data directory', '.tessera')
  .option('--signers <n>', 'signer processes', int, 3)
  .option('--port <port>', 'coordinator port', int, 7400)
  .option('--gateway-port <port>', 'device gateway port (HTTP, loopback)', int, 7480)
  .option('--no-prove', 'skip the keygen/sign/verify proof')
  .option('--wallet-port <port>', 'browser wallet port (HTTP, loopback)', int, 7490)
  .option('--no-wallet', 'do not serve the browser wallet')
  .option('--console-port <port>', 'operator console port (HTTP, loopback)', int, 7491)
  .option('--no-console', 'do not serve the operator console')
  .option('--apps-dir <dir>', 'the built web apps (default: apps/dist, built by npm start)')
  .option('--json', 'JSON lines output')
  .action(
    async (o: {
      dir: string;
      signers: number;
      port: number;
      gatewayPort: number;
      walletPort: number;
      wallet: boolean;
      consolePort: number;
      console: boolean;
      appsDir?: string;
      prove: boolean;
      json?: boolean;
    }) => {
      const say = (s: string) =>
        process.stdout.write((o.json ? JSON.stringify({ event: s }) : `tessera dev: ${s}`) + '\n');
      const dev = await startDev({
        dir: o.dir,
        signers: o.signers,
        port: o.port,
        gatewayPort: o.gatewayPort,
        onLine: say,
      });
      let wallet: WalletServer | undefined;
      let operatorConsole: { server: ConsoleServer; client: Client } | undefined;
      let stopping = false;
      const stop = async () => {
        if (stopping) return;
        stopping = true;
        say('stopping');
        await wallet?.close();
        await operatorConsole?.server.close();
        operatorConsole?.client.close();
        await dev.stop();
        process.exit(0);
      };
      process.on('SIGINT', () => void stop());
      process.on('SIGTERM', () => void stop());
      const dir = resolveDir(o.dir);
      const c = openClient(dir);
      try {
        for (let i = 0; i < 100; i++) {
          const s = await status(c).catch(() => undefined);
          if (s && s.signers.filter((x) => x.healthy).length >= o.signers) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        if (o.prove) {
          const t = Math.min(2, o.signers);
          const k = await keygen(c, { suite: 'ed25519', threshold: t });
          say(`proof: DKG ${t}-of-${k.participants.length} → key ${k.keyId}, public key ${k.publicKey}`);
          const msg = utf8ToBytes('tessera dev cluster is alive');
          const r = await sign(c, { key: k.keyId, message: Buffer.from(msg).toString('hex') });
          const ok = getSuite('ed25519').verify(fromHex(r.signature), msg, fromHex(k.publicKey));
          say(`proof: signed by ${r.signers.join(' + ')}; signature ${ok ? 'verifies (RFC 8032)' : 'DOES NOT VERIFY'}`);
          if (!ok) process.exitCode = 1;
        }
      } finally {
        c.close();
      }
      if (o.wallet) {
        const gateway = String((JSON.parse(readFileSync(dev.clientFile, 'utf8')) as { deviceUrl?: string }).deviceUrl);
        try {
          wallet = await serveWallet({
            gateway,
            port: o.walletPort,
            ...(o.appsDir ? { dir: join(o.appsDir, 'wallet') } : {}),
          });
          say(
            `browser wallet: ${wallet.url}   (enrol it with a token from the operator console or: npx tessera device token --dir ${o.dir})`,
          );
        } catch (e) {
          say(`browser wallet not served: ${(e as Error).message}`);
        }
      }
      if (o.console) {
        const client = openClient(dir);
        try {
          const server = await serveConsole({
            client,
            port: o.consolePort,
            ...(o.appsDir ? { dir: join(o.appsDir, 'console') } : {}),
          });
          operatorConsole = { server, client };
          say(`operator console: ${server.loginUrl}   (this link logs in; loopback only)`);
        } catch (e) {
          client.close();
          say(`operator console not served: ${(e as Error).message}`);
        }
      }
      say(`serving; in another terminal: npx tessera keygen --threshold 2 --dir ${o.dir}   (Ctrl-C stops)`);
    },
  );

program.parseAsync(process.argv).catch((e: unknown) => {
  // Help and --version exit 0 through the same path.
  if (
    e instanceof CommanderError &&
    (e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version')
  )
    process.exit(0);
  const usage = e instanceof CommanderError;
  const code = usage ? 'USAGE' : ((e as { code?: string }).code ?? 'INTERNAL');
  const message = (usage ? e.message.replace(/^error: /, '') : (e as Error).message) || 'internal error';
  const culprits = [...((e as { culprits?: readonly string[] }).culprits ?? [])];
  if (process.argv.includes('--json'))
    process.stderr.write(JSON.stringify({ error: { code, message, culprits } }) + '\n');
  else
    process.stderr.write(
      `tessera: ${message}${code !== 'INTERNAL' ? ` [${code}]` : ''}${usage ? ' (see tessera --help)' : ''}\n`,
    );
  process.exit(usage ? 2 : 1);
});

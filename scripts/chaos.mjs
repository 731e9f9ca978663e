#!/usr/bin/env node
/**
 * The long crash-chaos run (`npm run chaos`): by default 1,000 sessions — online signatures in
 * all four suites and offline device packages — against a `tessera dev` cluster while the
 * coordinator, signers and the device are killed with SIGKILL (about one kill per 10 sessions,
 * and a power cut of every daemon now and then). Prints a table, writes
 * bench/results/chaos.json, exits 1 if anything was lost, completed twice or reused, or any
 * other check failed; 2 if it ran out of time.
 *
 *   npm run chaos -- [--sessions N] [--seed S] [--kill-every K] [--max-kills M]
 *                    [--concurrency C] [--minutes T] [--keep] [--verbose]
 *
 * The driver is test/chaos/chaos.ts, the same module the CI-sized vitest run uses. It is
 * compiled here with esbuild (already a dev dependency) into node_modules/.cache, with every
 * package import left external, so `@tessera/*` resolve to the built packages (dist/) — the
 * code the daemons run. `npm run chaos` builds them first (`tsc -b`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function args(argv) {
  const o = {
    sessions: 1000,
    seed: 1,
    killEvery: 10,
    maxKills: undefined,
    concurrency: 4,
    minutes: 20,
    keep: false,
    verbose: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v < 0) throw new Error(`${a} needs a number`);
      return v;
    };
    if (a === '--sessions') o.sessions = num();
    else if (a === '--seed') o.seed = num();
    else if (a === '--kill-every') o.killEvery = num();
    else if (a === '--max-kills') o.maxKills = num();
    else if (a === '--concurrency') o.concurrency = num();
    else if (a === '--minutes') o.minutes = num();
    else if (a === '--keep') o.keep = true;
    else if (a === '--verbose') o.verbose = true;
    else if (a === '--help' || a === '-h') {
      process.stdout.write(
        'npm run chaos -- [--sessions N] [--seed S] [--kill-every K] [--max-kills M] [--concurrency C] [--minutes T] [--keep] [--verbose]\n',
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

const o = args(process.argv.slice(2));
const out = join(ROOT, 'node_modules', '.cache', 'tessera-chaos', 'chaos.mjs');
mkdirSync(dirname(out), { recursive: true });
await build({
  entryPoints: [join(ROOT, 'test', 'chaos', 'chaos.ts')],
  outfile: out,
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
});
const { runChaos } = await import(pathToFileURL(out).href);
// Ctrl-C / SIGTERM: exit through process.exit, so the driver's exit hook kills every process it started.
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(130));

// The work phase is bounded by --minutes; settling and checking get 5 minutes more, then we stop.
const limitMs = o.minutes * 60_000;
const watchdog = setTimeout(() => {
  process.stderr.write(
    `chaos: still running after ${o.minutes + 5} minutes; giving up (the exit hook kills every process it started)\n`,
  );
  process.exit(2);
}, limitMs + 300_000);
watchdog.unref();

const t0 = Date.now();
const stamp = () => `${String(Math.round((Date.now() - t0) / 1000)).padStart(5)} s`;
process.stdout.write(
  `chaos: ${o.sessions} sessions, seed ${o.seed}, a kill about every ${o.killEvery} sessions, work phase bounded at ${o.minutes} min\n`,
);
let r;
try {
  r = await runChaos({
    sessions: o.sessions,
    seed: o.seed,
    killEvery: o.killEvery,
    ...(o.maxKills !== undefined ? { maxKills: o.maxKills } : {}),
    concurrency: o.concurrency,
    durationLimitMs: limitMs,
    keepDir: o.keep,
    // The compiled driver lives in node_modules/.cache: name the device process's script.
    deviceWorker: join(ROOT, 'test', 'chaos', 'device-worker.mjs'),
    log: (l) => {
      if (o.verbose || /^(setup|work phase|PROBLEM|power cut|kept|API channel)/.test(l))
        process.stdout.write(`${stamp()}  ${l}\n`);
    },
  });
} catch (e) {
  process.stderr.write(`chaos: the run could not complete: ${e?.stack ?? e}\n`);
  process.exit(1);
}

const rows = [
  ['sessions', r.sessions],
  [
    '  online (acknowledged / run)',
    `${r.online.acknowledged} / ${r.online.sessions}  ${Object.entries(r.online.bySuite)
      .map(([s, n]) => `${s} ${n}`)
      .join(', ')}`,
  ],
  [
    '  offline packages (completed / signed)',
    `${r.offline.completed} / ${r.offline.sessions}  ${Object.entries(r.offline.bySuite)
      .map(([s, n]) => `${s} ${n}`)
      .join(', ')}`,
  ],
  ['  unfinished at the time bound', r.online.unfinished + r.offline.unfinished],
  ['processes killed (SIGKILL)', r.kills.total],
  ['  coordinator', r.kills.coordinator],
  ['  signer', r.kills.signer],
  [
    '  device',
    `${r.kills.device}  (during: ${Object.entries(r.kills.deviceDuring)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')})`,
  ],
  ['  power cuts (every daemon at once)', r.kills.powerCuts],
  ['retries (online / device calls)', `${r.retries.online} / ${r.retries.device}`],
  ['device signs found queued after a crash', r.offline.adoptedAfterCrash],
  ['API channel replaced (two deadlines in a row)', r.channelResets],
  ['nonces consumed (online / reservations)', `${r.ledgers.onlineNoncesConsumed} / ${r.ledgers.reservationsConsumed}`],
  [
    'audit entries verified',
    Object.entries(r.ledgers.auditEntries)
      .map(([p, n]) => `${p} ${n}`)
      .join(', '),
  ],
  ['lost', r.lost],
  ['completed twice', r.duplicated],
  ['nonce / reservation reused', r.reused],
  ['other problems', r.problems.length],
  [
    'duration',
    `${(r.durationMs / 1000).toFixed(1)} s (setup ${(r.phases.setupMs / 1000).toFixed(1)}, work ${(r.phases.workMs / 1000).toFixed(1)}, settle ${(r.phases.settleMs / 1000).toFixed(1)}, verify ${(r.phases.verifyMs / 1000).toFixed(1)})`,
  ],
];
const w = Math.max(...rows.map(([k]) => k.length));
process.stdout.write(`\n${rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n')}\n`);
if (r.problems.length) process.stdout.write(`\nproblems:\n${r.problems.map((p) => `  - ${p}`).join('\n')}\n`);
process.stdout.write(
  `\nerrors the clients saw (and retried): ${JSON.stringify(r.errorsSeen)}\n${Object.entries(r.errorSamples)
    .map(([k, m]) => `  ${k}: ${m}`)
    .join('\n')}\n`,
);

const file = join(ROOT, 'bench', 'results', 'chaos.json');
mkdirSync(dirname(file), { recursive: true });
writeFileSync(
  file,
  JSON.stringify({ at: new Date().toISOString(), node: process.version, args: o, ...r }, null, 2) + '\n',
);
process.stdout.write(`wrote ${file}\n`);
clearTimeout(watchdog);
process.exit(r.lost > 0 || r.reused > 0 || r.duplicated > 0 || r.problems.length > 0 ? 1 : 0);

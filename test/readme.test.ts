/**
 * The README as a new user follows it: from a fresh clone, its commands work, in order, as written.
 *
 * The commands are read from README.md's ```sh blocks here (so a README edit that breaks one fails
 * this test) — from the working tree, so a README edit is checked before it is committed; the code
 * they run is the committed HEAD:
 *
 * - The clone: `git clone` of this repository (HEAD, committed files only: no dist/, no .tessera/).
 *   `npm ci` is NOT run in it (too slow for the suite's budget): the checkout's node_modules is copied
 *   in as hard links (`cp -al`; a plain `cp -a` when the temp dir is on another filesystem). Its
 *   workspace links (node_modules/@tessera/*, node_modules/.bin/*) are relative symlinks, so they
 *   point into the clone. What a first `npm ci` itself must do (link bins before dist/ exists) is
 *   test/first-run.test.ts's.
 *   What `npm ci` leaves besides node_modules is its `prepare` script's build (`tsc -b`): the
 *   checkout's build output (`packages/<name>/dist` and its `.tsbuildinfo`) is copied in with its
 *   times, so the clone's `tsc -b` checks every source against it and rebuilds what differs (a
 *   from-scratch build of a fresh clone is what CI's own `npm ci` and `npm test` do).
 * - `npm ci && npm start` (twice in the README): the test runs `npm start` in the clone as a child
 *   process in its own process group. It builds (`tsc -b`, then the web apps) and starts
 *   `tessera dev`; the test waits for its `tessera dev: serving` line, after the proof
 *   line `… signature verifies (RFC 8032)`. One difference from the README: `-- --port 0
 *   --gateway-port 0 --wallet-port 0 --console-port 0` is appended, because `tessera dev` listens
 *   on fixed ports by default (7400 for gRPC, 7480 for the device gateway, 7490 for the browser
 *   wallet, 7491 for the operator console; there is no environment variable for them) and this
 *   test runs beside others and beside anyone's own `npm start`. The data dir is the clone's own `.tessera/`.
 * - `npm test`, `npm run format`, `npx vitest run …`, `npm run proto` (the top block and
 *   "Development") are not run: the first is the suite this test is part of, the others are
 *   developer tools (a part of the suite, rewriting the tree, regenerating code). For each, the npm
 *   script it names must exist in the clone's package.json. Any other line this test does not know
 *   fails it (so no README command is silently left out).
 * - Every `npx tessera …` line runs as written, with `bash -eo pipefail`, in the clone's directory:
 *   `npx` finds the clone's `tessera`, which finds the dev cluster through the nearest `.tessera/`
 *   (TESSERA_DIR is removed from the environment). Placeholders are substituted first:
 *     `<keyId>` in a `tessera device …` line → the keyId printed by `tessera device keygen … --json`
 *               (the phone's key: `device reserve/sign`, and `device replace`, which needs a key the
 *               old phone holds);
 *     `<keyId>` in any other line → the keyId printed by `tessera keygen … --json` (the Quick start's
 *               secp256k1-tr key: `sign`, then `refresh`, `reshare`, `derive`, `sign --path`);
 *     `<ecdsaKeyId>` → the keyId printed by `tessera keygen --suite ecdsa-secp256k1 … --json`;
 *     `<hex>`   → MSG below, a 32-byte message (a sighash);
 *     any other `<…>` fails the test.
 *   `$TOKEN` is not substituted: a `NAME=$(…)` line runs as written and its value is passed to the
 *   later lines in their environment, as the reader's shell does. A line ending in `&` (left
 *   running, as in another terminal) is started in its own process group; the test waits for its
 *   first line of output, as the reader waits for it to say so, and stops it at the end.
 * - Each line must exit 0 and leave no process behind, and its output is checked: signatures verify
 *   with noble (and OpenSSL, libsodium, libsecp256k1 where they apply) under the key the cluster
 *   printed, and not under another; `submit` gives the signature `device sync` got; refresh and
 *   reshare keep the public key (reshare to threshold 3); `device replace` leaves phone-2, not
 *   phone-1, in the key; the derived Taproot address pays to the child key that `sign --path` signs
 *   with. Then every audit chain verifies, and SIGTERM to `npm start`'s process group stops every
 *   process of the cluster.
 *
 * Bounded: the whole file has a budget of BUDGET_MS (it takes about 50 s on 2 cores: ~10 s to clone,
 * build and prove, ~1.5 s per `npx tessera` line), each command at most a minute of it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { ripemd160 } from '@noble/hashes/legacy.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { createBase58check } from '@scure/base';
import { Address, NETWORK } from '@scure/btc-signer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { externalVerifiers } from './verifiers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const BUDGET_MS = 230_000;
const COMMAND_MS = 60_000;
const MSG = 'a5'.repeat(32);
const SIGNERS = ['signer-1', 'signer-2', 'signer-3'];

// ---- the README's commands ----

interface Line {
  /** 1-based line number in README.md. */
  at: number;
  text: string;
}

function shLines(readme: string): Line[] {
  const lines = readme.split('\n');
  const out: Line[] = [];
  let inSh = false;
  lines.forEach((l, i) => {
    if (!inSh && l.trim() === '```sh') inSh = true;
    else if (inSh && l.trim() === '```') inSh = false;
    else if (inSh && l.trim()) out.push({ at: i + 1, text: l.trim() });
  });
  return out;
}

/** The programs a line runs (first word of each simple command), ignoring assignments and the comment. */
function programs(text: string): string[] {
  return text
    .replace(/(^|\s)#.*$/, '')
    .split(/&&|\|\||[|;&]|\$\(|\)/)
    .map((s) => s.trim().replace(/^([A-Za-z_]\w*=\S*\s*)+/, ''))
    .map((s) => s.split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

/** Lines that are not run, why, and the npm scripts they name (which must exist). */
const NOT_RUN: [RegExp, string][] = [
  [/^npm ci && npm test\b/, 'the whole suite, which this test is part of'],
  [/^npm test\b/, 'the whole suite, which this test is part of'],
  [/^npm run format\b/, 'rewrites the tree (the check is `npm test`’s `biome check`)'],
  [/^npx vitest run\b/, 'a part of the suite'],
  [/^npm run proto\b/, 'regenerates generated code after a proto/ edit'],
  [/^npm run monitoring\b/, 'regenerates the PrometheusRule after a rules edit (its --check runs in test/monitoring)'],
];

type Plan =
  | { kind: 'comment' }
  | { kind: 'start' }
  | { kind: 'not-run'; why: string; scripts: string[] }
  | { kind: 'tessera'; sub: string; assign?: string; background: boolean }
  | { kind: 'unknown' };

function plan(text: string): Plan {
  if (text.startsWith('#')) return { kind: 'comment' };
  if (/^npm ci && npm start(\s|$)/.test(text)) return { kind: 'start' };
  for (const [re, why] of NOT_RUN)
    if (re.test(text)) {
      const scripts = [...text.replace(/(^|\s)#.*$/, '').matchAll(/\bnpm (?:run )?([\w:-]+)/g)]
        .map((m) => m[1]!)
        .filter((s) => s !== 'ci' && s !== 'run');
      return { kind: 'not-run', why, scripts };
    }
  const m = /^(?:([A-Za-z_]\w*)=\$\()?npx tessera ((?:device |audit |operator )?[a-z-]+)/.exec(text);
  if (m)
    return {
      kind: 'tessera',
      sub: m[2]!,
      ...(m[1] ? { assign: m[1] } : {}),
      background: /[^&]&\s*$/.test(text.replace(/(^|\s)#.*$/, '')),
    };
  return { kind: 'unknown' };
}

const README = shLines(readFileSync(join(root, 'README.md'), 'utf8'));

// ---- processes ----

let work = '';
let clone = '';
let deadline = 0;
const env: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'INIT_CWD' && k !== 'TESSERA_DIR'),
);
env.npm_config_update_notifier = 'false';
env.npm_config_fund = 'false';

/** Process groups this file started (group id = leader pid); SIGKILLed if the test process exits first. */
const groups = new Set<number>();
process.once('exit', () => {
  for (const g of groups) killGroup(g, 'SIGKILL');
});

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/** Live (not zombie) members of a process group, from /proc; zombies wait for a reaper, not for us. */
function members(pgid: number): number[] {
  if (!existsSync('/proc/self/stat')) {
    try {
      process.kill(-pgid, 0);
      return [pgid];
    } catch {
      return [];
    }
  }
  const live: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${d}/stat`, 'utf8');
    } catch {
      continue;
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // state ppid pgrp …
    if (Number(f[2]) === pgid && f[0] !== 'Z') live.push(Number(d));
  }
  return live;
}

/** Waits until the group has no live member; returns those still alive after `ms`. */
async function gone(pgid: number, ms: number): Promise<number[]> {
  const end = Date.now() + ms;
  for (;;) {
    const left = members(pgid);
    if (!left.length || Date.now() > end) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SIGTERM to the group, SIGKILL after `ms`; resolves with the pids that needed the SIGKILL. */
async function stopGroup(pgid: number, ms: number): Promise<number[]> {
  killGroup(pgid, 'SIGTERM');
  const left = await gone(pgid, ms);
  if (left.length) {
    killGroup(pgid, 'SIGKILL');
    await gone(pgid, 5000);
  }
  groups.delete(pgid);
  return left;
}

function remaining(): number {
  const ms = Math.min(COMMAND_MS, deadline - Date.now());
  if (ms <= 0) throw new Error(`over this test's budget of ${BUDGET_MS / 1000} s`);
  return ms;
}

function spawnGroup(cmd: string, args: string[]): ChildProcess {
  const p = spawn(cmd, args, { cwd: clone, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  groups.add(p.pid!);
  return p;
}

interface Result {
  code: number | null;
  out: string;
  err: string;
}

/** Runs a script with bash in the clone (its own process group); kills the group at the time limit. */
async function bash(script: string): Promise<Result & { leftovers: number[] }> {
  const ms = remaining();
  const p = spawnGroup('bash', ['-eo', 'pipefail', '-c', script]);
  let out = '';
  let err = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => killGroup(p.pid!, 'SIGKILL'), ms);
  const code = await new Promise<number | null>((r) => p.once('close', (c) => r(c)));
  clearTimeout(timer);
  if (code === null) err += `\n(killed after ${ms} ms)`;
  // A foreground command must not leave anything running.
  const leftovers = await gone(p.pid!, 2000);
  await stopGroup(p.pid!, 1000);
  return { code, out, err, leftovers };
}

interface Background {
  pgid: number;
  first: string;
}

/** Starts a long-running line (`cmd &`) in its own group; resolves with its first line of output. */
async function background(script: string): Promise<Background> {
  const ms = remaining();
  const p = spawnGroup('bash', ['-eo', 'pipefail', '-c', script]);
  let err = '';
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const first = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no output within ${ms} ms: ${err}`)), ms);
    createInterface({ input: p.stdout! }).once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    p.once('exit', (c) => {
      clearTimeout(timer);
      reject(new Error(`exited ${c} before printing anything: ${err}`));
    });
  });
  return { pgid: p.pid!, first };
}

// ---- the cluster (`npm start`) ----

let dev: ChildProcess | undefined;
const devOut: string[] = [];
let devErr = '';
const backgrounds: Background[] = [];

beforeAll(async () => {
  deadline = Date.now() + BUDGET_MS;
  work = mkdtempSync(join(tmpdir(), 'tessera-readme-'));
  clone = join(work, 'tessera');
  const git = spawnSync('git', ['clone', '--quiet', root, clone], { encoding: 'utf8', timeout: 60_000 });
  if (git.status !== 0) throw new Error(`git clone: ${git.stderr}`);
  // Hard links: instant and no extra space; a real copy only across filesystems.
  let cp = spawnSync('cp', ['-al', join(root, 'node_modules'), join(clone, 'node_modules')], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (cp.status !== 0 && /cross-device|Invalid cross/i.test(cp.stderr)) {
    rmSync(join(clone, 'node_modules'), { recursive: true, force: true });
    cp = spawnSync('cp', ['-a', join(root, 'node_modules'), join(clone, 'node_modules')], {
      encoding: 'utf8',
      timeout: 120_000,
    });
  }
  if (cp.status !== 0) throw new Error(`copying node_modules: ${cp.stderr}`);
  // A fresh clone: nothing built, no cluster. Then what `npm ci`'s prepare (`tsc -b`) leaves.
  for (const pkg of readdirSync(join(clone, 'packages'))) {
    expect(existsSync(join(clone, 'packages', pkg, 'dist'))).toBe(false);
    for (const out of ['dist', 'tsconfig.tsbuildinfo']) {
      const from = join(root, 'packages', pkg, out);
      if (!existsSync(from)) continue;
      const c = spawnSync('cp', ['-a', from, join(clone, 'packages', pkg, out)], { encoding: 'utf8', timeout: 60_000 });
      if (c.status !== 0) throw new Error(`copying ${from}: ${c.stderr}`);
    }
  }
  expect(existsSync(join(clone, '.tessera'))).toBe(false);

  const p = spawnGroup('npm', [
    'start',
    '--',
    '--port',
    '0',
    '--gateway-port',
    '0',
    '--wallet-port',
    '0',
    '--console-port',
    '0',
  ]);
  dev = p;
  p.stderr!.on('data', (d: Buffer) => {
    if (devErr.length < 100_000) devErr += d.toString();
  });
  const ms = Math.min(150_000, deadline - Date.now());
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`npm start: not serving after ${ms} ms\n${devOut.join('\n')}\n${devErr}`)),
      ms,
    );
    createInterface({ input: p.stdout! }).on('line', (l) => {
      devOut.push(l);
      if (/^tessera dev: serving/.test(l)) {
        clearTimeout(timer);
        resolve();
      }
    });
    p.once('exit', (c) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited ${c} before serving\n${devOut.join('\n')}\n${devErr}`));
    });
  });
}, 200_000);

afterAll(async () => {
  for (const b of backgrounds) await stopGroup(b.pgid, 10_000);
  if (dev?.pid && groups.has(dev.pid)) await stopGroup(dev.pid, 15_000);
  if (work) rmSync(work, { recursive: true, force: true });
}, 60_000);

// ---- what each command must print ----

interface Key {
  keyId: string;
  suite: string;
  threshold: number;
  participants: string[];
  publicKey: string;
  epoch: number;
}

const state: {
  clusterKey?: Key;
  /** The README's ECDSA key (`<ecdsaKeyId>`). */
  ecdsaKey?: Key;
  deviceKey?: Key;
  /** device dir → device id */
  devices: Record<string, string>;
  tokens: string[];
  keygens: number;
  pkg?: { packageId: string; message: string };
  synced?: { packageId: string; signature: string; message: string };
  derived?: { path: string; publicKey: string };
} = { devices: {}, tokens: [], keygens: 0 };

const bytes = (hex: string) => new Uint8Array(Buffer.from(hex, 'hex'));

/** noble's verifier for the suite: RFC 8032 Ed25519 or BIP340 Schnorr. */
function nobleVerify(suite: string): (sig: Uint8Array, msg: Uint8Array, pk: Uint8Array) => boolean {
  if (suite === 'ed25519') return (s, m, k) => ed25519.verify(s, m, k);
  if (suite === 'secp256k1-tr') return (s, m, k) => schnorr.verify(s, m, k);
  if (suite === 'ecdsa-secp256k1')
    return (s, m, k) =>
      s.length === 65 && m.length === 32 && secp256k1.verify(s.subarray(0, 64), m, k, { prehash: false, lowS: true });
  throw new Error(`no verifier here for ${suite}`);
}

/** The signature verifies under `pk` with noble and every independent verifier that applies; not for another message. */
function expectVerifies(suite: string, sigHex: string, msgHex: string, pkHex: string): void {
  const [sig, msg, pk] = [bytes(sigHex), bytes(msgHex), bytes(pkHex)];
  const noble = nobleVerify(suite);
  expect(noble(sig, msg, pk), `noble ${suite}`).toBe(true);
  expect(noble(sig, Uint8Array.from([...msg, 0]), pk), 'a longer message').toBe(false);
  for (const [name, verify] of Object.entries(externalVerifiers(suite)))
    if (suite !== 'secp256k1-tr' || msg.length === 32) expect(verify(sig, msg, pk), name).toBe(true);
}

interface Ran {
  line: string;
  opt(name: string): string | undefined;
  json: any;
  out: string;
}

const deviceId = (r: Ran) => {
  const id = state.devices[r.opt('--device-dir')!];
  if (!id) throw new Error(`no device was initialised in ${r.opt('--device-dir')}`);
  return id;
};

/** Checks per `tessera` subcommand; each must run at least once (the README keeps documenting it). */
const CHECKS: Record<string, (r: Ran) => void | Promise<void>> = {
  keygen(r) {
    const k = r.json as Key;
    expect(k).toMatchObject({
      suite: r.opt('--suite') ?? 'ed25519',
      threshold: Number(r.opt('--threshold')),
      participants: SIGNERS,
      epoch: 0,
    });
    state.keygens++;
    if (k.suite === 'ecdsa-secp256k1') {
      // The ECDSA key: a 33-byte SEC1 key, its own placeholder (the Quick start's key stays <keyId>).
      expect(k.publicKey).toMatch(/^0[23][0-9a-f]{64}$/);
      state.ecdsaKey = k;
      return;
    }
    expect(k.publicKey).toMatch(/^[0-9a-f]{64}$/);
    state.clusterKey = k;
  },
  sign(r) {
    const k = r.opt('--key') === state.ecdsaKey?.keyId ? state.ecdsaKey! : state.clusterKey!;
    const s = r.json as { keyId: string; signature: string; signers: string[]; publicKey: string; path?: string };
    expect(s.keyId).toBe(k.keyId);
    expect(new Set(s.signers).size).toBe(s.signers.length);
    expect(s.signers.length).toBeGreaterThanOrEqual(k.threshold);
    for (const x of s.signers) expect(k.participants).toContain(x);
    const path = r.opt('--path');
    if (path) {
      expect(state.derived?.path, '`derive` printed this path before').toBe(path);
      expect(s.publicKey).toBe(state.derived!.publicKey);
      expectVerifies(k.suite, s.signature, r.opt('--message')!, state.derived!.publicKey);
      expect(
        nobleVerify(k.suite)(bytes(s.signature), bytes(r.opt('--message')!), bytes(k.publicKey)),
        'under the parent key',
      ).toBe(false);
    } else {
      expect(s.publicKey).toBe(k.publicKey);
      expectVerifies(k.suite, s.signature, r.opt('--message')!, k.publicKey);
    }
  },
  keys(r) {
    const proof = /proof: DKG \d+-of-\d+ → key (\w+), public key (\w+)/.exec(devOut.join('\n'));
    expect(proof, 'npm start printed its proof key').not.toBeNull();
    const k = state.clusterKey!;
    expect(r.out).toMatch(new RegExp(`^${proof![1]}\\s+ed25519\\s+2-of-3\\s+${proof![2]}$`, 'm'));
    expect(r.out).toMatch(
      new RegExp(`^${k.keyId}\\s+${k.suite}\\s+${k.threshold}-of-${k.participants.length}\\s+${k.publicKey}$`, 'm'),
    );
  },
  status(r) {
    expect(r.out).toMatch(new RegExp(`^coordinator \\S+:\\d+ pid \\d+ keys ${1 + state.keygens} metrics http`, 'm'));
    for (const id of SIGNERS) expect(r.out).toMatch(new RegExp(`^\\s+${id}\\s+healthy keys \\d+`, 'm'));
  },
  'audit verify'(r) {
    const lines = r.out.trim().split('\n');
    expect(lines.map((l) => l.split(/\s+/)[0])).toEqual(['coordinator', ...SIGNERS]);
    for (const l of lines) expect(l).toMatch(/^\S+\s+OK\s+[1-9]\d* entries, head [0-9a-f]{16}…$/);
  },
  'device token'(r) {
    expect(r.out).toMatch(/^\S{16,}$/);
    expect(state.tokens, 'a new token each time').not.toContain(r.out);
    state.tokens.push(r.out);
  },
  'device init'(r) {
    const dir = r.opt('--device-dir')!;
    expect(r.out).toBe(`device ${r.opt('--id')} created in ${join(clone, dir)}`);
    expect(statSync(join(clone, dir, 'storage.key')).mode & 0o777).toBe(0o600);
    state.devices[dir] = r.opt('--id')!;
  },
  'device enrol'(r) {
    expect(r.out).toBe(`device ${deviceId(r)} enrolled and admitted by the dev operator`);
  },
  'device keygen'(r) {
    const k = r.json as Key;
    expect(k).toMatchObject({
      suite: r.opt('--suite') ?? 'ed25519',
      threshold: Number(r.opt('--threshold')),
      participants: [deviceId(r), ...r.opt('--with')!.split(',')].sort(),
      epoch: 0,
    });
    state.deviceKey = k;
    state.keygens++;
  },
  'device reserve'(r) {
    const n = r.opt('--count');
    expect(r.out).toBe(`reserved ${n}; offline allowance for ${state.deviceKey!.keyId}: ${n}`);
  },
  'device sign'(r) {
    expect(r.opt('--offline'), 'the README signs offline').toBeDefined();
    const p = r.json as { packageId: string; keyId: string; text: string; bytes: number; file: string };
    expect(p).toMatchObject({ keyId: state.deviceKey!.keyId, file: join(clone, r.opt('--out')!) });
    expect(p.text).toMatch(/^TSP1:/);
    expect(statSync(p.file).size).toBe(p.bytes);
    expect(p, 'offline: no signature yet').not.toHaveProperty('signature');
    state.pkg = { packageId: p.packageId, message: r.opt('--message')! };
  },
  'device sync'(r) {
    const s = r.json as {
      completed: { packageId: string; keyId: string; message: string; signature: string; signers: string[] }[];
      pending: unknown[];
      failed: unknown[];
    };
    expect(s.pending).toEqual([]);
    expect(s.failed).toEqual([]);
    expect(s.completed).toHaveLength(1);
    const c = s.completed[0]!;
    expect(c).toMatchObject({ packageId: state.pkg!.packageId, keyId: state.deviceKey!.keyId, message: MSG });
    expect(c.signers).toContain(deviceId(r));
    expectVerifies(state.deviceKey!.suite, c.signature, c.message, state.deviceKey!.publicKey);
    state.synced = c;
  },
  'device reconcile'(r) {
    const rep = r.json as {
      settled: { packageId: string; signature: string }[];
      refused: unknown[];
      needsCompensation: unknown[];
      pending: unknown[];
      discrepancies: unknown[];
      journal: { entries: number; verified: boolean };
    };
    // The payment just synced is settled with its signature; nothing owed, nothing pending.
    expect(rep.settled).toEqual([
      expect.objectContaining({ packageId: state.synced!.packageId, signature: state.synced!.signature }),
    ]);
    expect(rep.refused).toEqual([]);
    expect(rep.needsCompensation).toEqual([]);
    expect(rep.pending).toEqual([]);
    expect(rep.discrepancies).toEqual([]);
    expect(rep.journal).toMatchObject({ entries: 3, verified: true }); // reserved, signed, completed
  },
  submit(r) {
    expect(r.json).toMatchObject({
      packageId: state.synced!.packageId,
      keyId: state.deviceKey!.keyId,
      message: state.synced!.message,
      signature: state.synced!.signature,
      publicKey: state.deviceKey!.publicKey,
      alreadyCompleted: true,
    });
  },
  refresh(r) {
    const k = state.clusterKey!;
    expect(r.json).toEqual({ keyId: k.keyId, epoch: k.epoch + 1, publicKey: k.publicKey });
    k.epoch++;
  },
  reshare(r) {
    const k = state.clusterKey!;
    const x = r.json as Key;
    expect(x).toMatchObject({
      keyId: k.keyId,
      suite: k.suite,
      threshold: Number(r.opt('--threshold')),
      participants: r.opt('--participants')!.split(','),
      publicKey: k.publicKey,
      epoch: k.epoch + 1,
    });
    expect(x.threshold).toBe(3);
    state.clusterKey = x;
  },
  'device connect'(r) {
    expect(r.out).toBe(`device ${deviceId(r)} linked; waiting`);
  },
  async 'device replace'(r) {
    const [oldId, newId] = [r.opt('--old')!, r.opt('--new')!];
    const k = state.deviceKey!;
    expect(r.out.split('\n')[0]).toBe(`${oldId} replaced by ${newId} and revoked`);
    // Not a README line: the cluster's own record of the key afterwards.
    const keys = await bash('npx tessera keys --json');
    expect(keys.code, keys.err).toBe(0);
    const now = (JSON.parse(keys.out) as Key[]).find((x) => x.keyId === k.keyId)!;
    expect(now).toMatchObject({ threshold: k.threshold, publicKey: k.publicKey, epoch: k.epoch + 1 });
    expect(now.participants).toContain(newId);
    expect(now.participants).not.toContain(oldId);
  },
  derive(r) {
    if (r.opt('--key') === state.ecdsaKey?.keyId) {
      // An ECDSA child: its three addresses, each decoded independently back to the child key.
      const e = r.json as { path: string; publicKey: string; addresses: { evm: string; tron: string; p2wpkh: string } };
      expect(e.publicKey).toMatch(/^0[23][0-9a-f]{64}$/);
      expect(e.publicKey).not.toBe(state.ecdsaKey!.publicKey);
      const pk = bytes(e.publicKey);
      const account = keccak_256(secp256k1.Point.fromBytes(pk).toBytes(false).subarray(1)).subarray(12);
      expect(e.addresses.evm.toLowerCase()).toBe(`0x${Buffer.from(account).toString('hex')}`);
      expect(Buffer.from(createBase58check(sha256).decode(e.addresses.tron)).toString('hex')).toBe(
        `41${Buffer.from(account).toString('hex')}`,
      );
      const w = Address(NETWORK).decode(e.addresses.p2wpkh) as { type: string; hash: Uint8Array };
      expect(w.type).toBe('wpkh');
      expect(Buffer.from(w.hash).toString('hex')).toBe(Buffer.from(ripemd160(sha256(pk))).toString('hex'));
      state.derived = e as unknown as typeof state.derived;
      return;
    }
    const k = state.clusterKey!;
    const d = r.json as { path: string; publicKey: string; address: string };
    expect(d.path).toBe(r.opt('--path'));
    expect(d.publicKey).toMatch(/^[0-9a-f]{64}$/);
    expect(d.publicKey).not.toBe(k.publicKey);
    expect(k.suite, 'the README derives a Taproot address').toBe('secp256k1-tr');
    // An independent decoder: the address pays to the child key (BIP341 output key) itself.
    const a = Address(NETWORK).decode(d.address) as { type: string; pubkey: Uint8Array };
    expect(a.type).toBe('tr');
    expect(Buffer.from(a.pubkey).toString('hex')).toBe(d.publicKey);
    state.derived = d;
  },
};

/** `<keyId>`, `<hex>` → values from the earlier commands (see the header); anything else is an error. */
function substitute(text: string, sub: string): string {
  return text.replace(/<([A-Za-z][\w-]*)>/g, (_, name: string) => {
    if (name === 'hex') return MSG;
    if (name === 'ecdsaKeyId') {
      if (!state.ecdsaKey) throw new Error(`<ecdsaKeyId> before the ECDSA key was created (${text})`);
      return state.ecdsaKey.keyId;
    }
    if (name === 'keyId') {
      const k = sub.startsWith('device ') ? state.deviceKey : state.clusterKey;
      if (!k) throw new Error(`<keyId> before the key it stands for was created (${text})`);
      return k.keyId;
    }
    throw new Error(`unknown placeholder <${name}> in README line: ${text}`);
  });
}

function optOf(line: string) {
  return (name: string) => {
    const m = new RegExp(`(?:^|\\s)${name}(?:\\s+([^\\s#&-][^\\s&]*)|(?=\\s|$))`).exec(line);
    return m ? (m[1] ?? '') : undefined;
  };
}

// ---- the test ----

const ran = new Set<string>();
let firstFailure: string | undefined;

describe('README, from a fresh clone: its commands work in order, as written', () => {
  it('the README has sh blocks, starting with `npm ci && npm start`; they use npm and npx only ("Nothing else")', () => {
    expect(README.length).toBeGreaterThan(10);
    expect(README[0]!.text).toMatch(/^npm ci && npm start\b/);
    for (const l of README)
      expect(programs(l.text), `README.md:${l.at}: ${l.text}`).toSatisfy((ps: string[]) =>
        ps.every((p) => p === 'npm' || p === 'npx'),
      );
  });

  for (const [i, l] of README.entries()) {
    const p = plan(l.text);
    if (p.kind === 'comment') continue;
    it(`${i + 1}. README.md:${l.at}: ${l.text}`, async (ctx) => {
      if (firstFailure && p.kind === 'tessera') ctx.skip(`an earlier README command failed: ${firstFailure}`);
      try {
        if (p.kind === 'unknown') throw new Error('a README command this test does not know how to run: add it here');
        if (p.kind === 'start') {
          // Started in beforeAll: it built the clone from scratch and proved itself.
          expect(existsSync(join(clone, 'packages/cli/dist/bin.js'))).toBe(true);
          expect(existsSync(join(clone, '.tessera/client.json'))).toBe(true);
          const out = devOut.join('\n');
          expect(out).toMatch(/^tessera dev: proof: DKG 2-of-3 → key \w+/m);
          expect(out).toMatch(/^tessera dev: proof: signed by .*; signature verifies \(RFC 8032\)$/m);
          expect(out).toMatch(/^tessera dev: serving/m);
          // A person has something to open: the browser wallet, built by npm start, bound to the gateway.
          const wallet = /^tessera dev: browser wallet: (http:\/\/\S+)/m.exec(out)?.[1];
          expect(wallet, out).toBeDefined();
          const page = await fetch(wallet as string);
          expect(page.status).toBe(200);
          expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
          expect(await page.text()).toMatch(/<title>Tessera wallet<\/title>/);
          const config = (await (await fetch(new URL('/config.json', wallet))).json()) as { gateway: string };
          expect(config.gateway).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
          expect((await fetch(new URL('/wallet.js', wallet))).status).toBe(200);
          // And something to look at: the operator console, behind its login link.
          const login = /^tessera dev: operator console: (http:\/\/\S+#login=[\w-]+)/m.exec(out)?.[1];
          expect(login, out).toBeDefined();
          const [consoleUrl, secret] = (login as string).split('#login=') as [string, string];
          expect((await fetch(new URL('/api/overview', consoleUrl))).status).toBe(401);
          const overview = await fetch(new URL('/api/overview', consoleUrl), {
            headers: { authorization: `Bearer ${secret}` },
          });
          expect(overview.status).toBe(200);
          expect(((await overview.json()) as { signers: unknown[] }).signers).toHaveLength(3);
          // Built files and the cluster's data are not something git would commit.
          expect(spawnSync('git', ['status', '--porcelain'], { cwd: clone, encoding: 'utf8' }).stdout).toBe('');
          return;
        }
        if (p.kind === 'not-run') {
          const scripts = (JSON.parse(readFileSync(join(clone, 'package.json'), 'utf8')) as { scripts: object })
            .scripts;
          for (const s of p.scripts) expect(scripts, `npm script "${s}"`).toHaveProperty(s);
          ctx.annotate(`not run: ${p.why}`);
          return;
        }
        const line = substitute(l.text, p.sub);
        const check = CHECKS[p.sub];
        ran.add(p.sub);
        let r: Ran;
        if (p.background) {
          const b = await background(line.replace(/&\s*(#.*)?$/, ''));
          backgrounds.push(b);
          r = { line, opt: optOf(line), json: undefined, out: b.first };
        } else {
          const script = p.assign ? `${line}\nprintf '%s' "$${p.assign}"` : line;
          const res = await bash(script);
          expect(res.code, `exit code; stderr: ${res.err}`).toBe(0);
          expect(res.leftovers, 'processes left running').toEqual([]);
          if (p.assign) env[p.assign] = res.out;
          const out = p.assign ? res.out : res.out.replace(/\n$/, '');
          const json = !p.assign && /\s--json(\s|$)/.test(line) ? JSON.parse(out) : undefined;
          r = { line, opt: optOf(line), json, out };
        }
        if (check) await check(r);
      } catch (e) {
        firstFailure ??= `README.md:${l.at}: ${l.text}`;
        throw e;
      }
    }, 90_000);
  }

  it('every documented command was run and checked', () => {
    expect([...ran].sort()).toEqual(Object.keys(CHECKS).sort());
  });

  it('afterwards every audit chain verifies (a phone linked), and SIGTERM to `npm start` stops every process of the cluster', async () => {
    // With the phone still linked: a device keeps no audit chain and is not asked for one, so the
    // signer nodes' and the coordinator's chains are the whole report.
    const a = await bash('npx tessera audit verify --json');
    expect(a.code, `${a.err}${a.out}`).toBe(0);
    const audit = JSON.parse(a.out) as { ok: boolean; processes: { id: string; ok: boolean; count: number }[] };
    expect(audit.ok).toBe(true);
    expect(audit.processes.map((x) => x.id)).toEqual(['coordinator', ...SIGNERS]);
    for (const b of backgrounds.splice(0)) expect(await stopGroup(b.pgid, 10_000), 'background line').toEqual([]);
    const pid = dev!.pid!;
    expect(members(pid).length).toBeGreaterThanOrEqual(5); // npm, the cluster's node, coordinator, 3 signers
    expect(await stopGroup(pid, 15_000), 'still running 15 s after SIGTERM').toEqual([]);
    expect(devOut.join('\n')).toMatch(/^tessera dev: stopping$/m);
  }, 60_000);
});

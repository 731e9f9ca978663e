/**
 * The chaos driver: many signing sessions against a real `tessera dev` cluster (a coordinator
 * and signer processes, each its own LevelDB, mTLS) and a device process, while a killer
 * SIGKILLs the coordinator, a signer, the device — or every daemon at once (a power cut) — at
 * random points. Afterwards it checks, from the API and from every process's own store, that
 *
 *  1. every acknowledged online request (the Sign call returned a signature that verified) has
 *     exactly one stored result, that result is the acknowledged signature, it verifies with the
 *     plain single-party verifier, and re-submitting the same signed intent returns it again;
 *  2. every acknowledged offline package (signOffline returned it) completed exactly once: the
 *     device's queue holds it completed, the coordinator's `package/` record has the same
 *     signature, re-submitting it answers `alreadyCompleted` with that signature;
 *  3. on every signer: each consumed nonce answers one request (no request digest under two
 *     nonces), no nonce is counted for two request ids, no request id used more nonces than the
 *     bound, no nonce appears in the audit log with two digests; each consumed reservation
 *     answers exactly one completed package that names this signer and that nonce, and the
 *     number of consumed reservations equals the completed packages naming this signer;
 *  4. every audit chain verifies (the AuditVerify rpc while running, `AuditLog.verify` on every
 *     store after the stop).
 *
 * Used by test/chaos.test.ts (vitest, CI-sized) and scripts/chaos.mjs (the long run, which
 * compiles this file with esbuild and resolves `@tessera/*` to the built packages). The daemons
 * and the device always run from the packages' dist/ (build first: `tsc -b`).
 *
 * A retried request keeps its request id and its signed intent (idempotent); a device sign that
 * died with the device is looked up in the device's queue (by its message, unique per session)
 * before it is tried again, as an app would. Failures of the system under test are collected in
 * `problems` and counted in `lost` / `duplicated` / `reused`; the driver throws only when it
 * cannot run at all.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  ParticipantIdentity,
  createSignIntent,
  decodeMessage,
  decodeOfflinePackage,
  equalBytes,
  fromHex,
  getSuite,
  toHex,
  utf8ToBytes,
  type SuiteId,
} from '@tessera/core';
import { startDev } from '@tessera/cli';
import { channelCredentials, type grpc, loadTessera, unary } from '@tessera/runtime';
import { AuditLog, NonceLedger, SealedStore, loadKek, summarizeAudit } from '@tessera/store';
import { admitWithDevOperator } from '../authority.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** The device process. Next to this file in the repository; scripts/chaos.mjs passes its path when it runs a compiled copy. */
const DEFAULT_WORKER = join(HERE, 'device-worker.mjs');

export type Victim = 'coordinator' | 'signer' | 'device' | 'power';

export interface ChaosOptions {
  /** Sessions to run: online sign requests plus offline device packages. */
  sessions: number;
  seed?: number;
  /** Suites of the online keys (one 2-of-n key each). Default: all four. */
  suites?: SuiteId[];
  /** Suites of the device keys (2-of-3: the device and two signer nodes). Default ed25519, secp256k1-tr. */
  deviceSuites?: SuiteId[];
  /** Share of sessions that are offline packages. Default 0.35. */
  offlineShare?: number;
  /** Mean number of sessions started between two kills (each gap uniform in [0.5, 1.5] × this). Default 10. */
  killEvery?: number;
  /** Most kills. Default: sessions / killEvery. */
  maxKills?: number;
  /** Relative odds of each victim. Default coordinator 3, signer 4, device 3, power cut (every daemon at once) 0.5. The first three kills take the coordinator, a signer and the device once each, in a seeded order. */
  victims?: Partial<Record<Victim, number>>;
  /** Bound of the work phase (sessions and kills), ms; sessions not acknowledged by then are "unfinished". Default 10 min. */
  durationLimitMs?: number;
  /** Kills start only in this first share of the work phase, leaving the rest for recovery. Default 0.7. */
  killWindow?: number;
  /** Online requests in flight. Default 4. */
  concurrency?: number;
  /** Signer processes. Default 3. */
  signers?: number;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Keep the cluster directory (printed) instead of deleting it. */
  keepDir?: boolean;
  /** Path of device-worker.mjs (default: next to this module). */
  deviceWorker?: string;
}

export interface ChaosReport {
  seed: number;
  sessions: number;
  online: { sessions: number; acknowledged: number; unfinished: number; bySuite: Record<string, number> };
  offline: {
    sessions: number;
    acknowledged: number;
    completed: number;
    unfinished: number;
    bySuite: Record<string, number>;
    adoptedAfterCrash: number;
  };
  kills: {
    coordinator: number;
    signer: number;
    device: number;
    powerCuts: number;
    total: number;
    deviceDuring: Record<string, number>;
  };
  retries: { online: number; device: number };
  /** Times the driver replaced its gRPC channel after two calls in a row reached their deadline. */
  channelResets: number;
  /** Acknowledged requests whose result is missing, different or invalid (or a package never completed). */
  lost: number;
  /** Acknowledged requests that completed twice (a re-submission gave another signature). */
  duplicated: number;
  /** A nonce or reservation used for two requests (from the ledgers, the attempt records and the audit logs). */
  reused: number;
  ledgers: { onlineNoncesConsumed: number; reservationsConsumed: number; auditEntries: Record<string, number> };
  errorsSeen: Record<string, number>;
  /** The first message seen for each code in errorsSeen. */
  errorSamples: Record<string, string>;
  problems: string[];
  durationMs: number;
  phases: { setupMs: number; workMs: number; settleMs: number; verifyMs: number };
}

// ---- small helpers --------------------------------------------------------------------------------

/** mulberry32: a small seeded PRNG (the schedule and the killer's choices are reproducible per seed). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const codeOf = (e: unknown): string => {
  const c = (e as { code?: unknown })?.code;
  return typeof c === 'string' ? c : typeof c === 'number' ? `GRPC_${c}` : 'ERROR';
};

function bytesFrom(rng: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rng() * 256);
  return b;
}

/** Every process a chaos run started (device processes, and each supervisor's current children); SIGKILLed if the run's process exits first. */
const live = new Set<ChildProcess>();
const liveDevs = new Set<DevHandle>();
let exitHook = false;
function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    const all = [...live, ...[...liveDevs].flatMap((d) => d.children.map((c) => c.proc))];
    for (const c of all)
      if (c && c.exitCode === null && c.signalCode === null)
        try {
          c.kill('SIGKILL');
        } catch {
          /* gone */
        }
  });
}
function track(p: ChildProcess): void {
  installExitHook();
  live.add(p);
  p.once('exit', () => live.delete(p));
}

/** SIGKILLs the processes whose command line names `path` (a run's unique temp directory). Linux /proc; elsewhere nothing. */
function killByPath(path: string): void {
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return;
  }
  for (const pid of pids) {
    try {
      if (Number(pid) !== process.pid && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(path))
        process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone, or not ours to read
    }
  }
}

// ---- the API client -----------------------------------------------------------------------------

interface ClientFile {
  coordinator: string;
  deviceUrl: string;
  tls: { ca: string; cert: string; key: string };
  requester: { id: string; signSecret: string; encSecret: string };
}

interface Api {
  requester: ParticipantIdentity;
  deviceUrl: string;
  call<Res = Record<string, unknown>>(method: string, req: unknown, deadlineMs?: number): Promise<Res>;
  close(): void;
}

/**
 * Like `openClient` from @tessera/cli, made for a coordinator that is killed often: a short
 * reconnect backoff, client keepalive, and a fresh channel after two calls in a row reach their
 * deadline. (Seen once in ~10 long runs: after a coordinator SIGKILL the old channel kept
 * "picking" a connection that no longer existed — no socket left in the process — and every call
 * on it timed out for the rest of the run, while a new channel worked at once.)
 */
function openApi(dir: string, onReset: () => void = () => {}): Api {
  const file = JSON.parse(readFileSync(join(dir, 'client.json'), 'utf8')) as ClientFile;
  const requester = ParticipantIdentity.fromSecrets(
    file.requester.id,
    fromHex(file.requester.signSecret),
    fromHex(file.requester.encSecret),
  );
  const { Coordinator } = loadTessera();
  const make = () =>
    new Coordinator(file.coordinator, channelCredentials(file.tls), {
      'grpc.ssl_target_name_override': 'coordinator',
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      // The server allows a ping every 5 s without data; 10 s + 5 s notices a dead connection.
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
    }) as grpc.Client;
  let client = make();
  let deadlines = 0;
  return {
    requester,
    deviceUrl: file.deviceUrl,
    async call<Res>(method: string, req: unknown, deadlineMs = 15_000): Promise<Res> {
      const used = client;
      try {
        const r = await unary<unknown, Res>(used, method, req, { deadlineMs });
        deadlines = 0;
        return r;
      } catch (e) {
        if ((e as { code?: string }).code === 'DEADLINE' && used === client && ++deadlines >= 2) {
          deadlines = 0;
          client = make();
          used.close();
          onReset();
        }
        throw e;
      }
    },
    close: () => client.close(),
  };
}

// ---- the device process -------------------------------------------------------------------------

class DeviceProc {
  #child: ChildProcess | undefined;
  #ready: Promise<void> | undefined;
  #next = 1;
  readonly #waiting = new Map<number, { op: string; resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly #stderr: string[] = [];

  /** The operations in flight (the device's own work: sign, sync, reserve, …). */
  get busy(): string[] {
    return [...this.#waiting.values()].map((w) => w.op);
  }

  constructor(
    private readonly worker: string,
    private readonly location: string,
    private readonly keyFile: string,
  ) {}

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  start(): Promise<void> {
    const child = spawn(process.execPath, [this.worker, this.location, this.keyFile], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env },
    });
    track(child);
    this.#child = child;
    child.stderr!.on('data', (d: Buffer) => {
      this.#stderr.push(d.toString());
      if (this.#stderr.length > 50) this.#stderr.shift();
    });
    this.#ready = new Promise<void>((resolve, reject) => {
      const rl = createInterface({ input: child.stdout! });
      let first = true;
      rl.on('line', (line) => {
        let m: { ready?: boolean; id?: number; ok?: boolean; res?: unknown; error?: { code: string; message: string } };
        try {
          m = JSON.parse(line) as typeof m;
        } catch {
          return;
        }
        if (first && m.ready) {
          first = false;
          return resolve();
        }
        const w = this.#waiting.get(Number(m.id));
        if (!w) return;
        this.#waiting.delete(Number(m.id));
        if (m.ok) w.resolve(m.res);
        else
          w.reject(Object.assign(new Error(m.error?.message ?? 'device error'), { code: m.error?.code ?? 'INTERNAL' }));
      });
      child.once('exit', (code, signal) => {
        if (this.#child === child) this.#child = undefined;
        const err = Object.assign(new Error(`device process exited (${signal ?? code})`), { code: 'DEVICE_DOWN' });
        for (const w of this.#waiting.values()) w.reject(err);
        this.#waiting.clear();
        reject(
          new Error(
            `device process exited before it was ready (${signal ?? code}): ${this.#stderr.join('').slice(-1500)}`,
          ),
        );
      });
    });
    this.#ready.catch(() => {});
    return this.#ready;
  }

  call<T = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs = 90_000): Promise<T> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null)
      return Promise.reject(Object.assign(new Error('device process is down'), { code: 'DEVICE_DOWN' }));
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(Object.assign(new Error(`device ${op} took over ${timeoutMs} ms`), { code: 'DEVICE_TIMEOUT' }));
      }, timeoutMs);
      this.#waiting.set(id, {
        op,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      child.stdin!.write(JSON.stringify({ id, op, args }) + '\n');
    });
  }

  /** SIGKILL; resolves when the process is gone. */
  async kill(): Promise<void> {
    const c = this.#child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  }

  async close(): Promise<void> {
    const c = this.#child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    await this.call('close', {}, 10_000).catch(() => undefined);
    await Promise.race([gone, sleep(10_000)]);
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

// ---- sessions -----------------------------------------------------------------------------------

interface OnlineSession {
  i: number;
  suite: SuiteId;
  keyId: string;
  publicKey: Uint8Array;
  message: Uint8Array;
  requestId: Uint8Array;
  intent?: Uint8Array;
  ack?: { signature: Uint8Array; signers: string[] };
}

interface OfflineSession {
  i: number;
  suite: SuiteId;
  keyId: string;
  publicKey: Uint8Array;
  message: Uint8Array;
  ack?: { packageId: string };
}

interface QueueItem {
  packageId: string;
  keyId: string;
  message: string;
  bytes: string;
  state: 'pending' | 'completed' | 'failed';
  signature?: string;
  lastError?: { code: string; message: string };
}

interface DevHandle {
  stop(): Promise<void>;
  children: { name: string; proc?: ChildProcess; restarts: number; info?: Record<string, unknown> }[];
}

/** Runs one chaos campaign and returns its figures; see the module comment for what is checked. */
export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const t0 = Date.now();
  const seed = opts.seed ?? 1;
  const say = opts.log ?? (() => {});
  const suites = opts.suites ?? ['ed25519', 'secp256k1-tr', 'secp256k1', 'p256'];
  const deviceSuites = opts.deviceSuites ?? ['ed25519', 'secp256k1-tr'];
  const nSigners = opts.signers ?? 3;
  const killEvery = opts.killEvery ?? 10;
  const maxKills = opts.maxKills ?? Math.floor(opts.sessions / killEvery);
  const durationLimitMs = opts.durationLimitMs ?? 600_000;
  const killWindow = opts.killWindow ?? 0.7;
  const concurrency = opts.concurrency ?? 4;
  const weights: Record<Victim, number> = { coordinator: 3, signer: 4, device: 3, power: 0.5, ...(opts.victims ?? {}) };
  const signerIds = Array.from({ length: nSigners }, (_, i) => `signer-${i + 1}`);

  const root = mkdtempSync(join(tmpdir(), 'tessera-chaos-'));
  const dir = join(root, '.tessera');
  const phoneDir = join(root, 'phone');
  mkdirSync(phoneDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(phoneDir, 'storage.key'), randomBytes(32).toString('hex'), { mode: 0o600 });

  const problems: string[] = [];
  const problem = (s: string) => {
    if (problems.length < 200) problems.push(s);
    say(`PROBLEM ${s}`);
  };
  const errorsSeen: Record<string, number> = {};
  const errorSamples: Record<string, string> = {};
  const seen = (code: string, e?: unknown) => {
    errorsSeen[code] = (errorsSeen[code] ?? 0) + 1;
    if (e && !errorSamples[code]) {
      const x = e as { message?: string; status?: number; cause?: { message?: string; stack?: string } };
      const cause = x.cause
        ? `; cause: ${String(x.cause.stack ?? x.cause.message ?? x.cause)
            .split('\n')
            .slice(0, 4)
            .join(' | ')}`
        : '';
      errorSamples[code] =
        `${String(x.message ?? e)}${x.status !== undefined ? ` (status ${x.status})` : ''}${cause}`.slice(0, 600);
    }
  };
  const kills = { coordinator: 0, signer: 0, device: 0, powerCuts: 0, total: 0 };
  const deviceKilledDuring: Record<string, number> = {};
  const retries = { online: 0, device: 0 };
  let lost = 0;
  let duplicated = 0;
  let reused = 0;
  const phases = { setupMs: 0, workMs: 0, settleMs: 0, verifyMs: 0 };

  const signerPolicy = { devices: { maxReservations: 100_000 } };
  const devOpts = {
    dir,
    signers: nSigners,
    signerPolicy,
    onLine: (s: string) => {
      if (/exited|restart|crash/.test(s)) say(`dev: ${s}`);
    },
  };
  let dev: DevHandle;
  try {
    dev = (await startDev({ ...devOpts, port: 0, gatewayPort: 0 })) as DevHandle;
  } catch (e) {
    // startDev leaves the children it had started running when a later one fails: end them
    // (found by this run's own, unique directory in their command lines), then fail.
    killByPath(dir);
    rmSync(root, { recursive: true, force: true });
    throw e;
  }
  const trackDev = (d: DevHandle) => {
    installExitHook();
    liveDevs.add(d);
  };
  trackDev(dev);
  const coordInfo = dev.children[0]?.info ?? {};
  const port = Number(coordInfo.port);
  const gatewayPort = Number(new URL(String(coordInfo.gatewayUrl)).port);
  let channelResets = 0;
  const api = openApi(dir, () => {
    channelResets++;
    say('API channel replaced after two deadlines in a row');
  });
  const device = new DeviceProc(
    opts.deviceWorker ?? DEFAULT_WORKER,
    join(phoneDir, 'store'),
    join(phoneDir, 'storage.key'),
  );

  interface Status {
    pid: number;
    participants: { id: string; connected: boolean; pid: number; device: boolean }[];
  }
  /** Until the coordinator answers and every signer is linked (none of them a killed pid). */
  const waitHealthy = async (deadMs = 45_000, killed: number[] = []): Promise<boolean> => {
    const until = Date.now() + deadMs;
    while (Date.now() < until) {
      try {
        const s = await api.call<Status>('Status', {}, 2_000);
        const ok =
          !killed.includes(s.pid) &&
          signerIds.every((id) => {
            const p = s.participants.find((x) => x.id === id);
            return p?.connected && !killed.includes(p.pid);
          });
        if (ok) return true;
      } catch {
        // coordinator restarting
      }
      await sleep(100);
    }
    return false;
  };

  let stopped = false;
  const stopAll = async () => {
    if (stopped) return;
    stopped = true;
    api.close();
    await device.close().catch(() => undefined);
    await dev.stop();
    liveDevs.delete(dev);
  };

  try {
    // ---- setup: keys, the device, its keys and a first allowance -------------------------------
    if (!(await waitHealthy(30_000))) throw new Error('the dev cluster did not come up');
    say(`cluster up ${Date.now() - t0} ms`);
    const rng = prng(seed);
    const onlineKeys = new Map<SuiteId, { keyId: string; publicKey: Uint8Array }>();
    for (const s of suites) {
      const tk = Date.now();
      const k = await api.call<{ keyId: string; publicKey: Uint8Array }>(
        'Keygen',
        { suite: getSuite(s).wireId, threshold: 2, participants: [] },
        60_000,
      );
      onlineKeys.set(s, { keyId: k.keyId, publicKey: new Uint8Array(k.publicKey) });
      say(`keygen ${s} ${Date.now() - tk} ms`);
    }
    await device.start();
    await device.call('init', { id: 'chaos-phone' });
    const { token } = await api.call<{ token: string }>('IssueEnrolmentToken', { ttlMs: 3_600_000, label: 'chaos' });
    await device.call('enrol', { url: api.deviceUrl, token });
    await admitWithDevOperator(<Res>(m: string, r: unknown) => api.call<Res>(m, r, 10_000), dir, 'chaos-phone');
    const deviceKeys: { suite: SuiteId; keyId: string; publicKey: Uint8Array }[] = [];
    for (const [i, s] of deviceSuites.entries()) {
      // Spread the device keys over the nodes: (signer-1, signer-2), (signer-2, signer-3), …
      const withNodes = [signerIds[i % nSigners] as string, signerIds[(i + 1) % nSigners] as string];
      const tk = Date.now();
      const k = await device.call<{ keyId: string; publicKey: string }>('keygen', {
        url: api.deviceUrl,
        suite: s,
        threshold: 2,
        with: withNodes,
      });
      say(`device keygen ${s} ${Date.now() - tk} ms`);
      deviceKeys.push({ suite: s, keyId: k.keyId, publicKey: fromHex(k.publicKey) });
    }
    for (const k of deviceKeys) await device.call('reserve', { url: api.deviceUrl, keyId: k.keyId, count: 16 });
    phases.setupMs = Date.now() - t0;
    say(`setup ${phases.setupMs} ms: ${suites.length} online keys, ${deviceKeys.length} device keys, dir ${root}`);

    // ---- the schedule (deterministic per seed) ---------------------------------------------------
    const online: OnlineSession[] = [];
    const offline: OfflineSession[] = [];
    const offlineShare = deviceKeys.length ? (opts.offlineShare ?? 0.35) : 0;
    for (let i = 0; i < opts.sessions; i++) {
      if (rng() < offlineShare) {
        const k = deviceKeys[Math.floor(rng() * deviceKeys.length)] as (typeof deviceKeys)[number];
        offline.push({ i, suite: k.suite, keyId: k.keyId, publicKey: k.publicKey, message: bytesFrom(rng, 32) });
      } else {
        const s = suites[Math.floor(rng() * suites.length)] as SuiteId;
        const k = onlineKeys.get(s) as { keyId: string; publicKey: Uint8Array };
        online.push({
          i,
          suite: s,
          keyId: k.keyId,
          publicKey: k.publicKey,
          message: bytesFrom(rng, 32),
          requestId: bytesFrom(rng, 16),
        });
      }
    }

    // ---- the work phase: online workers, the device lane, the killer ----------------------------
    const tWork = Date.now();
    const workDeadline = tWork + durationLimitMs;
    const killDeadline = tWork + durationLimitMs * killWindow;
    let started = 0;
    let workDone = false;

    const signOnline = async (s: OnlineSession) => {
      const suite = getSuite(s.suite);
      // The same signed intent on every retry: the request id makes the call idempotent.
      s.intent ??= createSignIntent(api.requester, {
        suite,
        keyId: s.keyId,
        message: s.message,
        requestId: s.requestId,
        notAfter: Date.now() + 6 * 3_600_000,
      });
      for (let attempt = 0; Date.now() < workDeadline; attempt++) {
        try {
          const r = await api.call<{
            signature: Uint8Array;
            signers: string[];
            publicKey: Uint8Array;
            requestId: Uint8Array;
          }>('Sign', { intent: decodeMessage('Envelope', s.intent), signers: [] }, 15_000);
          const sig = new Uint8Array(r.signature);
          // The client checks what it got: only a verifying signature is an acknowledgement.
          if (!equalBytes(new Uint8Array(r.publicKey), s.publicKey) || !suite.verify(sig, s.message, s.publicKey)) {
            problem(`online session ${s.i}: the coordinator returned a signature that does not verify`);
            seen('BAD_SIGNATURE_RETURNED');
          } else {
            s.ack = { signature: sig, signers: [...r.signers] };
            return;
          }
        } catch (e) {
          seen(codeOf(e), e);
          // Failures under crashes must be typed (UNAVAILABLE, NO_QUORUM, …): INTERNAL means the
          // coordinator threw something it did not expect.
          if (codeOf(e) === 'INTERNAL')
            problem(
              `online session ${s.i}: Sign answered INTERNAL (${(e as Error).message}): an untyped failure in the coordinator`,
            );
        }
        retries.online++;
        await sleep(Math.min(1_500, 50 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random()));
      }
    };

    const onlineWorkers = async () => {
      let next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          for (let k = next++; k < online.length && Date.now() < workDeadline; k = next++) {
            started++;
            await signOnline(online[k] as OnlineSession);
          }
        }),
      );
    };

    /** A device call that survives device kills and cluster outages (retried until the deadline). */
    const deviceOp = async <T>(what: string, fn: () => Promise<T>, deadline = workDeadline): Promise<T | undefined> => {
      for (let attempt = 0; Date.now() < deadline; attempt++) {
        try {
          return await fn();
        } catch (e) {
          seen(`device:${codeOf(e)}`, e);
          retries.device++;
          if (codeOf(e) === 'DEVICE_DOWN') await deviceUp().catch(() => sleep(200));
          else await sleep(Math.min(1_000, 50 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random()));
        }
      }
      say(`device ${what}: gave up at the deadline`);
      return undefined;
    };

    let deviceRestart: Promise<void> | undefined;
    /** Waits for the device process (restarting it if it is down and no restart is under way). */
    const deviceUp = async () => {
      if (deviceRestart) return deviceRestart;
      if (device.pid !== undefined) return;
      deviceRestart = device.start().finally(() => (deviceRestart = undefined));
      return deviceRestart;
    };

    const sync = async (
      deadline = workDeadline,
    ): Promise<
      { completed: unknown[]; pending: unknown[]; failed: { packageId: string; code: string }[] } | undefined
    > => {
      const r = await deviceOp(
        'sync',
        () =>
          device.call<{ completed: unknown[]; pending: unknown[]; failed: { packageId: string; code: string }[] }>(
            'sync',
            { url: api.deviceUrl },
          ),
        deadline,
      );
      for (const f of r?.failed ?? []) problem(`package ${f.packageId} failed for good: ${f.code}`);
      return r;
    };

    let adopted = 0;
    const signOfflineSession = async (s: OfflineSession) => {
      const hex = toHex(s.message);
      let uncertain = false;
      for (let attempt = 0; Date.now() < workDeadline; attempt++) {
        try {
          if (uncertain) {
            // The device died (or the call failed) mid-sign: the package may be queued already.
            const q = await device.call<QueueItem[]>('queue');
            const found = q.find((x) => x.message === hex && x.keyId === s.keyId);
            if (found) {
              s.ack = { packageId: found.packageId };
              adopted++;
              return;
            }
            uncertain = false;
          }
          const r = await device.call<{ packageId: string }>('sign', { keyId: s.keyId, message: hex });
          s.ack = { packageId: r.packageId };
          return;
        } catch (e) {
          const code = codeOf(e);
          seen(`device:${code}`, e);
          if (code === 'NO_ALLOWANCE') {
            await deviceOp('reserve', () => device.call('reserve', { url: api.deviceUrl, keyId: s.keyId, count: 12 }));
            continue;
          }
          retries.device++;
          uncertain = true;
          if (code === 'DEVICE_DOWN') await deviceUp().catch(() => sleep(200));
          else await sleep(Math.min(1_000, 50 * 2 ** Math.min(attempt, 5)));
        }
      }
    };

    const deviceLane = async () => {
      let sinceSync = 0;
      let syncAfter = 2 + Math.floor(rng() * 4);
      for (const s of offline) {
        if (Date.now() >= workDeadline) break;
        started++;
        await signOfflineSession(s);
        if (++sinceSync >= syncAfter) {
          await sync();
          sinceSync = 0;
          syncAfter = 2 + Math.floor(rng() * 4);
        }
      }
      await sync();
    };

    const killRng = prng(seed ^ 0x5bd1e995);
    // The first kills take each kind of process once (in a seeded order), the rest are drawn by the odds.
    const firsts = (['coordinator', 'signer', 'device'] as Victim[]).filter(
      (v) => weights[v] > 0 && (v !== 'device' || deviceKeys.length > 0),
    );
    for (let i = firsts.length - 1; i > 0; i--) {
      const j = Math.floor(killRng() * (i + 1));
      [firsts[i], firsts[j]] = [firsts[j] as Victim, firsts[i] as Victim];
    }
    const pickVictim = (): Victim => {
      const first = firsts.shift();
      if (first) return first;
      const entries = (Object.entries(weights) as [Victim, number][]).filter(
        ([v, w]) => w > 0 && (v !== 'device' || deviceKeys.length > 0),
      );
      const total = entries.reduce((a, [, w]) => a + w, 0);
      let x = killRng() * total;
      for (const [v, w] of entries) if ((x -= w) < 0) return v;
      return (entries[0] as [Victim, number])[0];
    };

    /** Every daemon SIGKILLed at once, then the supervisor (startDev) started again on the same data and ports. */
    const powerCut = async (why: string) => {
      say(`power cut (${why})`);
      // SIGKILL first, then stop() in the same tick: the supervisor sees its children gone only
      // after `stopping` is set, so it does not restart them.
      for (const c of dev.children)
        if (c.proc && c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
      await dev.stop();
      liveDevs.delete(dev);
      kills.powerCuts++;
      kills.coordinator++;
      kills.signer += nSigners;
      kills.total += 1 + nSigners;
      for (let i = 0; ; i++) {
        try {
          dev = (await startDev({ ...devOpts, port, gatewayPort })) as DevHandle;
          break;
        } catch (e) {
          if (i >= 10) throw e;
          await sleep(500);
        }
      }
      trackDev(dev);
    };

    /**
     * Which daemons may be killed now: the coordinator answering, signers linked, each with the
     * pid of the supervisor's current child. Only processes that are fully up are victims, so
     * each kill hits a serving process (and the supervisor's startup path is not what is tested).
     */
    const upNow = async (): Promise<{ coordinator: boolean; signers: string[] }> => {
      const cur = (name: string) => dev.children.find((c) => c.name === name)?.proc?.pid;
      try {
        const s = await api.call<Status>('Status', {}, 1_000);
        return {
          coordinator: s.pid === cur('coordinator'),
          signers: signerIds.filter((id) => {
            const p = s.participants.find((x) => x.id === id);
            return !!p?.connected && p.pid === cur(id);
          }),
        };
      } catch {
        return { coordinator: false, signers: [] };
      }
    };

    const killer = async () => {
      let lastAt = 0;
      while (!workDone && kills.total < maxKills && Date.now() < killDeadline) {
        const gap = Math.max(1, Math.round(killEvery * (0.5 + killRng())));
        while (!workDone && started < lastAt + gap && Date.now() < killDeadline) await sleep(10);
        if (workDone || Date.now() >= killDeadline) break;
        // Land at a random point of the sessions in flight.
        await sleep(Math.floor(killRng() * 300));
        let victim = pickVictim();
        // The supervisor gives up on a child after 20 restarts (and backs off longer each time):
        // past a budget, the next kill is a power cut, which starts a fresh supervisor.
        if (dev.children.some((c) => c.restarts >= 12)) victim = 'power';
        if (victim === 'device') {
          if (device.pid === undefined) await deviceUp().catch(() => undefined);
          // Prefer a moment when the device is working (signing, syncing, reserving).
          for (const until = Date.now() + 2_000; !device.busy.length && Date.now() < until; ) await sleep(2);
          await sleep(Math.floor(killRng() * 15));
          const during = device.busy.join('+') || 'idle';
          await device.kill();
          kills.device++;
          kills.total++;
          deviceKilledDuring[during] = (deviceKilledDuring[during] ?? 0) + 1;
          lastAt = started;
          say(`kill -9 device during ${during} (session ${started})`);
          // The app comes back after a moment (the lane also restarts it when it needs it).
          void sleep(50 + Math.floor(killRng() * 400))
            .then(() => deviceUp())
            .catch((e: Error) => problem(`device did not restart: ${e.message}`));
          continue;
        }
        // Wait (bounded) until the victim is up; other failures may still be recovering.
        const pick = killRng();
        let target: { name: string; pid: number } | undefined;
        for (const until = Math.min(Date.now() + 20_000, killDeadline); !target && !workDone && Date.now() < until; ) {
          const up = await upNow();
          if (victim === 'power') {
            if (up.coordinator && up.signers.length === nSigners) target = { name: 'power', pid: 0 };
          } else if (victim === 'coordinator') {
            if (up.coordinator) target = { name: 'coordinator', pid: dev.children[0]?.proc?.pid as number };
          } else if (up.signers.length) {
            const id = up.signers[Math.floor(pick * up.signers.length)] as string;
            target = { name: id, pid: dev.children.find((c) => c.name === id)?.proc?.pid as number };
          }
          if (!target) await sleep(100);
        }
        if (!target) continue;
        lastAt = started;
        if (victim === 'power') {
          await powerCut(`session ${started}`);
          continue;
        }
        process.kill(target.pid, 'SIGKILL');
        kills[victim]++;
        kills.total++;
        say(`kill -9 ${target.name} pid ${target.pid} (session ${started})`);
      }
    };

    const killerDone = killer();
    await Promise.all([onlineWorkers(), deviceLane()]);
    workDone = true;
    await killerDone;
    phases.workMs = Date.now() - tWork;
    say(`work phase ${phases.workMs} ms: ${started} sessions started, ${kills.total} kills`);

    // ---- settle: the cluster whole again, every queued package delivered --------------------------
    const tSettle = Date.now();
    if (!(await waitHealthy(60_000))) problem('the cluster was not healthy after the work phase');
    await deviceUp();
    const settleDeadline = Date.now() + 90_000;
    let queue: QueueItem[] = [];
    for (;;) {
      await sync(settleDeadline);
      queue = (await deviceOp('queue', () => device.call<QueueItem[]>('queue'), settleDeadline)) ?? queue;
      if (!queue.some((q) => q.state === 'pending') || Date.now() > settleDeadline) break;
      await sleep(300);
    }
    phases.settleMs = Date.now() - tSettle;

    // ---- verification, live: re-submissions, the audit rpc ----------------------------------------
    const tVerify = Date.now();
    const ackedOnline = online.filter((s) => s.ack);
    for (const s of ackedOnline) {
      const ack = s.ack as NonNullable<OnlineSession['ack']>;
      let again: { signature: Uint8Array } | undefined;
      for (let i = 0; i < 5 && !again; i++) {
        try {
          again = await api.call<{ signature: Uint8Array }>(
            'Sign',
            { intent: decodeMessage('Envelope', s.intent as Uint8Array), signers: [] },
            15_000,
          );
        } catch (e) {
          if (i === 4) {
            lost++;
            problem(
              `online session ${s.i}: re-submitting the acknowledged intent failed: ${codeOf(e)} ${(e as Error).message}`,
            );
          } else await sleep(300);
        }
      }
      if (again && !equalBytes(new Uint8Array(again.signature), ack.signature)) {
        duplicated++;
        const v = getSuite(s.suite).verify(new Uint8Array(again.signature), s.message, s.publicKey);
        problem(
          `online session ${s.i} (request ${toHex(s.requestId)}): re-submission returned another signature than the acknowledged one (it ${v ? 'verifies too: signed twice' : 'does not verify'})`,
        );
      }
    }
    const queueById = new Map(queue.map((q) => [q.packageId, q]));
    const ackedOffline = offline.filter((s) => s.ack);
    const messages = new Map<string, number>();
    for (const q of queue) messages.set(`${q.keyId}/${q.message}`, (messages.get(`${q.keyId}/${q.message}`) ?? 0) + 1);
    for (const [m, n] of messages)
      if (n > 1)
        problem(
          `device queue holds ${n} packages for one session (${m.slice(0, 40)}…): a retried sign was not recognised`,
        );
    for (const q of queue)
      if (q.state === 'failed') problem(`package ${q.packageId} failed: ${q.lastError?.code} ${q.lastError?.message}`);
    let offlineCompleted = 0;
    for (const s of ackedOffline) {
      const id = (s.ack as { packageId: string }).packageId;
      const q = queueById.get(id);
      if (q?.state !== 'completed' || !q.signature) {
        lost++;
        problem(
          `offline session ${s.i}: acknowledged package ${id} is ${q ? q.state : 'not in the queue'}${q?.lastError ? ` (${q.lastError.code} ${q.lastError.message})` : ''}`,
        );
        continue;
      }
      if (!getSuite(s.suite).verify(fromHex(q.signature), s.message, s.publicKey)) {
        lost++;
        problem(`offline session ${s.i}: package ${id} completed with a signature that does not verify`);
        continue;
      }
      offlineCompleted++;
      try {
        const r = await api.call<{ packageId: string; signature: Uint8Array; alreadyCompleted: boolean }>(
          'SubmitPackage',
          { package: fromHex(q.bytes) },
          30_000,
        );
        if (!r.alreadyCompleted || r.packageId !== id)
          problem(`offline session ${s.i}: re-submitting package ${id} did not answer alreadyCompleted`);
        if (!equalBytes(new Uint8Array(r.signature), fromHex(q.signature))) {
          duplicated++;
          problem(`offline session ${s.i}: re-submitting package ${id} returned another signature`);
        }
      } catch (e) {
        lost++;
        problem(`offline session ${s.i}: re-submitting package ${id} failed: ${codeOf(e)} ${(e as Error).message}`);
      }
    }
    const liveAudit = await api
      .call<{
        coordinator: { ok: boolean; reason: string };
        participants: {
          id: string;
          reachable: boolean;
          report: { ok: boolean; count: number; reason: string } | null;
          error: string;
        }[];
      }>('AuditVerify', {}, 30_000)
      .catch((e: Error) => {
        problem(`AuditVerify rpc failed: ${e.message}`);
        return undefined;
      });
    if (liveAudit) {
      if (!liveAudit.coordinator.ok) problem(`coordinator audit chain: ${liveAudit.coordinator.reason}`);
      for (const id of signerIds) {
        const p = liveAudit.participants.find((x) => x.id === id);
        if (!p?.reachable || !p.report?.ok)
          problem(`audit chain of ${id} (rpc): ${p ? p.report?.reason || p.error : 'not reported'}`);
      }
    }

    // ---- verification, from every store (after a clean stop) -------------------------------------
    await stopAll();
    const auditEntries: Record<string, number> = {};
    const kek = (name: string) => loadKek({ file: join(dir, 'keks', `${name}.kek`) });
    const results = new Map<string, { signature: Uint8Array; signers: string[] }>();
    const packages = new Map<string, Uint8Array>();
    const resv = new Map<string, string>();
    {
      const store = await SealedStore.open(join(dir, 'coordinator'), kek('coordinator'));
      try {
        const prefix = `result/${toHex(api.requester.public.signKey)}/`;
        for await (const [k, v] of store.iterate(prefix)) {
          const w = decodeMessage('SignResultRecord', v);
          results.set(k.slice(prefix.length), { signature: w.signature, signers: w.signers });
        }
        for await (const [k, v] of store.iterate('package/'))
          packages.set(k.slice('package/'.length), decodeMessage('SubmitPackageResponse', v).signature);
        for await (const [k, v] of store.iterate('resv/'))
          resv.set(k.slice('resv/'.length), new TextDecoder().decode(v));
        const audit = new AuditLog(store);
        const a = summarizeAudit(await audit.verify());
        auditEntries.coordinator = a.count;
        if (!a.ok) problem(`coordinator audit chain (store): ${a.reason} at entry ${a.problemSeq}`);
        // The coordinator's own record: no request and no package completed twice.
        const completions = new Map<string, number>();
        for await (const e of audit.entries()) {
          const k =
            e.type === 'sign'
              ? `request ${String(e.data.requestId)}`
              : e.type === 'offline-complete'
                ? `package ${String(e.data.package)}`
                : undefined;
          if (k) completions.set(k, (completions.get(k) ?? 0) + 1);
        }
        for (const [k, n] of completions) {
          if (n < 2) continue;
          duplicated++;
          problem(`coordinator audit log: ${k} completed ${n} times`);
        }
      } finally {
        await store.close();
      }
    }
    for (const s of ackedOnline) {
      const r = results.get(toHex(s.requestId));
      const ack = s.ack as NonNullable<OnlineSession['ack']>;
      if (!r) {
        lost++;
        problem(`online session ${s.i}: no stored result for acknowledged request ${toHex(s.requestId)}`);
      } else if (!equalBytes(r.signature, ack.signature)) {
        duplicated++;
        problem(`online session ${s.i}: the stored result is another signature than the acknowledged one`);
      }
    }
    // Completed packages, decoded: who co-signed with which reservation.
    const completedPkgs = queue
      .filter((q) => q.state === 'completed')
      .map((q) => ({ q, pkg: decodeOfflinePackage(fromHex(q.bytes)) }));
    for (const { q, pkg } of completedPkgs) {
      const stored = packages.get(q.packageId);
      if (!stored) problem(`package ${q.packageId}: completed on the device but no coordinator record`);
      else if (toHex(stored) !== q.signature) {
        duplicated++;
        problem(`package ${q.packageId}: the coordinator's record holds another signature than the device got`);
      }
      for (const c of pkg.cosigners) {
        const owner = resv.get(`${c.signer}/${toHex(c.nonceId)}`);
        if (owner !== q.packageId)
          problem(
            `package ${q.packageId}: the coordinator's reservation record of ${c.signer} names ${owner ?? 'nothing'}`,
          );
      }
    }
    let onlineConsumed = 0;
    let reservationsConsumed = 0;
    for (const id of signerIds) {
      const store = await SealedStore.open(join(dir, id), kek(id));
      try {
        const ledger = new NonceLedger(store);
        const consumed = await ledger.listConsumed();
        // Online nonces: one request each, each request's nonces counted under one request id.
        const onlineNonces = consumed.filter((c) => !c.nonceId.startsWith('r.'));
        onlineConsumed += onlineNonces.length;
        const byDigest = new Map<string, string>();
        for (const c of onlineNonces) {
          const d = toHex(c.requestDigest);
          if (byDigest.has(d)) {
            reused++;
            problem(
              `${id}: sign request ${d.slice(0, 16)}… answered with two nonces (${byDigest.get(d)}, ${c.nonceId})`,
            );
          }
          byDigest.set(d, c.nonceId);
        }
        const nonceRequest = new Map<string, string>();
        const attempts = new Map<string, string[]>();
        for await (const [k, v] of store.iterate('attempts/')) {
          const rid = k.split('/')[2] ?? '';
          const list = new TextDecoder().decode(v).split(',').filter(Boolean);
          attempts.set(rid, list);
          if (list.length > 4) problem(`${id}: request ${rid} used ${list.length} nonces (bound 4)`);
          for (const n of list) {
            if (nonceRequest.has(n) && nonceRequest.get(n) !== rid) {
              reused++;
              problem(`${id}: nonce ${n} counted for two requests`);
            }
            nonceRequest.set(n, rid);
          }
        }
        for (const c of onlineNonces)
          if (!nonceRequest.has(c.nonceId))
            problem(`${id}: consumed nonce ${c.nonceId} is not counted for any request`);
        const consumedIds = new Set(onlineNonces.map((c) => c.nonceId));
        for (const s of ackedOnline) {
          const r = results.get(toHex(s.requestId));
          if (!r?.signers.includes(id)) continue;
          if (!(attempts.get(toHex(s.requestId)) ?? []).some((n) => consumedIds.has(n)))
            problem(`online session ${s.i}: ${id} is in the stored quorum but consumed no nonce for the request`);
        }
        // Reservations: each consumed one answers exactly one completed package naming it.
        const resvNonces = consumed.filter((c) => c.nonceId.startsWith('r.'));
        reservationsConsumed += resvNonces.length;
        const expect = new Map<string, string>();
        for (const { q, pkg } of completedPkgs)
          for (const c of pkg.cosigners)
            if (c.signer === id)
              expect.set(
                `r.${toHex(utf8ToBytes(pkg.device))}.${pkg.keyId}.${toHex(c.nonceId)}`,
                `${q.packageId}:${toHex(pkg.digest)}`,
              );
        const digestSeen = new Map<string, string>();
        for (const c of resvNonces) {
          const d = toHex(c.requestDigest);
          if (digestSeen.has(d)) {
            reused++;
            problem(`${id}: package ${d.slice(0, 16)}… consumed two reservations (${digestSeen.get(d)}, ${c.nonceId})`);
          }
          digestSeen.set(d, c.nonceId);
          const want = expect.get(c.nonceId);
          if (!want)
            problem(`${id}: reservation ${c.nonceId} consumed for package ${d.slice(0, 16)}…, which never completed`);
          else if (!want.endsWith(`:${d}`)) {
            reused++;
            problem(`${id}: reservation ${c.nonceId} consumed for another package than the completed one`);
          }
        }
        for (const [n, w] of expect)
          if (!resvNonces.some((c) => c.nonceId === n))
            problem(`${id}: package ${w.split(':')[0]} completed but its reservation ${n} is not consumed here`);
        if (resvNonces.length !== expect.size)
          problem(
            `${id}: ${resvNonces.length} reservations consumed, ${expect.size} completed packages name this node`,
          );
        // The audit log: verifies, and no nonce appears under two request digests.
        const audit = new AuditLog(store);
        const a = summarizeAudit(await audit.verify());
        auditEntries[id] = a.count;
        if (!a.ok) problem(`audit chain of ${id} (store): ${a.reason} at entry ${a.problemSeq}`);
        const nonceDigest = new Map<string, string>();
        for await (const e of audit.entries()) {
          if (e.type !== 'sign') continue;
          const n = String(e.data.nonce);
          const d = String(e.data.digest);
          if (nonceDigest.has(n) && nonceDigest.get(n) !== d) {
            reused++;
            problem(`${id}: audit log shows nonce ${n} signing two requests`);
          }
          nonceDigest.set(n, d);
        }
      } finally {
        await store.close();
      }
    }
    phases.verifyMs = Date.now() - tVerify;

    const bySuite = (list: { suite: SuiteId; ack?: unknown }[]) => {
      const o: Record<string, number> = {};
      for (const s of list) if (s.ack) o[s.suite] = (o[s.suite] ?? 0) + 1;
      return o;
    };
    return {
      seed,
      sessions: opts.sessions,
      online: {
        sessions: online.length,
        acknowledged: ackedOnline.length,
        unfinished: online.length - ackedOnline.length,
        bySuite: bySuite(online),
      },
      offline: {
        sessions: offline.length,
        acknowledged: ackedOffline.length,
        completed: offlineCompleted,
        unfinished: offline.length - ackedOffline.length,
        bySuite: bySuite(offline),
        adoptedAfterCrash: adopted,
      },
      kills: { ...kills, deviceDuring: deviceKilledDuring },
      retries,
      channelResets,
      lost,
      duplicated,
      reused,
      ledgers: { onlineNoncesConsumed: onlineConsumed, reservationsConsumed, auditEntries },
      errorsSeen,
      errorSamples,
      problems,
      durationMs: Date.now() - t0,
      phases,
    };
  } finally {
    await stopAll().catch(() => undefined);
    if (opts.keepDir) say(`kept ${root}`);
    else rmSync(root, { recursive: true, force: true });
  }
}

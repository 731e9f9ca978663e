/**
 * Storage faults on a REAL signer process (packages/signer/dist/main.js: its own LevelDB, KEK
 * file and mTLS link): a wrong KEK, a corrupted or truncated LevelDB file, a full disk.
 *
 * The coordinator the signer dials is a test-controlled ParticipantLink server (as in
 * malicious-coordinator.test.ts), so the test can send the node exactly the sign requests it
 * wants — in particular, replay requests whose nonces were consumed before the fault. The
 * node's data directory is provisioned with its identity and a share of a 2-of-3 key made by an
 * in-process DKG; signer-2's commitments and shares are computed locally.
 *
 * What must hold, for every fault: the node refuses to start with a clear one-line error (no
 * stack trace, no secret), or it starts and refuses what it cannot read with a typed error —
 * and in every case it never signs with a used nonce: a replayed request for a consumed nonce
 * gets the identical share it got before (from the ledger) or a refusal (NONCE_REUSED,
 * NONCE_UNKNOWN, STORE_CORRUPT), never a new share.
 *
 * The store-level behaviour (sealing, AEAD, KEK_MISMATCH, STORE_CORRUPT on flipped bits, the
 * ledger's synced write before release, SIGKILL mid-consume) is tested in packages/store/test;
 * these are the process-level consequences.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ParticipantIdentity,
  PayloadKind,
  SigningSession,
  commit,
  createOfflinePackage,
  createSignIntent,
  decodeCommitment,
  decodeSignatureShare,
  encodeIdentityRecord,
  encodeKeyShareRecord,
  encodeSignRequest,
  equalBytes,
  getSuite,
  openEnvelope,
  openReservation,
  runLocalDkg,
  toHex,
  type DkgOutput,
  type LinkResult,
  type RequestCommitment,
  utf8ToBytes,
} from '@tessera/core';
import {
  createDevPki,
  type grpc,
  loadTessera,
  serverCredentials,
  startServer,
  type StartedServer,
} from '@tessera/runtime';
import { SealedStore, ShareVault, loadKek } from '@tessera/store';
import { SIGNER_BIN, startProcess, type Proc } from './harness.js';
import { operators } from './authority.js';

const suite = getSuite('ed25519');
const TASK_TIMEOUT_MS = 10_000;
/** Refusal codes a replay of a consumed nonce may get; anything but a new share. */
const REPLAY_REFUSALS = ['NONCE_REUSED', 'NONCE_UNKNOWN', 'STORE_CORRUPT'];

// ---- the controlling coordinator ---------------------------------------------------------------

interface Controller {
  server: StartedServer;
  /** Links that completed their hello so far. */
  hellos(): number;
  /** Resolves true once more than `n` links have said hello, false after `ms`. */
  waitHello(n: number, ms: number): Promise<boolean>;
  /** Sends one task on the newest link and awaits its result. */
  send(body: Record<string, unknown>): Promise<LinkResult>;
}

async function startController(tls: Parameters<typeof serverCredentials>[0]): Promise<Controller> {
  const t = loadTessera();
  type Stream = grpc.ServerDuplexStream<{ hello?: unknown; result?: LinkResult | null }, Record<string, unknown>>;
  let stream: Stream | undefined;
  let hellos = 0;
  let nextTask = 1;
  const pending = new Map<number, { resolve: (r: LinkResult) => void; timer: NodeJS.Timeout }>();
  const Connect = (call: Stream) => {
    let said = false;
    call.write({ challenge: { nonce: new Uint8Array(randomBytes(32)), coordinator: 'storage-faults' } });
    call.on('data', (msg: { hello?: unknown; result?: LinkResult | null }) => {
      if (!said) {
        if (!msg.hello) return;
        said = true;
        stream = call;
        hellos++;
        return;
      }
      const r = msg.result;
      const p = r ? pending.get(Number(r.taskId)) : undefined;
      if (!r || !p) return;
      pending.delete(Number(r.taskId));
      clearTimeout(p.timer);
      p.resolve(r);
    });
    call.on('end', () => call.end());
    call.on('error', () => {});
  };
  const server = await startServer({
    port: 0,
    credentials: serverCredentials(tls),
    services: [
      { definition: t.participantLinkService, implementation: { Connect }, name: 'tessera.v1.ParticipantLink' },
    ],
  });
  return {
    server,
    hellos: () => hellos,
    async waitHello(n, ms) {
      const until = Date.now() + ms;
      while (hellos <= n) {
        if (Date.now() > until) return false;
        await new Promise((r) => setTimeout(r, 50));
      }
      return true;
    },
    send(body) {
      const s = stream;
      if (!s) return Promise.reject(new Error('no signer linked'));
      const taskId = nextTask++;
      return new Promise<LinkResult>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(taskId);
          reject(
            new Error(`task ${taskId} (${Object.keys(body).join(',')}) got no result within ${TASK_TIMEOUT_MS} ms`),
          );
        }, TASK_TIMEOUT_MS);
        pending.set(taskId, { resolve, timer });
        s.write({ task: { taskId, ...body } });
      });
    },
  };
}

// ---- fixture: a provisioned node ---------------------------------------------------------------

let dir: string;
let ctl: Controller;
let pki: Awaited<ReturnType<typeof createDevPki>>;
const requester = ParticipantIdentity.generate('wallet-api');
const ids = ['signer-1', 'signer-2', 'phone-1'].map((id) => ParticipantIdentity.generate(id));
let dkg: Map<string, DkgOutput>;
const keyId = toHex(randomBytes(8));
const procs = new Set<Proc>();
const summary: string[] = [];

interface Node {
  name: string;
  dataDir: string;
  kekFile: string;
  cfgFile: string;
}

/** A data directory holding signer-1's identity and its share of the key; config and KEK file beside it. */
async function provision(name: string, dataDir = join(dir, name, 'data')): Promise<Node> {
  mkdirSync(join(dir, name), { recursive: true });
  const kekFile = join(dir, name, 'signer.kek');
  writeFileSync(kekFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  const store = await SealedStore.open(dataDir, loadKek({ file: kekFile }));
  try {
    await store.put('identity', encodeIdentityRecord(ids[0] as ParticipantIdentity), { sync: true });
    const out = dkg.get('signer-1') as DkgOutput;
    await new ShareVault(store).putShare(
      keyId,
      0,
      encodeKeyShareRecord({
        keyId,
        epoch: 0,
        key: out.key,
        share: out.share,
        transcriptHash: out.transcriptHash,
        createdAt: Date.now(),
      }),
    );
  } finally {
    await store.close();
  }
  const cfgFile = join(dir, name, 'signer.json');
  writeFileSync(
    cfgFile,
    JSON.stringify({
      id: 'signer-1',
      dataDir,
      coordinator: `127.0.0.1:${ctl.server.port}`,
      kekFile,
      tls: pki.certs['signer-1'],
      policy: {
        allowKeygen: true,
        allowUnpinnedPeers: true,
        operators,
        requesters: [{ id: 'wallet-api', publicKey: toHex(requester.public.signKey), keys: ['*'] }],
      },
    }),
  );
  return { name, dataDir, kekFile, cfgFile };
}

type Outcome =
  | { kind: 'refused'; code: number | null; stderr: string }
  | { kind: 'linked'; proc: Proc }
  | { kind: 'stuck'; proc: Proc; stderr: string };

/** Starts the node: it exits (refused to start), links (said hello), or neither within 15 s (stuck). */
async function start(node: Node): Promise<Outcome> {
  const before = ctl.hellos();
  const proc = startProcess(SIGNER_BIN, node.cfgFile);
  procs.add(proc);
  const exited = new Promise<number | null>((r) => proc.child.once('exit', (code) => r(code)));
  proc.ready.catch(() => {});
  const linked = ctl.waitHello(before, 15_000);
  const first = await Promise.race([exited.then((code) => ({ exit: code })), linked.then((ok) => ({ ok }))]);
  if ('exit' in first) return { kind: 'refused', code: first.exit, stderr: proc.stderr.join('') };
  if (first.ok) return { kind: 'linked', proc };
  return { kind: 'stuck', proc, stderr: proc.stderr.join('') };
}

async function startLinked(node: Node): Promise<Proc> {
  const o = await start(node);
  if (o.kind !== 'linked')
    throw new Error(
      `${node.name}: expected the node to link, it ${o.kind === 'refused' ? `exited ${o.code}: ${o.stderr}` : `did not link: ${o.stderr}`}`,
    );
  return o.proc;
}

async function stop(proc: Proc): Promise<number | null> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return proc.child.exitCode;
  const exited = new Promise<number | null>((r) => proc.child.once('exit', (code) => r(code)));
  proc.child.kill('SIGTERM');
  return exited;
}

/** A refusal to start: non-zero exit, one line on stderr naming the program, no stack trace. */
function expectCleanRefusal(o: Outcome, pattern: RegExp, secrets: string[] = []): string {
  expect(o.kind, o.kind === 'refused' ? '' : 'the node should have refused to start').toBe('refused');
  const r = o as Extract<Outcome, { kind: 'refused' }>;
  expect(r.code).not.toBe(0);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  const line = lines[0] as string;
  expect(line).toMatch(/^tessera-signer: /);
  expect(line).toMatch(pattern);
  expect(line).not.toMatch(/\bat .+:\d+:\d+/);
  for (const s of secrets) expect(line.toLowerCase()).not.toContain(s.toLowerCase());
  return line;
}

// ---- signing through the controller --------------------------------------------------------------

/** `count` fresh commitments of the node (a commit task). */
async function commitments(count: number): Promise<RequestCommitment[]> {
  const r = await ctl.send({ commit: { keyId, count } });
  expect(r.error?.code, r.error?.message).toBeUndefined();
  return r.commitments!.envelopes.map((e) => {
    const d = decodeCommitment(suite, openEnvelope(e, PayloadKind.SIGNING_COMMITMENT).payload);
    return { ...d.commitment, nonceId: d.nonceId };
  });
}

/** A commitment of signer-2 (computed locally; only the node under test is a process). */
function theirs(): RequestCommitment {
  const { commitment } = commit((dkg.get('signer-2') as DkgOutput).share);
  return { ...commitment, nonceId: new Uint8Array(randomBytes(12)) };
}

interface Used {
  request: Uint8Array;
  /** The same intent and commitments under another session id: another request on the same nonce. */
  altered: Uint8Array;
  share: Uint8Array;
  nonceId: string;
}

/** Signs one request with the node's commitment `mine`; checks and returns the share. */
async function signWith(mine: RequestCommitment): Promise<Used> {
  const message = new Uint8Array(randomBytes(32));
  const intent = createSignIntent(requester, {
    suite,
    keyId,
    message,
    requestId: new Uint8Array(randomBytes(16)),
    notAfter: Date.now() + 600_000,
  });
  const cs = [mine, theirs()];
  const request = encodeSignRequest({
    suite,
    sessionId: new Uint8Array(randomBytes(16)),
    keyId,
    epoch: 0,
    intent,
    commitments: cs,
  });
  const r = await ctl.send({ sign: request });
  expect(r.error?.code, r.error?.message).toBeUndefined();
  const env = openEnvelope(r.envelope as Uint8Array, PayloadKind.SIGNATURE_SHARE);
  expect(equalBytes(env.sender, (ids[0] as ParticipantIdentity).public.signKey)).toBe(true);
  const s = decodeSignatureShare(suite, env.payload);
  expect(toHex(s.requestDigest)).toBe(toHex(sha256(request)));
  expect(new SigningSession((dkg.get('signer-1') as DkgOutput).key, message, cs).verifyShare('signer-1', s.share)).toBe(
    true,
  );
  const altered = encodeSignRequest({
    suite,
    sessionId: new Uint8Array(randomBytes(16)),
    keyId,
    epoch: 0,
    intent,
    commitments: cs,
  });
  return { request, altered, share: s.share, nonceId: new TextDecoder().decode(mine.nonceId) };
}

/**
 * The safety property: every replay of a used nonce gets the very share it got before, or a
 * refusal — never a new share. Returns the refusal codes seen.
 */
async function replaysSafe(used: Used[]): Promise<string[]> {
  const codes: string[] = [];
  for (const u of used) {
    const same = await ctl.send({ sign: u.request });
    if (same.body === 'envelope') {
      const s = decodeSignatureShare(
        suite,
        openEnvelope(same.envelope as Uint8Array, PayloadKind.SIGNATURE_SHARE).payload,
      );
      expect(toHex(s.share), `identical replay on ${u.nonceId} must get the identical share`).toBe(toHex(u.share));
      codes.push('SAME_SHARE');
    } else {
      expect(REPLAY_REFUSALS, same.error?.message).toContain(same.error?.code);
      codes.push(same.error?.code as string);
    }
    const other = await ctl.send({ sign: u.altered });
    expect(other.body, `another request on used nonce ${u.nonceId} must be refused`).toBe('error');
    expect(other.envelope ?? new Uint8Array(0)).toHaveLength(0);
    expect(REPLAY_REFUSALS, other.error?.message).toContain(other.error?.code);
    codes.push(other.error?.code as string);
  }
  return codes;
}

/**
 * The common history before a fault: run A makes commitments (their fresh records end up in a
 * table file once the node restarts), run B signs two requests with them (their consumed
 * records are in the newest log file). Both stop cleanly.
 */
async function history(node: Node): Promise<Used[]> {
  let p = await startLinked(node);
  // Run A: the commitments a coordinator would pool. A link discards unused nonces, so run B
  // asks again; run A's records make the table file below run B's log.
  await commitments(4);
  expect(await stop(p)).toBe(0);
  p = await startLinked(node);
  const mine = await commitments(4);
  const used = [await signWith(mine[0] as RequestCommitment), await signWith(mine[1] as RequestCommitment)];
  // Before the fault, replays are answered from the ledger: the same share, or NONCE_REUSED.
  expect(await replaysSafe(used)).toEqual(['SAME_SHARE', 'NONCE_REUSED', 'SAME_SHARE', 'NONCE_REUSED']);
  expect(await stop(p)).toBe(0);
  return used;
}

function newest(dataDir: string, ext: '.log' | '.ldb'): string {
  const files = readdirSync(dataDir)
    .filter((f) => f.endsWith(ext) && statSync(join(dataDir, f)).size > 0)
    .sort();
  const f = files[files.length - 1];
  if (!f) throw new Error(`no non-empty ${ext} file in ${dataDir}: ${readdirSync(dataDir).join(' ')}`);
  return join(dataDir, f);
}

/** Byte offset of the `nth` occurrence of store key `nonce/<id>` in a LevelDB file (keys are stored in clear). */
function recordOffset(file: string, nonceId: string, nth: number): number {
  const buf = readFileSync(file);
  const needle = Buffer.from(`nonce/${nonceId}`);
  let at = -1;
  for (let i = 0; i < nth; i++) {
    at = buf.indexOf(needle, at + 1);
    if (at < 0) throw new Error(`record ${i + 1} of nonce/${nonceId} not found in ${file}`);
  }
  return at;
}

function overwriteAt(file: string, at: number, len: number): string {
  const size = statSync(file).size;
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, Buffer.alloc(len, 0xa5), 0, len, at);
  } finally {
    closeSync(fd);
  }
  return `${file.split('/').pop()} (${size} bytes): ${len} bytes overwritten at ${at}`;
}

function truncateAt(file: string, at: number): string {
  const size = statSync(file).size;
  truncateSync(file, at);
  return `${file.split('/').pop()} cut from ${size} to ${at} bytes`;
}

/** After a fault: the node either refuses to start cleanly, or links, answers replays safely, and signs fresh or refuses typed. */
async function afterFault(node: Node, fault: string): Promise<string> {
  const o = await start(node);
  if (o.kind === 'stuck') {
    await stop(o.proc);
    throw new Error(`${fault}: the node neither exited nor linked within 15 s; stderr: ${o.stderr}`);
  }
  if (o.kind === 'refused') {
    const line = expectCleanRefusal(o, /corrupt|LevelDB|store/i);
    return `refused to start: "${line}"`;
  }
  const codes = await replaysSafe(used.get(node.name) as Used[]);
  // Fresh nonces still sign, or the node refuses what it cannot read with a typed error.
  let fresh: string;
  const c = await ctl.send({ commit: { keyId, count: 2 } });
  if (c.body === 'commitments') {
    const mine = c.commitments!.envelopes.map((e) => {
      const d = decodeCommitment(suite, openEnvelope(e, PayloadKind.SIGNING_COMMITMENT).payload);
      return { ...d.commitment, nonceId: d.nonceId };
    });
    await signWith(mine[0] as RequestCommitment);
    fresh = 'a new request signs';
  } else {
    expect(c.error?.code).toMatch(/^STORE_(CORRUPT|UNAVAILABLE)$/);
    fresh = `new commitments refused ${c.error?.code}`;
  }
  expect(await stop(o.proc)).toBe(0);
  return `started; replays of used nonces: ${codes.join(', ')}; ${fresh}`;
}

const used = new Map<string, Used[]>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-storage-faults-'));
  pki = await createDevPki(join(dir, 'pki'), ['coordinator', 'signer-1']);
  ctl = await startController(pki.certs.coordinator);
  dkg = runLocalDkg(suite, 2, ids, undefined, ['phone-1']);
}, 30_000);

afterAll(async () => {
  for (const p of procs) await stop(p).catch(() => {});
  await ctl?.server.close(500);
  try {
    execFileSync('umount', [join(dir, 'tmpfs')], { stdio: 'ignore' });
  } catch {
    // not mounted
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
  console.log(['storage faults:', ...summary.map((s) => `  ${s}`)].join('\n'));
});

// ---- the cases ---------------------------------------------------------------------------------

describe('storage faults on a real signer process', () => {
  it('a wrong KEK: the node refuses to start with one line naming the KEK problem (no stack, no key material); the right KEK still opens it', async () => {
    const node = await provision('wrong-kek');
    const right = readFileSync(node.kekFile, 'utf8').trim();
    const wrong = randomBytes(32).toString('hex');
    writeFileSync(node.kekFile, wrong);
    const line = expectCleanRefusal(
      await start(node),
      /key-encryption key does not open .*KEK local:[0-9a-f]{16}.*given local:[0-9a-f]{16}/,
      [right, wrong],
    );
    expect(line).toContain(node.dataDir);
    // A malformed and a missing KEK file: the same kind of refusal, naming the file.
    writeFileSync(node.kekFile, 'not a key\n');
    expectCleanRefusal(await start(node), /KEK file .* expected 64 hex characters/, ['not a key']);
    unlinkSync(node.kekFile);
    expectCleanRefusal(await start(node), /KEK file .* not found/);
    // The store was not harmed: the right KEK opens it and the node signs.
    writeFileSync(node.kekFile, right, { mode: 0o600 });
    const p = await startLinked(node);
    await signWith((await commitments(1))[0] as RequestCommitment);
    expect(await stop(p)).toBe(0);
    summary.push(
      `wrong KEK: refused to start: "${line}"; malformed and missing KEK files refused alike; the right KEK opens and signs`,
    );
  }, 60_000);

  const faults: [string, (n: Node, used: Used[]) => string][] = [
    // The consumed records of the used nonces are in the newest log; their fresh records (made in
    // the same run) are before them. Hitting the first consumed record loses it and everything
    // after it in its block: the used nonces look fresh again (a rollback).
    [
      'a corrupted log file (bytes overwritten on the consumed record of a used nonce, mid-file)',
      (n, u) => {
        const f = newest(n.dataDir, '.log');
        return overwriteAt(f, recordOffset(f, (u[0] as Used).nonceId, 2), 32);
      },
    ],
    [
      'a truncated log file (the newest .log cut at the consumed record of a used nonce)',
      (n, u) => {
        const f = newest(n.dataDir, '.log');
        return truncateAt(f, recordOffset(f, (u[0] as Used).nonceId, 2));
      },
    ],
    [
      'a corrupted table file (bytes overwritten in the middle of the newest .ldb)',
      (n) => {
        const f = newest(n.dataDir, '.ldb');
        return overwriteAt(f, Math.floor(statSync(f).size / 2), 256);
      },
    ],
    [
      'a truncated table file (the newest .ldb cut in half)',
      (n) => {
        const f = newest(n.dataDir, '.ldb');
        return truncateAt(f, Math.floor(statSync(f).size / 2));
      },
    ],
  ];

  it.each(faults)(
    '%s: refuses to start or refuses typed, and never signs with a used nonce',
    async (name, fault) => {
      const node = await provision(`fault-${faults.findIndex((f) => f[0] === name)}`);
      const u = await history(node);
      used.set(node.name, u);
      const what = fault(node, u);
      const outcome = await afterFault(node, what);
      summary.push(`${name} — ${what} — ${outcome}`);
    },
    90_000,
  );

  // A truncated (or corrupted) log can lose a SYNCED record. For online nonces that is harmless:
  // a rolled-back nonce looks fresh, and every link discards fresh nonces before it says hello
  // (the cases above: NONCE_UNKNOWN). Device reservations are kept across links, so a
  // reservation whose consumed record was lost would be fresh again. Regression (found by this
  // test): the co-signer completed a second, different package with the same nonce. Now every
  // reservation use is journalled outside LevelDB (packages/signer/src/spent.ts) before the
  // share leaves, and the journal refuses the second package.
  describe('a device reservation rolled back by a truncated log', () => {
    let again: LinkResult | undefined;
    it('setup: a reservation used by one package; the log cut at its consumed record; the node restarts', async () => {
      const node = await provision('reservation-rollback');
      const key = (dkg.get('signer-1') as DkgOutput).key;
      const phone = dkg.get('phone-1') as DkgOutput;
      // Run A: the phone's reservation (its fresh record ends up in a table file).
      let p = await startLinked(node);
      const r = await ctl.send({ reserve: { keyId, device: 'phone-1', count: 1, ttlMs: 3_600_000 } });
      expect(r.error?.code, r.error?.message).toBeUndefined();
      const reservation = openReservation(key, r.reservations!.envelopes[0] as Uint8Array);
      expect(await stop(p)).toBe(0);
      const pkg = (text: string) =>
        createOfflinePackage({
          key,
          share: phone.share,
          keyId,
          epoch: 0,
          device: 'phone-1',
          message: new TextEncoder().encode(text),
          reservations: [reservation],
          createdAt: Date.now(),
        });
      const first = pkg('pay 10 to bob, offline');
      const second = pkg('pay 1000 to mallory, offline');
      // Run B: the first package completes; a second on the same reservation is refused.
      p = await startLinked(node);
      expect((await ctl.send({ complete: first.bytes })).body).toBe('envelope');
      expect((await ctl.send({ complete: second.bytes })).error?.code).toBe('RESERVATION_USED');
      expect(await stop(p)).toBe(0);
      const log = newest(node.dataDir, '.log');
      const what = truncateAt(
        log,
        recordOffset(log, `r.${toHex(utf8ToBytes('phone-1'))}.${keyId}.${toHex(reservation.nonceId)}`, 1),
      );
      p = await startLinked(node);
      again = await ctl.send({ complete: second.bytes });
      expect(await stop(p)).toBe(0);
      summary.push(
        `reservation rollback — ${what} — a second package on the used reservation got ${again.body === 'envelope' ? 'A SHARE (its nonce signed two messages)' : `refused ${again.error?.code}`}`,
      );
    }, 60_000);

    it('the co-signer refuses a second package on the used reservation (the spent journal survives the damaged log)', () => {
      expect(again).toBeDefined();
      expect(again?.body).toBe('error');
      expect(['RESERVATION_USED', 'RESERVATION_UNKNOWN', 'STORE_CORRUPT']).toContain(again?.error?.code);
    });
  });

  it('disk full: signing is refused with a clear error and no share leaves; when space returns the node signs again; no used nonce is ever reused', async () => {
    const mnt = join(dir, 'tmpfs');
    mkdirSync(mnt, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tessera-disk-full', mnt], { stdio: 'pipe' });
    } catch (e) {
      throw new Error(
        `the disk-full case mounts a small tmpfs and needs root (mount -t tmpfs): ${String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim()}`,
      );
    }
    const node = await provision('disk-full', join(mnt, 'data'));
    let p = await startLinked(node);
    const mine = await commitments(12);
    const before = [await signWith(mine[0] as RequestCommitment)];
    // Fill the file system to the last byte.
    const filler = join(mnt, 'filler');
    const fd = openSync(filler, 'w');
    let filled = 0;
    for (const chunk of [1 << 20, 1 << 16, 1 << 12, 1 << 9, 1]) {
      try {
        for (;;) filled += writeSync(fd, Buffer.alloc(chunk, 1));
      } catch (e) {
        expect((e as { code?: string }).code).toBe('ENOSPC');
      }
    }
    closeSync(fd);
    // Sign while the disk is full: each request is refused with a typed error and no share, or
    // (while LevelDB still has room in a page it already holds) signs normally.
    const refusals: string[] = [];
    const whileFull: Used[] = [];
    for (let i = 1; i <= 6; i++) {
      const message = new Uint8Array(randomBytes(32));
      const intent = createSignIntent(requester, {
        suite,
        keyId,
        message,
        requestId: new Uint8Array(randomBytes(16)),
        notAfter: Date.now() + 600_000,
      });
      const cs = [mine[i] as RequestCommitment, theirs()];
      const request = encodeSignRequest({
        suite,
        sessionId: new Uint8Array(randomBytes(16)),
        keyId,
        epoch: 0,
        intent,
        commitments: cs,
      });
      const r = await ctl.send({ sign: request });
      if (r.body === 'envelope') {
        const share = decodeSignatureShare(
          suite,
          openEnvelope(r.envelope as Uint8Array, PayloadKind.SIGNATURE_SHARE).payload,
        ).share;
        whileFull.push({
          request,
          altered: encodeSignRequest({
            suite,
            sessionId: new Uint8Array(randomBytes(16)),
            keyId,
            epoch: 0,
            intent,
            commitments: cs,
          }),
          share,
          nonceId: new TextDecoder().decode((mine[i] as RequestCommitment).nonceId),
        });
        continue;
      }
      expect(r.envelope ?? new Uint8Array(0)).toHaveLength(0);
      expect(r.error?.code, r.error?.message).toBe('STORE_UNAVAILABLE');
      refusals.push(r.error?.message as string);
    }
    expect(refusals.length, 'a full disk must make signing fail').toBeGreaterThan(0);
    const message = refusals[0] as string;
    expect(message).toMatch(/no space left on device/i);
    // Space returns. The store took no write since the failed one (a partial record may sit in
    // its log): signing is still refused, clearly, until the node is restarted.
    unlinkSync(filler);
    const still = await ctl.send({
      sign: encodeSignRequest({
        suite,
        sessionId: new Uint8Array(randomBytes(16)),
        keyId,
        epoch: 0,
        intent: createSignIntent(requester, {
          suite,
          keyId,
          message: new Uint8Array(32),
          requestId: new Uint8Array(randomBytes(16)),
          notAfter: Date.now() + 600_000,
        }),
        commitments: [mine[8] as RequestCommitment, theirs()],
      }),
    });
    expect(still.error?.code).toBe('STORE_UNAVAILABLE');
    expect(still.error?.message).toMatch(/an earlier write failed .*no space left on device.*restart the node/);
    expect(await stop(p)).toBe(0);
    p = await startLinked(node);
    const recovered = 'after a restart';
    const more = [await signWith((await commitments(1))[0] as RequestCommitment)];
    // Every nonce used before, during or after the episode: replays get the same share or a refusal.
    const codes = await replaysSafe([...before, ...whileFull, ...more]);
    expect(await stop(p)).toBe(0);
    // And after a restart too (the log written around the full disk is replayed on open).
    const o = await start(node);
    expect(o.kind).toBe('linked');
    const afterRestart = await replaysSafe([...before, ...whileFull, ...more]);
    await stop((o as Extract<Outcome, { kind: 'linked' }>).proc);
    // No record written around the episode was lost: every identical replay still gets its share.
    // (Regression: a failed append left a partial record in LevelDB's log, and the records the
    // node wrote after space returned — consumed nonces whose shares it had released — were
    // dropped by the log recovery at the next start. The store now takes no writes after a
    // failed one until it is reopened.)
    expect(afterRestart.filter((_, i) => i % 2 === 0)).toEqual(
      [...before, ...whileFull, ...more].map(() => 'SAME_SHARE'),
    );
    summary.push(
      `disk full (tmpfs 8 MB, ${filled} filler bytes): ${refusals.length}/6 sign requests refused (${whileFull.length} signed from space LevelDB already held) with "${message}"; recovered ${recovered}; replays: ${codes.join(', ')}; after a restart: ${afterRestart.join(', ')}`,
    );
  }, 90_000);
});

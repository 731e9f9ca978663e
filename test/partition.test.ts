/**
 * Network partitions during DKG, signing, refresh and reshare, on network namespaces (test/netns.ts):
 * the coordinator, four signers and the API client each on their own namespace, joined by veth
 * pairs to a bridge. Before each operation signer-1's link is slowed with a token-bucket filter
 * (tbf, both directions) so the operation lasts long enough; its cable is then pulled (bridge
 * port down: frames silently dropped, no FIN, no RST) part-way through — the test checks that the
 * cut landed while the call was still running.
 *
 * Each operation must either complete or fail with a typed error (a stable Tessera code, never
 * INTERNAL), and afterwards the key must be intact and usable:
 *   - its epoch, threshold and participants are those of the outcome (the previous epoch when it
 *     aborted, the next one when it committed) and its public key never changes;
 *   - while signer-1 is still cut off, the surviving quorum signs and the signature verifies with
 *     the suite's plain verifier;
 *   - once the cable is back, signer-1 signs again in a quorum (it caught up, or it never left
 *     the epoch in force), a further refresh with everyone linked commits, and signer-1 signs at
 *     the new epoch;
 *   - every process's audit chain verifies (the AuditVerify rpc, what `tessera audit verify` calls).
 *
 * Needs root and iproute2 (ip, tc with tbf); it FAILS (never skips) where it cannot build the lab.
 * Time bound: setup 25 s, four scenarios of ≤ 25 s each, teardown 8 s (about 40 s in all here).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ParticipantIdentity, createSignIntent, getSuite, suiteByWireId, toHex, type SuiteId } from '@tessera/core';
import { createDevPki } from '@tessera/runtime';
import { RemoteCallError, createLab, dist, type Lab, type LabClient, startClient } from './netns.js';
import { approved, operators, standingRefresh } from './authority.js';

const SIGNERS = ['signer-1', 'signer-2', 'signer-3', 'signer-4'] as const;
const NODE: Record<string, string> = { 'signer-1': 's1', 'signer-2': 's2', 'signer-3': 's3', 'signer-4': 's4' };
const PORT = 7400;
/**
 * The coordinator's per-task deadline: how long a silent (cut-off) signer can stall a step. 3 s,
 * not 2: a CI run lost a whole test when four uncut calibration reshares on the slowed link each
 * had one step outlast 2 s while an ECDSA setup file computed beside it.
 */
const TASK_TIMEOUT_MS = 3000;
/** signer-1's link while it is "slow": 160 kbit/s each way (a DKG round's bundle takes ~100 ms). */
const SLOW_RATE = '160kbit';
/** Codes an operation may fail with under a partition (typed: cluster.proto's error list). */
const TYPED =
  /^(UNAVAILABLE|NO_QUORUM|ABORTED|DEADLINE_EXCEEDED|CONFIRMATION_MISMATCH|UNEXPECTED_MESSAGE|[A-Z]+_[A-Z_]+)$/;

interface KeyInfo {
  keyId: string;
  suite: number;
  threshold: number;
  participants: string[];
  publicKey: Buffer;
  epoch: number;
}
interface SignResult {
  signature: Buffer;
  signers: string[];
  publicKey: Buffer;
}
interface Status {
  participants: { id: string; connected: boolean }[];
}
interface Audit {
  coordinator: { ok: boolean; count: number; reason: string };
  participants: {
    id: string;
    reachable: boolean;
    report: { ok: boolean; count: number; reason: string } | null;
    error: string;
  }[];
}

let lab: Lab | undefined;
let client: LabClient;
let requester: ParticipantIdentity;
const timings: Record<string, unknown> = {};
let setupError: Error | undefined;
function requireSetup(): void {
  if (setupError) throw setupError;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}\n${daemonLogs()}`,
      );
    await sleep(everyMs);
  }
}

function daemonLogs(): string {
  return (lab?.procs ?? [])
    .map(
      (p) =>
        `--- ${p.name} (exit ${p.child.exitCode ?? p.child.signalCode ?? 'running'})\n${p.stderr.join('').slice(-1500)}`,
    )
    .join('\n');
}

const status = () => client.call<Status>('Status', {}, { deadlineMs: 2000 });
const connectedIn = (s: Status, id: string) => s.participants.find((p) => p.id === id)?.connected ?? false;

async function keyInfo(keyId: string): Promise<KeyInfo> {
  const { keys } = await client.call<{ keys: KeyInfo[] }>('ListKeys', {}, { deadlineMs: 5000 });
  const k = keys.find((x) => x.keyId === keyId);
  if (!k) throw new Error(`no key ${keyId}`);
  return k;
}

function suiteOf(k: KeyInfo): SuiteId {
  return (suiteByWireId(k.suite) as { id: SuiteId }).id;
}

/** Signs a fresh message with `keyId`, preferring `signers`; checks the signature with the plain verifier. */
async function signAndVerify(keyId: string, signers: string[] = []): Promise<SignResult> {
  const k = await keyInfo(keyId);
  const suite = getSuite(suiteOf(k));
  const message = new Uint8Array(randomBytes(32));
  const intent = createSignIntent(requester, {
    suite,
    keyId,
    message,
    requestId: new Uint8Array(randomBytes(16)),
    notAfter: Date.now() + 120_000,
  });
  const r = await client.call<SignResult>('Sign', { signers }, { intent, deadlineMs: 15_000 });
  expect(
    suite.verify(new Uint8Array(r.signature), message, new Uint8Array(k.publicKey)),
    `signature of ${keyId} by ${r.signers.join('+')}`,
  ).toBe(true);
  expect(toHex(r.publicKey)).toBe(toHex(k.publicKey));
  return r;
}

/** tbf on both ends of `node`'s cable: frames to and from it are paced at `rate`. */
function slow(node: string, rate = SLOW_RATE): void {
  const l = lab as Lab;
  const args = ['qdisc', 'replace', 'dev', 'X', 'root', 'tbf', 'rate', rate, 'burst', '3000', 'latency', '3s'];
  tc(
    l.ns(node),
    args.map((a) => (a === 'X' ? 'eth0' : a)),
  );
  tc(
    l.bridgeNs,
    args.map((a) => (a === 'X' ? l.veth(node) : a)),
  );
}

function unslow(node: string): void {
  const l = lab as Lab;
  for (const [ns, dev] of [
    [l.ns(node), 'eth0'],
    [l.bridgeNs, l.veth(node)],
  ] as const) {
    try {
      tc(ns, ['qdisc', 'del', 'dev', dev, 'root']);
    } catch (e) {
      if (!/No such file|Cannot delete qdisc with handle of zero|not found/i.test((e as Error).message)) throw e;
    }
  }
}

function tc(ns: string, args: string[]): void {
  try {
    execFileSync('ip', ['netns', 'exec', ns, 'tc', ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(
      `\`tc ${args.join(' ')}\` in ${ns} failed (this test needs tc with the tbf qdisc; it does not skip): ${err.stderr?.toString().trim() || err.message}`,
    );
  }
}

interface Outcome<T, B = undefined> {
  ok: boolean;
  value?: T;
  code?: string;
  message?: string;
  startedAt: number;
  cutAt: number;
  endedAt: number;
  tries: number;
  before: B;
}

/**
 * Runs `op()` with signer-1 slowed and pulls its cable `cutAfterMs` into the call; returns how the
 * call ended. If the call ended before the cut, or within 25 ms after it (it was quicker than
 * calibrated), the cable is put back and `op` runs again with the cut earlier, up to four times:
 * the outcome returned is one where the cut landed while the call ran (`cutAt < endedAt`).
 */
async function withCut<T, B = undefined>(
  op: () => Promise<T>,
  cutAfterMs: number,
  prepare?: () => Promise<B>,
): Promise<Outcome<T, B>> {
  let at = cutAfterMs;
  for (let tries = 1; ; tries++) {
    // The state the final try starts from (an earlier try may have completed and changed it).
    const before = (prepare ? await prepare() : undefined) as B;
    slow('s1');
    const startedAt = Date.now();
    const settled = op().then(
      (value) => ({ ok: true as const, value, endedAt: Date.now() }),
      (e: unknown) => ({
        ok: false as const,
        code: e instanceof RemoteCallError ? e.code : 'NOT_A_REMOTE_ERROR',
        message: (e as Error).message,
        endedAt: Date.now(),
      }),
    );
    let early = false;
    await Promise.race([sleep(at), settled.then(() => void (early = true))]);
    if (early && tries < 4) {
      unslow('s1');
      at = Math.max(1, Math.floor(at / 2));
      continue;
    }
    (lab as Lab).cut('s1');
    const cutAt = Date.now();
    const r = await settled;
    // Ended within a few ms of the cut: it had as good as finished. Put the cable back and aim earlier.
    if (r.endedAt - cutAt < 25 && tries < 4) {
      unslow('s1');
      (lab as Lab).restore('s1');
      await waitFor(
        'signer-1 reachable again',
        25_000,
        async () => ((await audit()).participants.find((p) => p.id === 'signer-1')?.reachable ? true : undefined),
        250,
      );
      at = Math.max(1, Math.floor(at * 0.6));
      continue;
    }
    return { ...r, startedAt, cutAt, tries, before } as Outcome<T, B>;
  }
}

/** Puts signer-1's cable back (unslowed) and waits until the coordinator reaches it with a task again. */
async function heal(): Promise<void> {
  unslow('s1');
  (lab as Lab).restore('s1');
  const t0 = Date.now();
  await waitFor(
    'signer-1 to answer the coordinator again',
    25_000,
    async () => {
      const a = await audit();
      return a.participants.find((p) => p.id === 'signer-1')?.reachable ? a : undefined;
    },
    250,
  );
  (timings.healMs as number[]).push(Date.now() - t0);
}

const audit = () => client.call<Audit>('AuditVerify', {}, { deadlineMs: 8_000 });

/** Every process's audit chain verifies (each linked signer reports its own). */
async function auditIntact(): Promise<void> {
  const a = await audit();
  expect(a.coordinator.ok, `coordinator audit: ${a.coordinator.reason}`).toBe(true);
  for (const id of SIGNERS) {
    const p = a.participants.find((x) => x.id === id);
    expect(p?.reachable, `${id} reachable for the audit`).toBe(true);
    expect(p?.report?.ok, `${id} audit chain: ${p?.report?.reason ?? p?.error}`).toBe(true);
  }
}

function expectTyped(o: Outcome<unknown, unknown>, what: string): void {
  if (o.ok) return;
  expect(o.code, `${what} failed with ${o.code}: ${o.message}`).toMatch(TYPED);
  expect(o.code).not.toBe('INTERNAL');
}

function record(name: string, o: Outcome<unknown, unknown>, extra: Record<string, unknown> = {}): void {
  timings[name] = {
    outcome: o.ok ? 'completed' : `aborted ${o.code}`,
    cutAfterMs: o.cutAt - o.startedAt,
    callMs: o.endedAt - o.startedAt,
    tries: o.tries,
    ...extra,
  };
}

/**
 * After an operation on `keyId` (outcome known): the key is intact — `expected` epoch, threshold and
 * participants, same public key — the surviving quorum signs while signer-1 is still cut off,
 * and after healing signer-1 signs in a quorum, a full refresh commits and signer-1 signs at the
 * new epoch.
 */
async function expectIntactAndUsable(
  keyId: string,
  publicKey: string,
  expected: { epoch: number; threshold: number; participants: string[] },
  survivors: string[],
  opts: { signer1Signs?: boolean } = {},
): Promise<void> {
  const signer1Signs = (opts.signer1Signs ?? true) && expected.participants.includes('signer-1');
  const k = await keyInfo(keyId);
  expect({
    epoch: k.epoch,
    threshold: k.threshold,
    participants: [...k.participants].sort(),
    publicKey: toHex(k.publicKey),
  }).toEqual({ ...expected, participants: [...expected.participants].sort(), publicKey });
  const r = await signAndVerify(keyId, survivors);
  expect([...r.signers].sort()).toEqual([...survivors].sort());
  await heal();
  if (signer1Signs) {
    // signer-1 is first in the preferred list, so it is in the first quorum tried; a refusal
    // (say, an epoch it does not hold) would make the coordinator drop it and sign without it.
    const others = survivors.slice(0, expected.threshold - 1);
    const again = await signAndVerify(keyId, ['signer-1', ...others]);
    expect(again.signers, 'signer-1 signs again after the partition').toContain('signer-1');
  }
  const refreshed = await client.call<KeyInfo>(
    'Refresh',
    { keyId, authorisation: standingRefresh() },
    { deadlineMs: 20_000 },
  );
  expect(refreshed.epoch).toBe(expected.epoch + 1);
  expect(toHex(refreshed.publicKey)).toBe(publicKey);
  if (signer1Signs) {
    const after = await signAndVerify(keyId, ['signer-1', ...survivors.slice(0, expected.threshold - 1)]);
    expect(after.signers).toContain('signer-1');
  } else await signAndVerify(keyId);
  await auditIntact();
}

beforeAll(async () => {
  timings.healMs = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      setup(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`setup took over 23 s\n${daemonLogs()}`)), 23_000);
      }),
    ]);
  } catch (e) {
    setupError = new Error(`partition lab setup failed: ${(e as Error).message}`, { cause: e });
  } finally {
    clearTimeout(timer);
  }
}, 25_000);

async function setup(): Promise<void> {
  const t0 = Date.now();
  lab = createLab(['coord', 's1', 's2', 's3', 's4', 'cli']);
  // Fail loudly, before anything else, if tc or tbf is missing.
  slow('s1');
  unslow('s1');
  const dir = lab.dir;
  const coordAddr = lab.addr('coord');
  const pki = await createDevPki(join(dir, 'pki'), ['coordinator', 'client', ...SIGNERS], { hosts: [coordAddr] });
  requester = ParticipantIdentity.generate('test-client');
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
      host: coordAddr,
      port: PORT,
      kekFile: kekFile('coordinator'),
      tls: pki.certs.coordinator,
      participants: [...SIGNERS],
      taskTimeoutMs: TASK_TIMEOUT_MS,
    }),
  );
  const coordinator = lab.spawnNode('coord', 'coordinator', [dist('coordinator', 'main.js'), '--config', coordCfg]);
  const port = (await coordinator.ready).port;
  if (port !== PORT) throw new Error(`coordinator serves on ${String(port)}, expected ${PORT}`);
  const signers = SIGNERS.map((id) => {
    const cfg = join(dir, `${id}.json`);
    mkdirSync(join(dir, id), { recursive: true });
    writeFileSync(
      cfg,
      JSON.stringify({
        id,
        dataDir: join(dir, id, 'data'),
        coordinator: `${coordAddr}:${PORT}`,
        kekFile: kekFile(id),
        tls: pki.certs[id],
        policy: {
          allowKeygen: true,
          allowUnpinnedPeers: true,
          operators,
          requesters: [{ id: 'test-client', publicKey: toHex(requester.public.signKey), keys: ['*'] }],
        },
      }),
    );
    return lab!.spawnNode(NODE[id]!, id, [dist('signer', 'main.js'), '--config', cfg]);
  });
  await Promise.all(signers.map((s) => s.ready));
  client = await startClient(lab, 'cli', { address: `${coordAddr}:${PORT}`, tls: pki.certs.client! });
  await waitFor('all four signers linked to the coordinator', 12_000, async () => {
    const s = await status();
    return SIGNERS.every((id) => connectedIn(s, id)) ? s : undefined;
  });
  timings.setupMs = Date.now() - t0;
}

afterAll(async () => {
  try {
    await lab?.destroy();
  } finally {
    // eslint-disable-next-line no-console
    console.log(`partition timings: ${JSON.stringify(timings)}`);
  }
}, 8_000);

/** How long an operation takes with signer-1 slowed and nothing cut (the quicker of two runs), to aim the cut at its middle. */
async function calibrate<T>(op: () => Promise<T>): Promise<{ ms: number; value: T }> {
  slow('s1');
  try {
    // Two uncut runs, the faster counts. A run that aborts UNAVAILABLE on the slowed link (a busy
    // machine: the suite runs three files at once) is a measurement lost, not the test's subject:
    // it is run again, at most six times in all.
    let best: { ms: number; value: T } | undefined;
    let ok = 0;
    for (let attempt = 0; ok < 2; attempt++) {
      const t0 = Date.now();
      let value: T;
      try {
        value = await op();
      } catch (e) {
        if ((e as { code?: string }).code !== 'UNAVAILABLE' || attempt >= 5) throw e;
        continue;
      }
      const ms = Date.now() - t0;
      ok++;
      if (!best || ms < best.ms) best = { ms, value };
    }
    return best as { ms: number; value: T };
  } finally {
    unslow('s1');
  }
}

/** Whatever a test did, signer-1's cable is back and unslowed for the next one. */
afterEach(async () => {
  if (!lab || setupError) return;
  unslow('s1');
  lab.restore('s1');
  await waitFor(
    'signer-1 reachable after the test',
    25_000,
    async () => ((await audit()).participants.find((p) => p.id === 'signer-1')?.reachable ? true : undefined),
    250,
  ).catch(() => undefined);
}, 30_000);

const THREE = ['signer-1', 'signer-2', 'signer-3'];

describe('partitions (network namespaces): each operation completes or aborts, and the key stays intact and usable', () => {
  // Each lifecycle operation twice: cut early (it should abort) and late (it may commit while
  // signer-1 misses the last step, which it must then catch up on).
  for (const [when, frac] of [
    ['early', 0.3],
    ['late', 0.85],
  ] as const) {
    it(`DKG: signer-1 cut off ${when} in the DKG`, async () => {
      requireSetup();
      const keygen = () =>
        client.call<KeyInfo>(
          'Keygen',
          { suite: getSuite('secp256k1-tr').wireId, threshold: 2, participants: THREE },
          { deadlineMs: 20_000 },
        );
      const cal = await calibrate(keygen);
      const o = await withCut(keygen, Math.round(cal.ms * frac), async () =>
        (await client.call<{ keys: KeyInfo[] }>('ListKeys', {})).keys.map((k) => k.keyId),
      );
      const before = o.before;
      record(`dkg-${when}`, o, { calibratedMs: cal.ms });
      expect(o.cutAt, 'the cut landed while the DKG ran').toBeLessThan(o.endedAt);
      expectTyped(o, 'keygen');
      const after = (await client.call<{ keys: KeyInfo[] }>('ListKeys', {})).keys;
      if (o.ok) {
        // Completed: the new key signs with the survivors and, once healed, with signer-1.
        const k = o.value as KeyInfo;
        expect(after.map((x) => x.keyId)).toContain(k.keyId);
        await expectIntactAndUsable(k.keyId, toHex(k.publicKey), { epoch: 0, threshold: 2, participants: THREE }, [
          'signer-2',
          'signer-3',
        ]);
      } else {
        // Aborted: no key appeared; the key made before (the "previous" state) still signs, with
        // the survivors now and with signer-1 once healed; and a DKG with everyone works again.
        expect(after.map((x) => x.keyId).sort()).toEqual([...before].sort());
        await expectIntactAndUsable(
          cal.value.keyId,
          toHex(cal.value.publicKey),
          { epoch: 0, threshold: 2, participants: THREE },
          ['signer-2', 'signer-3'],
        );
        const fresh = await keygen();
        await signAndVerify(fresh.keyId, ['signer-1', 'signer-2']);
      }
    }, 90_000);

    it(`refresh: signer-1 cut off ${when} in the refresh`, async () => {
      requireSetup();
      const k = await client.call<KeyInfo>(
        'Keygen',
        { suite: getSuite('p256').wireId, threshold: 2, participants: THREE },
        { deadlineMs: 20_000 },
      );
      const pub = toHex(k.publicKey);
      const refresh = () =>
        client.call<KeyInfo>('Refresh', { keyId: k.keyId, authorisation: standingRefresh() }, { deadlineMs: 20_000 });
      const cal = await calibrate(refresh);
      const o = await withCut(refresh, Math.round(cal.ms * frac), () => keyInfo(k.keyId));
      record(`refresh-${when}`, o, { calibratedMs: cal.ms, fromEpoch: o.before.epoch });
      expect(o.cutAt, 'the cut landed while the refresh ran').toBeLessThan(o.endedAt);
      expectTyped(o, 'refresh');
      if (o.ok) expect(toHex((o.value as KeyInfo).publicKey)).toBe(pub);
      await expectIntactAndUsable(
        k.keyId,
        pub,
        { epoch: o.before.epoch + (o.ok ? 1 : 0), threshold: 2, participants: THREE },
        ['signer-2', 'signer-3'],
      );
    }, 90_000);

    it(`reshare 2-of-3 → 3-of-4: signer-1 cut off ${when} in the reshare`, async () => {
      requireSetup();
      const k = await client.call<KeyInfo>(
        'Keygen',
        { suite: getSuite('secp256k1').wireId, threshold: 2, participants: THREE },
        { deadlineMs: 20_000 },
      );
      const pub = toHex(k.publicKey);
      // Calibrate on a key of its own (a reshare changes the key it runs on).
      const probe = await client.call<KeyInfo>(
        'Keygen',
        { suite: getSuite('secp256k1').wireId, threshold: 2, participants: THREE },
        { deadlineMs: 20_000 },
      );
      // Each attempt is approved for the epoch it starts from (an approval names the epoch); the
      // PrepareLifecycle round trip is part of the timed call, well before any cut lands.
      const approve = async (keyId: string) =>
        approved(
          new Uint8Array(
            (
              await client.call<{ authorisation: Uint8Array }>(
                'PrepareLifecycle',
                { keyId, operation: 'reshare', threshold: 3, participants: [...SIGNERS] },
                { deadlineMs: 5000 },
              )
            ).authorisation,
          ),
        );
      const reshare = (keyId: string) => async () =>
        client.call<KeyInfo>(
          'Reshare',
          { keyId, threshold: 3, participants: [...SIGNERS], revoke: [], authorisation: await approve(keyId) },
          { deadlineMs: 20_000 },
        );
      const cal = await calibrate(reshare(probe.keyId));
      expect(cal.value.threshold).toBe(3);
      const o = await withCut(reshare(k.keyId), Math.round(cal.ms * frac), () => keyInfo(k.keyId));
      const b = o.before;
      record(`reshare-${when}`, o, {
        calibratedMs: cal.ms,
        from: `${b.threshold}-of-${b.participants.length} epoch ${b.epoch}`,
      });
      expect(o.cutAt, 'the cut landed while the reshare ran').toBeLessThan(o.endedAt);
      expectTyped(o, 'reshare');
      // Completed: 3-of-4 at the next epoch; aborted: what it was before. Same public key either way.
      const expected = o.ok
        ? { epoch: b.epoch + 1, threshold: 3, participants: [...SIGNERS] }
        : { epoch: b.epoch, threshold: b.threshold, participants: [...b.participants] };
      if (o.ok) expect(toHex((o.value as KeyInfo).publicKey)).toBe(pub);
      const survivors = expected.participants.filter((p) => p !== 'signer-1').slice(0, expected.threshold);
      await expectIntactAndUsable(k.keyId, pub, expected, survivors);
    }, 90_000);
  }
  it('signing: signer-1 cut off while signatures are in flight', async () => {
    requireSetup();
    const k = await client.call<KeyInfo>(
      'Keygen',
      { suite: getSuite('ed25519').wireId, threshold: 2, participants: THREE },
      { deadlineMs: 20_000 },
    );
    // Ten requests, one every 40 ms, signer-1 preferred: some are answered before the cut, the
    // ones after it meet a silent signer-1 and must be retried by the coordinator without it.
    const batch = async () => {
      const suite = getSuite('ed25519');
      return Promise.allSettled(
        Array.from({ length: 10 }, async (_, i) => {
          await sleep(40 * i);
          const message = new Uint8Array(randomBytes(32));
          const intent = createSignIntent(requester, {
            suite,
            keyId: k.keyId,
            message,
            requestId: new Uint8Array(randomBytes(16)),
            notAfter: Date.now() + 120_000,
          });
          const r = await client.call<SignResult>(
            'Sign',
            { signers: ['signer-1', 'signer-2'] },
            { intent, deadlineMs: 15_000 },
          );
          return { r, message };
        }),
      );
    };
    const cal = await calibrate(batch);
    expect(cal.value.every((x) => x.status === 'fulfilled')).toBe(true);
    const o = await withCut(batch, Math.max(1, Math.round(cal.ms * 0.4)));
    const results = o.value ?? [];
    const done = results.filter((x) => x.status === 'fulfilled');
    const withoutSigner1 = done.filter(
      (x) => x.status === 'fulfilled' && !x.value.r.signers.includes('signer-1'),
    ).length;
    record('sign', o, {
      calibratedMs: cal.ms,
      completed: done.length,
      failed: results.length - done.length,
      signedWithoutSigner1: withoutSigner1,
    });
    expect(o.ok).toBe(true);
    expect(o.cutAt, 'the cut landed while signatures were in flight').toBeLessThan(o.endedAt);
    // The partition was felt: some requests were signed by the quorum without signer-1.
    expect(withoutSigner1, JSON.stringify(timings.sign)).toBeGreaterThan(0);
    for (const x of results) {
      if (x.status === 'fulfilled') {
        const { r, message } = x.value;
        expect(getSuite('ed25519').verify(new Uint8Array(r.signature), message, new Uint8Array(k.publicKey))).toBe(
          true,
        );
      } else {
        const e = x.reason as RemoteCallError;
        expect(e.code, e.message).toMatch(TYPED);
      }
    }
    // A sign attempt that timed out on signer-1 has it tried last for a minute (until it
    // reconnects), so here its health after healing shows in the refresh it must take part in.
    await expectIntactAndUsable(
      k.keyId,
      toHex(k.publicKey),
      { epoch: 0, threshold: 2, participants: THREE },
      ['signer-2', 'signer-3'],
      { signer1Signs: false },
    );
  }, 40_000);
});

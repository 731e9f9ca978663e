/**
 * Fuzzing the cluster's RPC surfaces with fast-check:
 *
 * 1. the Coordinator API of a real coordinator process (arbitrary request objects through the
 *    proto-loader client, and raw bytes sent as-is through a byte-passthrough client);
 * 2. the ParticipantLink stream (junk before the hello, bad signatures, a mismatched client
 *    certificate, raw byte frames), after which the real signers must still be linked and sign;
 * 3. SignerEngine.handle, in process, with junk and mutated-genuine coordinator tasks.
 *
 * Invariants only: codes and statuses, never message texts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import {
  LINK_DST,
  ParticipantIdentity,
  PayloadKind,
  concatBytes,
  createSignIntent,
  decodeCommitment,
  decodeMessage,
  dkgSessionHashOfParams,
  encodeDkgParams,
  encodeSignRequest,
  getSuite,
  openEnvelope,
  participantToWire,
  toHex,
  utf8ToBytes,
  type LinkResult,
  type LinkTask,
  type SuiteId,
} from '@tessera/core';
import { RemoteError, channelCredentials, fromServiceError, grpc, loadTessera, type TlsFiles } from '@tessera/runtime';
import { SealedStore, kekFromBytes } from '@tessera/store';
import { SignerEngine } from '@tessera/signer';
import { Coordinator, type ParticipantHandle } from '@tessera/coordinator';
import { startCluster, type TestCluster } from './harness.js';
import { operators } from './authority.js';

const S = grpc.status;
const CHANNEL_OPTS = { 'grpc.ssl_target_name_override': 'coordinator' };
const SIGNER_IDS = ['signer-1', 'signer-2', 'signer-3'];
const STACK = '    at ';
const rand = (n: number) => new Uint8Array(randomBytes(n));

let c: TestCluster;
/** The real signers' pids at start: a signer replaced by an impostor's stream would show another pid. */
const signerPids = new Map<string, number>();
/** An ed25519 key made by the real cluster, so fuzzed Sign requests can name a key that exists. */
let clusterKey: { keyId: string; publicKey: Buffer };
const closers: Array<() => void> = [];

beforeAll(async () => {
  c = await startCluster(3);
  for (const id of SIGNER_IDS) signerPids.set(id, c.signers.get(id)!.child.pid!);
  const k = await c.keygen('ed25519', 2);
  clusterKey = { keyId: k.keyId, publicKey: k.publicKey };
}, 60_000);
afterAll(async () => {
  for (const close of closers) close();
  await c?.stop();
});

// ---- generic arbitraries ------------------------------------------------------------------------

const junk = fc.anything({
  maxDepth: 2,
  maxKeys: 4,
  withBigInt: true,
  withTypedArray: true,
  withDate: true,
  withNullPrototype: true,
  withUnicodeString: true,
  withSparseArray: true,
});
const numberish = fc.oneof(
  fc.integer(),
  fc.constantFrom(
    0,
    1,
    2,
    3,
    4,
    5,
    -1,
    2 ** 31,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 53,
    Number.MAX_SAFE_INTEGER,
    -(2 ** 63),
    2 ** 64,
    NaN,
    Infinity,
    -Infinity,
    0.5,
    -0,
  ),
  fc.double(),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.string({ maxLength: 8 }),
);
const bytesish = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  fc.uint8Array({ maxLength: 100 }),
  fc.constantFrom(Buffer.alloc(0), Buffer.alloc(32), Buffer.alloc(64, 0xff), Buffer.alloc(70_000, 1)),
  fc.string({ maxLength: 40 }),
  junk,
);
const idish = fc.oneof(
  fc.constantFrom(
    'signer-1',
    'signer-2',
    'signer-3',
    'client',
    'coordinator',
    'ghost',
    '',
    ' ',
    'a'.repeat(65),
    'signer-1\n    at x (y.js:1:1)',
  ),
  fc.string({ unit: 'binary', maxLength: 20 }),
  junk,
);
const fieldName = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom(
    'suite',
    'threshold',
    'participants',
    'intent',
    'signers',
    'toJSON',
    'constructor',
    '__proto__',
    'hello',
    'result',
  ),
);
const randomObject = fc.dictionary(fieldName, junk, { maxKeys: 5 });

// A tiny protobuf writer, so raw bytes can also be wire-valid frames with random fields.
type PField = {
  no: number;
  v:
    | { t: 'varint'; x: bigint }
    | { t: 'bytes'; x: Uint8Array }
    | { t: 'i32'; x: Uint8Array }
    | { t: 'i64'; x: Uint8Array }
    | { t: 'msg'; x: PField[] };
};
function varint(n: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return out;
}
function encodeFields(fields: PField[]): Uint8Array {
  const out: number[] = [];
  for (const f of fields) {
    const wt = f.v.t === 'varint' ? 0 : f.v.t === 'i64' ? 1 : f.v.t === 'i32' ? 5 : 2;
    out.push(...varint((BigInt(f.no) << 3n) | BigInt(wt)));
    if (f.v.t === 'varint') out.push(...varint(f.v.x));
    else if (f.v.t === 'i32' || f.v.t === 'i64') out.push(...f.v.x);
    else {
      const body = f.v.t === 'msg' ? encodeFields(f.v.x) : f.v.x;
      out.push(...varint(BigInt(body.length)), ...body);
    }
  }
  return new Uint8Array(out);
}
const { protoFields } = fc.letrec<{ protoFields: PField[]; field: PField }>((tie) => ({
  protoFields: fc.array(tie('field'), { maxLength: 6 }),
  field: fc.record({
    no: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 2 ** 29 - 1 })),
    v: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.record({
        t: fc.constant('varint' as const),
        x: fc.oneof(
          fc.bigInt({ min: 0n, max: 8n }),
          fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          fc.bigInt({ min: -(2n ** 63n), max: -1n }),
        ),
      }),
      fc.record({ t: fc.constant('bytes' as const), x: fc.uint8Array({ maxLength: 80 }) }),
      fc.record({ t: fc.constant('i32' as const), x: fc.uint8Array({ minLength: 4, maxLength: 4 }) }),
      fc.record({ t: fc.constant('i64' as const), x: fc.uint8Array({ minLength: 8, maxLength: 8 }) }),
      fc.record({ t: fc.constant('msg' as const), x: tie('protoFields') as fc.Arbitrary<PField[]> }),
    ),
  }) as fc.Arbitrary<PField>,
}));
const rawBytes = fc.oneof(
  fc.uint8Array({ maxLength: 400 }),
  protoFields.map(encodeFields),
  fc.constantFrom(
    new Uint8Array(0),
    new Uint8Array([0x08]),
    new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
    new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
  ),
);

// ---- calling the API ------------------------------------------------------------------------------

type Outcome = { ok: true; res: unknown } | { ok: false; raw: grpc.ServiceError; err: RemoteError };

function settle(resolve: (o: Outcome) => void) {
  return (err: grpc.ServiceError | null, res?: unknown) =>
    resolve(err ? { ok: false, raw: err, err: fromServiceError(err) } : { ok: true, res });
}

/** A call through the generated client (proto-loader serialises whatever it is given). */
function apiCall(method: string, req: unknown, deadlineMs = 15_000): Promise<Outcome> {
  const fn = (c.client as unknown as Record<string, (...a: unknown[]) => unknown>)[method]!;
  return new Promise((resolve) => {
    fn.call(c.client, req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, settle(resolve));
  });
}

let rawClient: grpc.Client;
/** Sends `bytes` as the request message exactly as given: no serialisation on this side. */
function rawCall(method: string, bytes: Uint8Array, deadlineMs = 15_000): Promise<Outcome> {
  return new Promise((resolve) => {
    rawClient.makeUnaryRequest(
      `/tessera.v1.Coordinator/${method}`,
      (x: Buffer) => x,
      (x: Buffer) => x,
      Buffer.from(bytes),
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      settle(resolve),
    );
  });
}

const hasDetail = (e: grpc.ServiceError) => (e.metadata?.get('tessera-error-bin') ?? []).length > 0;

/**
 * A failed call must be a RemoteError with a code, no stack trace, and not a sign of a dead or
 * hung server: no DEADLINE_EXCEEDED, and UNAVAILABLE only as a deliberate typed answer (it
 * carries tessera-error-bin) with a code the contract allows for that method.
 */
function expectSane(method: string, o: Outcome, unavailableCodes: readonly string[] = []): void {
  if (o.ok) return;
  const what = `${method}: ${o.err.code}/${o.err.status}`;
  expect(o.err, what).toBeInstanceOf(RemoteError);
  expect(o.err.code, what).toMatch(/^[A-Z][A-Z0-9_]*$/);
  expect(o.err.message, what).not.toContain(STACK);
  expect(String(o.raw.details ?? ''), what).not.toContain(STACK);
  expect(o.err.status, what).not.toBe(S.DEADLINE_EXCEEDED);
  expect(o.err.status, what).not.toBe(S.OK);
  if (o.err.status === S.UNAVAILABLE) {
    expect(hasDetail(o.raw), `${what}: transport-level UNAVAILABLE (did the server die?)`).toBe(true);
    expect(unavailableCodes, what).toContain(o.err.code);
  }
}

function expectCoordinatorAlive(): void {
  expect(c.coordinator.child.exitCode).toBeNull();
  expect(c.coordinator.child.signalCode).toBeNull();
}

// ---- 1. Coordinator API -------------------------------------------------------------------------

describe('Coordinator API under fuzzed input', () => {
  beforeAll(() => {
    rawClient = new grpc.Client(c.address, channelCredentials(c.tls.client), CHANNEL_OPTS);
    closers.push(() => rawClient.close());
  });

  it('Keygen: arbitrary request objects get a result or a typed error', async () => {
    // Near-valid requests reach the DKG itself (some succeed: a real key is made).
    const nearValid = fc.record({
      suite: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 6 })),
      threshold: fc.integer({ min: 1, max: 4 }),
      participants: fc.oneof(
        fc.constant([] as string[]),
        fc.subarray(SIGNER_IDS),
        fc.subarray(['signer-1', 'signer-2', 'signer-3', 'signer-1', 'ghost', 'client']),
      ),
    });
    const loose = fc.record(
      { suite: numberish, threshold: numberish, participants: fc.oneof(fc.array(idish, { maxLength: 5 }), junk) },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof({ arbitrary: nearValid, weight: 3 }, loose, randomObject, junk), async (req) => {
        const o = await apiCall('Keygen', req);
        // UNAVAILABLE: a known participant (e.g. the test's 'client' link, earlier) is offline;
        // an unknown one ('ghost') is INVALID_ARGUMENT.
        expectSane('Keygen', o, ['UNAVAILABLE']);
        if (o.ok) {
          const k = o.res as { keyId: string; publicKey: Buffer; participants: string[] };
          expect(k.keyId).toMatch(/^[0-9a-f]{16}$/);
          expect(k.publicKey.length).toBeGreaterThan(0);
          for (const p of k.participants) expect(SIGNER_IDS).toContain(p);
        }
      }),
      { numRuns: 80 },
    );
    expectCoordinatorAlive();
  });

  it('Sign: arbitrary request objects, junk envelopes and well-formed intents of strangers', async () => {
    const suiteIds: SuiteId[] = ['ed25519', 'secp256k1-tr', 'secp256k1', 'p256'];
    const envelopeish = fc.record(
      { version: numberish, kind: numberish, sender: bytesish, payload: bytesish, signature: bytesish },
      { requiredKeys: [] },
    );
    // Intents that decode and verify: signed by the real requester or by a stranger, for the
    // cluster's key or another, fresh or expired, intact or with one byte changed.
    const realIntent = fc
      .record({
        who: fc.constantFrom('requester', 'stranger'),
        suite: fc.oneof({ arbitrary: fc.constant<SuiteId>('ed25519'), weight: 3 }, fc.constantFrom(...suiteIds)),
        keyId: fc.oneof({ arbitrary: fc.constant('cluster'), weight: 3 }, fc.stringMatching(/^[0-9a-f]{16}$/)),
        message: fc.uint8Array({ maxLength: 64 }),
        requestIdLen: fc.integer({ min: 16, max: 32 }),
        notAfter: fc.oneof({ arbitrary: fc.constant(60_000), weight: 3 }, fc.integer({ min: -1e9, max: 1e9 })),
        flip: fc.oneof(
          { arbitrary: fc.constant(null), weight: 3 },
          fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })),
        ),
      })
      .map((r) => {
        const keyId = r.keyId === 'cluster' ? clusterKey.keyId : r.keyId;
        const signer = r.who === 'requester' ? c.requester : ParticipantIdentity.generate('stranger');
        const bytes = createSignIntent(signer, {
          suite: getSuite(r.suite),
          keyId,
          message: r.message,
          requestId: rand(r.requestIdLen),
          notAfter: Date.now() + r.notAfter,
        });
        const original = decodeMessage('Envelope', bytes);
        if (r.flip) bytes[r.flip[0] % bytes.length]! ^= r.flip[1];
        let intent: unknown;
        try {
          intent = decodeMessage('Envelope', bytes);
        } catch {
          intent = { payload: Buffer.from(bytes) };
        }
        // The request carries the decoded envelope, not its bytes: a flip the decoder reads back
        // as the same envelope (e.g. in a tag's wire type it skips) changed nothing that is signed.
        const flip = r.flip && !isDeepStrictEqual(intent, original) ? r.flip : null;
        return { intent, meta: { ...r, keyId, flip } };
      });
    const req = fc.oneof(
      {
        weight: 2,
        arbitrary: realIntent.chain((ri) =>
          fc
            .record({ signers: fc.oneof(fc.constant([] as unknown[]), fc.array(idish, { maxLength: 4 })) })
            .map((x) => ({
              req: { intent: ri.intent, signers: x.signers },
              meta: ri.meta as typeof ri.meta | undefined,
            })),
        ),
      },
      fc
        .record(
          { intent: fc.oneof(envelopeish, junk), signers: fc.oneof(fc.array(idish, { maxLength: 4 }), junk) },
          { requiredKeys: [] },
        )
        .map((r) => ({ req: r as unknown, meta: undefined })),
      fc.oneof(randomObject, junk).map((r) => ({ req: r, meta: undefined })),
    );
    await fc.assert(
      fc.asyncProperty(req, async ({ req: r, meta }) => {
        const o = await apiCall('Sign', r);
        expectSane('Sign', o, ['NO_QUORUM', 'UNAVAILABLE']);
        if (o.ok) {
          // Only the real requester's intact, unexpired intent for the cluster's key can be signed.
          expect(meta).toBeDefined();
          expect(meta).toMatchObject({ who: 'requester', keyId: clusterKey.keyId, suite: 'ed25519', flip: null });
          const res = o.res as { signature: Buffer; keyId: string };
          expect(res.keyId).toBe(clusterKey.keyId);
          expect(
            getSuite('ed25519').verify(
              new Uint8Array(res.signature),
              meta!.message,
              new Uint8Array(clusterKey.publicKey),
            ),
          ).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
    expectCoordinatorAlive();
  });

  it.each(['ListKeys', 'Status', 'AuditVerify'])('%s: arbitrary request objects', async (method) => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(randomObject, junk, fc.constant({})), async (req) => {
        const o = await apiCall(method, req);
        expectSane(method, o);
      }),
      { numRuns: method === 'AuditVerify' ? 15 : 60 },
    );
    expectCoordinatorAlive();
  });

  it('raw request bytes to every Coordinator method get a response or a typed error', async () => {
    const methods = ['Keygen', 'Sign', 'ListKeys', 'Status', 'AuditVerify', 'ListPackages'];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...methods), rawBytes, async (method, bytes) => {
        const o = await rawCall(method, bytes);
        expectSane(
          `${method}(raw)`,
          o,
          method === 'Keygen' ? ['UNAVAILABLE'] : method === 'Sign' ? ['NO_QUORUM', 'UNAVAILABLE'] : [],
        );
      }),
      { numRuns: 150 },
    );
    // An unknown method of the service, and a message larger than the default 4 MiB limit.
    expectSane('Nope(raw)', await rawCall('Nope', rand(10)));
    expectSane('Sign(raw, 5 MiB)', await rawCall('Sign', rand(5 * 1024 * 1024)));
    expectCoordinatorAlive();
  });
});

// ---- 2. ParticipantLink -----------------------------------------------------------------------

interface LinkStream {
  s: grpc.ClientDuplexStream<unknown, unknown>;
  challenge: Promise<Uint8Array>;
  status: Promise<grpc.StatusObject>;
}

/** Statuses a refused link may end with. */
const REFUSED = [S.UNAUTHENTICATED, S.INVALID_ARGUMENT];

function linkClient(tls: TlsFiles): grpc.Client {
  const { ParticipantLink } = loadTessera();
  const client = new ParticipantLink(c.address, channelCredentials(tls), CHANNEL_OPTS);
  closers.push(() => client.close());
  return client;
}

function openLink(client: grpc.Client): LinkStream {
  const s = (
    client as unknown as { Connect(): grpc.ClientDuplexStream<unknown, { challenge?: { nonce: Uint8Array } }> }
  ).Connect();
  const challenge = new Promise<Uint8Array>((resolve) =>
    s.on(
      'data',
      (m: { challenge?: { nonce: Uint8Array } }) => m.challenge && resolve(new Uint8Array(m.challenge.nonce)),
    ),
  );
  const status = new Promise<grpc.StatusObject>((resolve) => s.on('status', resolve));
  s.on('error', () => {});
  return { s: s as grpc.ClientDuplexStream<unknown, unknown>, challenge, status };
}

function openRawLink(client: grpc.Client): LinkStream {
  const s = client.makeBidiStreamRequest(
    '/tessera.v1.ParticipantLink/Connect',
    (x: Buffer) => x,
    (x: Buffer) => x,
  );
  const challenge = new Promise<Uint8Array>((resolve) => s.once('data', (b: Buffer) => resolve(new Uint8Array(b))));
  const status = new Promise<grpc.StatusObject>((resolve) => s.on('status', resolve));
  s.on('error', () => {});
  return { s: s as unknown as grpc.ClientDuplexStream<unknown, unknown>, challenge, status };
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(t));
}

/** The stream must be closed by the coordinator with a refusal, not left open and not OK. */
async function expectRefused(l: LinkStream, what: string, extra: readonly number[] = []): Promise<grpc.StatusObject> {
  const st = await within(l.status, 5_000, what);
  expect([...REFUSED, ...extra], `${what}: status ${st.code} ${st.details}`).toContain(st.code);
  expect(st.details, what).not.toMatch(/\n\s+at .+:\d+:\d+/);
  return st;
}

const helloFor = (id: ParticipantIdentity, signature: Uint8Array, pid = 4242) => ({
  hello: { participant: participantToWire(id.public), signature, metricsUrl: '', pid, keys: [] },
});
const linkSigning = (nonce: Uint8Array) => concatBytes(utf8ToBytes(LINK_DST), nonce);

async function status(): Promise<{ participants: { id: string; connected: boolean; pid: number }[] }> {
  const o = await apiCall('Status', {});
  expect(o.ok).toBe(true);
  return (o as { res: { participants: { id: string; connected: boolean; pid: number }[] } }).res;
}

async function expectRealSignersLinked(): Promise<void> {
  const st = await status();
  for (const id of SIGNER_IDS) {
    const p = st.participants.find((x) => x.id === id);
    expect(p, id).toMatchObject({ connected: true, pid: signerPids.get(id) });
  }
  for (const p of st.participants) if (!SIGNER_IDS.includes(p.id)) expect(p.connected, `${p.id} is linked`).toBe(false);
}

describe('ParticipantLink under fuzzed and hostile streams', () => {
  let asClient: grpc.Client;
  let asSigner1: grpc.Client;
  beforeAll(() => {
    asClient = linkClient(c.tls.client!);
    asSigner1 = linkClient(c.tls['signer-1']!);
  });

  it('control: a correct hello under a matching certificate is accepted, and leaves when it closes', async () => {
    const id = ParticipantIdentity.generate('client');
    const l = openLink(asClient);
    l.s.write(helloFor(id, id.sign(linkSigning(await l.challenge))));
    await c.waitConnected(['client']);
    expect((await status()).participants.find((p) => p.id === 'client')?.pid).toBe(4242);
    l.s.cancel();
    await c.waitConnected(['client'], false);
  });

  it('(a) arbitrary LinkUp messages before a hello are refused', async () => {
    const participantish = fc.oneof(
      junk,
      fc.record({ id: idish, signKey: bytesish, encKey: bytesish }, { requiredKeys: [] }),
    );
    const helloish = fc.record(
      {
        participant: participantish,
        signature: bytesish,
        metricsUrl: fc.oneof(fc.string(), junk),
        pid: numberish,
        keys: fc.oneof(fc.array(fc.string(), { maxLength: 3 }), junk),
      },
      { requiredKeys: [] },
    );
    const resultish = fc.record(
      { taskId: numberish, error: junk, envelope: bytesish, ok: junk, dkgDone: junk, commitments: junk, audit: junk },
      { requiredKeys: [] },
    );
    // (null/undefined cannot be written to a Node stream at all)
    const linkUp = fc
      .oneof(
        fc.record({ hello: helloish }),
        fc.record({ result: resultish }),
        fc.record({ hello: helloish, result: resultish }),
        randomObject,
        junk,
      )
      .filter((m) => m !== null && m !== undefined);
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(linkUp, { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        async (signerCert, msgs, thenValid) => {
          const l = openLink(signerCert ? asSigner1 : asClient);
          const nonce = await within(l.challenge, 5_000, 'challenge');
          for (const m of msgs) l.s.write(m);
          // A correct hello right behind the refused message must not be taken on the dead stream.
          if (thenValid && !signerCert) {
            const id = ParticipantIdentity.generate('client');
            l.s.write(helloFor(id, id.sign(linkSigning(nonce))));
          }
          const st = await within(l.status, 5_000, 'status');
          // A message this side cannot even serialise never reaches the server: the call fails here.
          if (st.code === S.INTERNAL && /serializ/i.test(st.details)) return;
          expect(REFUSED, `status ${st.code} ${st.details}`).toContain(st.code);
        },
      ),
      { numRuns: 60 },
    );
    await new Promise((r) => setTimeout(r, 200));
    await expectRealSignersLinked();
  });

  it('(b) a hello whose signature is wrong in any way is refused, even under a matching certificate', async () => {
    const variant = fc.oneof(
      fc.constant({ kind: 'random' as const }),
      fc.constant({ kind: 'empty' as const }),
      fc.constant({ kind: 'noDst' as const }),
      fc.constant({ kind: 'otherNonce' as const }),
      fc.constant({ kind: 'otherKey' as const }),
      fc.constant({ kind: 'wrongDst' as const }),
      fc.constant({ kind: 'claimOtherKey' as const }),
      fc.record({ kind: fc.constant('truncate' as const), n: fc.integer({ min: 0, max: 63 }) }),
      fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
      fc.record({
        kind: fc.constant('flip' as const),
        i: fc.integer({ min: 0, max: 63 }),
        bit: fc.integer({ min: 0, max: 7 }),
      }),
    );
    await fc.assert(
      fc.asyncProperty(variant, async (v) => {
        // The id matches the certificate's CN, so only the signature can be at fault.
        const id = ParticipantIdentity.generate('client');
        const l = openLink(asClient);
        const nonce = await within(l.challenge, 5_000, 'challenge');
        const good = id.sign(linkSigning(nonce));
        let sig: Uint8Array;
        let who = id;
        switch (v.kind) {
          case 'random':
            sig = rand(64);
            break;
          case 'empty':
            sig = new Uint8Array(0);
            break;
          case 'noDst':
            sig = id.sign(nonce);
            break;
          case 'otherNonce':
            sig = id.sign(linkSigning(rand(32)));
            break;
          case 'otherKey':
            sig = ParticipantIdentity.generate('client').sign(linkSigning(nonce));
            break;
          case 'wrongDst':
            sig = id.sign(concatBytes(utf8ToBytes('tessera/v1/link\0'), nonce));
            break;
          case 'claimOtherKey':
            sig = good;
            who = ParticipantIdentity.generate('client');
            break;
          case 'truncate':
            sig = good.slice(0, v.n);
            break;
          case 'extend':
            sig = concatBytes(good, v.extra);
            break;
          case 'flip':
            sig = good.slice();
            sig[v.i]! ^= 1 << v.bit;
            break;
        }
        l.s.write(helloFor(who, sig));
        await expectRefused(l, `bad signature (${v.kind})`);
      }),
      { numRuns: 60 },
    );
    const st = await status();
    expect(st.participants.find((p) => p.id === 'client')?.connected ?? false).toBe(false);
  });

  it('(c) a correctly signed hello whose id is not the certificate CN is refused', async () => {
    const ids = fc.oneof(
      fc.constantFrom('mallory', 'signer-2', 'signer-3', 'client', 'coordinator', 'signer-10', 'Signer-1', 'signer-1.'),
      fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/).filter((s) => s !== 'signer-1'),
    );
    await fc.assert(
      fc.asyncProperty(ids, async (name) => {
        const id = ParticipantIdentity.generate(name);
        const l = openLink(asSigner1);
        l.s.write(helloFor(id, id.sign(linkSigning(await within(l.challenge, 5_000, 'challenge')))));
        await expectRefused(l, `hello of ${name} under CN signer-1`);
      }),
      { numRuns: 40, examples: [['mallory']] },
    );
    // Nobody displaced a real signer, and none of the claimed ids got linked.
    await expectRealSignersLinked();
  });

  it('(d) raw random frames on the link stream are refused', async () => {
    // LinkUp-shaped frames too: field 1 (hello) or 2 (result) holding random fields.
    const linkFrame = fc.oneof(
      rawBytes,
      fc
        .tuple(fc.constantFrom(1, 2), protoFields)
        .map(([no, inner]) => encodeFields([{ no, v: { t: 'msg', x: inner } }])),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(linkFrame, { minLength: 1, maxLength: 3 }),
        async (signerCert, frames) => {
          const l = openRawLink(signerCert ? asSigner1 : asClient);
          const first = await within(l.challenge, 5_000, 'challenge');
          expect(first.length).toBeGreaterThan(32);
          for (const f of frames) l.s.write(Buffer.from(f));
          // INTERNAL: grpc-js could not decode the frame as a LinkUp (never reaches the handler).
          await expectRefused(l, 'raw frames', [S.INTERNAL]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('(e) a linked participant answering its tasks with junk makes Keygen fail typed, nothing else', async () => {
    const str = fc.string({ unit: 'binary', maxLength: 24 });
    const answer = fc.record({
      stray: fc.option(fc.nat()),
      body: fc.constantFrom('error', 'envelope', 'dkgDone', 'commitments', 'ok', 'audit', 'none'),
      error: fc.record({
        code: fc.oneof(fc.constantFrom('UNAVAILABLE', 'NO_QUORUM', 'OK', '', 'POLICY_DENIED', 'BAD_SHARE'), str),
        message: str,
        culprits: fc.array(fc.oneof(fc.constantFrom('signer-1', 'signer-2'), str), { maxLength: 2 }),
      }),
      envelope: fc.uint8Array({ maxLength: 200 }),
      dkgDone: fc.record({
        keyId: str,
        keyDigest: fc.uint8Array({ maxLength: 40 }),
        keyRecord: fc.uint8Array({ maxLength: 200 }),
      }),
      commitments: fc.record({ envelopes: fc.array(fc.uint8Array({ maxLength: 100 }), { maxLength: 3 }) }),
      ok: fc.boolean(),
      audit: fc.record({ ok: fc.boolean(), count: fc.nat(), head: str, problemSeq: fc.nat(), reason: str }),
    });
    let run = 0;
    let prev: LinkStream | undefined;
    await fc.assert(
      fc.asyncProperty(answer, fc.constantFrom(1, 2, 3, 4), async (a, suite) => {
        const pid = 20_000 + run++;
        const id = ParticipantIdentity.generate('client');
        const l = openLink(asClient);
        l.s.on('data', (m: { task?: { taskId: number } }) => {
          if (!m.task) return;
          if (a.stray !== null) l.s.write({ result: { taskId: a.stray, ok: true } });
          const r: Record<string, unknown> = { taskId: m.task.taskId };
          if (a.body !== 'none') r[a.body] = (a as Record<string, unknown>)[a.body];
          l.s.write({ result: r });
        });
        l.s.write(helloFor(id, id.sign(linkSigning(await within(l.challenge, 5_000, 'challenge'))), pid));
        // The newer stream replaces the previous one; wait until it is the one registered.
        for (let i = 0; (await status()).participants.find((p) => p.id === 'client')?.pid !== pid; i++) {
          expect(i).toBeLessThan(200);
          await new Promise((r) => setTimeout(r, 10));
        }
        prev?.s.cancel();
        prev = l;
        const o = await apiCall('Keygen', { suite, threshold: 2, participants: ['signer-1', 'signer-2', 'client'] });
        // A typed refusal with a well-formed code (a participant's junk code is not relayed), no
        // stack, and no sign of a dead or hung server.
        expect(o.ok).toBe(false);
        if (o.ok) return;
        expect(o.err).toBeInstanceOf(RemoteError);
        expect(o.err.code).toMatch(/^[A-Z][A-Z_]{1,39}$/);
        expect(o.err.message).not.toContain(STACK);
        expect(o.err.status).not.toBe(S.DEADLINE_EXCEEDED);
        if (o.err.status === S.UNAVAILABLE) expect(hasDetail(o.raw)).toBe(true);
        // A wrong kind of answer is a protocol violation; and whatever the junk claims, no honest
        // signer is ever blamed (only the junk participant may be named).
        // The coordinator saw that itself, so it names the junk participant.
        if (['dkgDone', 'commitments', 'ok', 'audit', 'none'].includes(a.body))
          expect(o.err).toMatchObject({ code: 'UNEXPECTED_MESSAGE', status: S.ABORTED, culprits: ['client'] });
        for (const culprit of o.err.culprits) expect(culprit).toBe('client');
        expectCoordinatorAlive();
      }),
      { numRuns: 40 },
    );
    prev?.s.cancel();
    await c.waitConnected(['client'], false);
    await expectRealSignersLinked();
  });

  it('(f) a hello for a roster member signed by a key other than its roster key is refused UNAUTHENTICATED, even under its certificate; one log line says why', async () => {
    const refusals = () =>
      c.coordinator.stderr
        .join('')
        .split('\n')
        .filter((l) => l.includes('participant link refused') && l.includes('roster'));
    const before = refusals().length;
    // The id and the certificate CN match and the hello is correctly signed, by a key of its
    // own: only the key differs from the one signer-1 has in the cluster key's roster.
    const impostor = ParticipantIdentity.generate('signer-1');
    const l = openLink(asSigner1);
    l.s.write(helloFor(impostor, impostor.sign(linkSigning(await within(l.challenge, 5_000, 'challenge'))), 31_337));
    const st = await expectRefused(l, 'hello of signer-1 with another key');
    expect(st.code).toBe(S.UNAUTHENTICATED);
    expect(st.details).toMatch(/signer-1.*roster/);
    // The real signer-1 was never displaced, and still signs with the key.
    await expectRealSignersLinked();
    const msg = rand(32);
    const r = await c.sign('ed25519', clusterKey.keyId, msg, { signers: ['signer-1', 'signer-2'] });
    expect(getSuite('ed25519').verify(new Uint8Array(r.signature), msg, new Uint8Array(clusterKey.publicKey))).toBe(
      true,
    );
    for (let i = 0; refusals().length === before; i++) {
      expect(i).toBeLessThan(100);
      await new Promise((res) => setTimeout(res, 20));
    }
    const lines = refusals().slice(before);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 40, msg: 'participant link refused' });
  });

  it('after all of it: the coordinator is up, the real signers are linked, and keygen + sign verify', async () => {
    expectCoordinatorAlive();
    await expectRealSignersLinked();
    const key = await c.keygen('ed25519', 2, SIGNER_IDS);
    const msg = rand(48);
    const r = await c.sign('ed25519', key.keyId, msg);
    expect(getSuite('ed25519').verify(new Uint8Array(r.signature), msg, new Uint8Array(key.publicKey))).toBe(true);
    for (const id of SIGNER_IDS) expect(c.signers.get(id)!.child.exitCode, id).toBeNull();
    // Nothing above warn level in any daemon's log, and no uncaught exception on stderr.
    for (const [name, p] of [
      ['coordinator', c.coordinator] as const,
      ...SIGNER_IDS.map((id) => [id, c.signers.get(id)!] as const),
    ]) {
      for (const line of p.stderr.join('').split('\n').filter(Boolean)) {
        let level = 0;
        try {
          level = (JSON.parse(line) as { level?: number }).level ?? 0;
        } catch {
          expect(line, name).not.toMatch(/unhandled|uncaught|TypeError|RangeError|ReferenceError/i);
        }
        expect(level, `${name}: ${line.slice(0, 200)}`).toBeLessThan(50);
      }
    }
  });
});

// ---- 3. SignerEngine.handle -----------------------------------------------------------------------

describe('SignerEngine.handle with junk and mutated coordinator tasks', () => {
  const dirs: string[] = [];
  const stores: SealedStore[] = [];
  const requester = ParticipantIdentity.generate('wallet-api');
  let engines: SignerEngine[];
  let coordinator: Coordinator;
  let coordStore: SealedStore;
  let keyId: string;
  /** Genuine task payloads seen during a real keygen and signature, as seeds for mutation. */
  const seen: { params: Uint8Array[]; envelopes: Uint8Array[]; signs: Uint8Array[]; sessionHashes: Uint8Array[] } = {
    params: [],
    envelopes: [],
    signs: [],
    sessionHashes: [],
  };
  let nextTask = 1;

  async function openStore(): Promise<SealedStore> {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-fuzz-'));
    dirs.push(dir);
    const s = await SealedStore.open(dir, kekFromBytes(rand(32)));
    stores.push(s);
    return s;
  }

  function handles(): ParticipantHandle[] {
    return engines.map((e) => ({
      info: e.identity.public,
      connectedSince: Date.now(),
      async call(task) {
        if (task.body === 'dkgStart' && task.dkgStart) seen.params.push(task.dkgStart.params);
        if (task.body === 'dkgBundle' && task.dkgBundle) {
          seen.envelopes.push(...task.dkgBundle.envelopes);
          seen.sessionHashes.push(task.dkgBundle.sessionHash);
        }
        if (task.body === 'sign' && task.sign) seen.signs.push(task.sign);
        return e.handle({ ...task, taskId: nextTask++ });
      },
    }));
  }

  beforeAll(async () => {
    engines = [];
    for (const [i, id] of SIGNER_IDS.entries()) {
      engines.push(
        new SignerEngine({
          identity: ParticipantIdentity.generate(id),
          store: await openStore(),
          // signer-1, the main target, trusts no requester; the others sign for `requester`.
          policy: {
            allowKeygen: true,
            allowUnpinnedPeers: true,
            operators,
            requesters: i === 0 ? [] : [{ id: 'wallet-api', publicKey: toHex(requester.public.signKey), keys: ['*'] }],
          },
          maxFreshPerKey: 16,
        }),
      );
    }
    coordStore = await openStore();
    coordinator = new Coordinator({ store: coordStore, poolBatch: 4 });
    for (const h of handles()) coordinator.register(h);
    keyId = (await coordinator.keygen({ suite: 'ed25519', threshold: 2 })).keyId;
    const msg = rand(20);
    const r = await coordinator.sign(
      createSignIntent(requester, {
        suite: getSuite('ed25519'),
        keyId,
        message: msg,
        requestId: rand(16),
        notAfter: Date.now() + 60_000,
      }),
      ['signer-2', 'signer-3'],
    );
    expect(getSuite('ed25519').verify(r.signature, msg, r.publicKey)).toBe(true);
    expect(seen.signs.length).toBeGreaterThan(0);
  }, 30_000);

  afterAll(async () => {
    for (const s of stores) await s.close().catch(() => {});
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** Hex of every secret the engine holds that could end up in an error: identity keys and its key share. */
  async function secretsOf(e: SignerEngine): Promise<{ hex: string[]; bytes: Uint8Array[] }> {
    const { signSecret, encSecret } = e.identity.exportSecrets();
    const share = (await e.key(keyId)).share.signingShare();
    const bytes = [signSecret, encSecret, share];
    return { bytes, hex: bytes.map((b) => toHex(b)) };
  }

  function containsBytes(hay: Uint8Array, needle: Uint8Array): boolean {
    return Buffer.from(hay).includes(Buffer.from(needle));
  }

  const LEGIT: Record<string, string[]> = {
    dkgStart: ['envelope'],
    dkgBundle: ['envelope', 'dkgDone'],
    dkgAbort: ['ok'],
    commit: ['commitments'],
    sign: ['envelope'],
    audit: ['audit'],
  };

  async function expectHandled(
    e: SignerEngine,
    task: LinkTask,
    secrets: { hex: string[]; bytes: Uint8Array[] },
  ): Promise<LinkResult> {
    const r = await within(
      Promise.resolve().then(() => e.handle(task)),
      10_000,
      `task ${String(task.body)}`,
    );
    expect(r).toBeTypeOf('object');
    expect(Object.is(r.taskId, task.taskId), 'same taskId').toBe(true);
    if (r.body === 'error') {
      expect(r.error?.code).toMatch(/^[A-Z][A-Z0-9_]*$/);
      expect(typeof r.error?.message).toBe('string');
      const text = `${r.error!.message} ${(r.error!.culprits ?? []).join(' ')}`.toLowerCase();
      expect(text).not.toContain(STACK);
      for (const h of secrets.hex) expect(text.includes(h), 'secret in an error').toBe(false);
    } else {
      expect(LEGIT[String(task.body)] ?? [], `result ${String(r.body)} for task ${String(task.body)}`).toContain(
        r.body,
      );
      expect(r.error).toBeUndefined();
    }
    // No secret in any bytes or strings of the result.
    const walk = (v: unknown): void => {
      if (v instanceof Uint8Array)
        for (const s of secrets.bytes) expect(containsBytes(v, s), 'secret bytes in a result').toBe(false);
      else if (typeof v === 'string')
        for (const h of secrets.hex) expect(v.toLowerCase().includes(h), 'secret hex in a result').toBe(false);
      else if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    };
    walk(r);
    return r;
  }

  const mutate = (seed: fc.Arbitrary<Uint8Array>) =>
    fc
      .tuple(
        seed,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
        fc.option(fc.nat({ max: 2000 })),
      )
      .map(([s, flips, cut]) => {
        const b = s.slice();
        for (const [i, x] of flips) if (b.length) b[i % b.length] = x;
        return cut === null ? b : b.slice(0, cut % (b.length + 1));
      });

  it('signer-1 (no requester trusted): arbitrary tasks always resolve to a typed result', async () => {
    const target = engines[0]!;
    const secrets = await secretsOf(target);
    const others = [engines[1]!.identity, engines[2]!.identity, ParticipantIdentity.generate('outsider')];
    const LIVE = 'live-session';
    const live: Uint8Array[] = [...seen.sessionHashes];

    // DkgParams that decode, with this node in the roster or not, any suite, any threshold.
    const freshParams = fc
      .record({
        suite: fc.constantFrom<SuiteId>('ed25519', 'secp256k1-tr', 'secp256k1', 'p256'),
        threshold: fc.oneof({ arbitrary: fc.integer({ min: 2, max: 3 }), weight: 3 }, fc.integer({ min: 0, max: 5 })),
        roster: fc.oneof(fc.constant<number[]>([0, 1, 2]), fc.subarray([0, 1, 2, 3])),
        dup: fc.oneof({ arbitrary: fc.constant(false), weight: 4 }, fc.constant(true)),
      })
      .map(({ suite, threshold, roster, dup }) => {
        const people = roster.map((i) => (i === 0 ? target.identity.public : others[i - 1]!.public));
        if (dup && people.length) people.push(people[0]!);
        try {
          return encodeDkgParams({ suite: getSuite(suite), sessionId: rand(32), threshold, participants: people });
        } catch {
          return rand(40);
        }
      });
    const bytesField = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      { arbitrary: freshParams, weight: 3 },
      mutate(fc.constantFrom(...seen.params)),
      mutate(fc.constantFrom(...seen.envelopes)),
      mutate(fc.constantFrom(...seen.signs)),
      fc.constantFrom(...seen.params, ...seen.envelopes, ...seen.signs),
    );
    const sessionHash = fc.oneof({ arbitrary: fc.constant(LIVE), weight: 3 }, fc.uint8Array({ maxLength: 40 }), junk);
    const bodyName = fc.oneof(
      {
        arbitrary: fc.constantFrom(
          'dkgStart',
          'dkgStart',
          'dkgBundle',
          'dkgBundle',
          'dkgAbort',
          'commit',
          'sign',
          'audit',
        ),
        weight: 8,
      },
      fc.constantFrom(undefined, '', 'error', 'toString', '__proto__', 'constructor', 'hasOwnProperty'),
      fc.string({ maxLength: 10 }),
    );
    const task = fc.record({
      taskId: fc.oneof(fc.nat(), fc.maxSafeNat(), fc.constantFrom(0, -1, NaN, 1.5, 2 ** 64)),
      body: bodyName,
      dkgStart: fc.oneof(
        {
          arbitrary: fc.record({ params: fc.oneof({ arbitrary: bytesField, weight: 4 }, junk) }, { requiredKeys: [] }),
          weight: 4,
        },
        junk,
      ),
      dkgBundle: fc.oneof(
        {
          weight: 4,
          arbitrary: fc.record(
            {
              sessionHash,
              round: fc.oneof(fc.constantFrom(1, 2, 3), numberish),
              envelopes: fc.oneof(fc.array(fc.oneof(bytesField, junk), { maxLength: 4 }), junk),
            },
            { requiredKeys: [] },
          ),
        },
        junk,
      ),
      dkgAbort: fc.oneof(fc.record({ sessionHash, reason: fc.string() }, { requiredKeys: [] }), junk),
      commit: fc.oneof(
        fc.record(
          { keyId: fc.oneof(fc.constant(keyId), fc.string({ maxLength: 20 }), junk), count: numberish },
          { requiredKeys: [] },
        ),
        junk,
      ),
      sign: fc.oneof(bytesField, junk),
      audit: fc.oneof(fc.constant({}), junk),
    });
    await fc.assert(
      fc.asyncProperty(task, async (t) => {
        const resolve = (sh: unknown) => (sh === LIVE ? (live[live.length - 1] ?? rand(32)) : sh);
        const concrete = { ...t } as Record<string, unknown>;
        if (t.dkgBundle && typeof t.dkgBundle === 'object' && 'sessionHash' in t.dkgBundle)
          concrete.dkgBundle = {
            ...t.dkgBundle,
            sessionHash: resolve((t.dkgBundle as { sessionHash: unknown }).sessionHash),
          };
        if (t.dkgAbort && typeof t.dkgAbort === 'object' && 'sessionHash' in t.dkgAbort)
          concrete.dkgAbort = {
            ...t.dkgAbort,
            sessionHash: resolve((t.dkgAbort as { sessionHash: unknown }).sessionHash),
          };
        const r = await expectHandled(target, concrete as unknown as LinkTask, secrets);
        if (t.body === 'dkgStart' && r.body === 'envelope')
          live.push(dkgSessionHashOfParams((t.dkgStart as { params: Uint8Array }).params));
      }),
      { numRuns: 300 },
    );
  });

  it('signer-1: genuine DKG transcripts with one round tampered for it never end in a silent split', async () => {
    const target = engines[0]!;
    const peers = [engines[1]!, engines[2]!];
    const secrets = await secretsOf(target);
    const how = fc.constantFrom(
      'none',
      'drop',
      'dup',
      'reorder',
      'flip',
      'truncate',
      'foreign',
      'junk',
      'ownOnly',
      'empty',
      'wrongRound',
    );
    const plan = fc.record({
      suite: fc.oneof(
        { arbitrary: fc.constant<SuiteId>('ed25519'), weight: 3 },
        fc.constantFrom<SuiteId>('secp256k1-tr', 'secp256k1', 'p256'),
      ),
      threshold: fc.constantFrom(2, 3),
      round: fc.constantFrom(1, 2, 3),
      how,
      i: fc.nat(),
      x: fc.integer({ min: 1, max: 255 }),
    });
    const tamper = (envs: Uint8Array[], t: { how: string; i: number; x: number }): Uint8Array[] => {
      const n = envs.length;
      const k = t.i % n;
      const out = envs.map((e) => e.slice());
      switch (t.how) {
        case 'drop':
          out.splice(k, 1);
          break;
        case 'dup':
          out.push(out[k]!.slice());
          break;
        case 'reorder':
          out.reverse();
          break;
        case 'flip':
          out[k]![t.i % out[k]!.length]! ^= t.x;
          break;
        case 'truncate':
          out[k] = out[k]!.slice(0, t.i % out[k]!.length);
          break;
        case 'foreign':
          out[k] = seen.envelopes[t.i % seen.envelopes.length]!.slice();
          break;
        case 'junk':
          out[k] = rand(1 + (t.i % 200));
          break;
        case 'ownOnly':
          return [out[0]!, out[0]!, out[0]!];
        case 'empty':
          return [];
      }
      return out;
    };
    await fc.assert(
      fc.asyncProperty(plan, async (t) => {
        const params = encodeDkgParams({
          suite: getSuite(t.suite),
          sessionId: rand(32),
          threshold: t.threshold,
          participants: engines.map((e) => e.identity.public),
        });
        const sessionHash = dkgSessionHashOfParams(params);
        const started = await Promise.all(
          engines.map((e) => e.handle({ taskId: 1, body: 'dkgStart', dkgStart: { params } })),
        );
        expect(started.map((r) => r.body)).toEqual(['envelope', 'envelope', 'envelope']);
        let envs = started.map((r) => r.envelope!);
        let tampered = false;
        for (const round of [1, 2, 3]) {
          const mine = round === t.round && t.how !== 'none' ? tamper(envs, t) : envs;
          tampered ||= round === t.round && t.how !== 'none';
          const bundleRound = round === t.round && t.how === 'wrongRound' ? (round % 3) + 1 : round;
          const r0 = await expectHandled(
            target,
            { taskId: round, body: 'dkgBundle', dkgBundle: { sessionHash, round: bundleRound, envelopes: mine } },
            secrets,
          );
          const rest = await Promise.all(
            peers.map((p) =>
              p.handle({ taskId: round, body: 'dkgBundle', dkgBundle: { sessionHash, round, envelopes: envs } }),
            ),
          );
          const all = [r0, ...rest];
          if (!tampered)
            expect(all.map((r) => r.body)).toEqual(
              round < 3 ? ['envelope', 'envelope', 'envelope'] : ['dkgDone', 'dkgDone', 'dkgDone'],
            );
          if (all.some((r) => r.body === 'error')) {
            // A refused round ends the session; the others are told to abort.
            for (const e of engines)
              await e.handle({ taskId: 9, body: 'dkgAbort', dkgAbort: { sessionHash, reason: 'fuzz' } });
            return;
          }
          if (round < 3) envs = all.map((r) => r.envelope!);
          else {
            // Everyone finished: then everyone must have derived the same key.
            const digests = all.map((r) => toHex(r.dkgDone!.keyDigest));
            expect(new Set(digests).size, `tamper ${t.how} at round ${t.round} split the key`).toBe(1);
          }
        }
      }),
      { numRuns: 40 },
    );
  });

  it('signer-2 (trusts the requester): mutated genuine sign requests never leak and never throw', async () => {
    const target = engines[1]!;
    const peer = engines[2]!;
    const secrets = await secretsOf(target);
    const suite = getSuite('ed25519');
    const key = await target.key(keyId);
    const fresh = async (e: SignerEngine) => {
      const [env] = await e.commitments(keyId, 1);
      const c2 = decodeCommitment(suite, openEnvelope(env!, PayloadKind.SIGNING_COMMITMENT).payload);
      return { ...c2.commitment, nonceId: c2.nonceId };
    };
    const consumed: { commitment: Awaited<ReturnType<typeof fresh>>; peer: Awaited<ReturnType<typeof fresh>> }[] = [];
    const mutation = fc.constantFrom(
      'none',
      'epoch',
      'stranger',
      'otherKey',
      'expired',
      'dupOwn',
      'ownMissing',
      'foreignNonce',
      'randomNonce',
      'badHiding',
      'swapHidingBinding',
      'reuseNonce',
      'sessionId',
      'bytes',
    );
    await fc.assert(
      fc.asyncProperty(
        mutation,
        fc.uint8Array({ maxLength: 64 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }),
        async (m, message, flips) => {
          await target.discardFreshNonces();
          await peer.discardFreshNonces();
          let own = await fresh(target);
          let other = await fresh(peer);
          if (m === 'reuseNonce' && consumed.length) ({ commitment: own, peer: other } = consumed[0]!);
          const author = m === 'stranger' ? ParticipantIdentity.generate('wallet-api') : requester;
          const intent = createSignIntent(author, {
            suite,
            keyId: m === 'otherKey' ? 'ffffffffffffffff' : keyId,
            message,
            requestId: rand(16),
            notAfter: Date.now() + (m === 'expired' ? -1000 : 60_000),
          });
          let list = [own, other];
          if (m === 'dupOwn') list = [own, own, other];
          if (m === 'ownMissing') list = [other, { ...other, identifier: other.identifier }];
          if (m === 'foreignNonce') list = [{ ...own, nonceId: other.nonceId }, other];
          if (m === 'randomNonce') list = [{ ...own, nonceId: utf8ToBytes(`${keyId}.${toHex(rand(12))}`) }, other];
          if (m === 'badHiding') list = [{ ...own, hiding: other.hiding }, other];
          if (m === 'swapHidingBinding') list = [{ ...own, hiding: own.binding, binding: own.hiding }, other];
          let req: Uint8Array;
          try {
            req = encodeSignRequest({
              suite,
              sessionId: m === 'sessionId' ? rand(8) : rand(16),
              keyId,
              epoch: m === 'epoch' ? key.epoch + 1 : key.epoch,
              intent,
              commitments: list,
            });
          } catch {
            req = rand(64);
          }
          if (m === 'bytes') for (const [i, x] of flips) req[i % req.length] = x;
          const r = await expectHandled(target, { taskId: 7, body: 'sign', sign: req }, secrets);
          if (m === 'none') {
            expect(r.body).toBe('envelope');
            consumed.push({ commitment: own, peer: other });
          }
          if (m === 'reuseNonce' && consumed.length) expect(r.body === 'error' && r.error?.code).toBeTruthy();
          if (['stranger', 'otherKey', 'expired'].includes(m)) expect(r.error?.code).toBe('POLICY_DENIED');
        },
      ),
      { numRuns: 60 },
    );
  });

  it('after the fuzzing both engines still take part in a correct signature', async () => {
    for (const e of engines) await e.discardFreshNonces();
    // A new coordinator over the same registry (empty commitment pools), as after a restart.
    const fresh = new Coordinator({ store: coordStore, poolBatch: 4 });
    await fresh.load();
    for (const h of handles()) fresh.register(h);
    const msg = rand(33);
    const r = await fresh.sign(
      createSignIntent(requester, {
        suite: getSuite('ed25519'),
        keyId,
        message: msg,
        requestId: rand(16),
        notAfter: Date.now() + 60_000,
      }),
      ['signer-2', 'signer-3'],
    );
    expect(getSuite('ed25519').verify(r.signature, msg, r.publicKey)).toBe(true);
    // And all three, signer-1 included, still run a DKG to the end.
    const k = await fresh.keygen({ suite: 'ed25519', threshold: 3 });
    expect(k.participants).toEqual(SIGNER_IDS);
  });
});

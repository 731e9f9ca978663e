/**
 * Property tests of the wire encoding: every message round-trips, arbitrary and mutated bytes
 * only ever produce a typed error (or a value), header / length checks reject what they must with
 * the documented code, envelope signatures are domain-separated by kind and bind the exact
 * payload bytes, and the generated protobuf descriptor matches the .proto source.
 *
 * Assertions are on `code`, never on messages.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ErrorCode,
  FORMAT_VERSION,
  MAX_PACKAGE_BYTES,
  ParticipantIdentity,
  PayloadKind,
  SUITES,
  TesseraError,
  decodeCommitment,
  decodeMessage,
  decodeSignatureShare,
  encodeCommitment,
  encodeMessage,
  encodeSignatureShare,
  getSuite,
  makeHeader,
  openEnvelope,
  participantFromWire,
  signEnvelope,
  toHex,
  type MessageName,
  type NonceCommitment,
  type Suite,
  type WireEnvelope,
  type WireHeader,
  type WireParticipantInfo,
  type WireSignatureShare,
  type WireSigningCommitment,
  type WireTypes,
} from '../src/index.js';
import { type DescField, type DescMessage, ScalarType } from '@bufbuild/protobuf';
import { file_tessera_v1_cluster } from '../src/wire/gen/tessera/v1/cluster_pb.js';
import { file_tessera_v1_packages } from '../src/wire/gen/tessera/v1/packages_pb.js';
import { seededRng } from './helpers.js';

// 200 until 2026-12-07: wire-table.test.ts now also fuzzes every message against protobuf-es.
const RUNS = 120;
const params = { numRuns: RUNS } as const;

// ---- arbitraries ------------------------------------------------------------------------------

const u32 = fc.nat({ max: 2 ** 32 - 1 });
const u64 = fc.maxSafeNat();
const bytes = (maxLength = 72): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength });
/** Strings of every flavour protobuf must carry: ASCII, control characters, all of Unicode.
 * Lengths straddle 40 UTF-16 units, where some encoders switch between their own UTF-8 code and
 * the platform's. (Lone surrogates are excluded: they are not encodable as UTF-8 at all.) */
const str = fc.oneof(
  fc.string({ maxLength: 64 }),
  fc.string({ unit: 'binary-ascii', maxLength: 64 }),
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.string({ unit: 'grapheme', maxLength: 64 }),
);
const KINDS = Object.values(PayloadKind).filter((k): k is PayloadKind => typeof k === 'number' && k !== 0);
// Enum fields take the numbers the schema declares. (Unknown numbers are only ever produced by
// hand-encoded bytes below: the encoder refuses them.)
const suiteNumber = fc.constantFrom(0, 1, 2, 3, 4);
const kindNumber = fc.constantFrom(0, ...KINDS);

const header: fc.Arbitrary<WireHeader> = fc.record({ version: u32, suite: suiteNumber });
const envelope: fc.Arbitrary<WireEnvelope> = fc.record({
  version: u32,
  kind: kindNumber,
  sender: bytes(),
  payload: bytes(200),
  signature: bytes(),
});
const participantInfo: fc.Arbitrary<WireParticipantInfo> = fc.record({
  id: str,
  signKey: bytes(),
  encKey: bytes(),
  device: fc.boolean(),
});
const signingCommitment: fc.Arbitrary<WireSigningCommitment> = fc.record({
  header,
  identifier: bytes(),
  hiding: bytes(),
  binding: bytes(),
  nonceId: bytes(),
});
const list = <T>(a: fc.Arbitrary<T>, maxLength = 5): fc.Arbitrary<T[]> => fc.array(a, { maxLength });
/** An absent sub-message (null) or one: the wire types call it present, the codec takes both. */
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null }) as unknown as fc.Arbitrary<T>;
const assetAmount = fc.record({ asset: str, amount: str });
const allowance = fc.record({
  allowanceId: bytes(),
  caps: list(assetAmount),
  perPayment: list(assetAmount),
  fiat: fc.record({ currency: str, cap: str, perPayment: str, prices: bytes(), approvals: list(bytes()) }),
  requireIntegrity: fc.boolean(),
});
const payment = fc.record({ chain: str, tx: bytes(200), input: u32 });

const keyPublic: fc.Arbitrary<WireTypes['KeyPublic']> = fc.record({
  header,
  threshold: u32,
  commitments: list(bytes()),
  verifyingShares: list(fc.record({ identifier: bytes(), element: bytes() })),
});

/** Any value of a message, derived from its schema: every field, each oneof as one member or none. */
function fromSchema(desc: DescMessage, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const scalar = (t: ScalarType): fc.Arbitrary<unknown> => {
    if (t === ScalarType.UINT32) return u32;
    if (t === ScalarType.UINT64) return u64;
    if (t === ScalarType.BYTES) return bytes();
    if (t === ScalarType.STRING) return str;
    if (t === ScalarType.BOOL) return fc.boolean();
    throw new Error(`scalar type ${ScalarType[t]} is not in the contract`);
  };
  const field = (f: DescField): fc.Arbitrary<unknown> => {
    if (f.fieldKind === 'scalar') return scalar(f.scalar);
    if (f.fieldKind === 'enum') return fc.constantFrom(...f.enum.values.map((v) => v.number));
    if (f.fieldKind === 'message') return depth > 2 ? fc.constant(null) : fc.option(fromSchema(f.message, depth + 1));
    if (f.fieldKind === 'list') {
      if (f.listKind === 'scalar') return list(scalar(f.scalar));
      if (f.listKind === 'enum') return list(fc.constantFrom(...f.enum.values.map((v) => v.number)));
      return depth > 2 ? fc.constant([]) : list(fromSchema(f.message, depth + 1), 3);
    }
    throw new Error('map fields are not in the contract');
  };
  const plain: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of desc.fields) if (!f.oneof) plain[f.localName] = field(f);
  const oneofs = desc.oneofs.map((o) =>
    fc.option(
      fc.oneof(
        ...o.fields.map((f) =>
          // A oneof member is either set (a message then present) or absent: never a null member.
          (f.fieldKind === 'message' ? fromSchema(f.message, depth + 1) : field(f)).map((v) => ({ [f.localName]: v })),
        ),
      ),
      { nil: {} },
    ),
  );
  return fc
    .tuple(fc.record(plain), ...oneofs)
    .map(([base, ...members]) => Object.assign({}, base, ...members) as Record<string, unknown>);
}
const SCHEMAS = [...file_tessera_v1_packages.messages, ...file_tessera_v1_cluster.messages];

// Written by hand where the values matter (versions, suites, kinds, sizes); every other message
// of the contract gets one derived from its schema, so none is left out.
const HAND_WRITTEN: { [N in MessageName]?: fc.Arbitrary<WireTypes[N]> } = {
  Header: header,
  Envelope: envelope,
  ParticipantInfo: participantInfo,
  DkgParams: fc.record({ header, sessionId: bytes(), threshold: u32, participants: list(participantInfo) }),
  DkgRound1: fc.record({
    header,
    sessionHash: bytes(),
    identifier: bytes(),
    commitment: list(bytes()),
    proofOfKnowledge: bytes(),
  }),
  SealedShare: fc.record({ recipient: bytes(), enc: bytes(), ciphertext: bytes(200) }),
  DkgRound2: fc.record({
    header,
    sessionHash: bytes(),
    identifier: bytes(),
    round1: list(bytes(200)),
    shares: list(fc.record({ recipient: bytes(), enc: bytes(), ciphertext: bytes() })),
  }),
  DkgConfirm: fc.record({
    header,
    sessionHash: bytes(),
    identifier: bytes(),
    transcriptHash: bytes(),
    keyDigest: bytes(),
  }),
  VerifyingShare: fc.record({ identifier: bytes(), element: bytes() }),
  KeyPublic: keyPublic,
  SignIntent: fc.record({ header, keyId: str, message: bytes(200), requestId: bytes(), notAfter: u64, path: str }),
  SigningCommitment: signingCommitment,
  SignRequest: fc.record({
    header,
    sessionId: bytes(),
    keyId: str,
    epoch: u64,
    intent: envelope,
    commitments: list(signingCommitment),
  }),
  SignatureShare: fc.record({
    header,
    sessionId: bytes(),
    identifier: bytes(),
    share: bytes(),
    requestDigest: bytes(),
  }),
  KeyShareRecord: fc.record({
    header,
    keyId: str,
    epoch: u64,
    threshold: u32,
    participants: list(participantInfo),
    public: keyPublic,
    identifier: bytes(),
    signingShare: bytes(),
    transcriptHash: bytes(),
    createdAt: u64,
  }),
  KeyRecord: fc.record({
    header,
    keyId: str,
    epoch: u64,
    threshold: u32,
    participants: list(participantInfo),
    public: keyPublic,
    createdAt: u64,
  }),
  IdentityRecord: fc.record({ version: u32, id: str, signSecret: bytes(), encSecret: bytes(), encKem: u32 }),
  SignResultRecord: fc.record({
    version: u32,
    keyId: str,
    signature: bytes(),
    signers: list(str),
    publicKey: bytes(),
    requestId: bytes(),
    intentDigest: bytes(),
  }),
  RefreshParams: fc.record({
    header,
    sessionId: bytes(),
    keyId: str,
    fromEpoch: u64,
    keyDigest: bytes(),
    contributors: list(str),
  }),
  ReshareParams: fc.record({
    header,
    sessionId: bytes(),
    keyId: str,
    fromEpoch: u64,
    keyDigest: bytes(),
    contributors: list(str),
    newThreshold: u32,
    newParticipants: list(participantInfo),
  }),
  LifecycleRound1: fc.record({
    header,
    sessionHash: bytes(),
    identifier: bytes(),
    commitments: list(bytes()),
    shares: list(fc.record({ recipient: bytes(), enc: bytes(), ciphertext: bytes() })),
  }),
  LifecycleConfirm: fc.record({
    header,
    sessionHash: bytes(),
    identifier: bytes(),
    epoch: u64,
    transcriptHash: bytes(),
    keyDigest: bytes(),
  }),
  Reservation: fc.record({
    header,
    keyId: str,
    epoch: u64,
    device: str,
    signer: str,
    nonceId: bytes(),
    hiding: bytes(),
    binding: bytes(),
    expiresAt: u64,
    allowance: maybe(allowance),
  }),
  ReservedCommitment: fc.record({
    signer: str,
    nonceId: bytes(),
    hiding: bytes(),
    binding: bytes(),
    expiresAt: u64,
    signature: bytes(),
    allowance: maybe(allowance),
  }),
  AssetAmount: assetAmount,
  Allowance: allowance,
  Payment: payment,
  OfflinePackage: fc.record({
    header,
    keyId: str,
    epoch: u64,
    device: str,
    message: bytes(200),
    hiding: bytes(),
    binding: bytes(),
    share: bytes(),
    cosigners: list(
      fc.record({
        signer: str,
        nonceId: bytes(),
        hiding: bytes(),
        binding: bytes(),
        expiresAt: u64,
        signature: bytes(),
        allowance: maybe(allowance),
      }),
    ),
    createdAt: u64,
    payment: maybe(payment),
    claims: bytes(),
  }),
  CosignRequest: fc.record({
    header,
    keyId: str,
    epoch: u64,
    device: str,
    message: bytes(200),
    hiding: bytes(),
    binding: bytes(),
    requestId: bytes(),
  }),
  CosignResponse: fc.record({
    header,
    requestDigest: bytes(),
    device: str,
    hiding: bytes(),
    binding: bytes(),
    share: bytes(),
  }),
  DeviceCall: fc.record({
    version: u32,
    device: str,
    op: str,
    issuedAt: u64,
    nonce: bytes(),
    body: bytes(200),
    clusterId: str,
  }),
  ErrorDetail: fc.record({ code: str, message: str, culprits: list(str) }),
  KeyInfo: fc.record({
    keyId: str,
    suite: suiteNumber,
    threshold: u32,
    participants: list(str),
    publicKey: bytes(),
    epoch: u64,
    createdAt: u64,
  }),
  DeviceEnrol: fc.record({ token: str, participant: participantInfo, deviceClass: str }),
  DeviceEnrolled: fc.record({ device: str, coordinator: str, clusterId: str }),
  DevicePoll: fc.record({ results: fc.constant([]), waitMs: u32, keys: list(str), pending: u32, bye: fc.boolean() }),
  DeviceTasks: fc.record({ tasks: fc.constant([]) }),
  DeviceReserve: fc.record({
    keyId: str,
    count: u32,
    cosigners: list(str),
    ttlMs: u64,
    allowance: maybe(allowance),
    takesIntegrityRule: fc.boolean(),
    presignSeed: bytes(),
  }),
  DeviceReserved: fc.record({ slots: list(fc.record({ reservations: list(bytes()) })), errors: list(str) }),
  DeviceKeys: fc.record({
    keys: list(
      fc.record({
        keyId: str,
        suite: suiteNumber,
        threshold: u32,
        participants: list(str),
        publicKey: bytes(),
        epoch: u64,
        createdAt: u64,
      }),
    ),
  }),
  KeygenRequest: fc.record({ suite: suiteNumber, threshold: u32, participants: list(str) }),
  SubmitPackageRequest: fc.record({ package: bytes(400) }),
  SubmitPackageResponse: fc.record({
    packageId: str,
    keyId: str,
    message: bytes(),
    signature: bytes(),
    publicKey: bytes(),
    signers: list(str),
    alreadyCompleted: fc.boolean(),
  }),
  LifecycleAuthorisation: fc.record({
    version: u32,
    keyId: str,
    operation: str,
    fromEpoch: u64,
    anyEpoch: fc.boolean(),
    newThreshold: u32,
    newParticipants: list(participantInfo),
    allowThresholdDecrease: fc.boolean(),
    allowUnpinned: list(str),
    revoke: list(str),
    notAfter: u64,
    nonce: bytes(),
  }),
  ApprovedAuthorisation: fc.record({ authorisation: bytes(200), approvals: list(bytes(120)) }),
  PendingLifecycle: fc.record({
    kind: str,
    sessionHash: bytes(),
    transcriptHash: bytes(),
    keyRecord: bytes(200),
    required: list(str),
    revoke: list(str),
    shareRecord: bytes(200),
  }),
  LifecycleOutcome: fc.record({
    epoch: u64,
    activatedAt: u64,
    left: fc.boolean(),
    retired: fc.boolean(),
    keyRecord: bytes(200),
    transcriptHash: bytes(),
  }),
};
const ARBITRARIES = Object.fromEntries(
  SCHEMAS.map((d) => [d.name, HAND_WRITTEN[d.name as MessageName] ?? fromSchema(d)]),
) as { [N in MessageName]: fc.Arbitrary<WireTypes[N]> };
const NAMES = Object.keys(ARBITRARIES) as MessageName[];

/** Any message of any type, already encoded: structured input for decoders of other types. */
const anyEncoded: fc.Arbitrary<Uint8Array> = fc
  .constantFrom(...NAMES)
  .chain((n) => (ARBITRARIES[n] as fc.Arbitrary<WireTypes[MessageName]>).map((v) => encodeMessage(n, v)));

// ---- mutations --------------------------------------------------------------------------------

type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; byte: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; count: number }
  | { op: 'truncate'; at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: fc.nat({ max: 255 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
);
const mutations = fc.array(mutation, { minLength: 1, maxLength: 6 });

function mutate(input: Uint8Array, ms: readonly Mutation[]): Uint8Array {
  let b = Array.from(input);
  for (const m of ms) {
    switch (m.op) {
      case 'flip':
        if (b.length) b[m.at % b.length] = (b[m.at % b.length] as number) ^ (1 << m.bit);
        break;
      case 'set':
        if (b.length) b[m.at % b.length] = m.byte;
        break;
      case 'insert':
        b.splice(m.at % (b.length + 1), 0, ...m.bytes);
        break;
      case 'delete':
        if (b.length) b.splice(m.at % b.length, m.count);
        break;
      case 'truncate':
        b = b.slice(0, m.at % (b.length + 1));
        break;
    }
  }
  return new Uint8Array(b);
}

// ---- hand-encoded protobuf ---------------------------------------------------------------------

/** Protobuf varint of a non-negative bigint. */
function varint(v: bigint): number[] {
  const out: number[] = [];
  for (;;) {
    const low = Number(v & 0x7fn);
    v >>= 7n;
    if (v === 0n) return [...out, low];
    out.push(low | 0x80);
  }
}
/** Varint of an int32 as protobuf writes it (negative numbers sign-extended to 64 bits). */
const int32Varint = (n: number): number[] => varint(BigInt.asUintN(64, BigInt(n)));
/** An encoded Header with any version and any (possibly undeclared) suite number, as field 1. */
function rawHeaderField(h: WireHeader): number[] {
  const body = [0x08, ...varint(BigInt(h.version)), 0x10, ...int32Varint(h.suite)];
  return [0x0a, ...varint(BigInt(body.length)), ...body];
}
/** Encodes `w` with its header written by hand (so undeclared suite numbers can be sent). */
function encodeWithRawHeader<N extends 'SigningCommitment' | 'SignatureShare'>(
  name: N,
  w: WireTypes[N] | (Omit<WireTypes[N], 'header'> & { header: WireHeader | null }),
): Uint8Array {
  const rest = encodeMessage(name, { ...w, header: null } as unknown as WireTypes[N]);
  return new Uint8Array([...(w.header ? rawHeaderField(w.header) : []), ...rest]);
}

// ---- helpers ----------------------------------------------------------------------------------

const DECODE_CODES = [ErrorCode.DECODE] as const;
const PACKAGE_CODES = [ErrorCode.DECODE, ErrorCode.UNSUPPORTED_VERSION, ErrorCode.WRONG_SUITE] as const;
const ENVELOPE_CODES = [ErrorCode.DECODE, ErrorCode.UNEXPECTED_MESSAGE, ErrorCode.BAD_SIGNATURE] as const;

type Outcome<T> = { ok: true; value: T } | { ok: false; code: string };

/** Runs `f`; a TesseraError whose code is in `codes` is an outcome, anything else fails the test. */
function typed<T>(f: () => T, codes: readonly string[]): Outcome<T> {
  try {
    return { ok: true, value: f() };
  } catch (e) {
    if (!(e instanceof TesseraError)) throw new Error(`untyped exception: ${String(e)}`, { cause: e });
    if (!codes.includes(e.code))
      throw new Error(`unexpected code ${e.code} (allowed: ${codes.join(', ')})`, { cause: e });
    return { ok: false, code: e.code };
  }
}

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof TesseraError) return e.code;
    throw new Error(`untyped exception: ${String(e)}`, { cause: e });
  }
  throw new Error('expected a typed error, got a value');
}

/** Every byte string inside a decoded value is a plain Uint8Array (not a Buffer or other view). */
function assertPlainBytes(v: unknown, path = '$'): void {
  if (ArrayBuffer.isView(v)) {
    expect(Object.getPrototypeOf(v) === Uint8Array.prototype, `${path} is a plain Uint8Array`).toBe(true);
  } else if (Array.isArray(v)) {
    v.forEach((x, i) => assertPlainBytes(x, `${path}[${i}]`));
  } else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) assertPlainBytes(x, `${path}.${k}`);
  }
}

const decodeAs = (name: MessageName, b: Uint8Array): unknown => decodeMessage(name, b);
const encodeAs = (name: MessageName, v: unknown): Uint8Array => encodeMessage(name, v as WireTypes[MessageName]);

// Real FROST material per suite (trusted dealer, 2-of-3): a commitment and a signature share.
interface Fixture {
  suite: Suite;
  commitment: NonceCommitment;
  commitmentBytes: Uint8Array;
  shareBytes: Uint8Array;
  share: { sessionId: Uint8Array; identifier: string; share: Uint8Array; requestDigest: Uint8Array };
}
const FIXTURES: Fixture[] = SUITES.map((suite) => {
  const rng = seededRng(`encoding-${suite.id}`);
  const dealt = suite.frost.trustedDealer({ min: 2, max: 3 }, undefined, undefined, rng);
  const [a, b] = Object.values(dealt.secretShares);
  if (!a || !b) throw new Error('dealer returned too few shares');
  const ga = suite.frost.commit(a, rng);
  const gb = suite.frost.commit(b, rng);
  const commitments = [ga.commitments, gb.commitments];
  const msg = rng(32);
  const s = suite.frost.signShare(a, dealt.public, ga.nonces, commitments, msg);
  const commitment: NonceCommitment = {
    identifier: ga.commitments.identifier,
    hiding: ga.commitments.hiding,
    binding: ga.commitments.binding,
  };
  const share = { sessionId: rng(32), identifier: a.identifier, share: s, requestDigest: rng(32) };
  return {
    suite,
    commitment,
    commitmentBytes: encodeCommitment(suite, commitment, rng(16)),
    share,
    shareBytes: encodeSignatureShare(suite, share),
  };
});
const fixture = fc.constantFrom(...FIXTURES);
const anySuite = fc.constantFrom(...SUITES);

const alice = ParticipantIdentity.generate('alice');
const bob = ParticipantIdentity.generate('bob');

// ---- 1. round trip ----------------------------------------------------------------------------

describe('round trip: decodeMessage(encodeMessage(x)) = x', () => {
  it.each(NAMES)('%s', (name) => {
    const arb = ARBITRARIES[name] as fc.Arbitrary<unknown>;
    fc.assert(
      fc.property(arb, (x) => {
        const enc = encodeAs(name, x);
        expect(Object.getPrototypeOf(enc) === Uint8Array.prototype).toBe(true);
        const dec = decodeAs(name, enc);
        expect(dec).toEqual(x);
        assertPlainBytes(dec);
        // The encoding is canonical: re-encoding the decoded value gives the same bytes.
        expect(encodeAs(name, dec)).toEqual(enc);
        // Decoded bytes own their memory: scribbling over the input changes nothing.
        enc.fill(0xa5);
        expect(dec).toEqual(x);
      }),
      params,
    );
  });

  it('decodes the empty string as a message with every field at its default', () => {
    expect(decodeMessage('SignRequest', new Uint8Array(0))).toEqual({
      header: null,
      sessionId: new Uint8Array(0),
      keyId: '',
      epoch: 0,
      intent: null,
      commitments: [],
    });
    expect(decodeMessage('Header', new Uint8Array(0))).toEqual({ version: 0, suite: 0 });
  });

  it('encodeCommitment / decodeCommitment round-trip real commitments for every suite', () => {
    fc.assert(
      fc.property(fixture, bytes(64), ({ suite, commitment }, nonceId) => {
        const dec = decodeCommitment(suite, encodeCommitment(suite, commitment, nonceId));
        expect(dec).toEqual({ commitment, nonceId });
        assertPlainBytes(dec);
      }),
      params,
    );
  });

  it('encodeSignatureShare / decodeSignatureShare round-trip real shares for every suite', () => {
    fc.assert(
      fc.property(fixture, fc.uint8Array({ minLength: 16, maxLength: 64 }), ({ suite, share }, sessionId) => {
        const s = { ...share, sessionId };
        const dec = decodeSignatureShare(suite, encodeSignatureShare(suite, s));
        expect(dec).toEqual(s);
        assertPlainBytes(dec);
      }),
      params,
    );
  });
});

// ---- 2. arbitrary bytes ------------------------------------------------------------------------

describe('arbitrary bytes never crash a decoder', () => {
  const input = fc.oneof(fc.uint8Array({ maxLength: 512 }), anyEncoded);

  it.each(NAMES)('decodeMessage(%s) returns or throws DECODE', (name) => {
    fc.assert(
      fc.property(input, (b) => {
        const r = typed(() => decodeAs(name, b), DECODE_CODES);
        if (r.ok) assertPlainBytes(r.value);
      }),
      params,
    );
  });

  it('openEnvelope on arbitrary bytes throws DECODE / UNEXPECTED_MESSAGE / BAD_SIGNATURE', () => {
    fc.assert(
      fc.property(input, fc.constantFrom(...KINDS), (b, kind) => {
        // Arbitrary bytes are never a validly signed envelope.
        expect(typed(() => openEnvelope(b, kind), ENVELOPE_CODES).ok).toBe(false);
      }),
      params,
    );
  });

  it('openEnvelope on well-formed envelopes with a forged signature throws BAD_SIGNATURE', () => {
    const forged = fc.record({
      version: fc.constant(FORMAT_VERSION),
      kind: fc.constantFrom(...KINDS),
      sender: fc.oneof(fc.constant(alice.public.signKey), fc.uint8Array({ minLength: 32, maxLength: 32 })),
      payload: bytes(200),
      signature: fc.uint8Array({ minLength: 64, maxLength: 64 }),
    });
    fc.assert(
      fc.property(forged, (env) => {
        expect(codeOf(() => openEnvelope(encodeMessage('Envelope', env), env.kind as PayloadKind))).toBe(
          ErrorCode.BAD_SIGNATURE,
        );
      }),
      params,
    );
  });

  it('decodeCommitment / decodeSignatureShare on arbitrary bytes: value or DECODE / UNSUPPORTED_VERSION / WRONG_SUITE', () => {
    fc.assert(
      fc.property(anySuite, input, (suite, b) => {
        typed(() => decodeCommitment(suite, b), PACKAGE_CODES);
        typed(() => decodeSignatureShare(suite, b), PACKAGE_CODES);
      }),
      params,
    );
  });

  // Near-valid packages: header and lengths drawn around the valid values, checked against a model
  // of the decoder's rules (first failing check decides the code).
  const nearHeader = fc.option(
    fc.record({ version: fc.constantFrom(0, 1, 1, 2, 2 ** 32 - 1), suite: fc.constantFrom(-1, 0, 1, 2, 3, 4, 5) }),
    { nil: null },
  );
  const sized = (lengths: number[]): fc.Arbitrary<Uint8Array> =>
    fc.constantFrom(...lengths).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }));
  const expectedHeaderCode = (h: WireHeader | null, suite: Suite): string | undefined => {
    if (!h) return ErrorCode.DECODE;
    if (h.version !== FORMAT_VERSION) return ErrorCode.UNSUPPORTED_VERSION;
    if (!SUITES.some((s) => s.wireId === h.suite)) return ErrorCode.DECODE;
    if (h.suite !== suite.wireId) return ErrorCode.WRONG_SUITE;
    return undefined;
  };

  /** Mostly the right value for `suite`, sometimes a near miss. */
  const mostly = <T>(right: fc.Arbitrary<T>, wrong: fc.Arbitrary<T>): fc.Arbitrary<T> =>
    fc.oneof({ weight: 5, arbitrary: right }, { weight: 1, arbitrary: wrong });
  const exactly = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });
  const headerFor = (suite: Suite): fc.Arbitrary<WireHeader | null> =>
    mostly(fc.constant(makeHeader(suite)), nearHeader);

  it('decodeCommitment on near-valid packages fails exactly when the model says, with its code', () => {
    const near = anySuite.chain((suite) =>
      fc.tuple(
        fc.constant(suite),
        fc.record({
          header: headerFor(suite),
          identifier: mostly(exactly(suite.scalarBytes), sized([0, 31, 33])),
          hiding: mostly(exactly(suite.elementBytes), sized([0, 32, 33, 34])),
          binding: mostly(exactly(suite.elementBytes), sized([0, 32, 33, 34])),
          nonceId: mostly(fc.uint8Array({ maxLength: 64 }), sized([65, 100])),
        }),
      ),
    );
    fc.assert(
      fc.property(near, anySuite, ([suiteA, w], suiteB) => {
        const b = encodeWithRawHeader('SigningCommitment', w);
        for (const suite of [suiteA, suiteB]) {
          const want =
            expectedHeaderCode(w.header, suite) ??
            (w.identifier.length !== suite.scalarBytes ||
            w.hiding.length !== suite.elementBytes ||
            w.binding.length !== suite.elementBytes ||
            w.nonceId.length > 64
              ? ErrorCode.DECODE
              : undefined);
          const r = typed(() => decodeCommitment(suite, b), PACKAGE_CODES);
          if (want === undefined) {
            expect(r).toEqual({
              ok: true,
              value: {
                commitment: { identifier: toHex(w.identifier), hiding: w.hiding, binding: w.binding },
                nonceId: w.nonceId,
              },
            });
          } else {
            expect(r).toEqual({ ok: false, code: want });
          }
        }
      }),
      params,
    );
  });

  it('decodeSignatureShare on near-valid packages fails exactly when the model says, with its code', () => {
    const near = anySuite.chain((suite) =>
      fc.tuple(
        fc.constant(suite),
        fc.record({
          header: headerFor(suite),
          sessionId: mostly(fc.uint8Array({ minLength: 16, maxLength: 64 }), sized([0, 15, 65])),
          identifier: mostly(exactly(suite.scalarBytes), sized([0, 31, 33])),
          share: mostly(exactly(suite.scalarBytes), sized([0, 31, 33])),
          requestDigest: mostly(exactly(32), sized([0, 31, 33])),
        }),
      ),
    );
    fc.assert(
      fc.property(near, anySuite, ([suiteA, w], suiteB) => {
        const b = encodeWithRawHeader('SignatureShare', w);
        for (const suite of [suiteA, suiteB]) {
          const want =
            expectedHeaderCode(w.header, suite) ??
            (w.sessionId.length < 16 ||
            w.sessionId.length > 64 ||
            w.identifier.length !== suite.scalarBytes ||
            w.share.length !== suite.scalarBytes ||
            w.requestDigest.length !== 32
              ? ErrorCode.DECODE
              : undefined);
          const r = typed(() => decodeSignatureShare(suite, b), PACKAGE_CODES);
          if (want === undefined) {
            expect(r).toEqual({
              ok: true,
              value: {
                sessionId: w.sessionId,
                identifier: toHex(w.identifier),
                share: w.share,
                requestDigest: w.requestDigest,
              },
            });
          } else {
            expect(r).toEqual({ ok: false, code: want });
          }
        }
      }),
      params,
    );
  });

  it('participantFromWire on decoded arbitrary bytes: value or DECODE', () => {
    fc.assert(
      fc.property(input, (b) => {
        const w = typed(() => decodeMessage('ParticipantInfo', b), DECODE_CODES);
        if (w.ok) typed(() => participantFromWire(w.value), DECODE_CODES);
      }),
      params,
    );
  });

  it('participantFromWire accepts exactly valid ids with 32-byte keys', () => {
    const validId = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
    const info = fc.record({
      id: fc.oneof(validId, str, fc.constantFrom('', '-x', '.x', 'a'.repeat(64), 'a'.repeat(65), 'a b', 'é', 'a\n')),
      signKey: mostly(exactly(32), sized([0, 31, 33])),
      encKey: mostly(exactly(32), sized([0, 31, 33])),
      device: fc.constant(false),
    });
    fc.assert(
      fc.property(info, (p) => {
        const w = decodeMessage('ParticipantInfo', encodeMessage('ParticipantInfo', p));
        const valid =
          /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(p.id) && p.signKey.length === 32 && p.encKey.length === 32;
        const r = typed(() => participantFromWire(w), DECODE_CODES);
        if (valid) expect(r).toEqual({ ok: true, value: { id: p.id, signKey: p.signKey, encKey: p.encKey } });
        else expect(r).toEqual({ ok: false, code: ErrorCode.DECODE });
      }),
      params,
    );
  });
});

// ---- 3. mutation fuzz --------------------------------------------------------------------------

describe('mutated valid packages give a typed error or a value', () => {
  it('SigningCommitment', () => {
    fc.assert(
      fc.property(fixture, anySuite, mutations, (f, as, ms) => {
        const b = mutate(f.commitmentBytes, ms);
        typed(() => decodeMessage('SigningCommitment', b), DECODE_CODES);
        const r = typed(() => decodeCommitment(as, b), PACKAGE_CODES);
        if (r.ok) {
          expect(r.value.commitment.hiding.length).toBe(as.elementBytes);
          expect(r.value.commitment.binding.length).toBe(as.elementBytes);
          expect(r.value.commitment.identifier.length).toBe(2 * as.scalarBytes);
        }
      }),
      params,
    );
  });

  it('SignatureShare', () => {
    fc.assert(
      fc.property(fixture, anySuite, mutations, (f, as, ms) => {
        const b = mutate(f.shareBytes, ms);
        typed(() => decodeMessage('SignatureShare', b), DECODE_CODES);
        const r = typed(() => decodeSignatureShare(as, b), PACKAGE_CODES);
        if (r.ok) {
          expect(r.value.share.length).toBe(as.scalarBytes);
          expect(r.value.requestDigest.length).toBe(32);
        }
      }),
      params,
    );
  });

  it('Envelope: a mutated signed envelope fails with a typed code or opens to the identical payload', () => {
    const payload = fc.oneof(
      bytes(200),
      fc.constantFrom(...FIXTURES.flatMap((f) => [f.commitmentBytes, f.shareBytes])),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...KINDS),
        payload,
        mutations,
        fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom(...KINDS) }),
        (kind, p, ms, other) => {
          // Mostly opened as the kind it was signed as (so the signature check is reached).
          const openAs = other ?? kind;
          const env = signEnvelope(alice, kind, p);
          const b = mutate(env, ms);
          typed(() => decodeMessage('Envelope', b), DECODE_CODES);
          const r = typed(() => openEnvelope(b, openAs), ENVELOPE_CODES);
          if (r.ok) {
            expect(openAs).toBe(kind);
            expect(r.value.kind).toBe(kind);
            expect(r.value.payload).toEqual(p);
            expect(r.value.sender).toEqual(alice.public.signKey);
            expect(r.value.bytes).toEqual(b);
          }
        },
      ),
      params,
    );
  });
});

// ---- 4. header and length checks ---------------------------------------------------------------

describe('header and length checks', () => {
  const ed = getSuite('ed25519');
  const tr = getSuite('secp256k1-tr');
  const edFix = FIXTURES.find((f) => f.suite.id === 'ed25519') as Fixture;

  /** Decodes a SigningCommitment, applies `edit` to the wire object, re-encodes. */
  const editCommitment = (edit: (w: WireSigningCommitment) => unknown): Uint8Array => {
    const w = decodeMessage('SigningCommitment', edFix.commitmentBytes);
    return encodeMessage('SigningCommitment', edit(w) as WireSigningCommitment);
  };
  const editShare = (edit: (w: WireSignatureShare) => unknown): Uint8Array => {
    const w = decodeMessage('SignatureShare', edFix.shareBytes);
    return encodeMessage('SignatureShare', edit(w) as WireSignatureShare);
  };

  it('a commitment encoded for ed25519 decoded as secp256k1-tr is WRONG_SUITE', () => {
    expect(codeOf(() => decodeCommitment(tr, edFix.commitmentBytes))).toBe(ErrorCode.WRONG_SUITE);
    expect(codeOf(() => decodeSignatureShare(tr, edFix.shareBytes))).toBe(ErrorCode.WRONG_SUITE);
  });

  it('every package decoded as any other suite is WRONG_SUITE', () => {
    for (const f of FIXTURES)
      for (const s of SUITES) {
        if (s.wireId === f.suite.wireId) {
          expect(decodeCommitment(s, f.commitmentBytes).commitment).toEqual(f.commitment);
          expect(decodeSignatureShare(s, f.shareBytes)).toEqual(f.share);
        } else {
          expect(codeOf(() => decodeCommitment(s, f.commitmentBytes))).toBe(ErrorCode.WRONG_SUITE);
          expect(codeOf(() => decodeSignatureShare(s, f.shareBytes))).toBe(ErrorCode.WRONG_SUITE);
        }
      }
  });

  it('header version 2 (or 0) is UNSUPPORTED_VERSION', () => {
    for (const version of [0, 2, 2 ** 32 - 1]) {
      expect(
        codeOf(() =>
          decodeCommitment(
            ed,
            editCommitment((w) => ({ ...w, header: { ...w.header, version } })),
          ),
        ),
      ).toBe(ErrorCode.UNSUPPORTED_VERSION);
      expect(
        codeOf(() =>
          decodeSignatureShare(
            ed,
            editShare((w) => ({ ...w, header: { ...w.header, version } })),
          ),
        ),
      ).toBe(ErrorCode.UNSUPPORTED_VERSION);
    }
  });

  it('a missing header or an unknown suite number is DECODE', () => {
    expect(
      codeOf(() =>
        decodeCommitment(
          ed,
          editCommitment((w) => ({ ...w, header: null })),
        ),
      ),
    ).toBe(ErrorCode.DECODE);
    expect(
      codeOf(() =>
        decodeSignatureShare(
          ed,
          editShare((w) => ({ ...w, header: null })),
        ),
      ),
    ).toBe(ErrorCode.DECODE);
    const c = decodeMessage('SigningCommitment', edFix.commitmentBytes);
    const sh = decodeMessage('SignatureShare', edFix.shareBytes);
    for (const suite of [0, 5, 99, -1, 2 ** 31 - 1, -(2 ** 31)]) {
      const header = { version: FORMAT_VERSION, suite };
      // proto3 enums are open: the number arrives intact, and the header check refuses it.
      expect(
        decodeMessage('SigningCommitment', encodeWithRawHeader('SigningCommitment', { ...c, header })).header,
      ).toEqual(header);
      expect(codeOf(() => decodeCommitment(ed, encodeWithRawHeader('SigningCommitment', { ...c, header })))).toBe(
        ErrorCode.DECODE,
      );
      expect(codeOf(() => decodeSignatureShare(ed, encodeWithRawHeader('SignatureShare', { ...sh, header })))).toBe(
        ErrorCode.DECODE,
      );
    }
    // The hand encoder agrees with the codec on declared values.
    expect(encodeWithRawHeader('SigningCommitment', c)).toEqual(edFix.commitmentBytes);
    expect(encodeWithRawHeader('SignatureShare', sh)).toEqual(edFix.shareBytes);
  });

  it('an identifier / hiding / binding / share / digest of the wrong length is DECODE', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('identifier', 'hiding', 'binding'),
        fc.integer({ min: 0, max: 80 }).filter((n) => n !== 32),
        (field, n) => {
          const b = editCommitment((w) => ({ ...w, [field]: new Uint8Array(n).fill(7) }));
          expect(codeOf(() => decodeCommitment(ed, b))).toBe(ErrorCode.DECODE);
        },
      ),
      params,
    );
    fc.assert(
      fc.property(
        fc.constantFrom('identifier', 'share', 'requestDigest'),
        fc.integer({ min: 0, max: 80 }).filter((n) => n !== 32),
        (field, n) => {
          const b = editShare((w) => ({ ...w, [field]: new Uint8Array(n).fill(7) }));
          expect(codeOf(() => decodeSignatureShare(ed, b))).toBe(ErrorCode.DECODE);
        },
      ),
      params,
    );
    // Session ids are 16..64 bytes, nonce ids at most 64.
    for (const n of [0, 15, 65, 200])
      expect(
        codeOf(() =>
          decodeSignatureShare(
            ed,
            editShare((w) => ({ ...w, sessionId: new Uint8Array(n) })),
          ),
        ),
      ).toBe(ErrorCode.DECODE);
    for (const n of [16, 64])
      expect(
        decodeSignatureShare(
          ed,
          editShare((w) => ({ ...w, sessionId: new Uint8Array(n) })),
        ).sessionId.length,
      ).toBe(n);
    expect(
      codeOf(() =>
        decodeCommitment(
          ed,
          editCommitment((w) => ({ ...w, nonceId: new Uint8Array(65) })),
        ),
      ),
    ).toBe(ErrorCode.DECODE);
    // secp256k1 elements are 33 bytes: a 32-byte (Ed25519-sized) hiding commitment is refused.
    const secpCommit = encodeMessage('SigningCommitment', {
      header: makeHeader(tr),
      identifier: new Uint8Array(32),
      hiding: new Uint8Array(32),
      binding: new Uint8Array(33),
      nonceId: new Uint8Array(0),
    });
    expect(codeOf(() => decodeCommitment(tr, secpCommit))).toBe(ErrorCode.DECODE);
  });

  /** A SigningCommitment of exactly `size` encoded bytes (padding in nonce_id). */
  function commitmentOfSize(size: number): Uint8Array {
    let pad = size - 256; // start below the target: the encoder refuses oversized packages
    for (;;) {
      const b = encodeCommitment(ed, edFix.commitment, new Uint8Array(pad));
      if (b.length === size) return b;
      pad -= b.length - size;
    }
  }

  it('a package over MAX_PACKAGE_BYTES is DECODE; one of exactly MAX_PACKAGE_BYTES decodes', () => {
    const atLimit = commitmentOfSize(MAX_PACKAGE_BYTES);
    expect(atLimit.length).toBe(MAX_PACKAGE_BYTES);
    expect(decodeMessage('SigningCommitment', atLimit).nonceId.length).toBeGreaterThan(64);
    // The encoder refuses to produce an oversized package; build one by appending an unknown field.
    expect(codeOf(() => commitmentOfSize(MAX_PACKAGE_BYTES + 1))).toBe(ErrorCode.INVALID_ARGUMENT);
    const over = new Uint8Array(MAX_PACKAGE_BYTES + 1);
    over.set(commitmentOfSize(MAX_PACKAGE_BYTES - 1));
    over.set([0x78, 0x00], MAX_PACKAGE_BYTES - 1); // field 15, varint 0
    expect(over.length).toBe(MAX_PACKAGE_BYTES + 1);
    expect(codeOf(() => decodeMessage('SigningCommitment', over))).toBe(ErrorCode.DECODE);
    expect(codeOf(() => decodeCommitment(ed, over))).toBe(ErrorCode.DECODE);
    for (const name of NAMES) expect(codeOf(() => decodeAs(name, over))).toBe(ErrorCode.DECODE);
    // An envelope cannot even be made around an oversized payload.
    expect(codeOf(() => signEnvelope(alice, PayloadKind.SIGNING_COMMITMENT, over))).toBe(ErrorCode.INVALID_ARGUMENT);
  });

  it('non-bytes input is DECODE', () => {
    for (const bad of [undefined, null, 'abc', [1, 2, 3], {}, 42, new ArrayBuffer(4)])
      for (const name of NAMES)
        expect(codeOf(() => decodeMessage(name, bad as unknown as Uint8Array))).toBe(ErrorCode.DECODE);
  });

  it('a uint64 beyond the safe-integer range is DECODE, not a rounded number', () => {
    // SignIntent.not_after = 2^53 + 1 (field 5, varint), hand-encoded.
    const b = new Uint8Array([(5 << 3) | 0, ...varint(2n ** 53n + 1n)]);
    expect(codeOf(() => decodeMessage('SignIntent', b))).toBe(ErrorCode.DECODE);
    // 2^53 - 1 is fine.
    const ok = encodeMessage('SignIntent', {
      header: makeHeader(ed),
      keyId: 'k',
      message: new Uint8Array(0),
      requestId: new Uint8Array(0),
      notAfter: Number.MAX_SAFE_INTEGER,
      path: '',
    });
    expect(decodeMessage('SignIntent', ok).notAfter).toBe(Number.MAX_SAFE_INTEGER);
  });
});

// ---- 5. envelope domain separation -------------------------------------------------------------

describe('envelope domain separation', () => {
  const payload = new TextEncoder().encode('sign this, once');

  it('an envelope signed as SIGN_INTENT opens as SIGN_INTENT and not as SIGNATURE_SHARE', () => {
    const env = signEnvelope(alice, PayloadKind.SIGN_INTENT, payload);
    const opened = openEnvelope(env, PayloadKind.SIGN_INTENT);
    expect(opened.kind).toBe(PayloadKind.SIGN_INTENT);
    expect(opened.payload).toEqual(payload);
    expect(opened.sender).toEqual(alice.public.signKey);
    expect(opened.bytes).toEqual(env);
    expect(codeOf(() => openEnvelope(env, PayloadKind.SIGNATURE_SHARE))).toBe(ErrorCode.UNEXPECTED_MESSAGE);
  });

  it('rewriting the kind inside the envelope breaks the signature (BAD_SIGNATURE)', () => {
    const env = signEnvelope(alice, PayloadKind.SIGN_INTENT, payload);
    const w = decodeMessage('Envelope', env);
    const rekinded = encodeMessage('Envelope', { ...w, kind: PayloadKind.SIGNATURE_SHARE });
    expect(codeOf(() => openEnvelope(rekinded, PayloadKind.SIGNATURE_SHARE))).toBe(ErrorCode.BAD_SIGNATURE);
  });

  it('for every pair of kinds: wrong kind is UNEXPECTED_MESSAGE, a rewritten kind is BAD_SIGNATURE', () => {
    const pairs = fc.tuple(fc.constantFrom(...KINDS), fc.constantFrom(...KINDS)).filter(([a, b]) => a !== b);
    fc.assert(
      fc.property(pairs, bytes(200), ([signedAs, other], p) => {
        const env = signEnvelope(alice, signedAs, p);
        expect(openEnvelope(env, signedAs).payload).toEqual(p);
        expect(codeOf(() => openEnvelope(env, other))).toBe(ErrorCode.UNEXPECTED_MESSAGE);
        const w = decodeMessage('Envelope', env);
        expect(codeOf(() => openEnvelope(encodeMessage('Envelope', { ...w, kind: other }), other))).toBe(
          ErrorCode.BAD_SIGNATURE,
        );
      }),
      { numRuns: 50 },
    );
  });

  it('changing payload, sender or signature inside a signed envelope is BAD_SIGNATURE', () => {
    fc.assert(
      fc.property(fc.constantFrom(...KINDS), bytes(200), bytes(200), (kind, p, q) => {
        fc.pre(toHex(p) !== toHex(q));
        const env = signEnvelope(alice, kind, p);
        const w = decodeMessage('Envelope', env);
        expect(codeOf(() => openEnvelope(encodeMessage('Envelope', { ...w, payload: q }), kind))).toBe(
          ErrorCode.BAD_SIGNATURE,
        );
        expect(codeOf(() => openEnvelope(encodeMessage('Envelope', { ...w, sender: bob.public.signKey }), kind))).toBe(
          ErrorCode.BAD_SIGNATURE,
        );
        // bob's signature over the same kind and payload does not pass as alice's.
        const fromBob = decodeMessage('Envelope', signEnvelope(bob, kind, p));
        expect(
          codeOf(() => openEnvelope(encodeMessage('Envelope', { ...w, signature: fromBob.signature }), kind)),
        ).toBe(ErrorCode.BAD_SIGNATURE);
        // bob's complete envelope opens, naming bob.
        expect(openEnvelope(encodeMessage('Envelope', fromBob), kind).sender).toEqual(bob.public.signKey);
      }),
      { numRuns: 50 },
    );
  });

  it('envelope version, sender and signature lengths are checked (DECODE)', () => {
    const w = decodeMessage('Envelope', signEnvelope(alice, PayloadKind.SIGN_INTENT, payload));
    for (const version of [0, 2])
      expect(codeOf(() => openEnvelope(encodeMessage('Envelope', { ...w, version }), PayloadKind.SIGN_INTENT))).toBe(
        ErrorCode.DECODE,
      );
    expect(
      codeOf(() =>
        openEnvelope(encodeMessage('Envelope', { ...w, sender: w.sender.subarray(1) }), PayloadKind.SIGN_INTENT),
      ),
    ).toBe(ErrorCode.DECODE);
    expect(
      codeOf(() =>
        openEnvelope(encodeMessage('Envelope', { ...w, signature: w.signature.subarray(1) }), PayloadKind.SIGN_INTENT),
      ),
    ).toBe(ErrorCode.DECODE);
    expect(
      codeOf(() =>
        openEnvelope(
          encodeMessage('Envelope', { ...w, signature: new Uint8Array([...w.signature, 0]) }),
          PayloadKind.SIGN_INTENT,
        ),
      ),
    ).toBe(ErrorCode.DECODE);
  });
});

// ---- 6. generated descriptor -------------------------------------------------------------------

describe('generated descriptor', () => {
  it('descriptor.gen.ts is current (scripts/gen-proto.mjs --check exits 0)', () => {
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const r = spawnSync(process.execPath, ['scripts/gen-proto.mjs', '--check'], { cwd: root, encoding: 'utf8' });
    expect(r.error).toBeUndefined();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

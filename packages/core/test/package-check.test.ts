/**
 * The merchant's package check (src/package-check.ts, src/merchant.ts) against the cluster's
 * (decodeKeyRecord + decodeOfflinePackage + verifyOfflinePackage), which it must agree with:
 * (1) its protobuf reader and writer (src/package-wire.ts, src/wire/proto-lite.ts) give
 *     protobuf-es's bytes and decodings (reflect-codec.ts), on valid, mutated and random inputs;
 * (2) its identifiers are noble's `Identifier.derive`; its reservation kind the generated enum's;
 * (3) on real packages of all four suites, the same result; on hostile ones (another key, epoch,
 *     device, quorum, order, expiry, tampered reservation, share, message, element, key record)
 *     and on every single-byte flip, the same refusal: code and culprits.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type GroupKey,
  type KeyShare,
  ParticipantIdentity,
  PayloadKind,
  RESERVATION_NONCE_ID_BYTES,
  type SuiteId,
  checkPackagePayment,
  commit,
  createOfflinePackage,
  decodeKeyRecord,
  decodeOfflinePackage,
  encodeKeyRecord,
  encodeMessage,
  encodeOfflinePackage,
  getSuite,
  groupPublicKey,
  isTesseraError,
  needsIntegrity,
  openDeviceClaims,
  openReservation,
  requirePass,
  packageFromText,
  packageToText,
  paymentToJSON,
  runLocalDkg,
  signDeviceClaims,
  signEnvelope,
  signReservation,
  toHex,
  verifyOfflinePackage,
  type DecodedPackage,
  type OfflinePackage,
} from '../src/index.js';
import { RESERVATION_PAYLOAD_KIND } from '../src/envelope-bytes.js';
import { deriveIdentifier } from '../src/fast.js';
import { DEVICE_CLAIMS_PAYLOAD_KIND } from '../src/package-claims.js';
import { checkEd25519Package, checkPackage } from '../src/merchant.js';
import { readKeyRecord, readOfflinePackage, writeOfflinePackage, writeReservation } from '../src/package-wire.js';
import { SUITE_SHAPES } from '../src/suite-ids.js';
import { mutate, mutation, seededRng } from './helpers.js';
import { reflectDecode, reflectEncode } from './reflect-codec.js';

const SUITES: readonly SuiteId[] = ['ed25519', 'secp256k1-tr', 'secp256k1', 'p256'];
const NOW = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const EXPIRES_AT = NOW + 7 * 24 * 3600 * 1000;

// ---- the cluster's check, and verdicts ---------------------------------------------------------

/** The check the cluster runs (and the SDK's checkPackage ran before the merchant's). */
function clusterCheck(keyRecord: Uint8Array, pkg: Uint8Array | string, now: number) {
  const rec = decodeKeyRecord(keyRecord);
  const p = decodeOfflinePackage(typeof pkg === 'string' ? packageFromText(pkg) : pkg);
  verifyOfflinePackage(rec.key, p, { keyId: rec.keyId, epoch: rec.epoch, now });
  const paid = checkPackagePayment({ ...p, suite: p.suite.id, publicKey: groupPublicKey(rec.key) });
  const integrity = needsIntegrity(p.cosigners)
    ? requirePass(() => openDeviceClaims(rec.key, p, p.digest), 'the reservation').integrity
    : undefined;
  return {
    packageId: p.packageId,
    keyId: p.keyId,
    device: p.device,
    message: toHex(p.message),
    cosigners: p.cosigners.map((c) => c.signer),
    expiresAt: Math.min(...p.cosigners.map((c) => c.expiresAt)),
    ...(integrity ? { integrity } : {}),
    ...(paid ? { payment: paymentToJSON(paid.payment) } : {}),
  };
}

type Verdict = { ok: unknown } | { code: string; culprits: readonly string[] };

/** What a check decides: its result, or its typed refusal (anything untyped fails the test). */
async function verdict(f: () => unknown): Promise<Verdict> {
  try {
    return { ok: await f() };
  } catch (e) {
    if (!isTesseraError(e)) throw new Error(`untyped error: ${e instanceof Error ? e.stack : String(e)}`);
    return { code: e.code, culprits: [...e.culprits] };
  }
}

async function expectSameVerdict(keyRecord: Uint8Array, pkg: Uint8Array | string, now = NOW): Promise<Verdict> {
  const cluster = await verdict(() => clusterCheck(keyRecord, pkg, now));
  const merchant = await verdict(() => checkPackage(keyRecord, pkg, now));
  expect(merchant).toEqual(cluster);
  return cluster;
}

// ---- keys and packages -------------------------------------------------------------------------

interface Fixture {
  suite: SuiteId;
  key: GroupKey;
  keyId: string;
  record: Uint8Array;
  ids: Map<string, ParticipantIdentity>;
  shares: Map<string, KeyShare>;
  device: string;
  cosigners: string[];
}

const fixtures = new Map<string, Fixture>();

/** A key from a local DKG: `phone` (the device) and `n - 1` signers; memoised. */
function fixture(suite: SuiteId, t: number, n: number, keyId = 'a1b2c3d4e5f60718', seed = ''): Fixture {
  const name = `${suite}/${t}/${n}/${keyId}${seed}`;
  const hit = fixtures.get(name);
  if (hit) return hit;
  const names = ['phone', ...Array.from({ length: n - 1 }, (_, i) => `signer-${i + 1}`)];
  const rng = seededRng(name);
  const identities = names.map((p) => ParticipantIdentity.generate(p, rng));
  const out = runLocalDkg(getSuite(suite), t, identities, rng, ['phone']);
  const key = (out.get('phone') as { key: GroupKey }).key;
  const fx: Fixture = {
    suite,
    key,
    keyId,
    record: encodeKeyRecord({ keyId, epoch: 0, key, createdAt: NOW }),
    ids: new Map(identities.map((i) => [i.id, i])),
    shares: new Map([...out].map(([id, o]) => [id, o.share])),
    device: 'phone',
    cosigners: names.slice(1, t),
  };
  fixtures.set(name, fx);
  return fx;
}

/** A genuine package; `over` changes the reservations before their co-signers sign them. */
function makePackage(
  fx: Fixture,
  seed: string,
  opts: {
    message?: Uint8Array;
    expiresAt?: number;
    cosigners?: string[];
    /** The reservations' allowance requires the device's verdict; `claims` the one it signs. */
    requireIntegrity?: boolean;
    claims?: 'pass' | 'fail' | 'unknown' | '';
  } = {},
): DecodedPackage {
  const rng = seededRng(seed);
  const reservations = (opts.cosigners ?? fx.cosigners).map((signer) => {
    const { commitment } = commit(fx.shares.get(signer) as KeyShare, rng);
    const env = signReservation(fx.ids.get(signer) as ParticipantIdentity, {
      suite: fx.key.suite,
      keyId: fx.keyId,
      epoch: 0,
      device: fx.device,
      signer,
      nonceId: rng(RESERVATION_NONCE_ID_BYTES),
      hiding: commitment.hiding,
      binding: commitment.binding,
      expiresAt: opts.expiresAt ?? EXPIRES_AT,
      ...(opts.requireIntegrity
        ? { allowance: { allowanceId: rng(16), caps: [], perPayment: [], requireIntegrity: true } }
        : {}),
    });
    return openReservation(fx.key, env);
  });
  return createOfflinePackage({
    key: fx.key,
    share: fx.shares.get(fx.device) as KeyShare,
    keyId: fx.keyId,
    epoch: 0,
    device: fx.device,
    message: opts.message ?? new TextEncoder().encode(`pay 12.50 to merchant-7 (${seed})`),
    reservations,
    createdAt: NOW,
    rng,
    ...(opts.claims !== undefined
      ? {
          claims: {
            signer: fx.ids.get(fx.device) as ParticipantIdentity,
            integrity: opts.claims,
            integrityDetail: opts.claims ? `attest:${opts.claims}` : '',
          },
        }
      : {}),
  });
}

/** A package re-encoded with changes (no signature redone): what a relay could deliver. */
const altered = (p: OfflinePackage, change: Partial<OfflinePackage>) => encodeOfflinePackage({ ...p, ...change });

const flipLast = (b: Uint8Array) => Uint8Array.from([...b.subarray(0, -1), (b[b.length - 1] as number) ^ 1]);

const plusOne = (fx: Fixture, s: Uint8Array) => {
  const Fn = fx.key.suite.Fn;
  return Fn.toBytes(Fn.add(Fn.fromBytes(s), Fn.ONE));
};

// ---- (1) the codec -----------------------------------------------------------------------------

const text = fc.string({ unit: 'binary', maxLength: 24 });
// Short ones go through the writer's scratch bytes, 64 and more are kept as chunks of their own.
const bytes = fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ minLength: 62, maxLength: 200 }));
// Suites 0..4: the generated encoder refuses an enum value the schema does not name.
const header = fc.record({ version: fc.nat(3), suite: fc.nat(4) });
const u64 = fc.oneof(fc.constant(0), fc.nat(1000), fc.maxSafeNat());
const assetAmount = fc.record({ asset: text, amount: text });
const allowance = fc.option(
  fc.record({
    allowanceId: bytes,
    caps: fc.array(assetAmount, { maxLength: 3 }),
    perPayment: fc.array(assetAmount, { maxLength: 3 }),
    fiat: fc.option(
      fc.record({
        currency: text,
        cap: text,
        perPayment: text,
        prices: bytes,
        approvals: fc.array(bytes, { maxLength: 2 }),
      }),
      { nil: null },
    ),
    requireIntegrity: fc.boolean(),
  }),
  { nil: null },
);
const payment = fc.option(fc.record({ chain: text, tx: bytes, input: fc.nat(2 ** 32 - 1) }), { nil: null });

describe('merchant codec (proto-lite) against the generated codec', () => {
  it('writes Reservation and OfflinePackage byte for byte as protobuf-es does', () => {
    fc.assert(
      fc.property(
        fc.record({
          header,
          keyId: text,
          epoch: u64,
          device: text,
          signer: text,
          nonceId: bytes,
          hiding: bytes,
          binding: bytes,
          expiresAt: u64,
          allowance,
        }),
        (r) => {
          // The wire types say a sub-message is always there; the generated encoder also takes none.
          const wire = r as Parameters<typeof reflectEncode<'Reservation'>>[1];
          expect(toHex(writeReservation(r))).toBe(toHex(reflectEncode('Reservation', wire)));
        },
      ),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(
        fc.record({
          header: fc.option(header, { nil: null }),
          keyId: text,
          epoch: u64,
          device: text,
          message: bytes,
          hiding: bytes,
          binding: bytes,
          share: bytes,
          cosigners: fc.array(
            fc.record({
              signer: text,
              nonceId: bytes,
              hiding: bytes,
              binding: bytes,
              expiresAt: u64,
              signature: bytes,
              allowance,
            }),
            { maxLength: 4 },
          ),
          createdAt: u64,
          payment,
          claims: bytes,
        }),
        (p) => {
          // The wire types say a header is always there; the generated encoder also takes none.
          const wire = p as Parameters<typeof reflectEncode<'OfflinePackage'>>[1];
          expect(toHex(writeOfflinePackage(p))).toBe(toHex(reflectEncode('OfflinePackage', wire)));
        },
      ),
      { numRuns: 300 },
    );
  });

  /** Both decoders refuse, or both give the same fields. */
  function sameDecoding(name: 'OfflinePackage' | 'KeyRecord', b: Uint8Array): void {
    const read = name === 'OfflinePackage' ? readOfflinePackage : readKeyRecord;
    let want: unknown;
    let got: unknown;
    try {
      want = reflectDecode(name, b);
    } catch (e) {
      want = { refused: (e as { code?: string }).code };
    }
    try {
      got = read(b);
    } catch (e) {
      got = { refused: (e as { code?: string }).code };
    }
    expect(got, `${name} ${toHex(b)}`).toEqual(want);
  }

  it('a uint64 field twice, the first above 2^53: the last one counts, as in protobuf-es', () => {
    const fx = fixture('ed25519', 2, 3);
    const huge = [0x18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]; // epoch = 2^63
    for (const tail of [[0x18, 0x05], []]) {
      const b = Uint8Array.from([...fx.record, ...huge, ...tail]);
      sameDecoding('KeyRecord', b);
      const pkg = Uint8Array.from([...makePackage(fx, 'u64').bytes, ...huge, ...tail]);
      sameDecoding('OfflinePackage', pkg);
    }
    expect(readKeyRecord(Uint8Array.from([...fx.record, ...huge, 0x18, 0x05])).epoch).toBe(5);
  });

  it('reads valid, mutated and random bytes as the generated decoder does (same fields or both DECODE)', () => {
    const fx = fixture('ed25519', 2, 3);
    const valid = [makePackage(fx, 'codec').bytes, fx.record];
    fc.assert(
      fc.property(fc.nat(1), fc.array(mutation, { minLength: 1, maxLength: 3 }), (which, ms) => {
        const b = ms.reduce(mutate, valid[which] as Uint8Array);
        sameDecoding(which === 0 ? 'OfflinePackage' : 'KeyRecord', b);
      }),
      { numRuns: 800 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        sameDecoding('OfflinePackage', b);
        sameDecoding('KeyRecord', b);
      }),
      { numRuns: 800 },
    );
  });
});

// ---- (2) the constants it shares ---------------------------------------------------------------

describe('merchant constants', () => {
  it('derives the identifiers noble derives, for every suite', () => {
    for (const id of SUITES) {
      const suite = getSuite(id);
      fc.assert(
        fc.property(fc.string({ minLength: 1, maxLength: 64 }), (name) => {
          expect(deriveIdentifier(suite, name)).toBe(suite.frost.Identifier.derive(name));
        }),
        { numRuns: 50 },
      );
    }
  });

  it('names the reservation kind and the suites as the generated schema and the suites do', () => {
    expect(RESERVATION_PAYLOAD_KIND).toBe(PayloadKind.RESERVATION);
    for (const s of SUITE_SHAPES) {
      const suite = getSuite(s.id);
      expect([suite.wireId, suite.scalarBytes, suite.elementBytes]).toEqual([s.wireId, s.scalarBytes, s.elementBytes]);
    }
  });
});

// ---- (3) the check -----------------------------------------------------------------------------

describe('merchant check against the cluster check', () => {
  it.each(SUITES)('%s: a genuine package passes both with the same result (bytes and text)', async (suite) => {
    const fx = fixture(suite, 2, 3);
    const p = makePackage(fx, `genuine-${suite}`);
    const v = await expectSameVerdict(fx.record, p.bytes);
    expect(v).toEqual({
      ok: {
        packageId: p.packageId,
        keyId: fx.keyId,
        device: 'phone',
        message: toHex(p.message),
        cosigners: ['signer-1'],
        expiresAt: EXPIRES_AT,
      },
    });
    await expectSameVerdict(fx.record, packageToText(p.bytes));
    const ed = await verdict(() => checkEd25519Package(fx.record, p.bytes, NOW));
    expect(ed).toEqual(suite === 'ed25519' ? v : { code: 'WRONG_SUITE', culprits: [] });
  });

  it('3-of-4: two co-signers in canonical order pass; reversed, both refuse DECODE', async () => {
    const fx = fixture('ed25519', 3, 4);
    const p = makePackage(fx, 'three');
    expect('ok' in (await expectSameVerdict(fx.record, p.bytes))).toBe(true);
    const reversed = altered(p, { cosigners: [...p.cosigners].reverse() });
    expect(await expectSameVerdict(fx.record, reversed)).toMatchObject({ code: 'DECODE' });
  });

  it('hostile packages and key records: the same refusal, code and culprits', async () => {
    const fx = fixture('ed25519', 2, 3);
    const p = makePackage(fx, 'hostile');
    const other = fixture('ed25519', 2, 3, '0f0e0d0c0b0a0908');
    const sameId = fixture('ed25519', 2, 3, fx.keyId, 'another DKG');
    const secp = fixture('secp256k1', 2, 3);
    const three = fixture('ed25519', 3, 4);
    const p3 = makePackage(three, 'few');
    const [c] = p.cosigners;
    if (!c) throw new Error('no co-signer');
    const garbage = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);
    const cases: [string, Uint8Array, Uint8Array | string, number?][] = [
      ['another key record', other.record, p.bytes],
      ['another key under the same id', sameId.record, p.bytes],
      ['another key id', fx.record, altered(p, { keyId: '0f0e0d0c0b0a0908' })],
      ['another epoch', fx.record, altered(p, { epoch: 1 })],
      ['a device outside the key', fx.record, altered(p, { device: 'intruder' })],
      ['the device as its own co-signer', fx.record, altered(p, { cosigners: [{ ...c, signer: 'phone' }] })],
      ['too few signers for 3-of-4', three.record, altered(p3, { cosigners: p3.cosigners.slice(0, 1) })],
      ['soon expired, read after', fx.record, makePackage(fx, 'old', { expiresAt: NOW + 1000 }).bytes, NOW + 1001],
      ['reservation expiry moved', fx.record, altered(p, { cosigners: [{ ...c, expiresAt: c.expiresAt + 1 }] })],
      ['reservation signature of another', fx.record, altered(p, { cosigners: [{ ...c, signer: 'signer-2' }] })],
      [
        'reservation signature flipped',
        fx.record,
        altered(p, { cosigners: [{ ...c, signature: flipLast(c.signature) }] }),
      ],
      ['share + 1', fx.record, altered(p, { share: plusOne(fx, p.share) })],
      ['message changed', fx.record, altered(p, { message: new TextEncoder().encode('pay 1250.00 to merchant-7') })],
      ['device commitment not a point', fx.record, altered(p, { commitment: { ...p.commitment, hiding: garbage } })],
      [
        'device commitment swapped',
        fx.record,
        altered(p, { commitment: { hiding: p.commitment.binding, binding: p.commitment.hiding } }),
      ],
      ['reserved commitment not a point', fx.record, altered(p, { cosigners: [{ ...c, binding: garbage }] })],
      ['created_at changed (no signature covers it)', fx.record, altered(p, { createdAt: NOW + 1 })],
      ['a secp256k1 package for an ed25519 key', fx.record, makePackage(secp, 'cross').bytes],
      ['trailing bytes', fx.record, Uint8Array.from([...p.bytes, 0x58, 0x00])],
      ['empty package', fx.record, new Uint8Array(0)],
      ['text without its prefix', fx.record, packageToText(p.bytes).slice(5)],
      ['key record truncated', fx.record.slice(0, fx.record.length - 40), p.bytes],
      ['key record of another suite', secp.record, p.bytes],
      ['reading at a later time', fx.record, p.bytes, EXPIRES_AT + 1],
    ];
    const codes: Record<string, string> = {};
    for (const [what, record, pkg, now] of cases) {
      const v = await expectSameVerdict(record, pkg, now);
      codes[what] = 'ok' in v ? 'ok' : v.code;
    }
    expect(codes).toEqual({
      'another key record': 'INVALID_ARGUMENT',
      'another key under the same id': 'RESERVATION_INVALID',
      'another key id': 'INVALID_ARGUMENT',
      'another epoch': 'RESERVATION_INVALID',
      'a device outside the key': 'INVALID_ARGUMENT',
      'the device as its own co-signer': 'INVALID_ARGUMENT',
      'too few signers for 3-of-4': 'INVALID_ARGUMENT',
      'soon expired, read after': 'RESERVATION_EXPIRED',
      'reservation expiry moved': 'RESERVATION_INVALID',
      'reservation signature of another': 'RESERVATION_INVALID',
      'reservation signature flipped': 'RESERVATION_INVALID',
      'share + 1': 'BAD_SIGNATURE_SHARE',
      'message changed': 'BAD_SIGNATURE_SHARE',
      'device commitment not a point': 'BAD_SIGNATURE_SHARE',
      'device commitment swapped': 'BAD_SIGNATURE_SHARE',
      'reserved commitment not a point': 'RESERVATION_INVALID',
      'created_at changed (no signature covers it)': 'ok',
      'a secp256k1 package for an ed25519 key': 'WRONG_SUITE',
      'trailing bytes': 'DECODE',
      'empty package': 'DECODE',
      'text without its prefix': 'DECODE',
      'key record truncated': 'DECODE',
      'key record of another suite': 'WRONG_SUITE',
      'reading at a later time': 'RESERVATION_EXPIRED',
    });
  });

  it("reservations that require the device's verdict: both open its claims and agree — pass is shown, anything else refused (missing or foreign claims not finally)", async () => {
    const fx = fixture('ed25519', 2, 3);
    const make = (claims?: 'pass' | 'fail' | 'unknown' | '') =>
      makePackage(fx, 'integrity', { requireIntegrity: true, ...(claims !== undefined ? { claims } : {}) });
    const pass = make('pass');
    const other = makePackage(fx, 'integrity, another', { requireIntegrity: true, claims: 'pass' });
    const byCosigner = signDeviceClaims(fx.ids.get('signer-1') as ParticipantIdentity, {
      packageDigest: pass.digest,
      signedAt: NOW,
      integrity: 'pass',
      integrityDetail: '',
    });
    const cases: [string, Uint8Array][] = [
      ['pass', pass.bytes],
      ['no claims', make().bytes],
      ['fail', make('fail').bytes],
      ['unknown', make('unknown').bytes],
      ['no verdict given', make('').bytes],
      ['claims stripped by a relay', altered(pass, { claims: null })],
      ["another package's claims", altered(pass, { claims: other.claims ?? null })],
      ['claims signed by a co-signer', altered(pass, { claims: byCosigner })],
      ['claims signature flipped', altered(pass, { claims: flipLast(pass.claims as Uint8Array) })],
      ['claims not an envelope', altered(pass, { claims: Uint8Array.of(0x0a, 0x05, 1, 2) })],
    ];
    const got: Record<string, string> = {};
    for (const [what, pkg] of cases) {
      const v = await expectSameVerdict(fx.record, pkg);
      got[what] = 'ok' in v ? `ok ${(v.ok as { integrity?: string }).integrity}` : v.code;
    }
    expect(got).toEqual({
      pass: 'ok pass',
      'no claims': 'FAILED_PRECONDITION',
      fail: 'POLICY_DENIED',
      unknown: 'POLICY_DENIED',
      'no verdict given': 'POLICY_DENIED',
      'claims stripped by a relay': 'FAILED_PRECONDITION',
      "another package's claims": 'FAILED_PRECONDITION',
      'claims signed by a co-signer': 'FAILED_PRECONDITION',
      'claims signature flipped': 'FAILED_PRECONDITION',
      'claims not an envelope': 'FAILED_PRECONDITION',
    });
    // Without the requirement, claims are carried and not judged: the merchant shows no verdict.
    const free = await expectSameVerdict(fx.record, makePackage(fx, 'integrity, free', { claims: 'fail' }).bytes);
    expect('ok' in free && (free.ok as { integrity?: string }).integrity).toBe(undefined);
    // Every single-byte change of the passing package, claims included: the same verdict.
    for (let i = 0; i < pass.bytes.length; i += 3) {
      const b = pass.bytes.slice();
      b[i] = (b[i] as number) ^ (1 << (i % 8));
      await expectSameVerdict(fx.record, b);
    }
    expect(DEVICE_CLAIMS_PAYLOAD_KIND).toBe(PayloadKind.DEVICE_CLAIMS);
    // Claims signed by the device whose payload ends in nested unknown groups (the payload is not
    // held to a canonical encoding): both readers stop at the same depth.
    const body = encodeMessage('DeviceClaims', {
      packageDigest: pass.digest,
      signedAt: NOW,
      integrity: 'pass',
      integrityDetail: '',
    });
    const nested: Record<number, string> = {};
    for (const depth of [1, 98, 99, 100, 101]) {
      const groups = Uint8Array.from([...Array(depth).fill(0x7b), ...Array(depth).fill(0x7c)]); // field 15, start/end group
      const claims = signEnvelope(
        fx.ids.get('phone') as ParticipantIdentity,
        PayloadKind.DEVICE_CLAIMS,
        Uint8Array.from([...body, ...groups]),
      );
      const v = await expectSameVerdict(fx.record, altered(pass, { claims }));
      nested[depth] = 'ok' in v ? 'ok' : v.code;
    }
    expect(nested).toEqual({ 1: 'ok', 98: 'ok', 99: 'ok', 100: 'FAILED_PRECONDITION', 101: 'FAILED_PRECONDITION' });
  });

  it.each(SUITES)('%s: every single-byte change of a package gets the same verdict from both', async (suite) => {
    const fx = fixture(suite, 2, 3);
    const p = makePackage(fx, `flips-${suite}`);
    const steps = suite === 'ed25519' ? 1 : 7; // every byte for Ed25519, every 7th for the others
    for (let i = 0; i < p.bytes.length; i += steps) {
      const b = p.bytes.slice();
      b[i] = (b[i] as number) ^ (1 << (i % 8));
      await expectSameVerdict(fx.record, b);
    }
  });

  it('random changes to the key record and the package: the same verdict (property)', async () => {
    const fx = fixture('ed25519', 2, 3);
    const p = makePackage(fx, 'property');
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }),
        async (onRecord, flips) => {
          const target = (onRecord ? fx.record : p.bytes).slice();
          for (const [at, v] of flips) target[at % target.length] = v;
          await expectSameVerdict(onRecord ? target : fx.record, onRecord ? p.bytes : target);
        },
      ),
      { numRuns: 150 },
    );
  });
});

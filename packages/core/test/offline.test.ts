/**
 * Offline co-signing (src/offline.ts) and base45 (src/base45.ts):
 * (1) base45 against the RFC 9285 vectors, its refusals, and round trips;
 * (2) reservations -> offline package -> verification -> co-signer shares -> aggregation, checked
 *     with the plain single-party verifier, for all four suites (2-of-3; 3-of-5 on two);
 * (3) differential: the package path gives the very bytes noble's RFC 9591 FROST gives for the
 *     same nonces, commitment list and message;
 * (4) size and QR text form;
 * (5) refusals with their exact error codes (tampering, reservations, quorum, canonical
 *     encoding, every single-byte flip, random garbage);
 * (6) device-to-device 2-of-n co-signing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sha512 } from '@noble/hashes/sha2.js';
import type { FrostSecret, NonceCommitments, Nonces } from '@noble/curves/abstract/frost.js';
import {
  ErrorCode,
  type KeyShare,
  ParticipantIdentity,
  PayloadKind,
  RESERVATION_NONCE_ID_BYTES,
  answerCosignRequest,
  base45Decode,
  base45Encode,
  bytesToHex,
  commit,
  completeCosign,
  createCosignRequest,
  createOfflinePackage,
  decodeMessage,
  decodeOfflinePackage,
  encodeMessage,
  encodeOfflinePackage,
  encodeReservation,
  fromHex,
  getSuite,
  groupPublicKey,
  isTesseraError,
  openCosignRequest,
  openReservation,
  SigningSession,
  packageCommitments,
  packageDigest,
  packageFromText,
  packageToText,
  prepareKey,
  prepareSession,
  runLocalDkg,
  signEnvelope,
  signReservation,
  signShare,
  verifyOfflinePackage,
  verifyReservation,
  type DecodedPackage,
  type GroupKey,
  type OfflinePackage,
  type Reservation,
  type Rng,
  type SignedReservation,
  type SigningNonces,
  type Suite,
  type SuiteId,
} from '../src/index.js';
import { seededRng } from './helpers.js';

// ---- helpers -----------------------------------------------------------------------------------

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const hex = (b: Uint8Array) => bytesToHex(b);

const KEY_ID = 'a1b2c3d4e5f60718';
const CREATED_AT = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const EXPIRES_AT = CREATED_AT + 30 * 24 * 3600 * 1000;

function must<T>(v: T | undefined | null, what: string): T {
  if (v === undefined || v === null) throw new Error(`missing ${what}`);
  return v;
}

/** Runs `fn` and returns the Tessera error it throws; fails on no throw or a foreign error. */
function caught(fn: () => unknown): { code: string; culprits: readonly string[]; message: string } {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (err === undefined) throw new Error('expected a Tessera error, nothing was thrown');
  if (!isTesseraError(err)) throw new Error(`expected a Tessera error, got ${String(err)}`);
  return err;
}

function expectCode(fn: () => unknown, code: string, culprits?: readonly string[]): void {
  const e = caught(fn);
  expect(e.code, e.message).toBe(code);
  if (culprits) expect([...e.culprits]).toEqual(culprits);
}

/** A scalar plus one (a share that is "close" but wrong). */
function plusOne(suite: Suite, s: Uint8Array): Uint8Array {
  return suite.Fn.toBytes(suite.Fn.add(suite.Fn.fromBytes(s), suite.Fn.ONE));
}

interface Fixture {
  suite: Suite;
  key: GroupKey;
  keyId: string;
  ids: Map<string, ParticipantIdentity>;
  shares: Map<string, KeyShare>;
  device: string;
  signers: string[];
}

const fixtures = new Map<string, Fixture>();

/** A DKG among `participants` (the first is the device); memoised so each key is made once. */
function setup(suiteId: SuiteId, t: number, participants: readonly string[]): Fixture {
  const name = `${suiteId}/${t}/${participants.join(',')}`;
  const hit = fixtures.get(name);
  if (hit) return hit;
  const suite = getSuite(suiteId);
  const idRng = seededRng(`ids:${name}`);
  const identities = participants.map((p) => ParticipantIdentity.generate(p, idRng));
  const out = runLocalDkg(suite, t, identities, seededRng(`dkg:${name}`));
  const first = must(out.get(must(participants[0], 'device')), 'dkg output');
  const fx: Fixture = {
    suite,
    key: first.key,
    keyId: KEY_ID,
    ids: new Map(identities.map((i) => [i.id, i])),
    shares: new Map([...out].map(([id, o]) => [id, o.share])),
    device: must(participants[0], 'device'),
    signers: participants.slice(1),
  };
  fixtures.set(name, fx);
  return fx;
}

const shareOf = (fx: Fixture, id: string) => must(fx.shares.get(id), `share of ${id}`);
const identityOf = (fx: Fixture, id: string) => must(fx.ids.get(id), `identity of ${id}`);

interface Reserved {
  r: Reservation;
  envelope: Uint8Array;
  signed: SignedReservation;
  nonces: SigningNonces;
}

/** A co-signer's reservation for the fixture's device: fresh nonces, signed and re-opened. */
function reserve(fx: Fixture, signer: string, rng: Rng, over: Partial<Reservation> = {}): Reserved {
  const { nonces, commitment } = commit(shareOf(fx, signer), rng);
  const r: Reservation = {
    suite: fx.suite,
    keyId: fx.keyId,
    epoch: 0,
    device: fx.device,
    signer,
    nonceId: rng(RESERVATION_NONCE_ID_BYTES),
    hiding: commitment.hiding,
    binding: commitment.binding,
    expiresAt: EXPIRES_AT,
    ...over,
  };
  const envelope = signReservation(identityOf(fx, signer), r);
  return { r, envelope, signed: openReservation(fx.key, envelope), nonces };
}

/** A package from the device with reservations of `cosigners`. */
function makePackage(fx: Fixture, cosigners: readonly string[], message: Uint8Array, seed: string) {
  const rng = seededRng(seed);
  const reserved = cosigners.map((c) => reserve(fx, c, rng));
  const pkg = createOfflinePackage({
    key: fx.key,
    share: shareOf(fx, fx.device),
    keyId: fx.keyId,
    epoch: 0,
    device: fx.device,
    message,
    reservations: reserved.map((x) => x.signed),
    createdAt: CREATED_AT,
    rng: seededRng(`${seed}:device`),
  });
  return { pkg, reserved };
}

/** Re-encodes a (modified) package and decodes it again: what a relay could deliver. */
function reencode(p: OfflinePackage): DecodedPackage {
  return decodeOfflinePackage(encodeOfflinePackage(p));
}

/**
 * `items` in the key's roster order. The roster is sorted by FROST identifier (as a scalar) when
 * the key is built, so this is the canonical co-signer order, computed independently of offline.ts.
 */
function inRosterOrder<T extends { signer: string }>(fx: Fixture, items: readonly T[]): T[] {
  const at = (id: string) => fx.key.roster.findIndex((r) => r.id === id);
  return [...items].sort((a, b) => at(a.signer) - at(b.signer));
}

function withCosigner(p: OfflinePackage, i: number, patch: Partial<SignedReservation>): OfflinePackage {
  return { ...p, cosigners: p.cosigners.map((c, j) => (j === i ? { ...c, ...patch } : c)) };
}

const verifyAt0 = (fx: Fixture, p: OfflinePackage, now?: number) =>
  verifyOfflinePackage(
    fx.key,
    p,
    now === undefined ? { keyId: fx.keyId, epoch: 0 } : { keyId: fx.keyId, epoch: 0, now },
  );

/** Every error code the package decode + verify path may legitimately raise. */
const PACKAGE_CODES = new Set<string>([
  ErrorCode.DECODE,
  ErrorCode.UNSUPPORTED_VERSION,
  ErrorCode.WRONG_SUITE,
  ErrorCode.INVALID_ARGUMENT,
  ErrorCode.RESERVATION_INVALID,
  ErrorCode.RESERVATION_EXPIRED,
  ErrorCode.BAD_SIGNATURE_SHARE,
]);

/** Decode + verify; returns 'ok' or the Tessera error code (a foreign error propagates). */
function decodeAndVerify(fx: Fixture, bytes: Uint8Array): string {
  try {
    verifyAt0(fx, decodeOfflinePackage(bytes));
    return 'ok';
  } catch (e) {
    if (!isTesseraError(e)) throw e;
    return e.code;
  }
}

/** Offset of the created_at field (tag 0x50: field 10, varint), the last field of a package. */
function createdAtStart(b: Uint8Array): number {
  let n = CREATED_AT;
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    len++;
  }
  const at = b.length - 1 - len;
  expect(b[at], 'created_at tag').toBe(0x50);
  return at;
}

/** A package with its header's suite number replaced (header = 0a 04 08 01 10 <suite>). */
function withHeaderSuite(b: Uint8Array, suite: number): Uint8Array {
  expect([...b.subarray(0, 5)]).toEqual([0x0a, 0x04, 0x08, 0x01, 0x10]);
  const out = b.slice();
  out[5] = suite;
  return out;
}

// ---- base45 ------------------------------------------------------------------------------------

describe('base45 (RFC 9285)', () => {
  it.each([
    ['AB', 'BB8'],
    ['Hello!!', '%69 VD92EX0'],
    ['base-45', 'UJCLQE7W581'],
    ['ietf!', 'QED8WEX0'],
    ['', ''],
  ])('encodes %j as %j and decodes it back', (plain, text) => {
    expect(base45Encode(enc(plain))).toBe(text);
    expect(dec(base45Decode(text))).toBe(plain);
  });

  it('decodes the RFC 9285 §4.3 example "QED8WEX0" to "ietf!"', () => {
    expect(dec(base45Decode('QED8WEX0'))).toBe('ietf!');
  });

  it('encodes the extremes of a byte pair and a single byte', () => {
    expect(base45Encode(new Uint8Array([0xff, 0xff]))).toBe('FGW'); // 65535 = 15 + 11*45 + 32*2025
    expect(base45Encode(new Uint8Array([0, 0]))).toBe('000');
    expect(base45Encode(new Uint8Array([0xff]))).toBe('U5'); // 255 = 30 + 5*45
    expect([...base45Decode('FGW')]).toEqual([0xff, 0xff]);
    expect([...base45Decode('U5')]).toEqual([0xff]);
  });

  it.each([
    ['GGW', 'three characters above 65535'],
    ['V5', 'two characters above 255'],
    [':::', 'three characters far above 65535'],
    ['A', 'length 1 (mod 3)'],
    ['BB8A', 'length 4 (mod 3 == 1)'],
    ['bb8', 'lowercase'],
    ['BB#', 'a character outside the alphabet'],
    ['BB\u00e9', 'a non-ASCII character'],
  ])('refuses %j (%s) with DECODE', (text) => {
    expectCode(() => base45Decode(text), ErrorCode.DECODE);
  });

  it('refuses a non-string with DECODE', () => {
    expectCode(() => base45Decode(42 as unknown as string), ErrorCode.DECODE);
  });

  it('round trips arbitrary bytes; output is QR-alphanumeric and of length 3*floor(n/2) + 2*(n mod 2)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        const t = base45Encode(b);
        expect(t).toMatch(/^[0-9A-Z $%*+\-./:]*$/);
        expect(t.length).toBe(3 * Math.floor(b.length / 2) + 2 * (b.length % 2));
        expect(hex(base45Decode(t))).toBe(hex(b));
      }),
      { numRuns: 300 },
    );
  });

  it('is canonical: any alphabet string either fails with DECODE or re-encodes to itself', () => {
    const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:';
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...alphabet), { maxLength: 30 }), (chars) => {
        const s = chars.join('');
        let bytes: Uint8Array;
        try {
          bytes = base45Decode(s);
        } catch (e) {
          expect(isTesseraError(e) && e.code).toBe(ErrorCode.DECODE);
          return;
        }
        expect(base45Encode(bytes)).toBe(s);
      }),
      { numRuns: 500 },
    );
  });
});

// ---- end to end --------------------------------------------------------------------------------

const CONFIGS: readonly { suiteId: SuiteId; t: number; n: number }[] = [
  { suiteId: 'ed25519', t: 2, n: 3 },
  { suiteId: 'ed25519', t: 3, n: 5 },
  { suiteId: 'secp256k1-tr', t: 2, n: 3 },
  { suiteId: 'secp256k1-tr', t: 3, n: 5 },
  { suiteId: 'secp256k1', t: 2, n: 3 },
  { suiteId: 'p256', t: 2, n: 3 },
];

const participantsFor = (n: number) => ['device-a', ...Array.from({ length: n - 1 }, (_, i) => `signer-${i + 1}`)];

/** A random choice of t-1 co-signers out of the fixture's signers. */
const cosignerArb = (fx: Fixture, t: number) => fc.shuffledSubarray(fx.signers, { minLength: t - 1, maxLength: t - 1 });

describe.each(CONFIGS)('offline package, $suiteId $t-of-$n', ({ suiteId, t, n }) => {
  const fx = setup(suiteId, t, participantsFor(n));

  it('create -> decode -> verify -> co-signer shares -> aggregate: the plain verifier accepts (random messages and co-signers)', () => {
    let run = 0;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), cosignerArb(fx, t), (message, cosigners) => {
        const seed = `${suiteId}:${t}:e2e:${run++}`;
        const { pkg, reserved } = makePackage(fx, cosigners, message, seed);

        expect(pkg.packageId).toMatch(/^[0-9a-f]{32}$/);
        expect(pkg.device).toBe(fx.device);
        // Emitted in canonical order (the roster's), whatever order the reservations came in.
        expect(pkg.cosigners.map((c) => c.signer)).toEqual(
          fx.key.roster.map((r) => r.id).filter((id) => cosigners.includes(id)),
        );
        const again = decodeOfflinePackage(pkg.bytes);
        expect(again.packageId).toBe(pkg.packageId);
        expect(hex(again.digest)).toBe(hex(pkg.digest));
        expect(hex(again.message)).toBe(hex(message));
        expect(hex(encodeOfflinePackage(again))).toBe(hex(pkg.bytes));
        for (const c of again.cosigners) expect(verifyReservation(fx.key, c)).toBe(true);

        const session = verifyOfflinePackage(fx.key, again, { keyId: fx.keyId, epoch: 0, now: CREATED_AT });
        expect([...session.signers].sort()).toEqual([fx.device, ...cosigners].sort());

        const shares = new Map<string, Uint8Array>([[fx.device, again.share]]);
        reserved.forEach((x, i) => {
          const signer = must(cosigners[i], 'cosigner');
          const s = signShare(shareOf(fx, signer), fx.key, x.nonces, packageCommitments(fx.key, again), again.message);
          expect(session.verifyShare(signer, s)).toBe(true);
          shares.set(signer, s);
        });
        const sig = session.aggregate(shares);
        expect(sig.length).toBe(fx.suite.signatureBytes);
        expect(fx.suite.verify(sig, message, groupPublicKey(fx.key))).toBe(true);
        // The signature is over this message only.
        const other = new Uint8Array([...message, 0]);
        expect(fx.suite.verify(sig, other, groupPublicKey(fx.key))).toBe(false);
      }),
      { numRuns: 10 },
    );
  });

  it('differential: byte-identical shares and signature to noble FROST with the same nonces', () => {
    let run = 0;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), cosignerArb(fx, t), (message, cosigners) => {
        const seed = `${suiteId}:${t}:diff:${run++}`;
        const s = fx.suite;
        const sb = s.scalarBytes;
        const asNonces = (b: Uint8Array): Nonces => ({ hiding: b.slice(0, sb), binding: b.slice(sb) }) as Nonces;

        // Learn the device nonces createOfflinePackage will draw from the same seeded rng.
        const replay = commit(shareOf(fx, fx.device), seededRng(`${seed}:device`));
        const deviceNonces = asNonces(replay.nonces.exportSecret());
        const { pkg, reserved } = makePackage(fx, cosigners, message, seed);
        expect(hex(pkg.commitment.hiding)).toBe(hex(replay.commitment.hiding));
        expect(hex(pkg.commitment.binding)).toBe(hex(replay.commitment.binding));

        const list = packageCommitments(fx.key, pkg) as NonceCommitments[];
        const pub = fx.key.public;
        const secret = (id: string) => shareOf(fx, id).frostSecret() as FrostSecret;
        const nobleShares: Record<string, Uint8Array> = {};
        nobleShares[shareOf(fx, fx.device).identifier] = s.frost.signShare(
          secret(fx.device),
          pub,
          deviceNonces,
          list,
          message,
        );
        const ours = new Map<string, Uint8Array>([[fx.device, pkg.share]]);
        reserved.forEach((x, i) => {
          const id = must(cosigners[i], 'cosigner');
          const nonces = asNonces(x.nonces.exportSecret());
          nobleShares[shareOf(fx, id).identifier] = s.frost.signShare(secret(id), pub, nonces, list, message);
          ours.set(id, signShare(shareOf(fx, id), fx.key, x.nonces, packageCommitments(fx.key, pkg), message));
        });
        for (const [id, share] of ours)
          expect(hex(share), id).toBe(hex(must(nobleShares[shareOf(fx, id).identifier], id)));
        const nobleSig = s.frost.aggregate(pub, list, message, nobleShares);
        const session = verifyAt0(fx, pkg);
        expect(hex(session.aggregate(ours))).toBe(hex(nobleSig));
        // noble's own verifier agrees, as does the plain one.
        expect(s.frost.verify(nobleSig, message, groupPublicKey(fx.key))).toBe(true);
      }),
      { numRuns: 6 },
    );
  });
});

// ---- size and text form ------------------------------------------------------------------------

describe('package size and QR text form', () => {
  const sizes: Record<string, { bytes: number; text: number }> = {};
  const QR_ALNUM = /^[0-9A-Z $%*+\-./:]+$/;

  it.each(['ed25519', 'secp256k1-tr', 'secp256k1', 'p256'] as const)('%s 2-of-3, 32-byte message', (suiteId) => {
    const fx = setup(suiteId, 2, ['device-3f2a9c1d', 'signer-1', 'signer-2']);
    const message = seededRng('32-byte message')(32);
    const { pkg } = makePackage(fx, ['signer-1'], message, `${suiteId}:size`);
    const text = packageToText(pkg.bytes);
    sizes[suiteId] = { bytes: pkg.bytes.length, text: text.length };
    console.log(
      `offline package ${suiteId} 2-of-3, 32-byte message: ${pkg.bytes.length} bytes, text ${text.length} chars`,
    );

    // Field-by-field lower bound: the share, three commitments, one signature and the message.
    expect(pkg.bytes.length).toBeGreaterThan(fx.suite.scalarBytes + 4 * fx.suite.elementBytes + 64 + 32);
    if (suiteId === 'ed25519') expect(pkg.bytes.length).toBeLessThan(400);
    if (suiteId === 'secp256k1-tr') expect(pkg.bytes.length).toBeLessThan(410);

    expect(text.startsWith('TSP1:')).toBe(true);
    expect(text).toMatch(QR_ALNUM);
    expect(text.length).toBe(5 + 3 * Math.floor(pkg.bytes.length / 2) + 2 * (pkg.bytes.length % 2));
    expect(hex(packageFromText(text))).toBe(hex(pkg.bytes));
    expect(hex(packageFromText(`  \n${text}\r\n `))).toBe(hex(pkg.bytes));
    const back = decodeOfflinePackage(packageFromText(text));
    expect(back.packageId).toBe(pkg.packageId);
    expect(() => verifyAt0(fx, back)).not.toThrow();
  });

  it('text refusals: missing prefix, lowercase prefix, bad base45', () => {
    expectCode(() => packageFromText('BB8'), ErrorCode.DECODE);
    expectCode(() => packageFromText('tsp1:BB8'), ErrorCode.DECODE);
    expectCode(() => packageFromText('TSP1:BB8A'), ErrorCode.DECODE);
    expectCode(() => packageFromText('TSP1:bb8'), ErrorCode.DECODE);
    expectCode(() => packageFromText('TSP1:GGW'), ErrorCode.DECODE);
  });
});

// ---- refusals ----------------------------------------------------------------------------------

describe.each(['ed25519', 'secp256k1-tr'] as const)('refusals, %s', (suiteId) => {
  const fx = setup(suiteId, 2, participantsFor(3));
  const message = enc('pay 12.50 EUR to merchant 4411 / order 88213');
  const { pkg, reserved } = makePackage(fx, ['signer-1'], message, `${suiteId}:refusals`);
  const S = fx.suite;
  const other = commit(shareOf(fx, 'signer-2'), seededRng(`${suiteId}:other`)).commitment; // a valid, unrelated point

  it('the untouched package verifies (baseline for every refusal below)', () => {
    expect(() => verifyAt0(fx, pkg)).not.toThrow();
    expect(() => verifyAt0(fx, decodeOfflinePackage(pkg.bytes), EXPIRES_AT)).not.toThrow();
  });

  it('tampered message, share or device commitment: BAD_SIGNATURE_SHARE naming the device', () => {
    const flipped = message.slice();
    flipped[0] = (flipped[0] as number) ^ 1;
    const cases: OfflinePackage[] = [
      { ...pkg, message: flipped },
      { ...pkg, message: new Uint8Array(0) },
      { ...pkg, share: plusOne(S, pkg.share) },
      { ...pkg, share: S.Fn.toBytes(S.Fn.neg(S.Fn.fromBytes(pkg.share))) },
      { ...pkg, commitment: { hiding: other.hiding, binding: pkg.commitment.binding } },
      { ...pkg, commitment: { hiding: pkg.commitment.hiding, binding: other.binding } },
      { ...pkg, commitment: { hiding: pkg.commitment.binding, binding: pkg.commitment.hiding } },
    ];
    for (const c of cases) expectCode(() => verifyAt0(fx, reencode(c)), ErrorCode.BAD_SIGNATURE_SHARE, [fx.device]);
  });

  it('a device commitment that is not a valid point (or the identity): BAD_SIGNATURE_SHARE naming the device', () => {
    const junk = new Uint8Array(S.elementBytes).fill(0xff);
    const identity = suiteId === 'ed25519' ? S.Point.ZERO.toBytes() : new Uint8Array(S.elementBytes);
    for (const h of [junk, identity])
      expectCode(
        () => verifyAt0(fx, reencode({ ...pkg, commitment: { hiding: h, binding: pkg.commitment.binding } })),
        ErrorCode.BAD_SIGNATURE_SHARE,
        [fx.device],
      );
  });

  it('altered reservation expiry, nonce id, hiding or binding: RESERVATION_INVALID', () => {
    const c0 = must(pkg.cosigners[0], 'cosigner');
    const nid = c0.nonceId.slice();
    nid[11] = (nid[11] as number) ^ 0x80;
    const patches: Partial<SignedReservation>[] = [
      { expiresAt: c0.expiresAt + 1 },
      { expiresAt: c0.expiresAt + 24 * 3600 * 1000 },
      { nonceId: nid },
      { hiding: other.hiding },
      { binding: other.binding },
    ];
    for (const patch of patches)
      expectCode(() => verifyAt0(fx, reencode(withCosigner(pkg, 0, patch))), ErrorCode.RESERVATION_INVALID);
  });

  it('a reservation signed by another identity (another roster member, or an impostor with the same id): RESERVATION_INVALID', () => {
    const r = must(reserved[0], 'reservation').r;
    const bySigner2 = decodeMessage(
      'Envelope',
      signEnvelope(identityOf(fx, 'signer-2'), PayloadKind.RESERVATION, encodeReservation(r)),
    ).signature;
    const impostor = ParticipantIdentity.generate('signer-1', seededRng(`${suiteId}:impostor`));
    const byImpostor = decodeMessage('Envelope', signReservation(impostor, r)).signature;
    const byDevice = decodeMessage(
      'Envelope',
      signEnvelope(identityOf(fx, fx.device), PayloadKind.RESERVATION, encodeReservation(r)),
    ).signature;
    for (const signature of [bySigner2, byImpostor, byDevice])
      expectCode(() => verifyAt0(fx, reencode(withCosigner(pkg, 0, { signature }))), ErrorCode.RESERVATION_INVALID);
    // The same impostor envelope is refused by openReservation too.
    expectCode(() => openReservation(fx.key, signReservation(impostor, r)), ErrorCode.RESERVATION_INVALID);
  });

  it('expiry: RESERVATION_EXPIRED once now is past expiresAt; accepted up to and at expiresAt', () => {
    expectCode(() => verifyAt0(fx, pkg, EXPIRES_AT + 1), ErrorCode.RESERVATION_EXPIRED);
    expectCode(() => verifyAt0(fx, pkg, EXPIRES_AT + 365 * 24 * 3600 * 1000), ErrorCode.RESERVATION_EXPIRED);
    expect(() => verifyAt0(fx, pkg, EXPIRES_AT - 1)).not.toThrow();
    expect(() => verifyAt0(fx, pkg, EXPIRES_AT)).not.toThrow();
  });

  it('wrong epoch: RESERVATION_INVALID (expected epoch differs, or the package claims another epoch)', () => {
    expectCode(() => verifyOfflinePackage(fx.key, pkg, { keyId: fx.keyId, epoch: 1 }), ErrorCode.RESERVATION_INVALID);
    // A package rewritten to epoch 1, checked at epoch 1: the reservations were signed for epoch 0.
    expectCode(
      () => verifyOfflinePackage(fx.key, reencode({ ...pkg, epoch: 1 }), { keyId: fx.keyId, epoch: 1 }),
      ErrorCode.RESERVATION_INVALID,
    );
  });

  it('wrong key id: INVALID_ARGUMENT; a package rewritten to another key id: RESERVATION_INVALID', () => {
    expectCode(
      () => verifyOfflinePackage(fx.key, pkg, { keyId: 'ffffffffffffffff', epoch: 0 }),
      ErrorCode.INVALID_ARGUMENT,
    );
    expectCode(
      () =>
        verifyOfflinePackage(fx.key, reencode({ ...pkg, keyId: 'ffffffffffffffff' }), {
          keyId: 'ffffffffffffffff',
          epoch: 0,
        }),
      ErrorCode.RESERVATION_INVALID,
    );
  });

  it('a package of another suite than the key: WRONG_SUITE', () => {
    const otherSuite = getSuite(suiteId === 'ed25519' ? 'secp256k1-tr' : 'ed25519');
    expectCode(() => verifyAt0(fx, { ...pkg, suite: otherSuite }), ErrorCode.WRONG_SUITE);
  });

  it('a device that is not in the roster, or a package relabelled to another member: refused', () => {
    expectCode(() => verifyAt0(fx, reencode({ ...pkg, device: 'device-z' })), ErrorCode.INVALID_ARGUMENT);
    // Relabelled to signer-2 (a member): the reservation names device-a, so it no longer verifies.
    expectCode(() => verifyAt0(fx, reencode({ ...pkg, device: 'signer-2' })), ErrorCode.RESERVATION_INVALID);
  });

  it('co-signer not in the roster: INVALID_ARGUMENT', () => {
    expectCode(() => verifyAt0(fx, reencode(withCosigner(pkg, 0, { signer: 'signer-9' }))), ErrorCode.INVALID_ARGUMENT);
  });

  it('too many co-signers for the threshold: INVALID_ARGUMENT (createOfflinePackage refuses to emit it, verify refuses it)', () => {
    expectCode(
      () => makePackage(fx, ['signer-1', 'signer-2'], message, `${suiteId}:too-many`),
      ErrorCode.INVALID_ARGUMENT,
    );
    const other = pkg.cosigners[0]?.signer === 'signer-1' ? 'signer-2' : 'signer-1';
    const extra = reserve(fx, other, seededRng(`${suiteId}:too-many-extra`));
    const big = reencode({ ...pkg, cosigners: inRosterOrder(fx, [...pkg.cosigners, extra.signed]) });
    expect(big.cosigners.length).toBe(2);
    expectCode(() => verifyAt0(fx, big), ErrorCode.INVALID_ARGUMENT);
  });

  it('the device also listed as co-signer: INVALID_ARGUMENT', () => {
    const self = reserve(fx, fx.device, seededRng(`${suiteId}:self`));
    expect(verifyReservation(fx.key, self.signed)).toBe(true); // a genuinely signed reservation
    expectCode(() => verifyAt0(fx, reencode({ ...pkg, cosigners: [self.signed] })), ErrorCode.INVALID_ARGUMENT);
    expectCode(
      () => verifyAt0(fx, reencode({ ...pkg, cosigners: inRosterOrder(fx, [...pkg.cosigners, self.signed]) })),
      ErrorCode.INVALID_ARGUMENT,
    );
    // The same co-signer twice: not strictly ascending, so decode refuses it; verify refuses it in memory.
    expectCode(() => reencode({ ...pkg, cosigners: [...pkg.cosigners, ...pkg.cosigners] }), ErrorCode.DECODE);
    expectCode(
      () => verifyAt0(fx, { ...pkg, cosigners: [...pkg.cosigners, ...pkg.cosigners] }),
      ErrorCode.INVALID_ARGUMENT,
    );
  });

  it('non-canonical encodings: DECODE (while the protobuf itself decodes)', () => {
    const b = pkg.bytes;
    const createdAtField = b.subarray(createdAtStart(b));
    const variants: [string, Uint8Array][] = [
      ['unknown field 31 (length-delimited, empty) appended', new Uint8Array([...b, 0xfa, 0x01, 0x00])],
      ['unknown field 31 prepended', new Uint8Array([0xfa, 0x01, 0x00, ...b])],
      ['explicit default epoch = 0', new Uint8Array([...b, 0x18, 0x00])],
      ['key id repeated (last one wins)', new Uint8Array([...b, 0x12, 0x10, ...enc(KEY_ID)])],
      [
        'created_at moved to the front',
        new Uint8Array([...createdAtField, ...b.subarray(0, b.length - createdAtField.length)]),
      ],
      [
        'created_at as a non-minimal varint',
        new Uint8Array([...b.subarray(0, b.length - 1), (b[b.length - 1] as number) | 0x80, 0x00]),
      ],
    ];
    for (const [what, v] of variants) {
      expect(() => decodeMessage('OfflinePackage', v), what).not.toThrow();
      expectCode(() => decodeOfflinePackage(v), ErrorCode.DECODE);
    }
  });

  it('message size limit: createOfflinePackage refuses > 64 KiB (INVALID_ARGUMENT), decode refuses it (DECODE), 64 KiB exactly is fine', () => {
    const max = 64 * 1024;
    const w = decodeMessage('OfflinePackage', pkg.bytes);
    expectCode(
      () => decodeOfflinePackage(encodeMessage('OfflinePackage', { ...w, message: new Uint8Array(max + 1) })),
      ErrorCode.DECODE,
    );
    expectCode(
      () => makePackage(fx, ['signer-1'], new Uint8Array(max + 1), `${suiteId}:big`),
      ErrorCode.INVALID_ARGUMENT,
    );
    const { pkg: atMax } = makePackage(fx, ['signer-1'], new Uint8Array(max).fill(7), `${suiteId}:max`);
    expect(() => verifyAt0(fx, atMax)).not.toThrow();
  });

  it('structurally invalid packages: DECODE', () => {
    const w = decodeMessage('OfflinePackage', pkg.bytes);
    const bad = (patch: Record<string, unknown>) => encodeMessage('OfflinePackage', { ...w, ...patch } as typeof w);
    const c0 = must(w.cosigners[0], 'cosigner');
    const cases: Uint8Array[] = [
      bad({ header: null }),
      bad({ keyId: 'A1B2C3D4E5F60718' }),
      bad({ keyId: 'a1b2c3d4e5f6071' }),
      bad({ cosigners: [] }),
      bad({ hiding: w.hiding.subarray(1) }),
      bad({ binding: new Uint8Array([...w.binding, 0]) }),
      bad({ share: w.share.subarray(1) }),
      bad({ cosigners: [{ ...c0, nonceId: c0.nonceId.subarray(1) }] }),
      bad({ cosigners: [{ ...c0, signature: c0.signature.subarray(1) }] }),
      bad({ cosigners: [{ ...c0, hiding: new Uint8Array(0) }] }),
      withHeaderSuite(pkg.bytes, 99),
      pkg.bytes.subarray(0, pkg.bytes.length - 1),
      new Uint8Array(0),
    ];
    for (const c of cases) expectCode(() => decodeOfflinePackage(c), ErrorCode.DECODE);
    expectCode(
      () => decodeOfflinePackage(bad({ header: { version: 2, suite: S.wireId } })),
      ErrorCode.UNSUPPORTED_VERSION,
    );
  });

  it('every single-byte flip (masks 0x01, 0x80, 0xff) fails decode or verify with a typed error, except inside created_at', () => {
    const b = pkg.bytes;
    const createdAtValue = { from: createdAtStart(b) + 1, to: b.length }; // value bytes, after the tag
    const survivors: number[] = [];
    const codes = new Map<string, number>();
    for (let i = 0; i < b.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const f = b.slice();
        f[i] = (f[i] as number) ^ mask;
        const code = decodeAndVerify(fx, f);
        codes.set(code, (codes.get(code) ?? 0) + 1);
        if (code === 'ok') {
          survivors.push(i);
          // What survived carries the same signed content.
          const d = decodeOfflinePackage(f);
          expect(hex(encodeOfflinePackage({ ...d, createdAt: pkg.createdAt }))).toBe(hex(b));
        } else expect(PACKAGE_CODES.has(code), code).toBe(true);
      }
    }
    console.log(
      `${suiteId}: ${b.length} bytes x 3 masks; flips that still verify: ${survivors.length}, all inside created_at (unauthenticated: the package id changes, the signed content does not)`,
    );
    for (const i of survivors) {
      expect(i).toBeGreaterThanOrEqual(createdAtValue.from);
      expect(i).toBeLessThan(createdAtValue.to);
    }
    // Each reachable refusal shows up (the flips exercise every layer).
    for (const c of [
      ErrorCode.DECODE,
      ErrorCode.BAD_SIGNATURE_SHARE,
      ErrorCode.RESERVATION_INVALID,
      ErrorCode.INVALID_ARGUMENT,
    ])
      expect(codes.get(c) ?? 0, c).toBeGreaterThan(0);
  });

  it('random garbage and random mutations of a valid package: only typed errors from the known set', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 500 }), (g) => {
        const code = decodeAndVerify(fx, g);
        expect(PACKAGE_CODES.has(code), code).toBe(true);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            pos: fc.nat(),
            byte: fc.integer({ min: 0, max: 255 }),
            op: fc.constantFrom('set', 'insert', 'delete'),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        (edits) => {
          const a = [...pkg.bytes];
          for (const e of edits) {
            const p = e.pos % (a.length + 1);
            if (e.op === 'set' && p < a.length) a[p] = e.byte;
            else if (e.op === 'insert') a.splice(p, 0, e.byte);
            else if (e.op === 'delete') a.splice(p, 1);
          }
          const m = new Uint8Array(a);
          const code = decodeAndVerify(fx, m);
          if (code === 'ok') {
            const d = decodeOfflinePackage(m);
            expect(hex(encodeOfflinePackage({ ...d, createdAt: pkg.createdAt }))).toBe(hex(pkg.bytes));
          } else expect(PACKAGE_CODES.has(code), code).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        try {
          verifyAt0(fx, decodeOfflinePackage(packageFromText(`TSP1:${s}`)));
        } catch (e) {
          expect(isTesseraError(e) && PACKAGE_CODES.has(e.code), String(e)).toBe(true);
          return;
        }
        throw new Error('random text verified');
      }),
      { numRuns: 200 },
    );
  });
});

describe('too few co-signers (3-of-5)', () => {
  const fx = setup('ed25519', 3, participantsFor(5));
  const message = enc('needs three');

  it('verify refuses a package with t-2 co-signers (INVALID_ARGUMENT), before any share check', () => {
    const { pkg } = makePackage(fx, ['signer-1', 'signer-3'], message, 'few');
    expect(() => verifyAt0(fx, pkg)).not.toThrow();
    expectCode(
      () => verifyAt0(fx, reencode({ ...pkg, cosigners: pkg.cosigners.slice(0, 1) })),
      ErrorCode.INVALID_ARGUMENT,
    );
  });

  it('createOfflinePackage refuses to sign with too few reservations (INVALID_ARGUMENT)', () => {
    expectCode(() => makePackage(fx, ['signer-2'], message, 'few-create'), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => makePackage(fx, [], message, 'none-create'), ErrorCode.INVALID_ARGUMENT);
  });
});

// ---- createOfflinePackage and openReservation refusals ------------------------------------------

describe.each(['ed25519', 'secp256k1-tr'] as const)(
  'createOfflinePackage / openReservation refusals, %s',
  (suiteId) => {
    const fx = setup(suiteId, 2, participantsFor(3));
    const message = enc('offline coffee');
    const rng = seededRng(`${suiteId}:create-refusals`);
    const create = (
      reservations: SignedReservation[],
      over: { keyId?: string; epoch?: number; device?: string } = {},
    ) =>
      createOfflinePackage({
        key: fx.key,
        share: shareOf(fx, fx.device),
        keyId: over.keyId ?? fx.keyId,
        epoch: over.epoch ?? 0,
        device: over.device ?? fx.device,
        message,
        reservations,
        createdAt: CREATED_AT,
        rng,
      });

    it('a good reservation is accepted (baseline)', () => {
      const ok = reserve(fx, 'signer-1', rng);
      expect(ok.signed.signer).toBe('signer-1');
      expect(hex(ok.signed.nonceId)).toBe(hex(ok.r.nonceId));
      expect(ok.signed.expiresAt).toBe(EXPIRES_AT);
      expect(() => verifyAt0(fx, create([ok.signed]))).not.toThrow();
    });

    it('a reservation for another device, key or epoch: RESERVATION_INVALID', () => {
      expectCode(
        () => create([reserve(fx, 'signer-1', rng, { device: 'device-b' }).signed]),
        ErrorCode.RESERVATION_INVALID,
      );
      expectCode(
        () => create([reserve(fx, 'signer-1', rng, { device: 'signer-2' }).signed]),
        ErrorCode.RESERVATION_INVALID,
      );
      expectCode(
        () => create([reserve(fx, 'signer-1', rng, { keyId: 'ffffffffffffffff' }).signed]),
        ErrorCode.RESERVATION_INVALID,
      );
      expectCode(() => create([reserve(fx, 'signer-1', rng, { epoch: 1 }).signed]), ErrorCode.RESERVATION_INVALID);
      // The same good reservation offered for another key id / epoch of the package.
      const good = reserve(fx, 'signer-1', rng).signed;
      expectCode(() => create([good], { keyId: 'ffffffffffffffff' }), ErrorCode.RESERVATION_INVALID);
      expectCode(() => create([good], { epoch: 1 }), ErrorCode.RESERVATION_INVALID);
    });

    it('a reservation whose signature or fields were altered after signing: RESERVATION_INVALID', () => {
      const good = reserve(fx, 'signer-1', rng).signed;
      const sig = good.signature.slice();
      sig[0] = (sig[0] as number) ^ 1;
      const other = commit(shareOf(fx, 'signer-1'), rng).commitment;
      const altered: SignedReservation[] = [
        { ...good, signature: sig },
        { ...good, signature: new Uint8Array(64) },
        { ...good, expiresAt: good.expiresAt + 1 },
        { ...good, hiding: other.hiding },
        { ...good, nonceId: new Uint8Array(RESERVATION_NONCE_ID_BYTES) },
        { ...good, signer: 'signer-2' },
      ];
      for (const r of altered) expectCode(() => create([r]), ErrorCode.RESERVATION_INVALID);
    });

    it('openReservation: non-member signer -> RESERVATION_INVALID; tampered envelope -> BAD_SIGNATURE; wrong kind -> UNEXPECTED_MESSAGE', () => {
      const outsider = ParticipantIdentity.generate('signer-7', rng);
      const base = reserve(fx, 'signer-1', rng).r;
      expectCode(
        () => openReservation(fx.key, signReservation(outsider, { ...base, signer: 'signer-7' })),
        ErrorCode.RESERVATION_INVALID,
      );
      expectCode(() => signReservation(identityOf(fx, 'signer-2'), base), ErrorCode.INVALID_ARGUMENT);

      const env = signReservation(identityOf(fx, 'signer-1'), base);
      const w = decodeMessage('Envelope', env);
      const payload = w.payload.slice();
      payload[payload.length - 1] = (payload[payload.length - 1] as number) ^ 1; // expiresAt's last byte
      expectCode(() => openReservation(fx.key, encodeMessage('Envelope', { ...w, payload })), ErrorCode.BAD_SIGNATURE);
      const asOtherKind = signEnvelope(identityOf(fx, 'signer-1'), PayloadKind.COSIGN_REQUEST, encodeReservation(base));
      expectCode(() => openReservation(fx.key, asOtherKind), ErrorCode.UNEXPECTED_MESSAGE);

      const wrongSuite = { ...base, suite: getSuite(suiteId === 'ed25519' ? 'secp256k1-tr' : 'ed25519') };
      expectCode(
        () => openReservation(fx.key, signReservation(identityOf(fx, 'signer-1'), wrongSuite)),
        ErrorCode.WRONG_SUITE,
      );
      expectCode(
        () =>
          openReservation(
            fx.key,
            signReservation(identityOf(fx, 'signer-1'), { ...base, nonceId: new Uint8Array(11) }),
          ),
        ErrorCode.DECODE,
      );
    });
  },
);

// ---- device to device ----------------------------------------------------------------------------

describe.each(['ed25519', 'secp256k1-tr', 'p256'] as const)('device-to-device co-signing, %s', (suiteId) => {
  const fx = setup(suiteId, 2, ['device-a', 'device-b', 'signer-1']);
  const rngA = seededRng(`${suiteId}:A`);
  const rngB = seededRng(`${suiteId}:B`);
  const A = identityOf(fx, 'device-a');
  const B = identityOf(fx, 'device-b');
  const request = (message: Uint8Array) =>
    createCosignRequest({
      identity: A,
      key: fx.key,
      share: shareOf(fx, 'device-a'),
      keyId: fx.keyId,
      epoch: 0,
      message,
      rng: rngA,
    });
  const answer = (envelope: Uint8Array, who = B) =>
    answerCosignRequest({
      identity: who,
      key: fx.key,
      share: shareOf(fx, who.id),
      request: openCosignRequest(fx.key, envelope),
      rng: rngB,
    });
  const complete = (pending: ReturnType<typeof request>, response: Uint8Array) =>
    completeCosign({ key: fx.key, share: shareOf(fx, 'device-a'), pending, response });

  it('request -> open -> answer -> complete: the plain verifier accepts (random messages)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (message, bySigner) => {
        const pending = request(message);
        const opened = openCosignRequest(fx.key, pending.requestEnvelope);
        expect(opened.device).toBe('device-a');
        expect(opened.keyId).toBe(fx.keyId);
        expect(opened.epoch).toBe(0);
        expect(hex(opened.message)).toBe(hex(message));
        expect(opened.requestId.length).toBe(16);
        const who = bySigner ? identityOf(fx, 'signer-1') : B;
        const out = complete(pending, answer(pending.requestEnvelope, who));
        expect(out.signers).toEqual(['device-a', who.id]);
        expect(hex(out.message)).toBe(hex(message));
        expect(fx.suite.verify(out.signature, message, groupPublicKey(fx.key))).toBe(true);
        expect(fx.suite.verify(out.signature, new Uint8Array([...message, 1]), groupPublicKey(fx.key))).toBe(false);
      }),
      { numRuns: 8 },
    );
  });

  it('a request re-signed by a non-member (same id, other key) is refused: BAD_SIGNATURE', () => {
    const pending = request(enc('coffee'));
    const w = decodeMessage('Envelope', pending.requestEnvelope);
    const impostor = ParticipantIdentity.generate('device-a', seededRng(`${suiteId}:impostor`));
    const resigned = signEnvelope(impostor, PayloadKind.COSIGN_REQUEST, w.payload);
    expectCode(() => openCosignRequest(fx.key, resigned), ErrorCode.BAD_SIGNATURE);
    // With the message changed as well.
    const p = decodeMessage('CosignRequest', w.payload);
    const forged = signEnvelope(
      impostor,
      PayloadKind.COSIGN_REQUEST,
      encodeMessage('CosignRequest', { ...p, message: enc('pay the impostor') }),
    );
    expectCode(() => openCosignRequest(fx.key, forged), ErrorCode.BAD_SIGNATURE);
    // A non-member with its own id.
    const outsider = ParticipantIdentity.generate('device-x', seededRng(`${suiteId}:outsider`));
    const foreign = signEnvelope(
      outsider,
      PayloadKind.COSIGN_REQUEST,
      encodeMessage('CosignRequest', { ...p, device: 'device-x' }),
    );
    expectCode(() => openCosignRequest(fx.key, foreign), ErrorCode.BAD_SIGNATURE);
    // The genuine envelope with its payload altered in place: the envelope signature fails.
    const payload = w.payload.slice();
    payload[payload.length - 1] = (payload[payload.length - 1] as number) ^ 1;
    expectCode(() => openCosignRequest(fx.key, encodeMessage('Envelope', { ...w, payload })), ErrorCode.BAD_SIGNATURE);
  });

  it('an answer with a wrong share: BAD_SIGNATURE_SHARE naming device-b', () => {
    const pending = request(enc('tea'));
    const response = answer(pending.requestEnvelope);
    const w = decodeMessage('CosignResponse', response);
    for (const share of [
      plusOne(fx.suite, w.share),
      fx.suite.Fn.toBytes(fx.suite.Fn.neg(fx.suite.Fn.fromBytes(w.share))),
    ])
      expectCode(
        () => complete(pending, encodeMessage('CosignResponse', { ...w, share })),
        ErrorCode.BAD_SIGNATURE_SHARE,
        ['device-b'],
      );
    // A commitment swapped after signing.
    const swapped = encodeMessage('CosignResponse', { ...w, hiding: w.binding, binding: w.hiding });
    expectCode(() => complete(pending, swapped), ErrorCode.BAD_SIGNATURE_SHARE, ['device-b']);
    // The untouched answer still completes (the failed attempts did not consume anything).
    expect(fx.suite.verify(complete(pending, response).signature, enc('tea'), groupPublicKey(fx.key))).toBe(true);
  });

  it('an answer for another request, or from the proposer itself / a non-member: UNEXPECTED_MESSAGE', () => {
    const p1 = request(enc('one'));
    const p2 = request(enc('two'));
    const r1 = answer(p1.requestEnvelope);
    expectCode(() => complete(p2, r1), ErrorCode.UNEXPECTED_MESSAGE);
    const w = decodeMessage('CosignResponse', r1);
    expectCode(
      () => complete(p1, encodeMessage('CosignResponse', { ...w, device: 'device-a' })),
      ErrorCode.UNEXPECTED_MESSAGE,
    );
    expectCode(
      () => complete(p1, encodeMessage('CosignResponse', { ...w, device: 'device-x' })),
      ErrorCode.UNEXPECTED_MESSAGE,
    );
  });

  it('a device cannot answer its own request (INVALID_ARGUMENT)', () => {
    const pending = request(enc('self'));
    expectCode(() => answer(pending.requestEnvelope, A), ErrorCode.INVALID_ARGUMENT);
  });

  it('a 3-of-n key: createCosignRequest refuses with INVALID_ARGUMENT', () => {
    const fx3 = setup(suiteId, 3, ['device-a', 'device-b', 'signer-1', 'signer-2']);
    expectCode(
      () =>
        createCosignRequest({
          identity: identityOf(fx3, 'device-a'),
          key: fx3.key,
          share: shareOf(fx3, 'device-a'),
          keyId: fx3.keyId,
          epoch: 0,
          message: enc('x'),
          rng: rngA,
        }),
      ErrorCode.INVALID_ARGUMENT,
    );
  });
});

// ---- device to device: the proposer's nonce ----------------------------------------------------

describe('device-to-device: the proposer nonce is used once (ed25519)', () => {
  // Regression (found by this test): completeCosign once re-imported the same pending nonce on
  // every call, so the proposer signed with one nonce pair over as many commitment lists as it was
  // handed answers (RFC 9591 §5.1 forbids it). The answering device sees every signature and knows
  // its own share of each, hence the proposer's z_A = d + rho*e + lambda*c*s per list: three
  // answers give three linear equations in (d, e, s) and it solves for the proposer's long-term
  // share s. This test plays that device; completeCosign now wipes the nonce and refuses again.
  it('a second completion with a different answer is refused, so the answerer cannot solve for the proposer share', () => {
    const fx = setup('ed25519', 2, ['device-a', 'device-b', 'signer-1']);
    const S = fx.suite;
    const Fn = S.Fn;
    const message = enc('one nonce, three answers');
    const pending = createCosignRequest({
      identity: identityOf(fx, 'device-a'),
      key: fx.key,
      share: shareOf(fx, 'device-a'),
      keyId: fx.keyId,
      epoch: 0,
      message,
      rng: seededRng('reuse:A'),
    });
    const request = openCosignRequest(fx.key, pending.requestEnvelope);
    const rngB = seededRng('reuse:B');
    const answers = [0, 1, 2].map(() =>
      answerCosignRequest({
        identity: identityOf(fx, 'device-b'),
        key: fx.key,
        share: shareOf(fx, 'device-b'),
        request,
        rng: rngB,
      }),
    );
    const outcomes = answers.map((response) => {
      try {
        return completeCosign({ key: fx.key, share: shareOf(fx, 'device-a'), pending, response });
      } catch (e) {
        if (!isTesseraError(e)) throw e;
        return e;
      }
    });
    const completed = outcomes.filter((o): o is ReturnType<typeof completeCosign> => !isTesseraError(o));

    if (completed.length === 3) {
      // The answering device's computation, from public data, its own shares and the signatures.
      const idA = rosterIdentifier(fx, 'device-a');
      const idB = rosterIdentifier(fx, 'device-b');
      const xA = Fn.fromBytes(fromHex(idA));
      const xB = Fn.fromBytes(fromHex(idB));
      const lambdaA = Fn.div(xB, Fn.sub(xB, xA));
      const ctx = 'FROST-ED25519-SHA512-v1';
      const le = (b: Uint8Array) => [...b].reverse().reduce((n, x) => (n << 8n) | BigInt(x), 0n);
      const rows = answers.map((response, i) => {
        const w = decodeMessage('CosignResponse', response);
        const list = [request.commitment, { identifier: idB, hiding: w.hiding, binding: w.binding }];
        const sorted = [...list].sort((a, b) =>
          Fn.fromBytes(fromHex(a.identifier)) < Fn.fromBytes(fromHex(b.identifier)) ? -1 : 1,
        );
        const encoded = new Uint8Array(sorted.flatMap((c) => [...fromHex(c.identifier), ...c.hiding, ...c.binding]));
        const prefix = new Uint8Array([
          ...must(fx.key.public.commitments[0], 'group key'),
          ...sha512(new Uint8Array([...enc(`${ctx}msg`), ...message])),
          ...sha512(new Uint8Array([...enc(`${ctx}com`), ...encoded])),
        ]);
        const rho = Fn.create(le(sha512(new Uint8Array([...enc(`${ctx}rho`), ...prefix, ...fromHex(idA)]))));
        const c = prepareSession(prepareKey(S, fx.key.public), list as NonceCommitments[], message).challenge;
        const sig = must(completed[i], 'signature').signature;
        const zA = Fn.sub(Fn.fromBytes(sig.subarray(32)), Fn.fromBytes(w.share));
        return { rho, k: Fn.mul(lambdaA, c), z: zA };
      });
      const [r1, r2, r3] = rows as [(typeof rows)[0], (typeof rows)[0], (typeof rows)[0]];
      const [p2, k2, z2] = [Fn.sub(r2.rho, r1.rho), Fn.sub(r2.k, r1.k), Fn.sub(r2.z, r1.z)];
      const [p3, k3, z3] = [Fn.sub(r3.rho, r1.rho), Fn.sub(r3.k, r1.k), Fn.sub(r3.z, r1.z)];
      const recovered = Fn.div(Fn.sub(Fn.mul(p2, z3), Fn.mul(p3, z2)), Fn.sub(Fn.mul(p2, k3), Fn.mul(p3, k2)));
      const actual = Fn.fromBytes(shareOf(fx, 'device-a').signingShare());
      expect(
        recovered === actual,
        "device-b recovered device-a's long-term signing share from three completions of one pending nonce",
      ).toBe(false);
    }
    expect(completed.length, 'completions of one pending nonce with different answers').toBe(1);
  });
});

function rosterIdentifier(fx: Fixture, id: string): string {
  return must(
    fx.key.roster.find((r) => r.id === id),
    id,
  ).identifier;
}

describe('created_at is not part of the package identity', () => {
  it('a relay that rewrites created_at gets the same package id and digest (no second package to race the first)', () => {
    const fx = setup('ed25519', 2, ['device-a', 'signer-1', 'signer-2']);
    const { pkg } = makePackage(fx, ['signer-1'], enc('created_at is informational'), 'created-at');
    const moved = reencode({ ...pkg, createdAt: pkg.createdAt + 12345 });
    expect(moved.bytes).not.toEqual(pkg.bytes);
    expect(moved.packageId).toBe(pkg.packageId);
    expect(moved.digest).toEqual(pkg.digest);
    // Any signed field still changes the id.
    const other = reencode({ ...pkg, message: enc('another message') });
    expect(other.packageId).not.toBe(pkg.packageId);
  });
});

// ---- canonical co-signer order -----------------------------------------------------------------

/** Every ordering of `xs`. */
function permutations<T>(xs: readonly T[]): T[][] {
  if (xs.length <= 1) return [[...xs]];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest]));
}

/** The FROST identifier of a co-signer as a scalar (what RFC 9591 sorts commitment lists by). */
const identifierScalar = (fx: Fixture, id: string): bigint => fx.suite.Fn.fromBytes(fromHex(rosterIdentifier(fx, id)));

describe.each(['ed25519', 'secp256k1-tr'] as const)(
  'co-signer order is canonical (package id malleability), %s',
  (suiteId) => {
    // 3-of-4: the device and two co-signers, so a relay has two orders to choose from.
    const fx = setup(suiteId, 3, participantsFor(4));
    const message = enc('pay 30 EUR to merchant 77 / order 5');

    it('a relay that swaps the co-signers of a 3-of-4 package is refused: decode DECODE, verify INVALID_ARGUMENT; the genuine one verifies', () => {
      const { pkg } = makePackage(fx, ['signer-3', 'signer-1'], message, `${suiteId}:swap`);
      expect(() => verifyAt0(fx, pkg)).not.toThrow();
      const swapped: OfflinePackage = { ...pkg, cosigners: [...pkg.cosigners].reverse() };
      const bytes = encodeOfflinePackage(swapped);
      expect(bytes).not.toEqual(pkg.bytes);
      // The attack this closes: FROST sorts the commitment list itself, so the device's share
      // still verifies for the swapped package, whose digest (the co-signers' nonce binding) differs.
      expect(
        new SigningSession(fx.key, message, packageCommitments(fx.key, swapped)).verifyShare(fx.device, swapped.share),
      ).toBe(true);
      expect(hex(packageDigest(swapped))).not.toBe(hex(pkg.digest));
      // Refused at every entry point, with a message that says why.
      const e = caught(() => decodeOfflinePackage(bytes));
      expect(e.code).toBe(ErrorCode.DECODE);
      expect(e.message).toContain('canonical order');
      expectCode(() => decodeOfflinePackage(fromHex(hex(bytes))), ErrorCode.DECODE);
      expectCode(() => decodeOfflinePackage(packageFromText(packageToText(bytes))), ErrorCode.DECODE);
      const v = caught(() => verifyAt0(fx, swapped));
      expect(v.code).toBe(ErrorCode.INVALID_ARGUMENT);
      expect(v.message).toContain('canonical order');
      // The genuine package is untouched by all this.
      expect(decodeOfflinePackage(pkg.bytes).packageId).toBe(pkg.packageId);
    });

    it('property: every package the device emits has its co-signers strictly ascending by FROST identifier and re-encodes byte-identically', () => {
      let run = 0;
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 64 }), cosignerArb(fx, 3), (m, cosigners) => {
          const { pkg } = makePackage(fx, cosigners, m, `${suiteId}:canonical:${run++}`);
          const xs = pkg.cosigners.map((c) => identifierScalar(fx, c.signer));
          for (let i = 1; i < xs.length; i++) expect((xs[i] as bigint) > (xs[i - 1] as bigint)).toBe(true);
          expect(pkg.cosigners.map((c) => c.signer)).toEqual(
            inRosterOrder(
              fx,
              cosigners.map((signer) => ({ signer })),
            ).map((c) => c.signer),
          );
          expect(hex(encodeOfflinePackage(pkg))).toBe(hex(pkg.bytes));
          const again = decodeOfflinePackage(pkg.bytes);
          expect(hex(encodeOfflinePackage(again))).toBe(hex(pkg.bytes));
          expect(again.packageId).toBe(pkg.packageId);
          expect(() => verifyAt0(fx, again)).not.toThrow();
        }),
        { numRuns: 12 },
      );
    });
  },
);

describe('one reservation set, one package id (4-of-5, ed25519)', () => {
  const fx = setup('ed25519', 4, participantsFor(5));
  const message = enc('one id per reservation set');

  it('reservations handed over in any of the 6 orders give the same bytes and id; every other order of the encoded list is refused', () => {
    const rng = seededRng('unique-id');
    const reserved = ['signer-1', 'signer-2', 'signer-4'].map((c) => reserve(fx, c, rng).signed);
    const create = (reservations: readonly SignedReservation[]) =>
      createOfflinePackage({
        key: fx.key,
        share: shareOf(fx, fx.device),
        keyId: fx.keyId,
        epoch: 0,
        device: fx.device,
        message,
        reservations,
        createdAt: CREATED_AT,
        rng: seededRng('unique-id:device'),
      });
    const orders = permutations(reserved);
    expect(orders).toHaveLength(6);
    const ids = new Set(orders.map((o) => create(o).packageId));
    const bytes = new Set(orders.map((o) => hex(create(o).bytes)));
    expect(ids.size).toBe(1);
    expect(bytes.size).toBe(1);
    const genuine = create(reserved);
    let accepted = 0;
    for (const o of orders) {
      const b = encodeOfflinePackage({ ...genuine, cosigners: o });
      if (hex(b) === hex(genuine.bytes)) {
        accepted++;
        expect(decodeOfflinePackage(b).packageId).toBe(genuine.packageId);
      } else expectCode(() => decodeOfflinePackage(b), ErrorCode.DECODE);
    }
    expect(accepted).toBe(1);
    // A different reservation set (one co-signer swapped for another) is a different package.
    const other = create([...reserved.slice(0, 2), reserve(fx, 'signer-3', rng).signed]);
    expect(other.packageId).not.toBe(genuine.packageId);
  });
});

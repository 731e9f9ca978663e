/**
 * The merchant's offline check of a package, small enough for a payment terminal's page: with
 * the key's public record it verifies that the device really signed the package's message (its
 * FROST signature share, RFC 9591 §5.4 verify_signature_share, by noble) against reservations
 * its co-signers really signed and that have not expired. It cannot tell whether a reservation
 * was already spent elsewhere: only the cluster knows that.
 *
 * The cluster checks a package with `decodeOfflinePackage` + `verifyOfflinePackage`
 * (./offline.ts), which need every suite's curve and the protobuf registry. This module makes the
 * same decisions, in the same order and with the same error codes, on the two messages it reads
 * (./package-wire.ts) and the one curve it meets (./suite-loader.ts): the browser build is
 * ~22 KB gzip for an Ed25519 key instead of ~80 KB. test/package-check.test.ts holds the two to
 * the same verdict on valid, mutated and hostile packages.
 */
import type { FrostPublic, NonceCommitments } from '@noble/curves/abstract/frost.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { equalBytes, fromHex, toHex } from './bytes.js';
import { verifyIdentitySignature } from './ed25519-identity.js';
import { RESERVATION_PAYLOAD_KIND, envelopeSigningBytes } from './envelope-bytes.js';
import {
  DecodeError,
  ErrorCode,
  InvalidArgumentError,
  ProtocolError,
  UnsupportedVersionError,
  WrongSuiteError,
} from './errors.js';
import { packageFromText } from './package-text.js';
import {
  type LiteCosigner,
  type LiteHeader,
  type LitePackage,
  readKeyRecord,
  readOfflinePackage,
  writeOfflinePackage,
  writeReservation,
} from './package-wire.js';
import { SUITE_SHAPES, type FrostSuiteId as SuiteId, type SuiteShape } from './suite-ids.js';
import { deriveIdentifier, prepareKey, prepareSession } from './fast.js';
import type { Flavor } from './frost-flavor.js';
import { ed25519Flavor } from './curves/ed25519.js';
import { needsIntegrity, requirePass, requirePayment, validateAllowance } from './allowance.js';
import { openClaimsLite } from './package-claims.js';
import type { checkPackagePayment } from './package-payment.js';
import type { ReadPayment } from './payment.js';
import { paymentToJSON } from './payment-chains.js';
import {
  FORMAT_VERSION,
  IDENTITY_SIGNATURE_BYTES,
  KEY_ID_PATTERN,
  MAX_COSIGNERS,
  MAX_CLAIMS_BYTES,
  MAX_MESSAGE_BYTES,
  PARTICIPANT_ID_PATTERN,
  RESERVATION_NONCE_ID_BYTES,
  XWING_PUBLIC_KEY_BYTES,
} from './wire/limits.js';

/** What the merchant learns from a package that passes. */
export interface PackageCheck {
  packageId: string;
  keyId: string;
  device: string;
  /** The signed message, hex. */
  message: string;
  cosigners: string[];
  /** The earliest reservation expiry (ms since the Unix epoch): the cluster completes nothing after it. */
  expiresAt: number;
  /**
   * The device's integrity verdict, checked: present (always `pass`) when a reservation's
   * allowance requires one (`requireIntegrity`), the package's device claims verified.
   */
  integrity?: string;
  /**
   * The payment, as read from the transaction the package carries (amounts in base units, as
   * decimal strings), within every reservation's allowance: present when the package carries one.
   */
  payment?: { chain: string; asset: string; amount: string; fee: string; to: string[] };
}

/**
 * {@link checkPackage} for Ed25519 keys only (WRONG_SUITE for any other): the smallest merchant
 * build, as it carries no other curve and no loader of one.
 */
export function checkEd25519Package(
  keyRecord: Uint8Array,
  pkg: Uint8Array | string,
  now = Date.now(),
): Promise<PackageCheck> {
  return checkPackageWith(ed25519Only, keyRecord, pkg, now);
}

/** Gives the curve of a suite (./suite-loader.ts: any of the four, each imported on demand). */
export type CurveLoader = (id: SuiteId) => Promise<Flavor>;

/**
 * The payment rules (./package-payment.ts, with the chains' readers), imported when a package
 * with a payment arrives. Without them a package that carries a payment is refused.
 */
export type PaymentRules = () => Promise<{ checkPackagePayment: typeof checkPackagePayment }>;

async function ed25519Only(id: SuiteId): Promise<Flavor> {
  if (id !== 'ed25519')
    throw new ProtocolError(ErrorCode.WRONG_SUITE, `this check is for ed25519 keys, not ${id}: use checkPackage`);
  return ed25519Flavor;
}

/**
 * Checks `pkg` (bytes, or its "TSP1:" text) against the key's public record (`KeyRecord` bytes)
 * at `now`, with the curves `load` gives. Resolves with what the package commits to; rejects with
 * a typed error (`code`: DECODE, UNSUPPORTED_VERSION, INVALID_ARGUMENT, WRONG_SUITE,
 * RESERVATION_INVALID, RESERVATION_EXPIRED or BAD_SIGNATURE_SHARE, the device named in `culprits`
 * where it is to blame).
 */
export async function checkPackageWith(
  load: CurveLoader,
  keyRecord: Uint8Array,
  pkg: Uint8Array | string,
  now: number,
  payments?: PaymentRules,
): Promise<PackageCheck> {
  const key = await readKey(load, keyRecord);
  const p = await readPackage(load, typeof pkg === 'string' ? packageFromText(pkg) : pkg);
  verify(key, p, now);
  requirePayment(p, true);
  let paid: ReadPayment | undefined;
  if (p.payment) {
    if (!payments)
      throw new ProtocolError(
        ErrorCode.PAYMENT_MISMATCH,
        `this check reads no payments (a ${p.shape.id} key signs none): use checkPackage`,
        [p.device],
      );
    // The key's public key as its suite encodes it (BIP 340 keys are x-only).
    const element = key.commitments[0] as Uint8Array;
    const publicKey = p.shape.id === 'secp256k1-tr' ? element.subarray(1) : element;
    paid = (await payments()).checkPackagePayment({ ...p, suite: p.shape.id, publicKey });
  }
  // A co-signer that requires the device's verdict completes nothing without it: nor does the merchant.
  const member = key.roster.find((r) => r.id === p.device) as Member;
  const integrity = needsIntegrity(p.cosigners)
    ? requirePass(() => openClaimsLite(p.claims, member, p.digest), 'the reservation').integrity
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

// ---- the key ---------------------------------------------------------------------------------

interface Member {
  readonly id: string;
  readonly signKey: Uint8Array;
  /** FROST identifier, canonical hex. */
  readonly identifier: string;
  /** Recorded as a device when the key was made. */
  readonly device: boolean;
}

interface Key {
  readonly shape: SuiteShape;
  readonly flavor: Flavor;
  readonly keyId: string;
  readonly epoch: number;
  readonly threshold: number;
  readonly roster: readonly Member[];
  readonly commitments: readonly Uint8Array[];
  readonly verifyingShares: Readonly<Record<string, Uint8Array>>;
}

function checkHeader(h: LiteHeader | null, what: string, expected?: SuiteShape): SuiteShape {
  if (!h) throw new DecodeError(`${what}: missing header`);
  if (h.version !== FORMAT_VERSION) throw new UnsupportedVersionError(h.version, FORMAT_VERSION);
  const shape = SUITE_SHAPES.find((s) => s.wireId === h.suite);
  if (!shape) throw new DecodeError(`${what}: unknown suite number ${h.suite}`);
  if (expected && shape.wireId !== expected.wireId) throw new WrongSuiteError(shape.id, expected.id);
  return shape;
}

function expectLength(b: Uint8Array, n: number, what: string): Uint8Array {
  if (b.length !== n) throw new DecodeError(`${what}: expected ${n} bytes, got ${b.length}`);
  return b;
}

async function readKey(load: CurveLoader, bytes: Uint8Array): Promise<Key> {
  const w = readKeyRecord(bytes);
  const shape = checkHeader(w.header, 'key record');
  const pub = w.public;
  if (!pub) throw new DecodeError('key record: missing public package');
  checkHeader(pub.header, 'key public', shape);
  if (pub.threshold !== w.threshold) throw new DecodeError('key record: threshold mismatch');
  for (const p of w.participants) {
    if (!PARTICIPANT_ID_PATTERN.test(p.id))
      throw new DecodeError(`participant id "${p.id.slice(0, 80)}" must be 1-64 characters of A-Z a-z 0-9 . _ -`);
    expectLength(p.signKey, 32, `participant ${p.id} sign key`);
    if (p.encKey.length !== XWING_PUBLIC_KEY_BYTES)
      expectLength(p.encKey, 32, `participant ${p.id} encryption key (32 or ${XWING_PUBLIC_KEY_BYTES} bytes)`);
  }
  const flavor = await load(shape.id);
  const ids = new Set<string>();
  const signKeys = new Set<string>();
  const roster: Member[] = [];
  for (const p of w.participants) {
    if (ids.has(p.id)) throw new InvalidArgumentError(`participant ${p.id} is listed twice`);
    const k = toHex(p.signKey);
    if (signKeys.has(k))
      throw new InvalidArgumentError(`participant ${p.id} reuses another participant's identity key`);
    ids.add(p.id);
    signKeys.add(k);
    roster.push({ id: p.id, signKey: p.signKey, identifier: deriveIdentifier({ flavor }, p.id), device: p.device });
  }
  const t = w.threshold;
  if (t < 1 || t > roster.length) throw new DecodeError('key record: threshold out of range');
  if (pub.commitments.length !== t) throw new DecodeError('key record: wrong number of commitments');
  const verifyingShares: Record<string, Uint8Array> = {};
  for (const v of pub.verifyingShares)
    verifyingShares[toHex(expectLength(v.identifier, shape.scalarBytes, 'verifying share identifier'))] = expectLength(
      v.element,
      shape.elementBytes,
      'verifying share',
    );
  for (const r of roster)
    if (!verifyingShares[r.identifier]) throw new DecodeError(`key record: no verifying share for ${r.id}`);
  if (Object.keys(verifyingShares).length !== roster.length)
    throw new DecodeError('key record: verifying shares do not match the roster');
  pub.commitments.forEach((c, i) => expectLength(c, shape.elementBytes, `commitment[${i}]`));
  return {
    shape,
    flavor,
    keyId: w.keyId,
    epoch: w.epoch,
    threshold: t,
    roster,
    commitments: pub.commitments,
    verifyingShares,
  };
}

// ---- the package -----------------------------------------------------------------------------

interface Package extends LitePackage {
  readonly shape: SuiteShape;
  readonly packageId: string;
  /** What the device's claims name (./offline.ts packageDigest). */
  readonly digest: Uint8Array;
}

/** A FROST identifier as a scalar: what RFC 9591 §5.2 sorts `commitment_list` by. */
function identifierValue(flavor: Flavor, id: string): bigint {
  if (!PARTICIPANT_ID_PATTERN.test(id)) throw new Error('malformed participant id');
  return flavor.Fn.fromBytes(fromHex(deriveIdentifier({ flavor }, id)));
}

/** Decodes as `decodeOfflinePackage` does: lengths, canonical co-signer order, canonical bytes. */
async function readPackage(load: CurveLoader, bytes: Uint8Array): Promise<Package> {
  const w = readOfflinePackage(bytes);
  const shape = checkHeader(w.header, 'offline package');
  if (!KEY_ID_PATTERN.test(w.keyId)) throw new DecodeError('offline package: malformed key id');
  if (w.message.length > MAX_MESSAGE_BYTES)
    throw new DecodeError(`offline package: message exceeds ${MAX_MESSAGE_BYTES} bytes`);
  if (w.claims.length > MAX_CLAIMS_BYTES)
    throw new DecodeError(`offline package: device claims over ${MAX_CLAIMS_BYTES} bytes`);
  if (w.cosigners.length < 1 || w.cosigners.length > MAX_COSIGNERS)
    throw new DecodeError('offline package: 1..254 co-signers expected');
  expectLength(w.hiding, shape.elementBytes, 'device hiding commitment');
  expectLength(w.binding, shape.elementBytes, 'device binding commitment');
  expectLength(w.share, shape.scalarBytes, 'device signature share');
  for (const c of w.cosigners) {
    expectLength(c.nonceId, RESERVATION_NONCE_ID_BYTES, 'reservation nonce id');
    expectLength(c.hiding, shape.elementBytes, 'reserved hiding commitment');
    expectLength(c.binding, shape.elementBytes, 'reserved binding commitment');
    expectLength(c.signature, IDENTITY_SIGNATURE_BYTES, 'reservation signature');
    if (c.allowance)
      try {
        validateAllowance(c.allowance);
      } catch (e) {
        throw new DecodeError(`reservation allowance: ${(e as Error).message}`);
      }
  }
  const flavor = await load(shape.id);
  let prev: bigint | undefined;
  for (const c of w.cosigners) {
    let x: bigint;
    try {
      x = identifierValue(flavor, c.signer);
    } catch {
      throw new DecodeError(`offline package: co-signer id "${c.signer.slice(0, 64)}" is malformed`);
    }
    if (prev !== undefined && x <= prev)
      throw new DecodeError(
        'offline package: co-signers are not in canonical order (strictly ascending FROST identifier, each once)',
      );
    prev = x;
  }
  if (!equalBytes(writeOfflinePackage(w), bytes)) throw new DecodeError('offline package: non-canonical encoding');
  // The digest leaves out created_at and the payment (no signature covers them): see packageDigest.
  const digest = sha256(writeOfflinePackage({ ...w, createdAt: 0, payment: null, claims: new Uint8Array(0) }));
  return { ...w, shape, digest, packageId: toHex(digest.subarray(0, 16)) };
}

// ---- the check -------------------------------------------------------------------------------

function reservationSigned(p: Package, c: LiteCosigner, signer: Member): boolean {
  const reservation = writeReservation({
    header: { version: FORMAT_VERSION, suite: p.shape.wireId },
    keyId: p.keyId,
    epoch: p.epoch,
    device: p.device,
    signer: c.signer,
    nonceId: c.nonceId,
    hiding: c.hiding,
    binding: c.binding,
    expiresAt: c.expiresAt,
    allowance: c.allowance,
  });
  return verifyIdentitySignature(
    signer.signKey,
    envelopeSigningBytes(RESERVATION_PAYLOAD_KIND, reservation),
    c.signature,
  );
}

/** As `verifyOfflinePackage` (./offline.ts), in its order. */
function verify(key: Key, p: Package, now: number): void {
  if (p.keyId !== key.keyId) throw new InvalidArgumentError(`package is for key ${p.keyId}, not ${key.keyId}`);
  if (p.shape.id !== key.shape.id)
    throw new ProtocolError(ErrorCode.WRONG_SUITE, `package is ${p.shape.id}, key is ${key.shape.id}`);
  if (p.epoch !== key.epoch)
    throw new ProtocolError(
      ErrorCode.RESERVATION_INVALID,
      `package is for epoch ${p.epoch}, the key is at epoch ${key.epoch}`,
    );
  const member = (id: string) => key.roster.find((r) => r.id === id);
  const device = member(p.device);
  if (!device) throw new InvalidArgumentError(`${p.device.slice(0, 64)} is not a participant of key ${p.keyId}`);
  const ids = [p.device, ...p.cosigners.map((c) => c.signer)];
  if (new Set(ids).size !== ids.length) throw new InvalidArgumentError('package names a participant twice');
  if (ids.length !== key.threshold)
    throw new InvalidArgumentError(`package has ${ids.length} signers, the key needs exactly ${key.threshold}`);
  const list = [{ identifier: device.identifier, hiding: p.hiding, binding: p.binding }];
  for (const c of p.cosigners) {
    const signer = member(c.signer);
    if (!signer)
      throw new InvalidArgumentError(`co-signer ${c.signer.slice(0, 64)} is not a participant of key ${p.keyId}`);
    if (!reservationSigned(p, c, signer))
      throw new ProtocolError(
        ErrorCode.RESERVATION_INVALID,
        `the reservation of ${c.signer} is not signed by it (or was altered)`,
        [p.device],
      );
    if (c.expiresAt < now)
      throw new ProtocolError(
        ErrorCode.RESERVATION_EXPIRED,
        `the reservation of ${c.signer} expired at ${new Date(c.expiresAt).toISOString()}`,
      );
    list.push({ identifier: signer.identifier, hiding: c.hiding, binding: c.binding });
  }
  let ok: boolean;
  try {
    // The signing path's own FROST (./fast.ts): every element of the key and of the list is
    // validated (RFC 9591 §3.1) before the share is checked (§5.4), as the cluster's session does.
    const pub = {
      signers: { min: key.threshold, max: key.roster.length },
      commitments: [...key.commitments],
      verifyingShares: key.verifyingShares,
    };
    const prepared = prepareKey({ flavor: key.flavor }, pub as unknown as FrostPublic);
    const session = prepareSession(prepared, list as NonceCommitments[], p.message);
    ok = session.verifyShare(device.identifier, p.share);
  } catch {
    ok = false;
  }
  if (!ok)
    throw new ProtocolError(
      ErrorCode.BAD_SIGNATURE_SHARE,
      `the device's signature share does not verify for this message (or its commitments are invalid)`,
      [p.device],
    );
}

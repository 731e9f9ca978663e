/**
 * Offline packages: what a device signs offline against its reservations (./reservation.ts).
 *
 * A co-signer node reserves nonce commitments for a device while it is online (each a signed
 * {@link Reservation}). Offline, the device signs its share against its own fresh commitment and
 * the reserved ones, and emits an {@link OfflinePackage}: self-verifying with the key's public
 * data (the device's share verifies against its verifying share; each reservation against its
 * co-signer's identity key). Later the reserved co-signers complete it: each uses its reserved
 * nonce exactly once (their nonce ledgers enforce it), and the coordinator aggregates.
 *
 * Everything here is pure: durability (marking a reservation used before a package leaves,
 * consuming a co-signer's nonce before its share leaves) is the caller's job.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { equalBytes, fromHex, toHex, type Rng } from './bytes.js';
import type { EnvelopeSigner } from './envelope.js';
import { type DeviceClaims, signDeviceClaims } from './device-claims.js';
import { DecodeError, ErrorCode, InvalidArgumentError, ProtocolError } from './errors.js';
import { participantIdentifier, rosterEntry, type GroupKey, type KeyShare } from './key.js';
import { SigningSession, commit, signShare, type NonceCommitment } from './sign.js';
import type { Suite } from './suites.js';
import { decodeMessage, encodeMessage } from './wire/codec.js';
import {
  KEY_ID_PATTERN,
  MAX_CLAIMS_BYTES,
  MAX_COSIGNERS,
  MAX_MESSAGE_BYTES,
  RESERVATION_NONCE_ID_BYTES,
} from './wire/limits.js';
import { checkHeader, expectLength, makeHeader } from './wire/packages.js';
import type { WireTypes } from './wire/types.js';
import type { PaymentTx } from './payment.js';
import { type SignedReservation, readAllowance, verifyReservation, wireAllowance } from './reservation.js';

type WirePayment = WireTypes['Payment'];

// ---- offline packages ------------------------------------------------------------------------

export interface OfflinePackage {
  readonly suite: Suite;
  readonly keyId: string;
  readonly epoch: number;
  readonly device: string;
  readonly message: Uint8Array;
  /** The device's own commitment for this package. */
  readonly commitment: { readonly hiding: Uint8Array; readonly binding: Uint8Array };
  /** The device's signature share. */
  readonly share: Uint8Array;
  /** The reservations, in canonical order ({@link canonicalCosigners}): strictly ascending FROST identifier. */
  readonly cosigners: readonly SignedReservation[];
  readonly createdAt: number;
  /** The transaction `message` signs (./payment.ts), when the device paid one. */
  readonly payment?: PaymentTx | null;
  /** The device's DEVICE_CLAIMS envelope (./device-claims.ts): outside the digest. */
  readonly claims?: Uint8Array | null;
}

/** A decoded package with its canonical bytes and id. */
export interface DecodedPackage extends OfflinePackage {
  readonly bytes: Uint8Array;
  /** sha256 of the package with created_at zeroed ({@link packageDigest}): what co-signers bind their nonce to. */
  readonly digest: Uint8Array;
  /** Hex of the first 16 bytes of the digest: the package's name in CLIs, queues and logs. */
  readonly packageId: string;
}

/**
 * sha256 of the package with `created_at` zeroed and the payment left out. `created_at` is the
 * device's informational clock reading and no signature covers it: were it part of the digest, a
 * relay could change it and turn one signed package into two "different" ones racing for the
 * same reservation. The same for the payment: the signature covers the message derived from the
 * transaction, not the transaction's encoding (a relay can re-encode a PSBT, or drop it where no
 * cap needs it, without changing the message); a package with and without it is one package.
 * And the device's claims, which name the digest.
 */
export function packageDigest(p: OfflinePackage): Uint8Array {
  return sha256(encodeOfflinePackage({ ...p, createdAt: 0, payment: null, claims: null }));
}

export function packageIdOf(digest: Uint8Array): string {
  return toHex(digest.subarray(0, 16));
}

export function encodeOfflinePackage(p: OfflinePackage): Uint8Array {
  return encodeMessage('OfflinePackage', {
    header: makeHeader(p.suite),
    keyId: p.keyId,
    epoch: p.epoch,
    device: p.device,
    message: p.message,
    hiding: p.commitment.hiding,
    binding: p.commitment.binding,
    share: p.share,
    cosigners: p.cosigners.map((c) => ({
      signer: c.signer,
      nonceId: c.nonceId,
      hiding: c.hiding,
      binding: c.binding,
      expiresAt: c.expiresAt,
      signature: c.signature,
      allowance: wireAllowance(c.allowance),
    })),
    createdAt: p.createdAt,
    payment: (p.payment ? { chain: p.payment.chain, tx: p.payment.tx, input: p.payment.input } : null) as WirePayment,
    claims: p.claims ?? new Uint8Array(0),
  });
}

/** A participant's FROST identifier as a scalar: the value RFC 9591 sorts `commitment_list` by. */
function identifierValue(suite: Suite, id: string): bigint {
  return suite.Fn.fromBytes(fromHex(participantIdentifier(suite, id)));
}

/**
 * The canonical co-signer order of a package: strictly ascending FROST identifier, compared as
 * scalars (the order of a key's roster and of RFC 9591 §5.2's `commitment_list`), no duplicates.
 * The identifier is derived from the co-signer's id alone, so a decoder can check the order
 * without the key. FROST sorts the commitment list itself, so the order changes no share: without
 * a canonical order, a relay could reorder the co-signers of a t >= 3 package and get a second,
 * equally valid package (another digest and id) racing the genuine one for its reservations.
 */
export function canonicalCosigners<T extends { readonly signer: string }>(suite: Suite, cosigners: readonly T[]): T[] {
  return cosigners
    .map((c) => ({ c, x: identifierValue(suite, c.signer) }))
    .sort((a, b) => (a.x < b.x ? -1 : a.x > b.x ? 1 : 0))
    .map((e) => e.c);
}

/** Throws unless `signers` are in canonical order ({@link canonicalCosigners}), duplicates refused. */
function checkCosignerOrder(suite: Suite, signers: readonly string[], fail: (why: string) => Error): void {
  let prev: bigint | undefined;
  for (const id of signers) {
    let x: bigint;
    try {
      x = identifierValue(suite, id);
    } catch {
      throw fail(`co-signer id "${String(id).slice(0, 64)}" is malformed`);
    }
    if (prev !== undefined && x <= prev)
      throw fail('co-signers are not in canonical order (strictly ascending FROST identifier, each once)');
    prev = x;
  }
}

/**
 * Decodes an offline package (no cryptographic checks: see {@link verifyOfflinePackage}). Only
 * the canonical encoding is accepted, co-signers in canonical order included
 * ({@link canonicalCosigners}), so one package has exactly one id.
 */
export function decodeOfflinePackage(bytes: Uint8Array): DecodedPackage {
  const w = decodeMessage('OfflinePackage', bytes);
  const suite = checkHeader(w.header, 'offline package');
  if (!KEY_ID_PATTERN.test(w.keyId)) throw new DecodeError('offline package: malformed key id');
  if (w.message.length > MAX_MESSAGE_BYTES)
    throw new DecodeError(`offline package: message exceeds ${MAX_MESSAGE_BYTES} bytes`);
  if (w.cosigners.length < 1 || w.cosigners.length > MAX_COSIGNERS)
    throw new DecodeError('offline package: 1..254 co-signers expected');
  expectLength(w.hiding, suite.elementBytes, 'device hiding commitment');
  expectLength(w.binding, suite.elementBytes, 'device binding commitment');
  expectLength(w.share, suite.scalarBytes, 'device signature share');
  const cosigners: SignedReservation[] = w.cosigners.map((c) => {
    expectLength(c.nonceId, RESERVATION_NONCE_ID_BYTES, 'reservation nonce id');
    expectLength(c.hiding, suite.elementBytes, 'reserved hiding commitment');
    expectLength(c.binding, suite.elementBytes, 'reserved binding commitment');
    expectLength(c.signature, 64, 'reservation signature');
    return {
      suite,
      keyId: w.keyId,
      epoch: w.epoch,
      device: w.device,
      signer: c.signer,
      nonceId: c.nonceId,
      hiding: c.hiding,
      binding: c.binding,
      expiresAt: c.expiresAt,
      signature: c.signature,
      allowance: readAllowance(c.allowance),
    };
  });
  checkCosignerOrder(
    suite,
    cosigners.map((c) => c.signer),
    (why) => new DecodeError(`offline package: ${why}`),
  );
  const pkg: OfflinePackage = {
    suite,
    keyId: w.keyId,
    epoch: w.epoch,
    device: w.device,
    message: w.message,
    commitment: { hiding: w.hiding, binding: w.binding },
    share: w.share,
    cosigners,
    createdAt: w.createdAt,
    payment: w.payment,
    ...(w.claims.length ? { claims: w.claims } : {}),
  };
  if (w.claims.length > MAX_CLAIMS_BYTES)
    throw new DecodeError(`offline package: device claims over ${MAX_CLAIMS_BYTES} bytes`);
  let canonical: Uint8Array;
  try {
    canonical = encodeOfflinePackage(pkg);
  } catch {
    throw new DecodeError('offline package: non-canonical encoding');
  }
  if (!equalBytes(canonical, bytes)) throw new DecodeError('offline package: non-canonical encoding');
  const digest = packageDigest(pkg);
  return { ...pkg, bytes: bytes.slice(), digest, packageId: packageIdOf(digest) };
}

/** The FROST commitment list of a package: the device's own, then each co-signer's reserved one. */
export function packageCommitments(key: GroupKey, p: OfflinePackage): NonceCommitment[] {
  return [
    { identifier: rosterEntry(key, p.device).identifier, hiding: p.commitment.hiding, binding: p.commitment.binding },
    ...p.cosigners.map((c) => ({
      identifier: rosterEntry(key, c.signer).identifier,
      hiding: c.hiding,
      binding: c.binding,
    })),
  ];
}

/**
 * The merchant's check, and the first thing every co-signer and the coordinator do: the package
 * is for this key and epoch, its signers form exactly a quorum (the device plus t-1 co-signers,
 * all distinct roster members), every reservation is signed by its co-signer, and the device's
 * share is valid for this message and commitment list (so the device really signed it).
 * With `now`, an expired reservation fails too. Returns the signing session for aggregation.
 */
export function verifyOfflinePackage(
  key: GroupKey,
  p: OfflinePackage,
  expect: { keyId: string; epoch: number; now?: number },
  opts: { own?: NonceCommitment } = {},
): SigningSession {
  const session = preparePackageSession(key, p, expect, opts);
  if (!session.verifyShare(p.device, p.share))
    throw new ProtocolError(
      ErrorCode.BAD_SIGNATURE_SHARE,
      `the device's signature share does not verify for this message`,
      [p.device],
    );
  return session;
}

/**
 * {@link verifyOfflinePackage} but for the device's share (RFC 9591 §5.4, the costly part): every
 * other check, and the session with the list decoded and validated. For the coordinator when the
 * device itself delivers its package: each co-signer verifies the whole package before it spends
 * a nonce, and the aggregate is verified at the end.
 */
export function preparePackageSession(
  key: GroupKey,
  p: OfflinePackage,
  expect: { keyId: string; epoch: number; now?: number },
  opts: { own?: NonceCommitment } = {},
): SigningSession {
  if (p.keyId !== expect.keyId) throw new InvalidArgumentError(`package is for key ${p.keyId}, not ${expect.keyId}`);
  if (p.suite.id !== key.suite.id)
    throw new ProtocolError(ErrorCode.WRONG_SUITE, `package is ${p.suite.id}, key is ${key.suite.id}`);
  if (p.epoch !== expect.epoch)
    throw new ProtocolError(
      ErrorCode.RESERVATION_INVALID,
      `package is for epoch ${p.epoch}, the key is at epoch ${expect.epoch}`,
    );
  if (!key.roster.some((r) => r.id === p.device))
    throw new InvalidArgumentError(`${p.device.slice(0, 64)} is not a participant of key ${p.keyId}`);
  const ids = [p.device, ...p.cosigners.map((c) => c.signer)];
  if (new Set(ids).size !== ids.length) throw new InvalidArgumentError('package names a participant twice');
  if (ids.length !== key.threshold)
    throw new InvalidArgumentError(`package has ${ids.length} signers, the key needs exactly ${key.threshold}`);
  // Also checked by decodeOfflinePackage; repeated for packages built in memory.
  checkCosignerOrder(
    key.suite,
    p.cosigners.map((c) => c.signer),
    (why) => new InvalidArgumentError(`package ${why}`),
  );
  for (const c of p.cosigners) {
    if (c.keyId !== p.keyId || c.epoch !== p.epoch || c.device !== p.device || c.suite.id !== p.suite.id)
      throw new ProtocolError(
        ErrorCode.RESERVATION_INVALID,
        `the reservation of ${c.signer} is for another key, epoch or device`,
        [p.device],
      );
    if (!key.roster.some((r) => r.id === c.signer))
      throw new InvalidArgumentError(`co-signer ${c.signer.slice(0, 64)} is not a participant of key ${p.keyId}`);
    if (!verifyReservation(key, c))
      throw new ProtocolError(
        ErrorCode.RESERVATION_INVALID,
        `the reservation of ${c.signer} is not signed by it (or was altered)`,
        [p.device],
      );
    if (expect.now !== undefined && c.expiresAt < expect.now)
      throw new ProtocolError(
        ErrorCode.RESERVATION_EXPIRED,
        `the reservation of ${c.signer} expired at ${new Date(c.expiresAt).toISOString()}`,
      );
  }
  try {
    return new SigningSession(key, p.message, packageCommitments(key, p), opts);
  } catch (e) {
    throw new ProtocolError(ErrorCode.BAD_SIGNATURE_SHARE, `package commitments are invalid: ${(e as Error).message}`, [
      p.device,
    ]);
  }
}

/**
 * The device side, offline: a fresh commitment of its own, its signature share against it and
 * the reserved commitments, encoded as a package (co-signers in canonical order, whatever the
 * order of `reservations`). The nonce lives only inside this call (it is
 * used at once and never stored); marking the reservations used before the package leaves the
 * device is the caller's job.
 */
export function createOfflinePackage(args: {
  key: GroupKey;
  share: KeyShare;
  keyId: string;
  epoch: number;
  device: string;
  message: Uint8Array;
  reservations: readonly SignedReservation[];
  createdAt: number;
  /** The transaction `message` signs; the caller derived `message` from it (./package-payment.ts). */
  payment?: PaymentTx | null;
  /** The device's claims about the package, signed by `claims.signer` (./device-claims.ts). */
  claims?: { signer: EnvelopeSigner; integrity: DeviceClaims['integrity']; integrityDetail: string };
  rng?: Rng;
}): DecodedPackage {
  const { key, share } = args;
  if (!(args.message instanceof Uint8Array) || args.message.length > MAX_MESSAGE_BYTES)
    throw new InvalidArgumentError(`message must be bytes, at most ${MAX_MESSAGE_BYTES}`);
  if (rosterEntry(key, args.device).identifier !== share.identifier)
    throw new InvalidArgumentError(`the share is not ${args.device}'s`);
  if (args.reservations.length !== key.threshold - 1)
    throw new InvalidArgumentError(
      `a package needs exactly ${key.threshold - 1} reservation(s) for this ${key.threshold}-of-${key.roster.length} key, got ${args.reservations.length}`,
    );
  if (
    new Set(args.reservations.map((r) => r.signer)).size !== args.reservations.length ||
    args.reservations.some((r) => r.signer === args.device)
  )
    throw new InvalidArgumentError('reservations must come from distinct co-signers other than the device');
  for (const r of args.reservations) {
    if (r.keyId !== args.keyId || r.epoch !== args.epoch || r.device !== args.device)
      throw new ProtocolError(
        ErrorCode.RESERVATION_INVALID,
        `reservation of ${r.signer} is for another key, epoch or device`,
      );
    if (!verifyReservation(key, r))
      throw new ProtocolError(ErrorCode.RESERVATION_INVALID, `reservation of ${r.signer} does not verify`);
    if (r.expiresAt < args.createdAt)
      throw new ProtocolError(ErrorCode.RESERVATION_EXPIRED, `reservation of ${r.signer} expired`);
  }
  const reservations = canonicalCosigners(key.suite, args.reservations);
  const { nonces, commitment } = commit(share, args.rng ?? randomBytes);
  const commitments: NonceCommitment[] = [
    commitment,
    ...reservations.map((r) => ({
      identifier: rosterEntry(key, r.signer).identifier,
      hiding: r.hiding,
      binding: r.binding,
    })),
  ];
  const s = signShare(share, key, nonces, commitments, args.message);
  const pkg: OfflinePackage = {
    suite: key.suite,
    keyId: args.keyId,
    epoch: args.epoch,
    device: args.device,
    message: args.message,
    commitment: { hiding: commitment.hiding, binding: commitment.binding },
    share: s,
    cosigners: reservations,
    createdAt: args.createdAt,
    payment: args.payment ?? null,
  };
  const c = args.claims;
  const claims = c
    ? signDeviceClaims(c.signer, {
        packageDigest: packageDigest(pkg),
        signedAt: args.createdAt,
        integrity: c.integrity,
        integrityDetail: c.integrityDetail,
      })
    : null;
  return decodeOfflinePackage(encodeOfflinePackage({ ...pkg, claims }));
}

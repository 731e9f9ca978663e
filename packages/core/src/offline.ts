/**
 * Offline co-signing: reservations, offline packages and device-to-device co-signing.
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
import { type EnvelopeSigner, envelopeSigningBytes, openEnvelope, signEnvelope } from './envelope.js';
import { type DeviceClaims, signDeviceClaims } from './device-claims.js';
import { DecodeError, ErrorCode, InvalidArgumentError, ProtocolError } from './errors.js';
import { verifyParticipantSignature, type ParticipantIdentity } from './identity.js';
import { groupPublicKey, participantIdentifier, rosterEntry, type GroupKey, type KeyShare } from './key.js';
import { SigningNonces, SigningSession, commit, signShare, type NonceCommitment } from './sign.js';
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
export { packageFromText, packageToText } from './package-text.js';
import { PayloadKind } from './wire/types.js';
import type { WireTypes } from './wire/types.js';
import { type Allowance, validateAllowance } from './allowance.js';
import type { PaymentTx } from './payment.js';

type WireAllowance = WireTypes['Allowance'];
type WirePayment = WireTypes['Payment'];

export { RESERVATION_NONCE_ID_BYTES };

/** A co-signer's promise of one nonce to one device. */
export interface Reservation {
  readonly suite: Suite;
  readonly keyId: string;
  readonly epoch: number;
  readonly device: string;
  readonly signer: string;
  readonly nonceId: Uint8Array;
  readonly hiding: Uint8Array;
  readonly binding: Uint8Array;
  /** ms since the Unix epoch. */
  readonly expiresAt: number;
  /** What the device may pay with it (./allowance.ts); absent: any message. */
  readonly allowance?: Allowance | null;
}

/** A reservation with the co-signer's signature (what a device stores and a package carries). */
export interface SignedReservation extends Reservation {
  readonly signature: Uint8Array;
}

export function encodeReservation(r: Reservation): Uint8Array {
  return encodeMessage('Reservation', {
    header: makeHeader(r.suite),
    keyId: r.keyId,
    epoch: r.epoch,
    device: r.device,
    signer: r.signer,
    nonceId: r.nonceId,
    hiding: r.hiding,
    binding: r.binding,
    expiresAt: r.expiresAt,
    allowance: wireAllowance(r.allowance),
  });
}

/** An allowance as the codec writes it: absent when there is none. */
function wireAllowance(a: Allowance | null | undefined): WireAllowance {
  if (!a) return null as unknown as WireAllowance;
  const f = a.fiat;
  return {
    allowanceId: a.allowanceId,
    caps: [...a.caps],
    perPayment: [...a.perPayment],
    fiat: f
      ? { currency: f.currency, cap: f.cap, perPayment: f.perPayment, prices: f.prices, approvals: [...f.approvals] }
      : null,
  } as WireAllowance;
}

/** An allowance as read (null when absent), its shape checked. */
function readAllowance(a: WireAllowance | null): Allowance | null {
  if (!a) return null;
  const { fiat, ...rest } = a;
  const read: Allowance = fiat ? { ...rest, fiat } : rest;
  try {
    validateAllowance(read);
  } catch (e) {
    throw new DecodeError(`reservation allowance: ${(e as Error).message}`);
  }
  return read;
}

/** The co-signer side: signs a reservation; returns the RESERVATION envelope. */
export function signReservation(identity: ParticipantIdentity, r: Reservation): Uint8Array {
  if (r.signer !== identity.id) throw new InvalidArgumentError('a reservation is signed by the co-signer it names');
  return signEnvelope(identity, PayloadKind.RESERVATION, encodeReservation(r));
}

/** Lengths and ranges of a reservation against its key. */
function checkReservationFields(key: GroupKey, r: Omit<Reservation, 'suite'>): void {
  expectLength(r.nonceId, RESERVATION_NONCE_ID_BYTES, 'reservation nonce id');
  expectLength(r.hiding, key.suite.elementBytes, 'reserved hiding commitment');
  expectLength(r.binding, key.suite.elementBytes, 'reserved binding commitment');
  if (!Number.isSafeInteger(r.expiresAt) || r.expiresAt <= 0) throw new DecodeError('reservation expiry missing');
}

/**
 * Opens a RESERVATION envelope for `key`: the signer must be in the key's roster and the
 * envelope signed by that participant's identity key. Throws RESERVATION_INVALID otherwise.
 */
export function openReservation(key: GroupKey, envelope: Uint8Array): SignedReservation {
  const env = openEnvelope(envelope, PayloadKind.RESERVATION);
  const w = decodeMessage('Reservation', env.payload);
  const suite = checkHeader(w.header, 'reservation', key.suite);
  const signer = key.roster.find((r) => r.id === w.signer);
  if (!signer || !equalBytes(signer.signKey, env.sender))
    throw new ProtocolError(
      ErrorCode.RESERVATION_INVALID,
      `reservation is not signed by ${String(w.signer).slice(0, 64)}, a participant of the key`,
    );
  const r: Reservation = {
    suite,
    keyId: w.keyId,
    epoch: w.epoch,
    device: w.device,
    signer: w.signer,
    nonceId: w.nonceId,
    hiding: w.hiding,
    binding: w.binding,
    expiresAt: w.expiresAt,
    allowance: readAllowance(w.allowance),
  };
  checkReservationFields(key, r);
  const sig = decodeMessage('Envelope', envelope).signature;
  return { ...r, signature: sig };
}

/** Verifies a reservation's signature against its co-signer's key in the roster. */
export function verifyReservation(key: GroupKey, r: SignedReservation): boolean {
  const signer = key.roster.find((x) => x.id === r.signer);
  if (!signer) return false;
  try {
    return verifyParticipantSignature(
      signer.signKey,
      envelopeSigningBytes(PayloadKind.RESERVATION, encodeReservation(r)),
      r.signature,
    );
  } catch {
    return false;
  }
}

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

// ---- two devices, no cluster -----------------------------------------------------------------

/** The proposer's pending state: its nonce, kept (sealed) until the answer arrives. */
export interface CosignPending {
  readonly requestEnvelope: Uint8Array;
  /**
   * Wiped by {@link completeCosign}. The caller stores it sealed until the answer arrives, and
   * must replace it durably with a spent marker before calling {@link completeCosign} (check the
   * answer first with {@link openCosignResponse}).
   */
  readonly nonceSecret: Uint8Array;
}

/** Round one from the proposing device: its commitment and the message, signed by its identity. */
export function createCosignRequest(args: {
  identity: ParticipantIdentity;
  key: GroupKey;
  share: KeyShare;
  keyId: string;
  epoch: number;
  message: Uint8Array;
  rng?: Rng;
}): CosignPending {
  if (args.key.threshold !== 2)
    throw new InvalidArgumentError(`device-to-device signing needs a 2-of-n key; this one needs ${args.key.threshold}`);
  if (args.message.length > MAX_MESSAGE_BYTES)
    throw new InvalidArgumentError(`message exceeds ${MAX_MESSAGE_BYTES} bytes`);
  const rng = args.rng ?? randomBytes;
  const { nonces, commitment } = commit(args.share, rng);
  const payload = encodeMessage('CosignRequest', {
    header: makeHeader(args.key.suite),
    keyId: args.keyId,
    epoch: args.epoch,
    device: args.identity.id,
    message: args.message,
    hiding: commitment.hiding,
    binding: commitment.binding,
    requestId: rng(16),
  });
  return {
    requestEnvelope: signEnvelope(args.identity, PayloadKind.COSIGN_REQUEST, payload),
    nonceSecret: nonces.exportSecret(),
  };
}

export interface OpenedCosignRequest {
  readonly keyId: string;
  readonly epoch: number;
  readonly device: string;
  readonly message: Uint8Array;
  readonly commitment: NonceCommitment;
  readonly requestId: Uint8Array;
  readonly digest: Uint8Array;
}

/** Opens a cosign request for `key`: signed by the roster member it names. */
export function openCosignRequest(key: GroupKey, envelope: Uint8Array): OpenedCosignRequest {
  const env = openEnvelope(envelope, PayloadKind.COSIGN_REQUEST);
  const w = decodeMessage('CosignRequest', env.payload);
  checkHeader(w.header, 'cosign request', key.suite);
  const who = key.roster.find((r) => r.id === w.device);
  if (!who || !equalBytes(who.signKey, env.sender))
    throw new ProtocolError(ErrorCode.BAD_SIGNATURE, 'cosign request is not signed by a participant of the key');
  if (w.message.length > MAX_MESSAGE_BYTES) throw new DecodeError('cosign request: message too long');
  expectLength(w.requestId, 16, 'cosign request id');
  return {
    keyId: w.keyId,
    epoch: w.epoch,
    device: w.device,
    message: w.message,
    commitment: {
      identifier: who.identifier,
      hiding: expectLength(w.hiding, key.suite.elementBytes, 'hiding'),
      binding: expectLength(w.binding, key.suite.elementBytes, 'binding'),
    },
    requestId: w.requestId,
    digest: sha256(envelope),
  };
}

/** Round two on the co-signing device: a fresh commitment and its share, in one answer. */
export function answerCosignRequest(args: {
  identity: ParticipantIdentity;
  key: GroupKey;
  share: KeyShare;
  request: OpenedCosignRequest;
  rng?: Rng;
}): Uint8Array {
  const { key, request } = args;
  if (request.device === args.identity.id) throw new InvalidArgumentError('a device cannot co-sign its own request');
  const { nonces, commitment } = commit(args.share, args.rng ?? randomBytes);
  const share = signShare(args.share, key, nonces, [request.commitment, commitment], request.message);
  return encodeMessage('CosignResponse', {
    header: makeHeader(key.suite),
    requestDigest: request.digest,
    device: args.identity.id,
    hiding: commitment.hiding,
    binding: commitment.binding,
    share,
  });
}

/** A checked answer to a cosign request: what the proposer needs to add its own share. */
export interface OpenedCosignResponse {
  readonly request: OpenedCosignRequest;
  /** The answering participant. */
  readonly other: string;
  /** Its signature share (verified). */
  readonly share: Uint8Array;
  readonly commitments: readonly NonceCommitment[];
  readonly session: SigningSession;
}

/**
 * Back on the proposer, before its nonce is touched: the answer is for this request, from another
 * participant of the key, and its share verifies. Lets a caller mark the nonce spent durably
 * between this check and {@link completeCosign}, so a bad answer does not burn the request.
 */
export function openCosignResponse(
  key: GroupKey,
  requestEnvelope: Uint8Array,
  response: Uint8Array,
): OpenedCosignResponse {
  const request = openCosignRequest(key, requestEnvelope);
  const w = decodeMessage('CosignResponse', response);
  checkHeader(w.header, 'cosign response', key.suite);
  if (!equalBytes(w.requestDigest, request.digest))
    throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, 'the answer is for another request');
  const other = key.roster.find((r) => r.id === w.device);
  if (!other || other.id === request.device)
    throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, 'the answer is not from another participant of the key');
  const theirs: NonceCommitment = {
    identifier: other.identifier,
    hiding: expectLength(w.hiding, key.suite.elementBytes, 'hiding'),
    binding: expectLength(w.binding, key.suite.elementBytes, 'binding'),
  };
  const commitments = [request.commitment, theirs];
  const session = new SigningSession(key, request.message, commitments);
  if (!session.verifyShare(other.id, expectLength(w.share, key.suite.scalarBytes, 'share')))
    throw new ProtocolError(ErrorCode.BAD_SIGNATURE_SHARE, `the signature share of ${other.id} does not verify`, [
      other.id,
    ]);
  return { request, other: other.id, share: w.share, commitments, session };
}

/** Back on the proposer: its own share, aggregation, and the plain verifier. */
export function completeCosign(args: {
  key: GroupKey;
  share: KeyShare;
  pending: CosignPending;
  response: Uint8Array;
}): { signature: Uint8Array; signers: string[]; message: Uint8Array } {
  const { key } = args;
  const {
    request,
    other,
    share: theirShare,
    commitments,
    session,
  } = openCosignResponse(key, args.pending.requestEnvelope, args.response);
  // The pending nonce is used once: wiped here, so a second answer to the same request (which
  // would sign another commitment list with the same nonce and leak the share) is refused.
  if (args.pending.nonceSecret.every((b) => b === 0))
    throw new ProtocolError(ErrorCode.INVALID_STATE, 'this request was already completed: its nonce is spent');
  const nonces = SigningNonces.importSecret(key.suite, args.share.identifier, args.pending.nonceSecret);
  args.pending.nonceSecret.fill(0);
  const mine = signShare(args.share, key, nonces, commitments, request.message);
  const signature = session.aggregate(
    new Map([
      [request.device, mine],
      [other, theirShare],
    ]),
  );
  if (!key.suite.verify(signature, request.message, groupPublicKey(key)))
    throw new ProtocolError(ErrorCode.SIGNATURE_INVALID, 'signature failed the plain verifier');
  return { signature, signers: [request.device, other], message: request.message };
}

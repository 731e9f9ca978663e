/**
 * Reservations: a co-signer node's signed promise of one nonce commitment to one device, for one
 * key and epoch, with the allowance it may pay (./allowance.ts). The device signs offline
 * against them (./offline.ts); the co-signer's own ledger record of each is the authority when a
 * package comes back.
 */
import { equalBytes } from './bytes.js';
import { envelopeSigningBytes, openEnvelope, signEnvelope } from './envelope.js';
import { DecodeError, ErrorCode, InvalidArgumentError, ProtocolError } from './errors.js';
import { verifyParticipantSignature, type ParticipantIdentity } from './identity.js';
import type { GroupKey } from './key.js';
import type { Suite } from './suites.js';
import { decodeMessage, encodeMessage } from './wire/codec.js';
import { RESERVATION_NONCE_ID_BYTES } from './wire/limits.js';
import { checkHeader, expectLength, makeHeader } from './wire/packages.js';
import { PayloadKind } from './wire/types.js';
import type { WireTypes } from './wire/types.js';
import { type Allowance, validateAllowance } from './allowance.js';

type WireAllowance = WireTypes['Allowance'];

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
export function wireAllowance(a: Allowance | null | undefined): WireAllowance {
  if (!a) return null as unknown as WireAllowance;
  const f = a.fiat;
  return {
    allowanceId: a.allowanceId,
    requireIntegrity: a.requireIntegrity === true,
    caps: [...a.caps],
    perPayment: [...a.perPayment],
    fiat: f
      ? { currency: f.currency, cap: f.cap, perPayment: f.perPayment, prices: f.prices, approvals: [...f.approvals] }
      : null,
  } as WireAllowance;
}

/** An allowance as read (null when absent), its shape checked. */
export function readAllowance(a: WireAllowance | null): Allowance | null {
  if (!a) return null;
  const { fiat, requireIntegrity, ...rest } = a;
  const read: Allowance = { ...rest, ...(fiat ? { fiat } : {}), ...(requireIntegrity ? { requireIntegrity } : {}) };
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

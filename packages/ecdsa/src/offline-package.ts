/**
 * A device's offline ECDSA package: its part (u', w) of one signature on a 32-byte digest, made
 * with a presignature it set up with its co-signers while online, signed by the device's roster
 * key (an ECDSA_OFFLINE_PACKAGE envelope) and carrying each co-signer's signed statement of that
 * presignature. [DKLs23] gives no check of one signer's partial (Protocol 3.6 step 10 checks the
 * combined signature only), so what can be checked before completion is who speaks: the device
 * that signed the package, and the co-signers that hold the presignature it names, all with the
 * same R. A co-signer completes it once, on the device's signed authority; the signature is then
 * checked whole with the plain verifier.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import {
  DecodeError,
  ErrorCode,
  KEY_ID_PATTERN,
  PayloadKind,
  ProtocolError,
  assertParticipantId,
  checkHeader,
  decodeKeyRecord,
  packageFromText,
  toHex,
  decodeMessage,
  encodeMessage,
  equalBytes,
  makeHeader,
  openEnvelope,
  readEnvelope,
  signEnvelope,
  type EnvelopeSigner,
  type PaymentTx,
} from '@tessera/core';
import { scalarFromBytes } from './params.js';
import { decodePresigned } from './presigned.js';
import type { EcdsaKeyView } from './session.js';
import { keyView } from './setup-store.js';

/** What the device puts in a package. */
export interface EcdsaPackageFields {
  readonly keyId: string;
  readonly epoch: number;
  readonly device: string;
  /** The 32-byte digest signed. */
  readonly message: Uint8Array;
  /** The presignature's id. */
  readonly session: Uint8Array;
  /** The device and its co-signers, in roster-index order. */
  readonly signers: readonly string[];
  /** The device's partial, re-randomised (sign.ts `partialSign`). */
  readonly u: Uint8Array;
  readonly w: Uint8Array;
  /** Each co-signer's ECDSA_PRESIGNATURE envelope of `session`. */
  readonly presigned: readonly Uint8Array[];
  readonly createdAt: number;
  /**
   * The transaction the package pays (a Bitcoin PSBT, its P2WPKH input `input`): `message` is
   * what it signs, which each reader derives from it itself (core's `readPayment`).
   */
  readonly payment?: PaymentTx | null;
}

/** A package opened against its key: every signature checked, and what it names. */
export interface OpenedEcdsaPackage extends EcdsaPackageFields {
  readonly packageId: string;
  /** sha256 of the package's bytes. */
  readonly digest: Uint8Array;
  /** The presignature's R (33 bytes), the same in every co-signer's statement. */
  readonly R: Uint8Array;
  /** The co-signers (the signers but the device). */
  readonly cosigners: readonly string[];
  /** The earliest of the co-signers' expiries of their parts (ms; 0 if none states one). */
  readonly expiresAt: number;
  readonly bytes: Uint8Array;
}

/**
 * A package's id: the first 16 bytes of its digest, hex (as a FROST package's; computed here, not
 * imported from core's offline.ts, whose FROST signing code a device page loads first).
 */
const packageIdOf = (digest: Uint8Array) => toHex(digest.subarray(0, 16));

/** The device's package, signed: its bytes and id. */
export function createEcdsaPackage(
  device: EnvelopeSigner,
  key: Pick<EcdsaKeyView, 'suite'>,
  f: EcdsaPackageFields,
): { bytes: Uint8Array; packageId: string } {
  const payload = encodeMessage('EcdsaOfflinePackage', {
    header: makeHeader(key.suite),
    keyId: f.keyId,
    epoch: f.epoch,
    device: f.device,
    message: f.message,
    session: f.session,
    signers: [...f.signers],
    u: f.u,
    w: f.w,
    presigned: [...f.presigned],
    createdAt: f.createdAt,
    payment: (f.payment ? { chain: f.payment.chain, tx: f.payment.tx, input: f.payment.input } : null) as never,
  });
  const bytes = signEnvelope(device, PayloadKind.ECDSA_OFFLINE_PACKAGE, payload);
  return { bytes, packageId: packageIdOf(sha256(bytes)) };
}

function exact(b: Uint8Array | undefined, n: number, what: string): Uint8Array {
  if (!(b instanceof Uint8Array) || b.length !== n) throw new DecodeError(`ECDSA package: ${what}: ${n} bytes`);
  return b;
}

/**
 * Opens package `bytes` against `key` (its roster and epoch): signed by a device of the roster,
 * for this key and epoch, a 32-byte digest, signers in roster order with at least the threshold,
 * and one statement of the presignature from each co-signer, signed by its roster key, naming the
 * same key, epoch, session and signers, all with one R. Throws DECODE, BAD_SIGNATURE (not the
 * device's) or RESERVATION_INVALID (naming the device, whose signed package does not fit).
 */
export function openEcdsaPackage(key: EcdsaKeyView, bytes: Uint8Array): OpenedEcdsaPackage {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError('ECDSA package: expected bytes');
  const env = openEnvelope(bytes, PayloadKind.ECDSA_OFFLINE_PACKAGE);
  const w = decodeMessage('EcdsaOfflinePackage', env.payload);
  checkHeader(w.header, 'ECDSA package', key.suite);
  if (!KEY_ID_PATTERN.test(w.keyId)) throw new DecodeError('ECDSA package: malformed key id');
  const device = key.roster.find((r) => r.id === w.device);
  // Who signed it is all that is known: a package not signed by the device it names names nobody.
  if (!device?.device || !equalBytes(device.signKey, env.sender))
    throw new ProtocolError(ErrorCode.BAD_SIGNATURE, `ECDSA package: not signed by a device of key ${key.keyId}`);
  // Signed by the device: what does not fit is its doing (a co-signer's statement, signed by that
  // co-signer for this device's presignature, was copied in by the device too).
  const blame = (why: string) => new ProtocolError(ErrorCode.RESERVATION_INVALID, `ECDSA package: ${why}`, [w.device]);
  if (w.keyId !== key.keyId) throw blame(`for key ${w.keyId}, not ${key.keyId}`);
  if (Number(w.epoch) !== key.epoch) throw blame(`of epoch ${w.epoch}, the key is at ${key.epoch}`);
  exact(w.message, 32, 'message (a digest)');
  exact(w.session, 32, 'session');
  scalarFromBytes(exact(w.u, 32, 'u'), 'u');
  scalarFromBytes(exact(w.w, 32, 'w'), 'w');
  const index = (id: string) => key.roster.findIndex((r) => r.id === id);
  const signers = [...w.signers];
  for (const id of signers) assertParticipantId(id);
  if (new Set(signers).size !== signers.length || signers.some((id) => index(id) < 0))
    throw blame('signers outside the roster or listed twice');
  if (signers.some((id, i) => i > 0 && index(id) < index(signers[i - 1] as string)))
    throw blame('signers out of roster order');
  if (signers.length < Math.max(2, key.threshold) || !signers.includes(w.device))
    throw blame(`needs the device and at least ${Math.max(2, key.threshold)} signers`);
  const cosigners = signers.filter((id) => id !== w.device);
  if (w.presigned.length !== cosigners.length) throw blame('one statement of each co-signer expected');
  let R: Uint8Array | undefined;
  let expiresAt = Number.POSITIVE_INFINITY;
  const seen = new Set<string>();
  for (const s of w.presigned) {
    const e = openEnvelope(s, PayloadKind.ECDSA_PRESIGNATURE);
    const by = key.roster.find((r) => equalBytes(r.signKey, e.sender));
    if (!by || !cosigners.includes(by.id) || seen.has(by.id)) throw blame('a statement not of one of its co-signers');
    seen.add(by.id);
    const p = decodePresigned(key.suite, e.payload);
    const same =
      p.keyId === key.keyId &&
      p.epoch === key.epoch &&
      equalBytes(p.session, w.session) &&
      p.signers.join(',') === signers.join(',');
    if (!same) throw blame(`${by.id}'s statement is of another presignature`);
    if (R && !equalBytes(R, p.R))
      throw new ProtocolError(ErrorCode.RESERVATION_INVALID, 'ECDSA package: the co-signers state different R', [
        ...cosigners,
      ]);
    R = p.R;
    expiresAt = Math.min(expiresAt, p.expiresAt ?? 0);
  }
  return {
    keyId: w.keyId,
    epoch: Number(w.epoch),
    device: w.device,
    message: w.message,
    session: w.session,
    signers,
    u: w.u,
    w: w.w,
    presigned: [...w.presigned],
    createdAt: Number(w.createdAt),
    payment: w.payment ? { chain: w.payment.chain, tx: w.payment.tx, input: Number(w.payment.input) } : null,
    packageId: packageIdOf(sha256(bytes)),
    digest: sha256(bytes),
    R: R as Uint8Array,
    cosigners,
    expiresAt: Number.isFinite(expiresAt) ? expiresAt : 0,
    bytes,
  };
}

/** A merchant's offline check of an ECDSA package: who signed it, for what, who completes it. */
export interface EcdsaPackageCheck {
  readonly packageId: string;
  readonly keyId: string;
  readonly device: string;
  /** The 32-byte digest the package signs (hex). */
  readonly message: string;
  readonly cosigners: readonly string[];
  readonly createdAt: number;
  /** When the first co-signer drops its part of the presignature (ms): deliver before. */
  readonly expiresAt: number;
  /** The transaction it pays, as carried (read it with core's `readPayment`: `message` must be what it signs). */
  readonly payment: PaymentTx | null;
}

/**
 * The merchant's check without the cluster (`tessera check-package`): the package opened against
 * the key's public record — signed by the device, every co-signer's statement of its
 * presignature genuine and alike. What it cannot check ([DKLs23] has no per-signer check of a
 * partial): that the device's partial is right; the co-signers complete it once, and the
 * signature is verified whole then.
 */
export function checkEcdsaPackage(keyRecord: Uint8Array, pkg: Uint8Array | string): EcdsaPackageCheck {
  const rec = decodeKeyRecord(keyRecord);
  if (rec.key.suite.scheme !== 'ecdsa')
    throw new ProtocolError(ErrorCode.WRONG_SUITE, `key ${rec.keyId} is ${rec.key.suite.id}, not an ECDSA key`);
  const p = openEcdsaPackage(keyView(rec), typeof pkg === 'string' ? packageFromText(pkg) : pkg);
  return {
    packageId: p.packageId,
    keyId: p.keyId,
    device: p.device,
    message: toHex(p.message),
    cosigners: [...p.cosigners],
    createdAt: p.createdAt,
    expiresAt: p.expiresAt,
    payment: p.payment ?? null,
  };
}

/** What a package names, read without any check (to route and lock it; open it before acting). */
export function peekEcdsaPackage(bytes: Uint8Array): {
  keyId: string;
  epoch: number;
  device: string;
  packageId: string;
  createdAt: number;
} {
  const env = readEnvelope(bytes, PayloadKind.ECDSA_OFFLINE_PACKAGE);
  const w = decodeMessage('EcdsaOfflinePackage', env.payload);
  if (!KEY_ID_PATTERN.test(w.keyId)) throw new DecodeError('ECDSA package: malformed key id');
  assertParticipantId(w.device);
  return {
    keyId: w.keyId,
    epoch: Number(w.epoch),
    device: w.device,
    packageId: packageIdOf(sha256(bytes)),
    createdAt: Number(w.createdAt),
  };
}

/** Whether `bytes` is an ECDSA offline package envelope (its kind only; nothing is checked). */
export function isEcdsaPackage(bytes: Uint8Array): boolean {
  try {
    return decodeMessage('Envelope', bytes).kind === PayloadKind.ECDSA_OFFLINE_PACKAGE;
  } catch {
    return false;
  }
}

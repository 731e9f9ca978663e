/**
 * HPKE base mode with a post-quantum/traditional hybrid KEM: X-Wing, which combines ML-KEM-768
 * and X25519 (HPKE KEM id 0x647A; draft-connolly-cfrg-xwing-kem, named MLKEM768-X25519 in
 * draft-irtf-cfrg-concrete-hybrid-kems and draft-ietf-hpke-pq §4), with HKDF-SHA256 and
 * ChaCha20Poly1305 as in the classic suite. A recording of this traffic stays closed to an
 * attacker who later breaks X25519 with a quantum computer, and to one who breaks ML-KEM
 * classically: the shared secret needs both.
 *
 * The KEM itself is noble's (`ml_kem768_x25519` in @noble/post-quantum, X-Wing with its
 * `\.//^\` combiner label); this file maps it onto HPKE's KEM interface (draft-ietf-hpke-pq §4:
 * serialisation is the identity, Nsecret = 32, Nenc = 1120, Npk = 1216, Nsk = 32) and runs
 * RFC 9180's key schedule (./hpke-schedule.ts) on its shared secret. Checked against the
 * 0x647A / HKDF-SHA256 / ChaCha20Poly1305 vector of the HPKE working group's test vectors.
 */
import { ml_kem768_x25519 as xwing } from '@noble/post-quantum/hybrid.js';
import { ErrorCode, InvalidArgumentError, ProtocolError } from './errors.js';
import { assertBytes, hpkeSuiteId, keyScheduleBase } from './hpke-schedule.js';
import { XWING_PUBLIC_KEY_BYTES } from './wire/limits.js';

/** The hybrid suite (KEM, KDF and AEAD identifiers). */
export const HPKE_XWING_SUITE: { kem: 0x647a; kdf: 0x0001; aead: 0x0003 } = Object.freeze({
  kem: 0x647a,
  kdf: 0x0001,
  aead: 0x0003,
} as const);

/** Npk, Nenc and Nsk of X-Wing (the secret key is the 32-byte seed everything is derived from). */
export { XWING_PUBLIC_KEY_BYTES };
export const XWING_ENC_BYTES = 1120;
export const XWING_SECRET_KEY_BYTES = 32;
/** Randomness one encapsulation consumes (32 for ML-KEM, 32 for the X25519 ephemeral key). */
export const XWING_ENCAP_RANDOM_BYTES = 64;

const SUITE_ID = hpkeSuiteId(HPKE_XWING_SUITE.kem);

/** The X-Wing public key of the 32-byte secret seed `secretKey`. */
export function xwingPublicKey(secretKey: Uint8Array): Uint8Array {
  assertBytes(secretKey, 'X-Wing secret key', XWING_SECRET_KEY_BYTES);
  return xwing.getPublicKey(secretKey);
}

/**
 * SetupBaseS (RFC 9180 §5.1.1) with X-Wing's Encap. `eseed` is the encapsulation's randomness
 * (64 bytes; the vectors' ikmE). A public key X-Wing refuses (ML-KEM's encapsulation-key check)
 * is an InvalidArgumentError.
 */
export function setupXWingSender(
  pkR: Uint8Array,
  info: Uint8Array,
  eseed: Uint8Array,
): {
  enc: Uint8Array;
  seal(aad: Uint8Array, pt: Uint8Array): Uint8Array;
  export(ctx: Uint8Array, len: number): Uint8Array;
} {
  assertBytes(pkR, 'HPKE recipient public key', XWING_PUBLIC_KEY_BYTES);
  assertBytes(info, 'HPKE info');
  assertBytes(eseed, 'X-Wing encapsulation randomness', XWING_ENCAP_RANDOM_BYTES);
  let out: { cipherText: Uint8Array; sharedSecret: Uint8Array };
  try {
    out = xwing.encapsulate(pkR, eseed);
  } catch {
    throw new InvalidArgumentError('HPKE recipient public key is not a valid X-Wing key');
  }
  const ctx = keyScheduleBase(SUITE_ID, out.sharedSecret, info);
  return { enc: out.cipherText, seal: ctx.seal, export: ctx.export };
}

/**
 * SetupBaseR (RFC 9180 §5.1.1) with X-Wing's Decap. X-Wing rejects implicitly: a tampered or
 * foreign `enc` yields another shared secret, so the failure shows as DECRYPT when the AEAD opens.
 */
export function setupXWingReceiver(
  enc: Uint8Array,
  skR: Uint8Array,
  info: Uint8Array,
): { open(aad: Uint8Array, ct: Uint8Array): Uint8Array; export(ctx: Uint8Array, len: number): Uint8Array } {
  assertBytes(skR, 'HPKE recipient secret key', XWING_SECRET_KEY_BYTES);
  assertBytes(info, 'HPKE info');
  if (!(enc instanceof Uint8Array) || enc.length !== XWING_ENC_BYTES)
    throw new ProtocolError(ErrorCode.DECRYPT, `HPKE enc: expected ${XWING_ENC_BYTES} bytes`);
  let shared: Uint8Array;
  try {
    shared = xwing.decapsulate(enc, skR);
  } catch {
    throw new ProtocolError(ErrorCode.DECRYPT, 'HPKE enc does not decapsulate');
  }
  const ctx = keyScheduleBase(SUITE_ID, shared, info);
  return { open: ctx.open, export: ctx.export };
}

/**
 * The one envelope format used for both KEK wrapping and value sealing:
 * `version (1 byte, 0x01) || nonce (24 random bytes) || XChaCha20-Poly1305 ciphertext+tag`.
 * Random 192-bit nonces make nonce collisions negligible for any realistic number of writes.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { randomBytes } from '@noble/ciphers/utils.js';

/** Envelope format version byte. */
export const ENVELOPE_VERSION = 0x01;
/** XChaCha20-Poly1305 nonce length. */
export const NONCE_LEN = 24;
/** Poly1305 tag length. */
export const TAG_LEN = 16;
/** Bytes an envelope adds to its plaintext. */
export const ENVELOPE_OVERHEAD = 1 + NONCE_LEN + TAG_LEN;

/** Encrypt `plain` under the 32-byte `key`, authenticating `aad`. */
export function sealEnvelope(key: Uint8Array, plain: Uint8Array, aad: Uint8Array): Uint8Array {
  const nonce = randomBytes(NONCE_LEN);
  const ct = xchacha20poly1305(key, nonce, aad).encrypt(plain);
  const out = new Uint8Array(1 + NONCE_LEN + ct.length);
  out[0] = ENVELOPE_VERSION;
  out.set(nonce, 1);
  out.set(ct, 1 + NONCE_LEN);
  return out;
}

/**
 * Decrypt an envelope made by {@link sealEnvelope}. Returns `undefined` if it is malformed, of an
 * unknown version, or fails authentication (wrong key, wrong AAD, tampered) — callers turn that
 * into a typed error that names the context, never the bytes.
 */
export function openEnvelope(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
  if (sealed.length < ENVELOPE_OVERHEAD || sealed[0] !== ENVELOPE_VERSION) return undefined;
  const nonce = sealed.subarray(1, 1 + NONCE_LEN);
  try {
    return xchacha20poly1305(key, nonce, aad).decrypt(sealed.subarray(1 + NONCE_LEN));
  } catch {
    return undefined;
  }
}

/**
 * Independent verifiers for the signatures Tessera emits: OpenSSL (through node:crypto) and
 * libsodium (libsodium-wrappers) for Ed25519, libsecp256k1 (tiny-secp256k1, its WebAssembly
 * build) for BIP340. None of them shares code with noble.
 */
import { createPublicKey, verify as opensslVerify } from 'node:crypto';
import sodium from 'libsodium-wrappers';
import * as secp from 'tiny-secp256k1';

await sodium.ready;

/** DER SubjectPublicKeyInfo prefix of an Ed25519 key (RFC 8410). */
const ED25519_SPKI = Buffer.from('302a300506032b6570032100', 'hex');

export function opensslEd25519(sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): boolean {
  const key = createPublicKey({ key: Buffer.concat([ED25519_SPKI, Buffer.from(pk)]), format: 'der', type: 'spki' });
  return opensslVerify(null, msg, key, sig);
}

export function libsodiumEd25519(sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): boolean {
  return sodium.crypto_sign_verify_detached(sig, msg, pk);
}

export function libsecp256k1Bip340(sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): boolean {
  // libsecp256k1's BIP340 verification; this binding accepts 32-byte messages (sighashes) only.
  return secp.verifySchnorr(msg, pk, sig);
}

/** Every independent verifier that applies to the suite; each must accept. */
/**
 * libsecp256k1 (tiny-secp256k1) on an r ‖ s ‖ v signature: strict (low-S) ECDSA verification of
 * the 32-byte digest, and public-key recovery with v giving the same key (what chains do).
 */
export function libsecp256k1Ecdsa(sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): boolean {
  if (sig.length !== 65 || msg.length !== 32) return false;
  const rs = sig.subarray(0, 64);
  const v = sig[64] as number;
  if (v > 1 || !secp.verify(msg, pk, rs, true)) return false;
  const recovered = secp.recover(msg, rs, v as 0 | 1, true);
  return recovered !== null && Buffer.from(recovered).equals(Buffer.from(pk));
}

export function externalVerifiers(
  suite: string,
): Record<string, (sig: Uint8Array, msg: Uint8Array, pk: Uint8Array) => boolean> {
  if (suite === 'ed25519') return { openssl: opensslEd25519, libsodium: libsodiumEd25519 };
  if (suite === 'secp256k1-tr') return { libsecp256k1: libsecp256k1Bip340 };
  if (suite === 'ecdsa-secp256k1') return { libsecp256k1: libsecp256k1Ecdsa };
  return {};
}

/** The Ed25519 suite's curve as ../fast.ts uses it (RFC 9591 §6.1, FROST(Ed25519, SHA-512)). */
import type { IField } from '@noble/curves/abstract/modular.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { concatBytes } from '@noble/hashes/utils.js';
import { type Flavor, type NPCons, leToNumber, prefixes } from '../frost-flavor.js';

const Fn = ed25519.Point.Fn as IField<bigint>;

export const ed25519Flavor: Flavor = {
  Point: ed25519.Point as unknown as NPCons,
  Fn,
  hash: (m) => sha512(m),
  // RFC 9591 §6.1: H1/H2 = SHA-512(prefix || m) as a little-endian integer mod L; this is noble's
  // createFROST fallback `Fn.create(bytesToNumberLE(hash(DST || msg)))`.
  hashToScalar: (m, dst) => Fn.create(leToNumber(sha512(concatBytes(dst, m)))),
  ...prefixes('FROST-ED25519-SHA512-v1', ''),
  taproot: false,
};

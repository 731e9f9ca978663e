/** The P-256 suite's curve as ../fast.ts uses it (RFC 9591 §6.4, FROST(P-256, SHA-256)). */
import type { IField } from '@noble/curves/abstract/modular.js';
import { p256, p256_hasher } from '@noble/curves/nist.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { type Flavor, type NPCons, prefixes } from '../frost-flavor.js';

export const p256Flavor: Flavor = {
  Point: p256.Point as unknown as NPCons,
  Fn: p256.Point.Fn as IField<bigint>,
  hash: (m) => sha256(m),
  hashToScalar: (m, dst) => p256_hasher.hashToScalar(m, { DST: dst }), // RFC 9591 §6.4
  ...prefixes('FROST-P256-SHA256-v1'),
  taproot: false,
};

/** The two secp256k1 suites' curve as ../fast.ts uses it (RFC 9591 §6.5; BIP340 for -TR). */
import type { IField } from '@noble/curves/abstract/modular.js';
import { schnorr, secp256k1_hasher } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { type Flavor, type NPCons, prefixes } from '../frost-flavor.js';

const common = {
  Point: schnorr.Point as unknown as NPCons,
  Fn: schnorr.Point.Fn as IField<bigint>,
  hash: (m: Uint8Array) => sha256(m),
  // RFC 9591 §6.5: H1/H2 = hash_to_field(m, DST = prefix) with expand_message_xmd(SHA-256).
  hashToScalar: (m: Uint8Array, dst: Uint8Array) => secp256k1_hasher.hashToScalar(m, { DST: dst }),
};

/** FROST-secp256k1-SHA256-TR-v1: BIP340 signatures (x-only keys, even-Y adjustments). */
export const secp256k1TrFlavor: Flavor = {
  ...common,
  ...prefixes('FROST-secp256k1-SHA256-TR-v1'),
  taproot: true,
  taggedHash: schnorr.utils.taggedHash,
};

/** FROST-secp256k1-SHA256-v1. */
export const secp256k1Flavor: Flavor = { ...common, ...prefixes('FROST-secp256k1-SHA256-v1'), taproot: false };

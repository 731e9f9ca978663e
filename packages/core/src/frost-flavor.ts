/**
 * What ./fast.ts needs of a suite's curve — its point and scalar types, its hashes and the RFC
 * 9591 domain-separation prefixes — mirroring the `createFROST` options of noble's four suite
 * instances. One per suite, in ./curves/: the full core (./suites.ts) imports all four, the
 * merchant's package check only the one it meets.
 */
import type { IField } from '@noble/curves/abstract/modular.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';

/** The noble point surface fast.ts uses (every Tessera suite's Point class has these methods). */
export interface NP {
  add(o: NP): NP;
  subtract(o: NP): NP;
  negate(): NP;
  multiply(s: bigint): NP;
  multiplyUnsafe(s: bigint): NP;
  equals(o: NP): boolean;
  toBytes(compressed?: boolean): Uint8Array;
  is0(): boolean;
  assertValidity(): void;
  isTorsionFree(): boolean;
  clearCofactor(): NP;
}
export interface NPCons {
  readonly BASE: NP;
  readonly ZERO: NP;
  fromBytes(b: Uint8Array): NP;
}

/** Per-suite data mirroring the `createFROST` options of noble's four suite instances. */
export interface Flavor {
  readonly Point: NPCons;
  readonly Fn: IField<bigint>;
  /** RFC 9591 §6.x `H` (the suite's hash), used by H4/H5. */
  readonly hash: (m: Uint8Array) => Uint8Array;
  /** The suite's hash-to-scalar with a DST (H1/H2, and noble's HID for derived identifiers). */
  readonly hashToScalar: (m: Uint8Array, dst: Uint8Array) => bigint;
  readonly H1: Uint8Array;
  readonly H2: Uint8Array;
  readonly H4: Uint8Array;
  readonly H5: Uint8Array;
  /** noble's (and frost-rs's) prefix for identifiers derived from a name: contextString || "id". */
  readonly HID: Uint8Array;
  /** secp256k1-tr: BIP340 challenge, even-Y adjustments, x-only R in signatures. */
  readonly taproot: boolean;
  /** secp256k1-tr: BIP340's tagged hash (the challenge is tagged "BIP0340/challenge"). */
  readonly taggedHash?: (tag: string, ...messages: Uint8Array[]) => Uint8Array;
}

/** The prefixes of a suite from its RFC 9591 context string. */
export function prefixes(ctx: string, h2: string = ctx + 'chal') {
  // RFC 9591 §6.x: H1 = contextString || "rho", H2 = contextString || "chal" (ed25519: undecorated,
  // §6.1), H4 = contextString || "msg", H5 = contextString || "com". H3 (nonce) is only in commit().
  return {
    H1: utf8ToBytes(ctx + 'rho'),
    H2: utf8ToBytes(h2),
    H4: utf8ToBytes(ctx + 'msg'),
    H5: utf8ToBytes(ctx + 'com'),
    HID: utf8ToBytes(ctx + 'id'),
  };
}

/** A little-endian byte string as an integer (RFC 9591 §6.1 H1/H2 for Ed25519). */
export function leToNumber(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  return n;
}

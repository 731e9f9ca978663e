/**
 * Ciphersuites. A suite is data: the noble RFC 9591 FROST instance, its point and scalar types,
 * sizes, and the plain single-party verifier that every emitted signature must satisfy.
 * Protocol code is generic over {@link Suite} and never branches on a suite's name.
 */
import { ed25519, ed25519_FROST } from '@noble/curves/ed25519.js';
import { p256, p256_FROST } from '@noble/curves/nist.js';
import { schnorr, schnorr_FROST, secp256k1, secp256k1_FROST } from '@noble/curves/secp256k1.js';
import type { FROST } from '@noble/curves/abstract/frost.js';
import type { IField } from '@noble/curves/abstract/modular.js';
import { InvalidArgumentError } from './errors.js';
import { ed25519Flavor } from './curves/ed25519.js';
import { p256Flavor } from './curves/p256.js';
import { secp256k1Flavor, secp256k1TrFlavor } from './curves/secp256k1.js';
import type { Flavor } from './frost-flavor.js';

import {
  ECDSA_SUITE_IDS,
  ECDSA_SUITE_WIRE_IDS,
  KEY_SUITE_IDS,
  SUITE_IDS,
  SUITE_SHAPES,
  type FrostSuiteId,
  type SuiteId,
  type SuiteShape,
} from './suite-ids.js';

/** A suite's wire shape from the one table of them. */
function shape(id: FrostSuiteId): SuiteShape & { scheme: 'frost' } {
  return { ...(SUITE_SHAPES.find((s) => s.id === id) as SuiteShape), scheme: 'frost' };
}

export { ECDSA_SUITE_IDS, KEY_SUITE_IDS, SUITE_IDS, type FrostSuiteId, type SuiteId };

/** A group element as the suite's FROST instance sees it (noble point). */
export interface SuitePoint {
  add(o: SuitePoint): SuitePoint;
  subtract(o: SuitePoint): SuitePoint;
  negate(): SuitePoint;
  multiply(s: bigint): SuitePoint;
  multiplyUnsafe(s: bigint): SuitePoint;
  equals(o: SuitePoint): boolean;
  toBytes(compressed?: boolean): Uint8Array;
  is0(): boolean;
}
export interface SuitePointConstructor {
  BASE: SuitePoint;
  ZERO: SuitePoint;
  fromBytes(b: Uint8Array): SuitePoint;
}

export interface Suite {
  /** Human and config name. */
  readonly id: SuiteId;
  /**
   * How the key signs: `frost` (RFC 9591, every FROST path), or `ecdsa` (DKLs23 over the same
   * curve: the DKG, lifecycle and HD math are the FROST suite's; FROST signing paths refuse it).
   */
  readonly scheme: 'frost' | 'ecdsa';
  /** Numeric id on the wire (`tessera.v1.Suite`). Never reuse a number. */
  readonly wireId: number;
  /** The RFC 9591 context string of the FROST ciphersuite. */
  readonly contextString: string;
  /** noble's FROST implementation for this suite. */
  readonly frost: FROST;
  /** The curve as ./fast.ts (the signing path) uses it. */
  readonly flavor: Flavor;
  /** Scalar field (order of the prime-order group). */
  readonly Fn: IField<bigint>;
  /** Point constructor of the group. */
  readonly Point: SuitePointConstructor;
  /** Serialized scalar length. */
  readonly scalarBytes: number;
  /** Serialized (compressed) group element length, as FROST encodes it. */
  readonly elementBytes: number;
  /** Length of the signature this suite emits in its standard encoding. */
  readonly signatureBytes: number;
  /** Length of the public key in its standard encoding. */
  readonly publicKeyBytes: number;
  /**
   * Converts a FROST group verifying key (`commitments[0]`, SerializeElement) into the suite's
   * standard public key encoding: Ed25519 32 bytes, BIP340 x-only 32 bytes, SEC1 compressed 33.
   */
  publicKey(groupKey: Uint8Array): Uint8Array;
  /** The plain single-party verifier for this suite's signatures (RFC 8032, BIP340, RFC 9591). */
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  /** A suite serialises as its name. */
  toJSON(): string;
}

function frostVerifier(frost: FROST) {
  return (sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): boolean => {
    try {
      return frost.verify(sig, msg, pk);
    } catch {
      return false;
    }
  };
}

const ED25519: Suite = Object.freeze({
  ...shape('ed25519'),
  flavor: ed25519Flavor,
  toJSON: () => 'ed25519',
  contextString: 'FROST-ED25519-SHA512-v1',
  frost: ed25519_FROST,
  Fn: ed25519_FROST.utils.Fn,
  Point: ed25519.Point as unknown as SuitePointConstructor,
  signatureBytes: 64,
  publicKeyBytes: 32,
  publicKey: (gk: Uint8Array) => gk.slice(),
  // RFC 8032 verification with the strict (non-ZIP215) rules: the strictest common verifier.
  verify: (sig: Uint8Array, msg: Uint8Array, pk: Uint8Array) => {
    try {
      return ed25519.verify(sig, msg, pk, { zip215: false });
    } catch {
      return false;
    }
  },
} satisfies Suite);

const SECP256K1_TR: Suite = Object.freeze({
  ...shape('secp256k1-tr'),
  flavor: secp256k1TrFlavor,
  toJSON: () => 'secp256k1-tr',
  contextString: 'FROST-secp256k1-SHA256-TR-v1',
  frost: schnorr_FROST,
  Fn: schnorr_FROST.utils.Fn,
  Point: schnorr.Point as unknown as SuitePointConstructor,
  signatureBytes: 64,
  publicKeyBytes: 32,
  // BIP340 keys are the x coordinate only. A DKG key may have odd Y (noble applies the empty
  // TapTweak to DKG output, as frost-rs does); BIP340 semantics use the even-Y lift of x.
  publicKey: (gk: Uint8Array) => gk.slice(1),
  verify: (sig: Uint8Array, msg: Uint8Array, pk: Uint8Array) => {
    try {
      return schnorr.verify(sig, msg, pk);
    } catch {
      return false;
    }
  },
} satisfies Suite);

const SECP256K1: Suite = Object.freeze({
  ...shape('secp256k1'),
  flavor: secp256k1Flavor,
  toJSON: () => 'secp256k1',
  contextString: 'FROST-secp256k1-SHA256-v1',
  frost: secp256k1_FROST,
  Fn: secp256k1_FROST.utils.Fn,
  Point: schnorr.Point as unknown as SuitePointConstructor,
  signatureBytes: 65,
  publicKeyBytes: 33,
  publicKey: (gk: Uint8Array) => gk.slice(),
  // RFC 9591 Schnorr over secp256k1 (R || z): single-party verification is RFC 9591 §6 verify.
  verify: frostVerifier(secp256k1_FROST),
} satisfies Suite);

const P256: Suite = Object.freeze({
  ...shape('p256'),
  flavor: p256Flavor,
  toJSON: () => 'p256',
  contextString: 'FROST-P256-SHA256-v1',
  frost: p256_FROST,
  Fn: p256_FROST.utils.Fn,
  Point: p256.Point as unknown as SuitePointConstructor,
  signatureBytes: 65,
  publicKeyBytes: 33,
  publicKey: (gk: Uint8Array) => gk.slice(),
  verify: frostVerifier(p256_FROST),
} satisfies Suite);

/**
 * Threshold ECDSA over secp256k1 (DKLs23, `@tessera/ecdsa`). The key is made and kept exactly as a
 * FROST(secp256k1) key is (so `frost`, `flavor`, `Fn`, `Point` are that suite's: DKG, refresh,
 * reshare, HD tweaks); a signature is r ‖ s ‖ v (65 bytes, low S, v the recovery id 0–3) over a
 * 32-byte digest, the message of an ECDSA intent.
 */
const ECDSA_SECP256K1: Suite = Object.freeze({
  id: 'ecdsa-secp256k1',
  scheme: 'ecdsa',
  wireId: ECDSA_SUITE_WIRE_IDS['ecdsa-secp256k1'],
  scalarBytes: 32,
  elementBytes: 33,
  flavor: secp256k1Flavor,
  toJSON: () => 'ecdsa-secp256k1',
  contextString: 'FROST-secp256k1-SHA256-v1',
  frost: secp256k1_FROST,
  Fn: secp256k1_FROST.utils.Fn,
  Point: schnorr.Point as unknown as SuitePointConstructor,
  signatureBytes: 65,
  publicKeyBytes: 33,
  publicKey: (gk: Uint8Array) => gk.slice(),
  verify: (sig: Uint8Array, msg: Uint8Array, pk: Uint8Array) => {
    try {
      if (sig.length !== 65 || msg.length !== 32 || (sig[64] as number) > 3) return false;
      // The recovery id must name the key too (chains recover the signer from (r, s, v)): noble's
      // "recovered" form (v ‖ r ‖ s) checks it with the verification's own point, which is the
      // one recovery reconstructs — one multiplication instead of a verification and a recovery.
      const recovered = new Uint8Array(65);
      recovered[0] = sig[64] as number;
      recovered.set(sig.subarray(0, 64), 1);
      return secp256k1.verify(recovered, msg, pk, { prehash: false, lowS: true, format: 'recovered' });
    } catch {
      return false;
    }
  },
} satisfies Suite);

const BY_ID: Readonly<Record<SuiteId, Suite>> = Object.freeze({
  ed25519: ED25519,
  'secp256k1-tr': SECP256K1_TR,
  secp256k1: SECP256K1,
  p256: P256,
  'ecdsa-secp256k1': ECDSA_SECP256K1,
});

/** The FROST suites, in wire-id order. */
export const SUITES: readonly Suite[] = Object.freeze([ED25519, SECP256K1_TR, SECP256K1, P256]);
/** Every suite a key can have: the FROST suites, then the ECDSA ones. */
export const KEY_SUITES: readonly Suite[] = Object.freeze([...SUITES, ECDSA_SECP256K1]);

export function isSuiteId(s: unknown): s is SuiteId {
  return typeof s === 'string' && (KEY_SUITE_IDS as readonly string[]).includes(s);
}

/** Looks a suite up by name; throws a typed error naming the valid choices. */
export function getSuite(id: string): Suite {
  if (!isSuiteId(id))
    throw new InvalidArgumentError(`unknown suite "${id}" (expected one of ${KEY_SUITE_IDS.join(', ')})`);
  return BY_ID[id];
}

/** Looks a suite up by its wire number (FROST or ECDSA); undefined if unknown. */
export function suiteByWireId(n: number): Suite | undefined {
  return KEY_SUITES.find((s) => s.wireId === n);
}

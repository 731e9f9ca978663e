/**
 * Suite names as they appear in CLIs, configs and JSON. Its own module with no imports, so a
 * command line can list the choices without loading the curves (`@tessera/core/suite-ids`).
 */
/** The FROST suites (RFC 9591): every one signs online, offline and on devices. */
export const SUITE_IDS = ['ed25519', 'secp256k1-tr', 'secp256k1', 'p256'] as const;
/**
 * The threshold ECDSA suites (DKLs23, `@tessera/ecdsa`): Tessera's DKG and lifecycle on the
 * curve, signatures by DKLs23 presigning. Not FROST: no FROST package (commitment, sign request,
 * reservation, offline package) is ever of one of these suites.
 */
export const ECDSA_SUITE_IDS = ['ecdsa-secp256k1'] as const;
/** Every suite a key can have. */
export const KEY_SUITE_IDS = [...SUITE_IDS, ...ECDSA_SUITE_IDS] as const;
export type FrostSuiteId = (typeof SUITE_IDS)[number];
export type SuiteId = (typeof KEY_SUITE_IDS)[number];

/** What a suite is on the wire: its number (`tessera.v1.Suite`) and encoding sizes. */
export interface SuiteShape {
  readonly id: FrostSuiteId;
  /** Never reuse a number. */
  readonly wireId: number;
  /** Serialized scalar length. */
  readonly scalarBytes: number;
  /** Serialized (compressed) group element length, as FROST encodes it. */
  readonly elementBytes: number;
}

/**
 * Every suite's shape, in wire-id order: all a decoder needs before it loads a curve (the
 * merchant's package check loads only the curve of the package it checks).
 */
export const SUITE_SHAPES: readonly SuiteShape[] = Object.freeze([
  { id: 'ed25519', wireId: 1, scalarBytes: 32, elementBytes: 32 },
  { id: 'secp256k1-tr', wireId: 2, scalarBytes: 32, elementBytes: 33 },
  { id: 'secp256k1', wireId: 3, scalarBytes: 32, elementBytes: 33 },
  { id: 'p256', wireId: 4, scalarBytes: 32, elementBytes: 33 },
]);

/** The ECDSA suites' wire numbers (`tessera.v1.Suite`); never a FROST package's suite. */
export const ECDSA_SUITE_WIRE_IDS: Readonly<Record<(typeof ECDSA_SUITE_IDS)[number], number>> = Object.freeze({
  'ecdsa-secp256k1': 5,
});

/**
 * Suite names as they appear in CLIs, configs and JSON. Its own module with no imports, so a
 * command line can list the choices without loading the curves (`@tessera/core/suite-ids`).
 */
export const SUITE_IDS = ['ed25519', 'secp256k1-tr', 'secp256k1', 'p256'] as const;
export type SuiteId = (typeof SUITE_IDS)[number];

/** What a suite is on the wire: its number (`tessera.v1.Suite`) and encoding sizes. */
export interface SuiteShape {
  readonly id: SuiteId;
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

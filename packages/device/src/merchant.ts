/**
 * The merchant's offline check, as the SDK offers it: each call imports the check
 * (./merchant-check.ts) on first use, so a wallet page does not download the check until it runs one (in a code-split
 * browser build it is a chunk of its own). A payment terminal imports `@tessera/core/merchant`
 * itself: that module is the whole check and nothing else (22 KB gzip for Ed25519 keys).
 */
import type { PackageCheck } from '@tessera/core/merchant';

export type { PackageCheck };

/**
 * With the key's public record (`KeyRecord` bytes), verifies offline that the device really
 * signed the package's message (bytes, or its "TSP1:" text) against genuine, unexpired
 * reservations at `now`, for a key of any suite. Rejects with a typed error (`DECODE`,
 * `WRONG_SUITE`, `RESERVATION_INVALID`, `RESERVATION_EXPIRED`, `BAD_SIGNATURE_SHARE`, …).
 */
export async function checkPackage(
  keyRecord: Uint8Array,
  pkg: Uint8Array | string,
  now = Date.now(),
): Promise<PackageCheck> {
  return (await import('./merchant-check.js')).checkPackage(keyRecord, pkg, now);
}

/** {@link checkPackage} for Ed25519 keys only (`WRONG_SUITE` for another suite's key). */
export async function checkEd25519Package(
  keyRecord: Uint8Array,
  pkg: Uint8Array | string,
  now = Date.now(),
): Promise<PackageCheck> {
  return (await import('./merchant-check.js')).checkEd25519Package(keyRecord, pkg, now);
}

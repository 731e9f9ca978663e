/**
 * The merchant's offline check for a key of any suite: ./package-check.ts with every suite's
 * curve imported when a package of that suite first arrives (./suite-loader.ts). Its own module,
 * so a build that imports only `checkEd25519Package` carries no loader and no other curve.
 */
import { type PackageCheck, checkPackageWith } from './package-check.js';
import { loadCurve } from './suite-loader.js';

/**
 * The merchant's check, offline: with the key's public record (`KeyRecord` bytes), verifies that
 * the device really signed the package's message (bytes, or its "TSP1:" text) against genuine,
 * unexpired reservations at `now`. It cannot tell whether a reservation was already spent
 * elsewhere: only the cluster knows that. A package that carries a payment is read from its
 * transaction (the chains' readers imported then) and must fit every reservation's allowance.
 * Rejects with a typed error (see {@link checkPackageWith}).
 */
export function checkPackage(keyRecord: Uint8Array, pkg: Uint8Array | string, now = Date.now()): Promise<PackageCheck> {
  return checkPackageWith(loadCurve, keyRecord, pkg, now, () => import('./package-payment.js'));
}

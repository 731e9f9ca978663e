/**
 * The check behind ./merchant.ts, imported on first use. The SDK already holds every suite's
 * curve (its keys can be of any suite), so the any-suite check takes them from there instead of
 * importing each on demand as `@tessera/core/merchant`'s own `checkPackage` does for a terminal.
 */
import { getSuite } from '@tessera/core';
import { type PackageCheck, checkEd25519Package, checkPackageWith } from '@tessera/core/package-check';

export { checkEd25519Package };

export function checkPackage(keyRecord: Uint8Array, pkg: Uint8Array | string, now: number): Promise<PackageCheck> {
  return checkPackageWith(async (id) => getSuite(id).flavor, keyRecord, pkg, now);
}

/**
 * `@tessera/core/merchant`: what a merchant's terminal needs to accept an offline package, and
 * nothing else (no protobuf registry, no signing, no curve it does not meet).
 */
export { checkPackage } from './package-check-any.js';
export { type CurveLoader, type PackageCheck, checkEd25519Package, checkPackageWith } from './package-check.js';

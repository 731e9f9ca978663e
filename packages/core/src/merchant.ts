/**
 * `@tessera/core/merchant`: what a merchant's terminal needs to accept an offline package, and
 * nothing else (no protobuf registry, no signing, no curve it does not meet). Star re-exports
 * only (see ./named-exports.ts): a page that imports `checkPackageWith` or `checkEd25519Package`
 * then carries no curve loader.
 */
export * from './package-check-any.js';
export * from './package-check.js';

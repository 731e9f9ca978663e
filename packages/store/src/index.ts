/**
 * @tessera/store — Tessera's storage. One sealing layer ({@link SealedStore}) over LevelDB; on
 * top of it the share vault, the nonce ledger, the idempotency cache and the audit log.
 */
export * from './errors.js';
export * from './kek.js';
export * from './kek-pkcs11.js';
export * from './kek-spec.js';
export * from './kek-rotate.js';
export * from './types.js';
export * from './sealed.js';
export * from './layout.js';
export * from './vault.js';
export * from './nonce-ledger.js';
export * from './idempotency.js';
export * from './audit-chain.js';
export * from './audit.js';
export { KeyedMutex } from './mutex.js';
export * from './pg-store.js';

/**
 * The store's error vocabulary. Every failure the store reports is a {@link StoreError} with a
 * stable `code` (match on it, never on the message).
 *
 * Messages name directories, store keys (which are not secret, see the README) and lengths —
 * never shares, nonces, keys or any value bytes.
 */

import { TesseraError } from '@tessera/core';

/** The codes the store reports: a subset of core's `ErrorCode` (a test checks it stays one). */
export const StoreErrorCode = {
  /** Input failed validation (bad key, wrong type, out of range). Nothing was changed. */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** No key-encryption key was supplied: the file or environment variable is absent or empty. */
  KEK_MISSING: 'KEK_MISSING',
  /** A key-encryption key was supplied but is malformed (not 32 bytes / 64 hex characters). */
  KEK_INVALID: 'KEK_INVALID',
  /** The key-encryption key does not open this store (another KEK sealed it). */
  KEK_MISMATCH: 'KEK_MISMATCH',
  /** The HSM holding the key-encryption key cannot be used: wrong PIN, no such token or key, token removed. */
  KEK_UNAVAILABLE: 'KEK_UNAVAILABLE',
  /** Stored bytes fail to unseal or decode: tampered, moved between keys, or damaged. */
  STORE_CORRUPT: 'STORE_CORRUPT',
  /** The database cannot be used: locked by another handle, I/O error, or closed. */
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE',
  /** The vault already holds a different share record for this key id and epoch. */
  SHARE_EXISTS: 'SHARE_EXISTS',
  /** A batch `insert` found its key present: nothing of that batch was written. */
  KEY_EXISTS: 'KEY_EXISTS',
  /** The nonce ledger has no record of this nonce id. */
  NONCE_UNKNOWN: 'NONCE_UNKNOWN',
  /** The nonce was already consumed for a different request. Nothing was changed. */
  NONCE_REUSED: 'NONCE_REUSED',
  /** A nonce with this id is already in the ledger (fresh or consumed); it is never replaced. */
  NONCE_EXISTS: 'NONCE_EXISTS',
} as const;
export type StoreErrorCode = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];

/**
 * Error raised by `@tessera/store`: a `TesseraError` (core's one error base and code list) whose
 * code is one of the store's {@link StoreErrorCode} subset.
 */
export class StoreError extends TesseraError {
  constructor(code: StoreErrorCode, message: string, opts: { cause?: unknown } = {}) {
    super(code, message, opts);
  }
  declare readonly code: StoreErrorCode;
}

/** True if `e` is a {@link StoreError}, optionally with the given code. */
export function isStoreError(e: unknown, code?: StoreErrorCode): e is StoreError {
  return e instanceof StoreError && (code === undefined || e.code === code);
}

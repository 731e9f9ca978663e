/**
 * The store's error vocabulary. Every failure the store reports is a {@link StoreError} with a
 * stable `code` (match on it, never on the message).
 *
 * Messages name directories, store keys (which are not secret, see the README) and lengths —
 * never shares, nonces, keys or any value bytes.
 */

/** Stable store error codes. Adding a code is fine; renaming or reusing one is a breaking change. */
export const StoreErrorCode = {
  /** Input failed validation (bad key, wrong type, out of range). Nothing was changed. */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** No key-encryption key was supplied: the file or environment variable is absent or empty. */
  KEK_MISSING: 'KEK_MISSING',
  /** A key-encryption key was supplied but is malformed (not 32 bytes / 64 hex characters). */
  KEK_INVALID: 'KEK_INVALID',
  /** The key-encryption key does not open this store (another KEK sealed it). */
  KEK_MISMATCH: 'KEK_MISMATCH',
  /** Stored bytes fail to unseal or decode: tampered, moved between keys, or damaged. */
  STORE_CORRUPT: 'STORE_CORRUPT',
  /** The database cannot be used: locked by another handle, I/O error, or closed. */
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE',
  /** The vault already holds a different share record for this key id and epoch. */
  SHARE_EXISTS: 'SHARE_EXISTS',
  /** The nonce ledger has no record of this nonce id. */
  NONCE_UNKNOWN: 'NONCE_UNKNOWN',
  /** The nonce was already consumed for a different request. Nothing was changed. */
  NONCE_REUSED: 'NONCE_REUSED',
  /** A nonce with this id is already in the ledger (fresh or consumed); it is never replaced. */
  NONCE_EXISTS: 'NONCE_EXISTS',
} as const;
export type StoreErrorCode = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];

/**
 * Error raised by `@tessera/store`. It has the same shape as `@tessera/core`'s `TesseraError`
 * (`code`, `culprits`, `toJSON()`), so `isTesseraError()` recognises it, but its `code` is a
 * {@link StoreErrorCode} — a separate vocabulary that core's `ErrorCode` union does not list,
 * which is why it does not inherit from `TesseraError` (that would mistype `code`).
 */
export class StoreError extends Error {
  /** Stable machine-readable code. */
  readonly code: StoreErrorCode;
  /** Always empty: storage failures blame no protocol participant. Present for shape parity. */
  readonly culprits: readonly string[] = Object.freeze([]);
  constructor(code: StoreErrorCode, message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.name = new.target.name;
  }
  /** A plain-data view for logs and wire errors (never includes `cause`, which may be foreign). */
  toJSON(): { name: string; code: StoreErrorCode; message: string; culprits: readonly string[] } {
    return { name: this.name, code: this.code, message: this.message, culprits: this.culprits };
  }
}

/** True if `e` is a {@link StoreError}, optionally with the given code. */
export function isStoreError(e: unknown, code?: StoreErrorCode): e is StoreError {
  return e instanceof StoreError && (code === undefined || e.code === code);
}

/**
 * The contract every sealed key-value backend fulfils. The vault, nonce ledger, idempotency
 * cache and audit log depend only on this interface; {@link SealedStore} is the LevelDB one.
 */

/** Durability option for writes. */
export interface WriteOptions {
  /**
   * `true`: do not resolve until the write is on stable storage (LevelDB synced write, fsync).
   * Default `false`: the write reaches the OS and survives a process crash but maybe not power loss.
   */
  sync?: boolean;
}

/** One operation of an atomic {@link SealedKV.batch}. */
export type BatchOp =
  | { readonly type: 'put'; readonly key: string; readonly value: Uint8Array }
  /**
   * Put only if `key` is absent: if it exists, the whole batch fails with `KEY_EXISTS` and
   * nothing is written (a record that must be written once: a result, a spent reservation).
   * Among inserts this is atomic (PostgreSQL: the primary key; LevelDB: checked under the
   * store's insert lock); a plain `put` to the same key is not held back by it.
   */
  | { readonly type: 'insert'; readonly key: string; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: string };

/** Options of a range scan. */
export interface IterateOptions {
  /** Descending key order instead of ascending. */
  reverse?: boolean;
  /** Stop after this many entries. */
  limit?: number;
}

/**
 * A key-value store whose values are sealed at rest. Keys are non-secret UTF-8 strings ordered by
 * their UTF-8 bytes; values are opaque bytes. Reads that find bytes which do not unseal throw a
 * `STORE_CORRUPT` StoreError naming the key.
 */
export interface SealedKV {
  /** The value at `key`, or `undefined` if absent. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Store `value` at `key` (replacing any previous value). */
  put(key: string, value: Uint8Array, opts?: WriteOptions): Promise<void>;
  /** Remove `key` (no error if absent). */
  del(key: string, opts?: WriteOptions): Promise<void>;
  /** Apply all `ops` atomically: all of them or none. */
  batch(ops: readonly BatchOp[], opts?: WriteOptions): Promise<void>;
  /** `[key, value]` pairs whose key starts with `prefix`, in key order, from a consistent snapshot. */
  iterate(prefix: string, opts?: IterateOptions): AsyncGenerator<[string, Uint8Array]>;
  /** Like {@link iterate} but yields keys only (no unsealing). */
  keys(prefix: string, opts?: IterateOptions): AsyncGenerator<string>;
  /**
   * Optional: ask the backend to physically drop overwritten/deleted versions under `prefix`
   * from its files (LevelDB compaction). Backends without such residue may omit it.
   */
  compact?(prefix: string): Promise<void>;
  /** Release the store. Later calls fail with `STORE_UNAVAILABLE`. */
  close(): Promise<void>;
}

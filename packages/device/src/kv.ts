/**
 * The ordered key-value store under the device's sealed records (./storage.ts): what it needs of
 * one, and `levelStore`, which adapts any abstract-level database (classic-level on Node, an
 * SQLite- or MMKV-backed one on React Native). The default store for a location string is
 * ./kv-default.ts: LevelDB on Node; in a browser bundle the package's `browser` map swaps in
 * ./kv-default-browser.ts (IndexedDB, strict durability), so `level` is not bundled there.
 */

export type KvOp = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string };

export interface KvStore {
  open(): Promise<void>;
  get(key: string): Promise<Uint8Array | undefined>;
  /** One atomic write, durable (synced) before it resolves. */
  batch(ops: readonly KvOp[]): Promise<void>;
  /** Records with gte <= key < lt, in key order. */
  entries(gte: string, lt: string): AsyncIterable<[string, Uint8Array]>;
  close(): Promise<void>;
}

/** The part of an abstract-level database the device uses (utf8 keys, Uint8Array values). */
export interface LevelLike {
  open(): Promise<void>;
  get(key: string): Promise<Uint8Array | undefined>;
  batch(ops: KvOp[], options?: unknown): Promise<void>;
  iterator(range: { gte: string; lt: string }): AsyncIterable<[string, Uint8Array]>;
  close(): Promise<void>;
}

/** A store over an abstract-level database; every batch with `sync: true` (classic-level fsyncs). */
export function levelStore(db: LevelLike): KvStore {
  return {
    open: () => db.open(),
    get: (key) => db.get(key),
    batch: (ops) => db.batch([...ops], { sync: true }),
    entries: (gte, lt) => db.iterator({ gte, lt }),
    close: () => db.close(),
  };
}

export function isKvStore(x: unknown): x is KvStore {
  return typeof (x as KvStore | undefined)?.entries === 'function';
}

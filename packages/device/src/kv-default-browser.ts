/**
 * The device's default store in a browser: IndexedDB, in the layout `browser-level` (what `level`
 * gave browsers before) uses, so stores written by earlier versions open unchanged: database
 * "level-js-<location>", one object store named <location>, keys as UTF-8 bytes (binary keys
 * order as LevelDB's do), values as bytes. Every write transaction asks for
 * `durability: 'strict'`, so a batch resolves only once the browser has flushed it to disk; the
 * default ("relaxed" in Chromium) may report a write complete before it is durable — a payment
 * acknowledged, then lost.
 */
import type { KvOp, KvStore } from './kv.js';

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** The IndexedDB surface used here (typed locally: the SDK builds without DOM types). */
interface Request<T> {
  result: T;
  error: unknown;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface Transaction {
  objectStore(name: string): {
    get(key: Uint8Array): Request<Uint8Array | undefined>;
    put(value: Uint8Array, key: Uint8Array): void;
    delete(key: Uint8Array): void;
    getAll(range: unknown): Request<Uint8Array[]>;
    getAllKeys(range: unknown): Request<ArrayBuffer[]>;
  };
  oncomplete: (() => void) | null;
  onabort: (() => void) | null;
  error: unknown;
  abort(): void;
}
interface Database {
  transaction(store: string, mode: 'readonly' | 'readwrite', options?: { durability: 'strict' }): Transaction;
  createObjectStore(name: string): void;
  objectStoreNames: { contains(name: string): boolean };
  close(): void;
}
interface Idb {
  open(name: string, version: number): Request<Database> & { onupgradeneeded: (() => void) | null };
}
interface IdbKeyRange {
  bound(lower: Uint8Array, upper: Uint8Array, lowerOpen: boolean, upperOpen: boolean): unknown;
}

/** Resolves when `tx` commits; rejects (with an Error, never null) when it aborts. */
function done(tx: Transaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    // A failed request aborts its transaction, and only then is `tx.error` set: wait for abort.
    tx.onabort = () => reject(tx.error ?? new Error('the device store transaction was aborted'));
  });
}

function result<T>(r: Request<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('the device store request failed'));
  });
}

export function defaultStore(location: string): KvStore {
  const g = globalThis as unknown as { indexedDB?: Idb; IDBKeyRange?: IdbKeyRange };
  let db: Database | undefined;
  let opening: Promise<Database> | undefined;
  const open = (): Database => {
    if (!db) throw new Error('the device store is not open');
    return db;
  };
  return {
    async open() {
      if (db) return;
      if (!g.indexedDB || !g.IDBKeyRange) throw new Error('this runtime has no IndexedDB');
      const idb = g.indexedDB;
      // One connection, however many callers open at once.
      opening ??= (() => {
        const req = idb.open(`level-js-${location}`, 1);
        req.onupgradeneeded = () => {
          if (!req.result.objectStoreNames.contains(location)) req.result.createObjectStore(location);
        };
        return result(req);
      })();
      try {
        db = await opening;
      } finally {
        opening = undefined;
      }
    },
    async get(key) {
      const tx = open().transaction(location, 'readonly');
      const v = await result(tx.objectStore(location).get(utf8.encode(key)));
      return v === undefined ? undefined : new Uint8Array(v);
    },
    async batch(ops: readonly KvOp[]) {
      const tx = open().transaction(location, 'readwrite', { durability: 'strict' });
      const committed = done(tx);
      const s = tx.objectStore(location);
      try {
        for (const o of ops) {
          if (o.type === 'put') s.put(o.value, utf8.encode(o.key));
          else s.delete(utf8.encode(o.key));
        }
      } catch (e) {
        // All or nothing: what was already issued must not commit on its own.
        tx.abort();
        await committed.catch(() => {});
        throw e;
      }
      await committed;
    },
    async *entries(gte, lt) {
      const range = (g.IDBKeyRange as IdbKeyRange).bound(utf8.encode(gte), utf8.encode(lt), false, true);
      const s = open().transaction(location, 'readonly').objectStore(location);
      // Keys and values from one transaction: a consistent view of the range.
      const [keys, values] = await Promise.all([result(s.getAllKeys(range)), result(s.getAll(range))]);
      for (let i = 0; i < keys.length; i++)
        yield [fromUtf8.decode(keys[i] as ArrayBuffer), new Uint8Array(values[i] as Uint8Array)];
    },
    async close() {
      db?.close();
      db = undefined;
    },
  };
}

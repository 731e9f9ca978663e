/**
 * The device's durable state: an ordered key-value store (./kv.ts: LevelDB on Node, IndexedDB
 * with strict durability in a browser, any abstract-level database the app passes), every value
 * sealed with XChaCha20-Poly1305 under the store key (the app's 32 bytes,
 * or a data key wrapped by the platform keystore: store-key.ts; AAD = the record key, so
 * records cannot be swapped).
 * Writes that must survive a crash (a reservation marked used with its package queued) go
 * through one atomic, synced batch.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { DeviceError } from './errors.js';
import { defaultStore } from './kv-default.js';
import { type KvStore, type LevelLike, isKvStore, levelStore } from './kv.js';
import { newDataKey, resolveStorageKey, unwrapDataKey, type StorageKey } from './store-key.js';

const enc = new TextEncoder();

/** The data key wrapped by the platform key (stored as is: it is already sealed by that key). */
const WRAPPED = 'wrapped-key';

export type StorageOp = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string };

export class DeviceStorage {
  readonly #db: KvStore;
  readonly #kek: Uint8Array;

  private constructor(db: KvStore, kek: Uint8Array) {
    this.#db = db;
    this.#kek = kek;
  }

  /**
   * Opens (creating if needed) the store at `location`: a directory on Node, an IndexedDB
   * database name in a browser. Instead of a name: any abstract-level database with utf8 keys and
   * Uint8Array values (React Native: an SQLite- or MMKV-backed abstract-level), opened or not, or
   * a {@link KvStore}.
   */
  static async open(location: string | LevelLike | KvStore, key: StorageKey): Promise<DeviceStorage> {
    const resolved = resolveStorageKey(key);
    const db =
      typeof location === 'string' ? defaultStore(location) : isKvStore(location) ? location : levelStore(location);
    try {
      await db.open();
    } catch (e) {
      const locked = /lock/i.test(String((e as { cause?: Error }).cause?.message ?? (e as Error).message));
      throw new DeviceError(
        locked ? 'STORE_LOCKED' : 'STORE_UNAVAILABLE',
        locked ? 'the device store is in use by another process' : 'cannot open the device store',
      );
    }
    try {
      const canary = await db.get('canary');
      let kek: Uint8Array;
      if ('raw' in resolved) kek = resolved.raw.slice();
      else {
        const wrapped = await db.get(WRAPPED);
        if (wrapped !== undefined) kek = await unwrapDataKey(resolved.provider, wrapped);
        else if (canary !== undefined)
          throw new DeviceError('STORE_KEY', 'this device store is sealed with raw key bytes, not a platform key');
        else {
          const fresh = await newDataKey(resolved.provider);
          await db.batch([{ type: 'put', key: WRAPPED, value: fresh.wrapped }]);
          kek = fresh.dataKey;
        }
      }
      const s = new DeviceStorage(db, kek);
      // A canary proves the key: a wrong key fails here, before anything is read or written.
      if (canary === undefined) await s.batch([{ type: 'put', key: 'canary', value: enc.encode('tessera-device') }]);
      else s.#open('canary', canary);
      return s;
    } catch (e) {
      await db.close().catch(() => {});
      throw e;
    }
  }

  #seal(key: string, value: Uint8Array): Uint8Array {
    const nonce = randomBytes(24);
    const ct = xchacha20poly1305(this.#kek, nonce, enc.encode(key)).encrypt(value);
    const out = new Uint8Array(24 + ct.length);
    out.set(nonce, 0);
    out.set(ct, 24);
    return out;
  }

  #open(key: string, sealed: Uint8Array): Uint8Array {
    try {
      return xchacha20poly1305(this.#kek, sealed.subarray(0, 24), enc.encode(key)).decrypt(sealed.subarray(24));
    } catch {
      throw new DeviceError(
        'STORE_KEY',
        `device record ${key.split('/')[0]} cannot be opened: wrong storage key or damaged store`,
      );
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const v = await this.#db.get(key);
    return v === undefined ? undefined : this.#open(key, v);
  }

  async getJson<T>(key: string): Promise<T | undefined> {
    const v = await this.get(key);
    return v === undefined ? undefined : (JSON.parse(new TextDecoder().decode(v)) as T);
  }

  /** One atomic write, synced to disk before it resolves. */
  async batch(ops: readonly StorageOp[]): Promise<void> {
    await this.#db.batch(
      ops.map((o) =>
        o.type === 'put'
          ? { type: 'put' as const, key: o.key, value: this.#seal(o.key, o.value) }
          : { type: 'del' as const, key: o.key },
      ),
    );
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    await this.batch([{ type: 'put', key, value }]);
  }

  static json(value: unknown): Uint8Array {
    return enc.encode(JSON.stringify(value));
  }

  /** Records under `prefix`, in key order. */
  async *entries(prefix: string): AsyncGenerator<[string, Uint8Array]> {
    for await (const [k, v] of this.#db.entries(prefix, `${prefix}\xff`)) yield [k, this.#open(k, v)];
  }

  async close(): Promise<void> {
    this.#kek.fill(0);
    await this.#db.close();
  }
}

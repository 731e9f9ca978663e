/**
 * SealedStore — the one sealing layer between Tessera and LevelDB (like a vault's barrier).
 *
 * Every application value is encrypted with XChaCha20-Poly1305 under a random 32-byte data key,
 * with a fresh random nonce and AAD = its full raw key; the data key itself is stored only
 * wrapped under the key-encryption key (KEK). Keys are stored in clear: they are identifiers
 * (key ids, epochs, nonce ids, request ids, sequence numbers) and must never contain secrets.
 */
import { Level } from 'level';
import { openEnvelope, sealEnvelope } from './aead.js';
import { fromUtf8, isWellFormed, requireBytes, utf8, wipe } from './bytes.js';
import { StoreError } from './errors.js';
import type { KeyEncryptionKey } from './kek.js';
import { DATA_PREFIX, rawKeyOf } from './layout.js';
import { levelFailure } from './level-errors.js';
import { newDataKey, openDataKey, readMeta, writeMeta } from './meta.js';
import type { BatchOp, IterateOptions, SealedKV, WriteOptions } from './types.js';

/** Options of {@link SealedStore.open}. */
export interface OpenOptions {
  /** Create the database directory if it does not exist (default `true`). */
  createIfMissing?: boolean;
}

/** Maximum UTF-8 length of an application key. */
export const MAX_KEY_BYTES = 1024;

type Db = Level<string, Uint8Array>;

/** The LevelDB-backed {@link SealedKV}. Open with {@link SealedStore.open}. */
export class SealedStore implements SealedKV {
  readonly #db: Db;
  readonly #dataKey: Uint8Array;
  readonly #syncGet: boolean;
  #closed = false;
  /**
   * The first failed write, if any. A failed append can leave a partial record in LevelDB's log,
   * and LevelDB's recovery drops everything after it in that log block: records written later
   * (say, a consumed nonce whose output was then released) would vanish at the next open. So
   * after one failed write the store takes no more writes until it is reopened (recovery then
   * starts a fresh log), as LevelDB itself does after a failed sync.
   */
  #writeFailure: StoreError | undefined;
  /** Batches with inserts run one at a time (their absence check and write together). */
  #insertLock: Promise<unknown> = Promise.resolve();
  /** The database directory (named in errors). */
  readonly dir: string;
  /** Id of the KEK that opened the store. */
  readonly kekId: string;

  private constructor(db: Db, dir: string, dataKey: Uint8Array, kekId: string) {
    this.#db = db;
    this.dir = dir;
    this.#dataKey = dataKey;
    this.#syncGet = (db.supports as { getSync?: boolean }).getSync === true;
    this.kekId = kekId;
  }

  /**
   * Open (or create) the store in `dir`. A new store gets a random data key, wrapped under `kek`
   * and written with a synced write; an existing one is unwrapped with `kek`.
   * Errors: `KEK_MISMATCH` (another KEK sealed it), `STORE_CORRUPT` (unreadable meta record, or
   * data without a meta record), `STORE_UNAVAILABLE` (locked, missing, I/O error).
   */
  static async open(dir: string, kek: KeyEncryptionKey, opts: OpenOptions = {}): Promise<SealedStore> {
    const db: Db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
    try {
      await db.open({ createIfMissing: opts.createIfMissing ?? true });
    } catch (e) {
      throw levelFailure(dir, 'open', e);
    }
    try {
      const dataKey = await loadOrCreateDataKey(db, dir, kek);
      return new SealedStore(db, dir, dataKey, kek.id);
    } catch (e) {
      await db.close().catch(() => undefined);
      throw e;
    }
  }

  /** The value at `key`, or `undefined`. `STORE_CORRUPT` if the stored bytes do not unseal. */
  async get(key: string): Promise<Uint8Array | undefined> {
    const raw = this.#raw(key);
    let sealed: Uint8Array | undefined;
    try {
      // classic-level's synchronous get: a lookup in the memtable or block cache takes a few
      // microseconds on this thread, where the async get pays a thread-pool round trip (about
      // 45 µs of CPU, bench/README) — and a signature share reads several records.
      sealed = this.#syncGet ? this.#db.getSync(raw) : await this.#db.get(raw);
    } catch (e) {
      throw levelFailure(this.dir, `get ${key}`, e);
    }
    return sealed === undefined ? undefined : this.#unseal(raw, sealed);
  }

  /** Seal and store `value` at `key`. `sync: true` waits for LevelDB's synced (fsync) write. */
  async put(key: string, value: Uint8Array, opts: WriteOptions = {}): Promise<void> {
    const raw = this.#raw(key);
    requireBytes(value, 'value');
    const sealed = sealEnvelope(this.#dataKey, value, utf8(raw));
    this.#writable(`put ${key}`);
    try {
      await this.#db.put(raw, sealed, { sync: opts.sync === true });
    } catch (e) {
      const err = levelFailure(this.dir, `put ${key}`, e);
      this.#writeFailure ??= err;
      throw err;
    }
  }

  /** Remove `key`. `sync: true` waits for a synced write. */
  async del(key: string, opts: WriteOptions = {}): Promise<void> {
    const raw = this.#raw(key);
    this.#writable(`del ${key}`);
    try {
      await this.#db.del(raw, { sync: opts.sync === true });
    } catch (e) {
      const err = levelFailure(this.dir, `del ${key}`, e);
      this.#writeFailure ??= err;
      throw err;
    }
  }

  /**
   * Apply `ops` atomically (one LevelDB write batch). Every op is validated and sealed before
   * anything is written, so an invalid op leaves the store untouched.
   */
  async batch(ops: readonly BatchOp[], opts: WriteOptions = {}): Promise<void> {
    if (!Array.isArray(ops)) throw new StoreError('INVALID_ARGUMENT', 'batch ops must be an array');
    this.#open();
    const inserts: { key: string; raw: string }[] = [];
    const raws = ops.map((op) => {
      const raw = this.#raw(op?.key);
      if (op.type === 'put' || op.type === 'insert') {
        requireBytes(op.value, `value of ${op.key}`);
        if (op.type === 'insert') inserts.push({ key: op.key, raw });
        return { type: 'put' as const, key: raw, value: sealEnvelope(this.#dataKey, op.value, utf8(raw)) };
      }
      if (op.type === 'del') return { type: 'del' as const, key: raw };
      throw new StoreError('INVALID_ARGUMENT', `batch op on ${(op as { key?: string }).key} has unknown type`);
    });
    if (raws.length === 0) return;
    this.#writable('batch');
    const write = async () => {
      // Under the insert lock (one batch with inserts at a time): absent now, so written once.
      for (const { key, raw } of inserts) {
        let present: Uint8Array | undefined;
        try {
          present = await this.#db.get(raw);
        } catch (e) {
          throw levelFailure(this.dir, `get ${key}`, e);
        }
        if (present !== undefined)
          throw new StoreError('KEY_EXISTS', `${key} exists already; nothing of the batch was written`);
      }
      try {
        await this.#db.batch(raws, { sync: opts.sync === true });
      } catch (e) {
        const err = levelFailure(this.dir, 'batch', e);
        this.#writeFailure ??= err;
        throw err;
      }
    };
    if (inserts.length === 0) return write();
    const run = this.#insertLock.then(write);
    this.#insertLock = run.catch(() => undefined);
    return run;
  }

  /** `[key, value]` pairs under `prefix` in UTF-8 byte order (a LevelDB snapshot). */
  async *iterate(prefix: string, opts: IterateOptions = {}): AsyncGenerator<[string, Uint8Array]> {
    for await (const [raw, sealed] of this.#scan(prefix, opts, true)) {
      yield [raw.slice(DATA_PREFIX.length), this.#unseal(raw, sealed as Uint8Array)];
    }
  }

  /** Keys under `prefix` in UTF-8 byte order (values are not read or unsealed). */
  async *keys(prefix: string, opts: IterateOptions = {}): AsyncGenerator<string> {
    for await (const [raw] of this.#scan(prefix, opts, false)) yield raw.slice(DATA_PREFIX.length);
  }

  /**
   * Ask LevelDB to compact the range under `prefix`, discarding overwritten and deleted versions
   * still present in its log and table files (e.g. a consumed nonce's earlier sealed secret).
   */
  async compact(prefix: string): Promise<void> {
    this.#open();
    const { gte, lt } = rangeOf(prefix);
    const db = this.#db as unknown as {
      compactRange?: (s: Uint8Array, e: Uint8Array, o: { keyEncoding: string }) => Promise<void>;
    };
    if (typeof db.compactRange !== 'function') return;
    try {
      await db.compactRange(gte, lt, { keyEncoding: 'view' });
    } catch (e) {
      throw levelFailure(this.dir, 'compact', e);
    }
  }

  /** Close the database and wipe the in-memory data key. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#db.close();
    } catch (e) {
      throw levelFailure(this.dir, 'close', e);
    } finally {
      wipe(this.#dataKey);
    }
  }

  async *#scan(
    prefix: string,
    opts: IterateOptions,
    values: boolean,
  ): AsyncGenerator<[string, Uint8Array | undefined]> {
    if (typeof prefix !== 'string' || !isWellFormed(prefix)) {
      throw new StoreError('INVALID_ARGUMENT', 'prefix must be a well-formed string');
    }
    this.#open();
    const { gte, lt } = rangeOf(prefix);
    const limit = opts.limit ?? -1;
    const it = this.#db.iterator<Uint8Array, Uint8Array>({
      keyEncoding: 'view',
      valueEncoding: 'view',
      gte,
      lt,
      reverse: opts.reverse === true,
      limit,
      values,
    });
    try {
      while (true) {
        let entry: [Uint8Array, Uint8Array] | undefined;
        try {
          entry = await it.next();
        } catch (e) {
          throw levelFailure(this.dir, `iterate ${prefix}`, e);
        }
        if (entry === undefined) return;
        this.#open();
        yield [fromUtf8(entry[0]), values ? entry[1] : undefined];
      }
    } finally {
      await it.close().catch(() => undefined);
    }
  }

  #raw(key: unknown): string {
    this.#open();
    if (typeof key !== 'string' || key.length === 0 || !isWellFormed(key)) {
      throw new StoreError('INVALID_ARGUMENT', 'store key must be a non-empty well-formed string');
    }
    if (utf8(key).length > MAX_KEY_BYTES) {
      throw new StoreError('INVALID_ARGUMENT', `store key is longer than ${MAX_KEY_BYTES} bytes`);
    }
    return rawKeyOf(key);
  }

  #unseal(raw: string, sealed: Uint8Array): Uint8Array {
    const plain = openEnvelope(this.#dataKey, sealed, utf8(raw));
    if (plain === undefined) {
      throw new StoreError('STORE_CORRUPT', `value at ${raw.slice(DATA_PREFIX.length)} in ${this.dir} does not unseal`);
    }
    return plain;
  }

  /** Refuses a write after an earlier one failed (see #writeFailure). */
  #writable(what: string): void {
    const f = this.#writeFailure;
    if (f)
      throw new StoreError(
        'STORE_UNAVAILABLE',
        `${what} refused: an earlier write failed (${f.message}); reopen the store (restart the node) to write again`,
        { cause: f },
      );
  }

  #open(): void {
    if (this.#closed) throw new StoreError('STORE_UNAVAILABLE', `store ${this.dir} is closed`);
  }
}

async function loadOrCreateDataKey(db: Db, dir: string, kek: KeyEncryptionKey): Promise<Uint8Array> {
  const meta = await readMeta(db, dir);
  if (meta === undefined) {
    for await (const _ of db.keys({ limit: 1 })) {
      throw new StoreError('STORE_CORRUPT', `store ${dir} holds data but no data-key record`);
    }
    const { dataKey, meta: fresh } = await newDataKey(kek);
    await writeMeta(db, dir, fresh);
    return dataKey;
  }
  return openDataKey(meta, kek, dir);
}

/** Raw byte range [gte, lt) covering every application key that starts with `prefix`. */
function rangeOf(prefix: string): { gte: Uint8Array; lt: Uint8Array } {
  const gte = utf8(DATA_PREFIX + prefix);
  const lt = new Uint8Array(gte);
  // UTF-8 never contains 0xff, so incrementing the last byte gives the tight upper bound.
  lt[lt.length - 1] = (lt[lt.length - 1] ?? 0) + 1;
  return { gte, lt };
}

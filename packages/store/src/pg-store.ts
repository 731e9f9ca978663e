/**
 * PgSealedStore — the {@link SealedKV} on PostgreSQL, for a coordinator that must survive the loss
 * of its host: several coordinator replicas share one database and one of them leads.
 *
 * Same sealing as {@link SealedStore}: values sealed under a random data key (XChaCha20-Poly1305,
 * AAD = the raw key), the data key wrapped under the KEK in the meta record. Keys are `bytea`
 * (ordered by their UTF-8 bytes, as LevelDB orders them); one table, `tessera_kv`.
 *
 * Leadership and fencing: the store holds ONE connection, and with `lease` it first takes a
 * session-level advisory lock on it (pg_try_advisory_lock, polled). Every read and write goes
 * through that same connection, so nothing is written by a replica that does not hold the lock:
 * if its connection dies the lock is released by PostgreSQL, the store refuses everything from
 * then on (`onLost` tells the daemon, which exits), and a standby takes the lock. Every commit is
 * durable (synchronous_commit), so `sync` needs no extra work.
 *
 * Schema migrations are versioned here (MIGRATIONS) and applied at open, under a transaction-level
 * advisory lock so that replicas starting together apply each one once.
 */
import pg from 'pg';
import { openEnvelope, sealEnvelope } from './aead.js';
import { isWellFormed, requireBytes, utf8, wipe } from './bytes.js';
import { StoreError } from './errors.js';
import type { KeyEncryptionKey } from './kek.js';
import { DATA_PREFIX, META_KEY, rawKeyOf } from './layout.js';
import { decodeMeta, encodeMeta, newDataKey, openDataKey } from './meta.js';
import { MAX_KEY_BYTES } from './sealed.js';
import type { BatchOp, IterateOptions, SealedKV } from './types.js';

/** Versioned schema changes, applied in order at open; never edit one that has shipped. */
export const MIGRATIONS: readonly { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `CREATE TABLE tessera_kv (k bytea PRIMARY KEY, v bytea NOT NULL);`,
  },
];

export interface PgOpenOptions {
  /** Take this leadership lease before anything else (a coordinator replica); omit for a plain store. */
  lease?: {
    name: string;
    /** How often a standby asks for the lock (default 1000 ms). */
    pollMs?: number;
    /** Called once while waiting (this replica is a standby). */
    onStandby?(): void;
  };
  /** The connection (and with it the lease) was lost: the daemon must stop acting. */
  onLost?(error: Error): void;
}

/** A one-line error for a PostgreSQL failure (never the connection string or its password). */
function pgFailure(what: string, e: unknown): StoreError {
  const err = e as { code?: string; message?: string };
  const code = typeof err.code === 'string' ? ` [${err.code}]` : '';
  return new StoreError(
    'STORE_UNAVAILABLE',
    `PostgreSQL: ${what} failed: ${(err.message ?? 'error').split('\n')[0]}${code}`,
  );
}

/** 64-bit advisory lock key of a lease name. */
const LEASE_SQL = `SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok`;

export class PgSealedStore implements SealedKV {
  readonly #client: pg.Client;
  readonly #dataKey: Uint8Array;
  #failed: StoreError | undefined;
  #closed = false;
  /**
   * One operation at a time on the connection: a batch is BEGIN … COMMIT over several queries,
   * and anything sent in between would run inside its transaction (and be committed or rolled
   * back with it).
   */
  #queue: Promise<unknown> = Promise.resolve();
  /** Where the store is (host/database, never the password), for messages. */
  readonly dir: string;
  readonly kekId: string;

  private constructor(client: pg.Client, where: string, dataKey: Uint8Array, kekId: string) {
    this.#client = client;
    this.dir = where;
    this.#dataKey = dataKey;
    this.kekId = kekId;
  }

  /**
   * Connects, applies migrations, takes the lease (if asked; waits while another replica holds
   * it), then unwraps (or creates) the data key with `kek`.
   */
  static async open(url: string, kek: KeyEncryptionKey, opts: PgOpenOptions = {}): Promise<PgSealedStore> {
    const client = new pg.Client({ connectionString: url, keepAlive: true });
    const where = describe(url);
    let store: PgSealedStore | undefined;
    client.on('error', (e) => {
      const err = pgFailure('connection', e);
      if (store) {
        store.#failed ??= err;
        opts.onLost?.(err);
      }
    });
    try {
      await client.connect();
    } catch (e) {
      throw pgFailure(`connect to ${where}`, e);
    }
    try {
      await migrate(client);
      if (opts.lease) {
        // The server drops this session (and so the lock) within ~25 s if the leader's host
        // vanishes without closing the connection, instead of the OS default of hours.
        await client.query(
          'SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3',
        );
        await takeLease(client, opts.lease);
      }
      const dataKey = await loadOrCreateDataKey(client, where, kek);
      store = new PgSealedStore(client, where, dataKey, kek.id);
      client.once('end', () => {
        if (store && !store.#closed) {
          const err = new StoreError('STORE_UNAVAILABLE', `PostgreSQL: the connection to ${where} ended`);
          store.#failed ??= err;
          opts.onLost?.(err);
        }
      });
      return store;
    } catch (e) {
      await client.end().catch(() => undefined);
      throw e instanceof StoreError ? e : pgFailure('open', e);
    }
  }

  /** Runs `fn` when every operation before it has finished. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const raw = this.#raw(key);
    const r = await this.#serial(() =>
      this.#query<{ v: Buffer }>(`get ${key}`, 'SELECT v FROM tessera_kv WHERE k = $1', [Buffer.from(utf8(raw))]),
    );
    const row = r.rows[0];
    return row ? this.#unseal(raw, row.v) : undefined;
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    await this.batch([{ type: 'put', key, value }]);
  }

  async del(key: string): Promise<void> {
    await this.batch([{ type: 'del', key }]);
  }

  /** All of `ops` in one transaction. Validated and sealed before anything is sent. */
  async batch(ops: readonly BatchOp[]): Promise<void> {
    if (!Array.isArray(ops)) throw new StoreError('INVALID_ARGUMENT', 'batch ops must be an array');
    this.#usable();
    const prepared = ops.map((op) => {
      const raw = this.#raw(op?.key);
      const k = Buffer.from(utf8(raw));
      if (op.type === 'put' || op.type === 'insert') {
        requireBytes(op.value, `value of ${op.key}`);
        return {
          k,
          v: Buffer.from(sealEnvelope(this.#dataKey, op.value, utf8(raw))),
          insert: op.type === 'insert',
          key: op.key,
        };
      }
      if (op.type === 'del') return { k, v: undefined, insert: false, key: op.key };
      throw new StoreError('INVALID_ARGUMENT', `batch op on ${(op as { key?: string }).key} has unknown type`);
    });
    if (prepared.length === 0) return;
    await this.#serial(async () => {
      await this.#query('batch', 'BEGIN');
      try {
        for (const { k, v, insert, key } of prepared) {
          if (v && insert) {
            // The primary key decides: the first insert commits; any later one inserts no row.
            const r = await this.#query(
              'batch insert',
              'INSERT INTO tessera_kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING',
              [k, v],
            );
            if (r.rowCount === 0)
              throw new StoreError('KEY_EXISTS', `${key} exists already; nothing of the batch was written`);
          } else if (v)
            await this.#query(
              'batch put',
              'INSERT INTO tessera_kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v',
              [k, v],
            );
          else await this.#query('batch del', 'DELETE FROM tessera_kv WHERE k = $1', [k]);
        }
        await this.#query('batch commit', 'COMMIT');
      } catch (e) {
        await this.#client.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    });
  }

  async *iterate(prefix: string, opts: IterateOptions = {}): AsyncGenerator<[string, Uint8Array]> {
    for (const { k, v } of await this.#scan(prefix, opts, true)) {
      const raw = k.toString('utf8');
      yield [raw.slice(DATA_PREFIX.length), this.#unseal(raw, v as Buffer)];
    }
  }

  async *keys(prefix: string, opts: IterateOptions = {}): AsyncGenerator<string> {
    for (const { k } of await this.#scan(prefix, opts, false)) yield k.toString('utf8').slice(DATA_PREFIX.length);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    wipe(this.#dataKey);
    await this.#client.end().catch(() => undefined);
  }

  /** One statement = one snapshot: the whole range is read at once (bounded by `limit`). */
  async #scan(prefix: string, opts: IterateOptions, values: boolean): Promise<{ k: Buffer; v?: Buffer }[]> {
    if (typeof prefix !== 'string' || !isWellFormed(prefix))
      throw new StoreError('INVALID_ARGUMENT', 'prefix must be a well-formed string');
    const gte = Buffer.from(utf8(DATA_PREFIX + prefix));
    const lt = Buffer.from(gte);
    lt[lt.length - 1] = (lt[lt.length - 1] ?? 0) + 1;
    const order = opts.reverse ? 'DESC' : 'ASC';
    const limit = opts.limit !== undefined && opts.limit >= 0 ? ` LIMIT ${Math.floor(opts.limit)}` : '';
    const r = await this.#serial(() =>
      this.#query<{ k: Buffer; v?: Buffer }>(
        `iterate ${prefix}`,
        `SELECT k${values ? ', v' : ''} FROM tessera_kv WHERE k >= $1 AND k < $2 ORDER BY k ${order}${limit}`,
        [gte, lt],
      ),
    );
    return r.rows;
  }

  async #query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    what: string,
    sql: string,
    params: unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    this.#usable();
    try {
      return await this.#client.query<R>(sql, params);
    } catch (e) {
      const err = pgFailure(what, e);
      // A broken connection also means a lost lease: nothing more from this store.
      if ((e as { code?: string }).code === undefined) this.#failed ??= err;
      throw err;
    }
  }

  #usable(): void {
    if (this.#closed) throw new StoreError('STORE_UNAVAILABLE', `store ${this.dir} is closed`);
    if (this.#failed)
      throw new StoreError(
        'STORE_UNAVAILABLE',
        `store ${this.dir} lost its connection (${this.#failed.message}); restart to reconnect`,
      );
  }

  #raw(key: unknown): string {
    this.#usable();
    if (typeof key !== 'string' || key.length === 0 || !isWellFormed(key))
      throw new StoreError('INVALID_ARGUMENT', 'store key must be a non-empty well-formed string');
    if (utf8(key).length > MAX_KEY_BYTES)
      throw new StoreError('INVALID_ARGUMENT', `store key is longer than ${MAX_KEY_BYTES} bytes`);
    return rawKeyOf(key);
  }

  #unseal(raw: string, sealed: Uint8Array): Uint8Array {
    const plain = openEnvelope(this.#dataKey, new Uint8Array(sealed), utf8(raw));
    if (plain === undefined)
      throw new StoreError('STORE_CORRUPT', `value at ${raw.slice(DATA_PREFIX.length)} in ${this.dir} does not unseal`);
    return plain;
  }
}

/** host:port/database of a connection string, for messages (never user or password). */
function describe(url: string): string {
  try {
    const u = new URL(url);
    return `postgresql://${u.host}${u.pathname}`;
  } catch {
    return 'PostgreSQL';
  }
}

async function migrate(client: pg.Client): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('tessera/migrations', 0))`);
    await client.query(
      'CREATE TABLE IF NOT EXISTS tessera_schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set(
      (await client.query<{ version: number }>('SELECT version FROM tessera_schema_migrations')).rows.map(
        (r) => r.version,
      ),
    );
    const newest = Math.max(0, ...done);
    const known = Math.max(...MIGRATIONS.map((m) => m.version));
    if (newest > known)
      throw new StoreError(
        'STORE_UNAVAILABLE',
        `PostgreSQL schema is at version ${newest}, newer than this release knows (${known}): upgrade Tessera`,
      );
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO tessera_schema_migrations (version) VALUES ($1)', [m.version]);
    }
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e instanceof StoreError ? e : pgFailure('migrate', e);
  }
}

async function takeLease(client: pg.Client, lease: NonNullable<PgOpenOptions['lease']>): Promise<void> {
  let told = false;
  for (;;) {
    const r = await client.query<{ ok: boolean }>(LEASE_SQL, [lease.name]);
    if (r.rows[0]?.ok) return;
    if (!told) {
      told = true;
      lease.onStandby?.();
    }
    await new Promise((res) => setTimeout(res, lease.pollMs ?? 1000));
  }
}

async function loadOrCreateDataKey(client: pg.Client, where: string, kek: KeyEncryptionKey): Promise<Uint8Array> {
  const metaKey = Buffer.from(utf8(META_KEY));
  const read = async () =>
    (await client.query<{ v: Buffer }>('SELECT v FROM tessera_kv WHERE k = $1', [metaKey])).rows[0]?.v;
  let raw = await read();
  if (raw === undefined) {
    // Data without a data-key record is damage, unless another replica created the record (and
    // wrote) since the read above: look again before saying so.
    const any = await client.query('SELECT 1 FROM tessera_kv WHERE k <> $1 LIMIT 1', [metaKey]);
    if (any.rowCount) {
      raw = await read();
      if (raw === undefined) throw new StoreError('STORE_CORRUPT', `store ${where} holds data but no data-key record`);
    }
  }
  if (raw === undefined) {
    const { dataKey, meta } = await newDataKey(kek);
    wipe(dataKey);
    // Two replicas creating at once: the first record wins, both then read it.
    await client.query('INSERT INTO tessera_kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING', [
      metaKey,
      Buffer.from(encodeMeta(meta)),
    ]);
    raw = await read();
  }
  return openDataKey(decodeMeta(new Uint8Array(raw as Buffer), where), kek, where);
}

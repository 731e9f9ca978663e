/**
 * The conformance suite against PgSealedStore on a real PostgreSQL, plus what only it does:
 * versioned migrations applied once, the leadership lease with fencing (a standby waits; when
 * the leader's connection dies the lock passes and the old store refuses everything), and a
 * second replica reading what the first wrote under the same KEK.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgSealedStore, type SealedKV } from '../src/index.js';
import { runStoreConformance } from './conformance.js';
import { randomKek } from './helpers.js';
import { startPostgres, type TestPostgres } from './postgres.js';

let server: TestPostgres;
beforeAll(async () => {
  server = await startPostgres();
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

const opened = new WeakMap<SealedKV, { url: string; kek: ReturnType<typeof randomKek> }>();
runStoreConformance(
  'PostgreSQL',
  async () => {
    const url = await server.database();
    const kek = randomKek();
    const store = await PgSealedStore.open(url, kek);
    opened.set(store, { url, kek });
    return store;
  },
  {
    reopen: async (store) => {
      const at = opened.get(store)!;
      await store.close();
      const again = await PgSealedStore.open(at.url, at.kek);
      opened.set(again, at);
      return again;
    },
  },
);

describe('PgSealedStore beyond the conformance suite', () => {
  it('applies each migration once, also when replicas open together', async () => {
    const url = await server.database();
    const kek = randomKek();
    const stores = await Promise.all([1, 2, 3].map(() => PgSealedStore.open(url, kek)));
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const r = await c.query('SELECT version FROM tessera_schema_migrations ORDER BY version');
    expect(r.rows.map((x) => x.version)).toEqual([1]);
    // The three share one data key (the first record won): each reads what another wrote.
    await stores[0]!.put('a', new Uint8Array([1, 2, 3]));
    expect(await stores[2]!.get('a')).toEqual(new Uint8Array([1, 2, 3]));
    // Values are sealed: the table holds no plaintext.
    const raw = await c.query("SELECT v FROM tessera_kv WHERE k = convert_to('d/a', 'UTF8')");
    expect(Buffer.from(raw.rows[0].v).includes(Buffer.from([1, 2, 3]))).toBe(false);
    await c.end();
    for (const s of stores) await s.close();
    await expect(PgSealedStore.open(url, randomKek())).rejects.toMatchObject({ code: 'KEK_MISMATCH' });
  });

  it('replicas opening a new database together agree on one data key (10 rounds of 4); data without a key record is damage', async () => {
    for (let round = 0; round < 10; round++) {
      const url = await server.database();
      const kek = randomKek();
      const stores = await Promise.all([1, 2, 3, 4].map(() => PgSealedStore.open(url, kek)));
      await stores[round % 4]!.put('k', new Uint8Array([round]));
      for (const st of stores) expect(await st.get('k')).toEqual(new Uint8Array([round]));
      for (const st of stores) await st.close();
    }
    const url = await server.database();
    const kek = randomKek();
    const st = await PgSealedStore.open(url, kek);
    await st.put('k', new Uint8Array([1]));
    await st.close();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query("DELETE FROM tessera_kv WHERE k = convert_to('m/data-key', 'UTF8')");
    await c.end();
    await expect(PgSealedStore.open(url, kek)).rejects.toMatchObject({ code: 'STORE_CORRUPT' });
  }, 60_000);

  it('the lease: a standby waits while the leader holds it; the leader loses its connection, the standby leads and the old store refuses', async () => {
    const url = await server.database();
    const kek = randomKek();
    const lost: Error[] = [];
    const leader = await PgSealedStore.open(url, kek, { lease: { name: 'coordinator' }, onLost: (e) => lost.push(e) });
    await leader.put('x', new Uint8Array([1]));
    let standby = false;
    const second = PgSealedStore.open(url, kek, {
      lease: { name: 'coordinator', pollMs: 100, onStandby: () => (standby = true) },
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(standby).toBe(true);
    // Cut the leader's connection from the server side (as if its host vanished).
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(
      "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()",
    );
    await admin.end();
    const next = await second;
    expect(await next.get('x')).toEqual(new Uint8Array([1]));
    for (let i = 0; i < 50 && lost.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(lost.length).toBeGreaterThan(0);
    await expect(leader.put('x', new Uint8Array([2]))).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(await next.get('x')).toEqual(new Uint8Array([1]));
    await next.close();
    await leader.close();
  }, 30_000);

  it('an unreachable server is one line without the password', async () => {
    const err = await PgSealedStore.open('postgresql://tessera:s3cret@127.0.0.1:1/nowhere', randomKek()).catch(
      (e) => e,
    );
    expect(err.code).toBe('STORE_UNAVAILABLE');
    expect(err.message).toMatch(/^PostgreSQL: connect to postgresql:\/\/127\.0\.0\.1:1\/nowhere failed: /);
    expect(err.message).not.toContain('s3cret');
    expect(err.message).not.toContain('\n');
  });
});

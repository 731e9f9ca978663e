/** Fuzzing the unsealing and decoding paths: garbage must give STORE_CORRUPT, never a crash. */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AuditLog,
  IdempotencyCache,
  META_KEY,
  NonceLedger,
  SealedStore,
  ShareVault,
  StoreError,
  rawKeyOf,
} from '../src/index.js';
import { cleanupDirs, rand, randomKek, tempDir, withRawDb } from './helpers.js';

afterAll(cleanupDirs);

async function expectCorrupt(p: Promise<unknown>, key: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `reading ${key}`).toBeInstanceOf(StoreError);
  expect((err as StoreError).code).toBe('STORE_CORRUPT');
}

describe('fuzz: garbage beneath the sealing layer', () => {
  it('random raw values give STORE_CORRUPT through every API', async () => {
    const dir = tempDir('fuzz');
    const kek = randomKek();
    await (await SealedStore.open(dir, kek)).close();
    const samples = fc.sample(fc.uint8Array({ maxLength: 300 }), { numRuns: 300, seed: 1234 });
    samples.push(
      new Uint8Array(0),
      Uint8Array.of(1),
      new Uint8Array(41).fill(1),
      Uint8Array.of(1, ...rand(24 + 16)),
      Uint8Array.of(1, ...rand(500)),
    );
    const prefixes = ['x/', 'vault/k/', 'nonce/', 'idem/', 'audit/e/'];
    const keys = samples.map((_, i) => {
      const p = prefixes[i % prefixes.length]!;
      return p === 'vault/k/'
        ? `${p}${String(i).padStart(16, '0')}`
        : p === 'audit/e/'
          ? `${p}${String(i + 1).padStart(16, '0')}`
          : `${p}${i}`;
    });
    await withRawDb(dir, async (db) => {
      await db.batch(samples.map((v, i) => ({ type: 'put' as const, key: rawKeyOf(keys[i]!), value: v })));
    });
    const store = await SealedStore.open(dir, kek);
    try {
      for (const key of keys) await expectCorrupt(store.get(key), key);
      for (const p of prefixes) {
        await expectCorrupt(
          (async () => {
            for await (const _ of store.iterate(p)) {
              /* drain */
            }
          })(),
          p,
        );
      }
      const ledger = new NonceLedger(store);
      const idem = new IdempotencyCache(store);
      for (const [i, key] of keys.entries()) {
        if (key.startsWith('nonce/')) {
          const id = key.slice('nonce/'.length);
          await expectCorrupt(ledger.status(id), key);
          await expectCorrupt(
            ledger.consume(id, rand(32), () => rand(8)),
            key,
          );
          await expectCorrupt(ledger.addFresh(id, rand(32)), key);
        } else if (key.startsWith('idem/')) {
          await expectCorrupt(idem.get(key.slice('idem/'.length), 0), key);
        } else if (key.startsWith('vault/')) {
          await expectCorrupt(new ShareVault(store).getShare('k', i), key);
        }
      }
      await expectCorrupt(ledger.countFresh(), 'nonce/*');
      await expectCorrupt(idem.sweep(0), 'idem/*');
      const verdict = await new AuditLog(store).verify();
      expect(verdict).toMatchObject({ ok: false, problem: { reason: 'corrupt' } });
    } finally {
      await store.close();
    }
  });

  it('every single-bit flip of a sealed value gives STORE_CORRUPT', async () => {
    const dir = tempDir('flip');
    const kek = randomKek();
    let store = await SealedStore.open(dir, kek);
    await store.put('k', rand(40));
    await store.close();
    const sealed = await withRawDb(dir, async (db) => new Uint8Array((await db.get(rawKeyOf('k')))!));
    expect(sealed.length).toBe(1 + 24 + 40 + 16);
    await withRawDb(dir, async (db) => {
      const ops = [];
      for (let bit = 0; bit < sealed.length * 8; bit++) {
        const v = new Uint8Array(sealed);
        v[bit >> 3]! ^= 1 << (bit & 7);
        ops.push({ type: 'put' as const, key: rawKeyOf(`flip/${bit}`), value: v });
      }
      for (let n = 0; n < sealed.length; n++)
        ops.push({ type: 'put' as const, key: rawKeyOf(`cut/${n}`), value: sealed.slice(0, n) });
      await db.batch(ops);
    });
    store = await SealedStore.open(dir, kek);
    try {
      for (let bit = 0; bit < sealed.length * 8; bit++) await expectCorrupt(store.get(`flip/${bit}`), `flip/${bit}`);
      for (let n = 0; n < sealed.length; n++) await expectCorrupt(store.get(`cut/${n}`), `cut/${n}`);
    } finally {
      await store.close();
    }
  });

  it('well-sealed but malformed records give STORE_CORRUPT (property)', async () => {
    const store = await SealedStore.open(tempDir('records'), randomKek());
    const ledger = new NonceLedger(store);
    const idem = new IdempotencyCache(store);
    const log = new AuditLog(store);
    try {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 120 }), async (bytes) => {
          await store.put('nonce/n', bytes);
          await store.put('idem/r', bytes);
          await store.put('audit/head', bytes);
          for (const attempt of [() => ledger.status('n'), () => idem.get('r', 0), () => log.head()]) {
            const r = await attempt().then(
              () => undefined,
              (e: unknown) => e,
            );
            if (r !== undefined) expect((r as StoreError).code).toBe('STORE_CORRUPT');
          }
        }),
        { numRuns: 300 },
      );
    } finally {
      await store.close();
    }
  });

  it('a garbage meta record gives STORE_CORRUPT on open', async () => {
    const kek = randomKek();
    const hexish = fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b).toString('hex'));
    const samples = fc.sample(
      fc.oneof(
        fc.uint8Array({ maxLength: 200 }),
        fc.json().map((j) => new TextEncoder().encode(j)),
        fc
          .record({
            v: fc.constant(1),
            alg: fc.constant('xchacha20poly1305'),
            kek: fc.string(),
            wrapped: hexish,
            check: hexish,
          })
          .map((o) => new TextEncoder().encode(JSON.stringify(o))),
      ),
      { numRuns: 40, seed: 99 },
    );
    const dir = tempDir('meta-fuzz');
    await (await SealedStore.open(dir, kek)).close();
    for (const value of samples) {
      await withRawDb(dir, (db) => db.put(META_KEY, value));
      const err = await SealedStore.open(dir, kek).then(
        async (s) => {
          await s.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StoreError);
      expect(['STORE_CORRUPT', 'KEK_MISMATCH']).toContain((err as StoreError).code);
    }
  });
});

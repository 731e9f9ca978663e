/** Sealing at rest: nothing secret reaches the LevelDB files; KEK handling; AAD binding. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isTesseraError } from '@tessera/core';
import {
  AuditLog,
  DATA_PREFIX,
  IdempotencyCache,
  type KeyEncryptionKey,
  META_KEY,
  NonceLedger,
  SealedStore,
  ShareVault,
  StoreError,
  generateKekHex,
  kekFromBytes,
  loadKek,
  rawKeyOf,
} from '../src/index.js';
import {
  cleanupDirs,
  filesContaining,
  hex,
  rand,
  randomKek,
  rawFiles,
  rejectsWithCode,
  tempDir,
  withRawDb,
} from './helpers.js';

afterAll(cleanupDirs);

/** A KEK that remembers every data key it wraps or unwraps (to search the files for it). */
function capturingKek(inner: KeyEncryptionKey, seen: Uint8Array[]): KeyEncryptionKey {
  return {
    id: inner.id,
    wrap: async (plain, aad) => {
      seen.push(new Uint8Array(plain));
      return inner.wrap(plain, aad);
    },
    unwrap: async (wrapped, aad) => {
      const plain = await inner.unwrap(wrapped, aad);
      seen.push(new Uint8Array(plain));
      return plain;
    },
  };
}

function expectAbsent(dir: string, secrets: Uint8Array[]): void {
  const files = rawFiles(dir);
  expect(files.length).toBeGreaterThan(0);
  for (const s of secrets) {
    for (const needle of [
      Buffer.from(s),
      Buffer.from(hex(s)),
      Buffer.from(hex(s).toUpperCase()),
      Buffer.from(Buffer.from(s).toString('base64')),
    ]) {
      const hits = files.filter((f) => f.bytes.includes(needle)).map((f) => f.name);
      expect(hits, 'secret bytes found in raw LevelDB files').toEqual([]);
    }
  }
}

describe('sealing at rest', () => {
  it('no share, nonce secret, data key, KEK or sealed payload appears in any raw file', async () => {
    const dir = tempDir('seal');
    const kekBytes = rand(32);
    const dataKeys: Uint8Array[] = [];
    const kek = capturingKek(kekFromBytes(kekBytes), dataKeys);
    const secrets: Uint8Array[] = [kekBytes];
    const shares: Uint8Array[] = [];
    let store = await SealedStore.open(dir, kek);
    const vault = new ShareVault(store);
    const ledger = new NonceLedger(store);
    for (let i = 0; i < 20; i++) {
      const share = rand(32);
      secrets.push(share);
      shares.push(share);
      await vault.putShare(`key${i}`, i, share);
      const nonce = rand(32);
      secrets.push(nonce);
      await ledger.addFresh(`key${i}/n${i}`, nonce);
      if (i % 2 === 0) {
        const output = rand(32);
        secrets.push(output);
        await ledger.consume(`key${i}/n${i}`, rand(32), () => output);
      }
    }
    const response = rand(32);
    secrets.push(response);
    await new IdempotencyCache(store).put('req-1', response, 60_000, Date.now());
    const marker = rand(16);
    secrets.push(marker);
    await new AuditLog(store).append({ type: 'admin', data: { marker: hex(marker) } });
    await store.close();
    expect(dataKeys).toHaveLength(1);

    expectAbsent(dir, [...secrets, ...dataKeys]);
    // Positive control: key names are stored in clear, so the scan does see the files' content.
    expect(filesContaining(dir, 'vault/key7/').length).toBeGreaterThan(0);

    // Reopening converts the write-ahead log into a (compressed) table: scan again.
    store = await SealedStore.open(dir, kek);
    expect(await new ShareVault(store).getShare('key3', 3)).toEqual(shares[3]);
    await store.close();
    expect(dataKeys).toHaveLength(2);
    expect(dataKeys[1]).toEqual(dataKeys[0]);
    expectAbsent(dir, [...secrets, ...dataKeys]);

    // Scanner self-check: bytes written beneath the sealing layer are found.
    const plain = rand(32);
    await withRawDb(dir, (db) => db.put('x/unsealed', plain));
    expect(filesContaining(dir, plain).length).toBeGreaterThan(0);
  });

  it('a value copied to another key does not unseal (AAD = full key)', async () => {
    const dir = tempDir('aad');
    const kek = randomKek();
    let store = await SealedStore.open(dir, kek);
    await store.put('vault/a/1', rand(32));
    await store.put('vault/b/1', rand(32));
    await store.close();
    await withRawDb(dir, async (db) => {
      const sealed = await db.get(rawKeyOf('vault/a/1'));
      await db.put(rawKeyOf('vault/b/1'), sealed!);
      await db.put(rawKeyOf('vault/c/1'), sealed!);
    });
    store = await SealedStore.open(dir, kek);
    try {
      expect(await store.get('vault/a/1')).toHaveLength(32);
      const err = await rejectsWithCode(store.get('vault/b/1'), 'STORE_CORRUPT');
      expect(err.message).toContain('vault/b/1');
      expect(err.message).toContain(dir);
      await rejectsWithCode(store.get('vault/c/1'), 'STORE_CORRUPT');
      await rejectsWithCode(
        (async () => {
          for await (const _ of store.iterate('vault/')) {
            /* drain */
          }
        })(),
        'STORE_CORRUPT',
      );
    } finally {
      await store.close();
    }
  });

  it('two stores under the same KEK have different data keys (values do not transplant)', async () => {
    const kek = randomKek();
    const a = tempDir('a'),
      b = tempDir('b');
    let sa = await SealedStore.open(a, kek);
    let sb = await SealedStore.open(b, kek);
    await sa.put('k', rand(8));
    await sb.put('k', rand(8));
    await sa.close();
    await sb.close();
    const fromA = await withRawDb(a, (db) => db.get(rawKeyOf('k')));
    await withRawDb(b, (db) => db.put(rawKeyOf('k'), fromA!));
    sb = await SealedStore.open(b, kek);
    await rejectsWithCode(sb.get('k'), 'STORE_CORRUPT');
    await sb.close();
    sa = await SealedStore.open(a, kek);
    await sa.close();
  });
});

describe('key-encryption key', () => {
  it('a wrong KEK on reopen gives KEK_MISMATCH naming the directory', async () => {
    const dir = tempDir('mismatch');
    const right = randomKek();
    const store = await SealedStore.open(dir, right);
    await store.put('k', rand(32));
    await store.close();
    const wrong = randomKek();
    const err = await rejectsWithCode(SealedStore.open(dir, wrong), 'KEK_MISMATCH');
    expect(err.message).toContain(`does not open ${dir}`);
    expect(err.message).toContain(right.id);
    expect(err).toBeInstanceOf(StoreError);
    expect(isTesseraError(err)).toBe(true);
    expect(JSON.parse(JSON.stringify(err))).toEqual({
      name: 'StoreError',
      code: 'KEK_MISMATCH',
      message: err.message,
      culprits: [],
    });
    // The failed open released the lock: the right KEK still opens it.
    const again = await SealedStore.open(dir, right);
    expect(await again.get('k')).toHaveLength(32);
    await again.close();
  });

  it('the KEK id is informative only; the key decides', async () => {
    const dir = tempDir('kekid');
    const bytes = rand(32);
    await (await SealedStore.open(dir, kekFromBytes(bytes, 'kms:one'))).close();
    const s = await SealedStore.open(dir, kekFromBytes(bytes));
    expect(s.kekId).toMatch(/^local:[0-9a-f]{16}$/);
    await s.close();
  });

  it('accepts an asynchronous (KMS-style) KEK', async () => {
    const dir = tempDir('kms');
    const local = randomKek();
    const kms: KeyEncryptionKey = {
      id: 'kms:test',
      wrap: async (p, aad) => {
        await new Promise((r) => setTimeout(r, 1));
        return local.wrap(p, aad);
      },
      unwrap: async (w, aad) => {
        await new Promise((r) => setTimeout(r, 1));
        return local.unwrap(w, aad);
      },
    };
    let s = await SealedStore.open(dir, kms);
    await s.put('k', Uint8Array.of(1, 2, 3));
    await s.close();
    s = await SealedStore.open(dir, local);
    expect(await s.get('k')).toEqual(Uint8Array.of(1, 2, 3));
    await s.close();
    const broken: KeyEncryptionKey = { id: 'kms:broken', wrap: () => rand(57), unwrap: () => rand(32) };
    await rejectsWithCode(SealedStore.open(dir, broken), 'KEK_MISMATCH');
  });

  it('loadKek reads a file, an env var or hex, and reports typed one-line errors', async () => {
    const dir = tempDir('kekfile');
    const kekHex = generateKekHex();
    expect(kekHex).toMatch(/^[0-9a-f]{64}$/);
    const file = join(dir, 'kek');
    writeFileSync(file, `  ${kekHex.toUpperCase()}\n`);
    const fromFile = loadKek({ file });
    const fromEnv = loadKek({ env: 'TESSERA_TEST_KEK' }, { TESSERA_TEST_KEK: kekHex });
    const fromHex = loadKek({ hex: kekHex });
    expect(fromFile.id).toBe(fromEnv.id);
    expect(fromHex.id).toBe(fromEnv.id);
    const db = join(dir, 'db');
    await (await SealedStore.open(db, fromFile)).close();
    await (await SealedStore.open(db, fromEnv)).close();

    const missing = join(dir, 'nope');
    const cases: [() => unknown, string, string][] = [
      [() => loadKek({ file: missing }), 'KEK_MISSING', `KEK file ${missing}: not found`],
      [
        () => loadKek({ env: 'TESSERA_TEST_KEK' }, {}),
        'KEK_MISSING',
        'KEK environment variable TESSERA_TEST_KEK: not set',
      ],
      [
        () => loadKek({ env: 'TESSERA_TEST_KEK' }, { TESSERA_TEST_KEK: '  ' }),
        'KEK_MISSING',
        'KEK environment variable TESSERA_TEST_KEK: not set',
      ],
      [() => loadKek({}), 'KEK_MISSING', 'key-encryption key: give exactly one of file, env, hex (none given)'],
      [
        () => loadKek({ hex: kekHex, file }),
        'KEK_MISSING',
        'key-encryption key: give exactly one of file, env, hex (got file, hex)',
      ],
      [() => loadKek({ hex: kekHex.slice(1) }), 'KEK_INVALID', 'KEK hex: expected 64 hex characters'],
      [
        () => loadKek({ env: 'K' }, { K: `${kekHex.slice(2)}zz` }),
        'KEK_INVALID',
        'KEK environment variable K: expected 64 hex characters',
      ],
      [() => kekFromBytes(rand(31)), 'KEK_INVALID', 'key-encryption key: expected 32 bytes, got 31 bytes'],
    ];
    const bad = join(dir, 'bad');
    writeFileSync(bad, `${kekHex}00\n`);
    cases.push([() => loadKek({ file: bad }), 'KEK_INVALID', `KEK file ${bad}: expected 64 hex characters`]);
    writeFileSync(join(dir, 'empty'), '\n');
    cases.push([() => loadKek({ file: join(dir, 'empty') }), 'KEK_MISSING', `KEK file ${join(dir, 'empty')}: empty`]);
    for (const [fn, code, message] of cases) {
      let caught: unknown;
      try {
        fn();
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(StoreError);
      expect((caught as StoreError).code).toBe(code);
      expect((caught as StoreError).message).toBe(message);
      expect((caught as StoreError).message).not.toContain(kekHex.slice(2, 40));
    }
  });
});

describe('opening', () => {
  it('reports a corrupt meta record, data without a meta record, a locked store, a missing directory', async () => {
    const kek = randomKek();
    const dir = tempDir('meta');
    await (await SealedStore.open(dir, kek)).close();
    await withRawDb(dir, (db) => db.put(META_KEY, new TextEncoder().encode('{"v":1}')));
    expect((await rejectsWithCode(SealedStore.open(dir, kek), 'STORE_CORRUPT')).message).toContain(dir);

    const orphan = tempDir('orphan');
    await withRawDb(orphan, (db) => db.put(`${DATA_PREFIX}k`, rand(60)));
    expect((await rejectsWithCode(SealedStore.open(orphan, kek), 'STORE_CORRUPT')).message).toBe(
      `store ${orphan} holds data but no data-key record`,
    );

    const busy = tempDir('busy');
    const first = await SealedStore.open(busy, kek);
    expect((await rejectsWithCode(SealedStore.open(busy, kek), 'STORE_UNAVAILABLE')).message).toContain(busy);
    await first.close();

    const absent = join(tempDir('absent'), 'not-here');
    expect(
      (await rejectsWithCode(SealedStore.open(absent, kek, { createIfMissing: false }), 'STORE_UNAVAILABLE')).message,
    ).toContain(absent);
  });
});

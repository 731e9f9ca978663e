/**
 * Backend-independent conformance suite for {@link SealedKV} stores and the components built on
 * them (vault, nonce ledger, idempotency cache, audit log). A backend's test file calls
 * `runStoreConformance(name, openStore)`; `openStore` must return a new, empty store each time.
 * With `reopen`, persistence across close/open is checked too.
 */
import { describe, expect, it } from 'vitest';
import {
  AuditLog,
  IdempotencyCache,
  NonceLedger,
  type SealedKV,
  ShareVault,
  verifyAuditEntries,
} from '../src/index.js';
import { collect, rand, rejectsWithCode } from './helpers.js';

/** Options of {@link runStoreConformance}. */
export interface ConformanceOptions {
  /** Close `store` and open the same underlying database again. */
  reopen?: (store: SealedKV) => Promise<SealedKV>;
}

const te = new TextEncoder();
const bytes = (s: string): Uint8Array => te.encode(s);
const byUtf8 = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** Register the conformance suite for one backend. */
export function runStoreConformance(
  name: string,
  openStore: () => Promise<SealedKV>,
  opts: ConformanceOptions = {},
): void {
  const withStore = (fn: (s: SealedKV) => Promise<void>) => async () => {
    const s = await openStore();
    try {
      await fn(s);
    } finally {
      await s.close();
    }
  };

  describe(`store conformance: ${name}`, () => {
    describe('sealed key-value', () => {
      it(
        'round-trips values of many sizes, returning copies',
        withStore(async (s) => {
          for (const n of [0, 1, 31, 32, 33, 1000, 100_000]) {
            const v = rand(n);
            await s.put(`v/${n}`, v);
            const got = await s.get(`v/${n}`);
            expect(got).toEqual(v);
            if (got && got.length > 0) {
              got[0] = (got[0]! + 1) & 0xff;
              expect(await s.get(`v/${n}`)).toEqual(v);
            }
          }
        }),
      );

      it(
        'overwrites, deletes, and reports absent keys as undefined',
        withStore(async (s) => {
          expect(await s.get('missing')).toBeUndefined();
          await s.del('missing');
          await s.put('k', bytes('one'), { sync: true });
          await s.put('k', bytes('two'));
          expect(await s.get('k')).toEqual(bytes('two'));
          await s.del('k', { sync: true });
          expect(await s.get('k')).toBeUndefined();
        }),
      );

      it(
        'rejects invalid keys and values with INVALID_ARGUMENT',
        withStore(async (s) => {
          await rejectsWithCode(s.put('', bytes('x')), 'INVALID_ARGUMENT');
          await rejectsWithCode(s.put('bad\uD800', bytes('x')), 'INVALID_ARGUMENT');
          await rejectsWithCode(s.put('x'.repeat(5000), bytes('x')), 'INVALID_ARGUMENT');
          await rejectsWithCode(s.get(42 as unknown as string), 'INVALID_ARGUMENT');
          await rejectsWithCode(s.put('k', 'text' as unknown as Uint8Array), 'INVALID_ARGUMENT');
        }),
      );

      it(
        'accepts unicode keys',
        withStore(async (s) => {
          for (const k of ['é', '日本/語', 'emoji/😀', 'a\u{10FFFF}']) {
            await s.put(k, bytes(k));
            expect(await s.get(k)).toEqual(bytes(k));
          }
        }),
      );

      it('fails with STORE_UNAVAILABLE after close', async () => {
        const s = await openStore();
        await s.close();
        await s.close();
        await rejectsWithCode(s.get('k'), 'STORE_UNAVAILABLE');
        await rejectsWithCode(s.put('k', bytes('v')), 'STORE_UNAVAILABLE');
        await rejectsWithCode(collect(s.iterate('')), 'STORE_UNAVAILABLE');
      });
    });

    describe('batch', () => {
      it(
        'applies puts and deletes together',
        withStore(async (s) => {
          await s.put('b/gone', bytes('x'));
          await s.batch(
            [
              { type: 'put', key: 'b/1', value: bytes('1') },
              { type: 'put', key: 'b/2', value: bytes('2') },
              { type: 'del', key: 'b/gone' },
            ],
            { sync: true },
          );
          expect(await collect(s.keys('b/'))).toEqual(['b/1', 'b/2']);
          await s.batch([]);
        }),
      );

      it(
        'is all-or-nothing: an invalid op leaves the store untouched',
        withStore(async (s) => {
          await s.put('b/keep', bytes('old'));
          await rejectsWithCode(
            s.batch([
              { type: 'put', key: 'b/new', value: bytes('new') },
              { type: 'del', key: 'b/keep' },
              { type: 'put', key: '', value: bytes('bad key') },
            ]),
            'INVALID_ARGUMENT',
          );
          await rejectsWithCode(
            s.batch([
              { type: 'put', key: 'b/new', value: bytes('new') },
              { type: 'put', key: 'b/x', value: null as unknown as Uint8Array },
            ]),
            'INVALID_ARGUMENT',
          );
          expect(await s.get('b/new')).toBeUndefined();
          expect(await s.get('b/keep')).toEqual(bytes('old'));
        }),
      );

      it(
        'insert writes a key once: a present key fails the whole batch with KEY_EXISTS, nothing written',
        withStore(async (s) => {
          await s.batch([{ type: 'insert', key: 'i/once', value: bytes('first') }]);
          await rejectsWithCode(
            s.batch([
              { type: 'put', key: 'i/other', value: bytes('other') },
              { type: 'insert', key: 'i/once', value: bytes('second') },
            ]),
            'KEY_EXISTS',
          );
          expect(await s.get('i/once')).toEqual(bytes('first'));
          expect(await s.get('i/other')).toBeUndefined();
        }),
      );

      it(
        'concurrent inserts of one key: exactly one batch commits, the others write nothing',
        withStore(async (s) => {
          const results = await Promise.allSettled(
            Array.from({ length: 8 }, (_, i) =>
              s.batch([
                { type: 'insert', key: 'i/race', value: bytes(`writer ${i}`) },
                { type: 'put', key: `i/side/${i}`, value: bytes('x') },
              ]),
            ),
          );
          const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
          expect(won).toHaveLength(1);
          for (const r of results)
            if (r.status === 'rejected') expect((r.reason as { code?: string }).code).toBe('KEY_EXISTS');
          expect(await s.get('i/race')).toEqual(bytes(`writer ${won[0]}`));
          expect(await collect(s.keys('i/side/'))).toEqual([`i/side/${won[0]}`]);
        }),
      );
    });

    describe('iteration', () => {
      const keys = ['a', 'a/', 'a/b', 'a/c', 'ab', 'a\uFFFF', 'a\u{10FFFF}', 'aé', 'b', 'B', 'é', '0', 'a/b/c'];

      it(
        'yields keys in UTF-8 byte order, bounded by the prefix',
        withStore(async (s) => {
          const shuffled = [...keys].sort(() => Math.random() - 0.5);
          for (const k of shuffled) await s.put(k, bytes(`v:${k}`));
          const all = await collect(s.iterate(''));
          expect(all.map(([k]) => k)).toEqual([...keys].sort(byUtf8));
          for (const [k, v] of all) expect(v).toEqual(bytes(`v:${k}`));
          for (const p of ['a', 'a/', 'a/b', 'é', 'z', 'a\u{10FFFF}']) {
            const want = keys.filter((k) => k.startsWith(p)).sort(byUtf8);
            expect(await collect(s.keys(p))).toEqual(want);
          }
        }),
      );

      it(
        'supports reverse and limit',
        withStore(async (s) => {
          for (const k of keys) await s.put(k, bytes(k));
          const want = keys.filter((k) => k.startsWith('a/')).sort(byUtf8);
          expect(await collect(s.keys('a/', { reverse: true }))).toEqual([...want].reverse());
          expect(await collect(s.keys('a/', { limit: 2 }))).toEqual(want.slice(0, 2));
          expect(await collect(s.keys('a/', { reverse: true, limit: 1 }))).toEqual([want[want.length - 1]]);
          expect((await collect(s.iterate('a/', { limit: 1 })))[0]?.[0]).toBe(want[0]);
        }),
      );

      it(
        'iterates a snapshot: later writes are not seen',
        withStore(async (s) => {
          await s.put('s/1', bytes('1'));
          await s.put('s/3', bytes('3'));
          const it = s.keys('s/');
          expect((await it.next()).value).toBe('s/1');
          await s.put('s/2', bytes('2'));
          await s.del('s/3');
          const rest: string[] = [];
          for await (const k of it) rest.push(k);
          expect(rest).toEqual(['s/3']);
        }),
      );
    });

    describe('share vault', () => {
      it(
        'stores shares per key and epoch',
        withStore(async (s) => {
          const v = new ShareVault(s);
          expect(await v.latestEpoch('k1')).toBeUndefined();
          expect(await v.listKeys()).toEqual([]);
          const r0 = rand(64),
            r1 = rand(64),
            r12 = rand(64),
            other = rand(64);
          await v.putShare('k1', 0, r0);
          await v.putShare('k1', 12, r12);
          await v.putShare('k1', 1, r1);
          await v.putShare('k2', 7, other);
          await v.putShare('k1.x', 3, other);
          expect(await v.getShare('k1', 1)).toEqual(r1);
          expect(await v.getShare('k1', 2)).toBeUndefined();
          expect(await v.latestEpoch('k1')).toBe(12);
          expect(await v.listEpochs('k1')).toEqual([0, 1, 12]);
          expect(await v.listKeys()).toEqual(['k1', 'k1.x', 'k2']);
          await v.dropEpoch('k1', 12);
          expect(await v.latestEpoch('k1')).toBe(1);
          expect(await v.getShare('k1', 12)).toBeUndefined();
        }),
      );

      it(
        'never silently replaces a share',
        withStore(async (s) => {
          const v = new ShareVault(s);
          const r = rand(32);
          await v.putShare('k', 1, r);
          await v.putShare('k', 1, new Uint8Array(r));
          await rejectsWithCode(v.putShare('k', 1, rand(32)), 'SHARE_EXISTS');
          expect(await v.getShare('k', 1)).toEqual(r);
        }),
      );

      it(
        'putShareOp: a batch operation with the same rules (the same bytes again: nothing; other bytes: SHARE_EXISTS)',
        withStore(async (s) => {
          const v = new ShareVault(s);
          const r = rand(32);
          const op = await v.putShareOp('k', 2, r);
          expect(op?.type).toBe('put');
          expect(await v.getShare('k', 2)).toBeUndefined(); // nothing written until the caller's batch
          await s.batch([op!], { sync: true });
          expect(await v.getShare('k', 2)).toEqual(r);
          expect(await v.putShareOp('k', 2, new Uint8Array(r))).toBeUndefined();
          await rejectsWithCode(v.putShareOp('k', 2, rand(32)), 'SHARE_EXISTS');
          await rejectsWithCode(v.putShareOp('a/b', 2, r), 'INVALID_ARGUMENT');
        }),
      );

      it(
        'validates key ids and epochs',
        withStore(async (s) => {
          const v = new ShareVault(s);
          await rejectsWithCode(v.putShare('a/b', 1, rand(8)), 'INVALID_ARGUMENT');
          await rejectsWithCode(v.putShare('', 1, rand(8)), 'INVALID_ARGUMENT');
          await rejectsWithCode(v.putShare('k', -1, rand(8)), 'INVALID_ARGUMENT');
          await rejectsWithCode(v.putShare('k', 1.5, rand(8)), 'INVALID_ARGUMENT');
          await rejectsWithCode(v.getShare('k', Number.MAX_SAFE_INTEGER + 1), 'INVALID_ARGUMENT');
        }),
      );
    });

    describe('nonce ledger', () => {
      const produceFrom = (tag: string) => (secret: Uint8Array) =>
        new Uint8Array([...bytes(tag), ...secret.slice(0, 4)]);

      it(
        'consumes once; identical retries get the cached output; others get NONCE_REUSED',
        withStore(async (s) => {
          const l = new NonceLedger(s);
          const secret = rand(32),
            d1 = rand(32),
            d2 = rand(32);
          await l.addFresh('n1', secret, bytes('meta'));
          expect(await l.status('n1')).toEqual({ state: 'fresh', meta: bytes('meta') });
          let calls = 0;
          const produce = (sec: Uint8Array) => {
            calls++;
            expect(sec).toEqual(secret);
            return bytes('sig-share');
          };
          expect(await l.consume('n1', d1, produce)).toEqual(bytes('sig-share'));
          expect(await l.consume('n1', new Uint8Array(d1), produce)).toEqual(bytes('sig-share'));
          expect(calls).toBe(1);
          await rejectsWithCode(l.consume('n1', d2, produce), 'NONCE_REUSED');
          expect(calls).toBe(1);
          expect(await l.status('n1')).toEqual({
            state: 'consumed',
            requestDigest: d1,
            output: bytes('sig-share'),
            meta: bytes('meta'),
          });
        }),
      );

      it(
        'reports unknown ids and refuses to re-add an id',
        withStore(async (s) => {
          const l = new NonceLedger(s);
          await rejectsWithCode(l.consume('nope', rand(32), produceFrom('x')), 'NONCE_UNKNOWN');
          expect(await l.status('nope')).toEqual({ state: 'unknown' });
          await l.addFresh('n', rand(32));
          await rejectsWithCode(l.addFresh('n', rand(32)), 'NONCE_EXISTS');
          await l.consume('n', rand(32), produceFrom('x'));
          await rejectsWithCode(l.addFresh('n', rand(32)), 'NONCE_EXISTS');
        }),
      );

      it(
        'leaves the nonce fresh when produce throws or returns a non-byte value',
        withStore(async (s) => {
          const l = new NonceLedger(s);
          await l.addFresh('n', rand(32));
          await expect(
            l.consume('n', rand(32), () => {
              throw new Error('boom');
            }),
          ).rejects.toThrow('boom');
          await expect(l.consume('n', rand(32), async () => Promise.reject(new Error('async boom')))).rejects.toThrow(
            'async boom',
          );
          await rejectsWithCode(
            l.consume('n', rand(32), () => 'nope' as unknown as Uint8Array),
            'INVALID_ARGUMENT',
          );
          expect((await l.status('n')).state).toBe('fresh');
          const d = rand(32);
          expect(await l.consume('n', d, produceFrom('ok'))).toEqual(expect.any(Uint8Array));
          expect((await l.status('n')).state).toBe('consumed');
        }),
      );

      it(
        'serialises concurrent consumes: exactly one request wins',
        withStore(async (s) => {
          const l = new NonceLedger(s);
          await l.addFresh('race', rand(32));
          let produced = 0;
          const results = await Promise.allSettled(
            Array.from({ length: 50 }, (_, i) =>
              l.consume('race', bytes(`request-${i}`), async (secret) => {
                produced++;
                await new Promise((r) => setTimeout(r, 1));
                return new Uint8Array([i, ...secret.slice(0, 2)]);
              }),
            ),
          );
          const ok = results.filter((r) => r.status === 'fulfilled');
          const bad = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
          expect(ok).toHaveLength(1);
          expect(produced).toBe(1);
          expect(bad.every((r) => (r.reason as { code?: string }).code === 'NONCE_REUSED')).toBe(true);
          expect(await l.listConsumed()).toHaveLength(1);
        }),
      );

      it(
        'counts fresh nonces, lists consumed ones, and discards only fresh ones',
        withStore(async (s) => {
          const l = new NonceLedger(s);
          for (const id of ['k1/a', 'k1/b', 'k1/c', 'k2/a']) await l.addFresh(id, rand(32));
          expect(await l.countFresh()).toBe(4);
          expect(await l.countFresh('k1/')).toBe(3);
          const d = rand(32);
          await l.consume('k1/b', d, () => bytes('out'));
          expect(await l.countFresh('k1/')).toBe(2);
          expect(await l.listConsumed()).toEqual([{ nonceId: 'k1/b', requestDigest: d, output: bytes('out') }]);
          expect(await l.discard('k1/a')).toBe(true);
          expect(await l.discard('k1/a')).toBe(false);
          expect(await l.discard('k1/b')).toBe(false);
          expect((await l.status('k1/b')).state).toBe('consumed');
          expect(await l.countFresh()).toBe(2);
          await rejectsWithCode(
            l.consume('k1/a', d, () => bytes('x')),
            'NONCE_UNKNOWN',
          );
        }),
      );

      it(
        'validates arguments',
        withStore(async (s) => {
          const l = new NonceLedger(s);
          await rejectsWithCode(l.addFresh('', rand(32)), 'INVALID_ARGUMENT');
          await rejectsWithCode(l.addFresh('n', new Uint8Array(0)), 'INVALID_ARGUMENT');
          await rejectsWithCode(l.addFresh('bad\n', rand(32)), 'INVALID_ARGUMENT');
          await l.addFresh('n', rand(32));
          await rejectsWithCode(
            l.consume('n', new Uint8Array(0), () => bytes('x')),
            'INVALID_ARGUMENT',
          );
          expect((await l.status('n')).state).toBe('fresh');
        }),
      );
    });

    describe('idempotency cache', () => {
      it(
        'returns responses until they expire, then sweeps them',
        withStore(async (s) => {
          const c = new IdempotencyCache(s);
          const t0 = 1_700_000_000_000;
          await c.put('r1', bytes('resp1'), 1000, t0);
          await c.put('r2', bytes('resp2'), 5000, t0);
          expect(await c.get('r1', t0)).toEqual(bytes('resp1'));
          expect(await c.get('r1', t0 + 999)).toEqual(bytes('resp1'));
          expect(await c.get('r1', t0 + 1000)).toBeUndefined();
          expect(await c.get('missing', t0)).toBeUndefined();
          expect(await c.sweep(t0 + 1000)).toBe(1);
          expect(await c.sweep(t0 + 1000)).toBe(0);
          expect(await c.get('r2', t0 + 1000)).toEqual(bytes('resp2'));
          await c.put('r2', bytes('resp2b'), 10, t0 + 2000);
          expect(await c.get('r2', t0 + 2005)).toEqual(bytes('resp2b'));
          expect(await c.sweep(t0 + 2010)).toBe(1);
        }),
      );

      it(
        'validates arguments',
        withStore(async (s) => {
          const c = new IdempotencyCache(s);
          await rejectsWithCode(c.put('r', bytes('x'), 0, 1), 'INVALID_ARGUMENT');
          await rejectsWithCode(c.put('r', bytes('x'), 1.5, 1), 'INVALID_ARGUMENT');
          await rejectsWithCode(c.put('r', bytes('x'), 10, Number.NaN), 'INVALID_ARGUMENT');
          await rejectsWithCode(c.get('', 1), 'INVALID_ARGUMENT');
        }),
      );
    });

    describe('audit log', () => {
      it(
        'appends a verifiable hash chain',
        withStore(async (s) => {
          let t = 1000;
          const log = new AuditLog(s, { clock: () => t++ });
          expect(await log.verify()).toEqual({ ok: true, count: 0, head: await log.head() });
          const types = ['keygen', 'sign', 'refusal', 'refresh', 'reshare', 'admin'];
          for (let i = 0; i < 30; i++) {
            await log.append({
              type: types[i % types.length]!,
              actor: i % 2 ? `op${i}` : undefined,
              data: { i, even: i % 2 === 0, note: `n${i}`, none: null, neg: -0 },
            });
          }
          const entries = await collect(log.entries());
          expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
          expect(entries[0]!.actor).toBeUndefined();
          expect(entries[1]!.actor).toBe('op1');
          expect(entries[0]!.data['neg']).toBe(0);
          const head = await log.head();
          expect(head).toEqual({ seq: 30, hash: entries[29]!.hash });
          expect(await log.verify()).toEqual({ ok: true, count: 30, head });
          expect(verifyAuditEntries(entries, { head })).toEqual({ ok: true, count: 30, head });
          expect(verifyAuditEntries(entries.slice(10), { from: { seq: 10, hash: entries[9]!.hash }, head }).ok).toBe(
            true,
          );
          expect((await collect(log.entries(25))).map((e) => e.seq)).toEqual([25, 26, 27, 28, 29, 30]);
        }),
      );

      it(
        'serialises concurrent appends',
        withStore(async (s) => {
          const log = new AuditLog(s);
          const appended = await Promise.all(
            Array.from({ length: 20 }, (_, i) => log.append({ type: 'sign', data: { i } })),
          );
          expect(appended.map((e) => e.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
          expect((await log.verify()).ok).toBe(true);
        }),
      );

      it(
        'validates entries',
        withStore(async (s) => {
          const log = new AuditLog(s);
          await rejectsWithCode(log.append({ type: '' }), 'INVALID_ARGUMENT');
          await rejectsWithCode(log.append({ type: 'x', data: { 'bad key': 1 } }), 'INVALID_ARGUMENT');
          await rejectsWithCode(log.append({ type: 'x', data: { k: Number.NaN } }), 'INVALID_ARGUMENT');
          await rejectsWithCode(log.append({ type: 'x', data: { k: {} as unknown as string } }), 'INVALID_ARGUMENT');
          await rejectsWithCode(log.append({ type: 'x', at: -1 }), 'INVALID_ARGUMENT');
          expect((await log.head()).seq).toBe(0);
        }),
      );
    });

    if (opts.reopen) {
      const reopen = opts.reopen;
      it('persists every component across close and reopen', async () => {
        let s = await openStore();
        try {
          const share = rand(48),
            digest = rand(32);
          await new ShareVault(s).putShare('k', 3, share);
          await new NonceLedger(s).addFresh('fresh', rand(32));
          await new NonceLedger(s).addFresh('used', rand(32));
          await new NonceLedger(s).consume('used', digest, () => bytes('out'));
          await new IdempotencyCache(s).put('req', bytes('resp'), 60_000, 1);
          await new AuditLog(s).append({ type: 'admin', data: { what: 'test' } });
          s = await reopen(s);
          expect(await new ShareVault(s).getShare('k', 3)).toEqual(share);
          expect(await new NonceLedger(s).countFresh()).toBe(1);
          expect(await new NonceLedger(s).status('used')).toEqual({
            state: 'consumed',
            requestDigest: digest,
            output: bytes('out'),
          });
          await rejectsWithCode(
            new NonceLedger(s).consume('used', rand(32), () => bytes('x')),
            'NONCE_REUSED',
          );
          expect(await new IdempotencyCache(s).get('req', 2)).toEqual(bytes('resp'));
          expect(await new AuditLog(s).verify()).toMatchObject({ ok: true, count: 1 });
        } finally {
          await s.close();
        }
      });
    }
  });
}

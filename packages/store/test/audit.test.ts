/** Tamper detection of the hash-chained audit log, in the store and offline. */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AUDIT_HEAD_KEY,
  type AuditEntry,
  AuditLog,
  SealedStore,
  auditEntryHash,
  auditEntryKey,
  rawKeyOf,
  verifyAuditEntries,
} from '../src/index.js';
import { cleanupDirs, collect, rand, randomKek, tempDir, withBatchHook, withRawDb } from './helpers.js';

afterAll(cleanupDirs);

const te = new TextEncoder();
const N = 12;

async function freshLog(n = N): Promise<{
  store: SealedStore;
  log: AuditLog;
  entries: AuditEntry[];
  dir: string;
  kek: ReturnType<typeof randomKek>;
}> {
  const dir = tempDir('audit');
  const kek = randomKek();
  const store = await SealedStore.open(dir, kek);
  let t = 1_700_000_000_000;
  const log = new AuditLog(store, { clock: () => (t += 7) });
  for (let i = 0; i < n; i++) {
    await log.append({
      type: i % 3 === 0 ? 'keygen' : 'sign',
      actor: `client-${i % 4}`,
      data: { i, key: `k${i % 2}`, ok: i % 5 !== 0, note: null },
    });
  }
  return { store, log, entries: await collect(log.entries()), dir, kek };
}

/** Overwrite the stored entry at `seq` with `e` (sealed properly, as an insider with the data key could). */
function putEntry(store: SealedStore, seq: number, e: unknown): Promise<void> {
  return store.put(auditEntryKey(seq), te.encode(JSON.stringify(e)));
}

function rehash(e: AuditEntry): AuditEntry {
  const { hash: _, ...body } = e;
  return { ...body, hash: auditEntryHash(body) };
}

describe('audit log tamper detection', () => {
  it('verifies an intact chain', async () => {
    const { store, log, entries } = await freshLog();
    try {
      expect(await log.verify()).toEqual({ ok: true, count: N, head: { seq: N, hash: entries[N - 1]!.hash } });
    } finally {
      await store.close();
    }
  });

  it('detects an edited entry (hash kept) at that entry', async () => {
    const { store, log, entries } = await freshLog();
    try {
      await putEntry(store, 5, { ...entries[4]!, data: { ...entries[4]!.data, ok: !entries[4]!.data['ok'] } });
      expect(await log.verify()).toEqual({ ok: false, count: 4, problem: { seq: 5, reason: 'edited' } });
    } finally {
      await store.close();
    }
  });

  it('detects an edited entry whose hash was recomputed, at the broken link', async () => {
    const { store, log, entries } = await freshLog();
    try {
      await putEntry(store, 5, rehash({ ...entries[4]!, actor: 'someone-else' }));
      expect(await log.verify()).toEqual({ ok: false, count: 5, problem: { seq: 6, reason: 'edited' } });
      await putEntry(store, 5, entries[4]);
      await putEntry(store, N, rehash({ ...entries[N - 1]!, type: 'admin' }));
      expect(await log.verify()).toEqual({ ok: false, count: N, problem: { seq: N, reason: 'edited' } });
    } finally {
      await store.close();
    }
  });

  it('detects deleted entries: first, middle, last, the last two, and the head record', async () => {
    const { store, log, entries } = await freshLog();
    try {
      const restore = async (...seqs: number[]) => {
        for (const s of seqs) await putEntry(store, s, entries[s - 1]);
      };
      for (const [seqs, problem, count] of [
        [[1], { seq: 1, reason: 'deleted' }, 0],
        [[6], { seq: 6, reason: 'deleted' }, 5],
        [[N], { seq: N, reason: 'deleted' }, N - 1],
        [[N - 1, N], { seq: N - 1, reason: 'deleted' }, N - 2],
      ] as const) {
        for (const s of seqs) await store.del(auditEntryKey(s));
        expect(await log.verify()).toEqual({ ok: false, count, problem });
        await restore(...seqs);
        expect((await log.verify()).ok).toBe(true);
      }
      const head = await store.get(AUDIT_HEAD_KEY);
      await store.del(AUDIT_HEAD_KEY);
      expect(await log.verify()).toEqual({ ok: false, count: N, problem: { seq: 0, reason: 'deleted' } });
      await store.put(AUDIT_HEAD_KEY, head!);
      expect((await log.verify()).ok).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('detects reordered (swapped) entries', async () => {
    const { store, log, entries } = await freshLog();
    try {
      await putEntry(store, 3, entries[7]);
      await putEntry(store, 8, entries[2]);
      expect(await log.verify()).toEqual({ ok: false, count: 2, problem: { seq: 3, reason: 'reordered' } });
    } finally {
      await store.close();
    }
  });

  it('reports unreadable entries and head records as corrupt', async () => {
    const { store, log, entries, dir, kek } = await freshLog();
    await putEntry(store, 4, { ...entries[3]!, extra: 'field' });
    expect(await log.verify()).toEqual({ ok: false, count: 3, problem: { seq: 4, reason: 'corrupt' } });
    await store.put(auditEntryKey(4), te.encode('not json'));
    expect(await log.verify()).toEqual({ ok: false, count: 3, problem: { seq: 4, reason: 'corrupt' } });
    await putEntry(store, 4, entries[3]);
    await store.close();
    await withRawDb(dir, (db) => db.put(rawKeyOf(auditEntryKey(9)), rand(80)));
    const reopened = await SealedStore.open(dir, kek);
    try {
      const log2 = new AuditLog(reopened);
      expect(await log2.verify()).toEqual({ ok: false, count: 8, problem: { seq: 9, reason: 'corrupt' } });
      await putEntry(reopened, 9, entries[8]);
      await reopened.put(AUDIT_HEAD_KEY, te.encode('{"seq":1}'));
      expect(await log2.verify()).toEqual({ ok: false, count: N, problem: { seq: 0, reason: 'corrupt' } });
      await expect(log2.append({ type: 'admin' })).rejects.toMatchObject({ code: 'STORE_CORRUPT' });
    } finally {
      await reopened.close();
    }
  });

  it('detects an entry appended behind the log’s back (past the head)', async () => {
    const { store, log, entries } = await freshLog();
    try {
      const last = entries[N - 1]!;
      await putEntry(store, N + 1, rehash({ ...last, seq: N + 1, prev: last.hash }));
      expect(await log.verify()).toEqual({ ok: false, count: N + 1, problem: { seq: N + 1, reason: 'corrupt' } });
    } finally {
      await store.close();
    }
  });
});

describe('audit entries written with other records', () => {
  it("`with` puts the entry and the caller's records in one synced batch; audit keys are refused; a failed batch leaves the chain as it was", async () => {
    const dir = tempDir('audit');
    const kek = randomKek();
    const inner = await SealedStore.open(dir, kek);
    const batches: string[] = [];
    let failNext = false;
    // Forwards to the LevelDB store, recording batches; fails one on request.
    const store = withBatchHook(inner, (ops, opts) => {
      batches.push(`${ops.map((o) => o.key).join(',')} sync=${opts?.sync === true}`);
      if (failNext) {
        failNext = false;
        return Promise.reject(new Error('disk full'));
      }
      return inner.batch(ops, opts);
    });
    try {
      const log = new AuditLog(store);
      const e1 = await log.append(
        { type: 'sign' },
        { with: [{ type: 'put', key: 'result/1', value: te.encode('r1') }] },
      );
      expect(batches).toEqual([`result/1,${auditEntryKey(1)},${AUDIT_HEAD_KEY} sync=true`]);
      expect(new TextDecoder().decode(await inner.get('result/1'))).toBe('r1');
      await expect(
        log.append({ type: 'x' }, { with: [{ type: 'put', key: AUDIT_HEAD_KEY, value: te.encode('{}') }] }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(log.append({ type: 'x' }, { with: [{} as never] })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      failNext = true;
      await expect(
        log.append({ type: 'sign' }, { with: [{ type: 'put', key: 'result/2', value: te.encode('r2') }] }),
      ).rejects.toThrow('disk full');
      expect(await inner.get('result/2')).toBeUndefined();
      const e2 = await log.append({ type: 'sign' });
      expect(e2).toMatchObject({ seq: 2, prev: e1.hash });
      expect(await log.verify()).toEqual({ ok: true, count: 2, head: { seq: 2, hash: e2.hash } });
      // A second log on the reopened store continues the same chain.
      await inner.close();
      const reopened = await SealedStore.open(dir, kek);
      const e3 = await new AuditLog(reopened).append({ type: 'admin' });
      expect(e3).toMatchObject({ seq: 3, prev: e2.hash });
      await reopened.close();
    } finally {
      await inner.close().catch(() => {});
    }
  });
});

describe('audit group commit', () => {
  /** A LevelDB store whose batches are recorded and, on request, held or failed. */
  async function recordingStore() {
    const inner = await SealedStore.open(tempDir('audit'), randomKek());
    const batches: string[][] = [];
    let hold: Promise<void> | undefined;
    let fail: string | undefined;
    const store = withBatchHook(inner, async (ops, opts) => {
      batches.push(ops.map((o) => o.key));
      if (!opts?.sync) throw new Error('audit batches must be synced');
      if (hold) await hold;
      if (fail) throw new Error(fail);
      return inner.batch(ops, opts);
    });
    return {
      inner,
      store,
      batches,
      holdUntil: (p: Promise<void> | undefined) => (hold = p),
      failWith: (m: string | undefined) => (fail = m),
    };
  }

  it('appends made while a batch is on its way to disk go in the next batch together, chained in call order, each with its own records', async () => {
    const r = await recordingStore();
    const log = new AuditLog(r.store);
    let release!: () => void;
    r.holdUntil(new Promise<void>((res) => (release = res)));
    const first = log.append(
      { type: 'sign', data: { i: 0 } },
      { with: [{ type: 'put', key: 'result/0', value: te.encode('r0') }] },
    );
    await new Promise((res) => setImmediate(res)); // the first batch is in flight (held)
    const rest = Array.from({ length: 5 }, (_, i) =>
      log.append(
        { type: 'sign', data: { i: i + 1 } },
        { with: [{ type: 'put', key: `result/${i + 1}`, value: te.encode(`r${i + 1}`) }] },
      ),
    );
    expect(r.batches).toHaveLength(1);
    r.holdUntil(undefined);
    release();
    const entries = [await first, ...(await Promise.all(rest))];
    // Two batches for six appends: the first alone, the five queued behind it together.
    expect(r.batches).toEqual([
      ['result/0', auditEntryKey(1), AUDIT_HEAD_KEY],
      [
        'result/1',
        auditEntryKey(2),
        'result/2',
        auditEntryKey(3),
        'result/3',
        auditEntryKey(4),
        'result/4',
        auditEntryKey(5),
        'result/5',
        auditEntryKey(6),
        AUDIT_HEAD_KEY,
      ],
    ]);
    entries.forEach((e, i) => {
      expect(e).toMatchObject({ seq: i + 1, data: { i } });
      if (i > 0) expect(e.prev).toBe(entries[i - 1]!.hash);
    });
    for (let i = 0; i < 6; i++) expect(new TextDecoder().decode(await r.inner.get(`result/${i}`))).toBe(`r${i}`);
    expect(await log.verify()).toEqual({ ok: true, count: 6, head: { seq: 6, hash: entries[5]!.hash } });
    await r.inner.close();
  });

  it('a failed group batch fails every append in it and leaves the head; an append with a refused op fails alone', async () => {
    const r = await recordingStore();
    const log = new AuditLog(r.store);
    const e1 = await log.append({ type: 'keygen' });
    let release!: () => void;
    r.holdUntil(new Promise<void>((res) => (release = res)));
    const held = log.append({ type: 'a' });
    await new Promise((res) => setImmediate(res));
    const group = [
      log.append({ type: 'b' }, { with: [{ type: 'put', key: 'x/1', value: te.encode('1') }] }),
      log.append({ type: 'c' }),
    ];
    r.failWith('disk full');
    r.holdUntil(undefined);
    release();
    const settled = await Promise.allSettled([held, ...group]);
    expect(settled.map((x) => (x.status === 'rejected' ? (x.reason as Error).message : 'written'))).toEqual([
      'disk full',
      'disk full',
      'disk full',
    ]);
    expect(await r.inner.get('x/1')).toBeUndefined();
    r.failWith(undefined);
    const e2 = await log.append({ type: 'd' });
    expect(e2).toMatchObject({ seq: 2, prev: e1.hash });

    // A group where one append carries an op the store refuses (a value that is not bytes).
    r.holdUntil(new Promise<void>((res) => (release = res)));
    const held2 = log.append({ type: 'e' });
    await new Promise((res) => setImmediate(res));
    const good1 = log.append({ type: 'f' }, { with: [{ type: 'put', key: 'y/1', value: te.encode('1') }] });
    const bad = log.append({ type: 'g' }, { with: [{ type: 'put', key: 'y/2', value: 'not bytes' as never }] });
    const good2 = log.append({ type: 'h' });
    r.holdUntil(undefined);
    release();
    const [a, b, refused, c] = await Promise.allSettled([held2, good1, bad, good2]).then((all) =>
      all.map((x) => (x.status === 'fulfilled' ? x.value : x.reason)),
    );
    expect(refused).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect([a.seq, b.seq, c.seq]).toEqual([3, 4, 5]);
    expect(c.prev).toBe(b.hash);
    expect(new TextDecoder().decode(await r.inner.get('y/1'))).toBe('1');
    expect(await r.inner.get('y/2')).toBeUndefined();
    expect(await log.verify()).toMatchObject({ ok: true, count: 5 });
    await r.inner.close();
  });
});

describe('verifyAuditEntries (offline)', () => {
  let entries: AuditEntry[];
  let head: { seq: number; hash: string };
  beforeAll(async () => {
    const made = await freshLog();
    entries = made.entries;
    head = await made.log.head();
    await made.store.close();
  });

  it('accepts an intact export and classifies each kind of tampering', () => {
    expect(verifyAuditEntries(entries, { head })).toEqual({ ok: true, count: N, head });
    const edited = entries.map((e, i) => (i === 4 ? { ...e, at: e.at + 1 } : e));
    expect(verifyAuditEntries(edited).ok ? undefined : verifyAuditEntries(edited)).toMatchObject({
      problem: { seq: 5, reason: 'edited' },
    });
    expect(verifyAuditEntries(entries.filter((_, i) => i !== 4))).toMatchObject({
      ok: false,
      count: 4,
      problem: { seq: 5, reason: 'deleted' },
    });
    expect(verifyAuditEntries(entries.slice(0, -1), { head })).toMatchObject({
      ok: false,
      problem: { seq: N, reason: 'deleted' },
    });
    expect(verifyAuditEntries(entries.slice(0, -1)).ok).toBe(true); // without a head, truncation is undetectable
    const swapped = [...entries];
    [swapped[2], swapped[7]] = [swapped[7]!, swapped[2]!];
    expect(verifyAuditEntries(swapped)).toMatchObject({
      ok: false,
      count: 2,
      problem: { seq: 3, reason: 'reordered' },
    });
    expect(verifyAuditEntries([...entries.slice(0, 3), { nope: true }, ...entries.slice(4)])).toMatchObject({
      problem: { seq: 4, reason: 'corrupt' },
    });
    expect(verifyAuditEntries([])).toEqual({ ok: true, count: 0, head: { seq: 0, hash: '0'.repeat(64) } });
  });
});

describe('audit property: any single edit of a random entry is detected', () => {
  type Edit = (e: AuditEntry) => AuditEntry;
  const edits: fc.Arbitrary<Edit> = fc.oneof(
    fc.integer({ min: 1, max: 1e9 }).map(
      (d): Edit =>
        (e) => ({ ...e, at: e.at + d }),
    ),
    fc.string({ minLength: 1, maxLength: 12 }).map(
      (s): Edit =>
        (e) => ({ ...e, type: e.type + s }),
    ),
    fc.string({ minLength: 1, maxLength: 12 }).map(
      (s): Edit =>
        (e) => ({ ...e, actor: (e.actor ?? '') + s }),
    ),
    fc.constant<Edit>((e) => {
      const { actor: _, ...rest } = e;
      return rest;
    }),
    fc
      .tuple(
        fc.constantFrom('i', 'key', 'ok', 'note', 'new'),
        fc.oneof(fc.string(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null)),
      )
      .map(
        ([k, v]): Edit =>
          (e) => ({ ...e, data: { ...e.data, [k]: v } }),
      ),
    fc.constantFrom('i', 'key', 'ok', 'note').map(
      (k): Edit =>
        (e) => {
          const data = { ...e.data };
          delete data[k];
          return { ...e, data };
        },
    ),
    fc.integer({ min: 0, max: 63 }).map(
      (p): Edit =>
        (e) => ({ ...e, prev: flipHex(e.prev, p) }),
    ),
    fc.integer({ min: 0, max: 63 }).map(
      (p): Edit =>
        (e) => ({ ...e, hash: flipHex(e.hash, p) }),
    ),
    fc.integer({ min: 1, max: 1000 }).map(
      (d): Edit =>
        (e) => ({ ...e, seq: e.seq + d }),
    ),
  );

  it('in the store (with and without a recomputed hash)', async () => {
    const { store, log, entries } = await freshLog(20);
    try {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 20 }), edits, fc.boolean(), async (seq, edit, recompute) => {
          const original = entries[seq - 1]!;
          const edited = recompute ? rehash(edit(original)) : edit(original);
          fc.pre(JSON.stringify(edited) !== JSON.stringify(original));
          await putEntry(store, seq, edited);
          try {
            const r = await log.verify();
            expect(r.ok).toBe(false);
            if (r.ok) return;
            expect([seq, seq + 1]).toContain(r.problem.seq);
            expect(['edited', 'reordered']).toContain(r.problem.reason);
            if (!recompute && r.problem.reason === 'edited') expect(r.problem.seq).toBe(seq);
          } finally {
            await putEntry(store, seq, original);
          }
        }),
        { numRuns: 150 },
      );
      expect((await log.verify()).ok).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('offline', async () => {
    const { store, log, entries } = await freshLog(20);
    const head = await log.head();
    await store.close();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 19 }), edits, fc.boolean(), (i, edit, recompute) => {
        const edited = recompute ? rehash(edit(entries[i]!)) : edit(entries[i]!);
        fc.pre(JSON.stringify(edited) !== JSON.stringify(entries[i]));
        const r = verifyAuditEntries(
          entries.map((e, j) => (j === i ? edited : e)),
          { head },
        );
        expect(r.ok).toBe(false);
      }),
      { numRuns: 500 },
    );
  });
});

function flipHex(h: string, pos: number): string {
  const c = h[pos] === '0' ? '1' : '0';
  return h.slice(0, pos) + c + h.slice(pos + 1);
}

/** The nonce ledger's security properties, including durability across a real process crash. */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BatchOp,
  NonceLedger,
  SealedStore,
  type WriteOptions,
  generateKekHex,
  loadKek,
  rawKeyOf,
} from '../src/index.js';
import {
  ForwardingStore,
  cleanupDirs,
  filesContaining,
  rand,
  randomKek,
  rejectsWithCode,
  tempDir,
  withRawDb,
} from './helpers.js';

afterAll(cleanupDirs);

const te = new TextEncoder();

/** A pass-through SealedKV that records the order of writes (not a mock: it forwards to LevelDB). */
class RecordingStore extends ForwardingStore {
  readonly log: string[] = [];
  override async put(key: string, value: Uint8Array, opts?: WriteOptions) {
    this.log.push(`put-start ${key} sync=${opts?.sync === true}`);
    await this.inner.put(key, value, opts);
    this.log.push(`put-done ${key}`);
  }
  override del(key: string, opts?: WriteOptions) {
    this.log.push(`del ${key} sync=${opts?.sync === true}`);
    return this.inner.del(key, opts);
  }
}

/** A RecordingStore that also records each batch as `keys sync=…`. */
class BatchRecordingStore extends RecordingStore {
  readonly batches: string[] = [];
  override batch(ops: readonly BatchOp[], opts?: WriteOptions) {
    this.batches.push(`${ops.map((o) => o.key).join(',')} sync=${opts?.sync === true}`);
    return super.batch(ops, opts);
  }
}

describe('nonce ledger', () => {
  it('consumes once, replays identical requests without calling produce, refuses others', async () => {
    const store = await SealedStore.open(tempDir('nl'), randomKek());
    try {
      const l = new NonceLedger(store);
      const secret = rand(32);
      await l.addFresh('n', secret);
      let calls = 0;
      const produce = (s: Uint8Array) => {
        calls++;
        return createHash('sha256').update(s).digest();
      };
      const digest = rand(32);
      const out = await l.consume('n', digest, produce);
      expect(out).toEqual(new Uint8Array(createHash('sha256').update(secret).digest()));
      expect(await l.consume('n', digest, produce)).toEqual(out);
      expect(calls).toBe(1);
      const err = await rejectsWithCode(l.consume('n', rand(32), produce), 'NONCE_REUSED');
      expect(err.message).toBe('nonce n was already consumed for a different request');
      expect(calls).toBe(1);
      expect(await l.status('n')).toEqual({ state: 'consumed', requestDigest: digest, output: out });
    } finally {
      await store.close();
    }
  });

  it('50 concurrent consumes with different digests: exactly one succeeds', async () => {
    const store = await SealedStore.open(tempDir('nl'), randomKek());
    try {
      const l = new NonceLedger(store);
      for (let round = 0; round < 5; round++) {
        await l.addFresh(`n${round}`, rand(32));
        const results = await Promise.allSettled(
          Array.from({ length: 50 }, (_, i) => l.consume(`n${round}`, te.encode(`req-${i}`), () => Uint8Array.of(i))),
        );
        const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
        expect(winners).toHaveLength(1);
        const losers = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        expect(new Set(losers.map((r) => (r.reason as { code: string }).code))).toEqual(new Set(['NONCE_REUSED']));
        const st = await l.status(`n${round}`);
        expect(st).toMatchObject({ state: 'consumed', output: Uint8Array.of(winners[0]!) });
      }
      expect(await l.listConsumed()).toHaveLength(5);
    } finally {
      await store.close();
    }
  });

  it('concurrent identical requests all get the one output; produce runs once', async () => {
    const store = await SealedStore.open(tempDir('nl'), randomKek());
    try {
      const l = new NonceLedger(store);
      await l.addFresh('n', rand(32));
      let calls = 0;
      const digest = rand(32);
      const outs = await Promise.all(
        Array.from({ length: 20 }, () =>
          l.consume('n', digest, () => {
            calls++;
            return rand(64);
          }),
        ),
      );
      expect(calls).toBe(1);
      for (const o of outs) expect(o).toEqual(outs[0]);
    } finally {
      await store.close();
    }
  });

  it('a produce that throws leaves the nonce fresh and usable', async () => {
    const store = await SealedStore.open(tempDir('nl'), randomKek());
    try {
      const l = new NonceLedger(store);
      await l.addFresh('n', rand(32));
      await expect(
        l.consume('n', rand(32), () => {
          throw new Error('signer failed');
        }),
      ).rejects.toThrow('signer failed');
      expect(await l.status('n')).toEqual({ state: 'fresh' });
      expect(await l.countFresh()).toBe(1);
      const digest = rand(32);
      const out = await l.consume('n', digest, () => Uint8Array.of(7));
      expect(out).toEqual(Uint8Array.of(7));
    } finally {
      await store.close();
    }
  });

  it('writes the consumed record with a synced write before releasing the output', async () => {
    const inner = await SealedStore.open(tempDir('nl'), randomKek());
    const store = new RecordingStore(inner);
    try {
      const l = new NonceLedger(store);
      await l.addFresh('n', rand(32));
      const out = await l
        .consume('n', rand(32), () => {
          store.log.push('produce');
          return Uint8Array.of(1);
        })
        .then((o) => {
          store.log.push('released');
          return o;
        });
      expect(out).toEqual(Uint8Array.of(1));
      expect(store.log).toEqual([
        'put-start nonce/n sync=true',
        'put-done nonce/n',
        'produce',
        'put-start nonce/n sync=true',
        'put-done nonce/n',
        'released',
      ]);
      expect(await l.discard('n')).toBe(false); // consumed: kept, nothing written
      expect(store.log.at(-1)).toBe('released');
      await l.addFresh('m', rand(32));
      await l.discard('m');
      expect(store.log.at(-1)).toBe('del nonce/m sync=true');
    } finally {
      await store.close();
    }
  });

  it('addFreshMany: one synced batch, all or none; an id already in the ledger refuses the whole batch', async () => {
    const inner = await SealedStore.open(tempDir('nl'), randomKek());
    const store = new BatchRecordingStore(inner);
    const batches = store.batches;
    try {
      const l = new NonceLedger(store);
      const meta = te.encode('commitment');
      await l.addFreshMany([
        { nonceId: 'a', secret: rand(32), meta },
        { nonceId: 'b', secret: rand(32) },
      ]);
      expect(batches).toEqual(['nonce/a,nonce/b sync=true']);
      expect(await l.status('a')).toEqual({ state: 'fresh', meta });
      expect(await l.status('b')).toEqual({ state: 'fresh' });
      // Consumed 'a' is never replaced, and 'c' of the same batch is not written either.
      await l.consume('a', rand(32), () => Uint8Array.of(1));
      await rejectsWithCode(
        l.addFreshMany([
          { nonceId: 'c', secret: rand(32) },
          { nonceId: 'a', secret: rand(32) },
        ]),
        'NONCE_EXISTS',
      );
      expect((await l.status('a')).state).toBe('consumed');
      expect(await l.status('c')).toEqual({ state: 'unknown' });
      await rejectsWithCode(
        l.addFreshMany([
          { nonceId: 'd', secret: rand(32) },
          { nonceId: 'd', secret: rand(32) },
        ]),
        'INVALID_ARGUMENT',
      );
      await rejectsWithCode(l.addFreshMany([{ nonceId: 'e', secret: new Uint8Array(0) }]), 'INVALID_ARGUMENT');
      expect(await l.countFresh()).toBe(1);
      expect(batches).toHaveLength(1);
      // Concurrent batches over overlapping ids: exactly one writes the shared id.
      const results = await Promise.allSettled([
        l.addFreshMany([
          { nonceId: 'x', secret: rand(32) },
          { nonceId: 'y', secret: rand(32) },
        ]),
        l.addFreshMany([
          { nonceId: 'y', secret: rand(32) },
          { nonceId: 'z', secret: rand(32) },
        ]),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      expect(await l.countFresh()).toBe(3);
    } finally {
      await store.close();
    }
  });

  it('consume hooks: beforeProduce refuses with the nonce fresh; commit writes the consumption with more in one synced batch', async () => {
    const inner = await SealedStore.open(tempDir('nl'), randomKek());
    const store = new BatchRecordingStore(inner);
    const batches = store.batches;
    try {
      const l = new NonceLedger(store);
      const meta = te.encode('kept');
      await l.addFresh('n', rand(32), meta);
      // Refused before produce: nothing written, still fresh.
      let produced = 0;
      await expect(
        l.consume('n', rand(32), () => Uint8Array.of(++produced), {
          beforeProduce: () => {
            throw new Error('over the limit');
          },
        }),
      ).rejects.toThrow('over the limit');
      expect(produced).toBe(0);
      expect(await l.status('n')).toEqual({ state: 'fresh', meta });
      // A commit that fails leaves it fresh too.
      await expect(
        l.consume('n', rand(32), () => Uint8Array.of(1), { commit: () => Promise.reject(new Error('disk full')) }),
      ).rejects.toThrow('disk full');
      expect((await l.status('n')).state).toBe('fresh');
      // The commit hook writes the ledger's operation with its own.
      const seen: (Uint8Array | undefined)[] = [];
      const digest = rand(32);
      const out = await l.consume('n', digest, (_secret, m) => (seen.push(m), Uint8Array.of(9)), {
        beforeProduce: (m) => void seen.push(m),
        commit: (ops) =>
          store.batch([...ops, { type: 'put', key: 'other/x', value: Uint8Array.of(1) }], { sync: true }),
      });
      expect(out).toEqual(Uint8Array.of(9));
      expect(seen).toEqual([meta, meta]);
      expect(batches).toEqual(['nonce/n,other/x sync=true']);
      expect(await l.status('n')).toMatchObject({ state: 'consumed', requestDigest: digest, output: Uint8Array.of(9) });
      // A retry of the same request: neither hook runs.
      const again = await l.consume('n', digest, () => Uint8Array.of(0), {
        beforeProduce: () => {
          throw new Error('not called');
        },
        commit: () => Promise.reject(new Error('not called')),
      });
      expect(again).toEqual(Uint8Array.of(9));
      expect(batches).toHaveLength(1);
    } finally {
      await store.close();
    }
  });

  it('countFresh keeps its count through adds, consumptions and discards, also when they race its first scan', async () => {
    const dir = tempDir('nl');
    const kek = randomKek();
    const store = await SealedStore.open(dir, kek);
    try {
      const l = new NonceLedger(store);
      await l.addFreshMany(Array.from({ length: 40 }, (_, i) => ({ nonceId: `k1.${i}`, secret: rand(32) })));
      await l.addFreshMany(Array.from({ length: 5 }, (_, i) => ({ nonceId: `k2.${i}`, secret: rand(32) })));
      for (let i = 0; i < 10; i++) await l.consume(`k1.${i}`, rand(32), () => Uint8Array.of(i));
      // The first scan of each prefix races writes under it.
      const [c1, c2] = await Promise.all([
        l.countFresh('k1.'),
        l.countFresh('k2.'),
        l.consume('k1.20', rand(32), () => Uint8Array.of(1)),
        l.discard('k1.21'),
        l.addFresh('k1.new', rand(32)),
        l.addFresh('k2.new', rand(32)).then(() => l.discard('k2.new')),
      ]);
      const truth = async (prefix: string) => {
        let n = 0;
        for (let i = 0; i < 41; i++) if ((await l.status(`${prefix}${i}`)).state === 'fresh') n++;
        if ((await l.status(`${prefix}new`)).state === 'fresh') n++;
        return n;
      };
      expect(await l.countFresh('k1.')).toBe(await truth('k1.'));
      expect(await l.countFresh('k2.')).toBe(await truth('k2.'));
      expect(c1 === 29 || c1 === 30 || c1 === 31 || c1 === 28).toBe(true); // whatever the scan saw mid-race
      expect(c2 === 5 || c2 === 6).toBe(true);
      // Later writes keep every known prefix (and the whole ledger) in step.
      expect(await l.countFresh()).toBe((await truth('k1.')) + (await truth('k2.')));
      await l.addFreshMany([
        { nonceId: 'k1.x', secret: rand(32) },
        { nonceId: 'k2.x', secret: rand(32) },
      ]);
      await l.consume('k1.30', rand(32), () => Uint8Array.of(1));
      await l.discard('k2.1');
      const n1 = await l.countFresh('k1.');
      const n2 = await l.countFresh('k2.');
      expect(await l.countFresh()).toBe(n1 + n2);
      // A new ledger on the same store (a restart) counts the same by scanning.
      await store.close();
      const reopened = await SealedStore.open(dir, kek);
      const l2 = new NonceLedger(reopened);
      expect(await l2.countFresh('k1.')).toBe(n1);
      expect(await l2.countFresh('k2.')).toBe(n2);
      await reopened.close();
    } finally {
      await store.close().catch(() => {});
    }
  });

  it('consumed state survives close and reopen', async () => {
    const dir = tempDir('nl');
    const kek = randomKek();
    let store = await SealedStore.open(dir, kek);
    const digest = rand(32);
    await new NonceLedger(store).addFresh('n', rand(32));
    const out = await new NonceLedger(store).consume('n', digest, () => rand(32));
    await store.close();
    store = await SealedStore.open(dir, kek);
    try {
      const l = new NonceLedger(store);
      expect(await l.status('n')).toEqual({ state: 'consumed', requestDigest: digest, output: out });
      expect(
        await l.consume('n', digest, () => {
          throw new Error('must not run');
        }),
      ).toEqual(out);
      await rejectsWithCode(
        l.consume('n', rand(32), () => rand(32)),
        'NONCE_REUSED',
      );
    } finally {
      await store.close();
    }
  });

  it('purge() compacts away the earlier sealed record of a consumed nonce', async () => {
    const dir = tempDir('purge');
    const kek = randomKek();
    let store = await SealedStore.open(dir, kek);
    await new NonceLedger(store).addFresh('n', rand(32));
    await store.close();
    const sealedFresh = await withRawDb(dir, async (db) => new Uint8Array((await db.get(rawKeyOf('nonce/n')))!));
    store = await SealedStore.open(dir, kek);
    await new NonceLedger(store).consume('n', rand(32), () => rand(32));
    await store.close();
    expect(filesContaining(dir, sealedFresh).length, 'old version still on disk before compaction').toBeGreaterThan(0);
    store = await SealedStore.open(dir, kek);
    await new NonceLedger(store).purge();
    expect((await new NonceLedger(store).status('n')).state).toBe('consumed');
    await store.close();
    expect(filesContaining(dir, sealedFresh)).toEqual([]);
  });
});

describe('nonce ledger across a real process crash (SIGKILL)', () => {
  const distIndex = fileURLToPath(new URL('../dist/index.js', import.meta.url));

  beforeAll(() => {
    if (!existsSync(distIndex)) throw new Error(`${distIndex} is missing: run \`npx tsc -b packages/store\` first`);
    const src = fileURLToPath(new URL('../src/', import.meta.url));
    const buildInfo = fileURLToPath(new URL('../tsconfig.tsbuildinfo', import.meta.url));
    const built = existsSync(buildInfo) ? statSync(buildInfo).mtimeMs : 0;
    for (const f of readdirSync(src)) {
      const out = join(dirname(distIndex), f.replace(/\.ts$/, '.js'));
      if (!existsSync(out) || statSync(join(src, f)).mtimeMs > Math.max(built, statSync(out).mtimeMs)) {
        throw new Error(`packages/store/dist is stale (${f}): run \`npx tsc -b packages/store\` first`);
      }
    }
  });

  const script = `
import { NonceLedger, SealedStore, loadKek } from ${JSON.stringify(pathToFileURL(distIndex).href)};
import { createHash } from 'node:crypto';
import { writeSync } from 'node:fs';
const [dir, kekHex, nonceId, digestHex, mode] = process.argv.slice(2);
const store = await SealedStore.open(dir, loadKek({ hex: kekHex }));
const digest = Buffer.from(digestHex, 'hex');
const out = await new NonceLedger(store).consume(nonceId, digest, (secret) => {
  if (mode === 'crash-in-produce') { writeSync(1, 'producing\\n'); process.kill(process.pid, 'SIGKILL'); }
  const out = new Uint8Array(createHash('sha256').update(secret).update(digest).digest());
  writeSync(2, 'produced\\n');
  return out;
});
writeSync(1, 'output ' + Buffer.from(out).toString('hex') + '\\n');
process.kill(process.pid, 'SIGKILL');
`;

  async function setup(): Promise<{ dir: string; kekHex: string; secret: Uint8Array; scriptPath: string }> {
    const dir = tempDir('crash');
    const kekHex = generateKekHex();
    const secret = rand(32);
    const store = await SealedStore.open(join(dir, 'db'), loadKek({ hex: kekHex }));
    await new NonceLedger(store).addFresh('key1/n1', secret);
    await store.close();
    const scriptPath = join(dir, 'consume.mjs');
    writeFileSync(scriptPath, script);
    return { dir, kekHex, secret, scriptPath };
  }

  it('an output printed before SIGKILL is recorded as consumed after reopen', async () => {
    const { dir, kekHex, secret, scriptPath } = await setup();
    const digest = rand(32);
    const child = spawnSync(
      process.execPath,
      [scriptPath, join(dir, 'db'), kekHex, 'key1/n1', Buffer.from(digest).toString('hex'), 'release'],
      { encoding: 'utf8' },
    );
    expect(child.signal, child.stderr).toBe('SIGKILL');
    const printed = /^output ([0-9a-f]{64})$/m.exec(child.stdout)?.[1];
    expect(printed, child.stdout + child.stderr).toBeDefined();
    const expected = createHash('sha256').update(secret).update(digest).digest('hex');
    expect(printed).toBe(expected);

    const store = await SealedStore.open(join(dir, 'db'), loadKek({ hex: kekHex }));
    try {
      const l = new NonceLedger(store);
      const st = await l.status('key1/n1');
      expect(st.state).toBe('consumed');
      if (st.state !== 'consumed') return;
      expect(Buffer.from(st.output).toString('hex')).toBe(printed);
      expect(st.requestDigest).toEqual(digest);
      await rejectsWithCode(
        l.consume('key1/n1', rand(32), () => rand(32)),
        'NONCE_REUSED',
      );
    } finally {
      await store.close();
    }
  });

  it('a crash inside produce (before release) leaves the nonce fresh', async () => {
    const { dir, kekHex, scriptPath } = await setup();
    const child = spawnSync(
      process.execPath,
      [scriptPath, join(dir, 'db'), kekHex, 'key1/n1', Buffer.from(rand(32)).toString('hex'), 'crash-in-produce'],
      { encoding: 'utf8' },
    );
    expect(child.signal, child.stderr).toBe('SIGKILL');
    expect(child.stdout).toBe('producing\n');
    const store = await SealedStore.open(join(dir, 'db'), loadKek({ hex: kekHex }));
    try {
      const l = new NonceLedger(store);
      expect(await l.status('key1/n1')).toEqual({ state: 'fresh' });
      expect(await l.consume('key1/n1', rand(32), () => Uint8Array.of(9))).toEqual(Uint8Array.of(9));
    } finally {
      await store.close();
    }
  });

  // Proof that the synced write reaches the kernel as fdatasync/fsync between computing the
  // output and releasing it. Needs strace, which scripts/test-deps.sh installs (CI runs it); a
  // machine without it fails this test loudly rather than skipping it.
  it('strace: fdatasync happens after produce and before the output is released', async () => {
    try {
      execFileSync('strace', ['-o', '/dev/null', 'true'], { stdio: 'ignore' });
    } catch {
      throw new Error(
        'strace is not available: run `sudo bash scripts/test-deps.sh` (installs the Debian packages the tests need)',
      );
    }
    const { dir, kekHex, scriptPath } = await setup();
    const trace = join(dir, 'trace.txt');
    const child = spawnSync(
      'strace',
      [
        '-f',
        '-e',
        'trace=write,fsync,fdatasync',
        '-o',
        trace,
        process.execPath,
        scriptPath,
        join(dir, 'db'),
        kekHex,
        'key1/n1',
        Buffer.from(rand(32)).toString('hex'),
        'release',
      ],
      { encoding: 'utf8' },
    );
    expect(child.stdout).toMatch(/^output [0-9a-f]{64}$/m);
    const lines = readFileSync(trace, 'utf8').split('\n');
    const produced = lines.findIndex((l) => /write\(2, "produced/.test(l));
    const released = lines.findIndex((l) => /write\(1, "output /.test(l));
    expect(produced).toBeGreaterThanOrEqual(0);
    expect(released).toBeGreaterThan(produced);
    const syncs = lines.slice(produced, released).filter((l) => /\b(fdatasync|fsync)\(/.test(l));
    expect(syncs.length, 'no fsync between produce and release').toBeGreaterThanOrEqual(1);
  });
});

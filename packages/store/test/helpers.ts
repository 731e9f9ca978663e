/** Shared test helpers: temp dirs, KEKs, raw access beneath the sealing layer. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Level } from 'level';
import {
  type BatchOp,
  type IterateOptions,
  kekFromBytes,
  type LocalKek,
  type SealedKV,
  type WriteOptions,
} from '../src/index.js';

const dirs: string[] = [];

/** A fresh temp directory, removed by {@link cleanupDirs}. */
export function tempDir(label = 'store'): string {
  const d = mkdtempSync(join(tmpdir(), `tessera-${label}-`));
  dirs.push(d);
  return d;
}

/** Remove every directory made by {@link tempDir}. */
export function cleanupDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** A random local KEK. */
export function randomKek(): LocalKek {
  return kekFromBytes(new Uint8Array(randomBytes(32)));
}

/** Collect an async iterable. */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Open the LevelDB directory directly (the store must be closed), run `fn`, close. */
export async function withRawDb<T>(dir: string, fn: (db: Level<string, Uint8Array>) => Promise<T>): Promise<T> {
  const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.open();
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** The concatenated bytes of every file under `dir` (recursively). */
export function rawFiles(dir: string): { name: string; bytes: Buffer }[] {
  const out: { name: string; bytes: Buffer }[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...rawFiles(p));
    else out.push({ name: p, bytes: readFileSync(p) });
  }
  return out;
}

/** Names of raw files under `dir` containing `needle` (as bytes). */
export function filesContaining(dir: string, needle: Uint8Array | string): string[] {
  const n = typeof needle === 'string' ? Buffer.from(needle, 'utf8') : Buffer.from(needle);
  return rawFiles(dir)
    .filter((f) => f.bytes.includes(n))
    .map((f) => f.name);
}

/** Hex of bytes. */
export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Random bytes as a Uint8Array. */
export function rand(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}

/** Expect a promise to reject with a StoreError of `code`; returns the error. */
export async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<Error & { code: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as Error & { code?: unknown };
    if (err.code !== code) throw new Error(`expected code ${code}, got ${String(err.code)}: ${err.message}`);
    return err as Error & { code: string };
  }
  throw new Error(`expected rejection with ${code}, but it resolved`);
}

/** A pass-through SealedKV over a real store (not a mock: every call goes to LevelDB); tests override what they record. */
export class ForwardingStore implements SealedKV {
  constructor(readonly inner: SealedKV) {}
  get(key: string) {
    return this.inner.get(key);
  }
  put(key: string, value: Uint8Array, opts?: WriteOptions) {
    return this.inner.put(key, value, opts);
  }
  del(key: string, opts?: WriteOptions) {
    return this.inner.del(key, opts);
  }
  batch(ops: readonly BatchOp[], opts?: WriteOptions) {
    return this.inner.batch(ops, opts);
  }
  iterate(prefix: string, opts?: IterateOptions) {
    return this.inner.iterate(prefix, opts);
  }
  keys(prefix: string, opts?: IterateOptions) {
    return this.inner.keys(prefix, opts);
  }
  close() {
    return this.inner.close();
  }
}

/** `inner` with its batches going through `hook` (which decides whether and how they reach `inner`). */
export function withBatchHook(
  inner: SealedKV,
  hook: (ops: readonly BatchOp[], opts: WriteOptions | undefined, inner: SealedKV) => Promise<void>,
): SealedKV {
  return new (class extends ForwardingStore {
    override batch(ops: readonly BatchOp[], opts?: WriteOptions) {
      return hook(ops, opts, this.inner);
    }
  })(inner);
}

/**
 * NonceLedger — one-time signing nonces and the record of how each was used.
 *
 * A signing nonce must never sign two different messages: that reveals the signing share. The
 * ledger enforces it: {@link NonceLedger.consume} computes the output with the secret, replaces
 * the record by `{consumed, requestDigest, output}` in ONE synced write (the secret is erased
 * from the live record), and only then releases the output. A crash before the write leaves the
 * nonce fresh and the output unreleased; after it, only identical retries get the output.
 *
 * NEVER restore a nonce ledger from a backup (or copy one between nodes): a restored ledger
 * shows consumed nonces as fresh again, which is exactly the reuse this ledger exists to prevent.
 * After a restore, discard every fresh nonce and generate new ones.
 *
 * Layout: `nonce/<nonceId>`. Exclusion is per process (a per-id mutex); LevelDB's directory lock
 * keeps other processes out of the store.
 */
import { equalBytes } from '@noble/ciphers/utils.js';
import { decodeRecord, encodeRecord } from './codec.js';
import { copyBytes, requireBytes, requireId, wipe } from './bytes.js';
import { StoreError } from './errors.js';
import { KeyedMutex } from './mutex.js';
import type { BatchOp, SealedKV } from './types.js';

/** Key prefix of the ledger. */
export const NONCE_PREFIX = 'nonce/';
const TAG_FRESH = 0x46; // 'F'
const TAG_CONSUMED = 0x43; // 'C'

/** What the ledger knows about a nonce (never the secret). */
export type NonceStatus =
  | { state: 'unknown' }
  | { state: 'fresh'; meta?: Uint8Array }
  | { state: 'consumed'; requestDigest: Uint8Array; output: Uint8Array; meta?: Uint8Array };

/** A consumed nonce, as listed by {@link NonceLedger.listConsumed}. */
export interface ConsumedNonce {
  nonceId: string;
  requestDigest: Uint8Array;
  output: Uint8Array;
  meta?: Uint8Array;
}

type Decoded =
  | { state: 'fresh'; secret: Uint8Array; meta?: Uint8Array }
  | { state: 'consumed'; requestDigest: Uint8Array; output: Uint8Array; meta?: Uint8Array };

/** Hooks of {@link NonceLedger.consume} for a caller that records more with the consumption. */
export interface ConsumeOptions {
  /**
   * Runs on the fresh path, under the nonce's lock, before `produce`, with the record's meta: a
   * last check (or a limit to count) that refuses by throwing, and the nonce stays fresh.
   */
  readonly beforeProduce?: (meta: Uint8Array | undefined) => void | Promise<void>;
  /**
   * Writes the consumed record instead of the ledger's own synced put: it receives the ledger's
   * operations and MUST apply them, with its own, in ONE synced batch of the same store before it
   * resolves (e.g. an audit entry, written atomically with the consumption). If it throws the
   * nonce stays fresh and nothing is released.
   */
  readonly commit?: (ops: readonly BatchOp[]) => Promise<void>;
}

/** The nonce ledger over a {@link SealedKV}. */
export class NonceLedger {
  readonly #store: SealedKV;
  readonly #mutex = new KeyedMutex();
  /**
   * Fresh-nonce counts per prefix asked of {@link countFresh}: scanned once, then kept up to
   * date by this ledger's own writes (consumed records stay in the ledger forever, so a scan per
   * call would grow with the node's whole signing history).
   */
  readonly #freshCounts = new Map<string, number>();
  /** First scans of a prefix in progress, each recording the ledger's writes meanwhile. */
  readonly #scans = new Set<{ nonceId: string; delta: number }[]>();

  constructor(store: SealedKV) {
    this.#store = store;
  }

  /**
   * Record a fresh nonce (synced). `meta` is optional non-secret context kept for audits (e.g.
   * key id, creation time). An id already in the ledger — fresh or consumed — is refused with
   * `NONCE_EXISTS`: a consumed record is never replaced.
   */
  async addFresh(nonceId: string, secret: Uint8Array, meta?: Uint8Array): Promise<void> {
    const key = nonceKey(nonceId);
    requireBytes(secret, 'nonce secret');
    if (secret.length === 0) throw new StoreError('INVALID_ARGUMENT', 'nonce secret must not be empty');
    if (meta !== undefined) requireBytes(meta, 'nonce meta');
    await this.#mutex.run(key, async () => {
      if ((await this.#store.get(key)) !== undefined) {
        throw new StoreError('NONCE_EXISTS', `nonce ${nonceId} is already in the ledger`);
      }
      const record = encodeRecord(TAG_FRESH, meta === undefined ? [secret] : [secret, meta]);
      try {
        await this.#store.put(key, record, { sync: true });
      } finally {
        wipe(record);
      }
      this.#adjust(nonceId, +1);
    });
  }

  /**
   * Record many fresh nonces in ONE synced write (all or none): what {@link addFresh} does for
   * each, with one fsync for the batch instead of one per nonce. Ids must be distinct; an id
   * already in the ledger refuses the whole batch with `NONCE_EXISTS`.
   */
  async addFreshMany(entries: readonly { nonceId: string; secret: Uint8Array; meta?: Uint8Array }[]): Promise<void> {
    if (!Array.isArray(entries)) throw new StoreError('INVALID_ARGUMENT', 'entries must be an array');
    const keys = entries.map((e) => {
      requireBytes(e.secret, 'nonce secret');
      if (e.secret.length === 0) throw new StoreError('INVALID_ARGUMENT', 'nonce secret must not be empty');
      if (e.meta !== undefined) requireBytes(e.meta, 'nonce meta');
      return nonceKey(e.nonceId);
    });
    if (new Set(keys).size !== keys.length)
      throw new StoreError('INVALID_ARGUMENT', 'nonce ids in a batch must be distinct');
    if (keys.length === 0) return;
    // Hold every id's lock (in sorted order: no deadlock with other multi-id holders).
    const sorted = [...keys].sort();
    const locked = async (i: number): Promise<void> => {
      if (i < sorted.length) return this.#mutex.run(sorted[i] as string, () => locked(i + 1));
      for (const [i, key] of keys.entries())
        if ((await this.#store.get(key)) !== undefined)
          throw new StoreError('NONCE_EXISTS', `nonce ${entries[i]?.nonceId} is already in the ledger`);
      const records = entries.map((e) =>
        encodeRecord(TAG_FRESH, e.meta === undefined ? [e.secret] : [e.secret, e.meta]),
      );
      try {
        await this.#store.batch(
          keys.map((key, i) => ({ type: 'put' as const, key, value: records[i] as Uint8Array })),
          { sync: true },
        );
      } finally {
        for (const r of records) wipe(r);
      }
      for (const e of entries) this.#adjust(e.nonceId, +1);
    };
    await locked(0);
  }

  /**
   * Use nonce `nonceId` for the request whose digest is `requestDigest` (a collision-resistant
   * digest of the full request, e.g. SHA-256).
   *
   * - fresh: calls `produce(secret)`, then replaces the record by `{consumed, requestDigest,
   *   output}` in one synced write, then returns the output. If `produce` throws or the write
   *   fails, the nonce stays fresh and nothing is released. The secret passed to `produce` is a
   *   copy that is wiped once `produce` settles; `produce` must not release the output itself.
   * - consumed with an equal digest: returns the recorded output (`produce` is not called).
   * - consumed with another digest: `NONCE_REUSED`, nothing changes.
   * - unknown: `NONCE_UNKNOWN`.
   *
   * Calls for the same id serialise, so two different requests can never both succeed.
   */
  async consume(
    nonceId: string,
    requestDigest: Uint8Array,
    produce: (secret: Uint8Array, meta: Uint8Array | undefined) => Uint8Array | Promise<Uint8Array>,
    opts: ConsumeOptions = {},
  ): Promise<Uint8Array> {
    const key = nonceKey(nonceId);
    requireBytes(requestDigest, 'request digest');
    if (requestDigest.length === 0) throw new StoreError('INVALID_ARGUMENT', 'request digest must not be empty');
    if (typeof produce !== 'function') throw new StoreError('INVALID_ARGUMENT', 'produce must be a function');
    const digest = copyBytes(requestDigest);
    return this.#mutex.run(key, async () => {
      const rec = await this.#read(key, nonceId);
      if (rec === undefined) throw new StoreError('NONCE_UNKNOWN', `nonce ${nonceId} is not in the ledger`);
      if (rec.state === 'consumed') {
        if (equalBytes(rec.requestDigest, digest)) return rec.output;
        throw new StoreError('NONCE_REUSED', `nonce ${nonceId} was already consumed for a different request`);
      }
      let output: Uint8Array;
      try {
        await opts.beforeProduce?.(rec.meta);
        const produced = await produce(rec.secret, rec.meta);
        requireBytes(produced, 'produce() result');
        output = copyBytes(produced);
      } finally {
        wipe(rec.secret);
      }
      const fields = rec.meta === undefined ? [digest, output] : [digest, output, rec.meta];
      const value = encodeRecord(TAG_CONSUMED, fields);
      if (opts.commit) await opts.commit([{ type: 'put', key, value }]);
      else await this.#store.put(key, value, { sync: true });
      this.#adjust(nonceId, -1);
      return copyBytes(output);
    });
  }

  /** The state of `nonceId` (never its secret). */
  async status(nonceId: string): Promise<NonceStatus> {
    const rec = await this.#read(nonceKey(nonceId), nonceId);
    if (rec === undefined) return { state: 'unknown' };
    if (rec.state === 'consumed') return rec;
    wipe(rec.secret);
    return rec.meta === undefined ? { state: 'fresh' } : { state: 'fresh', meta: rec.meta };
  }

  /**
   * Number of fresh nonces whose id starts with `prefix` (default: all). The first call for a
   * prefix scans; later ones are answered from a count this ledger keeps as it writes (it is the
   * store's only writer of nonce records: LevelDB's lock keeps other processes out).
   */
  async countFresh(prefix = ''): Promise<number> {
    const known = this.#freshCounts.get(prefix);
    if (known !== undefined) return known;
    // Writes that land while the scan runs are recorded here and reconciled with it below.
    const during: { nonceId: string; delta: number }[] = [];
    this.#scans.add(during);
    let n = 0;
    const seen = new Set<string>();
    try {
      for await (const [key, value] of this.#store.iterate(NONCE_PREFIX + prefix)) {
        const rec = decode(value, key);
        if (rec.state === 'fresh') {
          n++;
          seen.add(key.slice(NONCE_PREFIX.length));
          wipe(rec.secret);
        }
      }
    } finally {
      this.#scans.delete(during);
    }
    // A write during the scan may or may not be in the scan's snapshot (this relies on a write's
    // #adjust running as its promise settles, before anything else observes it). For each nonce written
    // meanwhile, its last write says whether it is fresh now (an add: yes; a consumption or a
    // discard: no), whatever the scan saw of it.
    const last = new Map<string, number>();
    for (const w of during) if (w.nonceId.startsWith(prefix)) last.set(w.nonceId, w.delta);
    for (const [id, delta] of last) n += (delta > 0 ? 1 : 0) - (seen.has(id) ? 1 : 0);
    if (!this.#freshCounts.has(prefix)) this.#freshCounts.set(prefix, n);
    return this.#freshCounts.get(prefix) as number;
  }

  /** Keeps the fresh counts in step with a write this ledger made (after it succeeded). */
  #adjust(nonceId: string, delta: number): void {
    // The prefixes of this id that have a count (one lookup per id length, not one per count:
    // a node asks for a count per key, and may hold many keys).
    for (let i = 0; i <= nonceId.length; i++) {
      const prefix = nonceId.slice(0, i);
      const n = this.#freshCounts.get(prefix);
      if (n !== undefined) this.#freshCounts.set(prefix, n + delta);
    }
    for (const scan of this.#scans) scan.push({ nonceId, delta });
  }

  /** Every consumed nonce whose id starts with `prefix`, in id order (for audits and tests). */
  async listConsumed(prefix = ''): Promise<ConsumedNonce[]> {
    const out: ConsumedNonce[] = [];
    for await (const [key, value] of this.#store.iterate(NONCE_PREFIX + prefix)) {
      const rec = decode(value, key);
      if (rec.state === 'fresh') {
        wipe(rec.secret);
        continue;
      }
      const nonceId = key.slice(NONCE_PREFIX.length);
      const { requestDigest, output, meta } = rec;
      out.push(meta === undefined ? { nonceId, requestDigest, output } : { nonceId, requestDigest, output, meta });
    }
    return out;
  }

  /**
   * Delete a fresh (unused) nonce, e.g. on expiry (synced). Returns `true` if a fresh nonce was
   * discarded; `false` if the id is unknown or consumed (consumed records are kept, so that a
   * replayed request still meets `NONCE_REUSED` rather than `NONCE_UNKNOWN`).
   */
  async discard(nonceId: string): Promise<boolean> {
    const key = nonceKey(nonceId);
    return this.#mutex.run(key, async () => {
      const rec = await this.#read(key, nonceId);
      if (rec?.state !== 'fresh') return false;
      wipe(rec.secret);
      await this.#store.del(key, { sync: true });
      this.#adjust(nonceId, -1);
      return true;
    });
  }

  /**
   * Compact the ledger's key range, if the backend supports it, so that LevelDB drops earlier
   * versions of records (the sealed secrets of consumed or discarded nonces) from its files.
   */
  async purge(): Promise<void> {
    await this.#store.compact?.(NONCE_PREFIX);
  }

  async #read(key: string, nonceId: string): Promise<Decoded | undefined> {
    const value = await this.#store.get(key);
    return value === undefined ? undefined : decode(value, NONCE_PREFIX + nonceId);
  }
}

function nonceKey(nonceId: string): string {
  requireId(nonceId, 'nonce id');
  return NONCE_PREFIX + nonceId;
}

function decode(value: Uint8Array, key: string): Decoded {
  const rec = decodeRecord(value);
  wipe(value);
  const f = rec?.fields ?? [];
  if (rec?.tag === TAG_FRESH && (f.length === 1 || f.length === 2) && f[0] !== undefined && f[0].length > 0) {
    return f[1] === undefined ? { state: 'fresh', secret: f[0] } : { state: 'fresh', secret: f[0], meta: f[1] };
  }
  if (rec?.tag === TAG_CONSUMED && (f.length === 2 || f.length === 3) && f[0] !== undefined && f[1] !== undefined) {
    const base = { state: 'consumed' as const, requestDigest: f[0], output: f[1] };
    return f[2] === undefined ? base : { ...base, meta: f[2] };
  }
  for (const field of f) wipe(field);
  throw new StoreError('STORE_CORRUPT', `nonce ledger record ${key} is malformed`);
}

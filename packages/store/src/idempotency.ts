/**
 * IdempotencyCache — the response of each completed request, kept for a TTL so that a retried
 * request gets the same answer instead of being executed twice. Expired entries read as absent
 * and are removed by {@link IdempotencyCache.sweep}. Layout: `idem/<requestId>` →
 * `expiresAt (u64 ms) || response`, sealed like every value.
 */
import { decodeRecord, encodeRecord, readU64, u64 } from './codec.js';
import { requireBytes, requireId } from './bytes.js';
import { StoreError } from './errors.js';
import type { SealedKV, WriteOptions } from './types.js';

/** Key prefix of the cache. */
export const IDEMPOTENCY_PREFIX = 'idem/';
const TAG = 0x49; // 'I'

/** The idempotency cache over a {@link SealedKV}. */
export class IdempotencyCache {
  readonly #store: SealedKV;

  constructor(store: SealedKV) {
    this.#store = store;
  }

  /** The cached response of `requestId`, or `undefined` if absent or expired at `now` (ms). */
  async get(requestId: string, now: number = Date.now()): Promise<Uint8Array | undefined> {
    requireTime(now, 'now');
    const key = idemKey(requestId);
    const value = await this.#store.get(key);
    if (value === undefined) return undefined;
    const entry = decode(value, key);
    return entry.expiresAt > now ? entry.response : undefined;
  }

  /**
   * Cache `response` for `requestId` until `now + ttlMs` (replacing any earlier entry). Synced
   * by default, so a response that was sent survives power loss; pass `{sync: false}` to trade
   * that for speed.
   */
  async put(
    requestId: string,
    response: Uint8Array,
    ttlMs: number,
    now: number = Date.now(),
    opts: WriteOptions = {},
  ): Promise<void> {
    const key = idemKey(requestId);
    requireBytes(response, 'response');
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
      throw new StoreError('INVALID_ARGUMENT', 'ttlMs must be a positive integer');
    }
    requireTime(now, 'now');
    const expiresAt = Math.min(now + ttlMs, Number.MAX_SAFE_INTEGER);
    await this.#store.put(key, encodeRecord(TAG, [u64(expiresAt), response]), { sync: opts.sync ?? true });
  }

  /** Delete every entry expired at `now` (ms); returns how many were removed. */
  async sweep(now: number = Date.now()): Promise<number> {
    requireTime(now, 'now');
    const expired: string[] = [];
    for await (const [key, value] of this.#store.iterate(IDEMPOTENCY_PREFIX)) {
      if (decode(value, key).expiresAt <= now) expired.push(key);
    }
    for (let i = 0; i < expired.length; i += 1000) {
      await this.#store.batch(expired.slice(i, i + 1000).map((key) => ({ type: 'del' as const, key })));
    }
    return expired.length;
  }
}

function idemKey(requestId: string): string {
  requireId(requestId, 'request id');
  return IDEMPOTENCY_PREFIX + requestId;
}

function requireTime(t: number, what: string): void {
  if (!Number.isSafeInteger(t) || t < 0)
    throw new StoreError('INVALID_ARGUMENT', `${what} must be a non-negative integer (ms)`);
}

function decode(value: Uint8Array, key: string): { expiresAt: number; response: Uint8Array } {
  const rec = decodeRecord(value);
  const expiresAt = readU64(rec?.fields[0]);
  const response = rec?.fields[1];
  if (rec?.tag !== TAG || rec.fields.length !== 2 || expiresAt === undefined || response === undefined) {
    throw new StoreError('STORE_CORRUPT', `idempotency record ${key} is malformed`);
  }
  return { expiresAt, response };
}

/**
 * Bounded per-client state of the device gateway: token buckets (rate limits per device id and
 * per remote address) and the ledger of used call nonces. Each holds at most a fixed number of
 * entries; what no longer matters (a refilled bucket, an expired nonce) is evicted, and beyond
 * the cap the caller refuses the request instead of growing.
 */

/** A rate: `perSecond` sustained, up to `burst` at once. */
export interface RateLimit {
  perSecond: number;
  burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** A full map is swept for evictable entries at most this often (a sweep is O(entries)). */
const SWEEP_WHEN_FULL_MS = 1_000;

/** One token bucket per client key, at most `maxEntries` of them. */
export class ClientBuckets {
  readonly #buckets = new Map<string, Bucket>();
  #lastFullSweep = -Infinity;

  constructor(
    private readonly limit: RateLimit,
    private readonly maxEntries: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(limit.perSecond > 0) || !(limit.burst >= 1))
      throw new RangeError('a rate limit needs perSecond > 0 and burst >= 1');
  }

  #tokens(b: Bucket, t: number): number {
    return Math.min(this.limit.burst, b.tokens + ((t - b.at) / 1000) * this.limit.perSecond);
  }

  /** Whether `key` has a token left (nothing is taken or stored). */
  allows(key: string): boolean {
    const b = this.#buckets.get(key);
    return !b || this.#tokens(b, this.now()) >= 1;
  }

  /**
   * Takes one token of `key`: 'ok', 'limited' (none left), or 'full' (a new key, and every one
   * of the `maxEntries` tracked keys still has a partly drained bucket).
   */
  take(key: string): 'ok' | 'limited' | 'full' {
    const t = this.now();
    let b = this.#buckets.get(key);
    if (!b) {
      if (this.#buckets.size >= this.maxEntries && t - this.#lastFullSweep >= SWEEP_WHEN_FULL_MS) {
        this.#lastFullSweep = t;
        this.sweep();
      }
      if (this.#buckets.size >= this.maxEntries) return 'full';
      b = { tokens: this.limit.burst, at: t };
      this.#buckets.set(key, b);
    }
    const tokens = this.#tokens(b, t);
    if (tokens < 1) return 'limited';
    b.tokens = tokens - 1;
    b.at = t;
    return 'ok';
  }

  /** Seconds until `key` has a token again (for Retry-After). */
  retryAfterSeconds(key: string): number {
    const b = this.#buckets.get(key);
    if (!b) return 0;
    return Math.max(1, Math.ceil((1 - this.#tokens(b, this.now())) / this.limit.perSecond));
  }

  /** Drops the buckets that have refilled (they hold nothing a fresh bucket would not). */
  sweep(): void {
    const t = this.now();
    for (const [k, b] of this.#buckets) if (this.#tokens(b, t) >= this.limit.burst) this.#buckets.delete(k);
  }

  get size(): number {
    return this.#buckets.size;
  }
}

/**
 * Nonces of accepted calls, each until it expires, at most `maxEntries` (counting slots
 * reserved by calls still in progress).
 */
export class ReplayLedger {
  readonly #seen = new Map<string, number>();
  #reserved = 0;
  #lastFullSweep = -Infinity;

  constructor(private readonly maxEntries: number) {}

  has(key: string): boolean {
    return this.#seen.has(key);
  }

  /** Reserves room for one nonce (evicting expired ones if needed); false if there is none. */
  reserve(now: number): boolean {
    if (
      this.#seen.size + this.#reserved >= this.maxEntries &&
      Math.abs(now - this.#lastFullSweep) >= SWEEP_WHEN_FULL_MS
    ) {
      this.#lastFullSweep = now;
      this.sweep(now);
    }
    if (this.#seen.size + this.#reserved >= this.maxEntries) return false;
    this.#reserved++;
    return true;
  }

  /** Fills a reserved slot. */
  commit(key: string, expiresAt: number): void {
    this.#reserved = Math.max(0, this.#reserved - 1);
    this.#seen.set(key, expiresAt);
  }

  /** Gives back a reserved slot unused. */
  release(): void {
    this.#reserved = Math.max(0, this.#reserved - 1);
  }

  sweep(now: number): void {
    for (const [k, exp] of this.#seen) if (exp < now) this.#seen.delete(k);
  }

  get size(): number {
    return this.#seen.size;
  }
}

/**
 * ShareVault — secret-share records per key id and epoch (a refresh or reshare starts a new
 * epoch). Records are opaque bytes to the store; the sealing layer encrypts them. All writes are
 * synced. Layout: `vault/<keyId>/<epoch as 16 decimal digits>` (fixed width, so key order is
 * epoch order).
 */
import { equalBytes } from '@noble/ciphers/utils.js';
import { requireBytes, requireId } from './bytes.js';
import { StoreError } from './errors.js';
import { KeyedMutex } from './mutex.js';
import type { SealedKV } from './types.js';

/** Key prefix of the vault. */
export const VAULT_PREFIX = 'vault/';
const EPOCH_DIGITS = 16;
const KEY_ID = /^[A-Za-z0-9._:@+=-]{1,256}$/;

/** The share vault over a {@link SealedKV}. */
export class ShareVault {
  readonly #store: SealedKV;
  readonly #mutex = new KeyedMutex();

  constructor(store: SealedKV) {
    this.#store = store;
  }

  /**
   * Store the share record of `keyId` at `epoch` (synced). Storing the same bytes again is a
   * no-op; a different record for an existing epoch is refused with `SHARE_EXISTS` (a share is
   * never silently replaced — {@link dropEpoch} first if that is really meant).
   */
  async putShare(keyId: string, epoch: number, record: Uint8Array): Promise<void> {
    const key = shareKey(keyId, epoch);
    requireBytes(record, 'share record');
    await this.#mutex.run(key, async () => {
      const existing = await this.#store.get(key);
      if (existing !== undefined) {
        if (equalBytes(existing, record)) return;
        throw new StoreError('SHARE_EXISTS', `vault already holds a different share for ${keyId} epoch ${epoch}`);
      }
      await this.#store.put(key, record, { sync: true });
    });
  }

  /**
   * The batch operation that stores `record` as `keyId` at `epoch`, for a caller that must write
   * it atomically with other records (one synced batch). Refuses, like {@link putShare}, a
   * different record for an existing epoch; `undefined` if the same bytes are already stored.
   */
  async putShareOp(
    keyId: string,
    epoch: number,
    record: Uint8Array,
  ): Promise<{ type: 'put'; key: string; value: Uint8Array } | undefined> {
    const key = shareKey(keyId, epoch);
    requireBytes(record, 'share record');
    const existing = await this.#store.get(key);
    if (existing !== undefined) {
      if (equalBytes(existing, record)) return undefined;
      throw new StoreError('SHARE_EXISTS', `vault already holds a different share for ${keyId} epoch ${epoch}`);
    }
    return { type: 'put', key, value: record };
  }

  /**
   * Bulk import of share records in one atomic batch, synced once (migrations, benchmarks). No
   * existing record is replaced: any id/epoch already present is refused before anything is written.
   */
  async importShares(entries: readonly { keyId: string; epoch: number; record: Uint8Array }[]): Promise<void> {
    const ops = entries.map((e) => {
      requireBytes(e.record, 'share record');
      return { type: 'put' as const, key: shareKey(e.keyId, e.epoch), value: e.record };
    });
    for (const o of ops)
      if ((await this.#store.get(o.key)) !== undefined)
        throw new StoreError('SHARE_EXISTS', `vault already holds ${o.key.slice(VAULT_PREFIX.length)}`);
    await this.#store.batch(ops, { sync: true });
  }

  /** The share record of `keyId` at `epoch`, or `undefined`. */
  async getShare(keyId: string, epoch: number): Promise<Uint8Array | undefined> {
    return this.#store.get(shareKey(keyId, epoch));
  }

  /** The highest epoch stored for `keyId`, or `undefined` if none. */
  async latestEpoch(keyId: string): Promise<number | undefined> {
    for await (const key of this.#store.keys(epochPrefix(keyId), { reverse: true, limit: 1 })) {
      return parseEpoch(key);
    }
    return undefined;
  }

  /** Every key id with at least one stored epoch, sorted (key ids are ASCII). */
  async listKeys(): Promise<string[]> {
    const ids = new Set<string>();
    for await (const key of this.#store.keys(VAULT_PREFIX)) {
      ids.add(key.slice(VAULT_PREFIX.length, key.lastIndexOf('/')));
    }
    // Store order is by `<id>/`, which differs from id order ('k1.x/' sorts before 'k1/').
    return [...ids].sort();
  }

  /** The stored epochs of `keyId`, ascending. */
  async listEpochs(keyId: string): Promise<number[]> {
    const epochs: number[] = [];
    for await (const key of this.#store.keys(epochPrefix(keyId))) epochs.push(parseEpoch(key));
    return epochs;
  }

  /** Delete the share of `keyId` at `epoch` (synced). No error if absent. */
  async dropEpoch(keyId: string, epoch: number): Promise<void> {
    const key = shareKey(keyId, epoch);
    await this.#mutex.run(key, () => this.#store.del(key, { sync: true }));
  }
}

function epochPrefix(keyId: string): string {
  requireId(keyId, 'key id');
  if (!KEY_ID.test(keyId)) {
    throw new StoreError('INVALID_ARGUMENT', 'key id must be 1-256 characters of A-Z a-z 0-9 . _ : @ + = -');
  }
  return `${VAULT_PREFIX}${keyId}/`;
}

function shareKey(keyId: string, epoch: number): string {
  if (!Number.isSafeInteger(epoch) || epoch < 0) {
    throw new StoreError('INVALID_ARGUMENT', 'epoch must be a non-negative safe integer');
  }
  return epochPrefix(keyId) + String(epoch).padStart(EPOCH_DIGITS, '0');
}

function parseEpoch(key: string): number {
  const digits = key.slice(key.lastIndexOf('/') + 1);
  const n = Number(digits);
  if (digits.length !== EPOCH_DIGITS || !Number.isSafeInteger(n)) {
    throw new StoreError('STORE_CORRUPT', `vault key ${key} has no valid epoch`);
  }
  return n;
}

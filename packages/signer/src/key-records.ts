/**
 * A signer's key records: the latest epoch of each key (decoded once and cached), earlier epochs
 * still retained after a refresh or reshare (decoded on demand), and which epoch a sign request
 * may use. The caches drop when a commit changes a key's epoch.
 */
import { decodeKeyShareRecord, type KeyShareRecord } from '@tessera/core';
import type { ShareVault } from '@tessera/store';
import { SignerError } from './errors.js';
import type { SignerLifecycleStore } from './lifecycle-store.js';

export class KeyRecords {
  readonly #vault: ShareVault;
  readonly #lcStore: () => SignerLifecycleStore;
  readonly #keys = new Map<string, KeyShareRecord>();
  /** Retained earlier epochs, decoded on demand. */
  readonly #older = new Map<string, KeyShareRecord>();

  /** `lcStore` is read at use (the lifecycle store is built after, around these records). */
  constructor(vault: ShareVault, lcStore: () => SignerLifecycleStore) {
    this.#vault = vault;
    this.#lcStore = lcStore;
  }

  /** The latest record of a key (decoded once and cached). */
  async key(keyId: string): Promise<KeyShareRecord> {
    const cached = this.#keys.get(keyId);
    if (cached) return cached;
    const epoch = await this.#vault.latestEpoch(keyId);
    if (epoch === undefined) throw new SignerError('NOT_FOUND', `this node holds no share of key ${keyId}`);
    if ((await this.#lcStore().stored(keyId))?.left)
      throw new SignerError('NOT_FOUND', `this node left key ${keyId} in a reshare`);
    const bytes = await this.#vault.getShare(keyId, epoch);
    if (!bytes) throw new SignerError('NOT_FOUND', `this node holds no share of key ${keyId}`);
    const rec = decodeKeyShareRecord(bytes);
    bytes.fill(0);
    this.#keys.set(keyId, rec);
    return rec;
  }

  /** Caches a record just stored (a key generation's first epoch). */
  remember(rec: KeyShareRecord): void {
    this.#keys.set(rec.keyId, rec);
  }

  /** Drops the cached records of `keyId` (its epoch changed). */
  forget(keyId: string): void {
    this.#keys.delete(keyId);
    this.#forgetOlder(keyId);
  }

  #forgetOlder(keyId: string): void {
    for (const k of [...this.#older.keys()]) if (k.startsWith(`${keyId}@`)) this.#older.delete(k);
  }

  /**
   * The record of `keyId` at `epoch`: the active one, or an earlier epoch still retained after a
   * refresh or reshare (packages reserved before it still complete with it).
   */
  async keyAt(keyId: string, epoch: number): Promise<KeyShareRecord> {
    const active = await this.key(keyId);
    if (active.epoch === epoch) return active;
    // Earlier epochs are kept until enough members acknowledged the new one and the retention time passed.
    if (await this.#lcStore().prune(keyId)) this.#forgetOlder(keyId);
    const cacheKey = `${keyId}@${epoch}`;
    const cached = this.#older.get(cacheKey);
    if (cached) return cached;
    const bytes =
      Number.isSafeInteger(epoch) && epoch >= 0 && epoch < active.epoch
        ? await this.#vault.getShare(keyId, epoch)
        : undefined;
    if (!bytes)
      throw new SignerError(
        'RESERVATION_INVALID',
        `this node no longer holds key ${keyId} at epoch ${epoch} (now at ${active.epoch})`,
      );
    const rec = decodeKeyShareRecord(bytes);
    bytes.fill(0);
    this.#older.set(cacheKey, rec);
    return rec;
  }

  /**
   * The share a sign request at `epoch` uses: the active one, or an earlier epoch while the active
   * one is not yet retired (fewer than min(n', 2t'−1) members acknowledged it, so a quorum may
   * still be at the earlier epoch only: a coordinator that committed on some nodes and not on
   * others cannot make the key unusable). Once retired, only the active epoch signs.
   */
  async signingRecord(keyId: string, epoch: number): Promise<KeyShareRecord> {
    const active = await this.key(keyId);
    if (epoch === active.epoch) return active;
    const retired = (await this.#lcStore().stored(keyId))?.retired ?? false;
    if (epoch > active.epoch || retired)
      throw new SignerError('INVALID_ARGUMENT', `request is for epoch ${epoch}, this node holds epoch ${active.epoch}`);
    return this.keyAt(keyId, epoch).catch(() => {
      throw new SignerError('INVALID_ARGUMENT', `request is for epoch ${epoch}, this node holds epoch ${active.epoch}`);
    });
  }
}

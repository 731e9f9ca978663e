/**
 * The key registry: every key's current public record, kept encoded in memory (~1 KB each)
 * with its summary, plus a bounded cache of decoded records (most recently used), and which
 * keys each participant holds. 100,000 keys cost ~100 MB this way, not ~700 MB.
 */
import { decodeKeyRecord, encodeKeyRecord, type KeyRecord } from '@tessera/core';
import type { SealedKV } from '@tessera/store';
import { layout } from './layout.js';
import { CoordinatorError, keyInfo, type KeyInfo } from './types.js';

export class KeyRegistry {
  readonly #bytes = new Map<string, Uint8Array>();
  readonly #info = new Map<string, KeyInfo>();
  /** Participant id → ids of the keys whose current roster includes it. */
  readonly #byParticipant = new Map<string, Set<string>>();
  /** Decoded records, least recently used first (bounded by `cacheSize`). */
  readonly #decoded = new Map<string, KeyRecord>();
  readonly #cacheSize: number;

  constructor(
    private readonly store: SealedKV,
    cacheSize = 4096,
  ) {
    this.#cacheSize = Math.max(1, cacheSize);
  }

  /** Loads every stored key; `seen` is told each one (e.g. to learn its roster's ids). */
  async load(seen: (rec: KeyRecord) => void = () => {}): Promise<void> {
    for await (const [, v] of this.store.iterate(layout.keys)) {
      const rec = decodeKeyRecord(v);
      this.set(rec, v);
      seen(rec);
    }
  }

  /** Stores a new key at its first epoch (the record and its epoch copy, one synced batch) and registers it. */
  async add(rec: KeyRecord): Promise<void> {
    const bytes = encodeKeyRecord(rec);
    await this.store.batch(
      [
        { type: 'put', key: layout.key(rec.keyId), value: bytes },
        { type: 'put', key: layout.keyEpoch(rec.keyId, rec.epoch), value: bytes },
      ],
      { sync: true },
    );
    this.set(rec, bytes);
  }

  /** Registers `rec` as the current record of its key (memory only; the caller has stored it). */
  set(rec: KeyRecord, bytes: Uint8Array = encodeKeyRecord(rec)): void {
    for (const id of this.#info.get(rec.keyId)?.participants ?? []) {
      const set = this.#byParticipant.get(id);
      set?.delete(rec.keyId);
      if (set?.size === 0) this.#byParticipant.delete(id);
    }
    const info = keyInfo(rec);
    this.#bytes.set(rec.keyId, bytes);
    this.#info.set(rec.keyId, info);
    this.#decoded.delete(rec.keyId);
    for (const id of info.participants) {
      const set = this.#byParticipant.get(id) ?? new Set<string>();
      set.add(rec.keyId);
      this.#byParticipant.set(id, set);
    }
  }

  /** The current record of `keyId` (NOT_FOUND if unknown). */
  key(keyId: string): KeyRecord {
    const hit = this.#decoded.get(keyId);
    if (hit) {
      this.#decoded.delete(keyId); // most recently used goes last
      this.#decoded.set(keyId, hit);
      return hit;
    }
    const bytes = this.#bytes.get(keyId);
    if (!bytes) throw new CoordinatorError('NOT_FOUND', `no key ${keyId}`);
    const rec = decodeKeyRecord(bytes);
    this.#decoded.set(rec.keyId, rec);
    while (this.#decoded.size > this.#cacheSize) this.#decoded.delete(this.#decoded.keys().next().value as string);
    return rec;
  }

  /** The public record of `keyId` at `epoch`: the active one or a retained earlier epoch. */
  async keyAt(keyId: string, epoch: number): Promise<KeyRecord> {
    const active = this.key(keyId);
    if (active.epoch === epoch) return active;
    const b =
      Number.isSafeInteger(epoch) && epoch >= 0 ? await this.store.get(layout.keyEpoch(keyId, epoch)) : undefined;
    if (!b)
      throw new CoordinatorError(
        'RESERVATION_INVALID',
        `key ${keyId} is at epoch ${active.epoch}; epoch ${epoch} is no longer kept`,
      );
    return decodeKeyRecord(b);
  }

  /**
   * The current record's bytes, as an identity of its epoch: a commit replaces them, so work
   * begun before it (a commitment refill) can tell that it is stale.
   */
  generation(keyId: string): Uint8Array | undefined {
    return this.#bytes.get(keyId);
  }

  /** The summary of `keyId` (nothing decoded, the cache left alone). */
  summary(keyId: string): KeyInfo | undefined {
    return this.#info.get(keyId);
  }

  /** Every key's summary, oldest first. */
  keys(): KeyInfo[] {
    return [...this.#info.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Ids of the keys whose current roster includes `participant`. */
  keyIdsOf(participant: string): string[] {
    return [...(this.#byParticipant.get(participant) ?? [])];
  }

  /** Summaries of the keys whose current roster includes `participant`, oldest first. */
  keysOf(participant: string): KeyInfo[] {
    return this.keyIdsOf(participant)
      .map((id) => this.#info.get(id) as KeyInfo)
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Every participant in some key's current roster, sorted. */
  rosterParticipants(): string[] {
    return [...this.#byParticipant.keys()].sort();
  }

  /** Decoded records held in memory now (bounded by the cache size). */
  get cached(): number {
    return this.#decoded.size;
  }
}

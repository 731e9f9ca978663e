/**
 * The device's storage for refresh and reshare (core's `LifecycleStore`) over its sealed store:
 * `key/<id>` is the active share, `keyold/<id>/<epoch>` earlier epochs (kept while reservations
 * made at them may still complete), `lcpending/…` pending outcomes and `lcmeta/<id>` the
 * committed epoch. Activating deletes no share: the previous active one moves to `keyold/`.
 */
import {
  decodeKeyShareRecord,
  decodeOutcome,
  decodePendingOutcome,
  encodeKeyShareRecord,
  encodeOutcome,
  encodePendingOutcome,
  outcomeOf,
  pendingEpochPrefix,
  pendingPrefix,
  pendingRecordKey,
  type ActiveOutcome,
  type KeyShareRecord,
  type LifecycleStore,
  type PendingOutcome,
} from '@tessera/core';
import type { DeviceStorage } from './storage.js';

type Op = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string };

export class DeviceLifecycleStore implements LifecycleStore {
  constructor(
    private readonly store: DeviceStorage,
    private readonly clock: () => number,
  ) {}

  async active(keyId: string): Promise<KeyShareRecord | undefined> {
    const b = await this.store.get(`key/${keyId}`);
    return b ? decodeKeyShareRecord(b) : undefined;
  }

  async outcome(keyId: string): Promise<ActiveOutcome | undefined> {
    const raw = await this.store.get(`lcmeta/${keyId}`);
    if (raw) return decodeOutcome(raw);
    const rec = await this.active(keyId);
    return rec ? { epoch: rec.epoch, key: rec.key, transcriptHash: rec.transcriptHash, left: false } : undefined;
  }

  async pending(keyId: string, epoch: number): Promise<PendingOutcome[]> {
    const out: PendingOutcome[] = [];
    for await (const [, v] of this.store.entries(pendingEpochPrefix(keyId, epoch)))
      out.push(decodePendingOutcome(keyId, epoch, v));
    return out;
  }

  async putPending(keyId: string, p: PendingOutcome): Promise<void> {
    await this.store.put(pendingRecordKey(keyId, p), encodePendingOutcome(keyId, p));
  }

  async #pendingDeletes(keyId: string): Promise<Op[]> {
    const ops: Op[] = [];
    for await (const [k] of this.store.entries(pendingPrefix(keyId))) ops.push({ type: 'del', key: k });
    return ops;
  }

  async dropPending(keyId: string): Promise<void> {
    const ops = await this.#pendingDeletes(keyId);
    if (ops.length) await this.store.batch(ops);
  }

  async activate(keyId: string, p: PendingOutcome): Promise<void> {
    const held = await this.active(keyId);
    const ops: Op[] = await this.#pendingDeletes(keyId);
    if (held) ops.push({ type: 'put', key: `keyold/${keyId}/${held.epoch}`, value: encodeKeyShareRecord(held) });
    // Leaving the key (a reshare without this device): the share is kept as an earlier epoch.
    ops.push(
      p.share
        ? { type: 'put', key: `key/${keyId}`, value: encodeKeyShareRecord(p.share) }
        : { type: 'del', key: `key/${keyId}` },
    );
    ops.push({ type: 'put', key: `lcmeta/${keyId}`, value: encodeOutcome(keyId, outcomeOf(p, this.clock())) });
    await this.store.batch(ops);
  }

  async retire(keyId: string, epoch: number): Promise<void> {
    const raw = await this.store.get(`lcmeta/${keyId}`);
    if (!raw) return;
    const m = decodeOutcome(raw);
    if (m.epoch === epoch && !m.retired)
      await this.store.put(`lcmeta/${keyId}`, encodeOutcome(keyId, { ...m, retired: true }));
  }
}

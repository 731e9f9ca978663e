/**
 * A signer node's storage for refresh and reshare (core's `LifecycleStore`), over its sealed
 * LevelDB. Layout:
 * - `lcpending/<key>/<epoch 16 digits>/<session hash>`: a pending outcome (`PendingLifecycle`);
 * - `epochmeta/<key>`: the committed epoch (`LifecycleOutcome`): its public side, when it was
 *   activated, whether this node left the key, whether enough members acknowledged it;
 * - `revoked/<hex of device id>`: devices an operator authorisation revoked.
 * Nothing here deletes a share: older epochs go only in {@link SignerLifecycleStore.prune}, after
 * a retirement and the retention time.
 */
import {
  decodeOutcome,
  decodePendingOutcome,
  encodeKeyShareRecord,
  encodeOutcome,
  encodePendingOutcome,
  outcomeOf,
  pendingEpochPrefix,
  pendingPrefix,
  pendingRecordKey,
  toHex,
  utf8ToBytes,
  type ActiveOutcome,
  type KeyShareRecord,
  type LifecycleStore,
  type PendingOutcome,
  type StoredOutcome,
} from '@tessera/core';
import type { BatchOp, SealedKV, ShareVault } from '@tessera/store';

/** A device id as a record-key segment: hex, so no character of an id can act as a separator. */
export const deviceSegment = (device: string) => toHex(utf8ToBytes(device));
const outcomeKey = (keyId: string) => `epochmeta/${keyId}`;

export class SignerLifecycleStore implements LifecycleStore {
  constructor(
    private readonly store: SealedKV,
    private readonly vault: ShareVault,
    private readonly opts: {
      clock: () => number;
      retentionMs: () => number;
      /** Reads the active record (the engine's cache). */
      active: (keyId: string) => Promise<KeyShareRecord | undefined>;
      /** Called after the key's active epoch changed: caches drop, reservations of devices no longer in the roster go. */
      changed: (keyId: string, roster: readonly string[]) => Promise<void>;
    },
  ) {}

  active(keyId: string): Promise<KeyShareRecord | undefined> {
    return this.opts.active(keyId);
  }

  /** The committed epoch as recorded at its activation (absent for a key still at its DKG epoch). */
  async stored(keyId: string): Promise<StoredOutcome | undefined> {
    const raw = await this.store.get(outcomeKey(keyId));
    return raw ? decodeOutcome(raw) : undefined;
  }

  async outcome(keyId: string): Promise<ActiveOutcome | undefined> {
    const m = await this.stored(keyId);
    if (m) return m;
    const rec = await this.opts.active(keyId);
    return rec ? { epoch: rec.epoch, key: rec.key, transcriptHash: rec.transcriptHash, left: false } : undefined;
  }

  async pending(keyId: string, epoch: number): Promise<PendingOutcome[]> {
    const out: PendingOutcome[] = [];
    for await (const k of this.store.keys(pendingEpochPrefix(keyId, epoch))) {
      const raw = await this.store.get(k);
      if (raw) out.push(decodePendingOutcome(keyId, epoch, raw));
    }
    return out;
  }

  async putPending(keyId: string, p: PendingOutcome): Promise<void> {
    await this.store.put(pendingRecordKey(keyId, p), encodePendingOutcome(keyId, p), { sync: true });
  }

  async dropPending(keyId: string): Promise<void> {
    const ops: BatchOp[] = [];
    for await (const k of this.store.keys(pendingPrefix(keyId))) ops.push({ type: 'del', key: k });
    if (ops.length) await this.store.batch(ops, { sync: true });
  }

  async activate(keyId: string, p: PendingOutcome): Promise<void> {
    const epoch = p.public.epoch;
    // One synced batch: the new share, the outcome, the revocations and the end of the pending
    // records are on disk together or not at all (a crash in between cannot leave a new share
    // active without its revocations).
    const ops: BatchOp[] = [
      { type: 'put', key: outcomeKey(keyId), value: encodeOutcome(keyId, outcomeOf(p, this.opts.clock())) },
    ];
    const share = p.share ? await this.vault.putShareOp(keyId, epoch, encodeKeyShareRecord(p.share)) : undefined;
    if (share) ops.push(share);
    for await (const k of this.store.keys(pendingPrefix(keyId))) ops.push({ type: 'del', key: k });
    for (const d of p.revoke)
      ops.push({
        type: 'put',
        key: `revoked/${deviceSegment(d)}`,
        value: utf8ToBytes(JSON.stringify({ device: d, at: this.opts.clock(), keyId, epoch })),
      });
    await this.store.batch(ops, { sync: true });
    await this.opts.changed(keyId, p.share ? p.public.key.roster.map((r) => r.id) : []);
  }

  async retire(keyId: string, epoch: number): Promise<void> {
    const m = await this.stored(keyId);
    if (!m || m.epoch !== epoch || m.retired) return;
    await this.store.put(outcomeKey(keyId), encodeOutcome(keyId, { ...m, retired: true }), { sync: true });
  }

  /** Records devices an operator-approved revocation names (synced). */
  async recordRevocations(devices: readonly string[]): Promise<void> {
    const at = this.opts.clock();
    await this.store.batch(
      devices.map((d) => ({
        type: 'put' as const,
        key: `revoked/${deviceSegment(d)}`,
        value: utf8ToBytes(JSON.stringify({ device: d, at })),
      })),
      { sync: true },
    );
  }

  /** Whether an operator authorisation revoked `device` here. */
  async revoked(device: string): Promise<boolean> {
    return (await this.store.get(`revoked/${deviceSegment(device)}`)) !== undefined;
  }

  /**
   * Drops shares that are no longer needed: epochs before the committed one once it is retired
   * (at least t' members acknowledged it) and the retention time has passed since it was
   * activated; every epoch of a key this node left, likewise.
   */
  async prune(keyId: string): Promise<boolean> {
    const m = await this.stored(keyId);
    if (!m?.retired || this.opts.clock() <= m.activatedAt + this.opts.retentionMs()) return false;
    let dropped = false;
    for (const e of await this.vault.listEpochs(keyId))
      if (m.left || e < m.epoch) {
        await this.vault.dropEpoch(keyId, e);
        dropped = true;
      }
    return dropped;
  }
}

/**
 * What the device holds, read from its store: its key shares (the active epoch's, and an earlier
 * epoch's kept a while after a refresh), the unused reservations (offline allowance) of each key,
 * and the queue of packages.
 */
import { decodeKeyShareRecord, groupPublicKey, toHex, type KeyShareRecord, type SuiteId } from '@tessera/core';
import { DeviceError } from './errors.js';
import { EXPIRY_MARGIN_MS, type Slot } from './offline-sign.js';
import type { DeviceStorage } from './storage.js';
import type { QueuedPackage } from './sync.js';

export interface DeviceKeyInfo {
  keyId: string;
  suite: SuiteId;
  threshold: number;
  participants: string[];
  publicKey: string;
  epoch: number;
}

/** The reads of what a device holds (each reads the store anew). */
export interface Holdings {
  /** The ids of the keys the device holds a share of. */
  keyIds(): Promise<string[]>;
  /** The device's share of the key (NOT_FOUND if it holds none). */
  key(keyId: string): Promise<KeyShareRecord>;
  /** The key's share of an earlier epoch (kept a while after a refresh). */
  keyAt(keyId: string, epoch: number): Promise<KeyShareRecord>;
  /** Each key's epoch now. */
  epochs(): Promise<Map<string, number>>;
  /** The key's slots still usable for a new package (not within the expiry margin). */
  allowance(keyId: string): Promise<number>;
  /** When the key's first unexpired slot expires (null: none). */
  nextExpiry(keyId: string): Promise<number | null>;
  /** The queue, oldest first. */
  queue(): Promise<QueuedPackage[]>;
  /** How many packages of the queue are pending. */
  pending(): Promise<number>;
}

/** A stored JSON record (slot, queued package) as its value. */
function parse<T>(v: Uint8Array): T {
  return JSON.parse(new TextDecoder().decode(v)) as T;
}

/** The reads of what the device holds in `store`; `clock` tells which reservations have expired. */
export function holdings(store: DeviceStorage, clock: () => number): Holdings {
  const keyIds = async () => {
    const out: string[] = [];
    for await (const [k] of store.entries('key/')) out.push(k.slice(4));
    return out;
  };
  const key = async (keyId: string) => {
    const b = await store.get(`key/${String(keyId)}`);
    if (!b) throw new DeviceError('NOT_FOUND', `this device holds no share of key ${String(keyId).slice(0, 64)}`);
    return decodeKeyShareRecord(b);
  };
  return {
    keyIds,
    key,
    async keyAt(keyId, epoch) {
      const b = await store.get(`keyold/${keyId}/${epoch}`);
      if (!b)
        throw new DeviceError('RESERVATION_INVALID', `this device no longer holds key ${keyId} at epoch ${epoch}`);
      return decodeKeyShareRecord(b);
    },
    async epochs() {
      const out = new Map<string, number>();
      for (const id of await keyIds()) out.set(id, (await key(id)).epoch);
      return out;
    },
    // FROST slots (`slot/`) and an ECDSA key's presignature slots (`eslot/`, ecdsa-offline.ts):
    // both say when their co-signers drop them.
    async allowance(keyId) {
      let n = 0;
      const now = clock();
      for (const p of ['slot', 'eslot'])
        for await (const [, v] of store.entries(`${p}/${keyId}/`))
          if (parse<Slot>(v).expiresAt - EXPIRY_MARGIN_MS >= now) n++;
      return n;
    },
    async nextExpiry(keyId) {
      let next: number | null = null;
      for (const p of ['slot', 'eslot'])
        for await (const [, v] of store.entries(`${p}/${keyId}/`)) {
          const s = parse<Slot>(v);
          if (s.expiresAt >= clock() && (next === null || s.expiresAt < next)) next = s.expiresAt;
        }
      return next;
    },
    async queue() {
      const out: QueuedPackage[] = [];
      for await (const [, v] of store.entries('queue/')) out.push(parse<QueuedPackage>(v));
      return out;
    },
    async pending() {
      let n = 0;
      for await (const [, v] of store.entries('queue/')) if (parse<QueuedPackage>(v).state === 'pending') n++;
      return n;
    },
  };
}

export function keyInfo(rec: KeyShareRecord): DeviceKeyInfo {
  return {
    keyId: rec.keyId,
    suite: rec.key.suite.id,
    threshold: rec.key.threshold,
    participants: rec.key.roster.map((r) => r.id).sort(),
    publicKey: toHex(groupPublicKey(rec.key)),
    epoch: rec.epoch,
  };
}

/**
 * Offline co-signing on a signer node: reservations of nonces for a device (the device's offline
 * allowance) and the completion of its offline packages. The node's own ledger record of each
 * reservation is the authority, never the package; a reservation's nonce is consumed durably
 * (and journalled in the spent-reservation file) before this node's share leaves, and a refused
 * package does not burn it. The completion is ./offline-complete.ts; how reservations sit in the
 * ledger, ./reservation-records.ts. Devices are admitted here once for reserving, completing and
 * (an ECDSA key's) presigning.
 */
import {
  PayloadKind,
  RESERVATION_NONCE_ID_BYTES,
  type Allowance,
  capEntries,
  hasCaps,
  commit,
  decodeMessage,
  encodeReservation,
  openEnvelope,
  equalBytes,
  signReservation,
  toHex,
  type KeyShareRecord,
  type ParticipantIdentity,
  type Rng,
} from '@tessera/core';
import { sha256 } from '@noble/hashes/sha2.js';
import { type AuditLog, KeyedMutex, type NonceLedger, type SealedKV } from '@tessera/store';
import { grant, pricedUntil, withinDeviceCaps } from './allowance-policy.js';
import { SignerError } from './errors.js';
import { completeOfflinePackage } from './offline-complete.js';
import { decodeMessageSafe, reservationLedgerId } from './reservation-records.js';
import { deviceSegment } from './lifecycle-store.js';
import { devicePolicyOf, type Policy } from './policy.js';
import type { SignerEvent } from './engine.js';
import type { SpentReservations } from './spent.js';

/** What offline co-signing needs of its signer engine. */
export interface OfflineCosignerContext {
  readonly identity: ParticipantIdentity;
  readonly ledger: NonceLedger;
  readonly audit: AuditLog;
  readonly store: SealedKV;
  readonly rng: Rng;
  readonly clock: () => number;
  readonly spent: SpentReservations | undefined;
  /** The policy in force now (a reload replaces it). */
  policy(): Policy;
  /** Whether an operator-approved revocation of `device` is recorded here. */
  revoked(device: string): Promise<boolean>;
  key(keyId: string): Promise<KeyShareRecord>;
  keyAt(keyId: string, epoch: number): Promise<KeyShareRecord>;
  onEvent(e: SignerEvent): void;
}

/** A device presignature's key, epoch and expiry from its ledger statement (unreadable: undefined). */
function presignedStatement(meta: Uint8Array): { keyId: string; epoch: number; expiresAt: number } | undefined {
  try {
    const w = decodeMessage('EcdsaPresigned', meta);
    return { keyId: w.keyId, epoch: Number(w.epoch), expiresAt: Number(w.expiresAt) };
  } catch {
    return undefined;
  }
}

export class OfflineCosigner {
  readonly #ctx: OfflineCosignerContext;
  /** One completion at a time per allowance (its running total is read, charged and written). */
  readonly #allowanceLocks = new KeyedMutex();
  readonly #reserving = new KeyedMutex();

  constructor(ctx: OfflineCosignerContext) {
    this.#ctx = ctx;
  }

  /**
   * Throws POLICY_DENIED unless this node co-signs for `device` (devices allowed, `device` not
   * revoked); `presigning` (a key and its epoch now): RESOURCE_EXHAUSTED too when the device
   * holds its most ECDSA presignatures here (`devices.maxReservations`; expired ones dropped,
   * those of an earlier epoch of that key not counted).
   */
  async admitDevice(device: string, presigning?: { keyId: string; epoch: number }): Promise<void> {
    const dp = this.#devicePolicy();
    if (!dp.allow) throw new SignerError('POLICY_DENIED', 'this node does not co-sign for devices');
    if (dp.revoked?.includes(device) || (await this.#ctx.revoked(device)))
      throw new SignerError('POLICY_DENIED', `device ${device} is revoked on this node`);
    if (!presigning) return;
    // Its unused presignatures here, those past their expiry dropped (they count no more).
    let held = 0;
    const now = this.#ctx.clock();
    for await (const k of this.#ctx.store.keys(`nonce/q.${deviceSegment(device)}.`)) {
      const id = k.slice('nonce/'.length);
      const st = await this.#ctx.ledger.status(id);
      if (st.state !== 'fresh') continue;
      const stated = st.meta ? presignedStatement(st.meta) : undefined;
      if (!stated || stated.expiresAt < now) await this.#ctx.ledger.discard(id);
      // One of an earlier epoch of this key is kept (a package signed before a refresh may
      // still come) but no longer counts: the phone dropped its side of it.
      else if (!(stated.keyId === presigning.keyId && stated.epoch < presigning.epoch)) held++;
    }
    if (held >= dp.maxReservations)
      throw new SignerError(
        'RESOURCE_EXHAUSTED',
        `device ${device} already holds ${held} presignatures here (at most ${dp.maxReservations})`,
      );
  }

  /** How long a device's reservation is kept here unused (ms): `devices.maxTtlMs`. */
  reservationTtlMs(): number {
    return this.#devicePolicy().maxTtlMs;
  }

  #devicePolicy() {
    return devicePolicyOf(this.#ctx.policy());
  }

  /** The allowance this node signs into a reserve call's reservations (./allowance-policy.ts). */
  #grant(asked: Allowance | null | undefined, takesIntegrityRule: boolean): Allowance | null {
    return grant(asked, this.#devicePolicy(), {
      operators: this.#ctx.policy().operators,
      now: this.#ctx.clock(),
      rng: this.#ctx.rng,
      takesIntegrityRule,
    });
  }

  /**
   * Whether `device` itself said, in its signed reserve call for `keyId` (`call`, as the gateway
   * received it), that it keeps reservations requiring the integrity verdict. Anything that is not
   * such a call signed by the device's roster key reads as no.
   */
  async #takesIntegrityRule(keyId: string, device: string, call: Uint8Array): Promise<boolean> {
    try {
      const member = (await this.#ctx.key(keyId)).key.roster.find((r) => r.id === device && r.device);
      const env = openEnvelope(call, PayloadKind.DEVICE_CALL);
      const c = decodeMessage('DeviceCall', env.payload);
      if (!member || !equalBytes(env.sender, member.signKey) || c.device !== device || c.op !== 'reserve') return false;
      const r = decodeMessage('DeviceReserve', c.body);
      return r.keyId === keyId && r.takesIntegrityRule === true;
    } catch {
      return false;
    }
  }

  /**
   * Reserves `count` nonces of `keyId` for `device` (a participant of the key): each a fresh
   * nonce in the ledger under `r.<device>.<key>.<id>` with the signed reservation as its meta,
   * so completion checks a package against this node's own record. Bounded by the policy's
   * per-device cap (expired reservations are dropped first) and lifetime.
   */
  async reserve(
    keyId: string,
    device: string,
    count: number,
    ttlMs: number,
    asked?: Allowance | null,
    opts: { deviceCall?: Uint8Array } = {},
  ): Promise<Uint8Array[]> {
    await this.admitDevice(device);
    const takesRule = opts.deviceCall ? await this.#takesIntegrityRule(keyId, device, opts.deviceCall) : false;
    const allowance = this.#grant(asked, takesRule);
    if (!Number.isInteger(count) || count < 1 || count > 1024)
      throw new SignerError('INVALID_ARGUMENT', 'reservation count must be 1..1024');
    const rec = await this.#ctx.key(keyId);
    if (rec.key.suite.scheme !== 'frost')
      throw new SignerError(
        'WRONG_SUITE',
        `key ${keyId} is ${rec.key.suite.id}: offline reservations are FROST nonces`,
      );
    // Only a participant every member recorded as a device when the key was made (or reshared).
    if (device === this.#ctx.identity.id || !rec.key.roster.some((r) => r.id === device && r.device))
      throw new SignerError('POLICY_DENIED', `${String(device).slice(0, 64)} is not a device of key ${keyId}`);
    const now = this.#ctx.clock();
    const dp = this.#devicePolicy();
    // A fiat cap's reservations expire when its prices grow too old to count with.
    const ttl = Math.min(
      Number.isSafeInteger(ttlMs) && ttlMs > 0 ? ttlMs : dp.maxTtlMs,
      dp.maxTtlMs,
      pricedUntil(allowance, dp) - now,
    );
    if (ttl < 60_000)
      throw new SignerError(
        'POLICY_DENIED',
        'the price snapshot turns too old to count with within a minute: sign a fresh one (policy devices.maxPriceAgeMs)',
      );
    // One reserve at a time per device: its outstanding reservations and caps are counted below.
    return this.#reserving.run(deviceSegment(device), () =>
      this.#reserveLocked(rec, keyId, device, count, now, ttl, allowance),
    );
  }

  async #reserveLocked(
    rec: KeyShareRecord,
    keyId: string,
    device: string,
    count: number,
    now: number,
    ttl: number,
    allowance: Allowance | null,
  ): Promise<Uint8Array[]> {
    const dp = this.#devicePolicy();
    // Drop this device's expired, unused reservations: they no longer count against its cap.
    let outstanding = 0;
    /** The allowances of its usable reservations, by id. */
    const usable = new Map<string, Allowance>();
    for await (const k of this.#ctx.store.keys(`nonce/r.${deviceSegment(device)}.`)) {
      const id = k.slice('nonce/'.length);
      const st = await this.#ctx.ledger.status(id);
      if (st.state !== 'fresh') continue;
      const meta = st.meta ? decodeMessageSafe(st.meta) : undefined;
      if (!meta || meta.expiresAt < now) await this.#ctx.ledger.discard(id);
      else {
        outstanding++;
        if (hasCaps(meta.allowance)) usable.set(toHex(meta.allowance.allowanceId), meta.allowance);
      }
    }
    if (dp.maxDeviceCaps && allowance)
      await withinDeviceCaps(device, dp.maxDeviceCaps, usable, allowance, {
        totals: async (name) => {
          const raw = await this.#ctx.store.get(`allowance/${name}`);
          return raw ? (JSON.parse(new TextDecoder().decode(raw)) as Record<string, string>) : {};
        },
        journalled: (name, total) => this.#ctx.spent?.charged(name, total) ?? 0n,
      });
    const n = Math.min(count, dp.maxReservations - outstanding);
    if (n <= 0)
      throw new SignerError(
        'RESOURCE_EXHAUSTED',
        `device ${device} already holds ${outstanding} reservations on this node (cap ${dp.maxReservations})`,
      );
    // All reservations of the call durably in the ledger (one synced write) before any leaves.
    const made: {
      r: Parameters<typeof signReservation>[1];
      entry: { nonceId: string; secret: Uint8Array; meta: Uint8Array };
    }[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const { nonces, commitment } = commit(rec.share, this.#ctx.rng);
        const nonceId = this.#ctx.rng(RESERVATION_NONCE_ID_BYTES);
        const r = {
          suite: rec.key.suite,
          keyId,
          epoch: rec.epoch,
          device,
          signer: this.#ctx.identity.id,
          nonceId,
          hiding: commitment.hiding,
          binding: commitment.binding,
          expiresAt: now + ttl,
          allowance,
        };
        made.push({
          r,
          entry: {
            nonceId: reservationLedgerId(device, keyId, nonceId),
            secret: nonces.exportSecret(),
            meta: encodeReservation(r),
          },
        });
      }
      await this.#ctx.ledger.addFreshMany(made.map((m) => m.entry));
    } finally {
      for (const m of made) m.entry.secret.fill(0);
    }
    const out = made.map((m) => signReservation(this.#ctx.identity, m.r));
    await this.#ctx.audit.append({
      type: 'reserve',
      actor: this.#ctx.identity.id,
      data: {
        keyId,
        device,
        count: n,
        expiresAt: now + ttl,
        ...(allowance
          ? {
              allowance: toHex(allowance.allowanceId),
              caps: capEntries(allowance)
                .map((c) => `${c.amount} ${c.asset}`)
                .join(', '),
              // Which price table the fiat cap counts with (its hash: the operators' signatures name the same bytes).
              ...(allowance.fiat ? { prices: toHex(sha256(allowance.fiat.prices)) } : {}),
              ...(allowance.requireIntegrity ? { requireIntegrity: true } : {}),
            }
          : {}),
      },
    });
    this.#ctx.onEvent({ type: 'reserve', keyId, device, count: n });
    return out;
  }

  /** Completes an offline package with this node's reserved nonce (./offline-complete.ts). */
  complete(bytes: Uint8Array): Promise<Uint8Array> {
    return completeOfflinePackage(
      this.#ctx,
      { admit: (d) => this.admitDevice(d), allowanceLocks: this.#allowanceLocks },
      bytes,
    );
  }
}

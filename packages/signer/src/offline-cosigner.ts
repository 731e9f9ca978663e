/**
 * Offline co-signing on a signer node: reservations of nonces for a device (the device's offline
 * allowance) and the completion of its offline packages. The node's own ledger record of each
 * reservation is the authority, never the package; a reservation's nonce is consumed durably
 * (and journalled in the spent-reservation file) before this node's share leaves, and a refused
 * package does not burn it.
 */
import {
  PayloadKind,
  RESERVATION_NONCE_ID_BYTES,
  type Allowance,
  capEntries,
  chargeAllowance,
  checkPackagePayment,
  hasCaps,
  SigningNonces,
  commit,
  decodeMessage,
  decodeOfflinePackage,
  encodeMessage,
  encodeReservation,
  groupPublicKey,
  encodeSignatureShare,
  openEnvelope,
  equalBytes,
  signEnvelope,
  signReservation,
  toHex,
  txTotalName,
  txTotals,
  verifyOfflinePackage,
  type KeyShareRecord,
  type ParticipantIdentity,
  type Rng,
} from '@tessera/core';
import { sha256 } from '@noble/hashes/sha2.js';
import { type AuditLog, type BatchOp, KeyedMutex, type NonceLedger, type SealedKV } from '@tessera/store';
import {
  checkIntegrity,
  checkPayees,
  grant,
  pricedUntil,
  withinDeviceCaps,
  withinMaxCaps,
} from './allowance-policy.js';
import { SignerError, toTaskError } from './errors.js';
import { deviceSegment } from './lifecycle-store.js';
import { DEVICE_POLICY_DEFAULTS, type Policy } from './policy.js';
import type { SignerEvent } from './engine.js';
import type { SpentCharge, SpentReservations } from './spent.js';

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
    return { ...DEVICE_POLICY_DEFAULTS, ...(this.#ctx.policy().devices ?? {}) };
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
    const dp = this.#devicePolicy();
    if (!dp.allow) throw new SignerError('POLICY_DENIED', 'this node does not co-sign for devices');
    const takesRule = opts.deviceCall ? await this.#takesIntegrityRule(keyId, device, opts.deviceCall) : false;
    const allowance = this.#grant(asked, takesRule);
    if (!Number.isInteger(count) || count < 1 || count > 1024)
      throw new SignerError('INVALID_ARGUMENT', 'reservation count must be 1..1024');
    if (dp.revoked?.includes(device) || (await this.#ctx.revoked(device)))
      throw new SignerError('POLICY_DENIED', `device ${device} is revoked on this node`);
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

  /**
   * Completes an offline package with this node's reserved nonce. The package must be for a
   * reservation this node issued to that device (its own ledger record, not the package, is
   * the authority), unexpired, and carry a valid share of the device over the message: the
   * device's share is its authorisation. The nonce is consumed durably before the share
   * leaves; the same package again gets the same share; another package on the same
   * reservation is refused with RESERVATION_USED. A refused package does not burn the
   * reservation.
   */
  async complete(bytes: Uint8Array): Promise<Uint8Array> {
    const pkg = decodeOfflinePackage(bytes);
    const keyId = pkg.keyId;
    try {
      const dp = this.#devicePolicy();
      if (!dp.allow) throw new SignerError('POLICY_DENIED', 'this node does not co-sign for devices');
      if (dp.revoked?.includes(pkg.device) || (await this.#ctx.revoked(pkg.device)))
        throw new SignerError('POLICY_DENIED', `device ${pkg.device} is revoked on this node`);
      // A package completes with the share of its own epoch (kept for a while after a refresh).
      const rec = await this.#ctx.keyAt(keyId, pkg.epoch);
      const mine = pkg.cosigners.filter((c) => c.signer === this.#ctx.identity.id);
      if (mine.length !== 1) throw new SignerError('INVALID_ARGUMENT', 'the package names no reservation of this node');
      const res = mine[0] as (typeof mine)[number];
      const ledgerId = reservationLedgerId(pkg.device, keyId, res.nonceId);
      const st = await this.#ctx.ledger.status(ledgerId);
      if (st.state === 'unknown')
        throw new SignerError(
          'RESERVATION_UNKNOWN',
          `no reservation ${toHex(res.nonceId)} of ${pkg.device} on this node`,
        );
      // Reservations exist only for devices of the key; checked again against the key itself.
      if (!rec.key.roster.some((r) => r.id === pkg.device && r.device))
        throw new SignerError('POLICY_DENIED', `${pkg.device.slice(0, 64)} is not a device of key ${keyId}`);
      const own = st.meta ? decodeMessageSafe(st.meta) : undefined;
      if (
        !own ||
        own.epoch !== pkg.epoch ||
        own.keyId !== keyId ||
        own.device !== pkg.device ||
        !equalBytes(own.hiding, res.hiding) ||
        !equalBytes(own.binding, res.binding) ||
        own.expiresAt !== res.expiresAt ||
        !sameAllowance(own.allowance, res.allowance)
      )
        throw new SignerError('RESERVATION_INVALID', 'the package does not match the reservation this node issued', [
          pkg.device,
        ]);
      if (st.state === 'fresh' && own.expiresAt < this.#ctx.clock()) {
        await this.#ctx.ledger.discard(ledgerId);
        throw new SignerError(
          'RESERVATION_EXPIRED',
          `reservation ${toHex(res.nonceId)} expired at ${new Date(own.expiresAt).toISOString()}`,
        );
      }
      if (st.state === 'consumed' && !equalBytes(st.requestDigest, pkg.digest))
        throw new SignerError(
          'RESERVATION_USED',
          `reservation ${toHex(res.nonceId)} was already used by another package`,
        );
      // The journal outlives a damaged store: a used reservation stays used.
      const spentFor = this.#ctx.spent?.get(ledgerId);
      if (spentFor !== undefined && spentFor !== toHex(pkg.digest))
        throw new SignerError(
          'RESERVATION_USED',
          `reservation ${toHex(res.nonceId)} was already used by another package`,
        );
      // The session that verified the package also signs: its list is decoded and checked once,
      // this node's own reserved commitment (its ledger's copy, checked equal above) without the
      // subgroup check: it made those points itself.
      const session = verifyOfflinePackage(
        rec.key,
        pkg,
        { keyId, epoch: rec.epoch },
        { own: { identifier: rec.share.identifier, hiding: own.hiding, binding: own.binding } },
      );
      // A policy of caps applies to reservations made before it too: uncapped ones, or ones above
      // today's maximum, complete nothing (POLICY_DENIED; nothing spent).
      if ((dp.maxCaps || dp.maxDeviceCaps) && !withinMaxCaps(own.allowance, dp.maxCaps))
        throw new SignerError(
          'POLICY_DENIED',
          'this reservation is not within the caps this node now grants (policy devices.maxCaps / maxDeviceCaps)',
        );
      // The device's own integrity verdict, signed by it into the package, when the policy asks.
      checkIntegrity(dp, rec.key, pkg, own.allowance);
      // Payments (issue 19): a package with a payment signs what its transaction signs, and every
      // capped reservation's allowance holds it (PAYMENT_MISMATCH, OVER_ALLOWANCE; nothing spent).
      const paid = checkPackagePayment({ ...pkg, suite: rec.key.suite.id, publicKey: groupPublicKey(rec.key) });
      // The operators' destination lists, evaluated again here whatever the device's own were.
      checkPayees(dp, paid?.payment);
      const capped = hasCaps(own.allowance) ? own.allowance : undefined;
      const allowanceName = capped ? `${deviceSegment(pkg.device)}/${toHex(capped.allowanceId)}` : undefined;
      const totalsKey = allowanceName ? `allowance/${allowanceName}` : undefined;
      /** What this completion charged (journalled with the use). */
      let charged: SpentCharge[] = [];
      let totals: Record<string, string> = {};
      // Cached unless this call's produce() runs: concurrent deliveries that lose the ledger's
      // per-nonce lock get the stored share and must not be counted as fresh completions.
      let cached = true;
      let share: Uint8Array;
      // This node's running total of the allowance: charged on the fresh path only (a re-delivery
      // is not counted again), under the allowance's lock (two packages of one allowance cannot
      // both pass its cap), and written in the same synced batch as the consumed nonce.
      const charge = capped
        ? {
            beforeProduce: async () => {
              const raw = await this.#ctx.store.get(totalsKey as string);
              totals = raw ? (JSON.parse(new TextDecoder().decode(raw)) as Record<string, string>) : {};
              const p = (paid as NonNullable<typeof paid>).payment;
              // Each stored total (an asset's, the fiat cap's), or the journal's sum if a damaged
              // store lost some of it.
              const before = (name: string) => {
                const stored = BigInt(totals[name] ?? '0');
                const journalled = this.#ctx.spent?.charged(allowanceName as string, name, ledgerId) ?? 0n;
                return stored > journalled ? stored : journalled;
              };
              // A transaction another package of which (another input) completed here counts once.
              const c = chargeAllowance(capped, p, before, [pkg.device], (name) =>
                BigInt(totals[txTotalName(p.tx ?? '', name)] ?? '0'),
              );
              charged = Object.entries(c.totals).map(([name, total]) => ({
                allowance: allowanceName as string,
                asset: name,
                amount: total - before(name),
              }));
              const next = { ...c.totals, ...txTotals(p, c) };
              totals = { ...totals, ...Object.fromEntries(Object.entries(next).map(([n, t]) => [n, t.toString()])) };
            },
            commit: (ops: readonly BatchOp[]) =>
              this.#ctx.store.batch(
                [
                  ...ops,
                  { type: 'put', key: totalsKey as string, value: new TextEncoder().encode(JSON.stringify(totals)) },
                ],
                { sync: true },
              ),
          }
        : {};
      try {
        const consume = () =>
          this.#ctx.ledger.consume(
            ledgerId,
            pkg.digest,
            async (secret) => {
              cached = false;
              // The reservation this node signed names the commitment of exactly these nonces.
              const nonces = SigningNonces.importSecret(rec.key.suite, rec.share.identifier, secret, {
                identifier: rec.share.identifier,
                hiding: own.hiding,
                binding: own.binding,
              });
              const out = session.signShare(rec.share, nonces);
              // Journalled (fsync) before the ledger write and before release.
              await this.#ctx.spent?.add(ledgerId, toHex(pkg.digest), charged);
              return out;
            },
            charge,
          );
        share = await (totalsKey ? this.#allowanceLocks.run(totalsKey, consume) : consume());
      } catch (e) {
        if ((e as { code?: string }).code === 'NONCE_REUSED')
          throw new SignerError(
            'RESERVATION_USED',
            `reservation ${toHex(res.nonceId)} was already used by another package`,
          );
        throw e;
      }
      await this.#ctx.audit.append({
        type: 'offline-complete',
        actor: pkg.device,
        data: { keyId, package: pkg.packageId, nonce: ledgerId, cached },
      });
      this.#ctx.onEvent({ type: 'complete', keyId, device: pkg.device, result: cached ? 'cached' : 'ok' });
      const payload = encodeSignatureShare(rec.key.suite, {
        sessionId: pkg.digest.subarray(0, 16),
        identifier: rec.share.identifier,
        share,
        requestDigest: pkg.digest,
      });
      return signEnvelope(this.#ctx.identity, PayloadKind.SIGNATURE_SHARE, payload);
    } catch (e) {
      const err = toTaskError(e);
      await this.#ctx.audit
        .append({
          type: 'refusal',
          actor: this.#ctx.identity.id,
          data: { keyId, what: 'offline', package: pkg.packageId, code: err.code, reason: err.message.slice(0, 200) },
        })
        .catch(() => {});
      this.#ctx.onEvent({ type: 'refusal', keyId, code: err.code });
      throw e;
    }
  }
}

/**
 * Ledger id of a reservation: per device, so a device's outstanding reservations count by prefix.
 * The device id is hex-encoded: no character of an id can act as the separator, so device `a`'s
 * prefix never covers device `a.b`'s records.
 */
function reservationLedgerId(device: string, keyId: string, nonceId: Uint8Array): string {
  return `r.${deviceSegment(device)}.${keyId}.${toHex(nonceId)}`;
}

/** Whether two allowances are the same (both absent, or equal encodings). */
function sameAllowance(a: Allowance | null | undefined, b: Allowance | null | undefined): boolean {
  if (!a || !b) return !a && !b;
  return equalBytes(encodeMessage('Allowance', a as never), encodeMessage('Allowance', b as never));
}

/** The reservation a ledger record carries as its meta (written by this node). */
function decodeMessageSafe(meta: Uint8Array):
  | {
      keyId: string;
      epoch: number;
      device: string;
      hiding: Uint8Array;
      binding: Uint8Array;
      expiresAt: number;
      allowance: Allowance | null;
    }
  | undefined {
  try {
    return decodeMessage('Reservation', meta);
  } catch {
    return undefined;
  }
}

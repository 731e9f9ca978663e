/**
 * Signing offline (`Device.signOffline`): the device's own risk rules, the oldest unexpired slot
 * whose reservations can sign the request (a payment planned against their allowances,
 * payments.ts), the package, and one synced write of the slot used, the package queued, the
 * allowance totals and the journal entry before the package is returned.
 */
import {
  type EnvelopeSigner,
  type KeyShareRecord,
  type PaymentTx,
  type Rng,
  createOfflinePackage,
  fromHex,
  groupPublicKey,
  openReservation,
  packageToText,
  paymentToJSON,
  toHex,
} from '@tessera/core';
import { DeviceError } from './errors.js';
import type { DeviceEmitter } from './events.js';
import type { Journal } from './journal.js';
import { planPayment } from './payments.js';
import { type IntegrityVerdict, type RiskRules, checkDestinations, checkRisk, integrityRecord } from './risk.js';
import { DeviceStorage } from './storage.js';
import type { QueuedPackage } from './sync.js';

/** A stored slot: one reservation per co-signer, enough for one package. */
export interface Slot {
  reservations: string[];
  expiresAt: number;
  /** The key epoch the reservations are for (absent in slots written before epochs existed: the active one). */
  epoch?: number;
}

/** A reservation this close to expiry is not used for a new package (it could not be delivered in time). */
export const EXPIRY_MARGIN_MS = 60_000;

export const pad = (n: number) => String(n).padStart(12, '0');

export interface OfflineRequest {
  keyId: string;
  /** The bytes to sign; with `payment`, derived from the transaction instead (payments.ts). */
  message?: Uint8Array;
  /** The transaction this package pays: required on reservations with caps. */
  payment?: PaymentTx;
  /** The app's device-integrity verdict (risk.ts): recorded with the payment, required by `risk.requireIntegrity`. */
  integrity?: IntegrityVerdict;
}

export interface OfflineSigned {
  packageId: string;
  bytes: Uint8Array;
  text: string;
  keyId: string;
  payment?: ReturnType<typeof paymentToJSON>;
}

/** What signing offline needs of its device. */
export interface OfflineSignContext {
  readonly id: string;
  /** The device's identity: signs its claims about each package. */
  me(): EnvelopeSigner;
  readonly store: DeviceStorage;
  readonly journal: Journal;
  readonly events: DeviceEmitter;
  readonly clock: () => number;
  readonly rng: Rng;
  readonly risk: RiskRules;
  key(keyId: string): Promise<KeyShareRecord>;
  /** The key's share of an earlier epoch (kept a while after a refresh). */
  keyAt(keyId: string, epoch: number): Promise<KeyShareRecord>;
  /** Emits the `allowance` event when a key's slots run low. */
  checkAllowance(keyId: string): Promise<void>;
}

export async function signOfflinePackage(ctx: OfflineSignContext, req: OfflineRequest): Promise<OfflineSigned> {
  const rec = await ctx.key(req.keyId);
  const now = ctx.clock();
  const integrity = integrityRecord(req.integrity);
  // The device's own rules first: a refusal signs nothing and changes nothing.
  const risk =
    ctx.risk.maxPaymentsPerHour !== undefined || ctx.risk.requireIntegrity
      ? checkRisk(ctx.risk, await ctx.journal.read(), now, req.integrity)
      : undefined;
  const drop: { type: 'del'; key: string }[] = [];
  const slots: { key: string; slot: Slot }[] = [];
  for await (const [k, v] of ctx.store.entries(`slot/${req.keyId}/`)) {
    const slot = JSON.parse(new TextDecoder().decode(v)) as Slot;
    if (slot.expiresAt - EXPIRY_MARGIN_MS < now) drop.push({ type: 'del', key: k });
    else slots.push({ key: k, slot });
  }
  const lapsed = drop.length ? [{ kind: 'expired' as const, keyId: req.keyId, count: drop.length }] : [];
  if (!slots.length) {
    if (drop.length) await ctx.journal.append(lapsed, drop);
    ctx.events.emit('allowance', { keyId: req.keyId, remaining: 0 });
    throw new DeviceError('NO_ALLOWANCE', `no unused reservation left for key ${req.keyId}: reserve more while online`);
  }
  // The oldest slot whose allowance holds this payment (one whose caps are used up, or that
  // needs a payment where a bare message is signed, is left for another).
  const found = await slotFor(ctx, req, rec, slots);
  const { chosen, signing, reservations, plan } = found;
  // Destinations are read from the transaction: checked once it is read, before anything is signed.
  checkDestinations(ctx.risk, plan.payment);
  const pkg = createOfflinePackage({
    key: signing.key,
    share: signing.share,
    keyId: signing.keyId,
    epoch: signing.epoch,
    device: ctx.id,
    message: plan.message,
    reservations,
    createdAt: now,
    rng: ctx.rng,
    payment: req.payment ?? null,
    // With the app's verdict: signed by the device into the package with its clock, for
    // co-signers whose policy requires a passing one (core's device-claims.ts). Only then: the
    // claims add ~150 bytes, and a package must stay small enough for one QR code.
    ...(req.integrity
      ? {
          claims: {
            signer: ctx.me(),
            integrity: req.integrity.verdict,
            integrityDetail: req.integrity.detail === undefined ? '' : String(req.integrity.detail),
          },
        }
      : {}),
  });
  let seq = (await ctx.store.getJson<number>('seq')) ?? 0;
  seq++;
  const item: QueuedPackage = {
    seq,
    packageId: pkg.packageId,
    keyId: rec.keyId,
    message: toHex(plan.message),
    bytes: toHex(pkg.bytes),
    createdAt: now,
    state: 'pending',
  };
  // The slot used, the package queued and the journal entry: one synced write.
  await ctx.journal.append(
    [
      ...lapsed,
      {
        kind: 'signed',
        keyId: rec.keyId,
        packageId: pkg.packageId,
        ...(integrity !== undefined ? { integrity } : {}),
        ...(plan.payment ? { payment: paymentToJSON(plan.payment) } : {}),
      },
    ],
    [
      ...drop,
      ...plan.ops,
      { type: 'del', key: chosen.key },
      { type: 'put', key: `queue/${pad(seq)}`, value: DeviceStorage.json(item) },
      { type: 'put', key: 'seq', value: DeviceStorage.json(seq) },
    ],
  );
  await ctx.checkAllowance(rec.keyId);
  if (risk?.warn && risk.limit !== null)
    ctx.events.emit('risk', { rule: 'velocity', count: risk.count, limit: risk.limit });
  return {
    packageId: pkg.packageId,
    bytes: pkg.bytes,
    text: packageToText(pkg.bytes),
    keyId: rec.keyId,
    ...(plan.payment ? { payment: paymentToJSON(plan.payment) } : {}),
  };
}

/**
 * The first of `slots` (oldest first) that can sign `req`: its reservations opened with the
 * share of their epoch (a refresh keeps the old one a while), the payment planned against their
 * allowances, the device's verdict `pass` if an allowance requires one. Refused by every slot:
 * the first slot's refusal.
 */
async function slotFor(
  ctx: OfflineSignContext,
  req: OfflineRequest,
  rec: KeyShareRecord,
  slots: { key: string; slot: Slot }[],
) {
  let refusal: unknown;
  for (const chosen of slots) {
    const epoch = chosen.slot.epoch ?? rec.epoch;
    const signing = epoch === rec.epoch ? rec : await ctx.keyAt(req.keyId, epoch);
    const reservations = chosen.slot.reservations.map((h) => openReservation(signing.key, fromHex(h)));
    // A co-signer that requires the device's verdict completes nothing without a `pass`: such a
    // slot is left for a payment that has one (POLICY_DENIED if no slot can sign).
    const strict = reservations.find((r) => r.allowance?.requireIntegrity);
    if (strict && req.integrity?.verdict !== 'pass') {
      refusal ??= new DeviceError(
        'POLICY_DENIED',
        `co-signer ${strict.signer} completes payments of this allowance only with a passing device integrity verdict (${req.integrity ? req.integrity.verdict : 'none given'}): pass the app's attestation verdict`,
      );
      continue;
    }
    try {
      const plan = await planPayment(
        ctx.store,
        signing.key.suite.id,
        groupPublicKey(signing.key),
        ctx.id,
        reservations,
        req,
      );
      return { chosen, signing, reservations, plan };
    } catch (e) {
      if ((e as { code?: string }).code !== 'OVER_ALLOWANCE') throw e;
      refusal ??= e;
    }
  }
  throw refusal;
}

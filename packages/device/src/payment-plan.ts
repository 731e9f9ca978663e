/**
 * The payment rules as the device applies them (./payments.ts imports this on first use): the
 * payment read from its transaction (core's readers), the one-package rules, and the running
 * total of every capped allowance charged.
 */
import {
  type Allowance,
  type PaymentTx,
  type SignedReservation,
  type SuiteId,
  equalBytes,
  hasCaps,
  paymentToJSON,
  requirePayment,
  toHex,
  txTotalName,
} from '@tessera/core';
import { chargeAllowance, checkPackagePayment, readPayment, txTotals } from '@tessera/core/package-payment';
import { DeviceError } from './errors.js';
import type { PaymentPlan } from './payments.js';
import { DeviceStorage } from './storage.js';

type Totals = Record<string, string>;

/**
 * An ECDSA package's payment (ecdsa-offline.ts; no caps there yet): the message its transaction
 * signs and the payment as the journal records it. Here, so the readers stay in this one chunk.
 */
export function readEcdsaPayment(payment: PaymentTx, publicKey: Uint8Array) {
  const read = readPayment(payment, publicKey);
  return { message: read.message, json: paymentToJSON(read.payment) };
}

export async function plan(
  store: DeviceStorage,
  suite: SuiteId,
  publicKey: Uint8Array,
  device: string,
  reservations: readonly SignedReservation[],
  req: { message?: Uint8Array; payment?: PaymentTx },
): Promise<PaymentPlan> {
  if (!req.payment) {
    requirePayment({ device, payment: null, cosigners: reservations });
    throw new DeviceError('INVALID_ARGUMENT', 'a package signs a message or pays a transaction');
  }
  const read = readPayment(req.payment, publicKey);
  if (req.message && !equalBytes(req.message, read.message))
    throw new DeviceError(
      'PAYMENT_MISMATCH',
      'the message is not what the transaction signs: pass the transaction only',
    );
  // The one-package rules (a chain of this key's suite, per-payment limits, caps).
  checkPackagePayment({
    suite,
    publicKey,
    device,
    message: read.message,
    payment: req.payment,
    cosigners: reservations,
  });
  const ops: PaymentPlan['ops'] = [];
  const seen = new Set<string>();
  for (const r of reservations) {
    if (!hasCaps(r.allowance)) continue;
    const a = r.allowance as Allowance;
    const id = toHex(a.allowanceId);
    if (seen.has(id)) continue;
    seen.add(id);
    const key = `allowance/${id}`;
    const totals = (await store.getJson<Totals>(key)) ?? {};
    // Every total it counts against (the asset's, a fiat cap's under '@fiat:<currency>'); a
    // transaction whose other inputs this device signed before counts once (core's txTotalName).
    const stored = (name: string) => BigInt(totals[name] ?? '0');
    const p = read.payment;
    const c = chargeAllowance(a, p, stored, [device], (name) => stored(txTotalName(p.tx ?? '', name)));
    for (const [name, total] of Object.entries({ ...c.totals, ...txTotals(p, c) })) totals[name] = total.toString();
    ops.push({ type: 'put', key, value: DeviceStorage.json(totals) });
  }
  return { message: read.message, payment: read.payment, ops };
}

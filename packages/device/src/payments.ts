/**
 * A device's payments against its allowances (issue 19; core/src/allowance.ts). When a package
 * pays a transaction, the device reads the payment from it and signs the message derived from it
 * (never one passed beside it); when the reservations it uses carry caps, the payment must fit
 * every co-signer's allowance, counted over all the device's packages of that allowance. The
 * running totals are stored (`allowance/<id>`) in the same synced write that queues the package,
 * so a crash never loses or double-counts one.
 *
 * The rules and the chains' readers (./payment-plan.ts) are imported when the first payment or
 * capped reservation is signed (a chunk of their own in a browser build).
 */
import type { Allowance, PaymentTx, SignedReservation, SuiteId, TypedPayment } from '@tessera/core';
import { DeviceError } from './errors.js';
import type { DeviceStorage } from './storage.js';

/**
 * A fiat cap as an app asks for it: minor units of `currency`, valued with a price snapshot the
 * operators signed (`prices`: its exact bytes; `approvals`: their PRICE_SNAPSHOT signatures; the
 * co-signers check both and keep the snapshot in the allowance they sign).
 */
export interface FiatCapRequest {
  currency: string;
  /** The total, e.g. `50_000n` for $500.00. */
  cap: bigint | number | string;
  /** One payment's most (optional). */
  perPayment?: bigint | number | string;
  prices: Uint8Array;
  approvals: readonly Uint8Array[];
}

/** An allowance as an app asks for it: per asset in base units, and/or in a fiat currency. */
export interface AllowanceRequest {
  /** The total the device may pay per asset (amount + fee), e.g. `{ BTC: 50_000n }`. */
  caps?: Record<string, bigint | number | string>;
  /** One payment's most, per asset (optional; at most the cap). */
  perPayment?: Record<string, bigint | number | string>;
  /** A cap over every asset the snapshot prices. */
  fiat?: FiatCapRequest;
}

/** The wire form of a request (the co-signers choose the id). */
export function allowanceRequest(r: AllowanceRequest | undefined): Allowance | null {
  if (!r) return null;
  const list = (m: Record<string, bigint | number | string> | undefined) =>
    Object.entries(m ?? {})
      .map(([asset, v]) => ({ asset, amount: BigInt(v).toString() }))
      .sort((a, b) => (a.asset < b.asset ? -1 : a.asset > b.asset ? 1 : 0));
  const f = r.fiat;
  const a: Allowance = {
    allowanceId: new Uint8Array(0),
    caps: list(r.caps),
    perPayment: list(r.perPayment),
    ...(f
      ? {
          fiat: {
            currency: f.currency,
            cap: BigInt(f.cap).toString(),
            perPayment: f.perPayment === undefined ? '' : BigInt(f.perPayment).toString(),
            prices: f.prices,
            approvals: [...f.approvals],
          },
        }
      : {}),
  };
  if (!a.caps.length && !a.fiat) throw new DeviceError('INVALID_ARGUMENT', 'an allowance needs at least one cap');
  return a;
}

/** What a package adds to the device's stored totals, and its payment as read. */
export interface PaymentPlan {
  message: Uint8Array;
  payment: TypedPayment | undefined;
  /** The new running totals, stored with the package. */
  ops: { type: 'put'; key: string; value: Uint8Array }[];
}

/**
 * Plans one package on `reservations`: the message to sign (from the transaction when there is
 * one), and every capped allowance charged with the payment (OVER_ALLOWANCE past any of them,
 * before anything is signed or written). A bare message on uncapped reservations needs no rules.
 */
export async function planPayment(
  store: DeviceStorage,
  suite: SuiteId,
  publicKey: Uint8Array,
  device: string,
  reservations: readonly SignedReservation[],
  req: { message?: Uint8Array; payment?: PaymentTx },
): Promise<PaymentPlan> {
  if (!req.payment && !reservations.some((r) => r.allowance?.caps.length || r.allowance?.fiat)) {
    if (!(req.message instanceof Uint8Array))
      throw new DeviceError('INVALID_ARGUMENT', 'a package signs a message or pays a transaction');
    return { message: req.message, payment: undefined, ops: [] };
  }
  return (await import('./payment-plan.js')).plan(store, suite, publicKey, device, reservations, req);
}

/**
 * Counting a payment against an allowance (issue 19), the one rule every checker applies: the
 * device before it signs, the merchant's check (one package, nothing spent before) and each
 * co-signer at completion (its running totals). Its own module because a fiat cap reads the
 * allowance's price snapshot (./prices.ts, the wire codec); the merchant's one-suite check does
 * not import it until a package with a payment comes along.
 *
 * A payment counts its amount plus its fee. A per-asset cap covers its asset; a fiat cap covers
 * every asset its snapshot prices (valued rounding up). A payment must be covered by at least
 * one, and must fit every one that covers it: the per-payment limit and the total after what
 * was spent before.
 */
import { type Allowance, amountOf, fiatTotalName } from './allowance.js';
import { ErrorCode, ProtocolError } from './errors.js';
import type { TypedPayment } from './payment.js';
import { decodePriceSnapshot, fiatValue } from './prices.js';

/**
 * Throws OVER_ALLOWANCE unless `payment` fits `a` after what was spent before (`spent(name)`:
 * the running total of an asset, or of the fiat cap under {@link fiatTotalName}). Returns the new
 * running totals of every name the payment counts against.
 */
export function chargeAllowance(
  a: Allowance,
  payment: TypedPayment,
  spent: (name: string) => bigint = () => 0n,
  culprits: string[] = [],
): Record<string, bigint> {
  const over = (m: string) => new ProtocolError(ErrorCode.OVER_ALLOWANCE, m, culprits);
  const total = payment.amount + payment.fee;
  const next: Record<string, bigint> = {};
  const cap = amountOf(a.caps, payment.asset);
  if (cap !== undefined) {
    const per = amountOf(a.perPayment, payment.asset);
    if (per !== undefined && total > per)
      throw over(`a payment of ${total} ${payment.asset} (fee included) is above the allowance's ${per} per payment`);
    const before = spent(payment.asset);
    if (before + total > cap)
      throw over(`${total} ${payment.asset} more would pass the allowance's cap of ${cap} (${before} used)`);
    next[payment.asset] = before + total;
  }
  const f = a.fiat;
  const prices = f ? decodePriceSnapshot(f.prices) : undefined;
  if (f && prices?.currency !== f.currency)
    throw over(`the allowance's price snapshot is in ${prices?.currency}, its fiat cap in ${f.currency}`);
  const value = f && prices ? fiatValue(prices, payment.asset, total) : undefined;
  if (f && value !== undefined) {
    if (f.perPayment !== '' && value > BigInt(f.perPayment))
      throw over(
        `a payment worth ${value} ${f.currency} minor units is above the allowance's ${f.perPayment} per payment`,
      );
    const name = fiatTotalName(f.currency);
    const before = spent(name);
    if (before + value > BigInt(f.cap))
      throw over(
        `a payment worth ${value} ${f.currency} minor units would pass the allowance's cap of ${f.cap} (${before} used)`,
      );
    next[name] = before + value;
  }
  if (Object.keys(next).length === 0)
    throw over(
      f
        ? `the allowance does not cover ${payment.asset} (no cap for it, no price in its ${f.currency} snapshot)`
        : `the allowance does not cover ${payment.asset}`,
    );
  return next;
}

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
 *
 * A transaction counts once, however many packages sign it: a Bitcoin payment that spends
 * several of the key's Taproot outputs is signed in one package per input, each reading the same
 * payment (a Taproot signature hash commits to every input, amount and output, so the signatures
 * are good in that one transaction only; a SegWit v0 payment names no transaction and counts per
 * package: its hash leaves the other inputs' amounts to the sender's word). A payment that names
 * its transaction (`tx`) adds to a total only what it
 * counts beyond what earlier packages of the same transaction counted (`already`); the
 * per-payment limit still applies to the whole payment.
 */
import { type Allowance, amountOf, fiatTotalName, txTotalName } from './allowance.js';
import { ErrorCode, ProtocolError } from './errors.js';
import type { TypedPayment } from './payment.js';
import { decodePriceSnapshot, fiatValue } from './prices.js';

/** What a payment counts against one allowance. */
export interface AllowanceCharge {
  /** The running totals after it, per total it counts against (an asset's, a fiat cap's). */
  readonly totals: Record<string, bigint>;
  /**
   * What its transaction has now counted per total (the larger of this payment's count and what
   * earlier packages of the same transaction counted), to keep under
   * {@link txTotalName}`(payment.tx, name)`; empty for a payment that names no transaction.
   */
  readonly byTx: Record<string, bigint>;
}

/**
 * Throws OVER_ALLOWANCE unless `payment` fits `a` after what was spent before (`spent(name)`:
 * the running total of an asset, or of the fiat cap under {@link fiatTotalName}; `already(name)`:
 * what earlier packages of the payment's transaction counted, read under {@link txTotalName}).
 */
export function chargeAllowance(
  a: Allowance,
  payment: TypedPayment,
  spent: (name: string) => bigint = () => 0n,
  culprits: string[] = [],
  already: (name: string) => bigint = () => 0n,
): AllowanceCharge {
  const over = (m: string) => new ProtocolError(ErrorCode.OVER_ALLOWANCE, m, culprits);
  const total = payment.amount + payment.fee;
  const totals: Record<string, bigint> = {};
  const byTx: Record<string, bigint> = {};
  /** What `value` adds to total `name` beyond what its transaction counted before. */
  const extra = (name: string, value: bigint) => {
    if (payment.tx === undefined) return value;
    const before = already(name);
    byTx[name] = value > before ? value : before;
    return value > before ? value - before : 0n;
  };
  const cap = amountOf(a.caps, payment.asset);
  if (cap !== undefined) {
    const per = amountOf(a.perPayment, payment.asset);
    if (per !== undefined && total > per)
      throw over(`a payment of ${total} ${payment.asset} (fee included) is above the allowance's ${per} per payment`);
    const before = spent(payment.asset);
    const more = extra(payment.asset, total);
    if (before + more > cap)
      throw over(`${more} ${payment.asset} more would pass the allowance's cap of ${cap} (${before} used)`);
    totals[payment.asset] = before + more;
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
    const more = extra(name, value);
    if (before + more > BigInt(f.cap))
      throw over(
        `a payment worth ${more} ${f.currency} minor units more would pass the allowance's cap of ${f.cap} (${before} used)`,
      );
    totals[name] = before + more;
  }
  if (Object.keys(totals).length === 0)
    throw over(
      f
        ? `the allowance does not cover ${payment.asset} (no cap for it, no price in its ${f.currency} snapshot)`
        : `the allowance does not cover ${payment.asset}`,
    );
  return { totals, byTx };
}

/** The entries to store for `c.byTx` beside the totals (names from {@link txTotalName}). */
export function txTotals(payment: TypedPayment, c: AllowanceCharge): Record<string, bigint> {
  const tx = payment.tx;
  return tx === undefined
    ? {}
    : Object.fromEntries(Object.entries(c.byTx).map(([name, v]) => [txTotalName(tx, name), v]));
}

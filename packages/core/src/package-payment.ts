/**
 * The payment rules of an offline package (issue 19), for every checker: the device before it
 * signs, the merchant's check and each co-signer at completion (the coordinator forwards: the
 * co-signers decide).
 *
 * - A package that carries a payment signs exactly what its transaction signs: the message is
 *   derived from the transaction here (./payment.ts) and must equal the package's message
 *   (PAYMENT_MISMATCH, the device named).
 * - A package on a reservation whose allowance sets caps must carry a payment, in a capped
 *   asset, within the per-payment limit and the cap (OVER_ALLOWANCE). This checks the one
 *   package; the running total is the co-signer's (and the device's) to count.
 *
 * Its own module (imports the chains' libraries): the SDK and the merchant's check import it
 * when a package with a payment or an allowance first comes along.
 */
import { type Allowance, hasCaps, requirePayment } from './allowance.js';
import { type AllowanceCharge, chargeAllowance, txTotals } from './allowance-charge.js';
import { equalBytes } from './bytes.js';
import { ErrorCode, ProtocolError } from './errors.js';
import { type PaymentTx, type ReadPayment, readPayment } from './payment.js';
import { chainFits } from './payment-chains.js';

export { type AllowanceCharge, chargeAllowance, readPayment, txTotals };
import type { SuiteId } from './suite-ids.js';

/** Applies the rules to `p`; returns its payment as read, if it carries one. */
export function checkPackagePayment(p: {
  /** The key's suite: a payment must be on a chain it signs for. */
  readonly suite: SuiteId;
  /** The key's public key (its suite's encoding): what the payment spends must be the key's. */
  readonly publicKey: Uint8Array;
  readonly device: string;
  readonly message: Uint8Array;
  readonly payment?: PaymentTx | null;
  readonly cosigners: readonly { readonly signer: string; readonly allowance?: Allowance | null }[];
}): ReadPayment | undefined {
  const capped = p.cosigners.filter((c) => hasCaps(c.allowance));
  if (!p.payment) {
    requirePayment(p, true);
    return undefined;
  }
  if (!chainFits(p.payment.chain, p.suite))
    throw new ProtocolError(
      ErrorCode.PAYMENT_MISMATCH,
      `a ${p.suite} key does not sign ${String(p.payment.chain).slice(0, 32)} payments`,
      [p.device],
    );
  let read: ReadPayment;
  try {
    read = readPayment(p.payment, p.publicKey);
  } catch (e) {
    throw new ProtocolError(ErrorCode.PAYMENT_MISMATCH, (e as Error).message, [p.device]);
  }
  if (!equalBytes(read.message, p.message))
    throw new ProtocolError(
      ErrorCode.PAYMENT_MISMATCH,
      "the package's message is not what its transaction signs (input's signature hash)",
      [p.device],
    );
  for (const c of capped)
    if (c.allowance) {
      try {
        chargeAllowance(c.allowance, read.payment, () => 0n, [p.device]);
      } catch (e) {
        // A snapshot the co-signer signed but nobody can read is the co-signer's fault, not a payment's.
        if ((e as { code?: string }).code === ErrorCode.DECODE)
          throw new ProtocolError(ErrorCode.OVER_ALLOWANCE, (e as Error).message, [c.signer]);
        throw e;
      }
    }
  return read;
}

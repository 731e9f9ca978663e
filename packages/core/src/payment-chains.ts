/**
 * Which key suites sign for which chain (no imports: the merchant's check needs the table before
 * it decides to import a chain's reader). A payment on another chain than its key's suite signs
 * for is refused (PAYMENT_MISMATCH) before its transaction is read.
 */
import type { TypedPayment } from './payment.js';
import type { SuiteId } from './suite-ids.js';

export const CHAIN_SUITES: Readonly<Record<string, readonly SuiteId[]>> = {
  // BIP 340 Schnorr, Taproot key path; ECDSA, SegWit v0 P2WPKH (cluster signing; ECDSA offline
  // packages are not built yet).
  bitcoin: ['secp256k1-tr', 'ecdsa-secp256k1'],
  // Ed25519 over the transaction's message bytes.
  solana: ['ed25519'],
};

/** Whether a key of `suite` signs payments on `chain`. */
export function chainFits(chain: string, suite: SuiteId): boolean {
  return Object.hasOwn(CHAIN_SUITES, chain) && (CHAIN_SUITES[chain] as readonly SuiteId[]).includes(suite);
}

/** A typed payment as JSON (amounts as decimal strings). */
export function paymentToJSON(p: TypedPayment): {
  chain: string;
  asset: string;
  amount: string;
  fee: string;
  to: string[];
  /** The transaction id, when the chain's packages sign parts of one transaction (Bitcoin). */
  tx?: string;
} {
  return {
    chain: p.chain,
    asset: p.asset,
    amount: p.amount.toString(),
    fee: p.fee.toString(),
    to: [...p.to],
    ...(p.tx === undefined ? {} : { tx: p.tx }),
  };
}

/**
 * Payments, not bytes (issue 19): an offline package may carry the transaction its message
 * signs (`tessera.v1.Payment`). Whoever checks the package reads the payment from the transaction
 * with the chain's own library and derives the message itself; the typed payment is what
 * allowances (./allowance.ts) are counted in. One reader per chain, in ./payments/.
 */
import { ErrorCode, ProtocolError } from './errors.js';
import { CHAIN_SUITES } from './payment-chains.js';
import { readBitcoinPayment } from './payments/bitcoin.js';
import { readSolanaPayment } from './payments/solana.js';

export { finaliseBitcoinInput } from './payments/bitcoin.js';

/** A payment as read from its transaction. Amounts in the asset's base units. */
export interface TypedPayment {
  readonly chain: string;
  readonly asset: string;
  /** What leaves the wallet to others (change back to the spent address is not counted). */
  readonly amount: bigint;
  readonly fee: bigint;
  readonly to: readonly string[];
  /**
   * The transaction's id when several packages may sign parts of it (Bitcoin: the txid, one
   * package per input): the transaction counts against an allowance once.
   */
  readonly tx?: string;
}

/** A payment and the message its signature is over (derived from the transaction). */
export interface ReadPayment {
  readonly payment: TypedPayment;
  readonly message: Uint8Array;
}

/** The transaction as a package carries it (`tessera.v1.Payment`). */
export interface PaymentTx {
  readonly chain: string;
  readonly tx: Uint8Array;
  readonly input: number;
}

/**
 * The chains whose payments can be read: `bitcoin` (a PSBT; the input spent by the Taproot key path
 * or P2WPKH), `solana` (a wire transaction; SOL and SPL token transfers).
 */
export const PAYMENT_CHAINS = Object.keys(CHAIN_SUITES);

/**
 * Reads `p`; PAYMENT_MISMATCH for an unknown chain or a transaction that cannot be read. With
 * `publicKey` (the key's public key in its suite's encoding), what the transaction spends must
 * belong to that key.
 */
export function readPayment(p: PaymentTx, publicKey?: Uint8Array): ReadPayment {
  if (!p || !(p.tx instanceof Uint8Array))
    throw new ProtocolError(ErrorCode.PAYMENT_MISMATCH, 'payment: no transaction');
  if (p.chain === 'bitcoin') return readBitcoinPayment(p.tx, p.input, publicKey);
  if (p.chain === 'solana') return readSolanaPayment(p.tx, p.input, publicKey);
  throw new ProtocolError(
    ErrorCode.PAYMENT_MISMATCH,
    `payment: chain "${String(p.chain).slice(0, 32)}" is not one of ${PAYMENT_CHAINS.join(', ')}`,
  );
}

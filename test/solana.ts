/**
 * Solana transactions for tests, built with the Solana libraries themselves (@solana/kit and
 * @solana-program/system): a SOL transfer paid by a Tessera Ed25519 key (its public key is its
 * address), in the wire form a wallet hands to `pay({ payment: { chain: 'solana', … } })`.
 */
import {
  type Address,
  appendTransactionMessageInstructions,
  blockhash,
  compileTransaction,
  createNoopSigner,
  createTransactionMessage,
  getAddressDecoder,
  getTransactionEncoder,
  pipe,
  setTransactionMessageFeePayer,
  setTransactionMessageLifetimeUsingBlockhash,
} from '@solana/kit';
import { getTransferSolInstruction } from '@solana-program/system';

/** The Solana address of a 32-byte Ed25519 public key. */
export const solanaAddress = (publicKey: Uint8Array): Address => getAddressDecoder().decode(publicKey);

/** A v0 transaction moving `lamports` from `payer` (who pays the fee) to `to`. */
export function solanaTransfer(payer: Uint8Array, to: Uint8Array, lamports: bigint) {
  const me = solanaAddress(payer);
  const tx = compileTransaction(
    pipe(
      createTransactionMessage({ version: 0 }),
      (x) => setTransactionMessageFeePayer(me, x),
      (x) =>
        setTransactionMessageLifetimeUsingBlockhash(
          { blockhash: blockhash('11111111111111111111111111111111'), lastValidBlockHeight: 9n },
          x,
        ),
      (x) =>
        appendTransactionMessageInstructions(
          [
            getTransferSolInstruction({
              source: createNoopSigner(me),
              destination: solanaAddress(to),
              amount: lamports,
            }),
          ],
          x,
        ),
    ),
  );
  return { tx, payment: { chain: 'solana', tx: new Uint8Array(getTransactionEncoder().encode(tx)), input: 0 } };
}

/**
 * A Solana payment read from its transaction with the Solana libraries (`@solana/kit` for the
 * wire format and the message, `@solana-program/system` and `@solana-program/token` for the
 * instructions): the signature is the key's Ed25519 signature over the transaction's message
 * bytes, which are taken from the transaction — never from whoever sent it. The transaction is
 * the wire form (signature slots, then the message: legacy or v0 without address lookup tables,
 * whose accounts could not be known offline); `input` is the key's place among its signers.
 *
 * Only instructions whose effect is known are accepted: SOL transfers (System program
 * `TransferSol`) from the key, SPL token transfers (`TransferChecked`, which names its mint) with
 * the key as authority, compute-budget limits and prices, and memos. One asset per payment:
 * `SOL`, or `SPL:<mint>`. The fee (base 5,000 lamports per signature plus the priority fee) is in
 * SOL, so it counts towards a SOL payment only.
 */
import {
  type Address,
  decompileTransactionMessage,
  getAddressEncoder,
  getCompiledTransactionMessageDecoder,
  getTransactionDecoder,
  getTransactionMessageComputeUnitLimit,
  getTransactionMessageComputeUnitPrice,
} from '@solana/kit';
import {
  SYSTEM_PROGRAM_ADDRESS,
  SystemInstruction,
  getTransferSolInstructionDataDecoder,
  identifySystemInstruction,
} from '@solana-program/system';
import {
  TOKEN_PROGRAM_ADDRESS,
  TokenInstruction,
  getTransferCheckedInstructionDataDecoder,
  identifyTokenInstruction,
} from '@solana-program/token';
import { equalBytes } from '../bytes.js';
import { ErrorCode, ProtocolError } from '../errors.js';
import type { ReadPayment } from '../payment.js';

const bad = (why: string) => new ProtocolError(ErrorCode.PAYMENT_MISMATCH, `solana payment: ${why}`);
const COMPUTE_BUDGET = 'ComputeBudget111111111111111111111111111111';
const MEMO = 'MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr';
/** Lamports per signature (the base fee) and the default compute units per instruction. */
const SIGNATURE_FEE = 5_000n;
const DEFAULT_UNITS = 200_000;
const MAX_UNITS = 1_400_000;
/** Most bytes of a transaction (Solana's packet limit). */
const MAX_TX_BYTES = 1232;

export function readSolanaPayment(wire: Uint8Array, input: number, publicKey?: Uint8Array): ReadPayment {
  if (wire.length > MAX_TX_BYTES) throw bad(`a transaction is at most ${MAX_TX_BYTES} bytes`);
  let messageBytes: Uint8Array;
  let message: ReturnType<typeof decompileTransactionMessage>;
  let signers: string[];
  try {
    const tx = getTransactionDecoder().decode(wire);
    messageBytes = new Uint8Array(tx.messageBytes);
    const compiled = getCompiledTransactionMessageDecoder().decode(messageBytes);
    // The signers are the first accounts of the message, the fee payer first.
    signers = compiled.staticAccounts.slice(0, compiled.header.numSignerAccounts) as string[];
    if ('addressTableLookups' in compiled && (compiled.addressTableLookups?.length ?? 0) > 0)
      throw new Error('address lookup tables cannot be resolved offline');
    if (compiled.version !== 'legacy' && compiled.version !== 0) throw new Error(`version ${compiled.version}`);
    message = decompileTransactionMessage(compiled);
  } catch (e) {
    throw bad(`not a readable transaction (${(e as Error).message.slice(0, 100)})`);
  }
  if (!Number.isInteger(input) || input < 0 || input >= signers.length)
    throw bad(`input ${input} is not one of its ${signers.length} signers`);
  const me = signers[input] as Address;
  if (publicKey && !equalBytes(new Uint8Array(getAddressEncoder().encode(me)), publicKey))
    throw bad(`signer ${input} is not this key`);
  let asset: string | undefined;
  let amount = 0n;
  const to: string[] = [];
  let instructions = 0;
  const pay = (what: string, value: bigint, dest: string) => {
    if (asset !== undefined && asset !== what) throw bad('one asset per payment');
    asset = what;
    amount += value;
    to.push(dest);
  };
  for (const ix of message.instructions) {
    const program = ix.programAddress as string;
    const data = ix.data ?? new Uint8Array(0);
    const keys = (ix.accounts ?? []).map((a) => a.address as string);
    if (program === COMPUTE_BUDGET || program === MEMO) continue;
    instructions++;
    try {
      if (program === SYSTEM_PROGRAM_ADDRESS) {
        if (identifySystemInstruction(data) !== SystemInstruction.TransferSol)
          throw bad('a System instruction other than a transfer');
        if (keys[0] !== me) throw bad('a SOL transfer from another account than the key');
        pay('SOL', getTransferSolInstructionDataDecoder().decode(data).amount, keys[1] as string);
      } else if (program === TOKEN_PROGRAM_ADDRESS) {
        if (identifyTokenInstruction(data) !== TokenInstruction.TransferChecked)
          throw bad('a Token instruction other than TransferChecked (which names its mint)');
        if (keys[3] !== me) throw bad('a token transfer whose authority is not the key');
        pay(`SPL:${keys[1]}`, getTransferCheckedInstructionDataDecoder().decode(data).amount, keys[2] as string);
      } else throw bad(`an instruction of program ${program.slice(0, 44)} (its effect is not known)`);
    } catch (e) {
      if (e instanceof ProtocolError) throw e;
      throw bad(`a malformed instruction of ${program.slice(0, 44)}`);
    }
  }
  if (asset === undefined) throw bad('no transfer in it');
  const units = getTransactionMessageComputeUnitLimit(message) ?? Math.min(MAX_UNITS, DEFAULT_UNITS * instructions);
  const price =
    getTransactionMessageComputeUnitPrice(message as Parameters<typeof getTransactionMessageComputeUnitPrice>[0]) ?? 0n;
  const fee = SIGNATURE_FEE * BigInt(signers.length) + (price * BigInt(units) + 999_999n) / 1_000_000n;
  return {
    payment: { chain: 'solana', asset, amount, fee: asset === 'SOL' ? fee : 0n, to },
    message: messageBytes,
  };
}

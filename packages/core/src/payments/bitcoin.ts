/**
 * A Bitcoin payment read from its PSBT (BIP 174) with `@scure/btc-signer`: the signature is for
 * one input, spent by the Taproot key path (BIP 341, SIGHASH_DEFAULT), and the message is that
 * input's signature hash, computed here from the transaction — never taken from whoever sent it.
 * The hash commits to every input's amount and script and to every output, so what is read here
 * is what the signature authorises:
 *
 * - `amount`: the value of the outputs that do not pay back to the spent input's own script
 *   (change to the same address is not spent);
 * - `fee`: inputs minus outputs;
 * - `to`: those outputs' addresses (mainnet encoding; a script without one as `script:<hex>`).
 */
import { Address, NETWORK, OutScript, SigHash, Transaction } from '@scure/btc-signer';
import { equalBytes, toHex } from '../bytes.js';
import { ErrorCode, ProtocolError } from '../errors.js';
import type { ReadPayment } from '../payment.js';

/** Most inputs and outputs a payment may have (a bound on the work of reading one). */
const MAX_IO = 256;

const bad = (why: string) => new ProtocolError(ErrorCode.PAYMENT_MISMATCH, `bitcoin payment: ${why}`);

/**
 * Reads the payment; with `publicKey` (the key's BIP 340 x-only key), the spent input must pay
 * to exactly that key (a Taproot output `OP_1 <key>`), so a package cannot claim a made-up input.
 */
export function readBitcoinPayment(psbt: Uint8Array, input: number, publicKey?: Uint8Array): ReadPayment {
  let tx: Transaction;
  try {
    tx = Transaction.fromPSBT(psbt);
  } catch (e) {
    throw bad(`not a PSBT (${(e as Error).message.slice(0, 80)})`);
  }
  if (tx.inputsLength < 1 || tx.inputsLength > MAX_IO || tx.outputsLength < 1 || tx.outputsLength > MAX_IO)
    throw bad(`1..${MAX_IO} inputs and outputs expected`);
  if (!Number.isInteger(input) || input < 0 || input >= tx.inputsLength)
    throw bad(`input ${input} is not one of its ${tx.inputsLength}`);
  const scripts: Uint8Array[] = [];
  const amounts: bigint[] = [];
  for (let i = 0; i < tx.inputsLength; i++) {
    const u = tx.getInput(i).witnessUtxo;
    // Taproot's signature hash commits to every input's amount and script: all are needed.
    if (!u) throw bad(`input ${i} has no witness UTXO (amount and script)`);
    scripts.push(u.script);
    amounts.push(u.amount);
  }
  const own = scripts[input] as Uint8Array;
  if (own.length !== 34 || own[0] !== 0x51 || own[1] !== 0x20)
    throw bad(`input ${input} is not a Taproot output (a key-path spend is what this key signs)`);
  if (publicKey && !equalBytes(own.subarray(2), publicKey)) throw bad(`input ${input} is not this key's output`);
  // The hash below is SIGHASH_DEFAULT's; a PSBT asking for another type is not what gets signed.
  const sighashType = tx.getInput(input).sighashType;
  if (sighashType !== undefined && sighashType !== SigHash.DEFAULT)
    throw bad(`input ${input} asks for sighash type ${sighashType}; only SIGHASH_DEFAULT is signed`);
  let out = 0n;
  let amount = 0n;
  const to: string[] = [];
  for (let i = 0; i < tx.outputsLength; i++) {
    const o = tx.getOutput(i);
    if (o.amount === undefined || !o.script) throw bad(`output ${i} has no amount or script`);
    out += o.amount;
    if (equalBytes(o.script, own)) continue; // change back to the same address
    amount += o.amount;
    let addr: string;
    try {
      addr = Address(NETWORK).encode(OutScript.decode(o.script));
    } catch {
      addr = `script:${toHex(o.script)}`;
    }
    to.push(addr);
  }
  const inputs = amounts.reduce((a, b) => a + b, 0n);
  if (out > inputs) throw bad('its outputs spend more than its inputs');
  let message: Uint8Array;
  try {
    message = tx.preimageWitnessV1(input, scripts, SigHash.DEFAULT, amounts);
  } catch (e) {
    throw bad(`no signature hash for input ${input} (${(e as Error).message.slice(0, 80)})`);
  }
  return { payment: { chain: 'bitcoin', asset: 'BTC', amount, fee: inputs - out, to }, message };
}

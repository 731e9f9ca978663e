/**
 * A Bitcoin payment read from its PSBT (BIP 174) with `@scure/btc-signer`: the signature is for
 * one input — spent by the Taproot key path (BIP 341, SIGHASH_DEFAULT; a `secp256k1-tr` key) or a
 * SegWit v0 P2WPKH output (BIP 143, SIGHASH_ALL; an `ecdsa-secp256k1` key) — and the message is
 * that input's signature hash, computed here from the transaction — never taken from whoever sent it.
 * The hash commits to every output and every input's outpoint, and to the amounts: a Taproot hash
 * to every input's amount and script, a SegWit v0 hash (BIP 143) to the spent input's own amount
 * only — the other inputs' amounts, and so the fee below, are the sender's word there. What is
 * read here is what the signature authorises:
 *
 * - `amount`: the value of the outputs that do not pay back to the spent input's own script
 *   (change to the same address is not spent);
 * - `fee`: inputs minus outputs (exact for a Taproot input; for a v0 input with other inputs, as
 *   the transaction claims their amounts);
 * - `to`: those outputs' addresses (mainnet encoding; a script without one as `script:<hex>`);
 * - `tx`: for a Taproot input, the transaction id (txid), the same for every input's package: a
 *   transaction that spends several of the key's outputs counts once against an allowance. Not
 *   for a v0 input: each package could claim the other inputs smaller (the fee lower), so each
 *   counts whole — over, never under.
 */
import { Address, NETWORK, OutScript, SigHash, Transaction } from '@scure/btc-signer';
import { ripemd160 } from '@noble/hashes/legacy.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { equalBytes, toHex } from '../bytes.js';
import { ErrorCode, ProtocolError } from '../errors.js';
import type { ReadPayment } from '../payment.js';

/** Most inputs and outputs a payment may have (a bound on the work of reading one). */
const MAX_IO = 256;

const bad = (why: string) => new ProtocolError(ErrorCode.PAYMENT_MISMATCH, `bitcoin payment: ${why}`);

/**
 * Reads the payment; with `publicKey`, the spent input must pay to exactly that key, so a package
 * cannot claim a made-up input: a 32-byte BIP 340 key spends a Taproot output `OP_1 <key>`, a
 * 33-byte SEC1 key a P2WPKH output `OP_0 <HASH160(key)>`.
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
  const taproot = own.length === 34 && own[0] === 0x51 && own[1] === 0x20;
  const wpkh = own.length === 22 && own[0] === 0x00 && own[1] === 0x14;
  if ((!taproot && !wpkh) || (publicKey && (publicKey.length === 32 ? !taproot : !wpkh)))
    throw bad(
      `input ${input} is not a ${publicKey?.length === 33 ? 'P2WPKH' : publicKey ? 'Taproot' : 'Taproot or P2WPKH'} output (what this key spends)`,
    );
  if (publicKey && !equalBytes(own.subarray(2), taproot ? publicKey : hash160(publicKey)))
    throw bad(`input ${input} is not this key's output`);
  // The hash below is SIGHASH_DEFAULT's (Taproot) or SIGHASH_ALL's (v0); a PSBT asking for another
  // type is not what gets signed.
  const want = taproot ? SigHash.DEFAULT : SigHash.ALL;
  const sighashType = tx.getInput(input).sighashType;
  if (sighashType !== undefined && sighashType !== want)
    throw bad(
      `input ${input} asks for sighash type ${sighashType}; only ${taproot ? 'SIGHASH_DEFAULT' : 'SIGHASH_ALL'} is signed`,
    );
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
    // BIP 143: a P2WPKH input's scriptCode is the P2PKH script of its key hash.
    message = taproot
      ? tx.preimageWitnessV1(input, scripts, SigHash.DEFAULT, amounts)
      : tx.preimageWitnessV0(
          input,
          OutScript.encode({ type: 'pkh', hash: own.subarray(2) }),
          SigHash.ALL,
          amounts[input] as bigint,
        );
  } catch (e) {
    throw bad(`no signature hash for input ${input} (${(e as Error).message.slice(0, 80)})`);
  }
  const payment = { chain: 'bitcoin', asset: 'BTC', amount, fee: inputs - out, to };
  return { payment: taproot ? { ...payment, tx: tx.id } : payment, message };
}

const hash160 = (b: Uint8Array): Uint8Array => ripemd160(sha256(b));

/**
 * Puts the key's signature into input `input` of the PSBT and finalises that input with
 * `@scure/btc-signer`: a Taproot key-path signature (64 bytes, SIGHASH_DEFAULT) as `tapKeySig`, an
 * ECDSA signature (r ‖ s ‖ v) as the DER `partialSig` of `publicKey` with SIGHASH_ALL. Returns the
 * updated PSBT and, when every input is final, the signed transaction.
 */
export function finaliseBitcoinInput(
  psbt: Uint8Array,
  input: number,
  publicKey: Uint8Array,
  signature: Uint8Array,
  derSignature?: (compact: Uint8Array) => Uint8Array,
): { psbt: Uint8Array; transaction?: Uint8Array; txid?: string } {
  const tx = Transaction.fromPSBT(psbt);
  if (publicKey.length === 32) tx.updateInput(input, { tapKeySig: signature.subarray(0, 64) });
  else {
    if (!derSignature) throw bad('an ECDSA signature needs its DER encoder');
    const der = derSignature(signature.subarray(0, 64));
    tx.updateInput(input, { partialSig: [[publicKey, new Uint8Array([...der, SigHash.ALL])]] });
  }
  tx.finalizeIdx(input);
  let complete = true;
  for (let i = 0; i < tx.inputsLength; i++) {
    const x = tx.getInput(i);
    if (!x.finalScriptWitness && !x.finalScriptSig) complete = false;
  }
  return complete ? { psbt: tx.toPSBT(), transaction: tx.extract(), txid: tx.id } : { psbt: tx.toPSBT() };
}

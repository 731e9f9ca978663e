/**
 * `tessera sign --tron-tx <file>`: a TRON transaction as TronGrid's API and TronWeb hand it out
 * (JSON with `raw_data_hex`, and `txID`), signed by an ECDSA key. It is read here before anything
 * is signed — a TRX transfer (`TransferContract`) or a TRC-20 `transfer` call
 * (`TriggerSmartContract`, e.g. USDT) from the key's own address — so the operator sees what is
 * paid, and the message is computed here: txID = SHA-256 of the `raw_data` bytes; a `txID` in the
 * file that differs is refused.
 *
 * Fields (java-tron `core/Tron.proto` and `core/contract/*.proto`): Transaction.raw { expiration 8,
 * contract 11 (repeated), fee_limit 18 }, Contract { type 1, parameter 2 (Any { type_url 1,
 * value 2 }) }, TransferContract { owner_address 1, to_address 2, amount 3 },
 * TriggerSmartContract { owner_address 1, contract_address 2, call_value 3, data 4 }; read with
 * @bufbuild/protobuf's wire reader; a field outside these is refused (the printed payment must be
 * all the transaction does), and so is a parameter whose type URL is not the contract type's.
 * Addresses are 21 bytes (0x41 ‖ account), printed base58check.
 * The signature goes into the transaction's `signature` list as r ‖ s ‖ (recovery id + 27), the
 * form TronWeb writes.
 */
import { readFileSync } from 'node:fs';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { sha256 } from '@noble/hashes/sha2.js';
import { fromHex, toHex, tronAddress, tronAddressOf } from '@tessera/core';
import { CliError } from './errors.js';

const TRANSFER = 1;
const TRIGGER_SMART_CONTRACT = 31;
const TYPE_URLS: Readonly<Record<number, string>> = {
  [TRANSFER]: 'type.googleapis.com/protocol.TransferContract',
  [TRIGGER_SMART_CONTRACT]: 'type.googleapis.com/protocol.TriggerSmartContract',
};
/** ERC-20/TRC-20 `transfer(address,uint256)` selector. */
const TRANSFER_SELECTOR = 'a9059cbb';

export interface TronPayment {
  /** The paying address (the key's, checked). */
  from: string;
  asset: 'TRX' | `TRC20:${string}`;
  /** In the asset's smallest unit (sun for TRX), as a decimal string. */
  amount: string;
  to: string;
  /** The most energy the transaction may burn, in sun (TRC-20 calls). */
  feeLimit: string;
  /** When the network stops accepting it (ms since the epoch). */
  expiration: number;
}

const bad = (why: string) => new CliError('INVALID_ARGUMENT', `--tron-tx: ${why}`);

/** Each field of a message: its number, wire type and value (bytes, or a varint as bigint). */
function* fields(bytes: Uint8Array): Generator<[number, WireType, Uint8Array | bigint]> {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, type] = r.tag();
    if (type === WireType.Varint) yield [no, type, BigInt(r.int64())];
    else if (type === WireType.LengthDelimited) yield [no, type, r.bytes()];
    // These messages have varints and length-delimited fields only: nothing is skipped unread.
    else throw new Error(`field ${no} has wire type ${type}`);
  }
}

function readMessage(bytes: Uint8Array, what: string): Map<number, (Uint8Array | bigint)[]> {
  const out = new Map<number, (Uint8Array | bigint)[]>();
  try {
    for (const [no, , v] of fields(bytes)) out.set(no, [...(out.get(no) ?? []), v]);
  } catch (e) {
    throw bad(`${what} is not protobuf (${(e as Error).message})`);
  }
  return out;
}

const one = <T extends Uint8Array | bigint>(
  m: Map<number, (Uint8Array | bigint)[]>,
  no: number,
  kind: 'bytes' | 'varint',
): T | undefined => {
  const v = m.get(no)?.at(-1);
  if (v === undefined) return undefined;
  if ((kind === 'bytes') !== v instanceof Uint8Array) throw bad(`field ${no} has the wrong wire type`);
  return v as T;
};

/**
 * Refuses a field this reader does not know: what it prints must be all the transaction does
 * (e.g. TriggerSmartContract's call_token_value and token_id would send TRC-10 tokens along, a
 * Permission_id would sign for a multi-signature permission).
 */
function only(m: Map<number, unknown>, known: readonly number[], what: string): void {
  for (const no of m.keys())
    if (!known.includes(no)) throw bad(`${what} has field ${no}, which this command does not read; refusing to sign`);
}

function address(b: Uint8Array | undefined, what: string): string {
  if (b?.length !== 21 || b[0] !== 0x41) throw bad(`${what} is not a TRON address (0x41 and 20 bytes)`);
  return tronAddressOf(b);
}

/** The payment a TRON transaction's `raw_data` makes; refuses anything else. */
export function readTronPayment(raw: Uint8Array): TronPayment {
  return readTron(raw).payment;
}

/** The payment, and a TRC-20 call's data as hex (the JSON form is compared with it). */
function readTron(raw: Uint8Array): { payment: TronPayment; callData?: string } {
  const tx = readMessage(raw, 'raw_data');
  // ref_block_bytes, ref_block_num, ref_block_hash, expiration, data (memo), contract, timestamp, fee_limit
  only(tx, [1, 3, 4, 8, 10, 11, 14, 18], 'raw_data');
  const contracts = tx.get(11) ?? [];
  if (contracts.length !== 1) throw bad(`a payment has one contract, this transaction has ${contracts.length}`);
  const contract = readMessage(contracts[0] as Uint8Array, 'the contract');
  only(contract, [1, 2], 'the contract');
  const type = Number(one<bigint>(contract, 1, 'varint') ?? 0n);
  const any = readMessage(one<Uint8Array>(contract, 2, 'bytes') ?? new Uint8Array(0), 'the contract parameter');
  only(any, [1, 2], 'the contract parameter');
  const typeUrl = new TextDecoder().decode(one<Uint8Array>(any, 1, 'bytes') ?? new Uint8Array(0));
  const expected = TYPE_URLS[type];
  if (expected && typeUrl !== expected) throw bad(`the contract parameter is ${typeUrl.slice(0, 80)}, not ${expected}`);
  const p = readMessage(one<Uint8Array>(any, 2, 'bytes') ?? new Uint8Array(0), 'the contract parameter value');
  const from = address(one(p, 1, 'bytes'), 'owner_address');
  const common = {
    from,
    feeLimit: String(one<bigint>(tx, 18, 'varint') ?? 0n),
    expiration: Number(one<bigint>(tx, 8, 'varint') ?? 0n),
  };
  if (type === TRANSFER) {
    only(p, [1, 2, 3], 'TransferContract');
    const amount = one<bigint>(p, 3, 'varint') ?? 0n;
    if (amount <= 0n) throw bad('a TRX transfer of no amount');
    return {
      payment: { ...common, asset: 'TRX', amount: String(amount), to: address(one(p, 2, 'bytes'), 'to_address') },
    };
  }
  if (type === TRIGGER_SMART_CONTRACT) {
    only(p, [1, 2, 3, 4], 'TriggerSmartContract');
    const token = address(one(p, 2, 'bytes'), 'contract_address');
    if ((one<bigint>(p, 3, 'varint') ?? 0n) !== 0n) throw bad('a TRC-20 transfer that also sends TRX (call_value)');
    const data = toHex(one<Uint8Array>(p, 4, 'bytes') ?? new Uint8Array(0));
    // transfer(address,uint256): the selector, then two 32-byte words: a 20-byte account, the amount.
    if (data.length !== 8 + 128 || !data.startsWith(TRANSFER_SELECTOR) || !/^0{24}$/.test(data.slice(8, 32)))
      throw bad('the contract call is not a TRC-20 transfer(address,uint256)');
    const amount = BigInt(`0x${data.slice(72)}`);
    if (amount === 0n) throw bad('a TRC-20 transfer of no amount');
    return {
      payment: {
        ...common,
        asset: `TRC20:${token}`,
        amount: String(amount),
        to: tronAddressOf(fromHex(`41${data.slice(32, 72)}`)),
      },
      callData: data,
    };
  }
  throw bad(
    `contract type ${type} is not a payment this command reads (TRX or TRC-20 transfer); sign its txID with --message`,
  );
}

export interface TronTransaction {
  /** The file's JSON, signed into as it came. */
  json: Record<string, unknown>;
  /** SHA-256 of raw_data: what the key signs. */
  txID: Uint8Array;
  payment: TronPayment;
}

/** Reads the transaction file and checks its txID. */
export function readTronTx(file: string): TronTransaction {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw bad(`${file} is not readable JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('expected a JSON object');
  if (typeof json.raw_data_hex !== 'string' || !/^([0-9a-fA-F]{2})+$/.test(json.raw_data_hex))
    throw bad('raw_data_hex (the transaction bytes as hex) is missing');
  const raw = fromHex(json.raw_data_hex);
  const txID = sha256(raw);
  if (json.txID !== undefined && String(json.txID).toLowerCase() !== toHex(txID))
    throw bad(`txID ${String(json.txID).slice(0, 64)} is not SHA-256 of raw_data_hex (${toHex(txID)})`);
  if (Array.isArray(json.signature) && json.signature.length)
    throw bad('the transaction is already signed (multi-signature accounts: not supported here)');
  const { payment, callData } = readTron(raw);
  checkJsonAgrees(json, payment, callData);
  return { json, txID, payment };
}

/** A JSON address field in either of TronGrid's forms (`visible`: base58; else hex 41…). */
function jsonAddress(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  if (/^41[0-9a-fA-F]{40}$/.test(v)) return tronAddressOf(fromHex(v));
  return v;
}

/**
 * The file's `raw_data` object, when present, must say what `raw_data_hex` says: a wallet that
 * broadcasts the JSON form (TronGrid re-encodes it) would otherwise send other bytes than were
 * read and signed (the network would refuse the signature, but the operator saw the wrong payment).
 */
function checkJsonAgrees(json: Record<string, unknown>, p: TronPayment, callData: string | undefined): void {
  const raw = json.raw_data as { contract?: { parameter?: { value?: Record<string, unknown> } }[] } | undefined;
  if (raw === undefined) return;
  const contracts = raw?.contract;
  const v = Array.isArray(contracts) && contracts.length === 1 ? contracts[0]?.parameter?.value : undefined;
  const disagree = (what: string) => bad(`raw_data and raw_data_hex disagree (${what}): refusing to sign`);
  if (!v || typeof v !== 'object') throw disagree('contract');
  if (jsonAddress(v.owner_address) !== p.from) throw disagree('owner_address');
  if (p.asset === 'TRX') {
    if (jsonAddress(v.to_address) !== p.to) throw disagree('to_address');
    if (String(v.amount) !== p.amount) throw disagree('amount');
  } else {
    if (`TRC20:${jsonAddress(v.contract_address)}` !== p.asset) throw disagree('contract_address');
    const data = typeof v.data === 'string' ? v.data.toLowerCase().replace(/^0x/, '') : '';
    if (data !== callData) throw disagree('data');
  }
}

/** Refuses a transaction that pays from another address than the signing key's. */
export function checkTronSender(tx: TronTransaction, publicKey: Uint8Array): void {
  const mine = tronAddress(publicKey);
  if (tx.payment.from !== mine)
    throw bad(`the transaction pays from ${tx.payment.from}; this key's address is ${mine}`);
}

/** The signed transaction (what TronGrid's `broadcasttransaction` takes), its id and payment. */
export function signedTronTx(tx: TronTransaction, signature: Uint8Array) {
  const v = signature[64] as number;
  if (signature.length !== 65 || v > 1) throw new CliError('SIGNATURE_INVALID', 'the signature has no TRON form');
  const sig = `${toHex(signature.subarray(0, 64))}${(v + 27).toString(16)}`;
  return {
    from: tx.payment.from,
    txID: toHex(tx.txID),
    payment: tx.payment,
    transaction: { ...tx.json, txID: toHex(tx.txID), signature: [sig] },
  };
}

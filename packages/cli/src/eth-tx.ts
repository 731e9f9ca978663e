/**
 * `tessera sign --eth-tx <file>`: an EIP-1559 transaction (Ethereum, BNB Chain, Polygon, any EVM
 * chain by its chainId) signed by an ECDSA key. viem does the serialisation — the typed envelope
 * (0x02 ‖ RLP), and the signed form with y-parity, r and s — so the digest the cluster signs is
 * keccak256 of exactly the bytes the chain will hash, derived here from the transaction, never
 * taken from the caller.
 *
 * The file is JSON: { chainId, nonce, to, value, gas, maxFeePerGas, maxPriorityFeePerGas,
 * data?, accessList? }, integers as JSON numbers or decimal strings (wei), `to` a 0x address.
 */
import { readFileSync } from 'node:fs';
import {
  decodeFunctionData,
  erc20Abi,
  getAddress,
  keccak256,
  serializeTransaction,
  type TransactionSerializableEIP1559,
} from 'viem';
import { CliError } from './errors.js';

const UINT = /^(0|[1-9][0-9]{0,77})$/;

function uint(v: unknown, what: string): bigint {
  const s = typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? String(v) : v;
  if (typeof s !== 'string' || !UINT.test(s))
    throw new CliError(
      'INVALID_ARGUMENT',
      `--eth-tx: ${what} must be a non-negative integer (number or decimal string)`,
    );
  return BigInt(s);
}

function hex(v: unknown, what: string, bytes?: number): `0x${string}` {
  if (typeof v !== 'string' || !/^0x([0-9a-fA-F]{2})*$/.test(v) || (bytes !== undefined && v.length !== 2 + 2 * bytes))
    throw new CliError(
      'INVALID_ARGUMENT',
      `--eth-tx: ${what} must be 0x-prefixed hex${bytes ? ` of ${bytes} bytes` : ''}`,
    );
  return v as `0x${string}`;
}

/** Reads and checks the transaction file. */
export function readEthTx(file: string): TransactionSerializableEIP1559 {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new CliError('INVALID_ARGUMENT', `--eth-tx: ${file} is not readable JSON (${(e as Error).message})`);
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j))
    throw new CliError('INVALID_ARGUMENT', '--eth-tx: expected a JSON object');
  const chainId = Number(uint(j.chainId, 'chainId'));
  if (!Number.isSafeInteger(chainId) || chainId < 1) throw new CliError('INVALID_ARGUMENT', '--eth-tx: chainId ≥ 1');
  const nonce = Number(uint(j.nonce, 'nonce'));
  if (!Number.isSafeInteger(nonce)) throw new CliError('INVALID_ARGUMENT', '--eth-tx: nonce too large');
  return {
    type: 'eip1559',
    chainId,
    nonce,
    to: hex(j.to, 'to', 20),
    value: uint(j.value ?? 0, 'value'),
    gas: uint(j.gas, 'gas'),
    maxFeePerGas: uint(j.maxFeePerGas, 'maxFeePerGas'),
    maxPriorityFeePerGas: uint(j.maxPriorityFeePerGas, 'maxPriorityFeePerGas'),
    ...(j.data !== undefined ? { data: hex(j.data, 'data') } : {}),
  };
}

export interface EthPayment {
  /** `native` (ETH, BNB, POL: the chain's coin) or `ERC20:<token contract>`. */
  asset: 'native' | `ERC20:${string}`;
  /** In the asset's smallest unit (wei for the coin), as a decimal string. */
  amount: string;
  to: string;
  /** The most the transaction may pay for gas, in wei (gas × maxFeePerGas). */
  maxFee: string;
}

/**
 * What the transaction pays, when it is a payment: the coin (no call data) or an ERC-20
 * `transfer(address,uint256)` (decoded by viem with the standard ABI, no coin sent along).
 * Other contract calls are signed as they are and have no payment here.
 */
export function ethPayment(tx: TransactionSerializableEIP1559): EthPayment | undefined {
  const maxFee = String((tx.gas ?? 0n) * (tx.maxFeePerGas ?? 0n));
  const to = tx.to as `0x${string}`;
  if (!tx.data || tx.data === '0x')
    return { asset: 'native', amount: String(tx.value ?? 0n), to: getAddress(to), maxFee };
  // transfer(address,uint256): the selector and two words, nothing more.
  if ((tx.value ?? 0n) !== 0n || tx.data.length !== 2 + 8 + 128) return undefined;
  try {
    const call = decodeFunctionData({ abi: erc20Abi, data: tx.data });
    if (call.functionName !== 'transfer') return undefined;
    const [recipient, amount] = call.args as readonly [`0x${string}`, bigint];
    return { asset: `ERC20:${getAddress(to)}`, amount: String(amount), to: getAddress(recipient), maxFee };
  } catch {
    return undefined;
  }
}

/** The digest an EIP-1559 signature covers: keccak256 of the unsigned typed transaction. */
export function ethTxDigest(tx: TransactionSerializableEIP1559): Uint8Array {
  return Buffer.from(keccak256(serializeTransaction(tx)).slice(2), 'hex');
}

/** The signed raw transaction (what `eth_sendRawTransaction` takes) and its hash. */
export function signedEthTx(
  tx: TransactionSerializableEIP1559,
  signature: Uint8Array,
): { rawTransaction: `0x${string}`; hash: `0x${string}` } {
  const v = signature[64] as number;
  // Ethereum has no room for the (2^-128-rare) R.x ≥ q case: such a signature cannot be sent.
  if (signature.length !== 65 || v > 1) throw new CliError('SIGNATURE_INVALID', 'the signature has no EVM form');
  const h = (b: Uint8Array) => `0x${Buffer.from(b).toString('hex')}` as `0x${string}`;
  const rawTransaction = serializeTransaction(tx, {
    r: h(signature.subarray(0, 32)),
    s: h(signature.subarray(32, 64)),
    yParity: v,
  });
  return { rawTransaction, hash: keccak256(rawTransaction) };
}

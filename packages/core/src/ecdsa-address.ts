/**
 * Addresses of an ECDSA secp256k1 public key (a threshold key or one of its HD children) on the
 * chains wallets pay on:
 * - EVM (Ethereum, BNB Chain, Polygon): the last 20 bytes of keccak256 of the uncompressed key
 *   (without its 0x04 prefix), EIP-55 mixed-case checksum;
 * - TRON: the same 20 bytes after the 0x41 prefix, base58check (double SHA-256 checksum);
 * - Bitcoin SegWit v0 (BIP141/BIP173): P2WPKH, bech32 of witness version 0 and
 *   HASH160(compressed key).
 * Encodings come from @scure/base, hashes from @noble/hashes; the key is validated first.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { ripemd160 } from '@noble/hashes/legacy.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { bech32, createBase58check } from '@scure/base';
import { utf8ToBytes } from './bytes.js';
import { InvalidArgumentError } from './errors.js';

export type SegwitNetwork = 'mainnet' | 'testnet' | 'regtest';
const HRP: Readonly<Record<SegwitNetwork, string>> = { mainnet: 'bc', testnet: 'tb', regtest: 'bcrt' };
const base58check = createBase58check(sha256);

function point(publicKey: Uint8Array) {
  if (!(publicKey instanceof Uint8Array) || (publicKey.length !== 33 && publicKey.length !== 65))
    throw new InvalidArgumentError('public key must be a 33- or 65-byte SEC1 secp256k1 key');
  try {
    return secp256k1.Point.fromBytes(publicKey);
  } catch {
    throw new InvalidArgumentError('public key is not a point on secp256k1');
  }
}

/** The 20-byte account of an EVM or TRON address: keccak256(x ‖ y)[12..32]. */
export function evmAccount(publicKey: Uint8Array): Uint8Array {
  return keccak_256(point(publicKey).toBytes(false).subarray(1)).subarray(12);
}

/** EIP-55 checksummed EVM address (`0x…`). */
export function evmAddress(publicKey: Uint8Array): string {
  const lower = bytesToHex(evmAccount(publicKey));
  const hash = bytesToHex(keccak_256(utf8ToBytes(lower)));
  let out = '0x';
  for (let i = 0; i < 40; i++)
    out += Number.parseInt(hash[i] as string, 16) >= 8 ? (lower[i] as string).toUpperCase() : lower[i];
  return out;
}

/** TRON address (`T…`): base58check of 0x41 ‖ account. */
export function tronAddress(publicKey: Uint8Array): string {
  return tronAddressOf(new Uint8Array([0x41, ...evmAccount(publicKey)]));
}

/** The `T…` form of a 21-byte TRON address as transactions carry it (0x41 ‖ account). */
export function tronAddressOf(address: Uint8Array): string {
  if (!(address instanceof Uint8Array) || address.length !== 21 || address[0] !== 0x41)
    throw new InvalidArgumentError('a TRON address is 0x41 and a 20-byte account');
  return base58check.encode(address);
}

/** Bitcoin P2WPKH address (`bc1q…`) of the compressed key. */
export function p2wpkhAddress(publicKey: Uint8Array, network: SegwitNetwork = 'mainnet'): string {
  const program = ripemd160(sha256(point(publicKey).toBytes(true)));
  return bech32.encode(HRP[network], [0, ...bech32.toWords(program)]);
}

/** Every address of an ECDSA key, as `tessera derive` prints them. */
export function ecdsaAddresses(publicKey: Uint8Array, network: SegwitNetwork = 'mainnet') {
  return { evm: evmAddress(publicKey), tron: tronAddress(publicKey), p2wpkh: p2wpkhAddress(publicKey, network) };
}

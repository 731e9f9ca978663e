/**
 * The console's address column (apps/console/src/addresses.ts): an ECDSA key shows every chain
 * it pays on, each address decoded back here to the key with independent code (viem for EVM,
 * base58check for TRON, bech32 for SegWit); the other suites their one chain.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { ripemd160 } from '@noble/hashes/legacy.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bech32, createBase58check } from '@scure/base';
import { publicKeyToAddress } from 'viem/accounts';
import { describe, expect, it } from 'vitest';
import { address, toHex } from '@tessera/core';
import { keyAddresses } from '../apps/console/src/addresses.js';

describe('console: key addresses', () => {
  it('an ECDSA key: its EVM, TRON and P2WPKH addresses, each that key', () => {
    const pk = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true);
    const line = keyAddresses('ecdsa-secp256k1', toHex(pk));
    const m = /^(0x[0-9a-fA-F]{40}) \(EVM\) · (T\w+) \(TRON\) · (bc1q\w+) \(Bitcoin SegWit\)$/.exec(line);
    expect(m, line).not.toBeNull();
    const [, evm, tron, segwit] = m as unknown as string[];
    const uncompressed = `0x${toHex(secp256k1.Point.fromBytes(pk).toBytes(false))}` as const;
    expect(evm).toBe(publicKeyToAddress(uncompressed));
    expect(toHex(createBase58check(sha256).decode(tron as string))).toBe(`41${(evm as string).slice(2).toLowerCase()}`);
    const words = bech32.decode(segwit as `${string}1${string}`);
    expect(words.words[0]).toBe(0);
    expect(toHex(bech32.fromWords(words.words.slice(1)))).toBe(toHex(ripemd160(sha256(pk))));
  });

  it('the FROST suites: the one chain each pays on', () => {
    const pk = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true);
    const xonly = pk.subarray(1);
    expect(keyAddresses('secp256k1-tr', toHex(xonly))).toBe(`${address('secp256k1-tr', xonly)} (Bitcoin Taproot)`);
    expect(keyAddresses('secp256k1-tr', toHex(xonly))).toMatch(/^bc1p\w+ \(Bitcoin Taproot\)$/);
    expect(keyAddresses('secp256k1', toHex(pk))).toBe(address('secp256k1', pk));
  });
});

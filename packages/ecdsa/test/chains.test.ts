/**
 * Threshold ECDSA signatures as the chains take them, checked by the chains' own libraries: a key
 * from Tessera's DKG signs an EIP-1559 transaction that viem serialises and from which viem
 * recovers the sender — our EIP-55 address; an HD child (BIP32 non-hardened, the same child
 * public key as @scure/bip32 from the group xpub) signs for its own key and has the TRON address
 * of its account; a Bitcoin SegWit v0 (P2WPKH) spend is finalised by @scure/btc-signer with our
 * DER signature and its witness verifies (tiny-secp256k1, a third verifier) against the BIP143
 * sighash. The addresses match well-known answers for the keys 1 and 2.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { HDKey } from '@scure/bip32';
import * as btc from '@scure/btc-signer';
import * as ecc from 'tiny-secp256k1';
import {
  bytesToHex,
  hexToBytes,
  keccak256,
  numberToHex,
  recoverTransactionAddress,
  serializeTransaction,
  type TransactionSerializableEIP1559,
} from 'viem';
import { publicKeyToAddress } from 'viem/accounts';
import { beforeAll, describe, expect, it } from 'vitest';
import { createBase58check } from '@scure/base';
import { deriveKey, extendedPublicKey } from '@tessera/core';
import { ecdsaAddresses, evmAccount, evmAddress, p2wpkhAddress, tronAddress, tweakedKey } from '../src/index.js';
import { dkgKey, rng, signDigest } from './harness.js';

let key: ReturnType<typeof dkgKey>;
beforeAll(() => {
  key = dkgKey();
}, 60_000);

const G = secp256k1.Point.BASE;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('addresses', () => {
  it('known answers: keys 1 and 2 (EIP-55, TRON, BIP173 P2WPKH)', () => {
    expect(ecdsaAddresses(G.multiply(1n).toBytes(true))).toEqual({
      evm: '0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf',
      tron: 'TMVQGm1qAQYVdetCeGRRkTWYYrLXuHK2HC',
      p2wpkh: 'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4',
    });
    expect(evmAddress(G.multiply(2n).toBytes(false))).toBe('0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF');
  });

  it('agree with viem, @scure/btc-signer and a base58check decoding for the threshold key', () => {
    const pk = key.publicKey;
    expect(evmAddress(pk)).toBe(publicKeyToAddress(bytesToHex(secp256k1.Point.fromBytes(pk).toBytes(false))));
    expect(p2wpkhAddress(pk)).toBe(btc.p2wpkh(pk, btc.NETWORK).address);
    expect(p2wpkhAddress(pk, 'testnet')).toBe(btc.p2wpkh(pk, btc.TEST_NETWORK).address);
    expect(hex(createBase58check(sha256).decode(tronAddress(pk)))).toBe(`41${hex(evmAccount(pk))}`);
    expect(() => evmAddress(new Uint8Array(33))).toThrowError(/not a point/);
  });
});

describe('Ethereum / BNB Chain: EIP-1559', () => {
  it('viem recovers the threshold key’s address from the signed raw transaction', async () => {
    const tx: TransactionSerializableEIP1559 = {
      type: 'eip1559',
      chainId: 56,
      nonce: 7,
      maxFeePerGas: 3_000_000_000n,
      maxPriorityFeePerGas: 1_000_000_000n,
      gas: 21_000n,
      to: '0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF',
      value: 10n ** 16n,
    };
    const digest = hexToBytes(keccak256(serializeTransaction(tx)));
    const sig = signDigest(key, [2, 3], digest);
    const raw = serializeTransaction(tx, {
      r: numberToHex(sig.r, { size: 32 }),
      s: numberToHex(sig.s, { size: 32 }),
      yParity: sig.recovery & 1,
    });
    expect(await recoverTransactionAddress({ serializedTransaction: raw })).toBe(evmAddress(key.publicKey));
    expect(ecc.verify(digest, key.publicKey, sig.compact, true)).toBe(true);
  });
});

describe('HD children and TRON', () => {
  it('a BIP32 child (same as @scure/bip32 from the xpub) signs for its own key only', () => {
    const child = deriveKey(key.group, 'm/0/7');
    const fromXpub = HDKey.fromExtendedKey(extendedPublicKey(key.group)).derive('m/0/7');
    expect(hex(child.publicKey)).toBe(hex(fromXpub.publicKey as Uint8Array));
    expect(hex(tweakedKey(key.publicKey, child.tweak.add))).toBe(hex(child.publicKey));
    const digest = sha256(rng(50));
    const sig = signDigest(key, [1, 2], digest, child.tweak.add);
    expect(ecc.verify(digest, child.publicKey, sig.compact, true)).toBe(true);
    expect(ecc.verify(digest, key.publicKey, sig.compact, true)).toBe(false);
    expect(tronAddress(child.publicKey)).toMatch(/^T[1-9A-HJ-NP-Za-km-z]{33}$/);
    expect(tronAddress(child.publicKey)).not.toBe(tronAddress(key.publicKey));
  });
});

describe('Bitcoin SegWit v0 (P2WPKH)', () => {
  it('@scure/btc-signer finalises the spend with the threshold signature; the witness verifies against the BIP143 sighash', () => {
    const pk = key.publicKey;
    const pay = btc.p2wpkh(pk, btc.NETWORK);
    const amount = 100_000n;
    const tx = new btc.Transaction();
    tx.addInput({ txid: rng(32), index: 1, witnessUtxo: { script: pay.script, amount } });
    tx.addOutputAddress('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', 90_000n, btc.NETWORK);
    // BIP143: a P2WPKH input signs with the P2PKH script of its key as scriptCode.
    const sighash = tx.preimageWitnessV0(0, btc.p2pkh(pk).script, btc.SigHash.ALL, amount);
    const sig = signDigest(key, [1, 3], sighash);
    const der = secp256k1.Signature.fromBytes(sig.compact).toBytes('der');
    tx.updateInput(0, { partialSig: [[pk, new Uint8Array([...der, btc.SigHash.ALL])]] });
    tx.finalize();
    const witness = tx.getInput(0).finalScriptWitness as Uint8Array[];
    expect(witness).toHaveLength(2);
    expect(hex(witness[1] as Uint8Array)).toBe(hex(pk));
    const w0 = witness[0] as Uint8Array;
    expect(w0[w0.length - 1]).toBe(btc.SigHash.ALL);
    const compact = secp256k1.Signature.fromBytes(w0.subarray(0, -1), 'der').toBytes('compact');
    expect(ecc.verify(sighash, pk, compact, true)).toBe(true);
    expect(tx.hex).toMatch(/^02000000/); // a whole, serialisable transaction
  });
});

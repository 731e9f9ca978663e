/**
 * A key's addresses as the console lists them: the chain its suite pays on, and for an ECDSA key
 * every chain it pays on — EVM (Ethereum, BNB Chain, Polygon), TRON and Bitcoin SegWit v0 — from
 * core's encoders (the same ones `tessera derive` prints).
 */
import { address, ecdsaAddresses, fromHex } from '@tessera/core';

const CHAIN: Record<string, string> = { ed25519: 'Solana', 'secp256k1-tr': 'Bitcoin Taproot' };

export function keyAddresses(suite: string, publicKey: string): string {
  const pk = fromHex(publicKey);
  if (suite === 'ecdsa-secp256k1') {
    const a = ecdsaAddresses(pk);
    return `${a.evm} (EVM) · ${a.tron} (TRON) · ${a.p2wpkh} (Bitcoin SegWit)`;
  }
  const a = address(suite as Parameters<typeof address>[0], pk);
  return CHAIN[suite] ? `${a} (${CHAIN[suite]})` : a;
}

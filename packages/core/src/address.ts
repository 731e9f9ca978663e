/**
 * Addresses users expect for a Tessera public key (a group key or an HD child, see hd.ts).
 *
 * - `secp256k1-tr` → Bitcoin Taproot (BIP341/BIP350): bech32m, witness version 1, program = the
 *   32-byte x-only *output* key exactly as it signs (`bc1p…`, `tb1p…`, `bcrt1p…`). The key is used
 *   as is: it already is an output key (noble tweaks DKG output; hd.ts tweaks every child), so no
 *   further TapTweak is applied here.
 * - `ed25519` → Solana: base58 of the 32-byte Ed25519 public key.
 * - `secp256k1`, `p256` → lowercase hex of the SEC1 compressed key. Deliberately *no* Bitcoin
 *   address for `secp256k1`: that suite emits RFC 9591 Schnorr signatures (R || z, 65 bytes, a
 *   hash-to-field challenge), which no Bitcoin script can verify — P2WPKH/P2PKH need ECDSA and
 *   P2TR needs BIP340 — so a P2WPKH address would receive coins the cluster can never spend. Use
 *   `secp256k1-tr` for Bitcoin.
 * - `ecdsa-secp256k1` → the EIP-55 EVM address (./ecdsa-address.ts has TRON and P2WPKH too).
 *
 * Encodings come from @scure/base (audited, pure JS, no dependencies); keys are validated with
 * noble before an address is returned.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToNumberBE } from '@noble/curves/utils.js';
import { base58, bech32m } from '@scure/base';
import { toHex } from './bytes.js';
import { InvalidArgumentError } from './errors.js';
import { evmAddress } from './ecdsa-address.js';
import { getSuite, type Suite, type SuiteId } from './suites.js';

/** Bitcoin networks by their bech32 human-readable part (signet shares testnet's `tb`). */
export type BitcoinNetwork = 'mainnet' | 'testnet' | 'signet' | 'regtest';

const HRP: Readonly<Record<BitcoinNetwork, string>> = Object.freeze({
  mainnet: 'bc',
  testnet: 'tb',
  signet: 'tb',
  regtest: 'bcrt',
});

function bytesArg(b: unknown, len: number, what: string): Uint8Array {
  if (!(b instanceof Uint8Array) || b.length !== len) throw new InvalidArgumentError(`${what} must be ${len} bytes`);
  return b;
}

/**
 * BIP341/BIP350 Taproot address of a 32-byte x-only output key: bech32m(hrp, [1] || program).
 * Rejects an x that is not on the curve (BIP341 requires a valid `lift_x` for key-path spends).
 */
export function taprootAddress(outputKey: Uint8Array, network: BitcoinNetwork = 'mainnet'): string {
  bytesArg(outputKey, 32, 'Taproot output key');
  const hrp = HRP[network];
  if (hrp === undefined) throw new InvalidArgumentError(`unknown Bitcoin network "${String(network)}"`);
  try {
    schnorr.utils.lift_x(bytesToNumberBE(outputKey));
  } catch {
    throw new InvalidArgumentError('Taproot output key is not the x coordinate of a curve point');
  }
  return bech32m.encode(hrp, [1, ...bech32m.toWords(outputKey)]);
}

/** Solana address: base58 of the 32-byte Ed25519 public key (which must decode as a curve point). */
export function solanaAddress(publicKey: Uint8Array): string {
  bytesArg(publicKey, 32, 'Ed25519 public key');
  try {
    ed25519.Point.fromBytes(publicKey);
  } catch {
    throw new InvalidArgumentError('not an Ed25519 public key');
  }
  return base58.encode(publicKey);
}

/**
 * The address users expect for `publicKey` in the suite's standard encoding (what
 * `groupPublicKey` and `deriveKey(...).publicKey` return): Taproot for `secp256k1-tr`, Solana for
 * `ed25519`, hex otherwise (see the module comment for why `secp256k1` gets no Bitcoin address).
 * `network` only matters for Taproot.
 */
export function address(suite: Suite | SuiteId, publicKey: Uint8Array, network: BitcoinNetwork = 'mainnet'): string {
  const s = typeof suite === 'string' ? getSuite(suite) : suite;
  switch (s.id) {
    case 'secp256k1-tr':
      return taprootAddress(publicKey, network);
    case 'ed25519':
      return solanaAddress(publicKey);
    case 'ecdsa-secp256k1':
      return evmAddress(publicKey);
    case 'secp256k1':
    case 'p256': {
      bytesArg(publicKey, 33, `${s.id} public key`);
      try {
        (s.id === 'p256' ? p256 : secp256k1).Point.fromBytes(publicKey);
      } catch {
        throw new InvalidArgumentError(`not a compressed ${s.id} public key`);
      }
      return toHex(publicKey);
    }
  }
}

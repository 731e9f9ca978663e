/** Small byte helpers shared by the core. Everything here is pure. */
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { equalBytes } from '@noble/curves/utils.js';
import type { RNG } from '@noble/curves/abstract/frost.js';
import { InvalidArgumentError } from './errors.js';

export { bytesToHex, concatBytes, equalBytes, utf8ToBytes };

/**
 * A source of cryptographically secure random bytes (noble's RNG shape). Injected everywhere;
 * tests pass seeded ones.
 */
export type Rng = RNG;
/** Milliseconds since the Unix epoch. Injected wherever time matters (expiry, rate limits). */
export type Clock = () => number;

/** Parses lowercase or uppercase hex; throws {@link InvalidArgumentError} on anything else. */
export function fromHex(hex: string, what = 'hex'): Uint8Array {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex))
    throw new InvalidArgumentError(`${what}: expected an even-length hex string`);
  return hexToBytes(hex);
}

export function toHex(b: Uint8Array): string {
  return bytesToHex(b);
}

/** Big-endian u32, used for length prefixes and tags in hashed transcripts. */
export function u32be(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new InvalidArgumentError('u32 out of range');
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, false);
  return out;
}

/** Big-endian u64 from a safe integer. */
export function u64be(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('u64 out of range');
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), false);
  return out;
}

/**
 * Unambiguous concatenation for hashing: each part is prefixed by its u32 length, so that
 * ("ab","c") and ("a","bc") never collide.
 */
export function lengthPrefixed(...parts: Uint8Array[]): Uint8Array {
  const out: Uint8Array[] = [];
  for (const p of parts) out.push(u32be(p.length), p);
  return concatBytes(...out);
}

/** Compares byte arrays lexicographically (for canonical ordering). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Best-effort erasure of a secret buffer. */
export function wipe(...bufs: (Uint8Array | undefined)[]): void {
  for (const b of bufs) b?.fill(0);
}

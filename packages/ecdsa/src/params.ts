/**
 * Parameters, hashes and encodings of Tessera's DKLs23 (Doerner, Kondi, Lee, shelat, "Threshold
 * ECDSA in Three Rounds", IEEE S&P 2024, eprint 2023/765; cited below as [DKLs23]).
 *
 * Every hash is TupleHash256 (NIST SP 800-185: each part's length is encoded, so no two tuples
 * collide by concatenation) personalised with `tessera/dkls23/secp256k1/v1/<tag>`; hashing to the
 * curve is RFC 9380 `secp256k1_XMD:SHA-256_SSWU_RO_` (nobody knows the discrete log of its
 * output). Scalars are 32 bytes big-endian and canonical (< q); points are 33-byte SEC1
 * compressed, never the identity.
 */
import { secp256k1, secp256k1_hasher } from '@noble/curves/secp256k1.js';
import { bytesToNumberBE } from '@noble/curves/utils.js';
import { shake256 } from '@noble/hashes/sha3.js';
import { tuplehash256 } from '@noble/hashes/sha3-addons.js';
import { DecodeError, u32be, utf8ToBytes } from '@tessera/core';

export const Point = secp256k1.Point;
export type Point = InstanceType<typeof secp256k1.Point>;
export const Fn = secp256k1.Point.Fn;
/** The group order q. */
export const Q = Fn.ORDER;

/** |q| in bits ([DKLs23] §5: κ). */
export const KAPPA = 256;
/** Statistical security parameter λ_s. */
export const LAMBDA_S = 80;
/** OTs per random vector OLE, and the gadget length: ξ = κ + 2λ_s ([DKLs23] Protocol 5.2). */
export const XI = KAPPA + 2 * LAMBDA_S;
/** Base OTs per OT-extension instance: λ_c = 128 ([DKLs23] §8.1). */
export const BASE_OTS = 128;
/** Extended OTs: ξ padded to two 256-bit check blocks, plus one 256-bit mask block ([DKLs23] §5.1). */
export const EXTENDED = 768;
/** Bytes of one extended column (one base OT's PRG output). */
export const COLUMN_BYTES = EXTENDED / 8;
/** Vector OLE width ℓ: Alice inputs (r_i, sk_i) ([DKLs23] Protocol 3.6, the forced reuse). */
export const ELL = 2;
/** Check columns ρ = ⌈κ/λ_c⌉ ([DKLs23] Protocol 5.2). */
export const RHO = 2;

const PREFIX = 'tessera/dkls23/secp256k1/v1/';

/** Every domain-separation tag; a test checks they are distinct. */
export const TAGS = [
  'setup-sid',
  'inst-sid',
  'mr19-rand',
  'mr19-H',
  'mr19-key',
  'zero-com',
  'gadget',
  'rvole-sid',
  'ote-sid',
  'ote-prg',
  'ote-chi',
  'ote-out',
  'rvole-theta',
  'rvole-mu',
  'com-R',
  'zero',
  'rerandomise',
  'setup-transcript',
] as const;
export type Tag = (typeof TAGS)[number];

type TupleState = ReturnType<typeof tuplehash256.create>;
const bases = new Map<string, TupleState>();

/** The TupleHash256 state personalised with `tag` for `len` output bytes (built once, then cloned). */
function base(tag: Tag, len: number): TupleState {
  const key = `${tag}/${len}`;
  let b = bases.get(key);
  if (!b) bases.set(key, (b = tuplehash256.create({ dkLen: len, personalization: utf8ToBytes(PREFIX + tag) })));
  return b;
}

/** H(tag, parts, len): TupleHash256 personalised with the tag. */
export function H(tag: Tag, parts: readonly Uint8Array[], len: number): Uint8Array {
  const h = base(tag, len).clone();
  for (const p of parts) h.update(p);
  return h.digest();
}

/** A SHAKE256 state of the platform's (Node's OpenSSL), as `node:crypto` gives it. */
interface PlatformXof {
  update(b: Uint8Array): PlatformXof;
  copy(o: { outputLength: number }): PlatformXof;
  digest(): Uint8Array;
}

/**
 * Node's `crypto.createHash('shake256')`, where the platform has it (Node ≥ 20.16 gives built-in
 * modules to code that cannot import them: `process.getBuiltinModule`); elsewhere (browsers,
 * phones, older Node) undefined and noble's SHAKE256 is used. The same function either way
 * (FIPS 202; test/params checks the two agree byte for byte): OpenSSL's Keccak is what makes
 * the OT extension's thousands of calls per presignature ~4× cheaper on a signer node.
 */
const platformShake = (() => {
  const p = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const c = p?.getBuiltinModule?.('node:crypto') as
    | { createHash(alg: string, o: { outputLength: number }): PlatformXof; getHashes(): string[] }
    | undefined;
  return c?.getHashes().includes('shake256') ? c : undefined;
})();

/** Whether the OT extension hashes with the platform's SHAKE256 here. */
export const platformXof = platformShake !== undefined;

/**
 * A keyed XOF for the hot paths (the OT-extension PRG and random-OT outputs, thousands of calls
 * per session): SHAKE256 over k ‖ parts with k = H(tag, prefix, 32), the state after k absorbed
 * once and copied per call. Callers pass parts of fixed lengths, so the input is unambiguous.
 * `useNoble` forces the portable implementation (the tests compare the two).
 */
export function hasher(
  tag: Tag,
  len: number,
  prefix: readonly Uint8Array[],
  useNoble = false,
): (parts: readonly Uint8Array[]) => Uint8Array {
  const key = H(tag, prefix, 32);
  if (platformShake && !useNoble) {
    const b = platformShake.createHash('shake256', { outputLength: len }).update(key);
    return (parts) => {
      const h = b.copy({ outputLength: len });
      for (const p of parts) h.update(p);
      return h.digest();
    };
  }
  const b = shake256.create({ dkLen: len });
  b.update(key);
  return (parts) => {
    const h = b.clone();
    for (const p of parts) h.update(p);
    return h.digest();
  };
}

/** 48 big-endian bytes at `off` as a scalar mod q. */
function wideScalar(b: Uint8Array, off: number): bigint {
  const dv = new DataView(b.buffer, b.byteOffset + off, 48);
  let x = 0n;
  for (let i = 0; i < 6; i++) x = (x << 64n) | dv.getBigUint64(8 * i);
  return Fn.create(x);
}

/** m scalars, each 48 bytes of `out` reduced mod q (bias below 2^-128). */
export function toScalars(out: Uint8Array, m: number): bigint[] {
  const xs: bigint[] = [];
  for (let i = 0; i < m; i++) xs.push(wideScalar(out, 48 * i));
  return xs;
}

/** Hs(tag, parts, m): m scalars, each 48 bytes of H reduced mod q. */
export function Hs(tag: Tag, parts: readonly Uint8Array[], m: number): bigint[] {
  return toScalars(H(tag, parts, 48 * m), m);
}

/** Hash to the curve (RFC 9380), with the tag as DST: a point of unknown discrete log. */
export function HtC(tag: Tag, msg: Uint8Array): Point {
  return Point.fromAffine(secp256k1_hasher.hashToCurve(msg, { DST: PREFIX + tag }).toAffine());
}

export const u16 = (n: number): Uint8Array => new Uint8Array([(n >>> 8) & 0xff, n & 0xff]);
export const u32 = u32be;

export function scalarToBytes(x: bigint): Uint8Array {
  const out = new Uint8Array(32);
  const dv = new DataView(out.buffer);
  for (let i = 3; i >= 0; i--) {
    dv.setBigUint64(8 * i, x & 0xffffffffffffffffn);
    x >>= 64n;
  }
  return out;
}

/** A canonical, 32-byte scalar (< q); zero only when `allowZero`. */
export function scalarFromBytes(b: Uint8Array, what: string, allowZero = true): bigint {
  if (!(b instanceof Uint8Array) || b.length !== 32) throw new DecodeError(`${what}: expected a 32-byte scalar`);
  const dv = new DataView(b.buffer, b.byteOffset, 32);
  let x = 0n;
  for (let i = 0; i < 4; i++) x = (x << 64n) | dv.getBigUint64(8 * i);
  if (x >= Q) throw new DecodeError(`${what}: scalar not below the group order`);
  if (!allowZero && x === 0n) throw new DecodeError(`${what}: zero scalar`);
  return x;
}

export function pointToBytes(p: Point): Uint8Array {
  return p.toBytes(true);
}

/** A 33-byte compressed point on the curve, not the identity. */
export function pointFromBytes(b: Uint8Array, what: string): Point {
  if (!(b instanceof Uint8Array) || b.length !== 33) throw new DecodeError(`${what}: expected a 33-byte point`);
  try {
    const p = Point.fromBytes(b);
    p.assertValidity();
    if (p.is0()) throw new Error('identity');
    return p;
  } catch (e) {
    throw new DecodeError(`${what}: not a point on secp256k1`, { cause: e });
  }
}

/**
 * R of a presignature as its holder stores it: 65 bytes uncompressed (parsed without a square
 * root: what the online part then reads) or 33 compressed (records written before). Returns the
 * point and its 33-byte compressed form, which every hash and comparison uses.
 */
export function storedPoint(b: Uint8Array, what: string): { point: Point; compressed: Uint8Array } {
  if (!(b instanceof Uint8Array) || b.length !== 65) {
    const point = pointFromBytes(b, what);
    return { point, compressed: b };
  }
  let point: Point;
  try {
    if (b[0] !== 0x04) throw new Error('not an uncompressed point');
    point = Point.fromBytes(b);
    point.assertValidity();
    if (point.is0()) throw new Error('identity');
  } catch (e) {
    throw new DecodeError(`${what}: not a point on secp256k1`, { cause: e });
  }
  // SEC 1 compression by bytes: the parity of y, then x.
  const compressed = new Uint8Array(33);
  compressed[0] = 0x02 | ((b[64] as number) & 1);
  compressed.set(b.subarray(1, 33), 1);
  return { point, compressed };
}

const keyPoints = new Map<string, Point>();

/**
 * A group public key (33 bytes) as a point, decompressed once per key: the combination verifies
 * every signature against its key, and a coordinator combines many for a few keys.
 */
export function keyPoint(b: Uint8Array): Point {
  const k = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  let p = keyPoints.get(k);
  if (!p) {
    p = pointFromBytes(b, 'public key');
    if (keyPoints.size >= 256) keyPoints.clear();
    keyPoints.set(k, p);
  }
  return p;
}

/** A uniformly random non-zero scalar. */
export function randomScalar(rng: (n: number) => Uint8Array): bigint {
  for (;;) {
    const x = Fn.create(bytesToNumberBE(rng(48)));
    if (x !== 0n) return x;
  }
}

/** Lagrange coefficient at 0 of evaluation point `x` within `set` (distinct non-zero scalars). */
export function lagrangeAtZero(x: bigint, set: readonly bigint[]): bigint {
  let num = 1n;
  let den = 1n;
  for (const j of set) {
    if (j === x) continue;
    num = Fn.mul(num, j);
    den = Fn.mul(den, Fn.sub(j, x));
  }
  return Fn.mul(num, Fn.inv(den));
}

/** The sorted signer list encoded as u16s (P_enc of the spec). */
export function encodeSet(set: readonly number[]): Uint8Array {
  const out = new Uint8Array(2 * set.length);
  [...set].sort((a, b) => a - b).forEach((x, k) => out.set(u16(x), 2 * k));
  return out;
}

export function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
}

/** Bit j of a byte string: byte ⌊j/8⌋, least significant bit first. */
export const bit = (b: Uint8Array, j: number): number => ((b[j >>> 3] as number) >>> (j & 7)) & 1;

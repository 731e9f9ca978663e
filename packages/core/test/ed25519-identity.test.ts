/**
 * Identity signatures through the runtime's Ed25519 (Node: OpenSSL) must be noble's, byte for
 * byte, and verification on Node must never accept what noble's strict verify refuses.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ParticipantIdentity, concatBytes, identityEd25519Backend, verifyParticipantSignature } from '../src/index.js';

const P = ed25519.Point;
const L = P.Fn.ORDER;
const le = (b: Uint8Array): bigint => b.reduceRight((n, x) => (n << 8n) | BigInt(x), 0n);
const nobleVerify = (pk: Uint8Array, m: Uint8Array, sig: Uint8Array): boolean => {
  try {
    return ed25519.verify(sig, m, pk, { zip215: false });
  } catch {
    return false;
  }
};

describe('identity Ed25519', () => {
  it("uses Node's implementation under Node", () => {
    expect(identityEd25519Backend()).toBe('node');
  });

  it("signatures are noble's byte for byte, and both verifiers accept them (random keys and messages)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 300 }), (seed, msg) => {
        const id = ParticipantIdentity.fromSecrets('p1', seed, new Uint8Array(32).fill(1));
        const sig = id.sign(msg);
        expect(sig).toEqual(ed25519.sign(msg, seed));
        expect(verifyParticipantSignature(id.public.signKey, msg, sig)).toBe(true);
        expect(nobleVerify(id.public.signKey, msg, sig)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it('a changed bit in the signature, the message or the key is refused by both', () => {
    const id = ParticipantIdentity.generate('p1');
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 100 }),
        fc.constantFrom('sig', 'msg', 'key'),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        (msg, what, at, bit) => {
          const sig = id.sign(msg);
          const [s, m, k] = [sig.slice(), msg.slice(), id.public.signKey.slice()];
          const target = what === 'sig' ? s : what === 'msg' ? m : k;
          target[at % target.length]! ^= 1 << bit;
          expect(verifyParticipantSignature(k, m, s)).toBe(false);
          expect(nobleVerify(k, m, s)).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('malformed input is refused, never thrown', () => {
    const id = ParticipantIdentity.generate('p1');
    const msg = new Uint8Array([1, 2, 3]);
    const sig = id.sign(msg);
    expect(verifyParticipantSignature(id.public.signKey.subarray(1), msg, sig)).toBe(false);
    expect(verifyParticipantSignature(id.public.signKey, msg, sig.subarray(1))).toBe(false);
    expect(verifyParticipantSignature(id.public.signKey, msg, new Uint8Array(64))).toBe(false);
    expect(verifyParticipantSignature(undefined as unknown as Uint8Array, msg, sig)).toBe(false);
    // Bytes only, as noble (Node's verify would take a string and UTF-8 encode it).
    const text = 'abc';
    const overText = id.sign(new TextEncoder().encode(text));
    expect(verifyParticipantSignature(id.public.signKey, text as unknown as Uint8Array, overText)).toBe(false);
    expect(() => id.sign(text as unknown as Uint8Array)).toThrow(TypeError);
    // S >= L (the same R, S + L): refused by both.
    const big = concatBytes(sig.subarray(0, 32), P.Fn.toBytes(0n));
    const s = le(sig.subarray(32)) + L;
    for (let i = 0; i < 32; i++) big[32 + i] = Number((s >> BigInt(8 * i)) & 0xffn);
    expect(verifyParticipantSignature(id.public.signKey, msg, big)).toBe(false);
    expect(nobleVerify(id.public.signKey, msg, big)).toBe(false);
  });

  it("keys noble's strict verify refuses are refused: small order, non-canonical encoding", () => {
    // A signature that verifies under the identity point as the key ([S]B = R + [k]·O with S = r).
    const r = 12345n;
    const R = P.BASE.multiply(r).toBytes();
    const sig = concatBytes(R, P.Fn.toBytes(r));
    const identity = P.ZERO.toBytes();
    expect(verifyParticipantSignature(identity, new Uint8Array([1]), sig)).toBe(false);
    expect(nobleVerify(identity, new Uint8Array([1]), sig)).toBe(false);
    // The identity's y = 1 written non-canonically as 1 + p.
    const p = P.Fp.ORDER;
    const nonCanonical = new Uint8Array(32);
    for (let i = 0; i < 32; i++) nonCanonical[i] = Number(((1n + p) >> BigInt(8 * i)) & 0xffn);
    expect(verifyParticipantSignature(nonCanonical, new Uint8Array([1]), sig)).toBe(false);
  });

  it("the one documented difference: R with a small-order component verifies under noble's cofactored check, not on Node", () => {
    const id = ParticipantIdentity.generate('p1');
    const a = (() => {
      const h = sha512(id.exportSecrets().signSecret).slice(0, 32);
      h[0]! &= 248;
      h[31]! &= 127;
      h[31]! |= 64;
      return le(h) % L;
    })();
    expect(P.BASE.multiply(a).toBytes()).toEqual(id.public.signKey);
    // A point of order 2 added to R = [r]B; S = r + k·a with k over the altered R.
    const T = P.fromBytes(new Uint8Array(32).fill(0).map((_, i) => (i === 0 ? 0xec : i === 31 ? 0x7f : 0xff)));
    expect(T.isSmallOrder() && !T.is0()).toBe(true);
    const msg = new Uint8Array([7, 7, 7]);
    const r = 987654321n;
    const R = P.BASE.multiply(r).add(T).toBytes();
    const k = le(sha512(concatBytes(R, id.public.signKey, msg))) % L;
    const sig = concatBytes(R, P.Fn.toBytes((r + k * a) % L));
    expect(nobleVerify(id.public.signKey, msg, sig)).toBe(true);
    expect(verifyParticipantSignature(id.public.signKey, msg, sig)).toBe(false);
  });
});

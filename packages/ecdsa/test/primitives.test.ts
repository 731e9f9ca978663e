/**
 * The building blocks of the DKLs23 implementation, each against its defining property: the
 * GF(2^256) of the OT-extension check (field laws, a known answer, the modulus irreducible by
 * Rabin's test), the base OT (Alice's seed is Bob's seed of her choice and not the other one),
 * the OT extension (Bob's output is Alice's output of his choice bit; a Bob who lies about one
 * column is caught and named), the vector OLE (c + d = a·b; an Alice who shifts a correction is
 * caught unless she guessed that bit of β, about half the time) and the hashes' domains.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TesseraError } from '@tessera/core';
import { baseOtFinish, baseOtRespond, baseOtStart } from '../src/base-ot.js';
import { GfMultiplier, fold, gfMul } from '../src/gf256.js';
import { oteReceive, oteSend } from '../src/ote.js';
import {
  BASE_OTS,
  Fn,
  H,
  Point,
  Q,
  TAGS,
  XI,
  bit,
  hasher,
  lagrangeAtZero,
  platformXof,
  keyPoint,
  pointFromBytes,
  storedPoint,
  scalarFromBytes,
  scalarToBytes,
} from '../src/params.js';
import { bobInput, rvoleReceive, rvoleSend } from '../src/rvole.js';
import { rng } from './harness.js';
import { shake256 } from '@noble/hashes/sha3.js';
import { concatBytes } from '@noble/hashes/utils.js';

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const xor = (a: Uint8Array, b: Uint8Array) => a.map((x, i) => x ^ (b[i] as number));
const ONE = (() => {
  const b = new Uint8Array(32);
  b[0] = 1;
  return b;
})();
const X = (k: number) => {
  const b = new Uint8Array(32);
  b[k >>> 3] = 1 << (k & 7);
  return b;
};
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** An element as a BigInt polynomial over GF(2) (bit i ↦ X^i), for the test's own gcd. */
const poly = (b: Uint8Array) => BigInt(`0x${hex(Uint8Array.from(b).reverse()) || '0'}`);
const degree = (p: bigint) => p.toString(2).length - 1;
function polyMod(a: bigint, m: bigint): bigint {
  const dm = degree(m);
  while (a !== 0n && degree(a) >= dm) a ^= m << BigInt(degree(a) - dm);
  return a;
}
function polyGcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, polyMod(a, b)];
  return a;
}

describe('GF(2^256)', () => {
  it('known answer: X^128 · X^128 = X^10 + X^5 + X^2 + 1; X^255 · X = the same', () => {
    const want = new Uint8Array(32);
    want[0] = 0b00100101; // X^5 + X^2 + 1
    want[1] = 0b00000100; // X^10
    expect(hex(gfMul(X(128), X(128)))).toBe(hex(want));
    expect(hex(gfMul(X(255), X(1)))).toBe(hex(want));
  });

  it('is a commutative ring with one: commutative, associative, distributive', () => {
    fc.assert(
      fc.property(bytes32, bytes32, bytes32, (a, b, c) => {
        expect(hex(gfMul(a, b))).toBe(hex(gfMul(b, a)));
        expect(hex(gfMul(gfMul(a, b), c))).toBe(hex(gfMul(a, gfMul(b, c))));
        expect(hex(gfMul(a, xor(b, c)))).toBe(hex(xor(gfMul(a, b), gfMul(a, c))));
        expect(hex(gfMul(a, ONE))).toBe(hex(a));
      }),
      { numRuns: 40 },
    );
  });

  it('the modulus is irreducible (Rabin: X^(2^256) = X, and gcd(X^(2^128) − X, f) = 1)', () => {
    let x: Uint8Array = X(1);
    let half: Uint8Array = x;
    for (let i = 1; i <= 256; i++) {
      x = gfMul(x, x);
      if (i === 128) half = x;
    }
    expect(hex(x)).toBe(hex(X(1)));
    const f = (1n << 256n) | (1n << 10n) | (1n << 5n) | (1n << 2n) | 1n;
    expect(polyGcd(f, poly(half) ^ poly(X(1)))).toBe(1n);
  });

  it('the check fold is linear: fold(x ⊕ y) = fold(x) ⊕ fold(y)', () => {
    const c1 = new GfMultiplier(rng(32));
    const c2 = new GfMultiplier(rng(32));
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 96, maxLength: 96 }),
        fc.uint8Array({ minLength: 96, maxLength: 96 }),
        (x, y) => {
          expect(hex(fold(c1, c2, xor(x, y)))).toBe(hex(xor(fold(c1, c2, x), fold(c1, c2, y))));
        },
      ),
      { numRuns: 30 },
    );
  });
});

describe('base OT (endemic OT of Masny–Rindal)', () => {
  const sid = rng(32);
  const bob = baseOtStart(rng);
  const alice = baseOtRespond(sid, bob.point, rng);
  const seeds = baseOtFinish(sid, bob, alice.pairs);

  it("Alice's seed is Bob's seed of her choice bit, never the other one", () => {
    for (let k = 0; k < BASE_OTS; k++) {
      const c = bit(alice.choices.delta, k);
      const mine = hex(alice.choices.s[k] as Uint8Array);
      expect(mine).toBe(hex((c ? seeds.s1 : seeds.s0)[k] as Uint8Array));
      expect(mine).not.toBe(hex((c ? seeds.s0 : seeds.s1)[k] as Uint8Array));
    }
  });

  it('Bob cannot tell the choices from the points: both points of every pair are valid, distinct curve points', () => {
    for (const p of alice.pairs) {
      expect(hex(p.subarray(0, 33))).not.toBe(hex(p.subarray(33)));
      pointFromBytes(p.subarray(0, 33), 'r0');
      pointFromBytes(p.subarray(33), 'r1');
    }
  });

  it('swapped points, another session id, a point off the curve: the seeds no longer match or are refused', () => {
    const swapped = alice.pairs.map((p) => new Uint8Array([...p.subarray(33), ...p.subarray(0, 33)]));
    const s2 = baseOtFinish(sid, bob, swapped);
    const s3 = baseOtFinish(rng(32), bob, alice.pairs);
    for (let k = 0; k < 8; k++) {
      const c = bit(alice.choices.delta, k);
      const mine = hex(alice.choices.s[k] as Uint8Array);
      expect(mine).not.toBe(hex((c ? s2.s1 : s2.s0)[k] as Uint8Array));
      expect(mine).not.toBe(hex((c ? s3.s1 : s3.s0)[k] as Uint8Array));
    }
    const bad = alice.pairs.map((p) => p.slice());
    const b3 = bad[3] as Uint8Array;
    b3[0] = 0x05; // not a SEC1 prefix (a flipped x byte would still be a point half of the time)
    expect(() => baseOtFinish(sid, bob, bad)).toThrowError(TesseraError);
    expect(() => baseOtFinish(sid, bob, alice.pairs.slice(1))).toThrowError(TesseraError);
    expect(() => baseOtRespond(sid, new Uint8Array(33), rng)).toThrowError(TesseraError);
  });
});

describe('OT extension and vector OLE', () => {
  const sid = rng(32);
  const bob = baseOtStart(rng);
  const alice = baseOtRespond(sid, bob.point, rng);
  const seeds = baseOtFinish(sid, bob, alice.pairs);

  it("Bob's output is Alice's output of his choice bit, for every extended OT", () => {
    const oteSid = rng(32);
    const r = oteReceive(oteSid, seeds, rng);
    const s = oteSend(oteSid, alice.choices, r.message, 'bob');
    for (let j = 0; j < XI; j++) {
      const want = bit(r.beta, j) ? s.alpha1[j] : s.alpha0[j];
      expect(r.gamma[j]).toEqual(want);
    }
  });

  it('a Bob who changes one bit of one column, of x̃ or of one t̃ is caught and named', () => {
    const oteSid = rng(32);
    const r = oteReceive(oteSid, seeds, rng);
    for (const field of ['u', 'xt', 'tt'] as const) {
      for (let trial = 0; trial < 4; trial++) {
        const m = { ...r.message, [field]: r.message[field].slice() };
        const at = Math.floor(Math.random() * m[field].length);
        const f = m[field] as Uint8Array;
        f[at] = (f[at] as number) ^ (1 << trial);
        const e = (() => {
          try {
            oteSend(oteSid, alice.choices, m, 'bob');
          } catch (x) {
            return x as TesseraError;
          }
        })();
        // A flipped column bit where Alice's Δ_k = 0 changes nothing she reads: then nothing to catch.
        if (field === 'u' && bit(alice.choices.delta, Math.floor(at / 96)) === 0 && e === undefined) continue;
        expect(e?.code).toBe('BAD_MULTIPLICATION');
        expect(e?.culprits).toEqual(['bob']);
      }
    }
  });

  it('c + d = a·b for random inputs, with b = ⟨g, β⟩', () => {
    for (let trial = 0; trial < 3; trial++) {
      const oteSid = rng(32);
      const rvSid = rng(32);
      const r = oteReceive(oteSid, seeds, rng);
      const s = oteSend(oteSid, alice.choices, r.message, 'bob');
      const a: [bigint, bigint] = [
        Fn.create(scalarFromBytes(scalarToBytes(Q - 1n - BigInt(trial)), 'a')),
        12345n + BigInt(trial),
      ];
      const { c, message } = rvoleSend(rvSid, a, s.alpha0, s.alpha1, rng);
      const d = rvoleReceive(rvSid, r.beta, r.gamma, message, 'alice');
      const b = bobInput(r.beta);
      expect(Fn.add(c[0], d[0])).toBe(Fn.mul(a[0], b));
      expect(Fn.add(c[1], d[1])).toBe(Fn.mul(a[1], b));
    }
  });

  it('an Alice who feeds one OT an input of her own passes exactly where β_j = 0 (so about half the time); η, μ or another session: always caught', () => {
    const oteSid = rng(32);
    const rvSid = rng(32);
    const r = oteReceive(oteSid, seeds, rng);
    const s = oteSend(oteSid, alice.choices, r.message, 'bob');
    const outcome = (m: ReturnType<typeof rvoleSend>['message'], sidUsed = rvSid) => {
      try {
        rvoleReceive(sidUsed, r.beta, r.gamma, m, 'alice');
        return 'passed';
      } catch (e) {
        expect((e as TesseraError).culprits).toEqual(['alice']);
        return (e as TesseraError).code;
      }
    };
    // A consistent cheat: OT j's pad shifted before the corrections, θ and μ are computed.
    let passed = 0;
    for (let j = 0; j < 32; j++) {
      const alpha1 = s.alpha1.map((row, k) => (k === j ? [Fn.add(row[0] as bigint, 1n), ...row.slice(1)] : row));
      const got = outcome(rvoleSend(rvSid, [5n, 7n], s.alpha0, alpha1, rng).message);
      expect(got === 'passed').toBe(bit(r.beta, j) === 0);
      if (got === 'passed') passed++;
    }
    expect(passed).toBeGreaterThan(0);
    expect(passed).toBeLessThan(32);
    const { message } = rvoleSend(rvSid, [5n, 7n], s.alpha0, s.alpha1, rng);
    expect(outcome(message)).toBe('passed');
    const eta = message.eta.slice();
    eta.set(scalarToBytes(Fn.add(scalarFromBytes(eta.subarray(0, 32), 'η'), 1n)), 0);
    expect(outcome({ ...message, eta })).toBe('BAD_MULTIPLICATION');
    const mu = message.mu.slice();
    mu[0] = (mu[0] as number) ^ 1;
    expect(outcome({ ...message, mu })).toBe('BAD_MULTIPLICATION');
    const corrections = message.corrections.slice();
    corrections[40] = (corrections[40] as number) ^ 1;
    expect(outcome({ ...message, corrections })).toBe('BAD_MULTIPLICATION');
    expect(outcome(message, rng(32))).toBe('BAD_MULTIPLICATION');
  });
});

describe('parameters', () => {
  it('every domain tag is distinct', () => {
    expect(new Set(TAGS).size).toBe(TAGS.length);
  });

  it("Lagrange coefficients at 0 recombine any subset of a polynomial's values", () => {
    const a0 = 987654321n;
    const a1 = 123456789n;
    const a2 = 55555n;
    const p = (x: bigint) => Fn.add(Fn.add(a0, Fn.mul(a1, x)), Fn.mul(a2, Fn.mul(x, x)));
    for (const set of [
      [1, 2, 3],
      [2, 5, 9],
      [7, 3, 4],
    ]) {
      let sum = 0n;
      for (const i of set) sum = Fn.add(sum, Fn.mul(lagrangeAtZero(BigInt(i), set.map(BigInt)), p(BigInt(i))));
      expect(sum).toBe(a0);
    }
  });

  it('scalars must be canonical; points must be on the curve and compressed', () => {
    expect(() => scalarFromBytes(scalarToBytes(Q - 1n), 'x')).not.toThrow();
    const q = new Uint8Array(32).fill(0xff);
    expect(() => scalarFromBytes(q, 'x')).toThrowError(TesseraError);
    expect(() => scalarFromBytes(new Uint8Array(31), 'x')).toThrowError(TesseraError);
    expect(() => pointFromBytes(new Uint8Array(33), 'p')).toThrowError(TesseraError);
    expect(() => pointFromBytes(new Uint8Array(65), 'p')).toThrowError(TesseraError);
  });

  it("a stored R: uncompressed, read without a square root, gives the point and noble's compressed bytes; compressed as before; anything else refused", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: Q - 1n }), (k) => {
        const P = Point.BASE.multiply(k);
        for (const form of [P.toBytes(false), P.toBytes(true)]) {
          const { point, compressed } = storedPoint(form, 'R');
          expect(point.equals(P)).toBe(true);
          expect(hex(compressed)).toBe(hex(P.toBytes(true)));
        }
        // The other y (same x): another point, told apart by the compressed form's prefix.
        const u = P.toBytes(false);
        const neg = P.negate().toBytes(false);
        expect(hex(storedPoint(neg, 'R').compressed)).not.toBe(hex(storedPoint(u, 'R').compressed));
      }),
      { numRuns: 50 },
    );
    const u = Point.BASE.multiply(5n).toBytes(false);
    const offCurve = u.slice();
    offCurve[64] = (offCurve[64] as number) ^ 1;
    const hybrid = u.slice();
    hybrid[0] = 0x06;
    for (const bad of [offCurve, hybrid, new Uint8Array(65), u.subarray(0, 64), Uint8Array.of(0)])
      expect(() => storedPoint(bad, 'R')).toThrowError(TesseraError);
    // The key's point, decompressed once, is the key's.
    const pk = Point.BASE.multiply(77n).toBytes(true);
    expect(keyPoint(pk).equals(Point.BASE.multiply(77n))).toBe(true);
    expect(keyPoint(pk)).toBe(keyPoint(Uint8Array.from(pk)));
  });

  it("the OT extension's keyed XOF: the platform's SHAKE256 (this Node's OpenSSL) and noble's give the same bytes, SHAKE256(H(tag, prefix) ‖ parts)", () => {
    // On this Node the platform path is taken (else the comparison below would be noble vs noble).
    expect(platformXof).toBe(true);
    fc.assert(
      fc.property(
        fc.constantFrom(...TAGS),
        fc.integer({ min: 1, max: 400 }),
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 3 }),
        fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 4 }),
        (tag, len, prefix, parts) => {
          const fast = hasher(tag, len, prefix);
          const portable = hasher(tag, len, prefix, true);
          const want = shake256(concatBytes(H(tag, prefix, 32), ...parts), { dkLen: len });
          expect(Buffer.from(fast(parts)).toString('hex')).toBe(Buffer.from(want).toString('hex'));
          expect(Buffer.from(portable(parts)).toString('hex')).toBe(Buffer.from(want).toString('hex'));
          // Each call starts from the keyed state again.
          expect(Buffer.from(fast(parts)).toString('hex')).toBe(Buffer.from(want).toString('hex'));
        },
      ),
      { numRuns: 200 },
    );
  });
});

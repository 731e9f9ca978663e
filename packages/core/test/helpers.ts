/** Test helpers for the core: identities, seeded RNGs, and an in-memory DKG harness. */
import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { expect } from 'vitest';
import { ParticipantIdentity, type Rng } from '../src/index.js';

/** A deterministic RNG (SHA-256 counter mode) so failures reproduce. Tests only. */
export function seededRng(seed: string | number): Rng {
  let counter = 0;
  const s = new TextEncoder().encode(String(seed));
  return ((n = 32) => {
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const block = sha256(new Uint8Array([...s, ...new TextEncoder().encode(`:${counter++}`)]));
      out.set(block.subarray(0, Math.min(32, n - off)), off);
      off += 32;
    }
    return out;
  }) as Rng;
}

/** n identities named p1..pn. */
export function identities(n: number, rng?: Rng): ParticipantIdentity[] {
  return Array.from({ length: n }, (_, i) => ParticipantIdentity.generate(`p${i + 1}`, rng));
}

/** Picks k distinct elements at positions given by `order` (a permutation seed). */
export function pick<T>(xs: readonly T[], k: number, seed: number): T[] {
  const copy = [...xs];
  let x = seed >>> 0;
  for (let i = copy.length - 1; i > 0; i--) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const j = x % (i + 1);
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy.slice(0, k);
}

/** The error code a call throws, or undefined if it returns. */
export function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as { code?: unknown }).code as string | undefined;
  }
  return undefined;
}

/** An Rng that hands out fixed bytes (a copy each time) and checks how many are asked for. */
export const fixedRng =
  (bytes: Uint8Array): Rng =>
  (n) => {
    expect(n).toBe(bytes.length);
    return bytes.slice();
  };

/** A change to encoded bytes, for decoder fuzzing: one byte set, the bytes cut, or bytes inserted. */
export type Mutation =
  | { kind: 'flip'; at: number; value: number }
  | { kind: 'cut'; at: number }
  | { kind: 'insert'; at: number; data: Uint8Array };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    data: fc.uint8Array({ minLength: 1, maxLength: 6 }),
  }),
);

/** `b` with `m` applied (positions taken modulo the length). */
export function mutate(b: Uint8Array, m: Mutation): Uint8Array {
  const at = m.at % (b.length + 1);
  if (m.kind === 'flip') {
    const out = b.slice();
    if (at < out.length) out[at] = m.value;
    return out;
  }
  if (m.kind === 'cut') return b.slice(0, at);
  return Uint8Array.from([...b.slice(0, at), ...m.data, ...b.slice(at)]);
}

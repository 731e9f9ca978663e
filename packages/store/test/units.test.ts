/** Unit tests of the small building blocks: keyed mutex, KEK wrapping, record codec. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyedMutex, kekFromBytes } from '../src/index.js';
import { decodeRecord, encodeRecord } from '../src/codec.js';
import { rand } from './helpers.js';

describe('KeyedMutex', () => {
  it('serialises same-key sections, runs other keys concurrently, survives throws, cleans up', async () => {
    const m = new KeyedMutex();
    const events: string[] = [];
    const section = (key: string, id: string, ms: number, fail = false) =>
      m.run(key, async () => {
        events.push(`${id}+`);
        await new Promise((r) => setTimeout(r, ms));
        events.push(`${id}-`);
        if (fail) throw new Error(id);
        return id;
      });
    const results = await Promise.allSettled([
      section('a', 'a1', 20, true),
      section('a', 'a2', 1),
      section('b', 'b1', 5),
      section('a', 'a3', 1),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
    const order = events.filter((e) => e.startsWith('a'));
    expect(order).toEqual(['a1+', 'a1-', 'a2+', 'a2-', 'a3+', 'a3-']);
    expect(events.indexOf('b1+')).toBeLessThan(events.indexOf('a1-'));
    expect(m.size).toBe(0);
  });
});

describe('local KEK', () => {
  it('wraps with a random nonce and binds the AAD', () => {
    const kek = kekFromBytes(rand(32));
    const plain = rand(32);
    const aad = new TextEncoder().encode('ctx');
    const w1 = kek.wrap(plain, aad);
    const w2 = kek.wrap(plain, aad);
    expect(w1).not.toEqual(w2);
    expect(w1).toHaveLength(1 + 24 + 32 + 16);
    expect(kek.unwrap(w1, aad)).toEqual(plain);
    expect(() => kek.unwrap(w1, new TextEncoder().encode('other'))).toThrow(
      expect.objectContaining({ code: 'KEK_MISMATCH' }),
    );
    expect(() => kekFromBytes(rand(32)).unwrap(w1, aad)).toThrow(expect.objectContaining({ code: 'KEK_MISMATCH' }));
  });

  it('copies its key bytes (the caller may wipe theirs)', () => {
    const bytes = rand(32);
    const kek = kekFromBytes(bytes);
    const w = kek.wrap(Uint8Array.of(1), new Uint8Array(0));
    bytes.fill(0);
    expect(kek.unwrap(w, new Uint8Array(0))).toEqual(Uint8Array.of(1));
  });
});

describe('record codec', () => {
  it('round-trips and never throws on garbage', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 5 }),
        (tag, fields) => {
          expect(decodeRecord(encodeRecord(tag, fields))).toEqual({ tag, fields });
        },
      ),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        const r = decodeRecord(b);
        if (r !== undefined) expect(encodeRecord(r.tag, r.fields)).toEqual(b);
      }),
    );
  });
});

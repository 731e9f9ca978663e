/**
 * The table codec (src/wire/table-codec.ts, driven by the generated src/wire/schema.gen.ts)
 * against protobuf-es's reflection (reflect-codec.ts, the codec it replaced), for every message
 * of the contract: the same bytes for random valid objects, the same plain objects (or both
 * DECODE) for those bytes, for mutated bytes and for random bytes, and the same refusal
 * (INVALID_ARGUMENT) or the same bytes for objects with a field of a wrong type.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../src/bytes.js';
import { decodeMessage, encodeMessage } from '../src/wire/codec.js';
import { ENUMS, MESSAGES } from '../src/wire/schema.gen.js';
import type { MessageName } from '../src/wire/types.js';
import { mutate, mutation } from './helpers.js';
import { reflectDecode, reflectEncode } from './reflect-codec.js';

type Row = readonly (string | number)[];
const TABLE = MESSAGES as unknown as Record<string, readonly Row[]>;
const NAMES = Object.keys(TABLE).sort() as MessageName[];

const scalar: Record<string, fc.Arbitrary<unknown>> = {
  u32: fc.oneof(fc.constant(0), fc.nat(300), fc.integer({ min: 0, max: 0xffffffff })),
  u64: fc.oneof(fc.constant(0), fc.nat(1000), fc.maxSafeNat()),
  // Short ones go through the writer's scratch bytes, 64 and more are kept as chunks of their own.
  bytes: fc.oneof(fc.uint8Array({ maxLength: 20 }), fc.uint8Array({ minLength: 62, maxLength: 300 })),
  string: fc.string({ unit: 'binary', maxLength: 10 }),
  bool: fc.boolean(),
};

/** A random valid plain object of message `name` (sub-messages to depth 3). */
function message(name: string, depth: number): fc.Arbitrary<Record<string, unknown>> {
  const rows = TABLE[name] ?? [];
  const value = (type: string): fc.Arbitrary<unknown> => {
    if (type.startsWith('e:'))
      return fc.constantFrom(...(ENUMS as unknown as Record<string, number[]>)[type.slice(2)]!);
    if (type.startsWith('m:')) return depth >= 3 ? fc.constant(null) : message(type.slice(2), depth + 1);
    return scalar[type] as fc.Arbitrary<unknown>;
  };
  const plainRows = rows.filter((r) => r[4] === undefined);
  const oneofs = new Map<string, Row[]>();
  for (const r of rows) if (r[4] !== undefined) oneofs.set(String(r[4]), [...(oneofs.get(String(r[4])) ?? []), r]);
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const r of plainRows) {
    const type = String(r[2]);
    const v = value(type);
    // A repeated sub-message past the depth is an empty list (a list holds no null).
    fields[String(r[1])] =
      r[3] === 1 ? (type.startsWith('m:') && depth >= 3 ? fc.constant([]) : fc.array(v, { maxLength: 3 })) : v;
  }
  const members = [...oneofs.values()].map((rs) =>
    fc.option(fc.oneof(...rs.map((r) => value(String(r[2])).map((v) => [String(r[1]), v] as const))), { nil: null }),
  );
  return fc.tuple(fc.record(fields), fc.tuple(...members)).map(([o, chosen]) => {
    const out: Record<string, unknown> = { ...o };
    for (const c of chosen) if (c && c[1] !== null) out[c[0]] = c[1];
    return out;
  });
}

/** What a decoder decides: the object, or the refusal's code. */
function decoded(f: () => unknown): unknown {
  try {
    return f();
  } catch (e) {
    return { refused: (e as { code?: string }).code };
  }
}

describe('table codec = protobuf-es reflection, every message of the contract', () => {
  it('has a table row for every message protobuf-es knows, and knows no other', () => {
    expect(NAMES.length).toBeGreaterThan(80);
    for (const name of NAMES) expect(() => reflectDecode(name, new Uint8Array(0))).not.toThrow();
  });

  it.each(NAMES)('%s: same bytes, same objects back, same verdicts on mutated bytes', (name) => {
    fc.assert(
      fc.property(message(name, 0), fc.array(mutation, { minLength: 1, maxLength: 2 }), (v, ms) => {
        const want = reflectEncode(name, v as never);
        const got = encodeMessage(name, v as never);
        expect(toHex(got)).toBe(toHex(want));
        expect(decodeMessage(name, got)).toEqual(reflectDecode(name, want));
        const bad = ms.reduce(mutate, got);
        expect(decoded(() => decodeMessage(name, bad))).toEqual(decoded(() => reflectDecode(name, bad)));
      }),
      { numRuns: 25 },
    );
  });

  it('random bytes: the same object or both DECODE, for every message', () => {
    fc.assert(
      fc.property(fc.constantFrom(...NAMES), fc.uint8Array({ maxLength: 48 }), (name, b) => {
        expect(decoded(() => decodeMessage(name, b))).toEqual(decoded(() => reflectDecode(name, b)));
      }),
      { numRuns: 3000 },
    );
  });

  it('a field of the wrong type: both refuse with INVALID_ARGUMENT (or encode the same bytes)', () => {
    const wrong = fc.oneof(
      fc.anything({ maxDepth: 1 }),
      fc.constantFrom(-1, 1.5, 2 ** 32, 2 ** 53, '7', 99, [], {}, new Uint8Array(2), true),
    );
    fc.assert(
      fc.property(fc.constantFrom(...NAMES), fc.nat(), wrong, (name, i, x) => {
        const rows = TABLE[name] ?? [];
        if (!rows.length) return;
        const field = String((rows[i % rows.length] as Row)[1]);
        const v = { [field]: x };
        const want = decoded(() => toHex(reflectEncode(name, v as never)));
        const got = decoded(() => toHex(encodeMessage(name, v as never)));
        expect(got).toEqual(want);
      }),
      { numRuns: 3000 },
    );
  });

  it('two members of one oneof: both refuse', () => {
    for (const name of NAMES) {
      const members = (TABLE[name] ?? []).filter((r) => r[4] !== undefined && String(r[2]).startsWith('m:'));
      if (members.length < 2) continue;
      const v = { [String(members[0]?.[1])]: {}, [String(members[1]?.[1])]: {} };
      expect(decoded(() => encodeMessage(name, v as never))).toEqual({ refused: 'INVALID_ARGUMENT' });
      expect(decoded(() => reflectEncode(name, v as never))).toEqual({ refused: 'INVALID_ARGUMENT' });
    }
  });
});

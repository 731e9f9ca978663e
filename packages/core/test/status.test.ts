/**
 * Errors on the wire as gRPC's standard error model (wire/status.ts). The bytes are read back
 * here field by field with a plain protobuf wire reader, against the published field numbers of
 * google.rpc.Status (code 1, message 2, details 3), google.protobuf.Any (type_url 1, value 2) and
 * google.rpc.ErrorInfo (reason 1, domain 2, metadata 3 as map entries key 1 / value 2), so a
 * field renumbered in proto/google/rpc would fail here rather than in another vendor's client.
 */
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ERROR_DOMAIN, decodeErrorStatus, encodeErrorStatus } from '../src/index.js';

type Fields = Map<number, (number | Uint8Array)[]>;

function fields(bytes: Uint8Array): Fields {
  const r = new BinaryReader(bytes);
  const out: Fields = new Map();
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    const v = wt === WireType.Varint ? r.int32() : wt === WireType.LengthDelimited ? r.bytes() : undefined;
    if (v === undefined) throw new Error(`unexpected wire type ${wt}`);
    out.set(no, [...(out.get(no) ?? []), v]);
  }
  return out;
}
const text = (v: number | Uint8Array | undefined) => new TextDecoder().decode(v as Uint8Array);

describe('google.rpc.Status for Tessera errors', () => {
  it('known answer: ABORTED / BAD_SIGNATURE_SHARE blaming two participants, read by field number', () => {
    const bytes = encodeErrorStatus({
      status: 10,
      code: 'BAD_SIGNATURE_SHARE',
      message: 'signature share of p2 does not verify',
      culprits: ['p2', 'p3'],
    });
    const status = fields(bytes);
    expect(status.get(1)).toEqual([10]);
    expect(text(status.get(2)?.[0])).toBe('signature share of p2 does not verify');
    expect(status.get(3)).toHaveLength(1);
    const any = fields(status.get(3)?.[0] as Uint8Array);
    expect(text(any.get(1)?.[0])).toBe('type.googleapis.com/google.rpc.ErrorInfo');
    const info = fields(any.get(2)?.[0] as Uint8Array);
    expect(text(info.get(1)?.[0])).toBe('BAD_SIGNATURE_SHARE');
    expect(text(info.get(2)?.[0])).toBe(ERROR_DOMAIN);
    const entries = (info.get(3) ?? []).map((e) => fields(e as Uint8Array));
    expect(entries.map((e) => [text(e.get(1)?.[0]), text(e.get(2)?.[0])])).toEqual([['culprits', 'p2,p3']]);
  });

  it('round-trips any code, message and culprit list (ids as participants have them)', () => {
    const id = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }),
        fc.stringMatching(/^[A-Z][A-Z_]{0,30}$/),
        fc.string({ maxLength: 200 }),
        fc.array(id, { maxLength: 5 }),
        (status, code, message, culprits) => {
          expect(decodeErrorStatus(encodeErrorStatus({ status, code, message, culprits }))).toEqual({
            status,
            code,
            message,
            culprits,
          });
        },
      ),
    );
  });

  it('never throws on arbitrary or mutated bytes; a foreign ErrorInfo is not read as a Tessera error', () => {
    const good = encodeErrorStatus({ status: 5, code: 'NOT_FOUND', message: 'no key k9', culprits: [] });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        const s = decodeErrorStatus(b);
        expect(s === undefined || typeof s.code === 'string').toBe(true);
      }),
    );
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 }), (i, mask) => {
        const b = good.slice();
        b[i] = (b[i] as number) ^ mask;
        const s = decodeErrorStatus(b);
        expect(s === undefined || typeof s.code === 'string').toBe(true);
      }),
    );
    const foreign = good.slice();
    const at = Buffer.from(foreign).indexOf(Buffer.from(ERROR_DOMAIN));
    foreign[at] = 'x'.charCodeAt(0);
    expect(decodeErrorStatus(foreign)).toBeUndefined();
  });
});

/**
 * A minimal record codec for the store's own binary records (inside the seal):
 * `tag (1 byte) || count (1 byte) || (u32be length || bytes) * count`. Decoding is strict: any
 * mismatch returns `undefined`, which callers report as `STORE_CORRUPT` naming the key.
 */

/** Encode `fields` under a one-byte `tag`. */
export function encodeRecord(tag: number, fields: readonly Uint8Array[]): Uint8Array {
  const size = 2 + fields.reduce((n, f) => n + 4 + f.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = tag;
  out[1] = fields.length;
  let at = 2;
  for (const f of fields) {
    view.setUint32(at, f.length);
    out.set(f, at + 4);
    at += 4 + f.length;
  }
  return out;
}

/** Decode a record made by {@link encodeRecord}; `undefined` if malformed. Fields are copies. */
export function decodeRecord(b: Uint8Array): { tag: number; fields: Uint8Array[] } | undefined {
  if (b.length < 2) return undefined;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const tag = b[0] as number;
  const count = b[1] as number;
  const fields: Uint8Array[] = [];
  let at = 2;
  for (let i = 0; i < count; i++) {
    if (at + 4 > b.length) return undefined;
    const len = view.getUint32(at);
    if (at + 4 + len > b.length) return undefined;
    fields.push(b.slice(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return at === b.length ? { tag, fields } : undefined;
}

/** 8-byte big-endian encoding of a non-negative safe integer. */
export function u64(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

/** Inverse of {@link u64}; `undefined` if not 8 bytes or not a safe integer. */
export function readU64(b: Uint8Array | undefined): number | undefined {
  if (b === undefined || b.length !== 8) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0);
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
}

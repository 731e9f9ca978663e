/**
 * The protobuf wire format (varints and length-delimited fields) at its smallest, for the
 * merchant's package check (../package-wire.ts), whose browser build must stay under 25 KB gzip:
 * protobuf-es's own wire module, which ./codec.ts uses through its registry, is ~3.5 KB gzip of it.
 *
 * Reading mirrors protobuf-es 2's `BinaryReader` where it decides what is accepted: varint
 * lengths and overflow, tag validity, skipping unknown fields (groups included), bounds, strict
 * UTF-8 for strings. test/package-check.test.ts holds the two to the same verdicts and bytes.
 */

import { utf8ToBytes } from '@noble/hashes/utils.js';

/** The WHATWG decoder every runtime of the SDK has (typed here: the core builds without DOM types). */
declare const TextDecoder: new (
  label: 'utf-8',
  options: { fatal: boolean; ignoreBOM: boolean },
) => { decode(b: Uint8Array): string };
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Wire types (protobuf encoding §"Message Structure"). */
export const VARINT = 0;
export const LEN = 2;

export class Reader {
  pos = 0;
  readonly len: number;
  constructor(readonly buf: Uint8Array) {
    this.len = buf.length;
  }

  #bounds(): void {
    if (this.pos > this.len) throw new RangeError('premature EOF');
  }

  /** A varint as uint32: at most 10 bytes, bits above 32 dropped (protobuf-es `uint32`). */
  u32(): number {
    let result = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      const b = this.buf[this.pos++] as number;
      result |= (b & 0x7f) << shift;
      if (!(b & 0x80)) {
        this.#bounds();
        return result >>> 0;
      }
    }
    let b = this.buf[this.pos++] as number;
    result |= (b & 0x0f) << 28;
    for (let read = 5; b & 0x80 && read < 10; read++) b = this.buf[this.pos++] as number;
    if (b & 0x80) throw new Error('invalid varint');
    this.#bounds();
    return result >>> 0;
  }

  /** A varint as uint64: at most 10 bytes, bits above 64 dropped (protobuf-es `uint64`). */
  u64(): bigint {
    let result = 0n;
    for (let i = 0; i < 10; i++) {
      const b = this.buf[this.pos++] as number;
      result |= BigInt(b & 0x7f) << BigInt(7 * i);
      if (!(b & 0x80)) {
        this.#bounds();
        return result & 0xffffffffffffffffn;
      }
    }
    throw new Error('invalid varint');
  }

  i32(): number {
    return this.u32() | 0;
  }

  bool(): boolean {
    return this.u64() !== 0n;
  }

  /** Field number and wire type; refuses what protobuf-es refuses. */
  tag(): [number, number] {
    const start = this.pos;
    const tag = this.u32();
    const read = this.pos - start;
    if (read > 5 || (read === 5 && (this.buf[this.pos - 1] as number) > 0x0f))
      throw new Error('illegal tag: varint overflows uint32');
    const no = tag >>> 3;
    const wireType = tag & 7;
    if (no <= 0 || wireType > 5) throw new Error(`illegal tag: field no ${no} wire type ${wireType}`);
    return [no, wireType];
  }

  bytes(): Uint8Array {
    const n = this.u32();
    const start = this.pos;
    this.pos += n;
    this.#bounds();
    return this.buf.slice(start, start + n);
  }

  string(): string {
    return utf8Strict.decode(this.bytes());
  }

  /** Skips a field this reader does not know, by its wire type. */
  skip(wireType: number, no: number, depth = 100): void {
    switch (wireType) {
      case 0:
        while ((this.buf[this.pos++] as number) & 0x80) {}
        break;
      case 1:
        this.pos += 8;
        break;
      case 2: {
        const n = this.u32(); // read before pos is: `this.pos += this.u32()` would lose the varint
        this.pos += n;
        break;
      }
      case 3:
        if (depth <= 0) throw new Error('maximum recursion depth reached');
        for (;;) {
          const [n, wt] = this.tag();
          if (wt === 4) {
            if (n !== no) throw new Error('invalid end group tag');
            break;
          }
          this.skip(wt, n, depth - 1);
        }
        break;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new Error(`cant skip wire type ${wireType}`);
    }
    this.#bounds();
  }
}

/**
 * Writes fields in order. Small values go to a scratch list of bytes; a bytes field of 64 bytes
 * or more is kept by reference as a chunk of its own (encoding is synchronous: the caller cannot
 * change it before `finish`), so a 50 KB payload costs one copy, not 50,000 pushes.
 */
export class Writer {
  readonly #chunks: Uint8Array[] = [];
  #scratch: number[] = [];
  #length = 0;

  #flush(): void {
    if (this.#scratch.length === 0) return;
    this.#chunks.push(Uint8Array.from(this.#scratch));
    this.#length += this.#scratch.length;
    this.#scratch = [];
  }

  varint(v: number | bigint): this {
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0x7fffffff) {
      let x = v;
      while (x > 0x7f) {
        this.#scratch.push((x & 0x7f) | 0x80);
        x >>>= 7;
      }
      this.#scratch.push(x);
      return this;
    }
    let x = BigInt.asUintN(64, BigInt(v));
    while (x > 0x7fn) {
      this.#scratch.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.#scratch.push(Number(x));
    return this;
  }

  tag(no: number, wireType: number): this {
    return this.varint((no << 3) | wireType);
  }

  bytes(b: Uint8Array): this {
    this.varint(b.length);
    if (b.length < 64) for (const x of b) this.#scratch.push(x);
    else {
      this.#flush();
      this.#chunks.push(b);
      this.#length += b.length;
    }
    return this;
  }

  string(s: string): this {
    return this.bytes(utf8ToBytes(s));
  }

  finish(): Uint8Array {
    if (this.#chunks.length === 0) return Uint8Array.from(this.#scratch);
    this.#flush();
    const out = new Uint8Array(this.#length);
    let at = 0;
    for (const c of this.#chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

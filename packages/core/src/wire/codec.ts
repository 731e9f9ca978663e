/**
 * The one binary encoding of Tessera: protobuf, as declared in proto/tessera/v1/*.proto
 * (compiled to {@link descriptor} by scripts/gen-proto.mjs so the core needs no file I/O).
 *
 * `encodeMessage` / `decodeMessage` are the only way bytes enter or leave the core. Decoding
 * never throws anything but a {@link DecodeError} (typed, stable code `DECODE`), whatever the
 * input. Semantic checks (header version and suite, element and scalar lengths) live in
 * ./packages.ts on top of this.
 */
import protobuf from 'protobufjs/light.js';
import { DecodeError, InvalidArgumentError } from '../errors.js';
import { descriptor } from './descriptor.gen.js';
import type { MessageName, WireTypes } from './types.js';

const root = protobuf.Root.fromJSON(descriptor as unknown as protobuf.INamespace);
const types = new Map<string, protobuf.Type>();

function lookup(name: MessageName): protobuf.Type {
  let t = types.get(name);
  if (!t) {
    t = root.lookupType(`tessera.v1.${name}`);
    types.set(name, t);
  }
  return t;
}

const CONVERSION: protobuf.IConversionOptions = {
  longs: Number,
  enums: Number,
  defaults: true,
  arrays: true,
};

/** Largest package the core will decode (a DKG round 2 at n=255 stays well below). */
export const MAX_PACKAGE_BYTES = 1 << 20;

/** Encodes a wire object. Throws InvalidArgumentError if the object does not fit the schema. */
export function encodeMessage<N extends MessageName>(name: N, value: WireTypes[N]): Uint8Array {
  const t = lookup(name);
  const problem = t.verify(value as unknown as Record<string, unknown>);
  if (problem) throw new InvalidArgumentError(`cannot encode ${name}: ${problem}`);
  const range = checkRanges(t, value as unknown as Record<string, unknown>, name);
  if (range) throw new InvalidArgumentError(`cannot encode ${range}`);
  const bytes = t.encode(t.fromObject(value as unknown as Record<string, unknown>)).finish();
  if (bytes.length > MAX_PACKAGE_BYTES)
    throw new InvalidArgumentError(`cannot encode ${name}: ${bytes.length} bytes exceeds the limit`);
  // Hand out a plain Uint8Array that owns its memory (protobufjs may return a pooled slice).
  return new Uint8Array(bytes);
}

const UINT_MAX: Record<string, number> = { uint32: 0xffffffff, uint64: Number.MAX_SAFE_INTEGER };

// protobufjs wraps out-of-range integers silently; the schema only has unsigned fields, so
// every integer must be a safe, non-negative integer within its field's width.
function checkRanges(t: protobuf.Type, v: Record<string, unknown>, path: string): string | undefined {
  for (const f of t.fieldsArray) {
    const x = v[f.name];
    if (x === undefined || x === null) continue;
    const items = f.repeated && Array.isArray(x) ? x : [x];
    for (const item of items) {
      const max = UINT_MAX[f.type];
      if (max !== undefined && (typeof item !== 'number' || !Number.isSafeInteger(item) || item < 0 || item > max))
        return `${path}.${f.name}: expected an integer in 0..${max}`;
      if (f.resolvedType instanceof protobuf.Type && typeof item === 'object') {
        const inner = checkRanges(f.resolvedType, item as Record<string, unknown>, `${path}.${f.name}`);
        if (inner) return inner;
      }
    }
  }
  return undefined;
}

/** Decodes bytes into a wire object with every field present. Only ever throws DecodeError. */
export function decodeMessage<N extends MessageName>(name: N, bytes: Uint8Array): WireTypes[N] {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError(`${name}: expected bytes`);
  if (bytes.length > MAX_PACKAGE_BYTES) throw new DecodeError(`${name}: ${bytes.length} bytes exceeds the limit`);
  const t = lookup(name);
  try {
    const msg = t.decode(bytes);
    const obj = t.toObject(msg, CONVERSION);
    return normalize(obj) as WireTypes[N];
  } catch (e) {
    throw new DecodeError(`${name}: malformed (${e instanceof Error ? e.message : 'undecodable'})`);
  }
}

// Buffers (Node) become plain Uint8Array copies so decoded packages do not alias input memory.
function normalize(v: unknown): unknown {
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(normalize);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = normalize(x);
    return out;
  }
  if (typeof v === 'number' && !Number.isSafeInteger(v) && Number.isInteger(v))
    throw new Error('integer out of safe range');
  return v;
}

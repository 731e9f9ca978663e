/**
 * The codec as it was before the generated table (src/wire/table-codec.ts): protobuf-es's
 * reflection registry over the generated schemas. Kept as the oracle the table codec is held to
 * (wire-table.test.ts, package-check.test.ts): same bytes, same plain objects, same refusals.
 */
import {
  type DescField,
  type DescMessage,
  type Registry,
  ScalarType,
  create,
  createRegistry,
  fromBinary,
  toBinary,
} from '@bufbuild/protobuf';
import { DecodeError, InvalidArgumentError } from '../src/errors.js';
import { file_tessera_v1_cluster } from '../src/wire/gen/tessera/v1/cluster_pb.js';
import { file_tessera_v1_packages } from '../src/wire/gen/tessera/v1/packages_pb.js';
import { MAX_PACKAGE_BYTES } from '../src/wire/limits.js';
import type { MessageName, WireTypes } from '../src/wire/types.js';

const registry: Registry = createRegistry(file_tessera_v1_packages, file_tessera_v1_cluster);
const schemas = new Map<string, DescMessage>();

function lookup(name: string): DescMessage {
  let d = schemas.get(name);
  if (!d) {
    d = registry.getMessage(`tessera.v1.${name}`);
    if (!d) throw new InvalidArgumentError(`no wire message ${name}`);
    schemas.set(name, d);
  }
  return d;
}

/** Encodes a wire object. Throws InvalidArgumentError if the object does not fit the schema. */
export function reflectEncode<N extends MessageName>(name: N, value: WireTypes[N]): Uint8Array {
  const desc = lookup(name);
  const bytes = toBinary(desc, create(desc, fromPlain(desc, value, name)));
  if (bytes.length > MAX_PACKAGE_BYTES)
    throw new InvalidArgumentError(`cannot encode ${name}: ${bytes.length} bytes exceeds the limit`);
  return bytes;
}

/** Decodes bytes into a wire object with every field present. Only ever throws DecodeError. */
export function reflectDecode<N extends MessageName>(name: N, bytes: Uint8Array): WireTypes[N] {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError(`${name}: expected bytes`);
  if (bytes.length > MAX_PACKAGE_BYTES) throw new DecodeError(`${name}: ${bytes.length} bytes exceeds the limit`);
  const desc = lookup(name);
  try {
    return toPlain(desc, fromBinary(desc, bytes, { readUnknownFields: false })) as WireTypes[N];
  } catch (e) {
    throw new DecodeError(`${name}: malformed (${e instanceof Error ? e.message : 'undecodable'})`);
  }
}

// ---- plain objects → messages (checked: a wrong type or range is refused, never coerced) ----

type Obj = Record<string, unknown>;

function fromPlain(desc: DescMessage, v: unknown, path: string): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array)
    throw new InvalidArgumentError(`cannot encode ${path}: expected an object`);
  const o = v as Obj;
  const init: Obj = {};
  for (const f of desc.fields) {
    const x = o[f.localName];
    if (x === undefined || x === null) continue;
    const value = fieldIn(f, x, `${path}.${f.localName}`);
    if (f.oneof) {
      if (init[f.oneof.localName] !== undefined)
        throw new InvalidArgumentError(`cannot encode ${path}: more than one of ${f.oneof.localName}`);
      init[f.oneof.localName] = { case: f.localName, value };
    } else init[f.localName] = value;
  }
  return init;
}

function fieldIn(f: DescField, x: unknown, path: string): unknown {
  switch (f.fieldKind) {
    case 'scalar':
      return scalarIn(f.scalar, x, path);
    case 'enum':
      return enumIn(f.enum.values, x, path);
    case 'message':
      return fromPlain(f.message, x, path);
    case 'list': {
      if (!Array.isArray(x)) throw new InvalidArgumentError(`cannot encode ${path}: expected an array`);
      return x.map((item, i) => {
        const p = `${path}[${i}]`;
        if (f.listKind === 'scalar') return scalarIn(f.scalar, item, p);
        if (f.listKind === 'enum') return enumIn(f.enum.values, item, p);
        return fromPlain(f.message, item, p);
      });
    }
    default:
      throw new InvalidArgumentError(`cannot encode ${path}: map fields are not part of the wire contract`);
  }
}

function enumIn(values: readonly { number: number }[], x: unknown, path: string): number {
  if (typeof x !== 'number' || !values.some((v) => v.number === x))
    throw new InvalidArgumentError(`cannot encode ${path}: expected one of the enum's values`);
  return x;
}

function scalarIn(t: ScalarType, x: unknown, path: string): unknown {
  switch (t) {
    case ScalarType.UINT32:
      if (typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0xffffffff) return x;
      throw new InvalidArgumentError(`cannot encode ${path}: expected an integer in 0..${0xffffffff}`);
    case ScalarType.UINT64:
      if (typeof x === 'number' && Number.isSafeInteger(x) && x >= 0) return BigInt(x);
      throw new InvalidArgumentError(`cannot encode ${path}: expected an integer in 0..${Number.MAX_SAFE_INTEGER}`);
    case ScalarType.BYTES:
      if (x instanceof Uint8Array) return x;
      throw new InvalidArgumentError(`cannot encode ${path}: expected bytes`);
    case ScalarType.STRING:
      if (typeof x === 'string') return x;
      throw new InvalidArgumentError(`cannot encode ${path}: expected a string`);
    case ScalarType.BOOL:
      if (typeof x === 'boolean') return x;
      throw new InvalidArgumentError(`cannot encode ${path}: expected a boolean`);
    default:
      // The contract uses only the types above (unsigned integers, bytes, strings, booleans).
      throw new InvalidArgumentError(`cannot encode ${path}: scalar type ${ScalarType[t]} is not in the contract`);
  }
}

// ---- messages → plain objects --------------------------------------------------------------

function toPlain(desc: DescMessage, m: unknown): Obj {
  const msg = m as Obj;
  const out: Obj = {};
  for (const f of desc.fields) {
    if (f.oneof) {
      const o = msg[f.oneof.localName] as { case?: string; value?: unknown };
      if (o.case === f.localName) out[f.localName] = fieldOut(f, o.value);
    } else out[f.localName] = fieldOut(f, msg[f.localName]);
  }
  return out;
}

function fieldOut(f: DescField, x: unknown): unknown {
  switch (f.fieldKind) {
    case 'message':
      return x === undefined ? null : toPlain(f.message, x);
    case 'list':
      return (x as unknown[]).map((item) =>
        f.listKind === 'message' ? toPlain(f.message, item) : f.listKind === 'scalar' ? scalarOut(item) : item,
      );
    case 'scalar':
      return scalarOut(x);
    default:
      return x;
  }
}

function scalarOut(x: unknown): unknown {
  if (typeof x === 'bigint') {
    if (x > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('integer out of safe range');
    return Number(x);
  }
  // Decoded bytes are views into the input: copies, so decoded packages do not alias it.
  if (x instanceof Uint8Array) return new Uint8Array(x);
  return x;
}

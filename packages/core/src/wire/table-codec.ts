/**
 * Encoding and decoding driven by ./schema.gen.ts, a compact table of the contract's messages
 * that scripts/gen-proto.mjs generates from proto/tessera/v1/*.proto: field numbers, names,
 * types, repetition and oneofs. It replaces protobuf-es's reflection registry at run time (its
 * descriptors and reflection are ~25 KB gzip of every browser bundle) and gives the same bytes and
 * the same plain objects as protobuf-es's `toBinary`/`fromBinary` did through ./codec.ts:
 * core/test/wire-table.test.ts holds the two equal on every message, valid, random and mutated.
 *
 * Encoding: fields in number order; proto3 implicit presence (a zero scalar, an empty string,
 * bytes or list is left out); a set sub-message or oneof member is always written. Decoding: a
 * known field is read as its declared type, an unknown one skipped, a repeated sub-message merged,
 * the last scalar and the last oneof member win; every field is then present in the plain object
 * (zero values, null for an absent sub-message), uint64 as a safe-integer number.
 */
import { DecodeError, InvalidArgumentError } from '../errors.js';
import { MAX_PACKAGE_BYTES } from './limits.js';
import { LEN, Reader, VARINT, Writer } from './proto-lite.js';
import { ENUMS, MESSAGES } from './schema.gen.js';

type Kind = 'u32' | 'u64' | 'bytes' | 'string' | 'bool' | 'enum' | 'message';

interface Field {
  readonly no: number;
  readonly name: string;
  readonly kind: Kind;
  /** The enum or message a field of that kind refers to. */
  readonly ref: string;
  readonly repeated: boolean;
  readonly oneof: string | undefined;
}

interface Schema {
  readonly name: string;
  /** In field-number order. */
  readonly fields: readonly Field[];
  readonly byNo: ReadonlyMap<number, Field>;
}

type Obj = Record<string, unknown>;

const schemas = new Map<string, Schema>();

/** The schema of a message by its name in tessera.v1 ("Header"); InvalidArgumentError if none. */
export function schemaOf(name: string): Schema {
  let s = schemas.get(name);
  if (!s) {
    const table = (MESSAGES as Readonly<Record<string, readonly (readonly (string | number)[])[]>>)[name];
    if (!table) throw new InvalidArgumentError(`no wire message ${name}`);
    const fields = table
      .map(([no, fieldName, type, repeated, oneof]): Field => {
        const t = String(type);
        const kind = (t.startsWith('e:') ? 'enum' : t.startsWith('m:') ? 'message' : t) as Kind;
        return {
          no: Number(no),
          name: String(fieldName),
          kind,
          ref: kind === 'enum' || kind === 'message' ? t.slice(2) : '',
          repeated: repeated === 1,
          oneof: typeof oneof === 'string' ? oneof : undefined,
        };
      })
      .sort((a, b) => a.no - b.no);
    s = { name, fields, byNo: new Map(fields.map((f) => [f.no, f])) };
    schemas.set(name, s);
  }
  return s;
}

// ---- encoding ------------------------------------------------------------------------------

function checkScalar(f: Field, x: unknown, path: string): void {
  switch (f.kind) {
    case 'u32':
      if (typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0xffffffff) return;
      throw new InvalidArgumentError(`cannot encode ${path}: expected an integer in 0..${0xffffffff}`);
    case 'u64':
      if (typeof x === 'number' && Number.isSafeInteger(x) && x >= 0) return;
      throw new InvalidArgumentError(`cannot encode ${path}: expected an integer in 0..${Number.MAX_SAFE_INTEGER}`);
    case 'bytes':
      if (x instanceof Uint8Array) return;
      throw new InvalidArgumentError(`cannot encode ${path}: expected bytes`);
    case 'string':
      if (typeof x === 'string') return;
      throw new InvalidArgumentError(`cannot encode ${path}: expected a string`);
    case 'bool':
      if (typeof x === 'boolean') return;
      throw new InvalidArgumentError(`cannot encode ${path}: expected a boolean`);
    case 'enum':
      if (typeof x === 'number' && (ENUMS as Readonly<Record<string, readonly number[]>>)[f.ref]?.includes(x)) return;
      throw new InvalidArgumentError(`cannot encode ${path}: expected one of the enum's values`);
  }
}

function isZero(x: unknown): boolean {
  return x === 0 || x === false || x === '' || (x instanceof Uint8Array && x.length === 0);
}

function writeValue(w: Writer, f: Field, x: unknown, path: string): void {
  switch (f.kind) {
    case 'message': {
      const sub = new Writer();
      writeMessage(sub, schemaOf(f.ref), x, path);
      w.tag(f.no, LEN).bytes(sub.finish());
      return;
    }
    case 'bytes':
      w.tag(f.no, LEN).bytes(x as Uint8Array);
      return;
    case 'string':
      w.tag(f.no, LEN).string(x as string);
      return;
    case 'bool':
      w.tag(f.no, VARINT).varint(x ? 1 : 0);
      return;
    default:
      w.tag(f.no, VARINT).varint(x as number);
  }
}

function writeMessage(w: Writer, s: Schema, v: unknown, path: string): void {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array)
    throw new InvalidArgumentError(`cannot encode ${path}: expected an object`);
  const o = v as Obj;
  const oneofSet = new Map<string, string>();
  // Checked first, in full: a value that does not fit is refused before anything is written.
  for (const f of s.fields) {
    const x = o[f.name];
    if (x === undefined || x === null) continue;
    const p = `${path}.${f.name}`;
    if (f.oneof) {
      if (oneofSet.has(f.oneof)) throw new InvalidArgumentError(`cannot encode ${path}: more than one of ${f.oneof}`);
      oneofSet.set(f.oneof, f.name);
    }
    if (f.repeated) {
      if (!Array.isArray(x)) throw new InvalidArgumentError(`cannot encode ${p}: expected an array`);
      if (f.kind !== 'message') x.forEach((item, i) => checkScalar(f, item, `${p}[${i}]`));
    } else if (f.kind !== 'message') checkScalar(f, x, p);
  }
  for (const f of s.fields) {
    const x = o[f.name];
    if (x === undefined || x === null) continue;
    const p = `${path}.${f.name}`;
    if (f.repeated) (x as unknown[]).forEach((item, i) => writeValue(w, f, item, `${p}[${i}]`));
    else if (f.oneof || f.kind === 'message' || !isZero(x)) writeValue(w, f, x, p);
  }
}

/** Encodes a plain object as message `name`. InvalidArgumentError if it does not fit the schema. */
export function encodeTable(name: string, value: unknown): Uint8Array {
  const w = new Writer();
  writeMessage(w, schemaOf(name), value, name);
  const bytes = w.finish();
  if (bytes.length > MAX_PACKAGE_BYTES)
    throw new InvalidArgumentError(`cannot encode ${name}: ${bytes.length} bytes exceeds the limit`);
  return bytes;
}

// ---- decoding ------------------------------------------------------------------------------

const RECURSION_LIMIT = 100;

/** Reads the fields of `s` up to `end` into `into` (present fields only; uint64 as bigint). */
function readMessage(r: Reader, s: Schema, end: number, into: Obj, depth: number): Obj {
  if (depth > RECURSION_LIMIT) throw new Error(`cannot decode ${s.name}: maximum recursion depth reached`);
  while (r.pos < end) {
    const [no, wireType] = r.tag();
    const f = s.byNo.get(no);
    if (!f) {
      r.skip(wireType, no, RECURSION_LIMIT - depth);
      continue;
    }
    if (f.oneof) {
      // The last member read wins; a message member read twice in a row merges.
      const key = `$oneof:${f.oneof}`;
      if (into[key] !== f.name) {
        if (typeof into[key] === 'string') delete into[into[key] as string];
        into[key] = f.name;
      }
    }
    let value: unknown;
    switch (f.kind) {
      case 'message': {
        const len = r.u32();
        const prev = f.repeated ? undefined : (into[f.name] as Obj | undefined);
        value = readMessage(r, schemaOf(f.ref), r.pos + len, prev ?? {}, depth + 1);
        break;
      }
      case 'u32':
        value = r.u32();
        break;
      case 'u64':
        value = r.u64();
        break;
      case 'bool':
        value = r.bool();
        break;
      case 'enum':
        value = r.i32();
        break;
      case 'string':
        value = r.string();
        break;
      case 'bytes':
        value = r.bytes();
        break;
    }
    if (f.repeated) ((into[f.name] as unknown[] | undefined) ?? (into[f.name] = [])).push(value);
    else into[f.name] = value;
  }
  return into;
}

function plainValue(f: Field, x: unknown): unknown {
  if (f.kind === 'message') return plain(schemaOf(f.ref), x as Obj);
  if (typeof x === 'bigint') {
    if (x > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('integer out of safe range');
    return Number(x);
  }
  return x;
}

function zeroOf(f: Field): unknown {
  if (f.repeated) return [];
  switch (f.kind) {
    case 'message':
      return null;
    case 'bytes':
      return new Uint8Array(0);
    case 'string':
      return '';
    case 'bool':
      return false;
    default:
      return 0;
  }
}

/** Every field present: read values converted, the others at their zero value; set oneof members only. */
function plain(s: Schema, raw: Obj): Obj {
  const out: Obj = {};
  for (const f of s.fields) {
    const x = raw[f.name];
    if (f.oneof) {
      if (x !== undefined) out[f.name] = plainValue(f, x);
    } else if (x === undefined) out[f.name] = zeroOf(f);
    else out[f.name] = f.repeated ? (x as unknown[]).map((i) => plainValue(f, i)) : plainValue(f, x);
  }
  return out;
}

/** Decodes message `name` into a plain object with every field present. Only ever throws DecodeError. */
export function decodeTable(name: string, bytes: Uint8Array): Obj {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError(`${name}: expected bytes`);
  if (bytes.length > MAX_PACKAGE_BYTES) throw new DecodeError(`${name}: ${bytes.length} bytes exceeds the limit`);
  const s = schemaOf(name); // an unknown name is the caller's error (InvalidArgumentError), as before
  try {
    return plain(s, readMessage(new Reader(bytes), s, bytes.length, {}, 1));
  } catch (e) {
    throw new DecodeError(`${name}: malformed (${e instanceof Error ? e.message : 'undecodable'})`);
  }
}

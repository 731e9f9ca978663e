/**
 * The messages a merchant's package check touches, on the smallest protobuf reader and writer
 * (./wire/proto-lite.ts) instead of protobuf-es's reflection registry (~20 KB gzip on its own):
 * it reads a KeyRecord and an OfflinePackage and writes a Reservation (what its co-signer signed)
 * and an OfflinePackage (the canonical-encoding check and the digest).
 *
 * Field numbers are those of proto/tessera/v1/packages.proto and cluster.proto. The semantics
 * follow protobuf-es's `fromBinary`/`toBinary`, which ./wire/codec.ts uses: a known field is read
 * as its declared type, an unknown one skipped by its wire type, a repeated sub-message merged
 * into the one before, the last scalar wins; writing emits fields in number order and leaves out
 * zero scalars and empty strings, bytes and lists (proto3 implicit presence). test/package-check
 * holds both to the same bytes and verdicts by a differential fuzz.
 */
import { DecodeError } from './errors.js';
import { MAX_PACKAGE_BYTES } from './wire/limits.js';
import { LEN, Reader, VARINT, Writer } from './wire/proto-lite.js';

export interface LiteHeader {
  version: number;
  suite: number;
}
export interface LiteParticipant {
  id: string;
  signKey: Uint8Array;
  encKey: Uint8Array;
  device: boolean;
}
export interface LiteVerifyingShare {
  identifier: Uint8Array;
  element: Uint8Array;
}
export interface LiteKeyPublic {
  header: LiteHeader | null;
  threshold: number;
  commitments: Uint8Array[];
  verifyingShares: LiteVerifyingShare[];
}
export interface LiteKeyRecord {
  header: LiteHeader | null;
  keyId: string;
  epoch: number;
  threshold: number;
  participants: LiteParticipant[];
  public: LiteKeyPublic | null;
  createdAt: number;
}
export interface LiteAssetAmount {
  asset: string;
  amount: string;
}
/** `tessera.v1.FiatCap`. */
export interface LiteFiatCap {
  currency: string;
  cap: string;
  perPayment: string;
  prices: Uint8Array;
  approvals: Uint8Array[];
}
/** `tessera.v1.Allowance`. */
export interface LiteAllowance {
  allowanceId: Uint8Array;
  caps: LiteAssetAmount[];
  perPayment: LiteAssetAmount[];
  fiat: LiteFiatCap | null;
  requireIntegrity: boolean;
}
/** `tessera.v1.Payment`. */
export interface LitePayment {
  chain: string;
  tx: Uint8Array;
  input: number;
}
/** A reservation as a package carries it (`tessera.v1.ReservedCommitment`). */
export interface LiteCosigner {
  signer: string;
  nonceId: Uint8Array;
  hiding: Uint8Array;
  binding: Uint8Array;
  expiresAt: number;
  signature: Uint8Array;
  allowance: LiteAllowance | null;
}
export interface LitePackage {
  header: LiteHeader | null;
  keyId: string;
  epoch: number;
  device: string;
  message: Uint8Array;
  hiding: Uint8Array;
  binding: Uint8Array;
  share: Uint8Array;
  cosigners: LiteCosigner[];
  createdAt: number;
  payment: LitePayment | null;
  /** The device's DEVICE_CLAIMS envelope (empty: none). */
  claims: Uint8Array;
}
/** `tessera.v1.Reservation`: the bytes a co-signer's reservation signature covers. */
export interface LiteReservation {
  header: LiteHeader;
  keyId: string;
  epoch: number;
  device: string;
  signer: string;
  nonceId: Uint8Array;
  hiding: Uint8Array;
  binding: Uint8Array;
  expiresAt: number;
  allowance: LiteAllowance | null;
}

// ---- reading ---------------------------------------------------------------------------------

const NONE = new Uint8Array(0);

/**
 * Reads the fields of one message up to `end`; `field` returns false for a field it does not
 * know, which is skipped with groups nested at most `depth` deep.
 */
export function readFields(r: Reader, end: number, field: (no: number) => boolean, depth = 100): void {
  while (r.pos < end) {
    const [no, wireType] = r.tag();
    if (!field(no)) r.skip(wireType, no, depth);
  }
}

/** A sub-message: its length, then its fields. */
function sub(r: Reader, read: (end: number) => void): void {
  const len = r.u32();
  read(r.pos + len);
}

/**
 * A uint64 as a number; NaN if above 2^53 − 1, refused only if it is still the field's value at
 * the end ({@link safe}): as protobuf-es, a later occurrence of the field replaces an earlier one.
 */
function u64(r: Reader): number {
  const v = r.u64();
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.NaN : Number(v);
}

function safe(...values: number[]): void {
  if (values.some(Number.isNaN)) throw new Error('integer out of safe range');
}

function readHeader(r: Reader, into: LiteHeader | null): LiteHeader {
  const h = into ?? { version: 0, suite: 0 };
  sub(r, (end) =>
    readFields(r, end, (no) => {
      if (no === 1) h.version = r.u32();
      else if (no === 2) h.suite = r.i32();
      else return false;
      return true;
    }),
  );
  return h;
}

function readParticipant(r: Reader): LiteParticipant {
  const p: LiteParticipant = { id: '', signKey: NONE, encKey: NONE, device: false };
  sub(r, (end) =>
    readFields(r, end, (no) => {
      if (no === 1) p.id = r.string();
      else if (no === 2) p.signKey = r.bytes();
      else if (no === 3) p.encKey = r.bytes();
      else if (no === 4) p.device = r.bool();
      else return false;
      return true;
    }),
  );
  return p;
}

function readVerifyingShare(r: Reader): LiteVerifyingShare {
  const v: LiteVerifyingShare = { identifier: NONE, element: NONE };
  sub(r, (end) =>
    readFields(r, end, (no) => {
      if (no === 1) v.identifier = r.bytes();
      else if (no === 2) v.element = r.bytes();
      else return false;
      return true;
    }),
  );
  return v;
}

function readKeyPublic(r: Reader, into: LiteKeyPublic | null): LiteKeyPublic {
  const k = into ?? { header: null, threshold: 0, commitments: [], verifyingShares: [] };
  sub(r, (end) =>
    readFields(r, end, (no) => {
      if (no === 1) k.header = readHeader(r, k.header);
      else if (no === 2) k.threshold = r.u32();
      else if (no === 3) k.commitments.push(r.bytes());
      else if (no === 4) k.verifyingShares.push(readVerifyingShare(r));
      else return false;
      return true;
    }),
  );
  return k;
}

function readAssetAmount(r: Reader): LiteAssetAmount {
  const a: LiteAssetAmount = { asset: '', amount: '' };
  sub(r, (end) =>
    readFields(r, end, (no) => {
      if (no === 1) a.asset = r.string();
      else if (no === 2) a.amount = r.string();
      else return false;
      return true;
    }),
  );
  return a;
}

function readFiatCap(r: Reader, into: LiteFiatCap | null): LiteFiatCap {
  const f = into ?? { currency: '', cap: '', perPayment: '', prices: NONE, approvals: [] };
  sub(r, (end) =>
    readFields(r, end, (no) => {
      if (no === 1) f.currency = r.string();
      else if (no === 2) f.cap = r.string();
      else if (no === 3) f.perPayment = r.string();
      else if (no === 4) f.prices = r.bytes();
      else if (no === 5) f.approvals.push(r.bytes());
      else return false;
      return true;
    }),
  );
  return f;
}

function readAllowance(r: Reader, into: LiteAllowance | null): LiteAllowance {
  const a = into ?? { allowanceId: NONE, caps: [], perPayment: [], fiat: null, requireIntegrity: false };
  sub(r, (end) =>
    readFields(r, end, (no) => {
      if (no === 1) a.allowanceId = r.bytes();
      else if (no === 2) a.caps.push(readAssetAmount(r));
      else if (no === 3) a.perPayment.push(readAssetAmount(r));
      else if (no === 4) a.fiat = readFiatCap(r, a.fiat);
      else if (no === 5) a.requireIntegrity = r.bool();
      else return false;
      return true;
    }),
  );
  return a;
}

function readPayment(r: Reader, into: LitePayment | null): LitePayment {
  const p = into ?? { chain: '', tx: NONE, input: 0 };
  sub(r, (end) =>
    readFields(r, end, (no) => {
      if (no === 1) p.chain = r.string();
      else if (no === 2) p.tx = r.bytes();
      else if (no === 3) p.input = r.u32();
      else return false;
      return true;
    }),
  );
  return p;
}

function readCosigner(r: Reader): LiteCosigner {
  const c: LiteCosigner = {
    signer: '',
    nonceId: NONE,
    hiding: NONE,
    binding: NONE,
    expiresAt: 0,
    signature: NONE,
    allowance: null,
  };
  sub(r, (end) =>
    readFields(r, end, (no) => {
      if (no === 1) c.signer = r.string();
      else if (no === 2) c.nonceId = r.bytes();
      else if (no === 3) c.hiding = r.bytes();
      else if (no === 4) c.binding = r.bytes();
      else if (no === 5) c.expiresAt = u64(r);
      else if (no === 6) c.signature = r.bytes();
      else if (no === 7) c.allowance = readAllowance(r, c.allowance);
      else return false;
      return true;
    }),
  );
  return c;
}

/** Runs a top-level read; anything malformed is a DecodeError naming the message. */
function decodeTop<T>(name: string, bytes: Uint8Array, read: (r: Reader) => T): T {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError(`${name}: expected bytes`);
  if (bytes.length > MAX_PACKAGE_BYTES) throw new DecodeError(`${name}: ${bytes.length} bytes exceeds the limit`);
  try {
    return read(new Reader(bytes));
  } catch (e) {
    throw new DecodeError(`${name}: malformed (${e instanceof Error ? e.message : 'undecodable'})`);
  }
}

/** Decodes a `tessera.v1.KeyRecord` (no semantic checks). */
export function readKeyRecord(bytes: Uint8Array): LiteKeyRecord {
  return decodeTop('KeyRecord', bytes, (r) => {
    const k: LiteKeyRecord = {
      header: null,
      keyId: '',
      epoch: 0,
      threshold: 0,
      participants: [],
      public: null,
      createdAt: 0,
    };
    readFields(r, bytes.length, (no) => {
      if (no === 1) k.header = readHeader(r, k.header);
      else if (no === 2) k.keyId = r.string();
      else if (no === 3) k.epoch = u64(r);
      else if (no === 4) k.threshold = r.u32();
      else if (no === 5) k.participants.push(readParticipant(r));
      else if (no === 6) k.public = readKeyPublic(r, k.public);
      else if (no === 7) k.createdAt = u64(r);
      else return false;
      return true;
    });
    safe(k.epoch, k.createdAt);
    return k;
  });
}

/** Decodes a `tessera.v1.OfflinePackage` (no semantic checks, no canonical-encoding check). */
export function readOfflinePackage(bytes: Uint8Array): LitePackage {
  return decodeTop('OfflinePackage', bytes, (r) => {
    const p: LitePackage = {
      header: null,
      keyId: '',
      epoch: 0,
      device: '',
      message: NONE,
      hiding: NONE,
      binding: NONE,
      share: NONE,
      cosigners: [],
      createdAt: 0,
      payment: null,
      claims: NONE,
    };
    readFields(r, bytes.length, (no) => {
      if (no === 1) p.header = readHeader(r, p.header);
      else if (no === 2) p.keyId = r.string();
      else if (no === 3) p.epoch = u64(r);
      else if (no === 4) p.device = r.string();
      else if (no === 5) p.message = r.bytes();
      else if (no === 6) p.hiding = r.bytes();
      else if (no === 7) p.binding = r.bytes();
      else if (no === 8) p.share = r.bytes();
      else if (no === 9) p.cosigners.push(readCosigner(r));
      else if (no === 10) p.createdAt = u64(r);
      else if (no === 11) p.payment = readPayment(r, p.payment);
      else if (no === 12) p.claims = r.bytes();
      else return false;
      return true;
    });
    safe(p.epoch, p.createdAt, ...p.cosigners.map((c) => c.expiresAt));
    return p;
  });
}

// ---- writing (canonical: number order, zero values left out) ---------------------------------

function putString(w: Writer, no: number, v: string): void {
  if (v !== '') w.tag(no, LEN).string(v);
}
export function putBytes(w: Writer, no: number, v: Uint8Array): void {
  if (v.length) w.tag(no, LEN).bytes(v);
}
export function putVarint(w: Writer, no: number, v: number): void {
  if (v !== 0) w.tag(no, VARINT).varint(v);
}
function putMessage(w: Writer, no: number, fill: (m: Writer) => void): void {
  const m = new Writer();
  fill(m);
  w.tag(no, LEN).bytes(m.finish());
}
function putAllowance(w: Writer, no: number, a: LiteAllowance | null): void {
  if (a)
    putMessage(w, no, (m) => {
      putBytes(m, 1, a.allowanceId);
      for (const [field, list] of [
        [2, a.caps],
        [3, a.perPayment],
      ] as const)
        for (const e of list)
          putMessage(m, field, (x) => {
            putString(x, 1, e.asset);
            putString(x, 2, e.amount);
          });
      const f = a.fiat;
      if (f)
        putMessage(m, 4, (x) => {
          putString(x, 1, f.currency);
          putString(x, 2, f.cap);
          putString(x, 3, f.perPayment);
          putBytes(x, 4, f.prices);
          for (const e of f.approvals) x.tag(5, LEN).bytes(e);
        });
      putVarint(m, 5, a.requireIntegrity ? 1 : 0);
    });
}
function putHeader(w: Writer, no: number, h: LiteHeader | null): void {
  if (h)
    putMessage(w, no, (m) => {
      putVarint(m, 1, h.version);
      putVarint(m, 2, h.suite);
    });
}

/** Encodes a `tessera.v1.Reservation` as the generated codec does. */
export function writeReservation(v: LiteReservation): Uint8Array {
  const w = new Writer();
  putHeader(w, 1, v.header);
  putString(w, 2, v.keyId);
  putVarint(w, 3, v.epoch);
  putString(w, 4, v.device);
  putString(w, 5, v.signer);
  putBytes(w, 6, v.nonceId);
  putBytes(w, 7, v.hiding);
  putBytes(w, 8, v.binding);
  putVarint(w, 9, v.expiresAt);
  putAllowance(w, 10, v.allowance);
  return w.finish();
}

/** Encodes a `tessera.v1.OfflinePackage` as the generated codec does. */
export function writeOfflinePackage(p: LitePackage): Uint8Array {
  const w = new Writer();
  putHeader(w, 1, p.header);
  putString(w, 2, p.keyId);
  putVarint(w, 3, p.epoch);
  putString(w, 4, p.device);
  putBytes(w, 5, p.message);
  putBytes(w, 6, p.hiding);
  putBytes(w, 7, p.binding);
  putBytes(w, 8, p.share);
  for (const c of p.cosigners)
    putMessage(w, 9, (m) => {
      putString(m, 1, c.signer);
      putBytes(m, 2, c.nonceId);
      putBytes(m, 3, c.hiding);
      putBytes(m, 4, c.binding);
      putVarint(m, 5, c.expiresAt);
      putBytes(m, 6, c.signature);
      putAllowance(m, 7, c.allowance);
    });
  putVarint(w, 10, p.createdAt);
  const pay = p.payment;
  if (pay)
    putMessage(w, 11, (m) => {
      putString(m, 1, pay.chain);
      putBytes(m, 2, pay.tx);
      putVarint(m, 3, pay.input);
    });
  putBytes(w, 12, p.claims);
  return w.finish();
}

/**
 * The audit log's hash chain, pure (no I/O): entry shape, canonical encoding, hashing, and
 * {@link verifyAuditEntries} for offline verification of an exported chain.
 *
 * `hash = hex(SHA-256(canonical(entry)))` where canonical(entry) is, in order:
 * `"tessera/audit/v1\0"`, `u64be(seq)`, `u64be(at)`, `lp(type)`, `0x00` (no actor) or
 * `0x01 || lp(actor)`, `u32be(#data)`, then for each data key in UTF-8 byte order `lp(key)` and
 * its value (`0x00` null, `0x01` false, `0x02` true, `0x03 || float64be` number,
 * `0x04 || lp(string)`), then the 32 bytes of `prev`. `lp(s) = u32be(len) || utf8(s)`.
 * The first entry has `seq = 1` and `prev` = 64 zeros ({@link GENESIS_HASH}).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes } from '@noble/hashes/utils.js';
import { isWellFormed, utf8 } from './bytes.js';
import { u64 } from './codec.js';
import { StoreError } from './errors.js';

/** A value in an audit entry's `data`. Never put secrets here: the log is for people to read. */
export type AuditValue = string | number | boolean | null;

/** One audit log entry. */
export interface AuditEntry {
  /** Position in the chain, from 1, without gaps. */
  seq: number;
  /** Time of the event, ms since the epoch. */
  at: number;
  /** Event kind: keygen, sign, refusal, refresh, reshare, admin, ... */
  type: string;
  /** Who caused the event (operator, client id), if known. */
  actor?: string;
  /** Event details. */
  data: Record<string, AuditValue>;
  /** `hash` of the previous entry (hex), {@link GENESIS_HASH} for the first. */
  prev: string;
  /** SHA-256 of this entry's canonical encoding (hex). */
  hash: string;
}

/** The last entry's position and hash; `{seq: 0, hash: GENESIS_HASH}` for an empty log. */
export interface AuditHead {
  seq: number;
  hash: string;
}

/** What is wrong with a chain: the first failing position and why. */
export interface AuditProblem {
  /** Seq of the first entry (or missing entry) that fails; 0 means the head record itself. */
  seq: number;
  /** `edited`: content or a link changed; `deleted`: an entry is missing; `reordered`: an entry is
   * at another position; `corrupt`: unreadable or malformed. */
  reason: 'edited' | 'deleted' | 'reordered' | 'corrupt';
}

/** Result of verifying a chain. `count` is the number of entries verified before any problem. */
export type AuditVerifyResult =
  | { ok: true; count: number; head: AuditHead }
  | { ok: false; count: number; problem: AuditProblem };

/** `prev` of the first entry. */
export const GENESIS_HASH = '0'.repeat(64);
const DOMAIN = utf8('tessera/audit/v1\0');
const HEX64 = /^[0-9a-f]{64}$/;

/** The hash (hex) an entry must carry: SHA-256 over its canonical encoding (see module doc). */
export function auditEntryHash(e: Omit<AuditEntry, 'hash'>): string {
  return bytesToHex(sha256(canonicalEncoding(e)));
}

/**
 * Canonical byte encoding of an entry's hashed fields (everything except `hash`). Throws
 * `INVALID_ARGUMENT` if `seq`/`at` are not non-negative safe integers or `prev` is not 64 hex.
 */
export function canonicalEncoding(e: Omit<AuditEntry, 'hash'>): Uint8Array {
  if (!isCount(e.seq) || !isCount(e.at) || typeof e.prev !== 'string' || !HEX64.test(e.prev)) {
    throw new StoreError('INVALID_ARGUMENT', 'audit entry needs integer seq and at and a 64-hex prev');
  }
  const parts: Uint8Array[] = [DOMAIN, u64(e.seq), u64(e.at), lp(e.type)];
  parts.push(e.actor === undefined ? Uint8Array.of(0) : concatBytes(Uint8Array.of(1), lp(e.actor)));
  const keys = Object.keys(e.data)
    .map((k) => [k, utf8(k)] as const)
    .sort((a, b) => compareBytes(a[1], b[1]));
  parts.push(u32(keys.length));
  for (const [k] of keys) {
    parts.push(lp(k));
    const v = e.data[k];
    if (v === null || v === undefined) parts.push(Uint8Array.of(0));
    else if (typeof v === 'boolean') parts.push(Uint8Array.of(v ? 2 : 1));
    else if (typeof v === 'number') {
      const b = new Uint8Array(9);
      b[0] = 3;
      new DataView(b.buffer).setFloat64(1, v === 0 ? 0 : v);
      parts.push(b);
    } else parts.push(concatBytes(Uint8Array.of(4), lp(v)));
  }
  parts.push(hexToBytes(e.prev));
  return concatBytes(...parts);
}

/** True if `v` has exactly the shape of an {@link AuditEntry} (no extra fields). */
export function isAuditEntry(v: unknown): v is AuditEntry {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  const allowed = new Set(['seq', 'at', 'type', 'actor', 'data', 'prev', 'hash']);
  if (Object.keys(o).some((k) => !allowed.has(k))) return false;
  if (!isCount(o['seq']) || (o['seq'] as number) < 1 || !isCount(o['at'])) return false;
  if (!isText(o['type']) || (o['actor'] !== undefined && !isText(o['actor']))) return false;
  if (typeof o['prev'] !== 'string' || !HEX64.test(o['prev'])) return false;
  if (typeof o['hash'] !== 'string' || !HEX64.test(o['hash'])) return false;
  const data = o['data'];
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return false;
  return Object.entries(data).every(([k, x]) => isWellFormed(k) && isAuditValue(x));
}

/** True if `v` may be stored as an audit data value. */
export function isAuditValue(v: unknown): v is AuditValue {
  return (
    v === null ||
    typeof v === 'boolean' ||
    (typeof v === 'number' && Number.isFinite(v)) ||
    (typeof v === 'string' && isWellFormed(v))
  );
}

/**
 * Verify an exported chain, pure and offline. `entries` are in chain order. `from` anchors a
 * chain that does not start at seq 1 (the head just before the first entry); `head`, if given,
 * is the head the chain must end at (detects deletion of the last entries).
 */
export function verifyAuditEntries(
  entries: readonly unknown[],
  opts: { from?: AuditHead; head?: AuditHead } = {},
): AuditVerifyResult {
  const chain = new ChainCursor(opts.from ?? { seq: 0, hash: GENESIS_HASH });
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const expected = chain.next;
    let problem: AuditProblem | undefined;
    if (!isAuditEntry(e)) problem = { seq: expected, reason: 'corrupt' };
    else if (e.seq !== expected) {
      const later = entries.slice(i + 1).some((x) => isAuditEntry(x) && x.seq === expected);
      problem = { seq: expected, reason: e.seq < expected || later ? 'reordered' : 'deleted' };
    } else problem = chain.accept(e);
    if (problem) return { ok: false, count: chain.count, problem };
  }
  const end = opts.head === undefined ? undefined : chain.finish(opts.head);
  return end ? { ok: false, count: chain.count, problem: end } : { ok: true, count: chain.count, head: chain.head };
}

/** Walks a chain link by link; shared by the offline verifier and the store's `verify()`. */
export class ChainCursor {
  #head: AuditHead;
  /** Entries accepted so far. */
  count = 0;

  constructor(from: AuditHead) {
    this.#head = { ...from };
  }

  /** Seq the next entry must have. */
  get next(): number {
    return this.#head.seq + 1;
  }

  /** The last accepted entry's seq and hash. */
  get head(): AuditHead {
    return { ...this.#head };
  }

  /** Check `e` (already known to be at position {@link next}) and advance; a problem if it fails. */
  accept(e: AuditEntry): AuditProblem | undefined {
    if (auditEntryHash(e) !== e.hash || e.prev !== this.#head.hash) return { seq: e.seq, reason: 'edited' };
    this.#head = { seq: e.seq, hash: e.hash };
    this.count++;
    return undefined;
  }

  /** Compare the walked chain with the recorded head (after the last entry). */
  finish(recorded: AuditHead): AuditProblem | undefined {
    if (recorded.seq > this.#head.seq) return { seq: this.#head.seq + 1, reason: 'deleted' };
    if (recorded.seq < this.#head.seq) return { seq: recorded.seq + 1, reason: 'corrupt' };
    if (recorded.hash !== this.#head.hash) return { seq: recorded.seq, reason: 'edited' };
    return undefined;
  }
}

function isCount(v: unknown): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isText(v: unknown): boolean {
  return typeof v === 'string' && v.length > 0 && isWellFormed(v);
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function lp(s: string): Uint8Array {
  const b = utf8(s);
  return concatBytes(u32(b.length), b);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
}

/** A flat summary of a verification, as processes report it to operators. */
export function summarizeAudit(r: AuditVerifyResult): {
  ok: boolean;
  count: number;
  head: string;
  problemSeq: number;
  reason: string;
} {
  return r.ok
    ? { ok: true, count: r.count, head: r.head.hash, problemSeq: 0, reason: '' }
    : { ok: false, count: r.count, head: '', problemSeq: r.problem.seq, reason: r.problem.reason };
}

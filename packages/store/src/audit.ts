/**
 * AuditLog — an append-only, hash-chained record of what the node did (keygen, sign, refusal,
 * refresh, reshare, admin, ...). Each entry commits to its predecessor's hash; the head
 * `{seq, hash}` is kept in its own record, written in the same atomic batch as each entry, so
 * deleting the last entries is detected too. Layout: `audit/e/<seq as 16 digits>` (JSON entry)
 * and `audit/head` (JSON head), both sealed.
 *
 * The chain detects partial tampering. Someone holding the data key could rewrite the whole
 * chain consistently, so export the head periodically to somewhere they cannot reach.
 */
import { fromUtf8, isWellFormed, utf8 } from './bytes.js';
import {
  type AuditEntry,
  type AuditHead,
  type AuditProblem,
  type AuditValue,
  type AuditVerifyResult,
  ChainCursor,
  GENESIS_HASH,
  auditEntryHash,
  isAuditEntry,
  isAuditValue,
} from './audit-chain.js';
import { StoreError } from './errors.js';
import { KeyedMutex } from './mutex.js';
import type { BatchOp, SealedKV } from './types.js';

/** Key prefix of the audit log. */
export const AUDIT_PREFIX = 'audit/';
/** Prefix of the entry records. */
export const AUDIT_ENTRY_PREFIX = `${AUDIT_PREFIX}e/`;
/** Key of the head record. */
export const AUDIT_HEAD_KEY = `${AUDIT_PREFIX}head`;
const SEQ_DIGITS = 16;
const DATA_KEY = /^[A-Za-z0-9_.:-]{1,64}$/;

/** What a caller supplies to {@link AuditLog.append}; the log assigns seq, prev and hash. */
export interface AuditInput {
  type: string;
  actor?: string;
  data?: Record<string, AuditValue>;
  /** Event time in ms; defaults to the log's clock. */
  at?: number;
}

/** Most appends written in one batch. */
const MAX_GROUP = 64;

type Draft = ReturnType<typeof normalise>;
interface Pending {
  readonly draft: Draft;
  readonly more: readonly BatchOp[];
  resolve(entry: AuditEntry): void;
  reject(e: unknown): void;
}

/** The store key of the entry with sequence number `seq`. */
export function auditEntryKey(seq: number): string {
  return AUDIT_ENTRY_PREFIX + String(seq).padStart(SEQ_DIGITS, '0');
}

/** The hash-chained audit log over a {@link SealedKV}. */
export class AuditLog {
  readonly #store: SealedKV;
  readonly #clock: () => number;
  readonly #mutex = new KeyedMutex();
  /** The head as this log last wrote it (read from the store at the first append). */
  #head: AuditHead | undefined;
  /** Appends waiting for the batch being written (group commit). */
  readonly #queue: Pending[] = [];
  #draining = false;

  constructor(store: SealedKV, opts: { clock?: () => number } = {}) {
    this.#store = store;
    this.#clock = opts.clock ?? Date.now;
  }

  /**
   * Append an entry (entry and head in one synced batch); appends are chained in call order.
   * Returns the entry once it is on disk. `with`: more operations on the same store, written in
   * that same atomic batch, so the entry is on disk exactly when what it records is (e.g. a
   * nonce's consumption, a stored result).
   *
   * Group commit: appends made while a batch is being written wait and then go to disk together,
   * in one synced batch (each keeps its own entry and its own `with` operations, in call order);
   * LevelDB pays one fsync for the group. An append alone is written at once. If the group's
   * batch fails every append in it fails and the head is unchanged; an append whose own
   * operations are refused (INVALID_ARGUMENT, before anything is written) is retried alone, so it
   * cannot fail the others.
   */
  append(input: AuditInput, opts: { with?: readonly BatchOp[] } = {}): Promise<AuditEntry> {
    let draft: Draft;
    let more: readonly BatchOp[];
    try {
      draft = normalise(input, this.#clock);
      more = opts.with ?? [];
      if (!Array.isArray(more) || more.some((op) => typeof op?.key !== 'string' || op.key.startsWith(AUDIT_PREFIX)))
        throw new StoreError(
          'INVALID_ARGUMENT',
          'operations written with an audit entry must be an array outside the audit log',
        );
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<AuditEntry>((resolve, reject) => {
      this.#queue.push({ draft, more, resolve, reject });
      if (!this.#draining) {
        this.#draining = true;
        void this.#drain();
      }
    });
  }

  /** Writes queued appends, a group at a time, until none is left. */
  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        await this.#mutex.run('append', async () => {
          const group = this.#queue.splice(0, MAX_GROUP);
          try {
            await this.#write(group);
          } catch (e) {
            // Refused before anything was written (an op of one append): each alone, so only
            // the append that carries the bad op fails.
            // Likewise an insert that found its key (KEY_EXISTS): only its own append fails.
            if (
              group.length > 1 &&
              e instanceof StoreError &&
              (e.code === 'INVALID_ARGUMENT' || e.code === 'KEY_EXISTS')
            ) {
              for (const one of group) await this.#write([one]).catch((err: unknown) => one.reject(err));
            } else for (const one of group) one.reject(e);
          }
        });
      }
    } finally {
      this.#draining = false;
    }
  }

  /** One synced batch: every append's operations and entry in order, then the new head. */
  async #write(group: readonly Pending[]): Promise<void> {
    // This log is its store's only writer of audit records, so the head it last wrote is the
    // head (a store edited behind its back shows up in verify(), as a gap or a broken link).
    let head = this.#head ?? (await this.head());
    const entries: AuditEntry[] = [];
    const ops: BatchOp[] = [];
    for (const { draft, more } of group) {
      const body = {
        seq: head.seq + 1,
        at: draft.at,
        type: draft.type,
        ...(draft.actor === undefined ? {} : { actor: draft.actor }),
        data: draft.data,
        prev: head.hash,
      };
      const entry: AuditEntry = { ...body, hash: auditEntryHash(body) };
      entries.push(entry);
      ops.push(...more, { type: 'put', key: auditEntryKey(entry.seq), value: utf8(JSON.stringify(entry)) });
      head = { seq: entry.seq, hash: entry.hash };
    }
    ops.push({ type: 'put', key: AUDIT_HEAD_KEY, value: utf8(JSON.stringify(head)) });
    await this.#store.batch(ops, { sync: true });
    this.#head = head;
    group.forEach((p, i) => p.resolve(entries[i] as AuditEntry));
  }

  /** The entries from `fromSeq` on, in order. `STORE_CORRUPT` on an unreadable entry. */
  async *entries(fromSeq = 1): AsyncGenerator<AuditEntry> {
    for await (const [key, value] of this.#store.iterate(AUDIT_ENTRY_PREFIX)) {
      if (key < auditEntryKey(fromSeq)) continue;
      const entry = parseEntry(value);
      if (entry === undefined) throw new StoreError('STORE_CORRUPT', `audit entry ${key} is malformed`);
      yield entry;
    }
  }

  /** The current head; `{seq: 0, hash: GENESIS_HASH}` for an empty log. */
  async head(): Promise<AuditHead> {
    const value = await this.#store.get(AUDIT_HEAD_KEY);
    if (value === undefined) return { seq: 0, hash: GENESIS_HASH };
    const head = parseHead(value);
    if (head === undefined) throw new StoreError('STORE_CORRUPT', `audit head ${AUDIT_HEAD_KEY} is malformed`);
    return head;
  }

  /**
   * Walk the stored chain and report the first problem: an `edited` entry (its hash or link does
   * not match), a `deleted` one (a gap, or fewer entries than the head records), a `reordered`
   * one (an entry stored at another position), or a `corrupt` one (unreadable). Runs under the
   * append lock, so it sees a consistent chain.
   */
  async verify(): Promise<AuditVerifyResult> {
    return this.#mutex.run('append', async () => {
      const chain = new ChainCursor({ seq: 0, hash: GENESIS_HASH });
      const fail = (problem: AuditProblem): AuditVerifyResult => ({ ok: false, count: chain.count, problem });
      for await (const key of this.#store.keys(AUDIT_ENTRY_PREFIX)) {
        const digits = key.slice(AUDIT_ENTRY_PREFIX.length);
        const keySeq = Number(digits);
        if (digits.length !== SEQ_DIGITS || !Number.isSafeInteger(keySeq))
          return fail({ seq: chain.next, reason: 'corrupt' });
        const entry = await readEntry(this.#store, key);
        if (entry === undefined) return fail({ seq: keySeq, reason: 'corrupt' });
        if (entry.seq !== keySeq) return fail({ seq: keySeq, reason: 'reordered' });
        if (keySeq > chain.next) return fail({ seq: chain.next, reason: 'deleted' });
        const problem = chain.accept(entry);
        if (problem) return fail(problem);
      }
      let recorded: AuditHead | undefined;
      try {
        const value = await this.#store.get(AUDIT_HEAD_KEY);
        recorded = value === undefined ? undefined : parseHead(value);
        if (value !== undefined && recorded === undefined) return fail({ seq: 0, reason: 'corrupt' });
      } catch (e) {
        if (e instanceof StoreError && e.code === 'STORE_CORRUPT') return fail({ seq: 0, reason: 'corrupt' });
        throw e;
      }
      if (recorded === undefined) {
        return chain.count === 0 ? { ok: true, count: 0, head: chain.head } : fail({ seq: 0, reason: 'deleted' });
      }
      const end = chain.finish(recorded);
      return end ? fail(end) : { ok: true, count: chain.count, head: chain.head };
    });
  }
}

function normalise(
  input: AuditInput,
  clock: () => number,
): { type: string; actor?: string; at: number; data: Record<string, AuditValue> } {
  if (typeof input !== 'object' || input === null)
    throw new StoreError('INVALID_ARGUMENT', 'audit entry must be an object');
  const { type, actor } = input;
  if (typeof type !== 'string' || type.length === 0 || type.length > 64 || !isWellFormed(type)) {
    throw new StoreError('INVALID_ARGUMENT', 'audit type must be a well-formed string of 1-64 characters');
  }
  if (
    actor !== undefined &&
    (typeof actor !== 'string' || actor.length === 0 || actor.length > 256 || !isWellFormed(actor))
  ) {
    throw new StoreError('INVALID_ARGUMENT', 'audit actor must be a well-formed string of 1-256 characters');
  }
  const at = input.at ?? clock();
  if (!Number.isSafeInteger(at) || at < 0)
    throw new StoreError('INVALID_ARGUMENT', 'audit time must be a non-negative integer (ms)');
  const entries = Object.entries(input.data ?? {}).map(([k, v]): [string, AuditValue] => {
    if (!DATA_KEY.test(k))
      throw new StoreError('INVALID_ARGUMENT', 'audit data keys must be 1-64 characters of A-Z a-z 0-9 _ . : -');
    if (!isAuditValue(v))
      throw new StoreError('INVALID_ARGUMENT', `audit data ${k} must be a string, finite number, boolean or null`);
    return [k, typeof v === 'number' && v === 0 ? 0 : v];
  });
  entries.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return { type, at, data: Object.fromEntries(entries), ...(actor === undefined ? {} : { actor }) };
}

async function readEntry(store: SealedKV, key: string): Promise<AuditEntry | undefined> {
  try {
    const value = await store.get(key);
    return value === undefined ? undefined : parseEntry(value);
  } catch (e) {
    if (e instanceof StoreError && e.code === 'STORE_CORRUPT') return undefined;
    throw e;
  }
}

function parseJson(value: Uint8Array): unknown {
  try {
    return JSON.parse(fromUtf8(value));
  } catch {
    return undefined;
  }
}

function parseEntry(value: Uint8Array): AuditEntry | undefined {
  const v = parseJson(value);
  return isAuditEntry(v) ? v : undefined;
}

function parseHead(value: Uint8Array): AuditHead | undefined {
  const v = parseJson(value) as { seq?: unknown; hash?: unknown } | undefined;
  if (typeof v !== 'object' || v === null || Object.keys(v).length !== 2) return undefined;
  const { seq, hash } = v;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return undefined;
  if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) return undefined;
  return { seq, hash };
}

/**
 * The device's event journal: an append-only, hash-chained record of what happened to its
 * offline allowance and payments, written in the same synced batch as the change it records
 * (nothing reported is missing from it):
 *  - `reserved`   an allowance added (key, slots, earliest expiry);
 *  - `signed`     an offline package made: its reservation used, the package queued;
 *  - `completed`  the cluster completed a package (its signature);
 *  - `refused`    the cluster refused a package for good (code, reason): the payment handed over
 *                 will not settle;
 *  - `expired`    unused reservations past their expiry dropped (the allowance released);
 *  - `compensated` the wallet recorded that it settled a refused payment with its user.
 * Each entry carries the hash of the one before; `verify` walks the chain. Records are sealed
 * under the storage key with their key as associated data, so an entry edited, moved or
 * replaced on disk fails to open, and one removed breaks the chain; both are JOURNAL_TAMPERED.
 * (A whole store rolled back to an older copy is consistent with itself: only the cluster's
 * record of the device's packages can show that.)
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { DeviceError } from './errors.js';
import { DeviceStorage, type StorageOp } from './storage.js';

export type JournalKind = 'reserved' | 'signed' | 'completed' | 'refused' | 'expired' | 'compensated';

/** What an entry says (the chain fields are added when it is appended). */
export interface JournalEvent {
  readonly kind: JournalKind;
  readonly keyId?: string;
  readonly packageId?: string;
  /** reserved, expired: how many slots. */
  readonly count?: number;
  /** reserved: the earliest expiry of the slots added (ms). */
  readonly expiresAt?: number;
  /** refused: the cluster's code and reason. */
  readonly code?: string;
  readonly reason?: string;
  /** completed: the signature (hex). */
  readonly signature?: string;
  /** compensated: the wallet's note. */
  readonly note?: string;
  /** signed: the app's device-integrity verdict when it signed (`pass`, `fail`, `unknown`, with its detail). */
  readonly integrity?: string;
  /** signed: the payment the package pays, as read from its transaction (amounts in base units). */
  readonly payment?: { chain: string; asset: string; amount: string; fee: string; to: string[] };
}

export interface JournalEntry extends JournalEvent {
  readonly seq: number;
  readonly at: number;
  /** Hash of the previous entry (64 zeros for the first). */
  readonly prev: string;
  readonly hash: string;
}

const GENESIS = '0'.repeat(64);
const pad = (n: number) => String(n).padStart(12, '0');
const FIELDS = ['keyId', 'packageId', 'count', 'expiresAt', 'code', 'reason', 'signature', 'note'] as const;

/**
 * The entry's hash: SHA-256 of its fields in a fixed order (JSON array), chained by `prev`.
 * `integrity` and `payment` (added later) are hashed only when present, so entries written
 * before them keep their hashes.
 */
function entryHash(e: Omit<JournalEntry, 'hash'>): string {
  const extra = [
    ...(e.integrity !== undefined ? [e.integrity] : []),
    ...(e.payment !== undefined ? [{ payment: e.payment }] : []),
  ];
  const fields = [e.seq, e.at, e.kind, ...FIELDS.map((f) => e[f] ?? null), ...extra, e.prev];
  return bytesToHex(sha256(utf8ToBytes(JSON.stringify(fields))));
}

function tampered(detail: string): DeviceError {
  return new DeviceError('JOURNAL_TAMPERED', `the device journal was altered: ${detail}`);
}

export class Journal {
  readonly #store: DeviceStorage;
  readonly #clock: () => number;
  #head: { seq: number; hash: string } | undefined;
  #lock: Promise<unknown> = Promise.resolve();

  constructor(store: DeviceStorage, clock: () => number) {
    this.#store = store;
    this.#clock = clock;
  }

  async #loadHead(): Promise<{ seq: number; hash: string }> {
    this.#head ??= (await this.#store.getJson<{ seq: number; hash: string }>('journal-head')) ?? {
      seq: 0,
      hash: GENESIS,
    };
    return this.#head;
  }

  /**
   * Writes `ops` and the entries for `events` in one synced batch (one after another, in call
   * order across concurrent callers). Returns the entries written.
   */
  append(events: readonly JournalEvent[], ops: readonly StorageOp[] = []): Promise<JournalEntry[]> {
    const run = this.#lock.then(async () => {
      const head = await this.#loadHead();
      const at = this.#clock();
      let { seq, hash } = head;
      const entries: JournalEntry[] = [];
      for (const ev of events) {
        const body = { ...ev, seq: seq + 1, at, prev: hash };
        const entry: JournalEntry = { ...body, hash: entryHash(body) };
        entries.push(entry);
        seq = entry.seq;
        hash = entry.hash;
      }
      await this.#store.batch([
        ...ops,
        ...entries.map((e) => ({ type: 'put' as const, key: `journal/${pad(e.seq)}`, value: DeviceStorage.json(e) })),
        ...(entries.length
          ? [{ type: 'put' as const, key: 'journal-head', value: DeviceStorage.json({ seq, hash }) }]
          : []),
      ]);
      this.#head = { seq, hash };
      return entries;
    });
    this.#lock = run.catch(() => undefined);
    return run;
  }

  /** Every entry, oldest first, after checking the whole chain; JOURNAL_TAMPERED if it breaks. */
  async read(): Promise<JournalEntry[]> {
    await this.#lock;
    const out: JournalEntry[] = [];
    let prev = GENESIS;
    let n = 0;
    try {
      for await (const [key, value] of this.#store.entries('journal/')) {
        n++;
        const e = JSON.parse(new TextDecoder().decode(value)) as JournalEntry;
        if (key !== `journal/${pad(n)}` || e.seq !== n) throw tampered(`entry ${n} is missing or out of place`);
        if (e.prev !== prev) throw tampered(`entry ${n} does not follow entry ${n - 1}`);
        const { hash, ...body } = e;
        if (entryHash(body) !== hash) throw tampered(`entry ${n} does not match its hash`);
        prev = hash;
        out.push(e);
      }
    } catch (e) {
      if (e instanceof DeviceError && e.code === 'JOURNAL_TAMPERED') throw e;
      throw tampered(`entry ${n} cannot be opened`);
    }
    const head = await this.#store.getJson<{ seq: number; hash: string }>('journal-head').catch(() => {
      throw tampered('its head cannot be opened');
    });
    if ((head?.seq ?? 0) !== n || (head?.hash ?? GENESIS) !== prev)
      throw tampered(`it ends at entry ${n} but its head names entry ${head?.seq ?? 0}`);
    return out;
  }
}

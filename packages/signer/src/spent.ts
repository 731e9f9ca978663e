/**
 * The spent-reservation journal: an append-only, fsync'd file beside the node's LevelDB that
 * records every device reservation this node has used, with the digest of the package it
 * completed. It exists because a damaged LevelDB log can lose a synced record: a reservation
 * whose consumed record was lost would look fresh again and could sign a second package with
 * the same nonce. Online nonces do not need this (every new link discards fresh nonces);
 * reservations are kept across links, so their use is also written here, before the share is
 * released, and checked on every completion.
 *
 * A use on a capped reservation also records what it charged to its allowance (an asset's total,
 * a fiat cap's under `@fiat:<currency>`), so the running totals cannot fall back either: the
 * co-signer counts the larger of its stored total and the journal's sum for that allowance.
 *
 * A device's ECDSA presignatures (`q.` ids) are reservations too: their uses are written here
 * the same way (with the digest of the request that carried the device's package).
 *
 * Format: one line per use, `<ledger id> <package digest hex>[( +<allowance>:<name>=<amount>)+ ;]\n`
 * (the first version wrote at most one charge, without `+` and `;`; such lines are still read). A
 * line is read only whole, so a torn last line (a crash mid-append) cannot count part of its charges.
 * A torn last line (a crash mid-append) is ignored: nothing was released for it.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';

/** What a use charged to a capped allowance (`allowance`: the co-signer's record name for it). */
export interface SpentCharge {
  readonly allowance: string;
  readonly asset: string;
  readonly amount: bigint;
}

export interface SpentReservations {
  /** The package digest a reservation was used for, if it was. */
  get(ledgerId: string): string | undefined;
  /** Records a use durably (fsync) before the caller releases anything. */
  add(ledgerId: string, digestHex: string, charges?: readonly SpentCharge[]): Promise<void>;
  /** The sum charged to `allowance` in `asset` by every recorded use but `except`'s. */
  charged(allowance: string, asset: string, except?: string): bigint;
}

const CHARGE = '([A-Za-z0-9._/-]{1,200}):([A-Za-z0-9@][A-Za-z0-9:._-]{0,63})=(0|[1-9][0-9]{0,77})';
const LINE = new RegExp(`^([rq]\\.[A-Za-z0-9._-]+) ([0-9a-f]{64})(?:((?: \\+${CHARGE})+) ;| ${CHARGE})?$`);
const CHARGES = new RegExp(` \\+${CHARGE}`, 'g');

export class SpentJournal implements SpentReservations {
  readonly #spent = new Map<string, string>();
  /** Per ledger id, what its (first) use charged. */
  readonly #charges = new Map<string, readonly SpentCharge[]>();
  readonly #fd: number;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  static open(path: string): SpentJournal {
    const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
    const lines = text.split('\n');
    const j = new SpentJournal(openSync(path, 'a', 0o600));
    // A last line without its newline (whole or torn) is ended here, so the next use's line is a
    // line of its own rather than glued to it.
    if (text.length && !text.endsWith('\n')) {
      writeSync(j.#fd, '\n');
      fsyncSync(j.#fd);
    }
    for (const line of lines) {
      const m = LINE.exec(line);
      if (!m) continue;
      const id = m[1] as string;
      j.#spent.set(id, m[2] as string);
      if (j.#charges.has(id)) continue;
      const read = m[3] ? [...m[3].matchAll(CHARGES)].map((c) => c.slice(1, 4)) : m[7] ? [m.slice(7, 10)] : [];
      if (read.length)
        j.#charges.set(
          id,
          read.map(([allowance, asset, amount]) => ({
            allowance: allowance as string,
            asset: asset as string,
            amount: BigInt(amount as string),
          })),
        );
    }
    return j;
  }

  charged(allowance: string, asset: string, except?: string): bigint {
    let sum = 0n;
    for (const [id, list] of this.#charges)
      if (id !== except) for (const c of list) if (c.allowance === allowance && c.asset === asset) sum += c.amount;
    return sum;
  }

  get(ledgerId: string): string | undefined {
    return this.#spent.get(ledgerId);
  }

  async add(ledgerId: string, digestHex: string, charges: readonly SpentCharge[] = []): Promise<void> {
    const prior = this.#spent.get(ledgerId);
    // Written once; again only to add charges a first (torn) line did not carry.
    if (prior === digestHex && (charges.length === 0 || this.#charges.has(ledgerId))) return;
    const tail = charges.length ? `${charges.map((c) => ` +${c.allowance}:${c.asset}=${c.amount}`).join('')} ;` : '';
    writeSync(this.#fd, `${ledgerId} ${digestHex}${tail}\n`);
    fsyncSync(this.#fd);
    this.#spent.set(ledgerId, digestHex);
    if (charges.length && !this.#charges.has(ledgerId)) this.#charges.set(ledgerId, charges);
  }

  close(): void {
    closeSync(this.#fd);
  }
}

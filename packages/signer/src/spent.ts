/**
 * The spent-reservation journal: an append-only, fsync'd file beside the node's LevelDB that
 * records every device reservation this node has used, with the digest of the package it
 * completed. It exists because a damaged LevelDB log can lose a synced record: a reservation
 * whose consumed record was lost would look fresh again and could sign a second package with
 * the same nonce. Online nonces do not need this (every new link discards fresh nonces);
 * reservations are kept across links, so their use is also written here, before the share is
 * released, and checked on every completion.
 *
 * Format: one line per use, `<ledger id> <package digest hex>\n`. A torn last line (a crash
 * mid-append) is ignored: nothing was released for it.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';

export interface SpentReservations {
  /** The package digest a reservation was used for, if it was. */
  get(ledgerId: string): string | undefined;
  /** Records a use durably (fsync) before the caller releases anything. */
  add(ledgerId: string, digestHex: string): Promise<void>;
}

export class SpentJournal implements SpentReservations {
  readonly #spent = new Map<string, string>();
  readonly #fd: number;

  private constructor(fd: number, entries: Map<string, string>) {
    this.#fd = fd;
    for (const [k, v] of entries) this.#spent.set(k, v);
  }

  static open(path: string): SpentJournal {
    const entries = new Map<string, string>();
    if (existsSync(path)) {
      for (const line of readFileSync(path, 'utf8').split('\n')) {
        const m = /^(r\.[A-Za-z0-9._-]+) ([0-9a-f]{64})$/.exec(line);
        if (m) entries.set(m[1] as string, m[2] as string);
      }
    }
    return new SpentJournal(openSync(path, 'a', 0o600), entries);
  }

  get(ledgerId: string): string | undefined {
    return this.#spent.get(ledgerId);
  }

  async add(ledgerId: string, digestHex: string): Promise<void> {
    const prior = this.#spent.get(ledgerId);
    if (prior === digestHex) return;
    writeSync(this.#fd, `${ledgerId} ${digestHex}\n`);
    fsyncSync(this.#fd);
    this.#spent.set(ledgerId, digestHex);
  }

  close(): void {
    closeSync(this.#fd);
  }
}

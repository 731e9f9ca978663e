/**
 * `tessera prices sign` (src/prices.ts): operators sign a price table in turn, each adding a
 * signature to the same snapshot bytes; the signed file reads back to exactly those bytes and
 * signatures, which a co-signer's check accepts with both operators pinned; a hand-edited price
 * in the readable part is refused rather than ignored.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkPriceSnapshot } from '@tessera/core';
import { createOperator } from '../src/operators.js';
import { readSignedPrices, signPrices, writeSignedPrices } from '../src/prices.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-prices-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('tessera prices sign', () => {
  it('two operators sign one snapshot in turn; the file reads back to the signed bytes; an edited price is refused', () => {
    const alice = createOperator(join(dir, 'alice.operator.json'), 'alice');
    const bob = createOperator(join(dir, 'bob.operator.json'), 'bob');
    const table = join(dir, 'prices.json');
    writeFileSync(
      table,
      JSON.stringify({
        currency: 'USD',
        prices: { BTC: { per: '100000000', fiat: 9_700_000 }, SOL: { per: 1e9, fiat: '18000' } },
      }),
    );
    const now = Date.UTC(2026, 11, 7, 9);
    const signed = join(dir, 'usd.json');
    const first = signPrices(table, [alice.file], now);
    expect(first.signers).toEqual([alice.publicKey]);
    writeSignedPrices(signed, first.file);
    const second = signPrices(signed, [bob.file, alice.file], now + 5_000);
    expect(second.signers.sort()).toEqual([alice.publicKey, bob.publicKey].sort());
    expect(second.file.snapshot).toBe(first.file.snapshot); // the same table, taken when the first signed
    expect(second.file.takenAt).toBe('2026-12-07T09:00:00.000Z');
    writeSignedPrices(signed, second.file);
    const read = readSignedPrices(signed);
    expect(read.file.prices).toEqual({
      BTC: { per: '100000000', fiat: '9700000' },
      SOL: { per: '1000000000', fiat: '18000' },
    });
    const s = checkPriceSnapshot(read.snapshot, read.approvals, {
      operators: { keys: [alice.publicKey, bob.publicKey], approvals: 2 },
      currency: 'USD',
      now: now + 60_000,
      maxAgeMs: 86_400_000,
    });
    expect(s.prices.map((p) => p.asset)).toEqual(['BTC', 'SOL']);
    // Someone lowers the readable BTC price: the file no longer says what was signed.
    const j = JSON.parse(readFileSync(signed, 'utf8'));
    j.prices.BTC.fiat = '1';
    writeFileSync(signed, JSON.stringify(j));
    expect(() => readSignedPrices(signed)).toThrow(/readable prices differ/);
    // A table that is not one: a typed error naming it.
    writeFileSync(table, JSON.stringify({ currency: 'usd', prices: { BTC: { per: 1, fiat: 1 } } }));
    expect(() => signPrices(table, [alice.file], now)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

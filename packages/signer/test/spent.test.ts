/**
 * The spent-reservation journal: durable across reopen, a torn last line ignored, first use wins;
 * what a use charged to an allowance is summed per allowance and asset, and survives reopen.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SpentJournal } from '../src/spent.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-spent-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const d = (c: string) => c.repeat(64);

describe('SpentJournal', () => {
  it('keeps every use across reopen; a torn last line (crash mid-append) is ignored', async () => {
    const path = join(dir, 'a.journal');
    const j = SpentJournal.open(path);
    expect(j.get('r.phone-1.0123456789abcdef.aa')).toBeUndefined();
    await j.add('r.phone-1.0123456789abcdef.aa', d('1'));
    await j.add('r.phone-1.0123456789abcdef.aa', d('1')); // idempotent: written once
    await j.add('r.phone-2.0123456789abcdef.bb', d('2'));
    j.close();
    expect(readFileSync(path, 'utf8').split('\n').filter(Boolean)).toHaveLength(2);
    appendFileSync(path, 'r.phone-3.0123456789abcdef.cc 33'); // torn
    const again = SpentJournal.open(path);
    expect(again.get('r.phone-1.0123456789abcdef.aa')).toBe(d('1'));
    expect(again.get('r.phone-2.0123456789abcdef.bb')).toBe(d('2'));
    expect(again.get('r.phone-3.0123456789abcdef.cc')).toBeUndefined();
    again.close();
  });

  it("keeps a device's ECDSA presignature uses (q. ids) across reopen as well", async () => {
    const path = join(dir, 'q.journal');
    const j = SpentJournal.open(path);
    await j.add('q.70686f6e652d31.0123456789abcdef.aa', d('5'));
    j.close();
    const again = SpentJournal.open(path);
    expect(again.get('q.70686f6e652d31.0123456789abcdef.aa')).toBe(d('5'));
    again.close();
  });

  it('sums what uses charged per allowance and asset, across reopen, leaving out the use asked about', async () => {
    const path = join(dir, 'b.journal');
    const j = SpentJournal.open(path);
    const a = '70686f6e652d31/00112233445566778899aabbccddeeff';
    await j.add('r.70686f6e652d31.k.aa', d('1'), [{ allowance: a, asset: 'BTC', amount: 30_000n }]);
    await j.add('r.70686f6e652d31.k.aa', d('1'), [{ allowance: a, asset: 'BTC', amount: 30_000n }]); // again: once
    await j.add('r.70686f6e652d31.k.bb', d('2'), [{ allowance: a, asset: 'BTC', amount: 12_345n }]);
    await j.add('r.70686f6e652d31.k.cc', d('3'), [{ allowance: 'other/ff', asset: 'BTC', amount: 7n }]);
    await j.add('r.70686f6e652d31.k.dd', d('4')); // an uncapped use
    expect(j.charged(a, 'BTC')).toBe(42_345n);
    expect(j.charged(a, 'BTC', 'r.70686f6e652d31.k.bb')).toBe(30_000n);
    expect(j.charged(a, 'SOL')).toBe(0n);
    j.close();
    appendFileSync(path, `r.70686f6e652d31.k.ee ${d('5')} ${a}:BTC=99`); // whole, its newline not written: it counts
    const again = SpentJournal.open(path);
    expect(again.charged(a, 'BTC')).toBe(42_345n + 99n);
    expect(again.charged('other/ff', 'BTC')).toBe(7n);
    expect(again.get('r.70686f6e652d31.k.dd')).toBe(d('4'));
    again.close();
    // A line cut inside the charge is refused whole (nothing released for it).
    appendFileSync(path, `\nr.70686f6e652d31.k.ff ${d('6')} ${a}:BTC=`);
    const third = SpentJournal.open(path);
    expect(third.get('r.70686f6e652d31.k.ff')).toBeUndefined();
    expect(third.charged(a, 'BTC')).toBe(42_345n + 99n);
    // A use whose line was cut after its digest: used, charged nothing; the redelivery adds the charge.
    appendFileSync(path, `\nr.70686f6e652d31.k.gg ${d('7')}\n`);
    const fourth = SpentJournal.open(path);
    third.close();
    expect(fourth.get('r.70686f6e652d31.k.gg')).toBe(d('7'));
    await fourth.add('r.70686f6e652d31.k.gg', d('7'), [{ allowance: a, asset: 'BTC', amount: 1n }]);
    fourth.close();
    const fifth = SpentJournal.open(path);
    expect(fifth.charged(a, 'BTC')).toBe(42_345n + 99n + 1n);
    fifth.close();
  });

  it('keeps every charge of a use (an asset and a fiat cap) and reads a line only whole', async () => {
    const path = join(dir, 'c.journal');
    const j = SpentJournal.open(path);
    const a = '70686f6e652d31/00112233445566778899aabbccddeeff';
    await j.add('r.70686f6e652d31.k.aa', d('1'), [
      { allowance: a, asset: 'BTC', amount: 30_000n },
      { allowance: a, asset: '@fiat:USD', amount: 2_571n },
    ]);
    expect(j.charged(a, 'BTC')).toBe(30_000n);
    expect(j.charged(a, '@fiat:USD')).toBe(2_571n);
    j.close();
    expect(readFileSync(path, 'utf8')).toBe(`r.70686f6e652d31.k.aa ${d('1')} +${a}:BTC=30000 +${a}:@fiat:USD=2571 ;\n`);
    // Cut after the first charge, inside the second, or before the closing mark: none of it counts.
    for (const cut of [` +${a}:BTC=500`, ` +${a}:BTC=500 +${a}:@fiat:USD=4`, ` +${a}:BTC=500 +${a}:@fiat:USD=40`]) {
      writeFileSync(
        path,
        `r.70686f6e652d31.k.aa ${d('1')} +${a}:BTC=30000 +${a}:@fiat:USD=2571 ;\nr.70686f6e652d31.k.bb ${d('2')}${cut}`,
      );
      const again = SpentJournal.open(path);
      expect(again.get('r.70686f6e652d31.k.bb')).toBeUndefined();
      expect(again.charged(a, 'BTC')).toBe(30_000n);
      expect(again.charged(a, '@fiat:USD')).toBe(2_571n);
      again.close();
    }
    // Whole (its newline not written): both count.
    writeFileSync(path, `r.70686f6e652d31.k.bb ${d('2')} +${a}:BTC=500 +${a}:@fiat:USD=40 ;`);
    const whole = SpentJournal.open(path);
    expect(whole.charged(a, 'BTC')).toBe(500n);
    expect(whole.charged(a, '@fiat:USD')).toBe(40n);
    whole.close();
    // Cut at every byte of a line, then the next use appended: the cut line counts nothing (or,
    // cut right after its digest, is used with no charge), and the next use reads whole; the
    // whole line without its newline counts, and so does the next.
    const line = `r.70686f6e652d31.k.cc ${d('3')} +${a}:BTC=700 +${a}:@fiat:USD=68 ;`;
    for (let cut = 1; cut <= line.length; cut++) {
      writeFileSync(path, `${line.slice(0, cut)}`);
      const torn = SpentJournal.open(path);
      await torn.add('r.70686f6e652d31.k.dd', d('4'), [{ allowance: a, asset: 'BTC', amount: 9n }]);
      torn.close();
      const next = SpentJournal.open(path);
      const whole = cut === line.length;
      expect(next.get('r.70686f6e652d31.k.dd')).toBe(d('4'));
      expect(next.charged(a, 'BTC')).toBe(whole ? 709n : 9n);
      expect(next.charged(a, '@fiat:USD')).toBe(whole ? 68n : 0n);
      if (whole) expect(next.get('r.70686f6e652d31.k.cc')).toBe(d('3'));
      next.close();
    }
  });
});

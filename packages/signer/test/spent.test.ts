/** The spent-reservation journal: durable across reopen, a torn last line ignored, first use wins. */
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  DeviceError,
  backupFromText,
  backupToText,
  combineBackup,
  backupPasswordWeakness,
  decryptBackup,
  encryptBackup,
  splitBackup,
  type BackupOptions,
} from '../src/backup.js';
import { Device } from '../src/device.js';

// Format tests use tiny KDF parameters and short passwords; the password floor has its own tests.
const fast = { cost: 'test', allowWeakPassword: true } as const;
const kdfs = ['scrypt', 'argon2id'] as const;

/** Resolves to the DeviceError `p` rejects with; fails the test if `p` fulfils or throws anything else. */
async function deviceError(p: Promise<unknown>): Promise<DeviceError> {
  const e = await p.then(
    (v) => {
      throw new Error(`expected a DeviceError, got a value (${String(v)})`);
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(DeviceError);
  return e as DeviceError;
}

async function code(p: Promise<unknown>): Promise<string> {
  return (await deviceError(p)).code;
}

/** All k-element subsets of [0, n). */
function subsets(n: number, k: number): number[][] {
  if (k === 0) return [[]];
  if (n < k) return [];
  return [...subsets(n - 1, k - 1).map((s) => [...s, n - 1]), ...subsets(n - 1, k)];
}

describe('encryptBackup / decryptBackup', () => {
  for (const kdf of kdfs) {
    it(`round-trips random secrets and passwords (${kdf})`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ maxLength: 300 }),
          fc.string({ minLength: 1, maxLength: 40 }),
          async (secret, password) => {
            const blob = await encryptBackup(secret, password, { kdf, cost: 'test', allowWeakPassword: true });
            expect(blob.length).toBe(58 + secret.length + 16);
            expect(await decryptBackup(blob, password)).toEqual(secret);
          },
        ),
        { numRuns: 8 },
      );
    });
  }

  it('round-trips with the default (interactive scrypt: OWASP N = 2^17, r = 8, p = 1) parameters, recorded in the header', async () => {
    const secret = new TextEncoder().encode('device state v1');
    const blob = await encryptBackup(secret, 'correct horse battery staple');
    expect(new TextDecoder().decode(blob.subarray(0, 4))).toBe('TSB1');
    expect([blob[4], blob[5]]).toEqual([1, 1]); // version 1, scrypt
    const view = new DataView(blob.buffer, blob.byteOffset);
    expect([view.getUint32(6), view.getUint32(10), view.getUint32(14)]).toEqual([2 ** 17, 8, 1]);
    expect(await decryptBackup(blob, 'correct horse battery staple')).toEqual(secret);
  });

  it('uses a fresh salt and nonce every time', async () => {
    const secret = new Uint8Array([1, 2, 3]);
    const a = await encryptBackup(secret, 'pw', fast);
    const b = await encryptBackup(secret, 'pw', fast);
    expect(a.subarray(18, 58)).not.toEqual(b.subarray(18, 58));
  });

  it('normalizes the password (NFKC), so composed and decomposed forms agree', async () => {
    const blob = await encryptBackup(new Uint8Array([9]), 'caf\u00e9', fast);
    expect(await decryptBackup(blob, 'cafe\u0301')).toEqual(new Uint8Array([9]));
  });

  it('rejects a wrong password with BACKUP_PASSWORD, without echoing the password', async () => {
    for (const kdf of kdfs) {
      const blob = await encryptBackup(new Uint8Array([1, 2, 3]), 'right-password', { kdf, cost: 'test' });
      const password = 'hunter2-Very-Distinctive-Guess';
      const e = await deviceError(decryptBackup(blob, password));
      expect(e.code).toBe('BACKUP_PASSWORD');
      expect(e.message).toBe('wrong password or damaged backup');
      for (const s of [e.message, String(e), e.stack ?? '']) {
        expect(s).not.toContain(password);
        expect(s).not.toContain('right-password');
      }
    }
  });

  it('rejects every single-byte change of a scrypt blob', async () => {
    const secret = new Uint8Array(24).fill(0xab);
    const blob = await encryptBackup(secret, 'pw', fast);
    for (let i = 0; i < blob.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const bad = blob.slice();
        bad[i]! ^= mask;
        const e = await deviceError(decryptBackup(bad, 'pw'));
        expect(['BACKUP_PASSWORD', 'BACKUP_CORRUPT', 'UNSUPPORTED_VERSION']).toContain(e.code);
        if (i >= 6) expect(e.code).not.toBe('UNSUPPORTED_VERSION');
      }
    }
  });

  it('rejects every single-byte change of an argon2id blob', async () => {
    const blob = await encryptBackup(new Uint8Array(8).fill(7), 'pw', {
      kdf: 'argon2id',
      cost: 'test',
      allowWeakPassword: true,
    });
    for (let i = 0; i < blob.length; i++) {
      const bad = blob.slice();
      bad[i]! ^= 0x01;
      await deviceError(decryptBackup(bad, 'pw'));
    }
  });

  it('rejects every truncation and an appended byte', async () => {
    const blob = await encryptBackup(new Uint8Array(20).fill(1), 'pw', fast);
    for (let n = 0; n < blob.length; n++) {
      const c = await code(decryptBackup(blob.subarray(0, n), 'pw'));
      expect(c).toBe(n < 58 + 16 ? 'BACKUP_CORRUPT' : 'BACKUP_PASSWORD');
    }
    const longer = new Uint8Array(blob.length + 1);
    longer.set(blob);
    expect(await code(decryptBackup(longer, 'pw'))).toBe('BACKUP_PASSWORD');
  });

  it('reports bad magic, unknown versions and KDFs, and out-of-budget KDF parameters', async () => {
    const blob = await encryptBackup(new Uint8Array([5]), 'pw', fast);
    const edit = (i: number, v: number) => {
      const b = blob.slice();
      b[i] = v;
      return b;
    };
    expect(await code(decryptBackup(edit(0, 0x58), 'pw'))).toBe('BACKUP_CORRUPT');
    expect(await code(decryptBackup(edit(4, 2), 'pw'))).toBe('UNSUPPORTED_VERSION');
    expect(await code(decryptBackup(edit(5, 3), 'pw'))).toBe('UNSUPPORTED_VERSION');
    // scrypt N = 2^30: refused before any work (it would need 128 GiB).
    const huge = blob.slice();
    new DataView(huge.buffer).setUint32(6, 2 ** 30);
    expect(await code(decryptBackup(huge, 'pw'))).toBe('BACKUP_CORRUPT');
  });

  it('rejects invalid arguments', async () => {
    expect(await code(encryptBackup(new Uint8Array([1]), '', fast))).toBe('INVALID_ARGUMENT');
    expect(await code(encryptBackup('secret' as unknown as Uint8Array, 'pw', fast))).toBe('INVALID_ARGUMENT');
    expect(await code(encryptBackup(new Uint8Array([1]), 'pw', { cost: 'extreme' } as unknown as BackupOptions))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(await code(encryptBackup(new Uint8Array([1]), 'pw', { kdf: 'md5' } as unknown as BackupOptions))).toBe(
      'INVALID_ARGUMENT',
    );
    const blob = await encryptBackup(new Uint8Array([1]), 'pw', fast);
    expect(await code(decryptBackup(blob, ''))).toBe('INVALID_ARGUMENT');
  });
});

describe('KDF strength and the password floor', () => {
  /** A backup made by the previous release (default scrypt N = 2^15, r = 8, p = 1; no password floor), password "pw". */
  const OLD_DEFAULT_BLOB =
    '545342310101000080000000000800000001f38083edc6109a1fc3ac475f4fc092fb5296fc15b548a22fdc326a84ce8d6deef51db28a6096dd0bea39c0c0d053e67cf8c775f4d9a74f6d423d46d77a4d0f3adea004c921c9b2718b80420adffb05acb0e59698a88e';
  const fromHex = (h: string) => Uint8Array.from(h.match(/../g)!.map((b) => parseInt(b, 16)));

  it('decrypts a backup made under the old default (scrypt N = 2^15) with its own header parameters', async () => {
    const blob = fromHex(OLD_DEFAULT_BLOB);
    const view = new DataView(blob.buffer, blob.byteOffset);
    expect([blob[5], view.getUint32(6), view.getUint32(10), view.getUint32(14)]).toEqual([1, 2 ** 15, 8, 1]);
    expect(new TextDecoder().decode(await decryptBackup(blob, 'pw'))).toBe('{"v":1,"made":"before N=2^17"}');
    expect(await code(decryptBackup(blob, 'pW'))).toBe('BACKUP_PASSWORD');
  });

  it('refuses weak passwords with WEAK_PASSWORD before any KDF work, without echoing them; allowWeakPassword: true accepts them', async () => {
    const weak: [string, string][] = [
      ['Zx9!Zx9!Zx9', 'shorter than 12'],
      ['qqqqqqqqqqqqqqqqqqqqqqqq', 'distinct'],
      ['ZxZxZxZxZxZxZxZx', 'distinct'],
      ['271828182845904', 'predictable'], // 15 digits: 49.8 bits
      ['\u00bd\u00bd\u00bd', 'shorter than 12'], // NFKC turns each into 3 code points: 9 in all
    ];
    const t0 = Date.now();
    for (const kdf of kdfs) {
      for (const [pw, why] of weak) {
        expect(backupPasswordWeakness(pw), pw).toContain(why);
        const e = await deviceError(encryptBackup(new Uint8Array([1]), pw, { kdf })); // default (expensive) cost
        expect(e.code, pw).toBe('WEAK_PASSWORD');
        expect(e.message).toContain(why);
        for (const s of [e.message, String(e), e.stack ?? '']) expect(s).not.toContain(pw);
      }
    }
    // Ten refusals at the default cost took less than one 2^17 scrypt would: refused before the KDF ran.
    expect(Date.now() - t0).toBeLessThan(1000);
    for (const [pw] of weak) {
      const blob = await encryptBackup(new Uint8Array([7, 7]), pw, { cost: 'test', allowWeakPassword: true });
      expect(await decryptBackup(blob, pw)).toEqual(new Uint8Array([7, 7]));
    }
  });

  it('accepts passwords that meet the rule: passphrases, 16 digits, mixed classes', async () => {
    for (const pw of ['correct horse battery staple', '2718281828459045', 'Tr0ub4dor&3-x', 'один два три четыре']) {
      expect(backupPasswordWeakness(pw), pw).toBeUndefined();
      const blob = await encryptBackup(new Uint8Array([3]), pw, { cost: 'test' });
      expect(await decryptBackup(blob, pw)).toEqual(new Uint8Array([3]));
    }
  });

  it('property: every password under 12 characters is refused; every passphrase of 4+ common words is accepted', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 11 }), async (pw) => {
        expect(await code(encryptBackup(new Uint8Array([1]), pw))).toBe('WEAK_PASSWORD');
      }),
      { numRuns: 50 },
    );
    const words = ['planet', 'basket', 'window', 'orange', 'muscle', 'friday', 'jungle', 'copper'];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...words), { minLength: 4, maxLength: 8 }), (ws) => {
        expect(backupPasswordWeakness(ws.join(' '))).toBeUndefined();
      }),
      { numRuns: 100 },
    );
  });

  it('Device.exportBackup applies the floor too, and passes allowWeakPassword through', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-backup-'));
    const device = await Device.open({ location: dir, storageKey: new Uint8Array(32).fill(5) });
    try {
      await device.init('phone-floor');
      expect(await code(device.exportBackup('short-pw', { cost: 'test' }))).toBe('WEAK_PASSWORD');
      const blob = await device.exportBackup('short-pw', { cost: 'test', allowWeakPassword: true });
      const plain = JSON.parse(new TextDecoder().decode(await decryptBackup(blob, 'short-pw'))) as { v: number };
      expect(plain.v).toBe(1);
    } finally {
      await device.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('backupToText / backupFromText', () => {
  it('round-trips through text', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 64 }), async (secret) => {
        const blob = await encryptBackup(secret, 'pw', fast);
        const text = backupToText(blob);
        expect(text).toMatch(/^tessera-backup:[A-Za-z0-9_-]+$/);
        expect(backupFromText(text)).toEqual(blob);
        // Line breaks and surrounding spaces from copy-and-paste are ignored.
        const wrapped = `  ${text.replace(/(.{20})/g, '$1\n')}\n`;
        expect(await decryptBackup(backupFromText(wrapped), 'pw')).toEqual(secret);
      }),
      { numRuns: 5 },
    );
  });

  it('rejects garbage text with BACKUP_CORRUPT', async () => {
    const text = backupToText(await encryptBackup(new Uint8Array([1, 2]), 'pw', fast));
    const garbage = [
      '',
      'hello',
      'tessera-backup:',
      'tessera-backup:AAAA',
      'tessera-backup:!!!!',
      'tessera-backup:QUJD=',
      `tessera-piece:${text.slice('tessera-backup:'.length)}`,
      text.slice(0, -1), // length ≡ 1 (mod 4) or non-canonical tail
      `${text.slice(0, 30)}+${text.slice(31)}`, // standard-base64 character
      text.slice(0, 60), // truncated header
    ];
    for (const g of garbage) {
      const e = await deviceError(Promise.resolve().then(() => backupFromText(g)));
      expect(e.code, g).toBe('BACKUP_CORRUPT');
    }
  });
});

describe('splitBackup / combineBackup', () => {
  it('restores the blob from any k of m pieces, and not from k - 1', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 5 }).chain((m) => fc.tuple(fc.integer({ min: 2, max: m }), fc.constant(m))),
        fc.uint8Array({ maxLength: 40 }),
        async ([k, m], secret) => {
          const blob = await encryptBackup(secret, 'pw', fast);
          const pieces = await splitBackup(blob, k, m);
          expect(pieces).toHaveLength(m);
          for (const p of pieces) expect(p).toMatch(/^tessera-piece:[A-Za-z0-9_-]+$/);
          for (const s of subsets(m, k)) {
            const chosen = s.map((i) => pieces[i]!);
            expect(await combineBackup(chosen)).toEqual(blob);
            expect(await combineBackup([...chosen].reverse())).toEqual(blob);
          }
          expect(await combineBackup(pieces)).toEqual(blob); // more than k is fine too
          for (const s of subsets(m, k - 1)) {
            const restored = await combineBackup(s.map((i) => pieces[i]!)).catch((e: unknown) => e);
            if (restored instanceof Uint8Array) expect(restored).not.toEqual(blob);
            else expect((restored as DeviceError).code).toBe('RECOVERY_PIECES');
          }
        },
      ),
      { numRuns: 12 },
    );
  });

  it('end to end: split, recover from pieces, decrypt', async () => {
    const secret = new TextEncoder().encode('share + nonce ledger');
    const pieces = await splitBackup(await encryptBackup(secret, 'pw', fast), 3, 5);
    const blob = await combineBackup([pieces[4]!, pieces[0]!, pieces[2]!]);
    expect(await decryptBackup(blob, 'pw')).toEqual(secret);
  });

  it('rejects duplicate pieces, naming them', async () => {
    const pieces = await splitBackup(await encryptBackup(new Uint8Array([1]), 'pw', fast), 2, 3);
    const e = await deviceError(combineBackup([pieces[0]!, pieces[0]!]));
    expect(e.code).toBe('RECOVERY_PIECES');
    expect(e.culprits).toEqual(['2']);
    // Even with enough distinct pieces alongside.
    expect(await code(combineBackup([pieces[0]!, pieces[1]!, pieces[1]!]))).toBe('RECOVERY_PIECES');
  });

  it('rejects pieces of two different splits, even of the same blob', async () => {
    const blob = await encryptBackup(new Uint8Array([1, 2, 3]), 'pw', fast);
    const a = await splitBackup(blob, 2, 3);
    const b = await splitBackup(blob, 2, 3);
    const e = await deviceError(combineBackup([a[0]!, a[1]!, b[2]!]));
    expect(e.code).toBe('RECOVERY_PIECES');
    expect(e.culprits).toEqual(['3']);
    expect(await code(combineBackup([a[0]!, b[1]!]))).toBe('RECOVERY_PIECES');
    const other = await splitBackup(await encryptBackup(new Uint8Array([1, 2, 3]), 'pw', fast), 2, 3);
    expect(await code(combineBackup([a[0]!, other[1]!]))).toBe('RECOVERY_PIECES');
  });

  it('rejects too few pieces', async () => {
    const pieces = await splitBackup(await encryptBackup(new Uint8Array([1]), 'pw', fast), 3, 4);
    expect(await code(combineBackup([]))).toBe('RECOVERY_PIECES');
    expect(await code(combineBackup([pieces[0]!]))).toBe('RECOVERY_PIECES');
    expect(await code(combineBackup([pieces[0]!, pieces[3]!]))).toBe('RECOVERY_PIECES');
  });

  it('rejects malformed and damaged pieces, naming them', async () => {
    const pieces = await splitBackup(await encryptBackup(new Uint8Array(10), 'pw', fast), 2, 2);
    const p = pieces[1]!;
    const at = 30;
    const typo = `${p.slice(0, at)}${p[at] === 'A' ? 'B' : 'A'}${p.slice(at + 1)}`;
    for (const bad of [
      '',
      'nonsense',
      'tessera-piece:',
      'tessera-piece:AAAA',
      'tessera-piece:@@@@',
      p.slice(0, -6),
      typo,
    ]) {
      const e = await deviceError(combineBackup([pieces[0]!, bad]));
      expect(e.code, bad).toBe('RECOVERY_PIECES');
      expect(e.culprits).toEqual(['2']);
    }
    expect(await code(combineBackup([pieces[0]!, 42 as unknown as string]))).toBe('RECOVERY_PIECES');
    expect(await code(combineBackup('tessera-piece:AAAA' as unknown as string[]))).toBe('INVALID_ARGUMENT');
  });

  it('rejects an intact piece of a newer format with UNSUPPORTED_VERSION', async () => {
    const pieces = await splitBackup(await encryptBackup(new Uint8Array([1]), 'pw', fast), 2, 2);
    const bytes = Buffer.from(pieces[1]!.slice('tessera-piece:'.length), 'base64url');
    bytes[0] = 2; // version 2, with a valid checksum
    bytes.set(sha256(bytes.subarray(0, -4)).subarray(0, 4), bytes.length - 4);
    const e = await deviceError(combineBackup([pieces[0]!, `tessera-piece:${bytes.toString('base64url')}`]));
    expect(e.code).toBe('UNSUPPORTED_VERSION');
    expect(e.culprits).toEqual(['2']);
  });

  it('rejects k > m, k < 2, m > 255, non-integers and non-backups', async () => {
    const blob = await encryptBackup(new Uint8Array([1]), 'pw', fast);
    for (const [k, m] of [
      [3, 2],
      [1, 3],
      [0, 2],
      [2, 256],
      [256, 256],
      [2.5, 3],
      [2, Number.NaN],
    ] as const) {
      expect(await code(splitBackup(blob, k, m)), `${k}-of-${m}`).toBe('INVALID_ARGUMENT');
    }
    expect(await code(splitBackup(new Uint8Array(100), 2, 3))).toBe('BACKUP_CORRUPT');
    expect((await splitBackup(blob, 255, 255)).length).toBe(255);
  });
});

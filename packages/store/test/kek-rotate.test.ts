/**
 * KEK rotation and KEK naming with local KEKs on real LevelDB (the HSM side runs against SoftHSM2
 * in test/hsm.test.ts): values survive a rotation unchanged, the old KEK stops opening the store,
 * a re-run is a no-op, a wrong old KEK or an open store is refused and changes nothing.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { utf8ToBytes } from '@tessera/core';
import { SealedStore, type StoreError, kekFromConfig, openKek, parsePkcs11Uri, rotateKek } from '../src/index.js';
import { cleanupDirs, randomKek, tempDir } from './helpers.js';

afterAll(cleanupDirs);

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return (e as StoreError).code;
  }
  return undefined;
}

describe('rotateKek', () => {
  it('re-wraps the data key: values read back unchanged under the new KEK, the old one no longer opens', async () => {
    const dir = tempDir('rotate');
    const [a, b] = [randomKek(), randomKek()];
    const s = await SealedStore.open(dir, a);
    for (let i = 0; i < 50; i++) await s.put(`v/${i}`, utf8ToBytes(`value ${i}`));
    await s.close();
    expect(await rotateKek(dir, a, b)).toEqual({ from: a.id, to: b.id, already: false });
    expect(await codeOf(SealedStore.open(dir, a))).toBe('KEK_MISMATCH');
    const t = await SealedStore.open(dir, b);
    expect(t.kekId).toBe(b.id);
    for (let i = 0; i < 50; i++) expect(new TextDecoder().decode(await t.get(`v/${i}`))).toBe(`value ${i}`);
    await t.close();
    // A second run (after a crash right after the write, say) finds it done.
    expect(await rotateKek(dir, a, b)).toEqual({ from: a.id, to: b.id, already: true });
  });

  it('a wrong old KEK is refused naming both ids, and the store stays as it was', async () => {
    const dir = tempDir('rotate');
    const [a, b, c] = [randomKek(), randomKek(), randomKek()];
    await (await SealedStore.open(dir, a)).close();
    let error: StoreError | undefined;
    try {
      await rotateKek(dir, b, c);
    } catch (e) {
      error = e as StoreError;
    }
    expect(error?.code).toBe('KEK_MISMATCH');
    expect(error?.message).toContain(b.id);
    expect(error?.message).toContain(a.id);
    await (await SealedStore.open(dir, a)).close();
  });

  it('refuses a store that is open elsewhere (STORE_UNAVAILABLE) and a directory with no store', async () => {
    const dir = tempDir('rotate');
    const a = randomKek();
    const s = await SealedStore.open(dir, a);
    expect(await codeOf(rotateKek(dir, a, randomKek()))).toBe('STORE_UNAVAILABLE');
    await s.close();
    expect(await codeOf(rotateKek(`${dir}-missing`, a, randomKek()))).toBe('STORE_UNAVAILABLE');
  });
});

describe('naming a KEK', () => {
  it('parses RFC 7512 URIs with percent-encoding, and refuses what is missing with one line', () => {
    expect(
      parsePkcs11Uri('pkcs11:token=My%20HSM;object=kek-1?module-path=/usr/lib/p11.so&pin-source=file:/run/pin'),
    ).toEqual({ module: '/usr/lib/p11.so', token: 'My HSM', object: 'kek-1', pin: { file: '/run/pin' } });
    expect(parsePkcs11Uri('pkcs11:token=t;object=o?module-path=/m.so&pin-source=env:HSM_PIN').pin).toEqual({
      env: 'HSM_PIN',
    });
    const bad: [string, RegExp][] = [
      ['pkcs11:object=o?module-path=/m.so&pin-source=env:P', /token=<label> is required/],
      ['pkcs11:token=t?module-path=/m.so&pin-source=env:P', /object=<key label> is required/],
      ['pkcs11:token=t;object=o?pin-source=env:P', /module-path/],
      ['pkcs11:token=t;object=o?module-path=/m.so', /pin-source/],
      ['pkcs11:token=t;object=o?module-path=/m.so&pin-source=http://x', /file:<path> or env:<NAME>/],
      ['pkcs11:token=%E0%A4%A;object=o', /percent-encoded/],
    ];
    for (const [uri, why] of bad) expect(() => parsePkcs11Uri(uri)).toThrow(why);
  });

  it('openKek and kekFromConfig take file:, env: and pkcs11: and refuse two sources at once', () => {
    const hex = 'ab'.repeat(32);
    expect(openKek('env:K', { K: hex }).id).toBe(kekFromConfig({ kekEnv: 'K' }, { K: hex }).id);
    expect(() => openKek('nope')).toThrow(/file:<path>, env:<NAME> or pkcs11:<URI>/);
    expect(() => kekFromConfig({ kekFile: '/x', kekEnv: 'K' })).toThrow(/give one of kekFile, kekEnv, kekPkcs11/);
    expect(kekFromConfig({}, { TESSERA_KEK: hex }).id).toMatch(/^local:/);
  });
});

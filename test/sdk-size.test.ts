/**
 * The device SDK's browser size (issue 21: at most 80 KB gzip): `export * from '@tessera/device'`
 * built as pages ship it (esbuild, minified, code splitting, scripts/build-apps.mjs's settings).
 * What a page downloads to open a wallet, pay offline and sync — the entry and the chunks it
 * imports statically — is at most 80 KB gzip; the rest is three chunks imported on first use
 * (backup KDFs and Shamir pieces, the DKG and refresh/reshare participants, the merchant's check),
 * and none of their code is in the first download. The split build itself runs: its entry,
 * imported from the chunk files in this process, makes and opens a backup, splits and combines it
 * into pieces, and checks a genuine and a tampered offline package (each through a chunk it
 * imports then). The chunks' loading in chromium is the story's (story.browser.test: the wallet
 * page makes a key, importing the participants chunk).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ParticipantIdentity,
  RESERVATION_NONCE_ID_BYTES,
  commit,
  createOfflinePackage,
  encodeKeyRecord,
  encodeOfflinePackage,
  getSuite,
  openReservation,
  runLocalDkg,
  signReservation,
  utf8ToBytes,
  type GroupKey,
  type KeyShare,
} from '@tessera/core';
// @ts-expect-error: a build script (JavaScript, no types)
import { browserChunks, staticClosure } from '../scripts/build-apps.mjs';

interface Chunk {
  path: string;
  js: Uint8Array;
  gzip: number;
  inputs: string[];
  staticImports: string[];
  entryPoint: string | null;
}

const LIMIT_GZIP = 80 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'tessera-sdk-split-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let built: Promise<{ chunks: Chunk[]; initial: Chunk[] }> | undefined;
function build() {
  built ??= (async () => {
    const chunks = (await browserChunks("export * from '@tessera/device';")) as Chunk[];
    const entry = chunks.find((c) => c.entryPoint === '<stdin>') as Chunk;
    return { chunks, initial: staticClosure(chunks, [entry.path]) as Chunk[] };
  })();
  return built;
}

describe('the device SDK in a browser build', () => {
  it('what a page downloads first is at most 80 KB gzip; backup KDFs, key-making and the merchant check come on first use', async () => {
    const { chunks, initial } = await build();
    const gzip = initial.reduce((a, c) => a + c.gzip, 0);
    expect(gzip, `first download ${(gzip / 1024).toFixed(1)} KB gzip`).toBeLessThanOrEqual(LIMIT_GZIP);
    const lazy = chunks.filter((c) => !initial.includes(c));
    expect(lazy.map((c) => c.entryPoint?.split('/').pop()).sort()).toEqual([
      'backup-kdf.js',
      'merchant-check.js',
      'participants.js',
    ]);
    const first = initial.flatMap((c) => c.inputs);
    for (const heavy of [
      /@noble\/hashes\/argon2/,
      /@noble\/hashes\/scrypt/,
      /shamir-secret-sharing/,
      /core\/dist\/dkg\.js/,
      /core\/dist\/lifecycle-participant\.js/,
      /core\/dist\/package-check\.js/,
    ])
      expect(
        first.filter((f) => heavy.test(f)),
        String(heavy),
      ).toEqual([]);
  });

  it('the split build runs: backups, recovery pieces and the merchant check import their chunks and work', async () => {
    const { chunks, initial } = await build();
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    for (const c of chunks) {
      const file = join(dir, c.path.replace(/^\.chunks\//, ''));
      writeFileSync(file, c.js);
    }
    const entry = initial.find((c) => c.entryPoint === '<stdin>') as Chunk;
    const sdk = (await import(pathToFileURL(join(dir, entry.path.replace(/^\.chunks\//, ''))).href)) as {
      encryptBackup(s: Uint8Array, pw: string, o: object): Promise<Uint8Array>;
      decryptBackup(b: Uint8Array, pw: string): Promise<Uint8Array>;
      splitBackup(b: Uint8Array, k: number, m: number): Promise<string[]>;
      combineBackup(p: string[]): Promise<Uint8Array>;
      checkPackage(r: Uint8Array, p: Uint8Array, now: number): Promise<{ packageId: string; device: string }>;
    };
    const secret = utf8ToBytes('a device state');
    const blob = await sdk.encryptBackup(secret, 'correct horse battery staple', { cost: 'test' });
    expect(await sdk.decryptBackup(blob, 'correct horse battery staple')).toEqual(secret);
    const pieces = await sdk.splitBackup(blob, 2, 3);
    expect(await sdk.combineBackup([pieces[2] as string, pieces[0] as string])).toEqual(blob);
    await expect(sdk.decryptBackup(blob, 'wrong horse battery staple')).rejects.toMatchObject({
      code: 'BACKUP_PASSWORD',
    });

    const now = Date.now();
    const { record, pkg } = keyAndPackage(now);
    expect(await sdk.checkPackage(record, pkg.bytes, now)).toMatchObject({ packageId: pkg.packageId, device: 'phone' });
    const otherMessage = encodeOfflinePackage({ ...pkg, message: utf8ToBytes('pay 420.00 to terminal-9') });
    await expect(sdk.checkPackage(record, otherMessage, now)).rejects.toMatchObject({ code: 'BAD_SIGNATURE_SHARE' });
  });
});

/** A 2-of-3 Ed25519 key (phone + two signers) and one genuine offline package from the phone. */
function keyAndPackage(now: number) {
  const suite = getSuite('ed25519');
  const ids = ['phone', 'signer-1', 'signer-2'].map((id) => ParticipantIdentity.generate(id));
  const out = runLocalDkg(suite, 2, ids, undefined, ['phone']);
  const key = (out.get('phone') as { key: GroupKey }).key;
  const share = (id: string) => (out.get(id) as { share: KeyShare }).share;
  const keyId = 'c0ffee00c0ffee00';
  const { commitment } = commit(share('signer-1'));
  const reservation = openReservation(
    key,
    signReservation(ids[1] as ParticipantIdentity, {
      suite,
      keyId,
      epoch: 0,
      device: 'phone',
      signer: 'signer-1',
      nonceId: new Uint8Array(RESERVATION_NONCE_ID_BYTES).fill(7),
      hiding: commitment.hiding,
      binding: commitment.binding,
      expiresAt: now + 3600_000,
    }),
  );
  const pkg = createOfflinePackage({
    key,
    share: share('phone'),
    keyId,
    epoch: 0,
    device: 'phone',
    message: utf8ToBytes('pay 4.20 to terminal-9'),
    reservations: [reservation],
    createdAt: now,
  });
  return { record: encodeKeyRecord({ keyId, epoch: 0, key, createdAt: now }), pkg };
}

/**
 * The device SDK's browser size (issue 21: at most 80 KB gzip): `export * from '@tessera/device'`
 * built as pages ship it (esbuild, minified, code splitting, scripts/build-apps.mjs's settings).
 * What a page downloads to open a wallet, pay offline and sync — the entry and the chunks it
 * imports statically — is at most 80 KB gzip; the rest is five chunks imported on first use
 * (backups with their KDFs, Shamir pieces and the state's export, the DKG and refresh/reshare
 * participants, the ECDSA link tasks and offline signing with `@tessera/ecdsa`, the payment
 * rules with the chains' readers), and none of their code is in the first download. The
 * split build itself runs: its entry, imported from the chunk files in this process, makes and
 * opens a backup and splits and combines it into pieces (through the chunk it imports then). The
 * chunks' loading in chromium is the story's (story.browser.test: the wallet page makes a key,
 * importing the participants chunk).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { utf8ToBytes } from '@tessera/core';
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
  it('what a page downloads first is at most 80 KB gzip; backups, key-making, ECDSA tasks and payment rules come on first use', async () => {
    const { chunks, initial } = await build();
    const gzip = initial.reduce((a, c) => a + c.gzip, 0);
    expect(gzip, `first download ${(gzip / 1024).toFixed(1)} KB gzip`).toBeLessThanOrEqual(LIMIT_GZIP);
    const lazy = chunks.filter((c) => !initial.includes(c));
    // Each imported on first use (with the chunks only they share, such as @tessera/ecdsa's).
    expect(
      lazy
        .filter((c) => c.entryPoint)
        .map((c) => c.entryPoint?.split('/').pop())
        .sort(),
    ).toEqual(['backup.js', 'ecdsa-offline.js', 'ecdsa-tasks.js', 'participants.js', 'payment-plan.js']);
    const first = initial.flatMap((c) => c.inputs);
    for (const heavy of [
      /@noble\/hashes\/argon2/,
      /@noble\/hashes\/scrypt/,
      /shamir-secret-sharing/,
      /core\/dist\/dkg\.js/,
      /core\/dist\/lifecycle-participant\.js/,
      /device\/dist\/backup\.js/,
      /device\/dist\/backup-state\.js/,
      /ecdsa\/dist\//,
      /@scure\/btc-signer/,
      /core\/dist\/package-payment\.js/,
    ])
      expect(
        first.filter((f) => heavy.test(f)),
        String(heavy),
      ).toEqual([]);
  });

  it('the split build runs: backups and recovery pieces import their chunk and work', async () => {
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
    };
    const secret = utf8ToBytes('a device state');
    const blob = await sdk.encryptBackup(secret, 'correct horse battery staple', { cost: 'test' });
    expect(await sdk.decryptBackup(blob, 'correct horse battery staple')).toEqual(secret);
    const pieces = await sdk.splitBackup(blob, 2, 3);
    expect(await sdk.combineBackup([pieces[2] as string, pieces[0] as string])).toEqual(blob);
    await expect(sdk.decryptBackup(blob, 'wrong horse battery staple')).rejects.toMatchObject({
      code: 'BACKUP_PASSWORD',
    });
  });
});

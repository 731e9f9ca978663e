/**
 * The merchant's offline check in a real browser (headless Debian chromium): a terminal page that
 * imports only `checkEd25519Package` from @tessera/core/merchant, minified as a page ships it, is at most
 * 25 KB gzip (issue 21) and carries no protobuf registry; in the page (noble's Ed25519, not Node's
 * OpenSSL) it accepts a genuine package with the id the cluster gives it and refuses a tampered
 * share, a tampered reservation and another suite's key with their codes.
 */
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GroupKey,
  type KeyShare,
  ParticipantIdentity,
  RESERVATION_NONCE_ID_BYTES,
  type SuiteId,
  commit,
  createOfflinePackage,
  encodeKeyRecord,
  encodeOfflinePackage,
  getSuite,
  openReservation,
  packageToText,
  runLocalDkg,
  signReservation,
  toHex,
  utf8ToBytes,
} from '@tessera/core';
import type { MerchantVerdict } from './entries/merchant.js';
import { bundleForBrowser, errorLogs, launchBrowser, openPage, serveStatic } from './harness.js';

const TIMEOUT = 120_000;
const ENTRY = fileURLToPath(new URL('./entries/merchant.ts', import.meta.url));
const LIMIT_GZIP = 25 * 1024;
const NOW = Date.now();

/** A 2-of-3 key (phone + two signers) and one genuine offline package from the phone. */
function keyAndPackage(suiteId: SuiteId) {
  const suite = getSuite(suiteId);
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
      expiresAt: NOW + 3600_000,
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
    createdAt: NOW,
  });
  return { record: toHex(encodeKeyRecord({ keyId, epoch: 0, key, createdAt: NOW })), pkg };
}

describe('the merchant check in chromium', { timeout: TIMEOUT }, () => {
  let server: { url: string; close(): Promise<void> } | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let logs: string[];
  let js: string;

  beforeAll(async () => {
    js = await bundleForBrowser(ENTRY, { minify: true });
    server = await serveStatic({
      '/index.html':
        '<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>terminal</title></head><body><script type="module" src="/app.js"></script></body></html>',
      '/app.js': js,
    });
    browser = await launchBrowser();
    ({ page, logs } = await openPage(browser, server.url));
    await page.waitForFunction(() => typeof (globalThis as { merchantCheck?: unknown }).merchantCheck === 'function');
  }, TIMEOUT);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  }, TIMEOUT);

  const check = (record: string, text: string): Promise<MerchantVerdict> =>
    page.evaluate(
      ([r, t, now]) =>
        (
          globalThis as unknown as { merchantCheck(r: string, t: string, n: number): Promise<MerchantVerdict> }
        ).merchantCheck(r, t, now),
      [record, text, NOW] as const,
    );

  it('is at most 25 KB gzip, minified, and carries no protobuf registry', () => {
    const gzip = gzipSync(js, { level: 9 }).length;
    expect(gzip).toBeLessThanOrEqual(LIMIT_GZIP);
    expect(js).not.toContain('tessera.v1.'); // no message schema: the generated registry stayed out
  });

  it('accepts a genuine package with the cluster’s id and refuses tampered ones with their codes', async () => {
    const { record, pkg } = keyAndPackage('ed25519');
    expect(await check(record, packageToText(pkg.bytes)), logs.join('\n')).toEqual({
      ok: { packageId: pkg.packageId, device: 'phone', message: toHex(pkg.message) },
    });
    const suite = getSuite('ed25519');
    const badShare = suite.Fn.toBytes(suite.Fn.add(suite.Fn.fromBytes(pkg.share), suite.Fn.ONE));
    const c = pkg.cosigners[0];
    if (!c) throw new Error('no co-signer');
    const cases: [Uint8Array, string][] = [
      [encodeOfflinePackage({ ...pkg, share: badShare }), 'BAD_SIGNATURE_SHARE'],
      [encodeOfflinePackage({ ...pkg, cosigners: [{ ...c, expiresAt: c.expiresAt + 60_000 }] }), 'RESERVATION_INVALID'],
      [encodeOfflinePackage({ ...pkg, message: utf8ToBytes('pay 420.00 to terminal-9') }), 'BAD_SIGNATURE_SHARE'],
    ];
    for (const [bytes, code] of cases) expect(await check(record, packageToText(bytes))).toEqual({ code });
    const secp = keyAndPackage('secp256k1');
    expect(await check(secp.record, packageToText(secp.pkg.bytes))).toEqual({ code: 'WRONG_SUITE' });
    expect(errorLogs(logs), logs.join('\n')).toEqual([]);
  });
});

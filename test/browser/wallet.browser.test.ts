/**
 * The browser wallet (apps/wallet) in headless chromium, served the way `tessera dev` serves it
 * (the CLI's serveWallet, strict CSP), against the real device gateway and signer engines: a
 * person enrols with an operator's token, creates a key, reserves an allowance, loses the
 * network, pays (the package as a QR code and as text), reloads the page (nothing acknowledged is
 * lost), comes back online and syncs: the payment completes exactly once and Node verifies its
 * signature against the address the page showed. Every control has a label (axe-core). A
 * screenshot of each step goes to $TESSERA_SCREENSHOTS (scripts/screenshots.sh) or a temp dir.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ed25519 } from '@noble/curves/ed25519.js';
import { base58 } from '@scure/base';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { address as chainAddress, fromHex, groupPublicKey } from '@tessera/core';
import { serveWallet, type WalletServer } from '@tessera/cli';
import { cleanup, deviceCluster, type Cluster } from '../device-harness.js';
import { bundleForBrowser, errorLogs, launchBrowser } from './harness.js';

const TIMEOUT = 180_000;
const APP = fileURLToPath(new URL('../../apps/wallet/', import.meta.url));
const SHOTS = process.env.TESSERA_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), 'tessera-wallet-shots-'));
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

describe('browser wallet in chromium: token → enrol → key → allowance → offline payment → back online → completed once', {
  timeout: TIMEOUT,
}, () => {
  let c: Cluster;
  let server: WalletServer;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let page: Page;
  const logs: string[] = [];
  const dist = mkdtempSync(join(tmpdir(), 'tessera-wallet-dist-'));

  const shot = async (name: string) => {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };
  const text = async (sel: string) => (await page.locator(sel).textContent())?.trim() ?? '';
  const ready = () => page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });

  beforeAll(async () => {
    c = await deviceCluster(3);
    writeFileSync(join(dist, 'wallet.js'), await bundleForBrowser(join(APP, 'src/main.ts')));
    copyFileSync(join(APP, 'index.html'), join(dist, 'index.html'));
    copyFileSync(join(APP, 'wallet.css'), join(dist, 'wallet.css'));
    server = await serveWallet({ dir: dist, gateway: c.url });
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 800, height: 900 } });
    page = await context.newPage();
    page.on('console', (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`[pageerror] ${e.stack ?? e.message}`));
    page.on('requestfailed', (r) => logs.push(`[requestfailed] ${r.url()}: ${r.failure()?.errorText ?? 'unknown'}`));
    await page.goto(server.url);
    await ready().catch((e: Error) => {
      throw new Error(`the wallet did not load: ${e.message}\n${logs.join('\n')}`);
    });
  }, TIMEOUT);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await server?.close().catch(() => {});
    await cleanup();
    rmSync(dist, { recursive: true, force: true });
  }, TIMEOUT);

  it('the whole story, each step on screen', async () => {
    expect(await text('#network')).toBe('Online');
    expect(await text('#device')).toMatch(/^Device device-[0-9a-f]+, not enrolled yet$/);
    await shot('1-open');

    // The operator issues a token; the person pastes it.
    const { token } = await c.coordinator.issueEnrolmentToken();
    await page.getByLabel('Enrolment token').fill(token);
    await page.getByRole('button', { name: 'Enrol' }).click();
    await page.waitForSelector('#device:has-text("Enrolled as")');
    const deviceId = (await text('#device')).replace('Enrolled as ', '');
    expect(deviceId).toMatch(/^device-[0-9a-f]+$/);
    await shot('2-enrolled');

    // A key with the cluster; the page shows its Solana address.
    await page.getByLabel('Signature scheme').selectOption('ed25519');
    await page.getByRole('button', { name: 'Create key with the cluster' }).click();
    await page.waitForSelector('dd[data-field="solana-address"]', { timeout: 60_000 });
    const keyId = await text('dd[data-field="key"]');
    const address = await text('dd[data-field="solana-address"]');
    const publicKey = base58.decode(address);
    expect(publicKey).toHaveLength(32);
    const signer = await c.signers[0]?.key(keyId);
    expect(signer?.keyId).toBe(keyId);
    await shot('3-key');

    await page.getByLabel('Offline payments to reserve').fill('3');
    await page.getByRole('button', { name: 'Reserve' }).click();
    await page.waitForSelector('#allowance:has-text("3 offline payments left")');
    await shot('4-allowance');

    // The network goes away; paying still works.
    const offlineFrom = logs.length;
    await context.setOffline(true);
    await page.waitForSelector('#network:has-text("Offline")');
    await page.getByLabel('Pay to').fill('shop-7');
    await page.getByLabel('Amount').fill('12.50');
    await page.getByRole('button', { name: 'Sign payment' }).click();
    await page.waitForSelector('#qr:not([hidden]) svg');
    const pkgText = await page.getByLabel('Payment package (text)').inputValue();
    expect(pkgText).toMatch(/^TSP1:[0-9A-Z $%*+\-./:]+$/);
    const packageId = (await page.locator('#package').getAttribute('data-package-id')) as string;
    await page.waitForSelector('#allowance:has-text("2 offline payments left; 1 waiting to sync")');
    await shot('5-paid-offline');
    await page.getByRole('button', { name: 'Sync' }).click();
    await page.waitForSelector('#results li.pending');
    expect(await text('#results')).toContain('waiting (UNAVAILABLE)');
    await page.waitForSelector('#report:has-text("not compared with the cluster")');
    await shot('6-sync-offline');

    // Back online; the page is even reloaded: the queued payment was durable before it was shown.
    await context.setOffline(false);
    const offlineTo = logs.length;
    await page.reload();
    await ready();
    await page.waitForSelector('#allowance:has-text("2 offline payments left; 1 waiting to sync")');
    await page.getByRole('button', { name: 'Sync' }).click();
    await page.waitForSelector('#results li.completed[data-signature]');
    const done = page.locator('#results li.completed');
    expect(await done.count()).toBe(1);
    expect(await done.getAttribute('data-package-id')).toBe(packageId);
    const signature = fromHex((await done.getAttribute('data-signature')) as string);
    const message = new TextEncoder().encode(JSON.stringify({ to: 'shop-7', amount: '12.50' }));
    // Node checks the payment with the plain single-party verifier, against the address shown.
    expect(ed25519.verify(signature, message, publicKey)).toBe(true);
    await page.waitForSelector('#report:has-text("Reconciled: 1 settled")');
    expect(await text('#report')).toBe("Reconciled: 1 settled, 0 refused, 0 pending; the cluster's record agrees.");
    await shot('7-completed');

    // Exactly once: another sync delivers nothing.
    await page.getByRole('button', { name: 'Sync' }).click();
    await page.waitForSelector('#results li:has-text("nothing to deliver")');

    // A Bitcoin key: the page shows its Taproot address, the one core's address() gives Node.
    await page.getByLabel('Signature scheme').selectOption('secp256k1-tr');
    await page.getByRole('button', { name: 'Create key with the cluster' }).click();
    await page.waitForSelector('dd[data-field="bitcoin-taproot-address"]', { timeout: 60_000 });
    const btcKey = await text('dd[data-field="key"]');
    const rec = await c.signers[0]?.key(btcKey);
    expect(await text('dd[data-field="bitcoin-taproot-address"]')).toBe(
      chainAddress('secp256k1-tr', groupPublicKey((rec as NonNullable<typeof rec>).key)),
    );
    expect(await text('dd[data-field="bitcoin-taproot-address"]')).toMatch(/^bc1p[02-9ac-hj-np-z]{58}$/);

    // Every control is labelled; no accessibility violation at all (axe-core, WCAG 2 A/AA).
    await page.evaluate(AXE);
    const violations = await page.evaluate(async () => {
      const axe = (
        globalThis as unknown as {
          axe: { run(o: object): Promise<{ violations: { id: string; nodes: { target: string[] }[] }[] }> };
        }
      ).axe;
      const r = await axe.run({ runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
      return r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    });
    expect(violations).toEqual([]);

    // No error in the page, except the requests the cut network failed.
    // (The key generation links the device for its duration; ending it aborts its own long poll.)
    const outsideCut = [...logs.slice(0, offlineFrom), ...logs.slice(offlineTo)].filter(
      (l) => !/^\[requestfailed\] \S+\/v1\/device\/poll: net::ERR_ABORTED$/.test(l),
    );
    expect(errorLogs(outsideCut), logs.join('\n')).toEqual([]);
    expect(
      errorLogs(logs.slice(offlineFrom, offlineTo)).every((l) => /ERR_INTERNET_DISCONNECTED|Failed to fetch/.test(l)),
      logs.join('\n'),
    ).toBe(true);
  });
});

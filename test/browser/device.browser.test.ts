/**
 * The device SDK in a real browser (headless Debian chromium via playwright-core): a page served
 * from one loopback origin uses @tessera/device (IndexedDB storage) against the coordinator's
 * real device gateway on another (so every call is cross-origin: CORS is exercised). The page
 * enrols, joins a 2-of-3 ed25519 DKG with two signer engines, reserves; the network is cut
 * (BrowserContext.setOffline, proved real by a failing fetch); the page signs offline and a sync
 * leaves the package pending; the network returns, a sync completes it, and Node checks the
 * signature with noble's plain single-party Ed25519 verifier. Needs `bash scripts/test-deps.sh`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ed25519 } from '@noble/curves/ed25519.js';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParticipantIdentity, fromHex, toHex } from '@tessera/core';
import { SealedStore, kekFromBytes } from '@tessera/store';
import { SignerEngine } from '@tessera/signer';
import { Coordinator, startDeviceGateway, type ParticipantHandle, type StartedGateway } from '@tessera/coordinator';
import type { SyncResult } from '@tessera/device';
import type { DeviceApp, DeviceStatus, SetupResult, SignResult } from './entries/device-app.js';
import { bundleForBrowser, errorLogs, launchBrowser, serveStatic } from './harness.js';

const TIMEOUT = 120_000;
const ENTRY = fileURLToPath(new URL('./entries/device-app.ts', import.meta.url));
const INDEX_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>tessera device app</title></head>
<body><script src="/idb-probe.js"></script><script type="module" src="/app.js"></script></body></html>
`;
/**
 * Runs before the app: records the durability of every read-write IndexedDB transaction the page
 * opens, as the browser reports it on the transaction ('strict' only if asked for).
 */
const IDB_PROBE = `window.idbWrites = [];
const open = IDBDatabase.prototype.transaction;
IDBDatabase.prototype.transaction = function (stores, mode, options) {
  const tx = open.call(this, stores, mode, options);
  if (mode === 'readwrite') window.idbWrites.push(tx.durability);
  return tx;
};`;
/** What chromium reports for a request made while BrowserContext.setOffline(true) is in force. */
const OFFLINE_ERROR = 'net::ERR_INTERNET_DISCONNECTED';

// ---- the in-process cluster (after test/device.test.ts's deviceCluster) -------------------------

const dirs: string[] = [];
const closers: (() => Promise<unknown>)[] = [];

async function openStore(): Promise<SealedStore> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-browser-device-'));
  dirs.push(dir);
  const s = await SealedStore.open(dir, kekFromBytes(new Uint8Array(randomBytes(32))));
  closers.push(() => s.close());
  return s;
}

async function cluster(n = 3): Promise<{ coordinator: Coordinator; gateway: StartedGateway }> {
  const coordinator = new Coordinator({ store: await openStore() });
  await coordinator.load();
  let taskId = 0;
  for (let i = 1; i <= n; i++) {
    const s = new SignerEngine({
      identity: ParticipantIdentity.generate(`signer-${i}`),
      store: await openStore(),
      policy: { allowKeygen: true, allowUnpinnedPeers: true, requesters: [], devices: { maxReservations: 64 } },
    });
    const handle: ParticipantHandle = {
      info: s.identity.public,
      connectedSince: Date.now(),
      call: (task) => s.handle({ ...task, taskId: ++taskId }),
    };
    coordinator.register(handle);
  }
  const gateway = await startDeviceGateway({ coordinator, host: '127.0.0.1', port: 0 });
  closers.push(() => gateway.close());
  return { coordinator, gateway };
}

// ---- the test -----------------------------------------------------------------------------------

type AppWindow = { app: DeviceApp };

describe('@tessera/device in chromium: enrol, reserve, network cut, sign, network back, sync', {
  timeout: TIMEOUT,
}, () => {
  let coordinator: Coordinator;
  let gatewayUrl: string;
  let server: { url: string; close(): Promise<void> } | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let page: Page;
  const logs: string[] = [];
  let bundleBytes = 0;

  beforeAll(async () => {
    const c = await cluster(3);
    coordinator = c.coordinator;
    gatewayUrl = c.gateway.url;
    const js = await bundleForBrowser(ENTRY);
    bundleBytes = Buffer.byteLength(js);
    server = await serveStatic({ '/index.html': INDEX_HTML, '/app.js': js, '/idb-probe.js': IDB_PROBE });
    browser = await launchBrowser();
    // harness.openPage takes a Browser (browser.newPage()); setOffline needs the page's
    // BrowserContext, so the page and its log capture are set up here the same way.
    context = await browser.newContext();
    page = await context.newPage();
    page.on('console', (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`[pageerror] ${e.stack ?? e.message}`));
    page.on('requestfailed', (r) => logs.push(`[requestfailed] ${r.url()}: ${r.failure()?.errorText ?? 'unknown'}`));
    await page.goto(server.url);
    // A bundle that throws while loading never defines window.app: fail fast, with the page's logs.
    await page
      .waitForFunction(
        () => typeof (globalThis as unknown as Partial<AppWindow>).app?.setup === 'function',
        undefined,
        { timeout: 15_000 },
      )
      .catch((e: Error) => {
        throw new Error(`the device app did not load: ${e.message}\n${logs.join('\n')}`);
      });
  }, TIMEOUT);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await server?.close().catch(() => {});
    for (const c of closers.reverse()) await c().catch(() => {});
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }, TIMEOUT);

  it('runs in a browser, cross-origin to the gateway', async () => {
    const env = await page.evaluate(() => ({
      process: typeof (globalThis as { process?: unknown }).process,
      indexedDB: typeof indexedDB,
      origin: location.origin,
    }));
    expect(env, logs.join('\n')).toMatchObject({ process: 'undefined', indexedDB: 'object' });
    expect(new URL(gatewayUrl).origin).not.toBe(env.origin);
    expect(bundleBytes).toBeGreaterThan(0);
  });

  it('enrols, signs offline, syncs once back online; the signature verifies', async () => {
    const t0 = Date.now();
    const { token } = await coordinator.issueEnrolmentToken();

    // ---- online: enrol, DKG with signer-1 and signer-2, reserve two offline signatures
    const setup: SetupResult = await page.evaluate(
      ([url, tok]) => (globalThis as unknown as AppWindow).app.setup(url, tok),
      [gatewayUrl, token] as const,
    );
    expect(setup.device, logs.join('\n')).toBe('browser-phone');
    expect(setup.participants).toEqual(['browser-phone', 'signer-1', 'signer-2']);
    expect(setup.publicKey).toMatch(/^[0-9a-f]{64}$/);
    expect(setup.added).toBe(2);
    expect(setup.allowance).toBe(2);
    const probeUrl = `${gatewayUrl}/v1/device/keys`;
    // OPTIONS answers 204 with the CORS headers: a clean cross-origin request, no error logged.
    const probe = (url: string) => page.evaluate((u) => (globalThis as unknown as AppWindow).app.probe(u), url);
    expect(await probe(probeUrl)).toEqual({ ok: true, status: 204 });
    const tSetup = Date.now();

    // ---- the network is cut: the page cannot reach the gateway (nor anything else)
    const offlineFrom = logs.length;
    await context.setOffline(true);
    const cut = await probe(probeUrl);
    expect(cut.ok, JSON.stringify(cut)).toBe(false);
    expect((cut as { error: string }).error).toMatch(/^TypeError: Failed to fetch/);
    expect(await page.evaluate(() => navigator.onLine)).toBe(false);

    // ---- offline: sign against a reservation; the package is small and self-verifying
    const message = new Uint8Array(randomBytes(32));
    const pkg: SignResult = await page.evaluate(([k, m]) => (globalThis as unknown as AppWindow).app.sign(k, m), [
      setup.keyId,
      toHex(message),
    ] as const);
    expect(pkg.length, logs.join('\n')).toBeLessThan(400);
    expect(pkg.bytes).toHaveLength(pkg.length * 2);
    expect(pkg.text.startsWith('TSP1:')).toBe(true);
    expect(pkg.packageId).toMatch(/^[0-9a-f]+$/);

    // ---- a sync while offline keeps the package pending, completes nothing
    const offlineSync: SyncResult = await page.evaluate(
      (u) => (globalThis as unknown as AppWindow).app.sync(u),
      gatewayUrl,
    );
    expect(offlineSync.completed).toEqual([]);
    expect(offlineSync.failed).toEqual([]);
    expect(offlineSync.pending).toHaveLength(1);
    expect(offlineSync.pending[0]).toMatchObject({ packageId: pkg.packageId, keyId: setup.keyId, code: 'UNAVAILABLE' });
    expect(offlineSync.pending[0]?.reason).toMatch(/^cannot reach the cluster at /);
    const offStatus: DeviceStatus = await page.evaluate(() => (globalThis as unknown as AppWindow).app.status());
    expect(offStatus.queue).toEqual({ pending: 1, completed: 0, failed: 0 });
    expect(offStatus.keys[0]?.allowance).toBe(1);
    const offlineTo = logs.length;

    // ---- the network returns: sync delivers the package exactly once
    await context.setOffline(false);
    const tOffline = Date.now();
    const synced: SyncResult = await page.evaluate((u) => (globalThis as unknown as AppWindow).app.sync(u), gatewayUrl);
    expect(synced.pending, logs.join('\n')).toEqual([]);
    expect(synced.failed).toEqual([]);
    expect(synced.completed).toHaveLength(1);
    const done = synced.completed[0] as SyncResult['completed'][number];
    expect(done.packageId).toBe(pkg.packageId);
    expect(done.message).toBe(toHex(message));
    expect(done.signers).toHaveLength(2);
    expect(done.signers).toContain('browser-phone');

    // Node checks the signature on its own, with the plain single-party Ed25519 verifier.
    const sig = fromHex(done.signature);
    const pk = fromHex(setup.publicKey);
    expect(ed25519.verify(sig, message, pk)).toBe(true);
    const tampered = message.slice();
    tampered[0] = (tampered[0] as number) ^ 1;
    expect(ed25519.verify(sig, tampered, pk)).toBe(false);

    // Exactly once: a second sync has nothing to do; the merchant delivering the same package
    // gets the same signature back.
    const again: SyncResult = await page.evaluate((u) => (globalThis as unknown as AppWindow).app.sync(u), gatewayUrl);
    expect(again).toEqual({ completed: [], pending: [], failed: [] });
    const merchant = await coordinator.completePackage(fromHex(pkg.bytes));
    expect(merchant.alreadyCompleted).toBe(true);
    expect(toHex(merchant.signature)).toBe(done.signature);
    const status: DeviceStatus = await page.evaluate(() => (globalThis as unknown as AppWindow).app.status());
    expect(status.queue).toEqual({ pending: 0, completed: 1, failed: 0 });
    expect(status.keys[0]?.allowance).toBe(1);
    await page.evaluate(() => (globalThis as unknown as AppWindow).app.close());

    // ---- logs: the only failures are the gateway requests made while offline (chromium logs
    // each as a requestfailed event plus a console error), and the long poll the SDK itself
    // aborts when keygen ends (Device.disconnect), if it was still in flight.
    const gatewayOrigin = new URL(gatewayUrl).origin;
    const offlineFailure = (l: string) =>
      (l.startsWith(`[requestfailed] ${gatewayOrigin}/v1/device/`) && l.endsWith(`: ${OFFLINE_ERROR}`)) ||
      l === `[console.error] Failed to load resource: ${OFFLINE_ERROR}`;
    const pollAborted = `[requestfailed] ${gatewayOrigin}/v1/device/poll: net::ERR_ABORTED`;
    const before = errorLogs(logs.slice(0, offlineFrom));
    const during = errorLogs(logs.slice(offlineFrom, offlineTo));
    const after = errorLogs(logs.slice(offlineTo));
    // The probe and the sync's submit, each failed by the cut.
    expect(
      during
        .filter((l) => l.startsWith('[requestfailed]') && offlineFailure(l))
        .map((l) => l.slice(`[requestfailed] ${gatewayOrigin}`.length)),
      logs.join('\n'),
    ).toEqual([`/v1/device/keys: ${OFFLINE_ERROR}`, `/v1/device/submit: ${OFFLINE_ERROR}`]);
    expect(before.filter((l) => l === pollAborted).length, logs.join('\n')).toBeLessThanOrEqual(1);
    const unexpected = [
      ...before.filter((l) => l !== pollAborted),
      ...during.filter((l) => !offlineFailure(l)),
      ...after,
    ];
    expect(unexpected, logs.join('\n')).toEqual([]);
    process.stderr.write(
      `device.browser: bundle ${bundleBytes} B; setup ${tSetup - t0} ms, offline phase ${tOffline - tSetup} ms, online sync+checks ${Date.now() - tOffline} ms\n`,
    );
  });

  it('asks IndexedDB for strict durability on every write (a record is on disk before it is acknowledged)', async () => {
    const writes = await page.evaluate(() => (globalThis as unknown as { idbWrites: string[] }).idbWrites);
    expect(writes.length, logs.join('\n')).toBeGreaterThan(5); // enrolment, keygen, reservations, the payment, the sync
    expect(new Set(writes)).toEqual(new Set(['strict']));
  });
});

/**
 * @tessera/core in a real browser (headless Debian chromium via playwright-core): a 2-of-3
 * ed25519 DKG and threshold signature run in the page; Node checks the signature with noble's
 * plain single-party Ed25519 verifier, the page under a strict Content-Security-Policy (no
 * 'unsafe-eval': the core's encoding runs without generated code). Needs `bash scripts/test-deps.sh` (installs chromium).
 */
import { fileURLToPath } from 'node:url';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SmokeResult } from './entries/core-smoke.js';
import { STRICT_CSP, bundleForBrowser, errorLogs, launchBrowser, openPage, serveStatic } from './harness.js';

const TIMEOUT = 120_000;
const ENTRY = fileURLToPath(new URL('./entries/core-smoke.ts', import.meta.url));
const INDEX_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>tessera core smoke</title></head>
<body><script type="module" src="/app.js"></script></body></html>
`;

const PROBE_JS = `window.tesseraEval = (() => {
  try { return String(new Function('return 1')()); } catch (e) { return e.name; }
})();`;

describe('@tessera/core in chromium', { timeout: TIMEOUT }, () => {
  let server: { url: string; close(): Promise<void> } | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let logs: string[];

  beforeAll(async () => {
    const js = await bundleForBrowser(ENTRY);
    server = await serveStatic({ '/index.html': INDEX_HTML, '/app.js': js, '/probe.js': PROBE_JS });
    browser = await launchBrowser();
    ({ page, logs } = await openPage(browser, server.url));
  }, TIMEOUT);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  }, TIMEOUT);

  it('runs in a browser, not Node', async () => {
    const env = await page.evaluate(() => ({
      process: typeof (globalThis as { process?: unknown }).process,
      smoke: typeof (globalThis as { tesseraSmoke?: unknown }).tesseraSmoke,
    }));
    expect(env, logs.join('\n')).toEqual({ process: 'undefined', smoke: 'function' });
  });

  it('runs under a strict Content-Security-Policy: eval is refused in the page', async () => {
    const csp = await page.evaluate(async () => (await fetch('/')).headers.get('content-security-policy'));
    expect(csp).toBe(STRICT_CSP);
    expect(csp).not.toContain('unsafe-eval');
    // A script of the page's own (evaluate() itself runs outside the page's policy).
    await page.addScriptTag({ url: '/probe.js' });
    const evalResult = await page.evaluate(() => (window as unknown as { tesseraEval: string }).tesseraEval);
    expect(evalResult).toBe('EvalError');
  });

  it('2-of-3 ed25519 DKG + threshold signature verify with plain Ed25519', async () => {
    const r = await page.evaluate(() => (window as unknown as { tesseraSmoke(): Promise<SmokeResult> }).tesseraSmoke());
    expect(r.publicKey, logs.join('\n')).toMatch(/^[0-9a-f]{64}$/);
    expect(r.signature).toMatch(/^[0-9a-f]{128}$/);
    const pk = hexToBytes(r.publicKey);
    const msg = hexToBytes(r.message);
    const sig = hexToBytes(r.signature);
    expect(ed25519.verify(sig, msg, pk)).toBe(true);
    const tampered = msg.slice();
    tampered[0] = (tampered[0] as number) ^ 0x01;
    expect(ed25519.verify(sig, tampered, pk)).toBe(false);
    expect(errorLogs(logs), logs.join('\n')).toEqual([]);
  });
});

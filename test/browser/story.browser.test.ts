/**
 * The whole story across both apps, as `tessera dev` serves them (real coordinator and
 * signer processes, the apps built by scripts/build-apps.mjs): the operator opens the console
 * with its login link and issues an enrolment token → the browser wallet enrols with it → the
 * operator admits the device → the wallet creates a key and reserves an allowance → the network
 * is cut in the wallet's browser → a payment is signed and shown as a QR code → the network comes
 * back → the payment completes once → the console shows the device, the key and the completion
 * (the KPI moves) → the operator refreshes the key (new epoch) → the phone is lost: a second
 * wallet enrols, is admitted and stays linked, and the operator moves the key to it (reshare,
 * same address) and revokes the old wallet in one action. The
 * console's API refuses a caller without the login secret; a second operator, without the link,
 * signs in with the operator key file (only the signature is sent); axe-core finds no violation.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLogs, launchBrowser } from './harness.js';

const TIMEOUT = 240_000;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'packages/cli/dist/bin.js');
const SHOTS = process.env.TESSERA_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), 'tessera-story-shots-'));
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

type Axe = { axe: { run(o: object): Promise<{ violations: { id: string; nodes: { target: string[] }[] }[] }> } };
async function axeViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE);
  return page.evaluate(async () => {
    const r = await (globalThis as unknown as Axe).axe.run({
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    });
    return r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
}

function watch(page: Page, logs: string[]): void {
  page.on('console', (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.stack ?? e.message}`));
  page.on('requestfailed', (r) => logs.push(`[requestfailed] ${r.url()}: ${r.failure()?.errorText ?? 'unknown'}`));
}

describe('operator console and browser wallet on tessera dev: the whole story', { timeout: TIMEOUT }, () => {
  const work = mkdtempSync(join(tmpdir(), 'tessera-story-'));
  let dev: ChildProcess | undefined;
  /** Consoles a test starts besides the dev cluster's own: stopped in afterAll whatever happened. */
  const consoles: ChildProcess[] = [];
  const events: string[] = [];
  let browser: Browser | undefined;
  let operator: Page;
  let phone: BrowserContext;
  let wallet: Page;
  const consoleLogs: string[] = [];
  const walletLogs: string[] = [];
  const shot = async (page: Page, name: string) => {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };

  beforeAll(async () => {
    const built = spawnSync(process.execPath, [join(ROOT, 'scripts/build-apps.mjs'), join(work, 'apps')], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(built.status, built.stderr).toBe(0);
    dev = spawn(
      process.execPath,
      [BIN, 'dev', '--dir', join(work, 'cluster'), '--no-prove', '--port', '0', '--gateway-port', '0'].concat([
        '--wallet-port',
        '0',
        '--console-port',
        '0',
        '--apps-dir',
        join(work, 'apps'),
        '--json',
      ]),
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: dev?.stdout as NodeJS.ReadableStream }).on('line', (l) => {
        const e = (JSON.parse(l) as { event: string }).event;
        events.push(e);
        if (e.startsWith('serving')) resolve();
      });
      dev?.once('exit', (c) => reject(new Error(`tessera dev exited ${c}: ${events.join('\n')}`)));
    });
    browser = await launchBrowser();
    operator = await (await browser.newContext({ viewport: { width: 1100, height: 900 } })).newPage();
    watch(operator, consoleLogs);
    phone = await browser.newContext({ viewport: { width: 800, height: 900 } });
    wallet = await phone.newPage();
    watch(wallet, walletLogs);
  }, TIMEOUT);

  afterAll(async () => {
    for (const c of consoles)
      if (c.exitCode === null && c.signalCode === null) {
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        await exited;
      }
    await browser?.close().catch(() => {});
    if (dev && dev.exitCode === null) {
      const exited = new Promise((r) => dev?.once('exit', r));
      dev.kill('SIGTERM');
      await exited;
    }
    rmSync(work, { recursive: true, force: true });
  }, TIMEOUT);

  it('token → enrol → admit → key → allowance → offline payment → back online → completed once → seen in the console', async () => {
    const consoleLogin = /^operator console: (http:\/\/\S+#login=[\w-]+)/m.exec(events.join('\n'))?.[1];
    const walletUrl = /^browser wallet: (http:\/\/\S+)/m.exec(events.join('\n'))?.[1];
    expect(consoleLogin, events.join('\n')).toBeDefined();
    expect(walletUrl, events.join('\n')).toBeDefined();
    const consoleUrl = (consoleLogin as string).split('#')[0] as string;

    // Without the login secret the API answers nothing but 401.
    const anon = await fetch(new URL('/api/overview', consoleUrl));
    expect(anon.status).toBe(401);
    expect(((await anon.json()) as { error: { code: string } }).error.code).toBe('UNAUTHENTICATED');
    expect(
      (await fetch(new URL('/api/token', consoleUrl), { method: 'POST', headers: { authorization: 'Bearer x' } }))
        .status,
    ).toBe(401);

    // The operator opens the console: the link's secret leaves the address bar.
    await operator.goto(consoleLogin as string);
    await operator.waitForSelector('#signers tr[data-id="signer-3"] [data-field="health"]:has-text("healthy")');
    expect(operator.url()).not.toContain('login=');
    await operator.waitForSelector('#audit-result:has-text("Every audit chain verifies.")');
    await operator.waitForSelector('[data-kpi="completed"]');
    const completedBefore = Number(await operator.locator('[data-kpi="completed"]').textContent());
    await operator.getByRole('button', { name: 'Issue enrolment token' }).click();
    await operator.waitForSelector('#token-qr:not([hidden]) svg');
    const token = await operator.getByLabel('One-time token (valid 1 hour)').inputValue();
    expect(token).toMatch(/^tet1_[0-9a-f]+$/);
    await shot(operator, 'console-1-token');

    // The wallet enrols with it; the operator admits the device.
    await wallet.goto(walletUrl as string);
    await wallet.waitForSelector('body[data-ready="true"]');
    await wallet.getByLabel('Enrolment token').fill(token);
    await wallet.getByRole('button', { name: 'Enrol' }).click();
    await wallet.waitForSelector('#device:has-text("Enrolled as")');
    const deviceId = ((await wallet.locator('#device').textContent()) as string).replace('Enrolled as ', '').trim();
    await operator.waitForSelector(
      `#devices tr[data-id="${deviceId}"] [data-field="admission"]:has-text("waiting for admission")`,
    );
    await operator.getByRole('button', { name: `Admit ${deviceId}` }).click();
    await operator.waitForSelector(`#devices tr[data-id="${deviceId}"] [data-field="admission"]:has-text("admitted")`);

    // Key, allowance, network cut, payment, network back, sync.
    await wallet.getByRole('button', { name: 'Create key with the cluster' }).click();
    await wallet.waitForSelector('dd[data-field="key"]', { timeout: 60_000 });
    const keyId = ((await wallet.locator('dd[data-field="key"]').textContent()) as string).trim();
    await wallet.getByLabel('Offline payments to reserve').fill('2');
    await wallet.getByRole('button', { name: 'Reserve' }).click();
    await wallet.waitForSelector('#allowance:has-text("2 offline payments left")');
    const cutFrom = walletLogs.length;
    await phone.setOffline(true);
    await wallet.getByRole('button', { name: 'Sign payment' }).click();
    await wallet.waitForSelector('#qr:not([hidden]) svg');
    await phone.setOffline(false);
    const cutTo = walletLogs.length;
    await wallet.getByRole('button', { name: 'Sync' }).click();
    await wallet.waitForSelector('#results li.completed[data-signature]');
    await wallet.waitForSelector('#report:has-text("Reconciled: 1 settled")');

    // The console sees it: the device holds the key, the key lists it, the KPI moved by one.
    await operator.waitForSelector(`#keys tr[data-id="${keyId}"] [data-field="participants"]:has-text("${deviceId}")`);
    await operator.waitForSelector(`#devices tr[data-id="${deviceId}"] [data-field="keys"]:has-text("1")`);
    await operator.waitForFunction(
      (n) => Number(document.querySelector('[data-kpi="completed"]')?.textContent) === n,
      completedBefore + 1,
      { timeout: 20_000 },
    );
    // The package list shows the decision, with its device and key.
    const pkgId = (await wallet.locator('#results li.completed').getAttribute('data-package-id')) as string;
    await operator.waitForSelector(`#packages tr[data-id="${pkgId}"] [data-field="state"]:has-text("completed")`);
    expect(await operator.locator(`#packages tr[data-id="${pkgId}"] [data-field="device"]`).textContent()).toBe(
      deviceId,
    );
    await operator.getByLabel('Show').selectOption('refused');
    await operator.waitForFunction(() => document.querySelectorAll('#packages tr').length === 0);
    await operator.getByLabel('Show').selectOption('');
    await operator.waitForSelector(`#packages tr[data-id="${pkgId}"]`);
    await shot(operator, 'console-2-completed');

    // Lifecycle from the console: a refresh (same key, new epoch).
    await operator.getByRole('button', { name: `Refresh ${keyId}` }).click();
    await operator.waitForSelector(`#keys tr[data-id="${keyId}"] [data-field="epoch"]:has-text("1")`, {
      timeout: 60_000,
    });

    // The phone is lost: a new wallet enrols, is admitted, stays linked; the operator moves the
    // key to it (reshare, same public key) and the old wallet is revoked with it.
    const phone2 = await (browser as Browser).newContext({ viewport: { width: 800, height: 900 } });
    const wallet2 = await phone2.newPage();
    watch(wallet2, walletLogs);
    await operator.getByRole('button', { name: 'Issue enrolment token' }).click();
    await operator.waitForFunction(
      (old) => (document.getElementById('token') as HTMLInputElement).value !== old,
      token,
    );
    const token2 = await operator.getByLabel('One-time token (valid 1 hour)').inputValue();
    await wallet2.goto(walletUrl as string);
    await wallet2.waitForSelector('body[data-ready="true"]');
    await wallet2.getByLabel('Enrolment token').fill(token2);
    await wallet2.getByRole('button', { name: 'Enrol' }).click();
    await wallet2.waitForSelector('#device:has-text("Enrolled as")');
    const device2 = ((await wallet2.locator('#device').textContent()) as string).replace('Enrolled as ', '').trim();
    await operator.waitForSelector(`#devices tr[data-id="${device2}"]`);
    await operator.getByRole('button', { name: `Admit ${device2}` }).click();
    await operator.waitForSelector(`#devices tr[data-id="${device2}"] [data-field="admission"]:has-text("admitted")`);
    await wallet2.getByLabel(/Stay linked to the cluster/).check();
    await wallet2.waitForSelector('#link:has-text("Linked to the cluster")');
    await operator.getByLabel(`New device to replace ${deviceId}`).selectOption(device2);
    operator.once('dialog', (d) => void d.accept());
    await operator.getByRole('button', { name: `Replace ${deviceId}` }).click();
    await operator.waitForSelector(`#log li:has-text("${deviceId} replaced by ${device2}")`, { timeout: 90_000 });
    await operator.waitForSelector(`#keys tr[data-id="${keyId}"] [data-field="participants"]:has-text("${device2}")`);
    expect(
      await operator.locator(`#keys tr[data-id="${keyId}"] [data-field="participants"]`).textContent(),
    ).not.toContain(deviceId);
    expect(await operator.locator(`#keys tr[data-id="${keyId}"] [data-field="epoch"]`).textContent()).toBe('2');
    // The new wallet holds the key now (the same address), the old one is refused.
    await wallet2.waitForSelector(`dd[data-field="key"]:has-text("${keyId}")`, { timeout: 30_000 });
    expect(await wallet2.locator('dd[data-field="solana-address"]').textContent()).toBe(
      await wallet.locator('dd[data-field="solana-address"]').textContent(),
    );
    await wallet.getByRole('button', { name: 'Reserve' }).click();
    await wallet.waitForSelector('#log li:has-text("error")');
    await shot(operator, 'console-3-replaced');
    // And the new wallet revoked from the console too: every signer drops it.
    operator.once('dialog', (d) => void d.accept());
    await operator.getByRole('button', { name: `Revoke ${device2}` }).click();
    await operator.waitForSelector(`#log li:has-text("${device2} revoked on")`);

    expect(await axeViolations(operator)).toEqual([]);
    expect(errorLogs(consoleLogs), consoleLogs.join('\n')).toEqual([]);
    const walletErrors = errorLogs([...walletLogs.slice(0, cutFrom), ...walletLogs.slice(cutTo)]).filter(
      (l) => !/\/v1\/device\/poll: net::ERR_ABORTED$/.test(l) && !/status of 4\d\d/.test(l),
    );
    expect(walletErrors, walletLogs.join('\n')).toEqual([]);
  });

  it('a console that holds no operator key: an operator signs in with the key file, asks, approves in the page and runs a refresh and a reshare', async () => {
    // A console that holds no operator key (`--collect-approvals`, no login link): an operator
    // signs in with the operator key file (the page signs the server's one-time challenge and
    // sends only the signature), asks for a refresh, approves it in the page with the key file
    // (the page shows what the signed bytes say) and runs it.
    const collect = spawn(
      process.execPath,
      [BIN, 'console', '--dir', join(work, 'cluster'), '--port', '0', '--no-login-link', '--collect-approvals'].concat([
        '--apps-dir',
        join(work, 'apps'),
        '--json',
      ]),
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    consoles.push(collect);
    const collectUrl = await new Promise<string>((resolve, reject) => {
      createInterface({ input: collect.stdout as NodeJS.ReadableStream }).once('line', (l) =>
        resolve((JSON.parse(l) as { url: string }).url),
      );
      collect.once('exit', (c) => reject(new Error(`tessera console exited ${c}`)));
    });
    const second = await (await (browser as Browser).newContext({ viewport: { width: 1100, height: 900 } })).newPage();
    await second.goto(collectUrl);
    await second.waitForSelector('#login-needed:not([hidden])');
    expect(await axeViolations(second)).toEqual([]);
    const cluster = join(work, 'cluster');
    const keyFile = join(
      cluster,
      (JSON.parse(readFileSync(join(cluster, 'client.json'), 'utf8')) as { operator: string }).operator,
    );
    const sent: string[] = [];
    second.on('request', (r) => sent.push(r.postData() ?? ''));
    await second.getByLabel('Operator key file', { exact: true }).setInputFiles(keyFile);
    await second.getByRole('button', { name: 'Sign in' }).click();
    await second.waitForSelector('#login-status:has-text("Signed in as operator")');
    await second.waitForSelector('#signers tr[data-id="signer-3"] [data-field="health"]:has-text("healthy")');
    expect(await second.locator('#login-needed').isHidden()).toBe(true);
    await second.waitForSelector('#approvals:not([hidden])');
    // A key of the signer nodes alone (every participant online for its refresh).
    const made = spawnSync(
      process.execPath,
      [BIN, 'keygen', '--threshold', '2', '--dir', join(work, 'cluster'), '--json'],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(made.status, made.stderr).toBe(0);
    const nodeKey = (JSON.parse(made.stdout) as { keyId: string }).keyId;
    const epochCell = `#keys tr[data-id="${nodeKey}"] [data-field="epoch"]`;
    await second.waitForSelector(epochCell);
    const epoch = Number(await second.locator(epochCell).textContent());
    await second.getByRole('button', { name: `Refresh ${nodeKey}` }).click();
    const request = second.locator('#requests tr');
    await request.locator('[data-field="what"]:has-text("refresh key")').waitFor();
    expect(await request.locator('[data-field="what"]').textContent()).toContain(`refresh key ${nodeKey}`);
    const requestId = (await request.getAttribute('data-id')) as string;
    await second.getByLabel('Operator key file (for approving)').setInputFiles(keyFile);
    await second.getByRole('button', { name: `Approve request ${requestId}` }).click();
    await second.waitForSelector(`#requests tr[data-id="${requestId}"] [data-field="approvals"]:has-text("1")`);
    expect(await axeViolations(second)).toEqual([]);
    await second.getByRole('button', { name: `Run request ${requestId}` }).click();
    expect(await outcome(second, requestId)).toContain(`request ${requestId} ran: epoch ${epoch + 1}`);
    await second.waitForSelector(`${epochCell}:has-text("${epoch + 1}")`);
    // A reshare from the page (2-of-3 → 3-of-3), approved and run the same way.
    await second.getByLabel('Key', { exact: true }).selectOption(nodeKey);
    await second.getByLabel('New threshold').fill('3');
    await second.getByLabel('New participants (comma-separated)').fill('signer-1, signer-2, signer-3');
    await second.getByRole('button', { name: 'Reshare', exact: true }).click();
    const reshare = second.locator('#requests tr', { hasText: 'reshare key' });
    await reshare.waitFor();
    expect(await reshare.locator('[data-field="what"]').textContent()).toContain(
      `reshare key ${nodeKey} to 3 of signer-1, signer-2, signer-3`,
    );
    const reshareId = (await reshare.getAttribute('data-id')) as string;
    await second.getByRole('button', { name: `Approve request ${reshareId}` }).click();
    await second.waitForSelector(`#requests tr[data-id="${reshareId}"] [data-field="approvals"]:has-text("1")`);
    await second.getByRole('button', { name: `Run request ${reshareId}` }).click();
    expect(await outcome(second, reshareId)).toContain(`request ${reshareId} ran: epoch ${epoch + 2}`);
    await second.waitForSelector(`#keys tr[data-id="${nodeKey}"] [data-field="scheme"]:has-text("3 of 3")`);
    const secretHex = (JSON.parse(readFileSync(keyFile, 'utf8')) as { signSecret: string }).signSecret;
    expect(sent.some((b) => b.includes(secretHex))).toBe(false);
  });
});

/** The activity line a run request ends with: "request <id> ran: …" or an error (a lifecycle run may take a while under load). */
async function outcome(page: Page, id: string): Promise<string> {
  const line = page.locator('#log li', { hasText: new RegExp(`request ${id} ran:|error`) }).first();
  await line.waitFor({ timeout: 120_000 });
  return (await line.textContent()) ?? '';
}

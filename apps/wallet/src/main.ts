/**
 * The Tessera browser wallet: one share of a threshold key in this browser (IndexedDB, sealed by
 * a non-extractable WebCrypto key), on the device SDK. Enrol with an operator's token, create a
 * key with the cluster, reserve an offline allowance, pay while offline (the package as a QR code
 * and as text), come back online, sync and reconcile. `tessera dev` serves it with a
 * `/config.json` naming the cluster's device gateway.
 */
import { address, fromHex } from '@tessera/core';
import { Tessera, type DeviceKeyInfo, type Wallet } from '@tessera/device';
import qrcode from 'qrcode-generator';
import { storeKey } from './key-store.js';

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
};

let wallet: Wallet;
let account: DeviceKeyInfo | undefined;

function log(text: string): void {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  $('log').prepend(li);
}

function fail(e: unknown): void {
  const code = (e as { code?: string }).code;
  log(`error${code ? ` ${code}` : ''}: ${(e as Error).message}`);
}

/** Runs a button's action with the button disabled, errors shown in the activity log. */
function action(id: string, fn: () => Promise<void>): void {
  const b = $<HTMLButtonElement>(id);
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      await fn();
    } catch (e) {
      fail(e);
    } finally {
      b.disabled = false;
    }
  });
}

function network(): void {
  const el = $('network');
  el.textContent = navigator.onLine ? 'Online' : 'Offline — payments still work';
  el.className = navigator.onLine ? 'online' : 'offline';
}

/** What the address of a key is called where it is used. */
const ADDRESS_LABEL: Partial<Record<DeviceKeyInfo['suite'], string>> = {
  ed25519: 'Solana address',
  'secp256k1-tr': 'Bitcoin Taproot address',
};

/** Shows the account last created here (remembered in localStorage), or the last key held. */
async function showAccount(): Promise<void> {
  const keys = await wallet.keys();
  const chosen = localStorage.getItem('tessera-wallet-account');
  account = keys.find((k) => k.keyId === chosen) ?? keys[keys.length - 1];
  const dl = $('account');
  dl.replaceChildren();
  if (!account) return;
  const rows: [string, string][] = [
    ['Key', account.keyId],
    ['Scheme', `${account.suite}, ${account.threshold} of ${account.participants.length}`],
    ['Co-signers', account.participants.filter((p) => p !== wallet.id).join(', ')],
    [ADDRESS_LABEL[account.suite] ?? 'Public key', address(account.suite, fromHex(account.publicKey))],
    ['Epoch', String(account.epoch)],
  ];
  for (const [k, v] of rows) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    dd.dataset.field = k.toLowerCase().replace(/\s+/g, '-');
    dl.append(dt, dd);
  }
  await showAllowance();
}

async function showAllowance(): Promise<void> {
  const s = await wallet.status();
  const k = s.keys.find((x) => x.keyId === account?.keyId);
  $('allowance').textContent = k
    ? `${k.allowance} offline payment${k.allowance === 1 ? '' : 's'} left; ${s.queue.pending} waiting to sync`
    : '';
}

function needAccount(): DeviceKeyInfo {
  if (!account) throw new Error('create a key first');
  return account;
}

async function main(): Promise<void> {
  network();
  addEventListener('online', network);
  addEventListener('offline', network);
  const config = (await (await fetch('/config.json')).json()) as { gateway: string };
  wallet = await Tessera.open({
    gateway: config.gateway,
    storage: 'tessera-wallet',
    key: await storeKey(),
    deviceClass: 'browser',
  });
  wallet.on('allowance', (e) => log(`allowance low: ${e.remaining} offline payments left`));
  wallet.on('sync', (e) => {
    const p = $<HTMLProgressElement>('progress');
    p.max = e.total;
    p.value = e.done;
  });
  wallet.on('link', (e) => {
    $('link').textContent = e.up ? 'Linked to the cluster' : 'Not linked';
  });
  wallet.on('lifecycle', (e) => {
    log(`key ${e.keyId} ${e.previous < 0 ? 'moved to this wallet' : `refreshed to epoch ${e.epoch}`}`);
    void showAccount();
  });
  $<HTMLInputElement>('linked').addEventListener('change', async (ev) => {
    const box = ev.target as HTMLInputElement;
    try {
      if (box.checked) await wallet.connect({ acceptKeygen: true });
      else await wallet.disconnect();
    } catch (e) {
      box.checked = false;
      fail(e);
    }
  });
  wallet.on('package', (e) => log(`payment ${e.packageId.slice(0, 12)}… ${e.state}${e.code ? ` (${e.code})` : ''}`));
  const s = await wallet.status();
  $('device').textContent = s.enrolled ? `Enrolled as ${wallet.id}` : `Device ${wallet.id}, not enrolled yet`;
  await showAccount();

  action('enrol', async () => {
    const token = $<HTMLInputElement>('token').value.trim();
    if (!token) throw new Error('paste the enrolment token first');
    const r = await wallet.enrol(token);
    $('device').textContent = `Enrolled as ${r.device}`;
    log(`enrolled as ${r.device}`);
  });
  action('create', async () => {
    const suite = $<HTMLSelectElement>('suite').value as DeviceKeyInfo['suite'];
    log('creating a key with the cluster…');
    const k = await wallet.createKey({ suite, threshold: 2 });
    log(`key ${k.keyId} created`);
    localStorage.setItem('tessera-wallet-account', k.keyId);
    await showAccount();
  });
  action('reserve', async () => {
    const count = Number($<HTMLInputElement>('count').value);
    const r = await wallet.reserve({ keyId: needAccount().keyId, count });
    log(`reserved ${r.added} offline payments`);
    await showAllowance();
  });
  action('pay', async () => {
    const to = $<HTMLInputElement>('to').value.trim();
    const amount = $<HTMLInputElement>('amount').value.trim();
    if (!to || !amount) throw new Error('say whom to pay and how much');
    const message = new TextEncoder().encode(JSON.stringify({ to, amount }));
    const p = await wallet.pay({ keyId: needAccount().keyId, message });
    const qr = qrcode(0, 'M');
    qr.addData(p.text, 'Alphanumeric');
    qr.make();
    $('qr-image').innerHTML = qr.createSvgTag({ cellSize: 4, margin: 16, scalable: true });
    $('qr').hidden = false;
    $<HTMLTextAreaElement>('package').value = p.text;
    $('package').dataset.packageId = p.packageId;
    log(`payment ${p.packageId.slice(0, 12)}… signed ${navigator.onLine ? '' : 'offline '}and queued`);
    await showAllowance();
  });
  action('sync', async () => {
    const r = await wallet.sync();
    const ul = $('results');
    ul.replaceChildren();
    const item = (cls: string, text: string, data: Record<string, string> = {}) => {
      const li = document.createElement('li');
      li.className = cls;
      li.textContent = text;
      Object.assign(li.dataset, data);
      ul.append(li);
    };
    for (const c of r.completed)
      item('completed', `${c.packageId.slice(0, 12)}… completed by ${c.signers.join(' + ')}`, {
        packageId: c.packageId,
        signature: c.signature,
      });
    for (const c of r.pending) item('pending', `${c.packageId.slice(0, 12)}… waiting (${c.code})`);
    for (const c of r.failed) item('failed', `${c.packageId.slice(0, 12)}… refused (${c.code})`);
    if (!ul.children.length) item('done', 'nothing to deliver');
    const rep = await wallet.reconcile();
    const cluster = rep.cluster?.compared
      ? `the cluster's record agrees${rep.cluster.mismatches.length ? ` except ${rep.cluster.mismatches.length}` : ''}`
      : `not compared with the cluster (${rep.cluster?.reason ?? 'offline'})`;
    $('report').textContent =
      `Reconciled: ${rep.settled.length} settled, ${rep.refused.length} refused, ${rep.pending.length} pending; ${cluster}.`;
    await showAllowance();
  });
  document.body.dataset.ready = 'true';
}

main().catch(fail);

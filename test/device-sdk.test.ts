/**
 * The app developer's SDK surface against the real device gateway and signer engines
 * (device-harness.ts): `Tessera.open` bound to one gateway, a store sealed by a non-extractable
 * WebCrypto key or a keystore adapter, an injected transport that carries every call, and the
 * events an app shows its user (link, sync progress, package outcomes, allowance low).
 */
import { randomBytes } from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Tessera,
  TransportError,
  fetchTransport,
  type DeviceErrorCode,
  type DeviceEvents,
  type KeyProvider,
  type Transport,
  type Wallet,
} from '@tessera/device';
import { fromHex } from '@tessera/core';
import { readFileSync } from 'node:fs';
import { cleanup, closers, deviceCluster, tempDir } from './device-harness.js';
import { solanaAddress, solanaTransfer } from './solana.js';
import { payOffline } from '../packages/device/examples/pay-offline.js';

afterAll(cleanup);

const msg = () => new Uint8Array(randomBytes(32));
const aesKey = (extractable = false) =>
  crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, extractable, ['encrypt', 'decrypt']);

async function code(f: () => Promise<unknown>): Promise<DeviceErrorCode> {
  try {
    await f();
  } catch (e) {
    return (e as { code: DeviceErrorCode }).code;
  }
  throw new Error('expected a failure');
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Records every event of a wallet, by type. */
function recorder(w: Wallet) {
  const seen: { [K in keyof DeviceEvents]: DeviceEvents[K][] } = {
    link: [],
    sync: [],
    package: [],
    allowance: [],
    risk: [],
    lifecycle: [],
  };
  for (const t of Object.keys(seen) as (keyof DeviceEvents)[]) w.on(t, (e: unknown) => (seen[t] as unknown[]).push(e));
  return seen;
}

/** A keystore adapter as an iOS/Android native module would be: its own key never leaves it. */
function keystore(): KeyProvider & { fail: boolean } {
  const secret = new Uint8Array(randomBytes(32));
  const p = {
    fail: false,
    async wrap(dataKey: Uint8Array) {
      const nonce = new Uint8Array(randomBytes(24));
      return new Uint8Array([...nonce, ...xchacha20poly1305(secret, nonce).encrypt(dataKey)]);
    },
    async unwrap(wrapped: Uint8Array) {
      if (p.fail) throw new Error('user authentication required');
      return xchacha20poly1305(secret, wrapped.subarray(0, 24)).decrypt(wrapped.subarray(24));
    },
  };
  return p;
}

describe('device SDK: Tessera.open', () => {
  it('one wallet bound to its gateway, sealed by a non-extractable WebCrypto key: enrol, key, allowance, pay offline, sync, reconcile — every call through the transport, every step an event', async () => {
    const c = await deviceCluster(3);
    const ops: string[] = [];
    const transport: Transport = (req) => {
      ops.push(req.url.slice(req.url.lastIndexOf('/') + 1));
      return fetchTransport(req);
    };
    const storage = tempDir();
    const key = await aesKey();
    const wallet = await Tessera.open({ gateway: c.url, storage, key, transport, id: 'phone-sdk', allowanceLowAt: 1 });
    const events = recorder(wallet);
    expect(wallet.id).toBe('phone-sdk');
    const { token } = await c.coordinator.issueEnrolmentToken();
    expect(await wallet.enrol(token)).toEqual({ device: 'phone-sdk' });
    const k = await wallet.createKey({ suite: 'ed25519', threshold: 2, with: ['signer-1', 'signer-2'] });
    expect((await wallet.reserve({ keyId: k.keyId, count: 3 })).allowance).toBe(3);

    const m1 = msg();
    const m2 = msg();
    const p1 = await wallet.pay({ keyId: k.keyId, message: m1 });
    expect(events.allowance).toEqual([]);
    const p2 = await wallet.pay({ keyId: k.keyId, message: m2 });
    // One left: at the app's threshold.
    expect(events.allowance).toEqual([{ keyId: k.keyId, remaining: 1 }]);
    expect(p2.text.length).toBeGreaterThan(0);

    const r = await wallet.sync();
    expect(r.completed.map((x) => x.packageId)).toEqual([p1.packageId, p2.packageId]);
    expect(events.sync.map((e) => [e.done, e.total, e.state])).toEqual([
      [1, 2, 'completed'],
      [2, 2, 'completed'],
    ]);
    expect(events.package.map((e) => e.packageId).sort()).toEqual([p1.packageId, p2.packageId].sort());
    for (const e of events.package) {
      expect(e.state).toBe('completed');
      const m = e.packageId === p1.packageId ? m1 : m2;
      expect(ed25519.verify(fromHex(e.signature as string), m, fromHex(k.publicKey))).toBe(true);
    }
    const report = await wallet.reconcile();
    expect(report.cluster).toMatchObject({ compared: true, mismatches: [] });
    expect(report.settled).toHaveLength(2);
    // Every cluster call went through the app's transport.
    expect(new Set(ops)).toEqual(new Set(['enrol', 'poll', 'keygen', 'reserve', 'submit', 'packages']));
    const journal = (await wallet.journal()).length;
    await wallet.close();

    // The same CryptoKey opens it again; another key, an extractable key or raw bytes do not.
    const again = await Tessera.open({ gateway: c.url, storage, key });
    closers.push(() => again.close());
    expect((await again.keys()).map((x) => x.keyId)).toEqual([k.keyId]);
    expect(again.id).toBe('phone-sdk');
    expect(await again.journal()).toHaveLength(journal);
    await again.close();
    expect(await code(async () => Tessera.open({ gateway: c.url, storage, key: await aesKey() }))).toBe('STORE_KEY');
    expect(await code(async () => Tessera.open({ gateway: c.url, storage, key: await aesKey(true) }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(
      await code(async () => Tessera.open({ gateway: c.url, storage, key: new Uint8Array(randomBytes(32)) })),
    ).toBe('STORE_KEY');
    // None of the refusals left the store locked or changed: the right key still opens it.
    const last = await Tessera.open({ gateway: c.url, storage, key });
    expect((await last.status()).queue).toEqual({ pending: 0, completed: 2, failed: 0 });
    await last.close();
  });

  it('a keystore adapter seals the store; a keystore that refuses to unwrap is STORE_KEY; a store sealed with raw bytes is not opened by an adapter', async () => {
    const c = await deviceCluster(2);
    const ks = keystore();
    const storage = tempDir();
    const w = await Tessera.open({ gateway: c.url, storage, key: ks, id: 'phone-keystore' });
    const { token } = await c.coordinator.issueEnrolmentToken();
    await w.enrol(token);
    await w.close();
    const again = await Tessera.open({ gateway: c.url, storage, key: ks });
    expect(again.id).toBe('phone-keystore');
    expect((await again.status()).enrolled).toBe(true);
    await again.close();
    ks.fail = true;
    expect(await code(() => Tessera.open({ gateway: c.url, storage, key: ks }))).toBe('STORE_KEY');
    expect(await code(() => Tessera.open({ gateway: c.url, storage, key: keystore() }))).toBe('STORE_KEY');

    // An adapter that cannot unwrap what it wraps is refused before the store depends on it.
    const broken: KeyProvider = { wrap: async (k) => k.map((b) => b ^ 1), unwrap: async () => new Uint8Array(3) };
    const fresh = tempDir();
    expect(await code(() => Tessera.open({ gateway: c.url, storage: fresh, key: broken }))).toBe('INVALID_ARGUMENT');
    const ok = await Tessera.open({ gateway: c.url, storage: fresh, key: keystore(), id: 'phone-fresh' });
    expect(ok.id).toBe('phone-fresh');
    await ok.close();

    const rawDir = tempDir();
    const raw = await Tessera.open({ gateway: c.url, storage: rawDir, key: new Uint8Array(randomBytes(32)) });
    await raw.close();
    expect(await code(() => Tessera.open({ gateway: c.url, storage: rawDir, key: keystore() }))).toBe('STORE_KEY');
    expect(await code(() => Tessera.open({ gateway: c.url, storage: rawDir, key: { wrap: 1 } as never }))).toBe(
      'INVALID_ARGUMENT',
    );
  });

  it('the network is what the transport says: a cut is link down, packages signed meanwhile wait in order, and go once when it is back', async () => {
    const c = await deviceCluster(3);
    let online = true;
    const inflight = new Set<AbortController>();
    // The app's transport: fetch, unless the phone is offline (nothing leaves; open calls break).
    const transport: Transport = async (req) => {
      if (!online) throw new TransportError(false, 'airplane mode');
      const ctl = new AbortController();
      const onAbort = () => ctl.abort();
      req.signal.addEventListener('abort', onAbort);
      inflight.add(ctl);
      try {
        return await fetchTransport({ ...req, signal: ctl.signal });
      } catch (e) {
        if (req.signal.aborted) throw e;
        throw new TransportError(true, 'connection lost');
      } finally {
        inflight.delete(ctl);
        req.signal.removeEventListener('abort', onAbort);
      }
    };
    const cut = () => {
      online = false;
      for (const ctl of inflight) ctl.abort();
    };
    const w = await Tessera.open({
      gateway: c.url,
      storage: tempDir(),
      key: await aesKey(),
      transport,
      id: 'phone-cut',
    });
    closers.push(() => w.close());
    const events = recorder(w);
    const { token } = await c.coordinator.issueEnrolmentToken();
    await w.enrol(token);
    const k = await w.createKey({ suite: 'ed25519', threshold: 2, with: ['signer-1', 'signer-3'] });
    await w.reserve({ keyId: k.keyId, count: 4 });
    // The key generation linked the device for its duration: up, then down when it ended.
    expect(events.link).toEqual([{ up: true }, { up: false }]);
    events.link.length = 0;
    await w.connect();
    expect(events.link).toEqual([{ up: true }]);

    cut();
    await until(() => events.link.length === 2, 'the link to drop');
    expect(events.link[1]).toEqual({ up: false });
    const paid = [];
    for (let i = 0; i < 3; i++) paid.push(await w.pay({ keyId: k.keyId, message: msg() }));
    const offline = await w.sync();
    expect(offline.completed).toEqual([]);
    expect(offline.pending.map((p) => [p.packageId, p.code])).toEqual(paid.map((p) => [p.packageId, 'UNAVAILABLE']));
    expect(events.package).toEqual([]);
    // Offline, the local report still stands; the cluster comparison says why it is missing.
    expect((await w.reconcile()).cluster).toMatchObject({ compared: false });

    online = true;
    await until(() => events.link.length === 3, 'the link to come back');
    expect(events.link[2]).toEqual({ up: true });
    const back = await w.sync();
    expect(back.completed.map((x) => x.packageId)).toEqual(paid.map((p) => p.packageId));
    expect(events.package.filter((e) => e.state === 'completed')).toHaveLength(3);
    // A second sync has nothing left to deliver: each completed once.
    expect((await w.sync()).completed).toEqual([]);
    expect((await w.reconcile()).cluster).toMatchObject({ compared: true, mismatches: [] });
    await w.disconnect();
  });

  it("the guide's example runs as written: enrol, key, allowance, offline payment checked by the merchant, sync, reconcile, error code, backup", async () => {
    const c = await deviceCluster(3);
    const { token } = await c.coordinator.issueEnrolmentToken();
    const out = await payOffline({ gateway: c.url, token, storage: tempDir() });
    expect(out.checked).toMatchObject({ packageId: out.payment.packageId, keyId: out.account.keyId });
    expect(out.synced.completed.map((x) => x.packageId)).toEqual([out.payment.packageId]);
    const sig = fromHex(out.synced.completed[0]?.signature as string);
    expect(ed25519.verify(sig, new TextEncoder().encode('pay 12.50 to shop-7'), fromHex(out.account.publicKey))).toBe(
      true,
    );
    expect(out.report.cluster).toMatchObject({ compared: true, mismatches: [] });
    expect(out.refused).toBe('NOT_FOUND');
    expect(out.backup.length).toBeGreaterThan(0);
    // The guide shows this very code: README and example cannot drift apart.
    const example = readFileSync(new URL('../packages/device/examples/pay-offline.ts', import.meta.url), 'utf8');
    const body = example.slice(example.indexOf('export async function payOffline'));
    expect(readFileSync(new URL('../packages/device/README.md', import.meta.url), 'utf8')).toContain(body.trim());
  });

  it('risk rules while offline: velocity per rolling hour (warned, then refused, nothing spent), integrity required and recorded', async () => {
    const c = await deviceCluster(3);
    let skew = 0;
    const w = await Tessera.open({
      gateway: c.url,
      storage: tempDir(),
      key: await aesKey(),
      id: 'phone-risk',
      clock: () => Date.now() + skew,
      risk: { maxPaymentsPerHour: 3, warnAt: 0.6, requireIntegrity: true },
    });
    closers.push(() => w.close());
    const events = recorder(w);
    const { token } = await c.coordinator.issueEnrolmentToken();
    await w.enrol(token);
    const k = await w.createKey({ suite: 'ed25519', threshold: 2, with: ['signer-1', 'signer-2'] });
    await w.reserve({ keyId: k.keyId, count: 6, ttlMs: 3 * 3_600_000 });
    const pass = { verdict: 'pass' as const, detail: 'play-integrity:MEETS_STRONG_INTEGRITY' };
    const allowance = async () => (await w.status()).keys[0]?.allowance;

    // Integrity: none, or a failing verdict, signs nothing.
    expect(await code(() => w.pay({ keyId: k.keyId, message: msg() }))).toBe('POLICY_DENIED');
    expect(await code(() => w.pay({ keyId: k.keyId, message: msg(), integrity: { verdict: 'fail' } }))).toBe(
      'POLICY_DENIED',
    );
    expect(await code(() => w.pay({ keyId: k.keyId, message: msg(), integrity: { verdict: 'maybe' } as never }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(await allowance()).toBe(6);

    // Velocity: 3 an hour; warned from 2 (0.6 × 3, rounded up); the 4th refused, nothing spent.
    for (let i = 0; i < 3; i++) await w.pay({ keyId: k.keyId, message: msg(), integrity: pass });
    expect(events.risk).toEqual([
      { rule: 'velocity', count: 2, limit: 3 },
      { rule: 'velocity', count: 3, limit: 3 },
    ]);
    expect(await code(() => w.pay({ keyId: k.keyId, message: msg(), integrity: pass }))).toBe('POLICY_DENIED');
    expect(await allowance()).toBe(3);
    // An hour later the window has moved on.
    skew = 3_600_001;
    await w.pay({ keyId: k.keyId, message: msg(), integrity: pass });
    expect(await allowance()).toBe(2);

    // The verdict is in each payment's journal entry, under the chain's hash.
    const signed = (await w.journal()).filter((e) => e.kind === 'signed');
    expect(signed).toHaveLength(4);
    expect(signed.every((e) => e.integrity === 'pass:play-integrity:MEETS_STRONG_INTEGRITY')).toBe(true);
    expect((await w.reconcile({ local: true })).journal.verified).toBe(true);
  });

  it('destination rules: a payee on the deny list, or off the allow list, is refused before signing; a bare message too', async () => {
    const c = await deviceCluster(3);
    const ALICE = new Uint8Array(32).fill(11);
    const MALLORY = new Uint8Array(32).fill(12);
    const w = await Tessera.open({
      gateway: c.url,
      storage: tempDir(),
      key: await aesKey(),
      id: 'phone-dest',
      risk: { allowTo: [solanaAddress(ALICE), solanaAddress(MALLORY)], denyTo: [solanaAddress(MALLORY)] },
    });
    closers.push(() => w.close());
    const { token } = await c.coordinator.issueEnrolmentToken();
    await w.enrol(token);
    const k = await w.createKey({ suite: 'ed25519', threshold: 2, with: ['signer-1', 'signer-2'] });
    await w.reserve({ keyId: k.keyId, count: 2 });
    const pk = fromHex(k.publicKey);
    expect(await code(() => w.pay({ keyId: k.keyId, payment: solanaTransfer(pk, MALLORY, 10n).payment }))).toBe(
      'POLICY_DENIED',
    );
    expect(
      await code(() =>
        w.pay({ keyId: k.keyId, payment: solanaTransfer(pk, new Uint8Array(32).fill(13), 10n).payment }),
      ),
    ).toBe('POLICY_DENIED');
    expect(await code(() => w.pay({ keyId: k.keyId, message: msg() }))).toBe('POLICY_DENIED');
    // Nothing was spent by the refusals; the listed payee is paid.
    expect((await w.status()).keys[0]?.allowance).toBe(2);
    const p = await w.pay({ keyId: k.keyId, payment: solanaTransfer(pk, ALICE, 10n).payment });
    expect(p.payment).toMatchObject({ chain: 'solana', to: [solanaAddress(ALICE)] });
    expect((await w.status()).keys[0]?.allowance).toBe(1);
  });
});

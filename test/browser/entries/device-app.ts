/**
 * Browser entry for device.browser.test.ts: a page that uses the device SDK (@tessera/device,
 * bundled from source by test/browser/harness.ts; `level` resolves to browser-level, i.e.
 * IndexedDB). Exposes `window.app`, whose functions the test drives with page.evaluate:
 * setup (open, init, enrol, keygen, reserve), sign (offline), sync, status, and probe (a bare
 * fetch to the gateway, to prove the network cut is real). Everything crossing back to Node is
 * JSON-friendly (hex strings, numbers).
 */
import { Device, type SyncResult } from '@tessera/device';
import { fromHex, toHex } from '@tessera/core';

export interface SetupResult {
  device: string;
  keyId: string;
  publicKey: string;
  participants: string[];
  allowance: number;
  added: number;
  location: string;
}

export interface SignResult {
  packageId: string;
  /** The package bytes, hex. */
  bytes: string;
  length: number;
  text: string;
}

export type DeviceStatus = Awaited<ReturnType<Device['status']>>;

export interface DeviceApp {
  setup(gatewayUrl: string, token: string): Promise<SetupResult>;
  sign(keyIdHex: string, messageHex: string): Promise<SignResult>;
  sync(gatewayUrl: string): Promise<SyncResult>;
  status(): Promise<DeviceStatus>;
  probe(url: string): Promise<{ ok: true; status: number } | { ok: false; error: string }>;
  close(): Promise<void>;
}

let device: Device | undefined;

function current(): Device {
  if (!device) throw new Error('device not set up: call app.setup first');
  return device;
}

const app: DeviceApp = {
  async setup(gatewayUrl, token) {
    if (device) throw new Error('already set up');
    // The app's storage key (in a real app: from the platform keystore) and a fresh IndexedDB name.
    const storageKey = crypto.getRandomValues(new Uint8Array(32));
    const location = `tessera-device-${toHex(crypto.getRandomValues(new Uint8Array(8)))}`;
    device = await Device.open({ location, storageKey });
    await device.init('browser-phone');
    const { device: enrolled } = await device.enrol(gatewayUrl, token);
    const key = await device.keygen(gatewayUrl, { suite: 'ed25519', threshold: 2, with: ['signer-1', 'signer-2'] });
    const r = await device.reserve(gatewayUrl, { keyId: key.keyId, count: 2 });
    return {
      device: enrolled,
      keyId: key.keyId,
      publicKey: key.publicKey,
      participants: key.participants,
      allowance: r.allowance,
      added: r.added,
      location,
    };
  },

  async sign(keyIdHex, messageHex) {
    const p = await current().signOffline({ keyId: keyIdHex, message: fromHex(messageHex) });
    return { packageId: p.packageId, bytes: toHex(p.bytes), length: p.bytes.length, text: p.text };
  },

  sync: (gatewayUrl) => current().sync(gatewayUrl),

  status: () => current().status(),

  async probe(url) {
    try {
      // OPTIONS: the gateway answers 204 (CORS preflight route), so an online probe logs no error.
      const res = await fetch(url, { method: 'OPTIONS' });
      await res.arrayBuffer();
      return { ok: true, status: res.status };
    } catch (e) {
      return { ok: false, error: `${(e as Error).name}: ${(e as Error).message}` };
    }
  },

  async close() {
    const d = device;
    device = undefined;
    await d?.close();
  },
};

(globalThis as unknown as { app: DeviceApp }).app = app;

/**
 * The device SDK against the coordinator's real device gateway (HTTP on loopback, port 0) and
 * real signer engines on real LevelDB stores, in one process: enrolment, DKG with a device over
 * the long-poll link, reservations, offline signing, exactly-once completion, refusals, two
 * devices, backup and restore. The multi-process flow (dev cluster stopped while the device
 * signs) is in device-cluster.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { ParticipantIdentity, decodeOfflinePackage, encodeOfflinePackage, fromHex, getSuite, toHex, type LinkResult, type LinkTask, type SuiteId } from '@tessera/core';
import { SealedStore, kekFromBytes } from '@tessera/store';
import { SignerEngine } from '@tessera/signer';
import { Coordinator, startDeviceGateway, type ParticipantHandle, type StartedGateway } from '@tessera/coordinator';
import { Device, DeviceError, checkPackage } from '@tessera/device';

const dirs: string[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tessera-device-'));
  dirs.push(d);
  return d;
}

async function openStore(): Promise<SealedStore> {
  const s = await SealedStore.open(tempDir(), kekFromBytes(new Uint8Array(randomBytes(32))));
  closers.push(() => s.close());
  return s;
}

export async function deviceCluster(n = 3, opts: { clock?: () => number; maxReservations?: number } = {}) {
  const signers: SignerEngine[] = [];
  for (let i = 1; i <= n; i++) {
    signers.push(new SignerEngine({
      identity: ParticipantIdentity.generate(`signer-${i}`),
      store: await openStore(),
      policy: { allowKeygen: true, requesters: [], devices: { maxReservations: opts.maxReservations ?? 64 } },
      ...(opts.clock ? { clock: opts.clock } : {}),
    }));
  }
  const coordinator = new Coordinator({ store: await openStore() });
  await coordinator.load();
  const down = new Set<string>();
  const tamper = new Map<string, (r: LinkResult, t: Omit<LinkTask, 'taskId'>) => LinkResult>();
  let taskId = 0;
  for (const s of signers) {
    const handle: ParticipantHandle = {
      info: s.identity.public,
      connectedSince: Date.now(),
      async call(task) {
        if (down.has(s.id)) throw new Error('link down');
        const r = await s.handle({ ...task, taskId: ++taskId });
        return tamper.get(s.id)?.(r, task) ?? r;
      },
    };
    coordinator.register(handle);
  }
  const gateway: StartedGateway = await startDeviceGateway({ coordinator, port: 0 });
  closers.push(() => gateway.close());
  return { signers, coordinator, gateway, url: gateway.url, down, tamper };
}

async function newDevice(id: string): Promise<{ device: Device; dir: string; key: Uint8Array }> {
  const dir = tempDir();
  const key = new Uint8Array(randomBytes(32));
  const device = await Device.open({ location: dir, storageKey: key });
  closers.push(() => device.close());
  await device.init(id);
  return { device, dir, key };
}

async function enrolled(c: Awaited<ReturnType<typeof deviceCluster>>, id: string) {
  const d = await newDevice(id);
  const { token } = await c.coordinator.issueEnrolmentToken();
  await d.device.enrol(c.url, token);
  return d;
}

describe('device SDK with the gateway', () => {
  for (const suite of ['ed25519', 'secp256k1-tr'] as SuiteId[]) {
    it(`${suite}: enrol, keygen with the device, reserve, sign offline, sync exactly once`, async () => {
      const c = await deviceCluster(3);
      const { device } = await enrolled(c, `phone-${suite}`);
      const key = await device.keygen(c.url, { suite, threshold: 2, with: ['signer-1', 'signer-2'] });
      expect(key.participants).toEqual([`phone-${suite}`, 'signer-1', 'signer-2'].sort());
      const r = await device.reserve(c.url, { keyId: key.keyId, count: 3 });
      expect(r.added).toBe(3);
      expect(r.allowance).toBe(3);
      const msg = new Uint8Array(randomBytes(32));
      const p = await device.signOffline({ keyId: key.keyId, message: msg });
      expect(p.bytes.length).toBeLessThan(400);
      // The merchant's offline check with the key's public record.
      const checked = checkPackage(await device.keyRecord(key.keyId), p.text);
      expect(checked.packageId).toBe(p.packageId);
      expect(checked.device).toBe(`phone-${suite}`);
      const s = await device.sync(c.url);
      expect(s.pending).toEqual([]);
      expect(s.completed).toHaveLength(1);
      const sig = fromHex((s.completed[0] as { signature: string }).signature);
      expect(getSuite(suite).verify(sig, msg, fromHex(key.publicKey))).toBe(true);
      // Delivered again (the merchant): same signature, one completion.
      const again = await c.coordinator.completePackage(p.bytes);
      expect(again.alreadyCompleted).toBe(true);
      expect(toHex(again.signature)).toBe(toHex(sig));
      expect((await device.status()).keys[0]?.allowance).toBe(2);
    });
  }
});

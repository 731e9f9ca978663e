/**
 * An in-process device cluster for the device SDK tests: the coordinator's real device gateway
 * (HTTP on loopback, port 0) and real signer engines on real LevelDB stores, in one process, with
 * switches to take a signer's link down or tamper with its answers; enrolled devices on their own
 * stores. Everything opened is closed and removed by {@link cleanup} (call it in afterAll).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ParticipantIdentity, type LinkResult, type LinkTask } from '@tessera/core';
import { SealedStore, kekFromBytes } from '@tessera/store';
import { SignerEngine } from '@tessera/signer';
import { Registry } from 'prom-client';
import {
  Coordinator,
  coordinatorMetrics,
  startDeviceGateway,
  type CoordinatorEvent,
  type ParticipantHandle,
  type StartedGateway,
} from '@tessera/coordinator';
import { Device } from '@tessera/device';
import { operators } from './authority.js';

const dirs: string[] = [];
export const closers: (() => Promise<unknown>)[] = [];

/** Closes everything the harness opened and removes its directories. */
export async function cleanup(): Promise<void> {
  for (const c of closers.reverse()) await c().catch(() => {});
  closers.length = 0;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tessera-device-'));
  dirs.push(d);
  return d;
}

export async function openStore(): Promise<SealedStore> {
  const s = await SealedStore.open(tempDir(), kekFromBytes(new Uint8Array(randomBytes(32))));
  closers.push(() => s.close());
  return s;
}

/** The cluster id of these tests' clusters (raw calls below name it; gateway.test.ts covers distinct ids). */
export const TEST_CLUSTER = 'device-test';

export async function deviceCluster(
  n = 3,
  opts: {
    clock?: () => number;
    coordinatorClock?: () => number;
    /** The gateway's clock (a device call is accepted within a few minutes of it). */
    gatewayClock?: () => number;
    maxReservations?: number;
    /** The signers' most presignatures (and open sessions) per key. */
    maxFreshPerKey?: number;
    /** The signers' `devices.maxCaps` policy. */
    maxCaps?: Record<string, string>;
    /** The signers' `devices.maxDeviceCaps` policy. */
    maxDeviceCaps?: Record<string, string>;
    /** The signers' `devices.denyTo` list. */
    denyTo?: string[];
    /** The signers' `devices.requireIntegrity`. */
    requireIntegrity?: boolean;
    onEvent?: (e: CoordinatorEvent) => void;
  } = {},
) {
  const signers: SignerEngine[] = [];
  /** Each signer's store, in the signers' order (tests read what a node keeps). */
  const stores: SealedStore[] = [];
  for (let i = 1; i <= n; i++) {
    const store = await openStore();
    stores.push(store);
    signers.push(
      new SignerEngine({
        identity: ParticipantIdentity.generate(`signer-${i}`),
        store,
        policy: {
          allowKeygen: true,
          allowUnpinnedPeers: true,
          operators,
          requesters: [],
          devices: {
            maxReservations: opts.maxReservations ?? 64,
            ...(opts.maxCaps ? { maxCaps: opts.maxCaps } : {}),
            ...(opts.maxDeviceCaps ? { maxDeviceCaps: opts.maxDeviceCaps } : {}),
            ...(opts.denyTo ? { denyTo: opts.denyTo } : {}),
            ...(opts.requireIntegrity ? { requireIntegrity: true } : {}),
          },
        },
        ...(opts.clock ? { clock: opts.clock } : {}),
        ...(opts.maxFreshPerKey ? { maxFreshPerKey: opts.maxFreshPerKey } : {}),
      }),
    );
  }
  const coordinator = new Coordinator({
    store: await openStore(),
    clusterId: TEST_CLUSTER,
    ...(opts.coordinatorClock ? { clock: opts.coordinatorClock } : {}),
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
  });
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
  const gateway: StartedGateway = await startDeviceGateway({
    coordinator,
    port: 0,
    ...(opts.gatewayClock ? { clock: opts.gatewayClock } : {}),
  });
  closers.push(() => gateway.close());
  const signer = (id: string): SignerEngine => {
    const s = signers.find((x) => x.id === id);
    if (!s) throw new Error(`no signer ${id}`);
    return s;
  };
  return { signers, stores, signer, coordinator, gateway, url: gateway.url, down, tamper };
}

export type Cluster = Awaited<ReturnType<typeof deviceCluster>>;

export async function newDevice(
  id: string,
  opts: { clock?: () => number } = {},
): Promise<{ device: Device; dir: string; key: Uint8Array }> {
  const dir = tempDir();
  const key = new Uint8Array(randomBytes(32));
  const device = await Device.open({ location: dir, storageKey: key, ...(opts.clock ? { clock: opts.clock } : {}) });
  closers.push(() => device.close());
  await device.init(id);
  return { device, dir, key };
}

export async function enrolled(c: Cluster, id: string, opts: { clock?: () => number; deviceClass?: string } = {}) {
  const d = await newDevice(id, opts.clock ? { clock: opts.clock } : {});
  const { token } = await c.coordinator.issueEnrolmentToken();
  await d.device.enrol(c.url, token, opts.deviceClass ? { deviceClass: opts.deviceClass } : {});
  return d;
}

/** The coordinator's metrics in a registry of their own (what `tessera status` reads). */
export function withMetrics() {
  const registry = new Registry();
  const metrics = coordinatorMetrics(registry, { version: 'test' });
  return { registry, metrics };
}

/** Feeds `m` what the coordinator's process would: its devices and their classes. */
export function observe(m: ReturnType<typeof withMetrics>['metrics'], c: Cluster) {
  m.observe({
    inFlight: () => 0,
    connected: () => [],
    rosterParticipants: () => [],
    poolSize: () => 0,
    keys: () => [],
    isDevice: (id) => c.coordinator.device(id) !== undefined,
    deviceClass: (id) => c.coordinator.deviceClass(id),
    pendingPackages: () => 0,
    now: () => Date.now(),
  });
}

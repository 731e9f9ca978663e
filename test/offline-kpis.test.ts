/**
 * The offline-payment KPIs (coordinator/src/offline-kpis.ts), from real packages through the real
 * device gateway and signer engines (device-harness.ts), read back the way `tessera status` and
 * the console read them (cli/src/kpis.ts): success rate by device class (never a device label),
 * each package counted once however often it is delivered, allowance utilisation, and the
 * key-compromise indicator moved by a package on a reservation a cloned store already spent.
 * The reconnect minute is pure bookkeeping over time: checked with a stepped clock.
 */
import { cpSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { offlineKpiMetrics } from '@tessera/coordinator';
import { offlineKpis } from '@tessera/cli';
import { Device } from '@tessera/device';
import {
  cleanup,
  closers,
  deviceCluster,
  enrolled,
  newDevice,
  observe,
  tempDir,
  withMetrics,
} from './device-harness.js';

afterAll(cleanup);

const msg = () => new Uint8Array(randomBytes(32));

describe('offline KPIs', () => {
  it('success by device class, each package once, allowance used, a reused reservation raises the compromise indicator', async () => {
    const { registry, metrics } = withMetrics();
    const c = await deviceCluster(3, { onEvent: (e) => metrics.onEvent(e) });
    observe(metrics, c);

    // An unknown class is refused before the token is spent: the same token then works.
    const pos = await newDevice('till-1');
    const { token } = await c.coordinator.issueEnrolmentToken();
    await expect(pos.device.enrol(c.url, token, { deviceClass: 'toaster' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await pos.device.enrol(c.url, token, { deviceClass: 'pos' });
    expect(c.coordinator.deviceClass('till-1')).toBe('pos');

    const phone = await enrolled(c, 'phone-kpi', { deviceClass: 'ios' });
    const pk = await phone.device.keygen(c.url, { suite: 'ed25519', threshold: 2, with: ['signer-1', 'signer-2'] });
    await phone.device.reserve(c.url, { keyId: pk.keyId, count: 3 });
    for (let i = 0; i < 2; i++) await phone.device.signOffline({ keyId: pk.keyId, message: msg() });
    expect((await phone.device.sync(c.url)).completed).toHaveLength(2);

    // An Android tablet whose store was cloned: the clone spends a reservation a second time.
    const tablet = await enrolled(c, 'tablet-kpi', { deviceClass: 'android' });
    const tk = await tablet.device.keygen(c.url, { suite: 'ed25519', threshold: 2, with: ['signer-2', 'signer-3'] });
    await tablet.device.reserve(c.url, { keyId: tk.keyId, count: 1 });
    await tablet.device.close();
    const cloneDir = tempDir();
    cpSync(tablet.dir, cloneDir, { recursive: true });
    const original = await Device.open({ location: tablet.dir, storageKey: tablet.key });
    closers.push(() => original.close());
    await original.signOffline({ keyId: tk.keyId, message: msg() });
    expect((await original.sync(c.url)).completed).toHaveLength(1);
    const clone = await Device.open({ location: cloneDir, storageKey: tablet.key });
    closers.push(() => clone.close());
    const cloned = await clone.signOffline({ keyId: tk.keyId, message: msg() });
    expect((await clone.sync(c.url)).failed).toEqual([
      expect.objectContaining({ packageId: cloned.packageId, code: 'RESERVATION_USED' }),
    ]);
    // Delivered again (a merchant, a retry): refused again, counted once as an outcome.
    await expect(c.coordinator.completePackage(cloned.bytes)).rejects.toMatchObject({ code: 'RESERVATION_USED' });
    // And a completed package delivered again is a re-delivery, not a second completion.
    const q = await phone.device.queue();
    await c.coordinator.completePackage(Buffer.from(q[0]?.bytes as string, 'hex'));

    const text = await registry.metrics();
    expect(text).not.toMatch(/phone-kpi|tablet-kpi/); // no device label anywhere
    const k = offlineKpis(text);
    expect(k.completed).toBe(3);
    expect(k.redelivered).toBe(1);
    expect(k.refused).toBe(1);
    expect(k.successRate).toEqual({ ios: 1, android: 0.5 });
    expect(k.reservationsIssued).toBe(4);
    expect(k.allowanceUtilisation).toBeCloseTo(3 / 4);
    expect(k.compromiseIndicators).toEqual({ reservationReuse: 2, culprits: 0, packagesPastCap: 0 });
    expect(text).toMatch(/tessera_offline_outcomes_total\{device_class="android",outcome="refused"\} 1/);

    // The operators' package list (ListPackages): every decision once, newest first, by state.
    const all = await c.coordinator.listPackages();
    expect(all.packages).toHaveLength(4);
    expect(all.packages.map((p) => p.at)).toEqual([...all.packages.map((p) => p.at)].sort((a, b) => b - a));
    expect((await c.coordinator.listPackages({ state: 'refused' })).packages).toEqual([
      expect.objectContaining({
        packageId: cloned.packageId,
        device: 'tablet-kpi',
        state: 'refused',
        code: 'RESERVATION_USED',
      }),
    ]);
    expect((await c.coordinator.listPackages({ device: 'phone-kpi' })).packages.map((p) => p.state)).toEqual([
      'completed',
      'completed',
    ]);
    expect((await c.coordinator.listPackages({ limit: 1 })).truncated).toBe(true);
    await expect(c.coordinator.listPackages({ state: 'lost' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('the minute after a reconnect: throughput and time to completion, by a stepped clock', async () => {
    let now = 1_000_000;
    const registry = new Registry();
    const kpis = offlineKpiMetrics(
      [registry],
      () => 'ios',
      () => now,
    );
    const done = (device: string) => kpis.onPackage({ device, packageId: `${device}-${now}`, ok: true, cached: false });
    // Device a comes back and delivers 6 packages over 10 s; device b delivers 1.
    for (let i = 0; i < 6; i++) {
      done('a');
      now += 2_000;
    }
    done('b');
    // Within the minute nothing is closed yet; past it, a scrape closes both minutes.
    let k = offlineKpis(await registry.metrics());
    expect(k.reconnectThroughputMean).toBeNull();
    now += 60_000;
    k = offlineKpis(await registry.metrics());
    expect(k.reconnectThroughputMean).toBeCloseTo((6 / 60 + 1 / 60) / 2);
    const text = await registry.metrics();
    expect(text).toMatch(/tessera_offline_reconnect_to_completion_seconds_count 7/);
    expect(text).toMatch(/tessera_offline_reconnect_to_completion_seconds_sum 30/); // 0+2+4+6+8+10, and 0 for b
    // 62 s after its last package, a is back: a new minute opens (0 s); a package 30 s later
    // falls in that minute (30 s), and does not open another.
    done('a');
    now += 30_000;
    done('a');
    const later = await registry.metrics();
    expect(later).toMatch(/tessera_offline_reconnect_to_completion_seconds_count 9/);
    expect(later).toMatch(/tessera_offline_reconnect_to_completion_seconds_sum 60/);
    // Transient failures are neither outcome; refusals count once per package.
    kpis.onPackage({ device: 'a', packageId: 'x', ok: false, cached: false, cause: 'UNAVAILABLE' });
    kpis.onPackage({ device: 'a', packageId: 'y', ok: false, cached: false, cause: 'RESERVATION_EXPIRED' });
    kpis.onPackage({ device: 'a', packageId: 'y', ok: false, cached: false, cause: 'RESERVATION_EXPIRED' });
    k = offlineKpis(await registry.metrics());
    expect(k.refused).toBe(1);
    expect(k.successRate.ios).toBeCloseTo(9 / 10);
  });
});

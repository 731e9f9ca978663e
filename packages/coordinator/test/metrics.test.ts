/**
 * The coordinator's metrics as pure logic: events in, Prometheus text out, gauges read from a
 * source at scrape time. (The real daemon's /metrics is scraped in test/cli.test.ts and
 * test/device-cluster.test.ts; the alert rules and dashboard are checked in test/monitoring.test.ts.)
 */
import { createRegistry } from '@tessera/runtime';
import { describe, expect, it } from 'vitest';
import { coordinatorMetrics, type CoordinatorGaugeSource } from '../src/metrics.js';
import type { KeyInfo } from '../src/types.js';

const key = (keyId: string, suite: string, threshold: number, createdAt: number) =>
  ({
    keyId,
    suite,
    threshold,
    createdAt,
    participants: [],
    publicKey: new Uint8Array(0),
    epoch: 0,
  }) as unknown as KeyInfo;

/** The value of the sample `name` whose labels are exactly `labels` (plus service="coordinator"), or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = { ...labels, service: 'coordinator' };
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.keys(got).length === Object.keys(want).length && Object.entries(want).every(([k, v]) => got[k] === v))
      return Number(m[3]);
  }
  return undefined;
}

function setup() {
  const registry = createRegistry({ service: 'coordinator' });
  const m = coordinatorMetrics(registry, { version: '9.9.9' });
  const source: CoordinatorGaugeSource = {
    inFlight: () => 2,
    connected: () => ['signer-1', 'signer-2', 'phone-7'],
    rosterParticipants: () => ['signer-1', 'signer-2', 'signer-3', 'phone-7', 'phone-8'],
    poolSize: (id) => (id === 'signer-1' ? 12 : 0),
    keys: () => [
      key('a', 'ed25519', 2, 1_000_000),
      key('b', 'ed25519', 3, 4_000_000),
      key('c', 'secp256k1-tr', 2, 2_000_000),
    ],
    isDevice: (id) => id.startsWith('phone-'),
    pendingPackages: () => 5,
    now: () => 10_000_000,
  };
  return { registry, m, source, text: () => registry.metrics() };
}

describe('coordinator metrics', () => {
  it('refresh and reshare outcomes and durations are counted by kind, result and cause', async () => {
    const { m, text } = setup();
    m.onEvent({ type: 'lifecycle', kind: 'refresh', keyId: 'a', ok: true, ms: 1500 });
    m.onEvent({ type: 'lifecycle', kind: 'refresh', keyId: 'a', ok: false, ms: 30, cause: 'POLICY_DENIED' });
    m.onEvent({ type: 'lifecycle', kind: 'reshare', keyId: 'a', ok: true, ms: 4000 });
    const t = await text();
    expect(sample(t, 'tessera_lifecycle_sessions_total', { kind: 'refresh', result: 'ok', cause: '' })).toBe(1);
    expect(
      sample(t, 'tessera_lifecycle_sessions_total', { kind: 'refresh', result: 'error', cause: 'POLICY_DENIED' }),
    ).toBe(1);
    expect(sample(t, 'tessera_session_duration_seconds_count', { kind: 'refresh' })).toBe(2);
    expect(sample(t, 'tessera_session_duration_seconds_sum', { kind: 'reshare' })).toBe(4);
    expect(sample(t, 'tessera_session_duration_seconds_bucket', { le: '5', kind: 'reshare' })).toBe(1);
  });

  it('gauges read the source at scrape time: nodes by id, devices only counted', async () => {
    const { m, source, text } = setup();
    expect(await text()).not.toMatch(/^tessera_participant_up\{/m); // nothing before observe
    m.observe(source);
    const t = await text();
    expect(sample(t, 'tessera_participant_up', { participant: 'signer-1' })).toBe(1);
    expect(sample(t, 'tessera_participant_up', { participant: 'signer-3' })).toBe(0);
    expect(sample(t, 'tessera_nonce_pool_size', { participant: 'signer-1' })).toBe(12);
    expect(sample(t, 'tessera_devices_linked')).toBe(1);
    expect(sample(t, 'tessera_participants_connected')).toBe(3);
    expect(sample(t, 'tessera_offline_packages_pending')).toBe(5);
    expect(sample(t, 'tessera_requests_in_flight')).toBe(2);
    expect(sample(t, 'tessera_keys', { suite: 'ed25519' })).toBe(2);
    expect(sample(t, 'tessera_keys', { suite: 'secp256k1-tr' })).toBe(1);
    expect(sample(t, 'tessera_key_threshold_max')).toBe(3);
    expect(sample(t, 'tessera_key_epoch_age_seconds_max')).toBe(9000);
    expect(t).not.toContain('phone-');
  });

  it('a blamed device is participant="device" (its id goes to the log and the audit chain), a node by its id', async () => {
    const { m, source, text } = setup();
    m.observe(source);
    m.onEvent({ type: 'culprit', participant: 'phone-7', code: 'BAD_SIGNATURE_SHARE' });
    m.onEvent({ type: 'culprit', participant: 'signer-2', code: 'EQUIVOCATION' });
    const t = await text();
    expect(sample(t, 'tessera_culprits_total', { participant: 'device', code: 'BAD_SIGNATURE_SHARE' })).toBe(1);
    expect(sample(t, 'tessera_culprits_total', { participant: 'signer-2', code: 'EQUIVOCATION' })).toBe(1);
    expect(t).not.toContain('phone-7');
  });

  it('with no keys the threshold and epoch-age gauges are 0, and a source that empties resets the labelled series', async () => {
    const { m, source, text } = setup();
    let keys = source.keys();
    m.observe({ ...source, keys: () => keys });
    expect(sample(await text(), 'tessera_keys', { suite: 'secp256k1-tr' })).toBe(1);
    keys = [];
    const t = await text();
    expect(sample(t, 'tessera_key_threshold_max')).toBe(0);
    expect(sample(t, 'tessera_key_epoch_age_seconds_max')).toBe(0);
    expect(t).not.toMatch(/^tessera_keys\{/m);
  });
});

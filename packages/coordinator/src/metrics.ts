/**
 * The coordinator's Prometheus metrics: counters fed by {@link CoordinatorEvent}s, gauges read
 * from the running coordinator when scraped. docs/OPERATIONS.md (Monitoring) lists them with what
 * to alert on; deploy/monitoring holds the alert rules and the dashboard that query them.
 * No metric carries a per-device label: devices are many, and a label per device would grow the
 * series without bound. Per-participant series cover signer nodes; devices are counted
 * (`tessera_devices_linked`, the pending-package total) and a blamed device is
 * `participant="device"` (its id is in the log line and the audit chain).
 */
import { buildInfo } from '@tessera/runtime';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { offlineKpiMetrics } from './offline-kpis.js';
import type { CoordinatorEvent, KeyInfo } from './types.js';

/** What the gauges read at scrape time. */
export interface CoordinatorGaugeSource {
  inFlight(): number;
  connected(): string[];
  rosterParticipants(): string[];
  poolSize(participant: string): number;
  keys(): KeyInfo[];
  /** An enrolled device (not a signer node). */
  isDevice(participant: string): boolean;
  /** Offline packages queued on linked devices, in total. */
  pendingPackages(): number;
  /** The class an enrolled device enrolled as (ios, android, browser, …). */
  deviceClass?(device: string): string;
  now(): number;
}

export interface CoordinatorMetrics {
  /** Feed every coordinator event here. */
  onEvent(e: CoordinatorEvent): void;
  /** A device gateway call finished with `code` ('OK' or an error code). */
  onGatewayCall(op: string, code: string): void;
  /** Where the gauges read from, once the coordinator (and its gateway) exist. */
  observe(source: CoordinatorGaugeSource): void;
}

/** Registers the coordinator's metrics on `registry` (with `tessera_build_info{version}`). */
export function coordinatorMetrics(registry: Registry, opts: { version: string }): CoordinatorMetrics {
  const registers = [registry];
  buildInfo(registry, opts.version);
  const signs = new Counter({
    name: 'tessera_signatures_total',
    help: 'sign requests by result and cause',
    labelNames: ['result', 'cause'],
    registers,
  });
  const culprits = new Counter({
    name: 'tessera_culprits_total',
    help: 'participants blamed, by code',
    labelNames: ['participant', 'code'],
    registers,
  });
  const keygens = new Counter({
    name: 'tessera_keygens_total',
    help: 'DKG sessions by result and cause',
    labelNames: ['result', 'cause'],
    registers,
  });
  const lifecycle = new Counter({
    name: 'tessera_lifecycle_sessions_total',
    help: 'refresh and reshare sessions by kind, result and cause',
    labelNames: ['kind', 'result', 'cause'],
    registers,
  });
  const duration = new Histogram({
    name: 'tessera_session_duration_seconds',
    help: 'session durations by kind (sign, dkg, offline, refresh, reshare), failed sessions included',
    labelNames: ['kind'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  const packages = new Counter({
    name: 'tessera_offline_packages_total',
    help: 'offline package deliveries by result (completed | already_completed | error) and cause',
    labelNames: ['result', 'cause'],
    registers,
  });
  const syncLatency = new Histogram({
    name: 'tessera_offline_sync_seconds',
    help: 'time from a package being signed offline (device clock) to its completion',
    buckets: [1, 10, 60, 300, 1800, 3600, 6 * 3600, 86400, 7 * 86400],
    registers,
  });
  const reservations = new Counter({
    name: 'tessera_reservations_total',
    help: 'reservation slots issued to devices',
    registers,
  });
  const gatewayCalls = new Counter({
    name: 'tessera_device_calls_total',
    help: 'device gateway calls by op and result code',
    labelNames: ['op', 'code'],
    registers,
  });
  let src: CoordinatorGaugeSource | undefined;
  const kpis = offlineKpiMetrics(registers, (device) => src?.deviceClass?.(device) ?? 'other');
  /** A gauge set at scrape time from the source (nothing before the coordinator exists). */
  const gauge = (
    name: string,
    help: string,
    labelNames: string[],
    read: (g: Gauge, s: CoordinatorGaugeSource) => void,
  ) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      collect() {
        if (labelNames.length) this.reset();
        if (src) read(this, src);
      },
    });
  gauge(
    'tessera_requests_in_flight',
    'sign requests and package completions in progress (bound: maxInFlight)',
    [],
    (g, s) => g.set(s.inFlight()),
  );
  gauge('tessera_participants_connected', 'participants linked (signer nodes and devices)', [], (g, s) =>
    g.set(s.connected().length),
  );
  gauge('tessera_devices_linked', 'devices linked through the gateway', [], (g, s) =>
    g.set(s.connected().filter((id) => s.isDevice(id)).length),
  );
  gauge('tessera_participant_up', '1 per known signer node that is linked, 0 if not', ['participant'], (g, s) => {
    const up = new Set(s.connected());
    for (const id of new Set([...up, ...s.rosterParticipants()]))
      if (!s.isDevice(id)) g.set({ participant: id }, up.has(id) ? 1 : 0);
  });
  gauge(
    'tessera_nonce_pool_size',
    'pooled signing commitments per linked signer node (all keys)',
    ['participant'],
    (g, s) => {
      for (const id of s.connected()) if (!s.isDevice(id)) g.set({ participant: id }, s.poolSize(id));
    },
  );
  gauge(
    'tessera_offline_packages_pending',
    'offline packages queued on linked devices, as each last reported',
    [],
    (g, s) => g.set(s.pendingPackages()),
  );
  gauge('tessera_keys', 'keys by suite', ['suite'], (g, s) => {
    const bySuite = new Map<string, number>();
    for (const k of s.keys()) bySuite.set(k.suite, (bySuite.get(k.suite) ?? 0) + 1);
    for (const [suite, n] of bySuite) g.set({ suite }, n);
  });
  gauge(
    'tessera_key_threshold_max',
    'the largest threshold of any key (fewer linked participants: some keys cannot sign)',
    [],
    (g, s) => g.set(Math.max(0, ...s.keys().map((k) => k.threshold))),
  );
  gauge(
    'tessera_key_epoch_age_seconds_max',
    'age of the oldest current epoch: time since the least recently refreshed key changed',
    [],
    (g, s) => {
      const now = s.now();
      g.set(Math.max(0, ...s.keys().map((k) => (now - k.createdAt) / 1000)));
    },
  );
  return {
    onEvent(e) {
      switch (e.type) {
        case 'sign':
          signs.inc({ result: e.ok ? 'ok' : 'error', cause: e.cause ?? '' });
          duration.observe({ kind: 'sign' }, e.ms / 1000);
          break;
        case 'keygen':
          keygens.inc({ result: e.ok ? 'ok' : 'error', cause: e.cause ?? '' });
          duration.observe({ kind: 'dkg' }, e.ms / 1000);
          break;
        case 'lifecycle':
          lifecycle.inc({ kind: e.kind, result: e.ok ? 'ok' : 'error', cause: e.cause ?? '' });
          duration.observe({ kind: e.kind }, e.ms / 1000);
          break;
        case 'package':
          packages.inc({
            result: !e.ok ? 'error' : e.cached ? 'already_completed' : 'completed',
            cause: e.cause ?? '',
          });
          if (e.ok && !e.cached) {
            duration.observe({ kind: 'offline' }, e.ms / 1000);
            if (e.createdAt) syncLatency.observe(Math.max(0, Date.now() - e.createdAt) / 1000);
          }
          kpis.onPackage(e);
          break;
        case 'reserve':
          reservations.inc(e.slots);
          kpis.onReserve(e.slots);
          break;
        case 'culprit':
          culprits.inc({ participant: src?.isDevice(e.participant) ? 'device' : e.participant, code: e.code });
          kpis.onCulprit();
          break;
      }
    },
    onGatewayCall(op, code) {
      gatewayCalls.inc({ op, code });
    },
    observe(source) {
      src = source;
    },
  };
}

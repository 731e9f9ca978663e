/**
 * The offline-payment KPIs as Prometheus metrics, labelled by device class (ios, android,
 * browser, …), never by device id:
 *
 * - `tessera_offline_outcomes_total{device_class, outcome}` — each package counted once, when
 *   it completes or is refused for good (a transient failure — a co-signer away, the gateway
 *   busy — is neither: the device delivers it again);
 * - `tessera_offline_success_ratio{device_class}` — completed ÷ (completed + refused);
 * - `tessera_offline_reconnect_throughput` — packages completed per second in the minute after a
 *   device reconnects, and `tessera_offline_reconnect_to_completion_seconds` — from the reconnect
 *   to each completion in that minute. The cluster sees a device come back when its first
 *   package completes after a minute without any: that opens the device's minute;
 * - `tessera_offline_allowance_utilisation` — packages completed ÷ reservation slots issued;
 * - `tessera_key_compromise_indicators_total{kind}` — `reservation_reuse` (a second package on a
 *   spent reservation: a cloned or restored store, or an attack), `culprit` (a participant
 *   named for a bad share or message) and `over_cap` (a package a co-signer refused as past its
 *   allowance's cap, counted once per package: an honest device never signs one, so it comes
 *   from a cloned store or a tampered device). Anything above zero deserves a look.
 *
 * The sync latency from signing to completion is `tessera_offline_sync_seconds` (metrics.ts).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Codes after which a package can never complete (the device marks it failed). */
const REFUSED = new Set([
  'RESERVATION_USED',
  'RESERVATION_EXPIRED',
  'RESERVATION_UNKNOWN',
  'RESERVATION_INVALID',
  'BAD_SIGNATURE_SHARE',
  'OVER_ALLOWANCE',
  'PAYMENT_MISMATCH',
  'BAD_SIGNATURE',
  'DECODE',
  'INVALID_ARGUMENT',
  'WRONG_SUITE',
  'NOT_FOUND',
  'POLICY_DENIED',
]);
const MINUTE_MS = 60_000;
/** Packages remembered as refused, so a re-delivery is not counted twice (oldest forgotten first). */
const REMEMBER = 100_000;

export interface OfflineKpiMetrics {
  onPackage(e: { device?: string; packageId?: string; ok: boolean; cached: boolean; cause?: string }): void;
  onReserve(slots: number): void;
  onCulprit(): void;
}

export function offlineKpiMetrics(
  registers: Registry[],
  classOf: (device: string) => string,
  now: () => number = Date.now,
): OfflineKpiMetrics {
  const outcomes = new Counter({
    name: 'tessera_offline_outcomes_total',
    help: 'offline packages by device class, each counted once: completed, or refused for good',
    labelNames: ['device_class', 'outcome'],
    registers,
  });
  const counts = new Map<string, { completed: number; refused: number }>();
  new Gauge({
    name: 'tessera_offline_success_ratio',
    help: 'offline packages completed ÷ (completed + refused for good), by device class',
    labelNames: ['device_class'],
    registers,
    collect() {
      this.reset();
      for (const [c, v] of counts) this.set({ device_class: c }, v.completed / (v.completed + v.refused));
    },
  });
  const windows = new Map<string, { start: number; last: number; completed: number }>();
  const closeWindows = (t: number) => {
    for (const [device, w] of windows) {
      if (t - w.start < MINUTE_MS) continue;
      throughput.observe(w.completed / (MINUTE_MS / 1000));
      windows.delete(device);
    }
  };
  const throughput = new Histogram({
    name: 'tessera_offline_reconnect_throughput',
    help: 'packages completed per second in the minute after a device reconnects',
    buckets: [0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 25],
    registers,
    collect() {
      // Minutes that ended are counted at scrape time too, not only at the device's next package.
      closeWindows(now());
    },
  });
  const toCompletion = new Histogram({
    name: 'tessera_offline_reconnect_to_completion_seconds',
    help: "time from a device's reconnect to each of its completions in the minute that follows",
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  const lastCompletion = new Map<string, number>();
  let completed = 0;
  let reserved = 0;
  new Gauge({
    name: 'tessera_offline_allowance_utilisation',
    help: 'offline packages completed ÷ reservation slots issued to devices',
    registers,
    collect() {
      this.set(reserved ? completed / reserved : 0);
    },
  });
  const indicators = new Counter({
    name: 'tessera_key_compromise_indicators_total',
    help: 'signs of a leaked or cloned share: reservation reuse attempts, participants named culprit, packages past their cap',
    labelNames: ['kind'],
    registers,
  });
  indicators.inc({ kind: 'reservation_reuse' }, 0);
  indicators.inc({ kind: 'culprit' }, 0);
  indicators.inc({ kind: 'over_cap' }, 0);
  const refused = new Set<string>();

  const count = (cls: string, outcome: 'completed' | 'refused') => {
    outcomes.inc({ device_class: cls, outcome });
    const c = counts.get(cls) ?? { completed: 0, refused: 0 };
    c[outcome]++;
    counts.set(cls, c);
  };

  return {
    onPackage(e) {
      if (e.cached || !e.device) return;
      const cls = classOf(e.device);
      if (e.ok) {
        count(cls, 'completed');
        completed++;
        const t = now();
        closeWindows(t);
        const prev = lastCompletion.get(e.device);
        lastCompletion.set(e.device, t);
        let w = windows.get(e.device);
        if (!w && (prev === undefined || t - prev >= MINUTE_MS))
          windows.set(e.device, (w = { start: t, last: t, completed: 0 }));
        if (w) {
          w.completed++;
          w.last = t;
          toCompletion.observe((t - w.start) / 1000);
        }
        return;
      }
      if (!e.cause || !REFUSED.has(e.cause)) return;
      if (e.cause === 'RESERVATION_USED') indicators.inc({ kind: 'reservation_reuse' });
      const id = e.packageId ?? '';
      if (id && refused.has(id)) return;
      if (id) {
        refused.add(id);
        if (refused.size > REMEMBER) refused.delete(refused.values().next().value as string);
      }
      count(cls, 'refused');
      if (e.cause === 'OVER_ALLOWANCE') indicators.inc({ kind: 'over_cap' });
    },
    onReserve(slots) {
      reserved += slots;
    },
    onCulprit() {
      indicators.inc({ kind: 'culprit' });
    },
  };
}

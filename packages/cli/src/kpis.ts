/**
 * The offline-payment KPIs as `tessera status` and the operator console show them, read from
 * the coordinator's Prometheus metrics (coordinator/src/offline-kpis.ts and metrics.ts).
 */

/** The samples of metric `name` in a Prometheus text exposition, with their labels. */
function samples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    out.push({ labels: labels as Record<string, string>, value: Number(m[4]) });
  }
  return out;
}

/** The sum of `name`'s samples whose labels match `want`. */
function sum(text: string, name: string, want: Record<string, string> = {}): number {
  return samples(text, name)
    .filter((s) => Object.entries(want).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

export interface OfflineKpis {
  /** Packages completed (first deliveries). */
  completed: number;
  /** Deliveries of a package already completed, answered with the stored result. */
  redelivered: number;
  /** Packages refused for good. */
  refused: number;
  /** completed ÷ (completed + refused), by device class. */
  successRate: Record<string, number>;
  pendingOnDevices: number;
  reservationsIssued: number;
  /** completed ÷ reservation slots issued. */
  allowanceUtilisation: number;
  syncLatencyMeanSeconds: number | null;
  /** Mean packages/s in the minute after a device reconnects (minutes that ended). */
  reconnectThroughputMean: number | null;
  devicesLinked: number;
  /**
   * Reservation reuse attempts, culprits named, packages a co-signer refused as past their cap
   * (each once): anything above zero deserves a look.
   */
  compromiseIndicators: { reservationReuse: number; culprits: number; packagesPastCap: number };
}

export function offlineKpis(metrics: string): OfflineKpis {
  const syncCount = sum(metrics, 'tessera_offline_sync_seconds_count');
  const burstCount = sum(metrics, 'tessera_offline_reconnect_throughput_count');
  const successRate: Record<string, number> = {};
  for (const s of samples(metrics, 'tessera_offline_success_ratio'))
    if (s.labels.device_class) successRate[s.labels.device_class] = s.value;
  return {
    completed: sum(metrics, 'tessera_offline_packages_total', { result: 'completed' }),
    redelivered: sum(metrics, 'tessera_offline_packages_total', { result: 'already_completed' }),
    refused: sum(metrics, 'tessera_offline_outcomes_total', { outcome: 'refused' }),
    successRate,
    pendingOnDevices: sum(metrics, 'tessera_offline_packages_pending'),
    reservationsIssued: sum(metrics, 'tessera_reservations_total'),
    allowanceUtilisation: sum(metrics, 'tessera_offline_allowance_utilisation'),
    syncLatencyMeanSeconds: syncCount ? sum(metrics, 'tessera_offline_sync_seconds_sum') / syncCount : null,
    reconnectThroughputMean: burstCount ? sum(metrics, 'tessera_offline_reconnect_throughput_sum') / burstCount : null,
    devicesLinked: sum(metrics, 'tessera_devices_linked'),
    compromiseIndicators: {
      reservationReuse: sum(metrics, 'tessera_key_compromise_indicators_total', { kind: 'reservation_reuse' }),
      culprits: sum(metrics, 'tessera_key_compromise_indicators_total', { kind: 'culprit' }),
      packagesPastCap: sum(metrics, 'tessera_key_compromise_indicators_total', { kind: 'over_cap' }),
    },
  };
}

/** The coordinator's KPIs, or null when its metrics cannot be read within 5 s. */
export async function fetchOfflineKpis(metricsUrl: string): Promise<OfflineKpis | null> {
  if (!metricsUrl) return null;
  const r = await fetch(metricsUrl, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
  return r?.ok ? offlineKpis(await r.text()) : null;
}

/**
 * The device's enrolment record (`Device.enrol`): the latest enrolment, and the cluster id that
 * each gateway URL it enrolled at answered — the cluster every later call to that URL names
 * (gateway-client.ts).
 */
import { gatewayUrls } from './gateway-client.js';
import { DeviceStorage } from './storage.js';

/**
 * Where the cluster's device gateway is: one URL, or every coordinator replica's (a list, or one
 * string of comma-separated URLs); calls go to the replica that leads.
 */
export type GatewayUrl = string | readonly string[];

/** The stored enrolment: the latest one, and the cluster id of every gateway URL enrolled at. */
export interface Enrolment {
  device: string;
  gateway: string;
  at: number;
  clusterId?: string;
  clusters?: Record<string, string>;
}

export function clustersOf(e: Enrolment | null | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!e || typeof e !== 'object') return out;
  for (const [u, c] of Object.entries(e.clusters ?? {})) if (typeof c === 'string' && c) out.set(u, c);
  if (typeof e.gateway === 'string' && typeof e.clusterId === 'string' && e.clusterId) {
    // Records before the clusters map: the one gateway (or list) of the latest enrolment.
    for (const u of e.gateway.split(',')) {
      const k = u.trim().replace(/\/+$/, '');
      if (k && !out.has(k)) out.set(k, e.clusterId);
    }
  }
  return out;
}

/**
 * The cluster that `urls` enrolled this device in. An unknown URL of a device enrolled in one
 * cluster only (another gateway of it) names that cluster, except in an enrolment, which names
 * only what it knows of that very URL.
 */
export function clusterFor(clusters: Map<string, string>, urls: string[], op?: 'enrol'): string | undefined {
  let cluster = urls.map((u) => clusters.get(u)).find((c) => c !== undefined);
  if (cluster === undefined && op !== 'enrol') {
    const all = new Set(clusters.values());
    if (all.size === 1) cluster = [...all][0];
  }
  return cluster;
}

/**
 * Stores the enrolment the cluster answered at `url` and returns the cluster ids by gateway URL
 * it leaves: every URL given names the same cluster (the replicas of one coordinator).
 */
export async function saveEnrolment(
  store: DeviceStorage,
  known: Map<string, string>,
  url: GatewayUrl,
  out: { device: string; clusterId: string },
  clock: () => number,
): Promise<Map<string, string>> {
  const clusters = new Map(known);
  for (const u of gatewayUrls(url)) clusters.set(u, out.clusterId);
  const record: Enrolment = {
    device: out.device,
    gateway: gatewayUrls(url).join(','),
    at: clock(),
    clusterId: out.clusterId,
    clusters: Object.fromEntries(clusters),
  };
  await store.put('enrolment', DeviceStorage.json(record));
  return clusters;
}

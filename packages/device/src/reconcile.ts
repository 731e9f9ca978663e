/**
 * The reconciliation report of a device: its journal replayed in order, checked against its
 * delivery queue. What a wallet shows its user after reconnecting:
 *  - `settled`: payments the cluster completed (with their signatures);
 *  - `refused`: payments the cluster refused for good, with why;
 *  - `needsCompensation`: the refused ones the wallet has not yet settled with its user (the
 *    package was handed over, so someone expected that payment);
 *  - `expired`: unused allowance that lapsed (released, nothing owed);
 *  - `pending`: payments signed and not yet answered by the cluster;
 *  - `discrepancies`: where the journal and the queue disagree (a package in one and not in the
 *    other, or in different states) — empty unless the store was damaged or rolled back.
 */
import type { JournalEntry } from './journal.js';

/** The part of a queued package the report reads. */
export interface QueueView {
  readonly packageId: string;
  readonly keyId: string;
  readonly state: 'pending' | 'completed' | 'failed';
  readonly signature?: string;
}

export interface ReconciliationReport {
  readonly journal: { readonly entries: number; readonly head: string | null; readonly verified: true };
  readonly settled: { packageId: string; keyId: string; signature: string; at: number }[];
  readonly refused: {
    packageId: string;
    keyId: string;
    code: string;
    reason: string;
    at: number;
    compensated: boolean;
  }[];
  readonly needsCompensation: { packageId: string; keyId: string; code: string; reason: string; at: number }[];
  readonly expired: { keyId: string; count: number; at: number }[];
  readonly pending: { packageId: string; keyId: string; signedAt: number }[];
  readonly discrepancies: { packageId: string; journal: string; queue: string }[];
  /** Per key: slots reserved, used by packages, expired unused. */
  readonly allowance: Record<string, { reserved: number; signed: number; expired: number }>;
  /** The device's view compared with the cluster's record of its packages (when reachable). */
  cluster?: ClusterComparison;
}

/** A package as the cluster decided it (the gateway's `packages` answer). */
export interface ClusterRecord {
  readonly packageId: string;
  readonly keyId: string;
  readonly state: string;
  readonly code: string;
  readonly at: number;
}

export type ClusterComparison =
  | {
      readonly compared: true;
      readonly records: number;
      /** Decided on the cluster, still pending here (a merchant delivered it): the next sync settles it. */
      readonly clusterAhead: { packageId: string; cluster: string }[];
      /** The two disagree, or one side has a decision the other never saw: look into these. */
      readonly mismatches: { packageId: string; device: string; cluster: string }[];
    }
  | { readonly compared: false; readonly reason: string };

/**
 * Compares the device's decided and pending packages with the cluster's record. A package the
 * device saw settled or refused that the cluster has no record of, or the other way round, or
 * a different decision, is a mismatch (a store restored from an older copy shows up here).
 */
export function compareWithCluster(report: ReconciliationReport, records: readonly ClusterRecord[]): ClusterComparison {
  const device = new Map<string, string>();
  for (const p of report.settled) device.set(p.packageId, 'completed');
  for (const p of report.refused) device.set(p.packageId, 'refused');
  for (const p of report.pending) device.set(p.packageId, 'pending');
  const cluster = new Map(records.map((r) => [r.packageId, r.state]));
  const clusterAhead: { packageId: string; cluster: string }[] = [];
  const mismatches: { packageId: string; device: string; cluster: string }[] = [];
  for (const [packageId, c] of cluster) {
    const d = device.get(packageId);
    if (d === c) continue;
    if (d === 'pending') clusterAhead.push({ packageId, cluster: c });
    else mismatches.push({ packageId, device: d ?? 'absent', cluster: c });
  }
  for (const [packageId, d] of device)
    if (d !== 'pending' && !cluster.has(packageId)) mismatches.push({ packageId, device: d, cluster: 'absent' });
  return { compared: true, records: records.length, clusterAhead, mismatches };
}

export function reconcile(entries: readonly JournalEntry[], queue: readonly QueueView[]): ReconciliationReport {
  type State = { keyId: string; signedAt: number; state: 'pending' | 'completed' | 'refused'; entry?: JournalEntry };
  const packages = new Map<string, State>();
  const compensated = new Set<string>();
  const expired: ReconciliationReport['expired'] = [];
  const allowance: Record<string, { reserved: number; signed: number; expired: number }> = {};
  const slot = (k: string) => (allowance[k] ??= { reserved: 0, signed: 0, expired: 0 });
  for (const e of entries) {
    const key = e.keyId ?? '';
    const p = e.packageId ? packages.get(e.packageId) : undefined;
    switch (e.kind) {
      case 'reserved':
        slot(key).reserved += e.count ?? 0;
        break;
      case 'expired':
        slot(key).expired += e.count ?? 0;
        expired.push({ keyId: key, count: e.count ?? 0, at: e.at });
        break;
      case 'signed':
        slot(key).signed++;
        if (e.packageId) packages.set(e.packageId, { keyId: key, signedAt: e.at, state: 'pending' });
        break;
      case 'completed':
      case 'refused':
        if (p) {
          p.state = e.kind;
          p.entry = e;
        } else if (e.packageId) packages.set(e.packageId, { keyId: key, signedAt: e.at, state: e.kind, entry: e });
        break;
      case 'compensated':
        if (e.packageId) compensated.add(e.packageId);
        break;
    }
  }
  const settled: ReconciliationReport['settled'] = [];
  const refused: ReconciliationReport['refused'] = [];
  const pending: ReconciliationReport['pending'] = [];
  for (const [packageId, p] of packages) {
    if (p.state === 'completed')
      settled.push({ packageId, keyId: p.keyId, signature: p.entry?.signature ?? '', at: p.entry?.at ?? 0 });
    else if (p.state === 'refused')
      refused.push({
        packageId,
        keyId: p.keyId,
        code: p.entry?.code ?? '',
        reason: p.entry?.reason ?? '',
        at: p.entry?.at ?? 0,
        compensated: compensated.has(packageId),
      });
    else pending.push({ packageId, keyId: p.keyId, signedAt: p.signedAt });
  }
  const asQueue = { pending: 'pending', completed: 'completed', refused: 'failed' } as const;
  const discrepancies: ReconciliationReport['discrepancies'] = [];
  const queued = new Map(queue.map((q) => [q.packageId, q]));
  for (const [packageId, p] of packages) {
    const q = queued.get(packageId);
    if (!q) discrepancies.push({ packageId, journal: p.state, queue: 'absent' });
    else if (q.state !== asQueue[p.state]) discrepancies.push({ packageId, journal: p.state, queue: q.state });
  }
  for (const q of queue)
    if (!packages.has(q.packageId)) discrepancies.push({ packageId: q.packageId, journal: 'absent', queue: q.state });
  const last = entries[entries.length - 1];
  return {
    journal: { entries: entries.length, head: last?.hash ?? null, verified: true },
    settled,
    refused,
    needsCompensation: refused.filter((r) => !r.compensated).map(({ compensated: _c, ...r }) => r),
    expired,
    pending,
    discrepancies,
    allowance,
  };
}

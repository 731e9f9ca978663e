/**
 * After delivery (`Device.reconcile / compensate`): the local reconciliation report compared with
 * the cluster's record of this device's packages, and the journal entry that says the wallet
 * settled a payment the cluster refused with its user.
 */
import { decodeMessage, encodeMessage } from '@tessera/core';
import { DeviceError } from './errors.js';
import type { GatewayClient } from './gateway-client.js';
import type { Journal } from './journal.js';
import { compareWithCluster, type ReconciliationReport } from './reconcile.js';

/**
 * `report` compared with the cluster's record of this device's packages, asked through
 * `client()`; when the cluster cannot be reached (or refuses), `compared: false` with the reason.
 */
export async function withClusterRecord(
  report: ReconciliationReport,
  client: () => GatewayClient,
): Promise<ReconciliationReport> {
  try {
    const list = decodeMessage(
      'DevicePackageList',
      await client().call('packages', encodeMessage('DevicePackages', { since: 0 }), 30_000),
    );
    if (list.truncated)
      return { ...report, cluster: { compared: false, reason: 'the cluster record is longer than one answer' } };
    return { ...report, cluster: compareWithCluster(report, list.packages) };
  } catch (e) {
    // The local report stands on its own: the cluster's refusal or absence is reported in it.
    if (!(e instanceof DeviceError)) throw e;
    return { ...report, cluster: { compared: false, reason: `${e.code}: ${e.message}` } };
  }
}

/**
 * Journals the compensation of a package the cluster refused (INVALID_ARGUMENT for any other);
 * `already` when it was compensated before, and then nothing is written.
 */
export async function compensateRefused(
  journal: Journal,
  packageId: string,
  note: string,
): Promise<{ packageId: string; compensated: true; already: boolean }> {
  const entries = await journal.read();
  const refused = entries.find((e) => e.kind === 'refused' && e.packageId === packageId);
  if (!refused)
    throw new DeviceError(
      'INVALID_ARGUMENT',
      `package ${String(packageId).slice(0, 80)} was not refused by the cluster: nothing to compensate`,
    );
  if (entries.some((e) => e.kind === 'compensated' && e.packageId === packageId))
    return { packageId, compensated: true, already: true };
  await journal.append([
    { kind: 'compensated', keyId: refused.keyId as string, packageId, note: String(note).slice(0, 500) },
  ]);
  return { packageId, compensated: true, already: false };
}

/**
 * What the cluster records of a device's offline packages, FROST or ECDSA (offline.ts,
 * ecdsa-offline.ts): each completion stored once with its reservations' uses, and the device's
 * record of what was decided.
 */
import { decodeMessage, encodeMessage } from '@tessera/core';
import type { OfflineComponents } from './offline.js';
import { layout } from './layout.js';
import { CoordinatorError, codeOf, type PackageResult } from './types.js';

/** The cluster's decision on one of a device's packages. */
export interface DevicePackageRecord {
  packageId: string;
  keyId: string;
  state: 'completed' | 'refused';
  code: string;
  at: number;
}

export function devicePackageRecord(r: Omit<DevicePackageRecord, 'packageId'>): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(r));
}

/**
 * Stores a completed package once, with each co-signer's use of its reservation (a FROST nonce,
 * an ECDSA presignature), and audits it. Inserts: if another writer got there first (a deposed
 * leader, a racing package), nothing of this is written — the stored result if it was this
 * package, RESERVATION_USED (naming the device) if another used a reservation.
 */
export async function storeCompletion(
  c: Pick<OfflineComponents, 'store' | 'audit' | 'clock'>,
  result: PackageResult,
  device: string,
  uses: readonly { signer: string; nonce: Uint8Array }[],
  audit: Record<string, string> = {},
): Promise<PackageResult> {
  try {
    await c.store.batch(
      [
        {
          type: 'insert',
          key: layout.package(result.packageId),
          value: encodeMessage('SubmitPackageResponse', result),
        },
        {
          type: 'put',
          key: layout.devicePackage(device, result.packageId),
          value: devicePackageRecord({ keyId: result.keyId, state: 'completed', code: '', at: c.clock() }),
        },
        ...uses.map((u) => ({
          type: 'insert' as const,
          key: layout.reservationUse(u.signer, u.nonce),
          value: new TextEncoder().encode(result.packageId),
        })),
      ],
      { sync: true },
    );
  } catch (e) {
    if (codeOf(e) !== 'KEY_EXISTS') throw e;
    const prior = await c.store.get(layout.package(result.packageId));
    if (prior) return { ...decodeMessage('SubmitPackageResponse', prior), alreadyCompleted: true };
    throw new CoordinatorError('RESERVATION_USED', 'a reservation of this package was used by another package', [
      device,
    ]);
  }
  await c.audit.append({
    type: 'offline-complete',
    data: { keyId: result.keyId, package: result.packageId, device, signers: result.signers.join(','), ...audit },
  });
  return result;
}

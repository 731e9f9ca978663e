/**
 * The SDK's backup functions that do cryptographic work, each importing ./backup.ts (with the
 * KDFs and the Shamir split) on first use: in a browser build that is one chunk, which a page
 * that never backs up does not download.
 */
import type * as Backup from './backup.js';

const backup = () => import('./backup.js');

/** Encrypts a device state under a password (see ./backup.ts). */
export async function encryptBackup(...a: Parameters<typeof Backup.encryptBackup>): Promise<Uint8Array> {
  return (await backup()).encryptBackup(...a);
}

/** Decrypts a blob from `encryptBackup` (BACKUP_PASSWORD on a wrong password). */
export async function decryptBackup(...a: Parameters<typeof Backup.decryptBackup>): Promise<Uint8Array> {
  return (await backup()).decryptBackup(...a);
}

/** Splits a backup into `m` recovery pieces, any `k` of which restore it. */
export async function splitBackup(...a: Parameters<typeof Backup.splitBackup>): Promise<string[]> {
  return (await backup()).splitBackup(...a);
}

/** Combines recovery pieces into the backup they were split from. */
export async function combineBackup(...a: Parameters<typeof Backup.combineBackup>): Promise<Uint8Array> {
  return (await backup()).combineBackup(...a);
}

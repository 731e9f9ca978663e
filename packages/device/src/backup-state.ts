/**
 * What a device backup holds (`Device.exportBackup / restore`): the identity, the key shares, the
 * pairs of its ECDSA keys in use and the enrolment record — never reservations or the queue: a
 * restored device reserves afresh, so no reservation can be used from two devices. Part of the
 * backup chunk (backup.ts re-exports it; device.ts imports both on first use).
 */
import {
  decodeIdentityRecord,
  decodeKeyShareRecord,
  encodeIdentityRecord,
  fromHex,
  toHex,
  type ParticipantIdentity,
} from '@tessera/core';
import { decryptBackup, encryptBackup } from './backup-api.js';
import type { BackupOptions } from './backup-format.js';
import { DeviceError } from './errors.js';
import type { Holdings } from './holdings.js';
import { DeviceStorage } from './storage.js';

/** A backup's plaintext, as JSON. */
export interface BackupState {
  v: number;
  identity: string;
  keys: string[];
  enrolment: unknown;
  /** The ECDSA pair states in use and what set them up (store key → hex), absent in older backups. */
  ecdsa?: Record<string, string>;
}

/** What an ECDSA key's share needs besides its record to presign: its pairs, in use (../ecdsa setup-store). */
const ECDSA_KEPT = ['ecdsa/pairs/', 'ecdsa/setup/', 'ecdsa/transcripts/', 'ecdsa/setup-words/'];

/** Encrypts the device's identity, every key share it holds and its enrolment record under `password`. */
export async function exportState(
  ctx: Pick<Holdings, 'keyIds'> & { readonly store: DeviceStorage; me(): ParticipantIdentity },
  password: string,
  opts?: BackupOptions,
): Promise<Uint8Array> {
  const me = ctx.me();
  const store = ctx.store;
  const keys: string[] = [];
  for (const id of await ctx.keyIds()) keys.push(toHex((await store.get(`key/${id}`)) as Uint8Array));
  const enrolment = await store.getJson<unknown>('enrolment');
  const ecdsa: Record<string, string> = {};
  for (const prefix of ECDSA_KEPT) for await (const [k, v] of store.entries(prefix)) ecdsa[k] = toHex(v);
  const plain = DeviceStorage.json({
    v: 1,
    identity: toHex(encodeIdentityRecord(me)),
    keys,
    enrolment: enrolment ?? null,
    ...(Object.keys(ecdsa).length ? { ecdsa } : {}),
  } satisfies BackupState);
  try {
    return await encryptBackup(plain, password, opts);
  } finally {
    plain.fill(0);
  }
}

/** Decrypts a backup and checks that it holds a device state (BACKUP_CORRUPT if not). */
export async function openState(backup: Uint8Array, password: string): Promise<BackupState> {
  const plain = await decryptBackup(backup, password);
  let parsed: BackupState;
  try {
    parsed = JSON.parse(new TextDecoder().decode(plain)) as typeof parsed;
  } catch {
    throw new DeviceError('BACKUP_CORRUPT', 'the backup does not hold a device state');
  } finally {
    plain.fill(0);
  }
  if (parsed.v !== 1 || typeof parsed.identity !== 'string' || !Array.isArray(parsed.keys))
    throw new DeviceError('BACKUP_CORRUPT', 'the backup does not hold a device state');
  return parsed;
}

/** The identity of a backup's state, and the one write that puts it in an empty device store. */
export function restoreWrites(parsed: BackupState): {
  identity: ParticipantIdentity;
  ops: { type: 'put'; key: string; value: Uint8Array }[];
} {
  const identity = decodeIdentityRecord(fromHex(parsed.identity));
  const ops: { type: 'put'; key: string; value: Uint8Array }[] = [
    { type: 'put', key: 'identity', value: encodeIdentityRecord(identity) },
  ];
  for (const k of parsed.keys) {
    const rec = decodeKeyShareRecord(fromHex(k));
    ops.push({ type: 'put', key: `key/${rec.keyId}`, value: fromHex(k) });
  }
  for (const [k, v] of Object.entries(parsed.ecdsa ?? {}))
    if (ECDSA_KEPT.some((p) => k.startsWith(p))) ops.push({ type: 'put', key: k, value: fromHex(v) });
  if (parsed.enrolment) ops.push({ type: 'put', key: 'enrolment', value: DeviceStorage.json(parsed.enrolment) });
  return { identity, ops };
}

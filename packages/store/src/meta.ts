/**
 * The store's meta record (raw key `m/data-key`): which KEK wrapped the data key, the wrapped
 * data key, and a check value sealed under the data key. JSON, not sealed (it holds the wrapped
 * key, which is useless without the KEK).
 */
import type { Level } from 'level';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { fromUtf8, utf8 } from './bytes.js';
import { StoreError } from './errors.js';
import { META_KEY } from './layout.js';
import { levelFailure } from './level-errors.js';

/** Current meta record format version. */
const META_VERSION = 1;
const ALG = 'xchacha20poly1305';

/** Decoded meta record. */
export interface MetaRecord {
  kekId: string;
  wrapped: Uint8Array;
  check: Uint8Array;
}

/** Read the meta record; `undefined` if the store is new. `STORE_CORRUPT` if unreadable. */
export async function readMeta(db: Level<string, Uint8Array>, dir: string): Promise<MetaRecord | undefined> {
  let raw: Uint8Array | undefined;
  try {
    raw = await db.get(META_KEY);
  } catch (e) {
    throw levelFailure(dir, 'read meta record', e);
  }
  return raw === undefined ? undefined : decodeMeta(raw, dir);
}

/** Decodes a meta record's bytes (any backend). `STORE_CORRUPT` naming `dir` if unreadable. */
export function decodeMeta(raw: Uint8Array, dir: string): MetaRecord {
  const corrupt = (): StoreError => new StoreError('STORE_CORRUPT', `store ${dir}: data-key record is unreadable`);
  let obj: unknown;
  try {
    obj = JSON.parse(fromUtf8(raw));
  } catch {
    throw corrupt();
  }
  const o = obj as Record<string, unknown> | null;
  if (
    typeof o !== 'object' ||
    o === null ||
    o['v'] !== META_VERSION ||
    o['alg'] !== ALG ||
    typeof o['kek'] !== 'string' ||
    !isHex(o['wrapped']) ||
    !isHex(o['check'])
  ) {
    throw corrupt();
  }
  return { kekId: o['kek'], wrapped: hexToBytes(o['wrapped']), check: hexToBytes(o['check']) };
}

/** A meta record's bytes (any backend). */
export function encodeMeta(m: MetaRecord): Uint8Array {
  return utf8(
    JSON.stringify({
      v: META_VERSION,
      alg: ALG,
      kek: m.kekId,
      wrapped: bytesToHex(m.wrapped),
      check: bytesToHex(m.check),
    }),
  );
}

/** Write the meta record with a synced write. */
export async function writeMeta(db: Level<string, Uint8Array>, dir: string, m: MetaRecord): Promise<void> {
  try {
    await db.put(META_KEY, encodeMeta(m), { sync: true });
  } catch (e) {
    throw levelFailure(dir, 'write meta record', e);
  }
}

function isHex(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length % 2 === 0 && /^[0-9a-f]+$/.test(v);
}

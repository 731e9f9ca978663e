/**
 * The store's meta record (raw key `m/data-key`): which KEK wrapped the data key, the wrapped
 * data key, and a check value sealed under the data key. JSON, not sealed (it holds the wrapped
 * key, which is useless without the KEK).
 */
import type { Level } from 'level';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { equalBytes, randomBytes } from '@noble/ciphers/utils.js';
import { openEnvelope, sealEnvelope } from './aead.js';
import { fromUtf8, utf8, wipe } from './bytes.js';
import { StoreError } from './errors.js';
import type { KeyEncryptionKey } from './kek.js';
import { CHECK_AAD, CHECK_PLAINTEXT, DATA_KEY_WRAP_AAD, META_KEY } from './layout.js';
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

/** A new random data key and its meta record (wrapped under `kek`, with the check value). */
export async function newDataKey(kek: KeyEncryptionKey): Promise<{ dataKey: Uint8Array; meta: MetaRecord }> {
  const dataKey = randomBytes(32);
  const wrapped = await kek.wrap(dataKey, DATA_KEY_WRAP_AAD);
  const check = sealEnvelope(dataKey, CHECK_PLAINTEXT, CHECK_AAD);
  return { dataKey, meta: { kekId: kek.id, wrapped, check } };
}

/**
 * The data key of `meta`, unwrapped with `kek` and proven by the check value (any backend).
 * `KEK_MISMATCH` naming both KEK ids if it is not this store's KEK; an HSM that cannot be used
 * says so (`KEK_UNAVAILABLE`).
 */
export async function openDataKey(meta: MetaRecord, kek: KeyEncryptionKey, where: string): Promise<Uint8Array> {
  const mismatch = (): StoreError => {
    const ids = meta.kekId === kek.id ? '' : ` (store sealed under KEK ${meta.kekId}, given ${kek.id})`;
    return new StoreError('KEK_MISMATCH', `the key-encryption key does not open ${where}${ids}`);
  };
  let dataKey: Uint8Array;
  try {
    dataKey = await kek.unwrap(meta.wrapped, DATA_KEY_WRAP_AAD);
  } catch (e) {
    if ((e as StoreError).code === 'KEK_UNAVAILABLE') throw e;
    throw mismatch();
  }
  const check = dataKey.length === 32 ? openEnvelope(dataKey, meta.check, CHECK_AAD) : undefined;
  if (check === undefined || !equalBytes(check, CHECK_PLAINTEXT)) {
    wipe(dataKey);
    throw mismatch();
  }
  return dataKey;
}

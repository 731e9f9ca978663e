/**
 * KEK rotation: the store's data key is unwrapped with the old KEK and wrapped again under the
 * new one, and the meta record is replaced in one synced write. No stored value is rewritten
 * (they are sealed under the data key, which does not change). A crash at any point leaves the
 * store under exactly one of the two KEKs: the old record, or the new one whole. Run it again
 * and it finishes (or says the store is already under the new KEK).
 */
import { Level } from 'level';
import { equalBytes } from '@tessera/core';
import { openEnvelope } from './aead.js';
import { StoreError } from './errors.js';
import type { KeyEncryptionKey } from './kek.js';
import { CHECK_AAD, CHECK_PLAINTEXT, DATA_KEY_WRAP_AAD } from './layout.js';
import { levelFailure } from './level-errors.js';
import { readMeta, writeMeta } from './meta.js';

export interface KekRotation {
  /** The KEK id the store was under. */
  from: string;
  /** The KEK id it is under now. */
  to: string;
  /** True if it was under `to` already (a second run after a finished or interrupted one). */
  already: boolean;
}

/** Opens `key` with `kek`, or undefined if it does not open (any failure other than a mismatch throws). */
async function tryUnwrap(
  kek: KeyEncryptionKey,
  wrapped: Uint8Array,
  check: Uint8Array,
): Promise<Uint8Array | undefined> {
  let dataKey: Uint8Array;
  try {
    dataKey = await kek.unwrap(wrapped, DATA_KEY_WRAP_AAD);
  } catch (e) {
    if ((e as StoreError).code === 'KEK_UNAVAILABLE') throw e;
    return undefined;
  }
  const opened = dataKey.length === 32 ? openEnvelope(dataKey, check, CHECK_AAD) : undefined;
  if (opened === undefined || !equalBytes(opened, CHECK_PLAINTEXT)) {
    dataKey.fill(0);
    return undefined;
  }
  return dataKey;
}

/**
 * Re-wraps the data key of the store in `dir` from `from` to `to`. The store must not be open
 * elsewhere (stop the daemon first: LevelDB's lock refuses a second opener).
 */
export async function rotateKek(dir: string, from: KeyEncryptionKey, to: KeyEncryptionKey): Promise<KekRotation> {
  const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
  try {
    await db.open({ createIfMissing: false });
  } catch (e) {
    throw levelFailure(dir, 'open', e);
  }
  try {
    const meta = await readMeta(db, dir);
    if (meta === undefined)
      throw new StoreError('STORE_CORRUPT', `store ${dir} has no data-key record (nothing to rotate)`);
    // Already under the new KEK (this is a re-run): nothing to do.
    const opensWithNew = await tryUnwrap(to, meta.wrapped, meta.check);
    if (opensWithNew) {
      opensWithNew.fill(0);
      return { from: from.id, to: to.id, already: true };
    }
    const dataKey = await tryUnwrap(from, meta.wrapped, meta.check);
    if (!dataKey)
      throw new StoreError(
        'KEK_MISMATCH',
        `the old key-encryption key ${from.id} does not open ${dir} (store sealed under KEK ${meta.kekId})`,
      );
    try {
      const wrapped = await to.wrap(dataKey, DATA_KEY_WRAP_AAD);
      // Prove the new wrapping opens before it replaces the old one.
      const back = await to.unwrap(wrapped, DATA_KEY_WRAP_AAD);
      const same = equalBytes(back, dataKey);
      back.fill(0);
      if (!same)
        throw new StoreError('KEK_INVALID', `the new key-encryption key ${to.id} does not give back what it wrapped`);
      await writeMeta(db, dir, { kekId: to.id, wrapped, check: meta.check });
    } finally {
      dataKey.fill(0);
    }
    return { from: from.id, to: to.id, already: false };
  } finally {
    await db.close().catch(() => undefined);
  }
}

/**
 * Fills a stopped dev cluster with `count` more keys: copies of one real key (same roster and
 * shares) under new key ids, written straight into every signer's vault and the coordinator's
 * registry. Enough for the "signing latency with 100,000 keys stored per signer" row: what is
 * measured is lookup and storage cost, which does not depend on the share values.
 */
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { decodeKeyRecord, decodeKeyShareRecord, encodeKeyRecord, encodeKeyShareRecord } from '@tessera/core';
import { SealedStore, ShareVault, loadKek } from '@tessera/store';

const idOf = (i) => `f${i.toString(16).padStart(15, '0')}`;

export async function fillKeys(dir, signers, keyId, count) {
  const BATCH = 2000;
  for (let s = 1; s <= signers; s++) {
    const id = `signer-${s}`;
    const store = await SealedStore.open(join(dir, id), loadKek({ file: join(dir, 'keks', `${id}.kek`) }));
    try {
      const vault = new ShareVault(store);
      const bytes = await vault.getShare(keyId, 0);
      if (!bytes) continue; // not a holder of this key
      const rec = decodeKeyShareRecord(bytes);
      for (let i = 0; i < count; i += BATCH) {
        const entries = [];
        for (let j = i; j < Math.min(count, i + BATCH); j++)
          entries.push({ keyId: idOf(j), epoch: 0, record: encodeKeyShareRecord({ ...rec, keyId: idOf(j) }) });
        await vault.importShares(entries);
      }
    } finally {
      await store.close();
    }
  }
  const store = await SealedStore.open(
    join(dir, 'coordinator'),
    loadKek({ file: join(dir, 'keks', 'coordinator.kek') }),
  );
  try {
    const rec = decodeKeyRecord(await store.get(`key/${keyId}`));
    for (let i = 0; i < count; i += BATCH) {
      const ops = [];
      for (let j = i; j < Math.min(count, i + BATCH); j++) {
        const v = encodeKeyRecord({ ...rec, keyId: idOf(j) });
        ops.push(
          { type: 'put', key: `key/${idOf(j)}`, value: v },
          { type: 'put', key: `keyepoch/${idOf(j)}/0`, value: v },
        );
      }
      await store.batch(ops, { sync: true });
    }
  } finally {
    await store.close();
  }
  // Settle LevelDB before the cluster restarts: compact what the import wrote, so the row
  // measures signing next to 100,000 stored keys, not a background compaction of the import.
  for (const d of [...Array.from({ length: signers }, (_, i) => `signer-${i + 1}`), 'coordinator'])
    await compact(join(dir, d));
  return { filled: count, sample: idOf(Math.floor(count / 2)) };
}

async function compact(location) {
  // `level` (the store's dependency) is classic-level on Node; resolved from the store package.
  const { Level } = createRequire(import.meta.resolve('@tessera/store'))('level');
  const db = new Level(location, { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.open({ createIfMissing: false });
  try {
    await db.compactRange('', '\uffff');
  } finally {
    await db.close();
  }
}

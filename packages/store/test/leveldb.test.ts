/** The conformance suite against the LevelDB-backed SealedStore. */
import { afterAll } from 'vitest';
import { SealedStore, type SealedKV } from '../src/index.js';
import { runStoreConformance } from './conformance.js';
import { cleanupDirs, randomKek, tempDir } from './helpers.js';

afterAll(cleanupDirs);

const opened = new WeakMap<SealedKV, { dir: string; kek: ReturnType<typeof randomKek> }>();

runStoreConformance(
  'LevelDB',
  async () => {
    const dir = tempDir('conf');
    const kek = randomKek();
    const store = await SealedStore.open(dir, kek);
    opened.set(store, { dir, kek });
    return store;
  },
  {
    reopen: async (store) => {
      const at = opened.get(store);
      if (!at) throw new Error('store not opened by this suite');
      await store.close();
      const again = await SealedStore.open(at.dir, at.kek);
      opened.set(again, at);
      return again;
    },
  },
);

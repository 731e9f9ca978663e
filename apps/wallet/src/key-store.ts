/**
 * The wallet's store key: a non-extractable AES-GCM CryptoKey created on the first visit and kept
 * in IndexedDB (structured clone stores the key object; its bytes never reach this page's script).
 */
const DB = 'tessera-wallet-keys';
const STORE = 'keys';
const NAME = 'device-store';

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function db(): Promise<IDBDatabase> {
  const open = indexedDB.open(DB, 1);
  open.onupgradeneeded = () => open.result.createObjectStore(STORE);
  return request(open);
}

/** The page's store key, created (non-extractable) on first use and written durably. */
export async function storeKey(): Promise<CryptoKey> {
  const d = await db();
  try {
    const found = await request(d.transaction(STORE, 'readonly').objectStore(STORE).get(NAME));
    if (found) return found as CryptoKey;
    const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
    const tx = d.transaction(STORE, 'readwrite', { durability: 'strict' });
    tx.objectStore(STORE).put(key, NAME);
    await new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
    return key;
  } finally {
    d.close();
  }
}

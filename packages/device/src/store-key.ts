/**
 * The key that seals the device store, taken from where the platform keeps keys. Three forms:
 *
 * - 32 raw bytes (Node, tests, an app that manages its own secret): they seal the store directly;
 * - a non-extractable WebCrypto `CryptoKey` (AES-GCM, browsers and Node): the app never holds
 *   the raw bytes — it keeps the `CryptoKey` object in IndexedDB, which stores it without
 *   exposing it;
 * - a {@link KeyProvider}: the adapter to a platform keystore (iOS Keychain / Secure Enclave,
 *   Android Keystore) that wraps and unwraps without letting its own key out.
 *
 * With a `CryptoKey` or a provider, the store is sealed by a random 32-byte data key that is
 * kept in the store only wrapped by the platform key (record `wrapped-key`); it lives in memory
 * while the store is open and is wiped on close.
 */
import { randomBytes } from '@noble/hashes/utils.js';
import { DeviceError } from './errors.js';

/**
 * A platform keystore adapter. `wrap` encrypts the store's data key under a key that never
 * leaves the keystore (authenticated encryption: a changed blob must fail to unwrap); `unwrap`
 * reverses it and rejects when the blob is not one it wrapped.
 */
export interface KeyProvider {
  wrap(dataKey: Uint8Array): Promise<Uint8Array>;
  unwrap(wrapped: Uint8Array): Promise<Uint8Array>;
}

/** The store key: raw bytes, a non-extractable WebCrypto AES-GCM key, or a keystore adapter. */
export type StorageKey = Uint8Array | CryptoKey | KeyProvider;

const AAD = new TextEncoder().encode('tessera-device-store-key/v1');

function isCryptoKey(k: unknown): k is CryptoKey {
  return typeof k === 'object' && k !== null && 'algorithm' in k && 'extractable' in k && 'usages' in k;
}

/** A provider over a WebCrypto AES-GCM key; refuses an extractable key (its bytes could leave). */
export function webCryptoKeyProvider(key: CryptoKey): KeyProvider {
  if (key.extractable)
    throw new DeviceError(
      'INVALID_ARGUMENT',
      'the device storage CryptoKey must be non-extractable (generateKey(..., false, ["encrypt", "decrypt"]))',
    );
  if (
    (key.algorithm as { name?: string }).name !== 'AES-GCM' ||
    !key.usages.includes('encrypt') ||
    !key.usages.includes('decrypt')
  )
    throw new DeviceError(
      'INVALID_ARGUMENT',
      'the device storage CryptoKey must be an AES-GCM key for encrypt and decrypt',
    );
  return {
    async wrap(dataKey) {
      const iv = randomBytes(12);
      const ct = new Uint8Array(
        await crypto.subtle.encrypt(
          { name: 'AES-GCM', iv, additionalData: AAD },
          key,
          dataKey as Uint8Array<ArrayBuffer>,
        ),
      );
      const out = new Uint8Array(12 + ct.length);
      out.set(iv, 0);
      out.set(ct, 12);
      return out;
    },
    async unwrap(wrapped) {
      return new Uint8Array(
        await crypto.subtle.decrypt(
          { name: 'AES-GCM', iv: wrapped.subarray(0, 12) as Uint8Array<ArrayBuffer>, additionalData: AAD },
          key,
          wrapped.subarray(12) as Uint8Array<ArrayBuffer>,
        ),
      );
    },
  };
}

/** Raw bytes, checked; or the provider behind a `CryptoKey` or adapter. */
export function resolveStorageKey(key: StorageKey): { raw: Uint8Array } | { provider: KeyProvider } {
  if (key instanceof Uint8Array) {
    if (key.length !== 32) throw new DeviceError('INVALID_ARGUMENT', 'the device storage key must be 32 bytes');
    return { raw: key };
  }
  if (isCryptoKey(key)) return { provider: webCryptoKeyProvider(key) };
  if (
    typeof key === 'object' &&
    key !== null &&
    typeof (key as KeyProvider).wrap === 'function' &&
    typeof (key as KeyProvider).unwrap === 'function'
  )
    return { provider: key as KeyProvider };
  throw new DeviceError(
    'INVALID_ARGUMENT',
    'the device storage key must be 32 bytes, a non-extractable AES-GCM CryptoKey or a key provider',
  );
}

/** Unwraps the stored data key; any failure (wrong key, changed blob, bad length) is STORE_KEY. */
export async function unwrapDataKey(provider: KeyProvider, wrapped: Uint8Array): Promise<Uint8Array> {
  let k: Uint8Array;
  try {
    k = await provider.unwrap(wrapped);
  } catch {
    k = new Uint8Array(0);
  }
  if (!(k instanceof Uint8Array) || k.length !== 32)
    throw new DeviceError('STORE_KEY', 'the device store key cannot be unwrapped: wrong platform key or damaged store');
  return k;
}

/** A fresh data key and its wrapped form, for a new store. */
export async function newDataKey(provider: KeyProvider): Promise<{ dataKey: Uint8Array; wrapped: Uint8Array }> {
  const dataKey = randomBytes(32);
  const wrapped = await provider.wrap(dataKey.slice());
  if (!(wrapped instanceof Uint8Array) || wrapped.length === 0)
    throw new DeviceError('INVALID_ARGUMENT', 'the key provider returned no wrapped key');
  // Proved before the store depends on it: a provider that cannot unwrap its own output is refused.
  const back = await unwrapDataKey(provider, wrapped).catch(() => new Uint8Array(0));
  if (back.length !== 32 || back.some((b, i) => b !== dataKey[i]))
    throw new DeviceError('INVALID_ARGUMENT', 'the key provider does not unwrap what it wrapped');
  return { dataKey, wrapped };
}

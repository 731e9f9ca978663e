/**
 * What a device is opened with (`Device.open`, `Device.restore`): where its store is and the key
 * sealing it, how it reaches the gateway, its own rules and clock, and the operators it trusts.
 */
import type { OperatorPolicy, Rng } from '@tessera/core';
import type { KvStore, LevelLike } from './kv.js';
import type { RiskRules } from './risk.js';
import type { StorageKey } from './store-key.js';
import type { Transport } from './transport.js';

export interface DeviceOptions {
  /** A directory (Node), an IndexedDB database name (browser), or an abstract-level database (React Native). */
  location: string | LevelLike | KvStore;
  /**
   * The key sealing the device store: 32 bytes, a non-extractable WebCrypto AES-GCM key, or a
   * platform keystore adapter (store-key.ts).
   */
  storageKey: StorageKey;
  /** How calls reach the gateway (default: `fetch`). */
  transport?: Transport;
  /** The `allowance` event fires when a key's unused reservations fall to this many (default 2). */
  allowanceLowAt?: number;
  /** The device's own rules before it signs offline (risk.ts): velocity, device integrity. */
  risk?: RiskRules;
  clock?: () => number;
  rng?: Rng;
  /**
   * Operator keys this device trusts to authorise refresh and reshare (M-of-N). Without them the
   * device applies refreshes and commits (neither can move a key), joins a key by reshare only
   * when it asked to, and contributes to no reshare.
   */
  operators?: OperatorPolicy;
}

/**
 * @tessera/device — the device SDK: one share on a phone or in a browser; offline co-signing
 * against reserved nonce commitments; a durable queue synced exactly once; two-device signing;
 * encrypted backups. No Node-only code: storage is LevelDB on Node, IndexedDB in browsers, the
 * network is `fetch` unless the app passes its own transport. Start at `Tessera.open`.
 */
export {
  Device,
  type DeviceOptions,
  type DeviceKeyInfo,
  type GatewayUrl,
  type QueuedPackage,
  type SyncResult,
} from './device.js';
export { DeviceError } from './errors.js';
/** Every `code` a device error can carry (the cluster's codes pass through unchanged). */
export type { ErrorCode as DeviceErrorCode } from '@tessera/core';
export { Tessera, Wallet, type WalletOptions, type OfflinePayment } from './wallet.js';
export type { DeviceEvents, DeviceEventType, DeviceListener } from './events.js';
export type { KvOp, KvStore, LevelLike } from './kv.js';
export {
  fetchTransport,
  TransportError,
  type Transport,
  type TransportRequest,
  type TransportResponse,
} from './transport.js';
export { webCryptoKeyProvider, type KeyProvider, type StorageKey } from './store-key.js';
export type { IntegrityVerdict, RiskRules } from './risk.js';
export type { AllowanceRequest, FiatCapRequest } from './payments.js';
export type { PaymentTx, TypedPayment } from '@tessera/core';
export type { JournalEntry, JournalEvent, JournalKind } from './journal.js';
export type { ClusterComparison, ClusterRecord, ReconciliationReport } from './reconcile.js';
export { GatewayClient, gatewayUrls } from './gateway-client.js';
export { encryptBackup, decryptBackup, splitBackup, combineBackup } from './backup-api.js';
export { backupToText, backupFromText, backupPasswordWeakness, type BackupOptions } from './backup-format.js';
export { packageToText, packageFromText } from '@tessera/core';

/**
 * The app developer's entry point: `const wallet = await Tessera.open({ gateway, storage, key })`
 * gives one object bound to its cluster gateway and its store, with the device's identity created
 * on first open. Every call that needs the cluster uses the bound gateway; offline calls
 * (`pay`, `journal`, `reconcile({ local: true })`) never touch the network. The lower-level
 * {@link Device} stays available as `wallet.device`.
 */
import type { OperatorPolicy, PaymentTx, Rng, SuiteId } from '@tessera/core';
import type { AllowanceRequest } from './payments.js';
import type { KvStore, LevelLike } from './kv.js';
import type { BackupOptions } from './backup-format.js';
import {
  Device,
  type DeviceKeyInfo,
  type DeviceOptions,
  type GatewayUrl,
  type QueuedPackage,
  type SyncResult,
} from './device.js';
import type { DeviceEventType, DeviceListener } from './events.js';
import type { JournalEntry } from './journal.js';
import type { ReconciliationReport } from './reconcile.js';
import type { IntegrityVerdict, RiskRules } from './risk.js';
import type { StorageKey } from './store-key.js';
import type { Transport } from './transport.js';

export interface WalletOptions {
  /** The cluster's device gateway: one URL, or every coordinator replica's. */
  gateway: GatewayUrl;
  /** Where the device store lives: a directory (Node), an IndexedDB name (browser), or an abstract-level database. */
  storage: string | LevelLike | KvStore;
  /** The store key: 32 bytes, a non-extractable WebCrypto AES-GCM key, or a platform keystore adapter. */
  key: StorageKey;
  /** The device id to create on first open (default: a random `device-…`). */
  id?: string;
  /** What this device is, for the cluster's offline KPIs: ios, android, browser, desktop, cli, pos, other. */
  deviceClass?: string;
  /** How calls reach the gateway (default: `fetch`); React Native or tests pass their own. */
  transport?: Transport;
  /** The `allowance` event fires at or below this many unused reservations (default 2). */
  allowanceLowAt?: number;
  /** The device's own rules before it signs offline: velocity, device integrity (risk.ts). */
  risk?: RiskRules;
  /** Operator keys this device trusts to authorise refresh and reshare (M-of-N). */
  operators?: OperatorPolicy;
  clock?: () => number;
  rng?: Rng;
}

/** A payment signed offline: the package to hand over (bytes, or text for a QR code or a message). */
export interface OfflinePayment {
  packageId: string;
  keyId: string;
  bytes: Uint8Array;
  text: string;
  /** The payment as read from the transaction (amounts in base units), when it paid one. */
  payment?: { chain: string; asset: string; amount: string; fee: string; to: string[] };
}

/** The Device options a wallet's options name. */
function deviceOptions(opts: WalletOptions): DeviceOptions {
  return {
    location: opts.storage,
    storageKey: opts.key,
    ...(opts.transport ? { transport: opts.transport } : {}),
    ...(opts.allowanceLowAt !== undefined ? { allowanceLowAt: opts.allowanceLowAt } : {}),
    ...(opts.risk ? { risk: opts.risk } : {}),
    ...(opts.operators ? { operators: opts.operators } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.rng ? { rng: opts.rng } : {}),
  };
}

export class Wallet {
  private constructor(
    /** The device underneath, for what the wallet does not wrap (two-device co-signing). */
    readonly device: Device,
    readonly gateway: GatewayUrl,
    private readonly deviceClass = '',
  ) {}

  /** Opens (creating on first use) the wallet's store and identity. */
  static async open(opts: WalletOptions): Promise<Wallet> {
    const device = await Device.open(deviceOptions(opts));
    try {
      await device.init(opts.id);
    } catch (e) {
      await device.close();
      throw e;
    }
    return new Wallet(device, opts.gateway, opts.deviceClass);
  }

  /** This device's participant id. */
  get id(): string {
    return this.device.id;
  }

  on<K extends DeviceEventType>(type: K, listener: DeviceListener<K>): () => void {
    return this.device.on(type, listener);
  }

  /** Registers with the cluster using an operator's one-time token. */
  enrol(token: string): Promise<{ device: string }> {
    return this.device.enrol(this.gateway, token, { deviceClass: this.deviceClass });
  }

  /** Creates a key with the cluster's signer nodes (`with`: which ones; default every connected node). */
  createKey(req: { suite: SuiteId; threshold: number; with?: string[] }): Promise<DeviceKeyInfo> {
    return this.device.keygen(this.gateway, req);
  }

  /**
   * Reserves `count` offline payments on `keyId` with its co-signers. With `caps`, the co-signers
   * sign them into the reservations: these then pay transactions only, within the caps, counted
   * over all of them (by the device, the merchant's check and each co-signer).
   */
  reserve(req: {
    keyId: string;
    count: number;
    cosigners?: string[];
    ttlMs?: number;
    caps?: AllowanceRequest;
  }): Promise<{ added: number; allowance: number; errors: string[] }> {
    return this.device.reserve(this.gateway, req);
  }

  /**
   * Signs offline (no network) against the next reservation; the package is queued durably first.
   * Pass the `payment` (`{ chain: 'bitcoin', tx: psbtBytes, input }`): the message is derived from
   * it; or a bare `message` on reservations without caps.
   */
  pay(req: {
    keyId: string;
    message?: Uint8Array;
    payment?: PaymentTx;
    integrity?: IntegrityVerdict;
  }): Promise<OfflinePayment> {
    return this.device.signOffline(req);
  }

  /** Delivers the queued packages in order; each completes once on the cluster. */
  sync(opts: { concurrency?: number } = {}): Promise<SyncResult> {
    return this.device.sync(this.gateway, opts);
  }

  /** The reconciliation report; compared with the cluster's record unless `local`. */
  reconcile(opts: { local?: boolean } = {}): Promise<ReconciliationReport> {
    return opts.local ? this.device.reconcile() : this.device.reconcile(this.gateway);
  }

  /** Keeps the participant link open (refresh/reshare catch-up, keys other devices start with `acceptKeygen`). */
  connect(opts: { acceptKeygen?: boolean } = {}): Promise<void> {
    return this.device.connect(this.gateway, opts);
  }

  disconnect(): Promise<void> {
    return this.device.disconnect();
  }

  keys(): Promise<DeviceKeyInfo[]> {
    return this.device.keys();
  }

  status(): ReturnType<Device['status']> {
    return this.device.status();
  }

  queue(): Promise<QueuedPackage[]> {
    return this.device.queue();
  }

  journal(): Promise<JournalEntry[]> {
    return this.device.journal();
  }

  /** The key's public record, for a merchant's offline {@link checkPackage}. */
  keyRecord(keyId: string): Promise<Uint8Array> {
    return this.device.keyRecord(keyId);
  }

  /** An encrypted backup of the identity and shares (never reservations or the queue). */
  backup(password: string, opts?: BackupOptions): Promise<Uint8Array> {
    return this.device.exportBackup(password, opts);
  }

  /** Restores a backup into a new, empty store, bound to `gateway`. */
  static async restore(opts: WalletOptions & { backup: Uint8Array; password: string }): Promise<Wallet> {
    const device = await Device.restore({ ...deviceOptions(opts), backup: opts.backup, password: opts.password });
    return new Wallet(device, opts.gateway, opts.deviceClass);
  }

  close(): Promise<void> {
    return this.device.close();
  }
}

/** `Tessera.open(...)`: the SDK's front door. */
export const Tessera = {
  open: (opts: WalletOptions): Promise<Wallet> => Wallet.open(opts),
  restore: (opts: WalletOptions & { backup: Uint8Array; password: string }): Promise<Wallet> => Wallet.restore(opts),
} as const;

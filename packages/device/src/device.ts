/**
 * The device SDK: one share of a key on a phone (or in a browser). Online, the device enrols,
 * takes part in DKG through the gateway's long-poll link and reserves nonce commitments from
 * co-signer nodes (its offline allowance). Offline, it signs against a reservation and queues a
 * self-verifying package; the reservation is marked used and the package queued in one synced
 * write before the package is handed out. Back online, `sync` submits the queue in order and
 * collects the signatures, each checked with the plain single-party verifier. This class holds the
 * device's state and serialises its writes; the work of each operation is in the module it names.
 */
import {
  ParticipantIdentity,
  decodeIdentityRecord,
  decodeMessage,
  encodeIdentityRecord,
  encodeKeyRecord,
  encodeMessage,
  participantToWire,
  toHex,
  type ParticipantPublic,
  type Rng,
  type SuiteId,
} from '@tessera/core';
import { randomBytes } from '@noble/hashes/utils.js';
import type { AllowanceRequest } from './payments.js';
import {
  EXPIRY_MARGIN_MS,
  type OfflineRequest,
  type OfflineSignContext,
  type OfflineSigned,
  signOfflinePackage,
} from './offline-sign.js';
import type { BackupOptions } from './backup-format.js';
import { DeviceError } from './errors.js';
import { DeviceEmitter, type DeviceEventType, type DeviceListener } from './events.js';
import { clusterFor, clustersOf, saveEnrolment, type Enrolment, type GatewayUrl } from './enrolment.js';
import { type DeviceKeyInfo, type Holdings, holdings, keyInfo } from './holdings.js';
import { fetchTransport, type Transport } from './transport.js';
import { GatewayClient, gatewayUrls } from './gateway-client.js';
import { Journal, type JournalEntry } from './journal.js';
import { reconcile, type ReconciliationReport } from './reconcile.js';
import { type ReserveContext, reserveSlots } from './reserve.js';
import { compensateRefused, withClusterRecord } from './settlement.js';
import { DeviceStorage } from './storage.js';
import { deliverQueue, type QueuedPackage, type SyncContext, type SyncResult } from './sync.js';
import { answer, complete, propose, type CosignContext } from './cosign.js';
import { DeviceLink, type DeviceLinkContext } from './device-link.js';
import type { DeviceOptions } from './device-options.js';

export type { DeviceOptions } from './device-options.js';

export type { DeviceKeyInfo } from './holdings.js';
export type { GatewayUrl } from './enrolment.js';
export type { QueuedPackage, SyncResult } from './sync.js';

/**
 * What the modules doing the device's work need of it (holdings.ts, device-link.ts, link.ts,
 * reserve.ts, offline-sign.ts, sync.ts, cosign.ts, backup-state.ts): one object, made once.
 */
type DeviceContext = Holdings &
  DeviceLinkContext &
  CosignContext &
  Omit<OfflineSignContext, 'id'> &
  Omit<SyncContext, 'client'> &
  ReserveContext;

export class Device {
  readonly #store: DeviceStorage;
  readonly #journal: Journal;
  readonly #clock: () => number;
  readonly #rng: Rng;
  #identity: ParticipantIdentity | undefined;
  #lock: Promise<unknown> = Promise.resolve();
  /** Cluster ids by gateway URL, as each enrolment answered (stored in the enrolment record). */
  #clusters = new Map<string, string>();
  /** Per list of gateway URLs (coordinator replicas), the one that answered last. */
  readonly #leaders = new Map<string, { index: number }>();

  readonly #events = new DeviceEmitter();
  readonly #transport: Transport;
  /** What the modules doing the work need of this device (each module's `…Context` names its part). */
  readonly #ctx: DeviceContext;
  /** The link to the cluster, while connected (device-link.ts). */
  readonly #link: DeviceLink;

  private constructor(store: DeviceStorage, opts: DeviceOptions) {
    this.#store = store;
    this.#clock = opts.clock ?? Date.now;
    this.#journal = new Journal(store, this.#clock);
    this.#rng = opts.rng ?? (randomBytes as Rng);
    const operators = opts.operators;
    this.#transport = opts.transport ?? fetchTransport;
    const allowanceLowAt = opts.allowanceLowAt ?? 2;
    const me = () => this.#me();
    const held = holdings(store, this.#clock);
    this.#ctx = {
      ...held,
      store,
      journal: this.#journal,
      events: this.#events,
      clock: this.#clock,
      rng: this.#rng,
      risk: opts.risk ?? {},
      operators,
      me,
      identity: me,
      serial: (fn) => this.#serial(fn),
      /** Emits `allowance` when the key's unused reservations are at or below the app's threshold. */
      checkAllowance: async (keyId) => {
        const remaining = await held.allowance(keyId);
        if (remaining <= allowanceLowAt) this.#events.emit('allowance', { keyId, remaining });
      },
      gateway: (url) => this.#client(url),
    };
    this.#link = new DeviceLink(this.#ctx);
  }

  /** Opens the device store (creating it if needed). Call {@link init} once to create the identity. */
  static async open(opts: DeviceOptions): Promise<Device> {
    const store = await DeviceStorage.open(opts.location, opts.storageKey);
    const d = new Device(store, opts);
    const id = await store.get('identity');
    if (id) d.#identity = decodeIdentityRecord(id);
    d.#clusters = clustersOf(await store.getJson<Enrolment>('enrolment'));
    return d;
  }

  /** Creates the device identity (idempotent: an existing identity is kept). */
  async init(id?: string): Promise<ParticipantPublic> {
    return this.#serial(async () => {
      if (this.#identity) return this.#identity.public;
      const name = id ?? `device-${toHex(this.#rng(4))}`;
      const identity = ParticipantIdentity.generate(name, this.#rng);
      await this.#store.put('identity', encodeIdentityRecord(identity));
      this.#identity = identity;
      return identity.public;
    });
  }

  get id(): string {
    return this.#me().id;
  }

  get info(): ParticipantPublic {
    return this.#me().public;
  }

  #me(): ParticipantIdentity {
    if (!this.#identity) throw new DeviceError('NOT_INITIALISED', 'this device has no identity yet: run init first');
    return this.#identity;
  }

  /** A client for `url`, naming the cluster that URL enrolled this device in (enrolment.ts). */
  #client(url: GatewayUrl, op?: 'enrol'): GatewayClient {
    const urls = gatewayUrls(url);
    const cluster = clusterFor(this.#clusters, urls, op);
    const list = urls.join(',');
    let leader = this.#leaders.get(list);
    if (!leader) this.#leaders.set(list, (leader = { index: 0 }));
    return new GatewayClient(urls, this.#me(), this.#rng, this.#clock, cluster ?? '', leader, this.#transport);
  }

  /** Listens for the device's events (events.ts); the returned function stops listening. */
  on<K extends DeviceEventType>(type: K, listener: DeviceListener<K>): () => void {
    return this.#events.on(type, listener);
  }

  off<K extends DeviceEventType>(type: K, listener: DeviceListener<K>): void {
    this.#events.off(type, listener);
  }

  /** Serialises state-changing operations within this process. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn, fn);
    this.#lock = run.catch(() => undefined);
    return run;
  }

  // ---- online ----------------------------------------------------------------------------------

  /**
   * Registers this device with the cluster using an operator's one-time token. `deviceClass`
   * (ios, android, browser, desktop, cli, pos, other) labels the cluster's offline KPIs; it never
   * identifies the device.
   */
  async enrol(url: GatewayUrl, token: string, opts: { deviceClass?: string } = {}): Promise<{ device: string }> {
    const me = this.#me();
    const out = decodeMessage(
      'DeviceEnrolled',
      await this.#client(url, 'enrol').call(
        'enrol',
        encodeMessage('DeviceEnrol', {
          token,
          participant: participantToWire(me.public),
          deviceClass: opts.deviceClass ?? '',
        }),
      ),
    );
    return this.#serial(async () => {
      this.#clusters = await saveEnrolment(this.#store, this.#clusters, url, out, this.#clock);
      return { device: out.device };
    });
  }

  /**
   * Links the device to the cluster (the long-poll participant link) until {@link disconnect}.
   * With `acceptKeygen`, DKGs other participants start with this device are joined; otherwise
   * the device joins only DKGs it asked for itself ({@link keygen}).
   */
  async connect(url: GatewayUrl, opts: { acceptKeygen?: boolean } = {}): Promise<void> {
    return this.#link.connect(url, opts);
  }

  async disconnect(): Promise<void> {
    return this.#link.disconnect();
  }

  get connected(): boolean {
    return this.#link.connected;
  }

  /**
   * Creates a key whose participants are this device and the given signer nodes (default: every
   * connected node). The device stays linked for the duration of the DKG.
   */
  async keygen(url: GatewayUrl, req: { suite: SuiteId; threshold: number; with?: string[] }): Promise<DeviceKeyInfo> {
    return this.#link.keygen(url, req);
  }

  /** Reserves `count` offline signatures on `keyId` (each slot: one reservation per co-signer). */
  async reserve(
    url: GatewayUrl,
    req: {
      keyId: string;
      count: number;
      cosigners?: string[];
      ttlMs?: number;
      /** What the device may pay with these reservations (payments.ts); absent: any message. */
      caps?: AllowanceRequest;
    },
  ): Promise<{ added: number; allowance: number; errors: string[] }> {
    // An ECDSA key reserves presignatures (ecdsa-offline.ts, with @tessera/ecdsa, on first use).
    if ((await this.#ctx.key(req.keyId)).key.suite.scheme === 'ecdsa')
      return (await import('./ecdsa-offline.js')).reserveEcdsa(this.#ecdsaCtx(), url, req);
    return reserveSlots(this.#ctx, url, req);
  }

  #ecdsaCtx() {
    return {
      ...this.#ctx,
      id: this.id,
      expiryMarginMs: EXPIRY_MARGIN_MS,
      presigning: <T>(url: GatewayUrl, keyId: string, sessions: ReadonlySet<string>, call: () => Promise<T>) =>
        this.#link.presigning(url, keyId, sessions, call),
      presignRunning: (keyId: string, session: string) => this.#link.presignRunning(keyId, session),
    };
  }

  // ---- offline ---------------------------------------------------------------------------------

  /**
   * Signs offline against the next unused reservation that can (offline-sign.ts). The reservation
   * is removed and the package queued in one synced write before the package is returned: a crash
   * before that write releases nothing; after it, the package is in the queue and will be delivered.
   */
  async signOffline(req: OfflineRequest): Promise<OfflineSigned> {
    return this.#serial(async () =>
      (await this.#ctx.key(req.keyId)).key.suite.scheme === 'ecdsa'
        ? (await import('./ecdsa-offline.js')).signEcdsaOffline(this.#ecdsaCtx(), req)
        : signOfflinePackage({ ...this.#ctx, id: this.id }, req),
    );
  }

  /**
   * Submits every pending package in queue order (up to `concurrency`, default 8, in flight) and
   * records the outcomes (sync.ts). A package whose co-signer is unreachable stays pending; one
   * that can never complete (used, expired or invalid reservation) is marked failed with its code.
   */
  async sync(url: GatewayUrl, opts: { concurrency?: number } = {}): Promise<SyncResult> {
    const client = this.#client(url);
    return this.#serial(() => deliverQueue({ ...this.#ctx, client }, opts));
  }

  /** The queue, oldest first. */
  async queue(): Promise<QueuedPackage[]> {
    return this.#ctx.queue();
  }

  /** The event journal, oldest first, its hash chain checked (JOURNAL_TAMPERED if broken). */
  async journal(): Promise<JournalEntry[]> {
    return this.#journal.read();
  }

  /**
   * The reconciliation report: the journal replayed in order against the queue and, given the
   * gateway, compared with the cluster's record of this device's packages (`cluster`; when the
   * cluster cannot be reached, `compared: false` with the reason).
   */
  async reconcile(url?: GatewayUrl): Promise<ReconciliationReport> {
    const report = reconcile(await this.#journal.read(), await this.queue());
    if (url === undefined) return report;
    return withClusterRecord(report, () => this.#client(url));
  }

  /**
   * Records that the wallet settled a refused payment with its user (refunded, re-paid, told).
   * Only a package the cluster refused can be compensated; a second call changes nothing.
   */
  async compensate(packageId: string, note = ''): Promise<{ packageId: string; compensated: true; already: boolean }> {
    return this.#serial(() => compensateRefused(this.#journal, packageId, note));
  }

  /** What this device holds: identity, keys with their offline allowance, and the queue. */
  async status(): Promise<{
    device: string | null;
    enrolled: boolean;
    keys: (DeviceKeyInfo & { allowance: number; nextExpiry: number | null })[];
    queue: { pending: number; completed: number; failed: number };
  }> {
    const keys = [];
    const ctx = this.#ctx;
    for (const keyId of await ctx.keyIds()) {
      const rec = await ctx.key(keyId);
      const next = await ctx.nextExpiry(keyId);
      keys.push({ ...keyInfo(rec), allowance: await ctx.allowance(keyId), nextExpiry: next });
    }
    const q = await this.queue();
    return {
      device: this.#identity?.id ?? null,
      enrolled: (await this.#store.get('enrolment')) !== undefined,
      keys,
      queue: {
        pending: q.filter((x) => x.state === 'pending').length,
        completed: q.filter((x) => x.state === 'completed').length,
        failed: q.filter((x) => x.state === 'failed').length,
      },
    };
  }

  /** The key's public record (no secret), for a merchant to check this device's packages offline. */
  async keyRecord(keyId: string): Promise<Uint8Array> {
    const rec = await this.#ctx.key(keyId);
    return encodeKeyRecord({ keyId: rec.keyId, epoch: rec.epoch, key: rec.key, createdAt: rec.createdAt });
  }

  async keys(): Promise<DeviceKeyInfo[]> {
    const out: DeviceKeyInfo[] = [];
    for (const id of await this.#ctx.keyIds()) out.push(keyInfo(await this.#ctx.key(id)));
    return out;
  }

  // ---- two devices, no cluster (cosign.ts) ---------------------------------------------------

  /**
   * Round one: this device's commitment and the message, for another device of the key to
   * co-sign. The nonce waits for the answer in the device store as `cosign/<request digest>`,
   * sealed under the storage key like every record; {@link completeCosign} replaces it with a
   * spent marker before using it.
   */
  async proposeCosign(req: {
    keyId: string;
    message: Uint8Array;
  }): Promise<{ request: Uint8Array; requestId: string }> {
    return this.#serial(() => propose(this.#ctx, req));
  }

  /** Round two on the other device: checks the request came from a participant of the key, then answers. */
  async cosign(request: Uint8Array): Promise<{ response: Uint8Array; keyId: string; message: string; from: string }> {
    return answer(this.#ctx, request);
  }

  /**
   * Back on the proposer: verifies the answer, signs with the pending nonce (used once),
   * aggregates. Durable first: once the answer checks out, the pending nonce is replaced by a
   * spent marker in one synced write, and only then is this device's share computed. A crash
   * after that write, or a second answer to the same request (identical or not), finds no nonce
   * and is refused INVALID_STATE: propose again. A bad answer leaves the request pending.
   */
  async completeCosign(
    response: Uint8Array,
  ): Promise<{ keyId: string; message: string; signature: string; signers: string[] }> {
    return this.#serial(() => complete(this.#ctx, response));
  }

  // ---- backup (backup-state.ts) ------------------------------------------------------------------

  /**
   * An encrypted export of the identity and key shares (never reservations or the queue: a
   * restored device reserves afresh, so no reservation can be used from two devices).
   */
  async exportBackup(password: string, opts?: BackupOptions): Promise<Uint8Array> {
    // The backup chunk (its KDFs, the state's export) comes on first use.
    return (await import('./backup.js')).exportState(this.#ctx, password, opts);
  }

  /** Restores a backup into a new, empty device store. */
  static async restore(opts: DeviceOptions & { backup: Uint8Array; password: string }): Promise<Device> {
    const { openState, restoreWrites } = await import('./backup.js');
    const parsed = await openState(opts.backup, opts.password);
    const d = await Device.open(opts);
    if (d.#identity) {
      await d.close();
      throw new DeviceError(
        'INVALID_ARGUMENT',
        'the target device store already has an identity: restore into an empty one',
      );
    }
    const { identity, ops } = restoreWrites(parsed);
    await d.#store.batch(ops);
    d.#identity = identity;
    d.#clusters = clustersOf(parsed.enrolment as Enrolment | null);
    return d;
  }

  async close(): Promise<void> {
    await this.disconnect();
    await this.#lock;
    await this.#store.close();
  }
}

/**
 * The device SDK: one share of a key on a phone (or in a browser). Online, the device enrols,
 * takes part in DKG through the gateway's long-poll link and reserves nonce commitments from
 * co-signer nodes (its offline allowance). Offline, it signs against a reservation and queues a
 * self-verifying package; the reservation is marked used and the package queued in one synced
 * write before the package is handed out. Back online, `sync` submits the queue in order and
 * collects the signatures, each checked with the plain single-party verifier.
 */
import {
  ParticipantIdentity,
  completeCosign,
  decodeIdentityRecord,
  decodeKeyShareRecord,
  decodeMessage,
  encodeIdentityRecord,
  encodeKeyRecord,
  encodeMessage,
  fromHex,
  getSuite,
  groupPublicKey,
  openReservation,
  participantToWire,
  toHex,
  type Allowance,
  type KeyShareRecord,
  type OperatorPolicy,
  type ParticipantPublic,
  type Rng,
  type SuiteId,
  type WireTypes,
} from '@tessera/core';
import { type AllowanceRequest, allowanceRequest } from './payments.js';
import {
  EXPIRY_MARGIN_MS,
  type OfflineRequest,
  type OfflineSigned,
  type Slot,
  pad,
  signOfflinePackage,
} from './offline-sign.js';

type WireAllowance = WireTypes['Allowance'];

/** Whether a granted allowance has the caps asked for (its id is the co-signer's). */
function sameCaps(granted: Allowance | null | undefined, asked: Allowance): boolean {
  const key = (a: Allowance) => JSON.stringify([a.caps, a.perPayment]);
  return !!granted && key(granted) === key(asked);
}
import { randomBytes } from '@noble/hashes/utils.js';
import { decryptBackup, encryptBackup } from './backup-api.js';
import type { BackupOptions } from './backup-format.js';
import { DeviceError } from './errors.js';
import { DeviceEmitter, type DeviceEventType, type DeviceListener } from './events.js';
import type { StorageKey } from './store-key.js';
import { fetchTransport, type Transport } from './transport.js';
import { GatewayClient, gatewayUrls } from './gateway-client.js';
import { Journal, type JournalEntry } from './journal.js';
import { compareWithCluster, reconcile, type ReconciliationReport } from './reconcile.js';
import { DeviceStorage } from './storage.js';
import type { RiskRules } from './risk.js';
import { deliverQueue, type QueuedPackage, type SyncResult } from './sync.js';
import { answer, complete, propose, type CosignContext } from './cosign.js';
import { LinkTasks, openLink, sayBye, type Link } from './link.js';
import type { KvStore, LevelLike } from './kv.js';

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

export interface DeviceKeyInfo {
  keyId: string;
  suite: SuiteId;
  threshold: number;
  participants: string[];
  publicKey: string;
  epoch: number;
}

/** The stored enrolment: the latest one, and the cluster id of every gateway URL enrolled at. */
interface Enrolment {
  device: string;
  gateway: string;
  at: number;
  clusterId?: string;
  clusters?: Record<string, string>;
}

/**
 * Where the cluster's device gateway is: one URL, or every coordinator replica's (a list, or one
 * string of comma-separated URLs); calls go to the replica that leads.
 */
export type GatewayUrl = string | readonly string[];

function clustersOf(e: Enrolment | null | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!e || typeof e !== 'object') return out;
  for (const [u, c] of Object.entries(e.clusters ?? {})) if (typeof c === 'string' && c) out.set(u, c);
  if (typeof e.gateway === 'string' && typeof e.clusterId === 'string' && e.clusterId) {
    // Records before the clusters map: the one gateway (or list) of the latest enrolment.
    for (const u of e.gateway.split(',')) {
      const k = u.trim().replace(/\/+$/, '');
      if (k && !out.has(k)) out.set(k, e.clusterId);
    }
  }
  return out;
}

export type { QueuedPackage, SyncResult } from './sync.js';

export class Device {
  readonly #store: DeviceStorage;
  readonly #journal: Journal;
  readonly #clock: () => number;
  readonly #rng: Rng;
  #identity: ParticipantIdentity | undefined;
  #lock: Promise<unknown> = Promise.resolve();
  #link: Link | undefined;
  #linkUrl: GatewayUrl | undefined;
  readonly #tasks: LinkTasks;
  /** Cluster ids by gateway URL, as each enrolment answered (stored in the enrolment record). */
  #clusters = new Map<string, string>();
  /** Per list of gateway URLs (coordinator replicas), the one that answered last. */
  readonly #leaders = new Map<string, { index: number }>();

  readonly #operators: OperatorPolicy | undefined;
  readonly #events = new DeviceEmitter();
  readonly #transport: Transport;
  readonly #allowanceLowAt: number;
  readonly #risk: RiskRules;

  private constructor(store: DeviceStorage, opts: DeviceOptions) {
    this.#store = store;
    this.#clock = opts.clock ?? Date.now;
    this.#journal = new Journal(store, this.#clock);
    this.#rng = opts.rng ?? (randomBytes as Rng);
    this.#operators = opts.operators;
    this.#transport = opts.transport ?? fetchTransport;
    this.#allowanceLowAt = opts.allowanceLowAt ?? 2;
    this.#risk = opts.risk ?? {};
    this.#tasks = new LinkTasks({
      me: () => this.#me(),
      rng: this.#rng,
      clock: this.#clock,
      store,
      operators: this.#operators,
      events: this.#events,
      serial: (fn) => this.#serial(fn),
      epochs: () => this.#epochs(),
    });
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

  /**
   * A client for `url`, naming the cluster that URL enrolled this device in. An unknown URL of a
   * device enrolled in one cluster only (another gateway of it) names that cluster, except in
   * an enrolment, which names only what it knows of that very URL.
   */
  #client(url: GatewayUrl, op?: 'enrol'): GatewayClient {
    const urls = gatewayUrls(url);
    let cluster = urls.map((u) => this.#clusters.get(u)).find((c) => c !== undefined);
    if (cluster === undefined && op !== 'enrol') {
      const all = new Set(this.#clusters.values());
      if (all.size === 1) cluster = [...all][0];
    }
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

  /** Emits `allowance` when the key's unused reservations are at or below the app's threshold. */
  async #checkAllowance(keyId: string): Promise<void> {
    const remaining = await this.#allowance(keyId);
    if (remaining <= this.#allowanceLowAt) this.#events.emit('allowance', { keyId, remaining });
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
      // Every URL given names the same cluster (the replicas of one coordinator).
      const clusters = new Map(this.#clusters);
      for (const u of gatewayUrls(url)) clusters.set(u, out.clusterId);
      const record: Enrolment = {
        device: out.device,
        gateway: gatewayUrls(url).join(','),
        at: this.#clock(),
        clusterId: out.clusterId,
        clusters: Object.fromEntries(clusters),
      };
      await this.#store.put('enrolment', DeviceStorage.json(record));
      this.#clusters = clusters;
      return { device: out.device };
    });
  }

  /**
   * Links the device to the cluster (the long-poll participant link) until {@link disconnect}.
   * With `acceptKeygen`, DKGs other participants start with this device are joined; otherwise
   * the device joins only DKGs it asked for itself ({@link keygen}).
   */
  async connect(url: GatewayUrl, opts: { acceptKeygen?: boolean } = {}): Promise<void> {
    if (this.#link) return;
    this.#linkUrl = url;
    if (opts.acceptKeygen) {
      this.#tasks.acceptKeygen++;
      this.#tasks.acceptFromOthers++;
    }
    this.#link = await openLink(
      this.#client(url),
      async () => ({ keys: await this.#keyIds(), pending: await this.#pendingCount() }),
      this.#events,
      (t) => this.#tasks.handle(t),
      () => {
        if (opts.acceptKeygen) {
          this.#tasks.acceptKeygen--;
          this.#tasks.acceptFromOthers--;
        }
      },
    );
  }

  async disconnect(): Promise<void> {
    const l = this.#link;
    this.#link = undefined;
    if (!l) return;
    l.stop();
    await l.done;
    // Tell the cluster at once, so no session waits for a device that is gone (best effort).
    if (this.#linkUrl) await sayBye(this.#client(this.#linkUrl), await this.#pendingCount());
  }

  get connected(): boolean {
    return this.#link !== undefined;
  }

  /**
   * Creates a key whose participants are this device and the given signer nodes (default: every
   * connected node). The device stays linked for the duration of the DKG.
   */
  async keygen(url: GatewayUrl, req: { suite: SuiteId; threshold: number; with?: string[] }): Promise<DeviceKeyInfo> {
    const wasLinked = !!this.#link;
    this.#tasks.acceptKeygen++;
    for (const id of req.with ?? []) this.#tasks.keygenWith.add(id);
    try {
      if (!wasLinked) await this.connect(url);
      const info = decodeMessage(
        'KeyInfo',
        await this.#client(url).call(
          'keygen',
          encodeMessage('KeygenRequest', {
            suite: getSuite(req.suite).wireId,
            threshold: req.threshold,
            participants: req.with ?? [],
          }),
          120_000,
        ),
      );
      const rec = await this.#key(info.keyId);
      if (toHex(groupPublicKey(rec.key)) !== toHex(info.publicKey))
        throw new DeviceError(
          'CONFIRMATION_MISMATCH',
          'the cluster reports another public key than this device derived',
        );
      return this.#keyInfo(rec);
    } finally {
      this.#tasks.acceptKeygen--;
      if (this.#tasks.acceptKeygen === 0) this.#tasks.keygenWith.clear();
      if (!wasLinked) await this.disconnect();
    }
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
    const rec = await this.#key(req.keyId);
    const asked = allowanceRequest(req.caps);
    const out = decodeMessage(
      'DeviceReserved',
      await this.#client(url).call(
        'reserve',
        encodeMessage('DeviceReserve', {
          keyId: req.keyId,
          count: req.count,
          cosigners: req.cosigners ?? [],
          ttlMs: req.ttlMs ?? 0,
          allowance: asked as WireAllowance,
        }),
        60_000,
      ),
    );
    return this.#serial(async () => {
      const ops: { type: 'put'; key: string; value: Uint8Array }[] = [];
      let seq = (await this.#store.getJson<number>('seq')) ?? 0;
      let earliest = Number.POSITIVE_INFINITY;
      for (const slot of out.slots) {
        const rs = slot.reservations.map((env) => openReservation(rec.key, env));
        if (
          rs.length !== rec.key.threshold - 1 ||
          rs.some((r) => r.device !== this.id || r.keyId !== req.keyId || r.epoch !== rec.epoch)
        )
          throw new DeviceError(
            'RESERVATION_INVALID',
            'the cluster returned a reservation for another device, key or epoch',
          );
        // The caps asked for are the caps granted (a co-signer grants them or refuses).
        if (asked && rs.some((r) => !sameCaps(r.allowance, asked)))
          throw new DeviceError('RESERVATION_INVALID', 'the cluster returned reservations with other caps than asked');
        const expiresAt = Math.min(...rs.map((r) => r.expiresAt));
        earliest = Math.min(earliest, expiresAt);
        ops.push({
          type: 'put',
          key: `slot/${req.keyId}/${pad(++seq)}`,
          value: DeviceStorage.json({
            reservations: slot.reservations.map(toHex),
            expiresAt,
            epoch: rec.epoch,
          } satisfies Slot),
        });
      }
      ops.push({ type: 'put', key: 'seq', value: DeviceStorage.json(seq) });
      await this.#journal.append(
        out.slots.length ? [{ kind: 'reserved', keyId: req.keyId, count: out.slots.length, expiresAt: earliest }] : [],
        ops,
      );
      return { added: out.slots.length, allowance: await this.#allowance(req.keyId), errors: out.errors };
    });
  }

  // ---- offline ---------------------------------------------------------------------------------

  /**
   * Signs offline against the next unused reservation that can (offline-sign.ts). The reservation
   * is removed and the package queued in one synced write before the package is returned: a crash
   * before that write releases nothing; after it, the package is in the queue and will be delivered.
   */
  async signOffline(req: OfflineRequest): Promise<OfflineSigned> {
    return this.#serial(() =>
      signOfflinePackage(
        {
          id: this.id,
          store: this.#store,
          journal: this.#journal,
          events: this.#events,
          clock: this.#clock,
          rng: this.#rng,
          risk: this.#risk,
          key: (keyId) => this.#key(keyId),
          keyAt: (keyId, epoch) => this.#keyOld(keyId, epoch),
          checkAllowance: (keyId) => this.#checkAllowance(keyId),
        },
        req,
      ),
    );
  }

  /**
   * Submits every pending package in queue order (up to `concurrency`, default 8, in flight) and
   * records the outcomes (sync.ts). A package whose co-signer is unreachable stays pending; one
   * that can never complete (used, expired or invalid reservation) is marked failed with its code.
   */
  async sync(url: GatewayUrl, opts: { concurrency?: number } = {}): Promise<SyncResult> {
    const client = this.#client(url);
    return this.#serial(() =>
      deliverQueue(
        {
          store: this.#store,
          journal: this.#journal,
          client,
          events: this.#events,
          clock: this.#clock,
          key: (keyId) => this.#key(keyId),
        },
        opts,
      ),
    );
  }

  /** The queue, oldest first. */
  async queue(): Promise<QueuedPackage[]> {
    const out: QueuedPackage[] = [];
    for await (const [, v] of this.#store.entries('queue/'))
      out.push(JSON.parse(new TextDecoder().decode(v)) as QueuedPackage);
    return out;
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
    try {
      const list = decodeMessage(
        'DevicePackageList',
        await this.#client(url).call('packages', encodeMessage('DevicePackages', { since: 0 }), 30_000),
      );
      if (list.truncated)
        return { ...report, cluster: { compared: false, reason: 'the cluster record is longer than one answer' } };
      return { ...report, cluster: compareWithCluster(report, list.packages) };
    } catch (e) {
      // The local report stands on its own: the cluster's refusal or absence is reported in it.
      if (!(e instanceof DeviceError)) throw e;
      return { ...report, cluster: { compared: false, reason: `${e.code}: ${e.message}` } };
    }
  }

  /**
   * Records that the wallet settled a refused payment with its user (refunded, re-paid, told).
   * Only a package the cluster refused can be compensated; a second call changes nothing.
   */
  async compensate(packageId: string, note = ''): Promise<{ packageId: string; compensated: true; already: boolean }> {
    return this.#serial(async () => {
      const entries = await this.#journal.read();
      const refused = entries.find((e) => e.kind === 'refused' && e.packageId === packageId);
      if (!refused)
        throw new DeviceError(
          'INVALID_ARGUMENT',
          `package ${String(packageId).slice(0, 80)} was not refused by the cluster: nothing to compensate`,
        );
      if (entries.some((e) => e.kind === 'compensated' && e.packageId === packageId))
        return { packageId, compensated: true, already: true };
      await this.#journal.append([
        { kind: 'compensated', keyId: refused.keyId as string, packageId, note: String(note).slice(0, 500) },
      ]);
      return { packageId, compensated: true, already: false };
    });
  }

  /** What this device holds: identity, keys with their offline allowance, and the queue. */
  async status(): Promise<{
    device: string | null;
    enrolled: boolean;
    keys: (DeviceKeyInfo & { allowance: number; nextExpiry: number | null })[];
    queue: { pending: number; completed: number; failed: number };
  }> {
    const keys = [];
    for (const keyId of await this.#keyIds()) {
      const rec = await this.#key(keyId);
      let next: number | null = null;
      for await (const [, v] of this.#store.entries(`slot/${keyId}/`)) {
        const s = JSON.parse(new TextDecoder().decode(v)) as Slot;
        if (s.expiresAt >= this.#clock() && (next === null || s.expiresAt < next)) next = s.expiresAt;
      }
      keys.push({ ...this.#keyInfo(rec), allowance: await this.#allowance(keyId), nextExpiry: next });
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
    const rec = await this.#key(keyId);
    return encodeKeyRecord({ keyId: rec.keyId, epoch: rec.epoch, key: rec.key, createdAt: rec.createdAt });
  }

  async keys(): Promise<DeviceKeyInfo[]> {
    const out: DeviceKeyInfo[] = [];
    for (const id of await this.#keyIds()) out.push(this.#keyInfo(await this.#key(id)));
    return out;
  }

  // ---- two devices, no cluster (cosign.ts) ---------------------------------------------------

  #cosignContext(): CosignContext {
    return {
      store: this.#store,
      identity: () => this.#me(),
      key: (keyId) => this.#key(keyId),
      rng: this.#rng,
      clock: this.#clock,
    };
  }

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
    return this.#serial(() => propose(this.#cosignContext(), req));
  }

  /** Round two on the other device: checks the request came from a participant of the key, then answers. */
  async cosign(request: Uint8Array): Promise<{ response: Uint8Array; keyId: string; message: string; from: string }> {
    return answer(this.#cosignContext(), request);
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
    return this.#serial(() => complete(this.#cosignContext(), response));
  }

  // ---- backup ----------------------------------------------------------------------------------

  /**
   * An encrypted export of the identity and key shares (never reservations or the queue: a
   * restored device reserves afresh, so no reservation can be used from two devices).
   */
  async exportBackup(password: string, opts?: BackupOptions): Promise<Uint8Array> {
    const me = this.#me();
    const keys: string[] = [];
    for (const id of await this.#keyIds()) keys.push(toHex((await this.#store.get(`key/${id}`)) as Uint8Array));
    const enrolment = await this.#store.getJson<unknown>('enrolment');
    const plain = DeviceStorage.json({
      v: 1,
      identity: toHex(encodeIdentityRecord(me)),
      keys,
      enrolment: enrolment ?? null,
    });
    try {
      return await encryptBackup(plain, password, opts);
    } finally {
      plain.fill(0);
    }
  }

  /** Restores a backup into a new, empty device store. */
  static async restore(opts: DeviceOptions & { backup: Uint8Array; password: string }): Promise<Device> {
    const plain = await decryptBackup(opts.backup, opts.password);
    let parsed: { v: number; identity: string; keys: string[]; enrolment: unknown };
    try {
      parsed = JSON.parse(new TextDecoder().decode(plain)) as typeof parsed;
    } catch {
      throw new DeviceError('BACKUP_CORRUPT', 'the backup does not hold a device state');
    } finally {
      plain.fill(0);
    }
    if (parsed.v !== 1 || typeof parsed.identity !== 'string' || !Array.isArray(parsed.keys))
      throw new DeviceError('BACKUP_CORRUPT', 'the backup does not hold a device state');
    const d = await Device.open(opts);
    if (d.#identity) {
      await d.close();
      throw new DeviceError(
        'INVALID_ARGUMENT',
        'the target device store already has an identity: restore into an empty one',
      );
    }
    const identity = decodeIdentityRecord(fromHex(parsed.identity));
    const ops: { type: 'put'; key: string; value: Uint8Array }[] = [
      { type: 'put', key: 'identity', value: encodeIdentityRecord(identity) },
    ];
    for (const k of parsed.keys) {
      const rec = decodeKeyShareRecord(fromHex(k));
      ops.push({ type: 'put', key: `key/${rec.keyId}`, value: fromHex(k) });
    }
    if (parsed.enrolment) ops.push({ type: 'put', key: 'enrolment', value: DeviceStorage.json(parsed.enrolment) });
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

  // ---- helpers ---------------------------------------------------------------------------------

  async #keyIds(): Promise<string[]> {
    const out: string[] = [];
    for await (const [k] of this.#store.entries('key/')) out.push(k.slice(4));
    return out;
  }

  async #key(keyId: string): Promise<KeyShareRecord> {
    const b = await this.#store.get(`key/${String(keyId)}`);
    if (!b) throw new DeviceError('NOT_FOUND', `this device holds no share of key ${String(keyId).slice(0, 64)}`);
    return decodeKeyShareRecord(b);
  }

  async #keyOld(keyId: string, epoch: number): Promise<KeyShareRecord> {
    const b = await this.#store.get(`keyold/${keyId}/${epoch}`);
    if (!b) throw new DeviceError('RESERVATION_INVALID', `this device no longer holds key ${keyId} at epoch ${epoch}`);
    return decodeKeyShareRecord(b);
  }

  async #allowance(keyId: string): Promise<number> {
    let n = 0;
    const now = this.#clock();
    for await (const [, v] of this.#store.entries(`slot/${keyId}/`))
      if ((JSON.parse(new TextDecoder().decode(v)) as Slot).expiresAt - EXPIRY_MARGIN_MS >= now) n++;
    return n;
  }

  async #epochs(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const id of await this.#keyIds()) out.set(id, (await this.#key(id)).epoch);
    return out;
  }

  async #pendingCount(): Promise<number> {
    let n = 0;
    for await (const [, v] of this.#store.entries('queue/'))
      if ((JSON.parse(new TextDecoder().decode(v)) as QueuedPackage).state === 'pending') n++;
    return n;
  }

  #keyInfo(rec: KeyShareRecord): DeviceKeyInfo {
    return {
      keyId: rec.keyId,
      suite: rec.key.suite.id,
      threshold: rec.key.threshold,
      participants: rec.key.roster.map((r) => r.id).sort(),
      publicKey: toHex(groupPublicKey(rec.key)),
      epoch: rec.epoch,
    };
  }
}

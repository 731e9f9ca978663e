/**
 * The coordinator: runs DKG, signing, refresh/reshare and offline completion among linked
 * participants, verifies every share, names and excludes cheaters, retries with another quorum,
 * and keeps results durable. It never sees a secret: shares travel sealed, nonces never leave
 * signers, and participants check everything it asks of them on signed authority.
 *
 * This class is the facade: it builds the services from their components (each service
 * declares what it uses), admits requests (admission control), and is the public API the gRPC
 * server, the device gateway and tests drive. The work is in the services:
 *
 * - {@link Participants} (./participants.ts): who is linked, known, slow;
 * - {@link KeyRegistry} (./key-registry.ts): the keys' public records;
 * - {@link CommitmentPools} (./pools.ts): nonce commitments fetched ahead;
 * - {@link KeygenService} (./keygen.ts), {@link SigningService} (./signing.ts),
 *   {@link LifecycleService} (./lifecycle.ts), {@link DeviceService} (./devices.ts),
 *   {@link OfflineService} (./offline.ts);
 * - the store layout in one module (./layout.ts).
 *
 * Transport-independent: participants are {@link ParticipantHandle}s (a gRPC link in the daemon,
 * a direct call in tests).
 */
import {
  toHex,
  type KeyRecord,
  type LinkResult,
  type ParticipantPublic as DevicePublic,
  type Rng,
} from '@tessera/core';
import { AuditLog, summarizeAudit, type SealedKV } from '@tessera/store';
import { DeviceService } from './devices.js';
import { KeyRegistry } from './key-registry.js';
import { EcdsaService } from './ecdsa.js';
import { KeygenService, type KeygenRequest } from './keygen.js';
import { layout } from './layout.js';
import { LifecycleService, type PrepareRequest } from './lifecycle.js';
import { OfflineService, type ReserveRequest } from './offline.js';
import { type CoordinatorOptions, defaultRng } from './options.js';
import { Participants } from './participants.js';
import { CommitmentPools } from './pools.js';
import { SigningService } from './signing.js';
import {
  CoordinatorError,
  codeOf,
  type CoordinatorEvent,
  type KeyInfo,
  type PackageResult,
  type ParticipantHandle,
  type SignResult,
} from './types.js';

export {
  CoordinatorError,
  type CoordinatorEvent,
  type KeyInfo,
  type PackageResult,
  type ParticipantHandle,
  type SignResult,
} from './types.js';
export type { PrepareRequest } from './lifecycle.js';
export type { KeygenRequest } from './keygen.js';
export type { ReserveRequest } from './offline.js';
export type { CoordinatorOptions } from './options.js';

export class Coordinator {
  readonly #store: SealedKV;
  readonly #clock: () => number;
  readonly #rng: Rng;
  readonly #timeout: number;
  readonly #maxInFlight: number;
  /** Sign requests and package completions in progress (see {@link CoordinatorOptions.maxInFlight}). */
  #inFlight = 0;
  readonly #onEvent: (e: CoordinatorEvent) => void;
  readonly #participants: Participants;
  readonly #registry: KeyRegistry;
  readonly #pools: CommitmentPools;
  readonly #keygen: KeygenService;
  readonly #signing: SigningService;
  readonly #lifecycle: LifecycleService;
  #standingRefresh: Uint8Array;
  readonly #devices: DeviceService;
  readonly #offline: OfflineService;
  #clusterId: string | undefined;
  readonly startedAt: number;
  /** The coordinator's own hash-chained record of keygens, signatures and failures. */
  readonly audit: AuditLog;

  constructor(opts: CoordinatorOptions) {
    if (opts.clusterId !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(opts.clusterId))
      throw new CoordinatorError('INVALID_ARGUMENT', 'clusterId must be 1-128 characters of A-Z a-z 0-9 . _ -');
    this.#clusterId = opts.clusterId;
    const store = (this.#store = opts.store);
    const clock = (this.#clock = opts.clock ?? Date.now);
    const rng = (this.#rng = opts.rng ?? defaultRng);
    const timeout = (this.#timeout = opts.taskTimeoutMs ?? 15_000);
    const onEvent = (this.#onEvent = opts.onEvent ?? (() => {}));
    this.#maxInFlight = opts.maxInFlight ?? 256;
    this.startedAt = clock();
    const audit = (this.audit = new AuditLog(store, { clock }));
    const participants = (this.#participants = new Participants(clock));
    const registry = (this.#registry = new KeyRegistry(store, opts.keyCacheSize ?? 4096));
    const pools = (this.#pools = new CommitmentPools({
      participants,
      registry,
      timeout,
      batch: opts.poolBatch ?? 16,
      onEvent,
    }));
    // What every service may use; each declares the part it does (its `…Components`).
    const ecdsa = new EcdsaService({
      rng,
      timeout,
      participants,
      epochOf: (keyId) => registry.summary(keyId)?.epoch,
      onEvent,
    });
    const base = { store, audit, clock, rng, timeout, participants, registry, pools, ecdsa, onEvent };
    const devices = (this.#devices = new DeviceService({ ...base, unlink: (id, h) => this.unregister(id, h) }));
    const isDevice = (id: string) => devices.has(id);
    this.#keygen = new KeygenService({ ...base, isDevice, admissions: (id) => devices.admissions(id) });
    this.#signing = new SigningService({ ...base, isDevice, maxAttempts: opts.maxAttempts ?? 3 });
    this.#offline = new OfflineService({ ...base, isDevice });
    this.#standingRefresh = opts.refreshAuthorisation ?? new Uint8Array(0);
    const self = this;
    this.#lifecycle = new LifecycleService({
      ...base,
      // Read at each scheduled refresh, so a reloaded authorisation file counts from then on.
      get standingRefresh() {
        return self.#standingRefresh;
      },
      participant: (id) => participants.get(id),
      device: (id) => devices.get(id),
      key: (keyId) => registry.key(keyId),
      summary: (keyId) => registry.summary(keyId),
      keys: () => registry.keys(),
      keyIdsOf: (id) => registry.keyIdsOf(id),
      committed: (next) => {
        registry.set(next);
        for (const r of next.key.roster) participants.know(r.id);
        pools.dropKey(next.keyId);
      },
    });
  }

  /** Loads the key registry and the devices from the store (and the cluster id, created on first start). */
  async load(): Promise<void> {
    if (this.#clusterId === undefined) {
      const stored = await this.#store.get(layout.clusterId);
      if (stored) this.#clusterId = new TextDecoder().decode(stored);
      else {
        this.#clusterId = `tc-${toHex(this.#rng(16))}`;
        await this.#store.put(layout.clusterId, new TextEncoder().encode(this.#clusterId), { sync: true });
      }
    }
    await this.#registry.load((rec) => {
      for (const r of rec.key.roster) this.#participants.know(r.id);
    });
    await this.#devices.load();
  }

  /** This cluster's id (see {@link CoordinatorOptions.clusterId}); set by the option or by {@link load}. */
  get clusterId(): string {
    if (this.#clusterId === undefined)
      throw new CoordinatorError('INVALID_STATE', 'the coordinator has no cluster id yet: load() it first');
    return this.#clusterId;
  }

  // ---- participants ---------------------------------------------------------------------------

  /** Registers a (re)connected participant; its old pooled commitments are dropped. */
  register(p: ParticipantHandle): void {
    this.#participants.link(p);
    this.#pools.dropParticipant(p.info.id);
    // A node that was offline when devices were revoked learns of it now (it checks the operators' approval itself).
    if (!p.device) void this.#devices.sendRevocations(p);
    // A participant that missed refreshes while offline applies them now.
    this.#lifecycle.catchUp(p).catch((e: unknown) =>
      this.#onEvent({
        type: 'pool',
        participant: p.info.id,
        ok: false,
        cause: codeOf(e),
        message: `catch-up: ${(e as Error).message}`,
      }),
    );
  }

  /** Forgets a participant's link (only `handle`'s, when given: a newer link stays). */
  unregister(id: string, handle?: ParticipantHandle): void {
    if (this.#participants.unlink(id, handle)) this.#pools.dropParticipant(id);
  }

  connected(): string[] {
    return this.#participants.connected();
  }

  participant(id: string): ParticipantHandle | undefined {
    return this.#participants.get(id);
  }

  /** Commitments pooled for `participant`, over all keys. */
  poolSize(participant: string): number {
    return this.#pools.size(participant);
  }

  /**
   * The signing key this cluster already knows for participant `id`: an enrolled device's key,
   * else its entry in the roster of the newest key it holds. A link hello must carry this key.
   */
  knownSignKey(id: string): Uint8Array | undefined {
    const d = this.#devices.get(id);
    if (d) return d.signKey;
    const newest = this.keysOf(id).at(-1);
    return newest ? this.key(newest.keyId).key.roster.find((r) => r.id === id)?.signKey : undefined;
  }

  /**
   * Verifies the coordinator's own audit chain and asks every connected signer node to verify
   * theirs. Devices keep no audit chain (their journal is their own), so they are not asked.
   */
  async auditAll(): Promise<{
    coordinator: ReturnType<typeof summarizeAudit>;
    participants: { id: string; reachable: boolean; report?: ReturnType<typeof summarizeAudit>; error?: string }[];
  }> {
    const coordinator = summarizeAudit(await this.audit.verify());
    const ids = this.connected().filter((id) => !this.#devices.has(id));
    const answers = await Promise.allSettled(
      ids.map((id) => (this.participant(id) as ParticipantHandle).call({ body: 'audit', audit: {} }, this.#timeout)),
    );
    const participants = ids.map((id, i) => {
      const a = answers[i] as PromiseSettledResult<LinkResult>;
      if (a.status === 'rejected') return { id, reachable: false, error: codeOf(a.reason) };
      if (a.value.body !== 'audit' || !a.value.audit)
        return { id, reachable: true, error: a.value.error?.code ?? 'UNEXPECTED_MESSAGE' };
      return { id, reachable: true, report: a.value.audit };
    });
    return { coordinator, participants };
  }

  // ---- keys -----------------------------------------------------------------------------------

  /** Every key's summary, oldest first. */
  keys(): KeyInfo[] {
    return this.#registry.keys();
  }

  /** The current public record of `keyId` (NOT_FOUND if unknown). */
  key(keyId: string): KeyRecord {
    return this.#registry.key(keyId);
  }

  /** The public record of `keyId` at `epoch`: the active one or a retained earlier epoch. */
  keyAt(keyId: string, epoch: number): Promise<KeyRecord> {
    return this.#registry.keyAt(keyId, epoch);
  }

  /** Keys whose roster includes `participant`. */
  keysOf(participant: string): KeyInfo[] {
    return this.#registry.keysOf(participant);
  }

  /** Every participant in some key's current roster. */
  rosterParticipants(): string[] {
    return this.#registry.rosterParticipants();
  }

  /** Runs a DKG among `participants` (default: every connected signer node; see {@link KeygenService}). */
  keygen(req: KeygenRequest, progress?: (stage: string) => void): Promise<KeyInfo> {
    return this.#keygen.keygen(req, progress);
  }

  // ---- share lifecycle (./lifecycle.ts) ---------------------------------------------------------

  /** Replaces the operators' standing refresh authorisation (a reloaded `refreshAuthorisationFile`). */
  setStandingRefresh(approved: Uint8Array): void {
    this.#standingRefresh = approved;
  }

  /** Proactive refresh of `keyId` (see {@link LifecycleService.refresh}). */
  refresh(keyId: string, authorisation?: Uint8Array): Promise<KeyInfo> {
    return this.#lifecycle.refresh(keyId, authorisation);
  }

  /** Scheduled refresh (see {@link LifecycleService.refreshDue}). */
  refreshDue(maxAgeMs: number): Promise<{ keyId: string; epoch?: number; error?: string }[]> {
    return this.#lifecycle.refreshDue(maxAgeMs);
  }

  /** Reshare of `keyId` (see {@link LifecycleService.reshare}). */
  reshare(
    keyId: string,
    req: { threshold: number; participants: string[]; authorisation?: Uint8Array },
  ): Promise<KeyInfo> {
    return this.#lifecycle.reshare(keyId, req);
  }

  /** The unsigned authorisation operators are asked to approve (see {@link LifecycleService.prepare}). */
  prepareLifecycle(req: PrepareRequest): Uint8Array {
    return this.#lifecycle.prepare(req);
  }

  // ---- devices (./devices.ts) -------------------------------------------------------------------

  /** The enrolled device `id`, if any. */
  device(id: string): DevicePublic | undefined {
    return this.#devices.get(id);
  }

  /** Ids of the enrolled devices. */
  devices(): string[] {
    return this.#devices.list();
  }

  /** Issues a one-time enrolment token (stored hashed; valid `ttlMs`). */
  issueEnrolmentToken(ttlMs?: number, label?: string): Promise<{ token: string; expiresAt: number }> {
    return this.#devices.issueToken(ttlMs, label);
  }

  /** Enrols a device with a one-time token (see {@link DeviceService.enrol}). */
  enrolDevice(token: string, device: DevicePublic, deviceClass = ''): Promise<void> {
    return this.#devices.enrol(token, device, deviceClass);
  }

  /** The class device `id` enrolled as (ios, android, browser, …; `other` if none). */
  deviceClass(id: string): string {
    return this.#devices.classOf(id);
  }

  /** An enrolled device as operators admit it (see {@link DeviceService.admission}). */
  deviceAdmission(id: string): Promise<{ participant: Uint8Array; approvals: Uint8Array[] }> {
    return this.#devices.admission(id);
  }

  /** Stores operators' admissions of an enrolled device (see {@link DeviceService.admit}). */
  admitDevice(
    id: string,
    approvals: readonly Uint8Array[],
  ): Promise<{ participant: Uint8Array; approvals: Uint8Array[] }> {
    return this.#devices.admit(id, approvals);
  }

  /** Revokes device `id` on every signer with the operators' approval (see {@link DeviceService.revokeWithOperators}). */
  revokeWithOperators(id: string, authorisation: Uint8Array): Promise<{ signers: string[]; refused: string[] }> {
    return this.#devices.revokeWithOperators(id, authorisation);
  }

  /** Revokes an enrolled device's enrolment (see {@link DeviceService.revoke}). */
  revokeDevice(id: string): Promise<void> {
    return this.#devices.revoke(id);
  }

  // ---- offline co-signing (./offline.ts) --------------------------------------------------------

  /** Reserves nonces for `device` from t−1 co-signer nodes (see {@link OfflineService.reserve}). */
  reserve(device: string, req: ReserveRequest): Promise<{ slots: Uint8Array[][]; errors: string[] }> {
    return this.#offline.reserve(device, req);
  }

  /** Completes an offline package exactly once (see {@link OfflineService.complete}); admission-controlled. */
  /** The cluster's record of `device`'s offline packages (completed or refused for good). */
  devicePackages(device: string, since = 0) {
    return this.#offline.devicePackages(device, since);
  }

  /** Every device's package records, newest first (see {@link OfflineService.listPackages}). */
  listPackages(opts: { device?: string; state?: string; limit?: number } = {}) {
    return this.#offline.listPackages(opts);
  }

  completePackage(bytes: Uint8Array, opts: { submitter?: string } = {}): Promise<PackageResult> {
    return this.#admit(
      () => this.#offline.complete(bytes, opts),
      () => this.#onEvent({ type: 'package', keyId: '', ok: false, cause: 'RESOURCE_EXHAUSTED', ms: 0, cached: false }),
    );
  }

  /** Number of offline packages completed (stored results). */
  completedPackages(): Promise<number> {
    return this.#offline.completed();
  }

  // ---- signing (./signing.ts) -----------------------------------------------------------------

  /**
   * Signs with the key the intent names. Idempotent on the intent's request id. Retries with
   * another quorum when a signer is unavailable, refuses, or sends a bad share (which is named).
   * Beyond maxInFlight requests in progress it is refused at once with RESOURCE_EXHAUSTED.
   */
  sign(intentBytes: Uint8Array, preferred: string[] = []): Promise<SignResult> {
    return this.#admit(
      () => this.#signing.sign(intentBytes, preferred),
      () => this.#onEvent({ type: 'sign', keyId: '', ok: false, cause: 'RESOURCE_EXHAUSTED', ms: 0, attempts: 0 }),
    );
  }

  /** Requests in progress now (sign requests and package completions). */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Admission control: runs `work` if fewer than maxInFlight requests are in progress; otherwise
   * refuses at once with RESOURCE_EXHAUSTED (reported through `refused`, for metrics), before
   * anything is decoded, counted or sent to a signer.
   */
  async #admit<T>(work: () => Promise<T>, refused: () => void): Promise<T> {
    if (this.#inFlight >= this.#maxInFlight) {
      refused();
      throw new CoordinatorError(
        'RESOURCE_EXHAUSTED',
        `the coordinator is at capacity (${this.#inFlight} requests in flight); retry later`,
      );
    }
    this.#inFlight++;
    try {
      return await work();
    } finally {
      this.#inFlight--;
    }
  }
}

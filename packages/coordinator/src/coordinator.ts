/**
 * The coordinator: runs DKG and signing sessions among connected participants, verifies every
 * share, names and excludes cheaters, retries with another quorum, and keeps results durable.
 * It never sees a secret: shares travel sealed, nonces never leave signers.
 *
 * Transport-independent: participants are {@link ParticipantHandle}s (a gRPC link in the daemon,
 * a direct call in tests of pure logic).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import {
  PayloadKind,
  SigningSession,
  decodeCommitment,
  decodeOfflinePackage,
  deriveKey,
  fromHex,
  admissionPayload,
  decodeApproved,
  openReservation,
  verifyOfflinePackage,
  participantFromWire,
  participantToWire,
  decodeKeyRecord,
  decodeSignatureShare,
  dkgSessionHashOfParams,
  encodeDkgParams,
  FORMAT_VERSION,
  decodeMessage,
  encodeMessage,
  encodeKeyRecord,
  encodeSignRequest,
  equalBytes,
  getSuite,
  groupPublicKey,
  keyDigest,
  openEnvelope,
  openSignIntent,
  readEnvelope,
  selectQuorum,
  validateCommitment,
  validateCommitmentList,
  verifyEnvelope,
  toHex,
  type KeyRecord,
  type LinkResult,
  type LinkTask,
  type RequestCommitment,
  type Rng,
  type SuiteId,
  type ParticipantPublic as DevicePublic,
} from '@tessera/core';
import { AuditLog, KeyedMutex, summarizeAudit, type SealedKV } from '@tessera/store';
import { randomBytes } from 'node:crypto';
import { LifecycleService, type PrepareRequest } from './lifecycle.js';
import {
  CoordinatorError,
  codeOf,
  keyInfo,
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

export interface CoordinatorOptions {
  store: SealedKV;
  clock?: () => number;
  rng?: Rng;
  /** Per-task deadline. */
  taskTimeoutMs?: number;
  /** Commitments fetched per participant and key when a pool runs low. */
  poolBatch?: number;
  /** Attempts (quorums) per sign request. */
  maxAttempts?: number;
  /**
   * Admission control: most sign requests and package completions in progress at once (default
   * 256). Beyond it a request is refused at once with RESOURCE_EXHAUSTED (gRPC
   * RESOURCE_EXHAUSTED, HTTP 429 on the gateway), before any work: no nonce, attempt, pool
   * refill or stored result is touched, so the caller may simply retry later.
   */
  maxInFlight?: number;
  /**
   * Decoded key records kept in memory (most recently used; default 4096). Every key is also
   * kept encoded (~1 KB) with a small summary, so 100,000 keys cost ~100 MB, not ~700 MB.
   */
  keyCacheSize?: number;
  /**
   * This cluster's id, named in every device call (a call captured at another cluster is
   * refused). Default: a random id generated on first {@link Coordinator.load} and stored.
   */
  clusterId?: string;
  /**
   * A standing refresh authorisation (an encoded `ApprovedAuthorisation`, operation refresh,
   * anyEpoch) the operators signed for scheduled refreshes. Participants check it themselves.
   */
  refreshAuthorisation?: Uint8Array;
  onEvent?: (e: CoordinatorEvent) => void;
}

const defaultRng: Rng = ((n = 32) => new Uint8Array(randomBytes(n))) as Rng;

/** A pooled commitment, validated on arrival (core `validateCommitment`), with the signer's nonce id. */
type Pooled = Readonly<RequestCommitment>;

export class Coordinator {
  readonly #store: SealedKV;
  readonly #clock: () => number;
  readonly #rng: Rng;
  readonly #timeout: number;
  readonly #lifecycle: LifecycleService;
  readonly #poolBatch: number;
  readonly #maxAttempts: number;
  readonly #maxInFlight: number;
  /** Sign requests and package completions in progress (see {@link CoordinatorOptions.maxInFlight}). */
  #inFlight = 0;
  readonly #onEvent: (e: CoordinatorEvent) => void;
  readonly #participants = new Map<string, ParticipantHandle>();
  /** Every key's current record, encoded (the in-memory registry), and its summary. */
  readonly #keyBytes = new Map<string, Uint8Array>();
  readonly #keyInfo = new Map<string, KeyInfo>();
  /** Participant id → ids of the keys whose current roster includes it. */
  readonly #keysByParticipant = new Map<string, Set<string>>();
  /** Decoded records, least recently used first (bounded by keyCacheSize). */
  readonly #decoded = new Map<string, KeyRecord>();
  readonly #keyCacheSize: number;
  /** Participants ever linked or in a stored key's roster (to tell "unknown" from "offline"). */
  readonly #known = new Set<string>();
  readonly #pools = new Map<string, Pooled[]>();
  readonly #refills = new Map<string, Promise<void>>();
  /** Requests waiting for a commitment, per pool: the next refill fetches at least this many. */
  readonly #waiting = new Map<string, number>();
  /** Participants that timed out recently, until when they are tried last. */
  readonly #slowUntil = new Map<string, number>();
  /** Enrolled devices (participant id → public identity). */
  readonly #devices = new Map<string, DevicePublic>();
  readonly #packageLocks = new KeyedMutex();
  #clusterId: string | undefined;
  readonly startedAt: number;
  /** The coordinator's own hash-chained record of keygens, signatures and failures. */
  readonly audit: AuditLog;

  constructor(opts: CoordinatorOptions) {
    this.#store = opts.store;
    this.#clock = opts.clock ?? Date.now;
    this.#rng = opts.rng ?? defaultRng;
    this.#timeout = opts.taskTimeoutMs ?? 15_000;
    this.#poolBatch = opts.poolBatch ?? 16;
    this.#keyCacheSize = Math.max(1, opts.keyCacheSize ?? 4096);
    this.#maxAttempts = opts.maxAttempts ?? 3;
    this.#maxInFlight = opts.maxInFlight ?? 256;
    this.#onEvent = opts.onEvent ?? (() => {});
    if (opts.clusterId !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(opts.clusterId))
      throw new CoordinatorError('INVALID_ARGUMENT', 'clusterId must be 1-128 characters of A-Z a-z 0-9 . _ -');
    this.#clusterId = opts.clusterId;
    this.startedAt = this.#clock();
    this.audit = new AuditLog(this.#store, { clock: this.#clock });
    this.#lifecycle = new LifecycleService({
      store: this.#store,
      audit: this.audit,
      clock: this.#clock,
      rng: this.#rng,
      timeout: this.#timeout,
      standingRefresh: opts.refreshAuthorisation ?? new Uint8Array(0),
      onEvent: (e) => this.#onEvent(e),
      participant: (id) => this.#participants.get(id),
      device: (id) => this.#devices.get(id),
      key: (keyId) => this.key(keyId),
      summary: (keyId) => this.#keyInfo.get(keyId),
      keys: () => this.keys(),
      keyIdsOf: (id) => [...(this.#keysByParticipant.get(id) ?? [])],
      committed: (next) => {
        this.#setKey(next);
        for (const r of next.key.roster) this.#known.add(r.id);
        for (const k of [...this.#pools.keys()]) if (k.endsWith(`/${next.keyId}`)) this.#pools.delete(k);
      },
    });
  }

  /** Loads the key registry from the store (and the cluster id, created on first start). */
  async load(): Promise<void> {
    if (this.#clusterId === undefined) {
      const stored = await this.#store.get('cluster-id');
      if (stored) this.#clusterId = new TextDecoder().decode(stored);
      else {
        this.#clusterId = `tc-${toHex(this.#rng(16))}`;
        await this.#store.put('cluster-id', new TextEncoder().encode(this.#clusterId), { sync: true });
      }
    }
    for await (const [, v] of this.#store.iterate('key/')) {
      const rec = decodeKeyRecord(v);
      this.#setKey(rec, v);
      for (const r of rec.key.roster) this.#known.add(r.id);
    }
    for await (const [k, v] of this.#store.iterate('device/')) {
      const d = participantFromWire(decodeMessage('ParticipantInfo', v));
      if (`device/${d.id}` === k) {
        this.#devices.set(d.id, { ...d, device: true });
        this.#known.add(d.id);
      }
    }
  }

  /** Registers a (re)connected participant; its old pooled commitments are dropped. */
  register(p: ParticipantHandle): void {
    this.#participants.set(p.info.id, p);
    this.#slowUntil.delete(p.info.id);
    this.#known.add(p.info.id);
    for (const k of [...this.#pools.keys()]) if (k.startsWith(`${p.info.id}/`)) this.#pools.delete(k);
    // A node that was offline when devices were revoked learns of it now (it checks the operators' approval itself).
    if (!p.device) void this.#sendRevocations(p);
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

  unregister(id: string, handle?: ParticipantHandle): void {
    if (handle && this.#participants.get(id) !== handle) return;
    this.#participants.delete(id);
    for (const k of [...this.#pools.keys()]) if (k.startsWith(`${id}/`)) this.#pools.delete(k);
  }

  connected(): string[] {
    return [...this.#participants.keys()].sort();
  }

  participant(id: string): ParticipantHandle | undefined {
    return this.#participants.get(id);
  }

  keys(): KeyInfo[] {
    return [...this.#keyInfo.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  key(keyId: string): KeyRecord {
    const hit = this.#decoded.get(keyId);
    if (hit) {
      this.#decoded.delete(keyId); // most recently used goes last
      this.#decoded.set(keyId, hit);
      return hit;
    }
    const bytes = this.#keyBytes.get(keyId);
    if (!bytes) throw new CoordinatorError('NOT_FOUND', `no key ${keyId}`);
    const rec = decodeKeyRecord(bytes);
    this.#cacheDecoded(rec);
    return rec;
  }

  /** Registers `rec` as the current record of its key (memory only; the caller stores it). */
  #setKey(rec: KeyRecord, bytes: Uint8Array = encodeKeyRecord(rec)): void {
    for (const id of this.#keyInfo.get(rec.keyId)?.participants ?? []) {
      const set = this.#keysByParticipant.get(id);
      set?.delete(rec.keyId);
      if (set?.size === 0) this.#keysByParticipant.delete(id);
    }
    const info = keyInfo(rec);
    this.#keyBytes.set(rec.keyId, bytes);
    this.#keyInfo.set(rec.keyId, info);
    this.#decoded.delete(rec.keyId);
    for (const id of info.participants) {
      const set = this.#keysByParticipant.get(id) ?? new Set<string>();
      set.add(rec.keyId);
      this.#keysByParticipant.set(id, set);
    }
  }

  /** Every participant in some key's current roster. */
  rosterParticipants(): string[] {
    return [...this.#keysByParticipant.keys()].sort();
  }

  #cacheDecoded(rec: KeyRecord): void {
    this.#decoded.set(rec.keyId, rec);
    while (this.#decoded.size > this.#keyCacheSize) this.#decoded.delete(this.#decoded.keys().next().value as string);
  }

  /** The public record of `keyId` at `epoch`: the active one or a retained earlier epoch. */
  async keyAt(keyId: string, epoch: number): Promise<KeyRecord> {
    const active = this.key(keyId);
    if (active.epoch === epoch) return active;
    const b =
      Number.isSafeInteger(epoch) && epoch >= 0 ? await this.#store.get(`keyepoch/${keyId}/${epoch}`) : undefined;
    if (!b)
      throw new CoordinatorError(
        'RESERVATION_INVALID',
        `key ${keyId} is at epoch ${active.epoch}; epoch ${epoch} is no longer kept`,
      );
    return decodeKeyRecord(b);
  }

  poolSize(participant: string): number {
    let n = 0;
    for (const [k, v] of this.#pools) if (k.startsWith(`${participant}/`)) n += v.length;
    return n;
  }

  /** Verifies the coordinator's own audit chain and asks every connected participant to verify theirs. */
  async auditAll(): Promise<{
    coordinator: ReturnType<typeof summarizeAudit>;
    participants: { id: string; reachable: boolean; report?: ReturnType<typeof summarizeAudit>; error?: string }[];
  }> {
    const coordinator = summarizeAudit(await this.audit.verify());
    const ids = this.connected();
    const answers = await Promise.allSettled(
      ids.map((id) =>
        (this.#participants.get(id) as ParticipantHandle).call({ body: 'audit', audit: {} }, this.#timeout),
      ),
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

  // ---- keygen ---------------------------------------------------------------------------------

  /** Runs a DKG among `participants` (default: all connected). */
  async keygen(
    req: { suite: SuiteId; threshold: number; participants?: string[] },
    progress?: (stage: string) => void,
  ): Promise<KeyInfo> {
    const t0 = this.#clock();
    try {
      const suite = getSuite(req.suite);
      const ids = req.participants?.length
        ? [...new Set(req.participants)]
        : this.connected().filter((id) => !this.#devices.has(id));
      const unknown = ids.filter((id) => !this.#known.has(id));
      if (unknown.length) throw new CoordinatorError('INVALID_ARGUMENT', `unknown participant: ${unknown.join(', ')}`);
      const missing = ids.filter((id) => !this.#participants.has(id));
      if (missing.length) throw new CoordinatorError('UNAVAILABLE', `not connected: ${missing.join(', ')}`);
      if (ids.length < 2)
        throw new CoordinatorError('INVALID_ARGUMENT', `DKG needs at least 2 participants, ${ids.length} given`);
      if (!Number.isInteger(req.threshold) || req.threshold < 2 || req.threshold > ids.length)
        throw new CoordinatorError('INVALID_ARGUMENT', `threshold must be 2..${ids.length}, got ${req.threshold}`);
      const handles = ids.map((id) => this.#participants.get(id) as ParticipantHandle);
      const params = encodeDkgParams({
        suite,
        sessionId: this.#rng(32),
        threshold: req.threshold,
        participants: handles.map((h) => h.info),
      });
      progress?.('round 1');
      // Devices go in only with the operators' admissions: every signer checks them itself.
      const deviceAdmissions: Uint8Array[] = [];
      for (const h of handles) if (h.info.device) deviceAdmissions.push(...(await this.#admissions(h.info.id)));
      let envelopes = await this.#all(
        handles,
        { body: 'dkgStart', dkgStart: { params, deviceAdmissions } },
        'envelope',
        undefined,
        PayloadKind.DKG_ROUND1,
      );
      const sessionHash = dkgSessionHashOfParams(params);
      for (const round of [1, 2] as const) {
        progress?.(round === 1 ? 'round 2' : 'confirmation');
        envelopes = await this.#all(
          handles,
          {
            body: 'dkgBundle',
            dkgBundle: { sessionHash, round, envelopes: envelopes.map((e) => e.envelope as Uint8Array) },
          },
          'envelope',
          sessionHash,
          round === 1 ? PayloadKind.DKG_ROUND2 : PayloadKind.DKG_CONFIRM,
        );
      }
      progress?.('finalising');
      const done = await this.#all(
        handles,
        {
          body: 'dkgBundle',
          dkgBundle: { sessionHash, round: 3, envelopes: envelopes.map((e) => e.envelope as Uint8Array) },
        },
        'dkgDone',
        sessionHash,
      );
      // `done` is in `ids` order (#all returns only when every participant answered). Each
      // participant reports the key it derived; every report must verify against its own key
      // record and all must agree. The majority view is kept so a lone liar is the one named.
      const views = done.map((r) => {
        const d = r.dkgDone;
        try {
          const rec = d ? decodeKeyRecord(d.keyRecord) : undefined;
          return rec && d && rec.keyId === d.keyId && equalBytes(keyDigest(rec.key), d.keyDigest)
            ? { rec, digest: toHex(d.keyDigest) }
            : undefined;
        } catch {
          return undefined;
        }
      });
      const tally = new Map<string, number>();
      for (const v of views) if (v) tally.set(v.digest, (tally.get(v.digest) ?? 0) + 1);
      const majority = [...tally].sort((a, b) => b[1] - a[1])[0]?.[0];
      const dissent = ids.filter((_, i) => views[i]?.digest !== majority);
      if (dissent.length || majority === undefined)
        throw new CoordinatorError(
          'CONFIRMATION_MISMATCH',
          `participants disagree about the key: ${dissent.join(', ')}`,
          dissent,
        );
      const rec = (views.find((v) => v?.digest === majority) as { rec: KeyRecord }).rec;
      const stored: KeyRecord = { ...rec, createdAt: this.#clock() };
      await this.#store.batch(
        [
          { type: 'put', key: `key/${rec.keyId}`, value: encodeKeyRecord(stored) },
          { type: 'put', key: `keyepoch/${rec.keyId}/${stored.epoch}`, value: encodeKeyRecord(stored) },
        ],
        { sync: true },
      );
      await this.audit.append({
        type: 'keygen',
        data: {
          keyId: rec.keyId,
          suite: rec.key.suite.id,
          threshold: rec.key.threshold,
          participants: ids.join(','),
          publicKey: toHex(groupPublicKey(rec.key)),
        },
      });
      this.#setKey(stored);
      this.#onEvent({ type: 'keygen', ok: true, ms: this.#clock() - t0 });
      // Devices sign offline, never from pools: only nodes get commitments fetched.
      for (const id of ids.filter((x) => !this.#devices.has(x)))
        this.#refill(id, rec.keyId).catch((e: unknown) =>
          this.#onEvent({ type: 'pool', participant: id, ok: false, cause: codeOf(e), message: (e as Error).message }),
        );
      return keyInfo(stored);
    } catch (e) {
      this.#onEvent({ type: 'keygen', ok: false, ms: this.#clock() - t0, cause: codeOf(e) });
      throw e;
    }
  }

  /** Sends one task to every handle; all must succeed with a result of `want`. On failure, aborts the DKG everywhere. */
  async #all(
    handles: ParticipantHandle[],
    task: Omit<LinkTask, 'taskId'>,
    want: 'envelope' | 'dkgDone',
    sessionHash?: Uint8Array,
    kind?: PayloadKind,
  ): Promise<LinkResult[]> {
    const results = await Promise.allSettled(handles.map((h) => h.call(task, this.#timeout)));
    // `proven`: the coordinator saw the misbehaviour itself (a wrong answer, an envelope not
    // signed by its sender). `culprits`: what a participant reports, which we cannot check.
    const failures: { id: string; code: string; message: string; culprits: readonly string[]; proven?: boolean }[] = [];
    const out: LinkResult[] = [];
    results.forEach((r, i) => {
      const h = handles[i] as ParticipantHandle;
      const id = h.info.id;
      if (r.status === 'rejected')
        return void failures.push({ id, code: 'UNAVAILABLE', message: `${id} did not answer`, culprits: [] });
      const v = r.value;
      if (v.body === 'error' || v.error) {
        const code =
          typeof v.error?.code === 'string' && /^[A-Z][A-Z_]{1,39}$/.test(v.error.code) ? v.error.code : 'INTERNAL';
        const culprits = Array.isArray(v.error?.culprits)
          ? v.error.culprits.filter((c) => typeof c === 'string' && handles.some((x) => x.info.id === c))
          : [];
        return void failures.push({ id, code, message: String(v.error?.message ?? '').slice(0, 300), culprits });
      }
      if (v.body !== want)
        return void failures.push({
          id,
          code: 'UNEXPECTED_MESSAGE',
          message: `${id} answered ${String(v.body)}`,
          culprits: [id],
          proven: true,
        });
      if (kind !== undefined) {
        try {
          const env = openEnvelope(v.envelope as Uint8Array, kind);
          if (!equalBytes(env.sender, h.info.signKey))
            throw new CoordinatorError('BAD_SIGNATURE', 'signed by another key');
        } catch (e) {
          return void failures.push({
            id,
            code: 'UNEXPECTED_MESSAGE',
            message: `${id} sent an invalid round message (${codeOf(e)})`,
            culprits: [id],
            proven: true,
          });
        }
      }
      out.push(v);
    });
    if (failures.length) {
      if (sessionHash)
        void Promise.allSettled(
          handles.map((h) =>
            h.call({ body: 'dkgAbort', dkgAbort: { sessionHash, reason: failures[0]?.code ?? '' } }, this.#timeout),
          ),
        );
      // Blame needs proof. What the coordinator saw itself names the participant. A participant's
      // report cannot be checked here, so a reported culprit is named only when at least two
      // different participants report it (one liar cannot frame an honest participant); with
      // two participants, the other's word is all there is.
      const reports = new Map<string, Set<string>>();
      for (const f of failures)
        for (const c of f.culprits) if (c !== f.id) reports.set(c, (reports.get(c) ?? new Set()).add(f.id));
      const needed = handles.length > 2 ? 2 : 1;
      const culprits = new Set([
        ...failures.filter((f) => f.proven).map((f) => f.id),
        ...[...reports].filter(([, by]) => by.size >= needed).map(([c]) => c),
      ]);
      const f = failures.find((x) => x.proven) ?? (failures[0] as (typeof failures)[number]);
      throw new CoordinatorError(
        f.code,
        `DKG aborted: ${failures.map((x) => `${x.id}: ${x.code} ${x.message}`).join('; ')}`,
        [...culprits],
      );
    }
    return out;
  }

  // ---- share lifecycle (./lifecycle.ts) ---------------------------------------------------------

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

  // ---- devices --------------------------------------------------------------------------------

  /** The enrolled device `id`, if any. */
  device(id: string): DevicePublic | undefined {
    return this.#devices.get(id);
  }

  /** This cluster's id (see {@link CoordinatorOptions.clusterId}); set by the option or by {@link load}. */
  get clusterId(): string {
    if (this.#clusterId === undefined)
      throw new CoordinatorError('INVALID_STATE', 'the coordinator has no cluster id yet: load() it first');
    return this.#clusterId;
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

  devices(): string[] {
    return [...this.#devices.keys()].sort();
  }

  /** Issues a one-time enrolment token (stored hashed; valid `ttlMs`). */
  async issueEnrolmentToken(ttlMs = 24 * 3600_000, label = ''): Promise<{ token: string; expiresAt: number }> {
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1000 || ttlMs > 30 * 24 * 3600_000)
      throw new CoordinatorError('INVALID_ARGUMENT', 'token lifetime must be 1 s .. 30 days');
    const token = `tet1_${toHex(this.#rng(20))}`;
    const expiresAt = this.#clock() + ttlMs;
    await this.#store.put(
      `enrol/${tokenHash(token)}`,
      new TextEncoder().encode(JSON.stringify({ expiresAt, label: String(label).slice(0, 100), used: '' })),
      { sync: true },
    );
    await this.audit.append({
      type: 'enrol-token',
      data: { token: tokenHash(token).slice(0, 16), expiresAt, label: String(label).slice(0, 100) },
    });
    return { token, expiresAt };
  }

  /**
   * Enrols a device with a one-time token: its identity becomes a known participant that may
   * link through the device gateway and join DKGs. The token is spent even if a later step fails.
   */
  async enrolDevice(token: string, device: DevicePublic): Promise<void> {
    const k = `enrol/${tokenHash(String(token))}`;
    await this.#packageLocks.run(k, async () => {
      const raw = await this.#store.get(k);
      if (!raw) throw new CoordinatorError('UNAUTHENTICATED', 'unknown enrolment token');
      const t = JSON.parse(new TextDecoder().decode(raw)) as { expiresAt: number; label: string; used: string };
      if (t.used) throw new CoordinatorError('UNAUTHENTICATED', 'enrolment token already used');
      if (t.expiresAt < this.#clock()) throw new CoordinatorError('UNAUTHENTICATED', 'enrolment token expired');
      if (await this.#store.get(`revoked/${device.id}`))
        throw new CoordinatorError(
          'INVALID_ARGUMENT',
          `device id ${device.id} was revoked; enrol the new device under a new id`,
        );
      if (this.#known.has(device.id) && !this.#devices.has(device.id))
        throw new CoordinatorError('INVALID_ARGUMENT', `participant id ${device.id} is taken by a signer node`);
      const prior = this.#devices.get(device.id);
      if (prior && !equalBytes(prior.signKey, device.signKey))
        throw new CoordinatorError('INVALID_ARGUMENT', `device id ${device.id} is already enrolled with another key`);
      await this.#store.batch(
        [
          { type: 'put', key: k, value: new TextEncoder().encode(JSON.stringify({ ...t, used: device.id })) },
          {
            type: 'put',
            key: `device/${device.id}`,
            value: encodeMessage('ParticipantInfo', participantToWire(device)),
          },
        ],
        { sync: true },
      );
      this.#devices.set(device.id, { ...device, device: true });
      this.#known.add(device.id);
      await this.audit.append({
        type: 'enrol',
        data: { device: device.id, signKey: toHex(device.signKey), label: t.label },
      });
      this.#onEvent({ type: 'enrol', device: device.id });
    });
  }

  /**
   * Revokes device `id` on every signer with the operators' approval (an ApprovedAuthorisation of
   * operation revoke naming it): each linked signer checks it itself; it is kept and handed to
   * signers that link later. The device's enrolment is removed. Returns who accepted and who refused.
   */
  async revokeWithOperators(id: string, authorisation: Uint8Array): Promise<{ signers: string[]; refused: string[] }> {
    let a;
    try {
      a = decodeApproved(authorisation).decoded;
    } catch (e) {
      throw new CoordinatorError('INVALID_ARGUMENT', `not an operator authorisation (${codeOf(e)})`);
    }
    if (a.operation !== 'revoke' || !a.revoke.includes(id))
      throw new CoordinatorError('INVALID_ARGUMENT', `the authorisation does not revoke ${String(id).slice(0, 64)}`);
    await this.#store.put(`revocation/${toHex(sha256(authorisation)).slice(0, 32)}`, authorisation, { sync: true });
    const nodes = [...this.#participants.values()].filter((h) => !h.device);
    const answers = await Promise.allSettled(
      nodes.map((h) => h.call({ body: 'revoke', revoke: authorisation }, this.#timeout)),
    );
    const signers: string[] = [];
    const refused: string[] = [];
    answers.forEach((r, i) =>
      (r.status === 'fulfilled' && r.value.body === 'ok' ? signers : refused).push(
        (nodes[i] as ParticipantHandle).info.id,
      ),
    );
    if (this.#devices.has(id)) await this.revokeDevice(id);
    signers.sort();
    refused.sort();
    await this.audit.append({
      type: 'device-revoked-by-operators',
      data: { device: id, signers: signers.join(','), refused: refused.join(',') },
    });
    return { signers, refused };
  }

  /** Hands every stored revocation to a node that just linked (idempotent there). */
  async #sendRevocations(h: ParticipantHandle): Promise<void> {
    for await (const [, v] of this.#store.iterate('revocation/'))
      await h.call({ body: 'revoke', revoke: v }, this.#timeout).catch(() => undefined);
  }

  /** The operators' admissions stored for device `id`. */
  async #admissions(id: string): Promise<Uint8Array[]> {
    const raw = await this.#store.get(`admission/${id}`);
    return raw ? (JSON.parse(new TextDecoder().decode(raw)) as string[]).map((x) => fromHex(x)) : [];
  }

  /** An enrolled device as operators admit it: the bytes an admission approves, and the approvals so far. */
  async deviceAdmission(id: string): Promise<{ participant: Uint8Array; approvals: Uint8Array[] }> {
    const d = this.#devices.get(id);
    if (!d) throw new CoordinatorError('NOT_FOUND', `no enrolled device ${String(id).slice(0, 64)}`);
    return { participant: admissionPayload(d), approvals: await this.#admissions(id) };
  }

  /**
   * Stores operators' admissions of enrolled device `id` (OPERATOR_APPROVAL envelopes over its
   * admission payload). Whether they suffice is each signer's decision, by its own pinned operators.
   */
  async admitDevice(
    id: string,
    approvals: readonly Uint8Array[],
  ): Promise<{ participant: Uint8Array; approvals: Uint8Array[] }> {
    const d = this.#devices.get(id);
    if (!d) throw new CoordinatorError('NOT_FOUND', `no enrolled device ${String(id).slice(0, 64)}`);
    const payload = admissionPayload(d);
    for (const a of approvals) {
      let ok = false;
      try {
        ok = equalBytes(openEnvelope(a, PayloadKind.OPERATOR_APPROVAL).payload, payload);
      } catch {
        ok = false;
      }
      if (!ok)
        throw new CoordinatorError(
          'INVALID_ARGUMENT',
          `an approval that is not an operator's admission of device ${id} as enrolled`,
        );
    }
    const all = [...new Set([...(await this.#admissions(id)).map(toHex), ...approvals.map(toHex)])];
    await this.#store.put(`admission/${id}`, new TextEncoder().encode(JSON.stringify(all)), { sync: true });
    await this.audit.append({ type: 'device-admission', data: { device: id, approvals: all.length } });
    return { participant: payload, approvals: all.map((x) => fromHex(x)) };
  }

  /**
   * Revokes an enrolled device (a lost phone): it can no longer call the gateway or link. Its
   * shares are already worthless once every key it held was reshared without it.
   */
  async revokeDevice(id: string): Promise<void> {
    if (!this.#devices.has(id)) throw new CoordinatorError('NOT_FOUND', `no enrolled device ${id}`);
    const still = this.keysOf(id).map((k) => k.keyId);
    await this.#store.batch(
      [
        { type: 'del', key: `device/${id}` },
        { type: 'put', key: `revoked/${id}`, value: new TextEncoder().encode(String(this.#clock())) },
      ],
      { sync: true },
    );
    this.#devices.delete(id);
    const h = this.#participants.get(id);
    if (h) this.unregister(id, h);
    await this.audit.append({ type: 'device-revoked', data: { device: id, stillInKeys: still.join(',') } });
  }

  /** Keys whose roster includes `participant`. */
  keysOf(participant: string): KeyInfo[] {
    const ids = this.#keysByParticipant.get(participant) ?? new Set<string>();
    return [...ids].map((id) => this.#keyInfo.get(id) as KeyInfo).sort((a, b) => a.createdAt - b.createdAt);
  }

  /**
   * Reserves nonces for `device` on `keyId` from t-1 co-signer nodes (given, or the connected
   * ones that answered fastest lately). Returns slots of one verified reservation per
   * co-signer: each slot lets the device sign one message offline.
   */
  async reserve(
    device: string,
    req: { keyId: string; count: number; cosigners?: string[]; ttlMs?: number },
  ): Promise<{ slots: Uint8Array[][]; errors: string[] }> {
    const rec = this.key(req.keyId);
    if (!rec.key.roster.some((r) => r.id === device))
      throw new CoordinatorError('POLICY_DENIED', `${device} is not a participant of key ${rec.keyId}`);
    if (!Number.isInteger(req.count) || req.count < 1 || req.count > 256)
      throw new CoordinatorError('INVALID_ARGUMENT', 'reservation count must be 1..256');
    const need = rec.key.threshold - 1;
    const nodes = rec.key.roster.map((r) => r.id).filter((id) => id !== device && !this.#devices.has(id));
    let cosigners: string[];
    if (req.cosigners?.length) {
      cosigners = [...new Set(req.cosigners)];
      const bad = cosigners.filter((c) => !nodes.includes(c));
      if (bad.length)
        throw new CoordinatorError('INVALID_ARGUMENT', `not a co-signer node of key ${rec.keyId}: ${bad.join(', ')}`);
      if (cosigners.length !== need)
        throw new CoordinatorError(
          'INVALID_ARGUMENT',
          `key ${rec.keyId} needs exactly ${need} co-signer(s) per package`,
        );
      const off = cosigners.filter((c) => !this.#participants.has(c));
      if (off.length) throw new CoordinatorError('UNAVAILABLE', `co-signer not connected: ${off.join(', ')}`);
    } else {
      const now = this.#clock();
      const up = nodes
        .filter((id) => this.#participants.has(id))
        .sort((a, b) => Number((this.#slowUntil.get(a) ?? 0) > now) - Number((this.#slowUntil.get(b) ?? 0) > now));
      if (up.length < need)
        throw new CoordinatorError(
          'UNAVAILABLE',
          `need ${need} connected co-signer node(s) for key ${rec.keyId}, ${up.length} connected`,
        );
      cosigners = up.slice(0, need);
    }
    const errors: string[] = [];
    const answers = await Promise.allSettled(
      cosigners.map((id) =>
        (this.#participants.get(id) as ParticipantHandle).call(
          { body: 'reserve', reserve: { keyId: rec.keyId, device, count: req.count, ttlMs: req.ttlMs ?? 0 } },
          this.#timeout,
        ),
      ),
    );
    const lists: Uint8Array[][] = answers.map((a, i) => {
      const id = cosigners[i] as string;
      if (a.status === 'rejected') return (void errors.push(`${id}: UNAVAILABLE`), []);
      if (a.value.body !== 'reservations' || !a.value.reservations)
        return (
          void errors.push(
            `${id}: ${a.value.error?.code ?? 'UNEXPECTED_MESSAGE'} ${String(a.value.error?.message ?? '').slice(0, 200)}`,
          ),
          []
        );
      const ok: Uint8Array[] = [];
      for (const env of a.value.reservations.envelopes) {
        try {
          const r = openReservation(rec.key, env);
          if (r.signer !== id || r.device !== device || r.keyId !== rec.keyId || r.epoch !== rec.epoch)
            throw new CoordinatorError('RESERVATION_INVALID', 'reservation does not fit the request');
          ok.push(env);
        } catch (e) {
          errors.push(`${id}: ${codeOf(e)}`);
          this.#onEvent({ type: 'culprit', participant: id, code: codeOf(e) });
        }
      }
      return ok;
    });
    const n = Math.min(...lists.map((l) => l.length));
    const slots = Array.from({ length: n }, (_, i) => lists.map((l) => l[i] as Uint8Array));
    if (n > 0)
      await this.audit.append({
        type: 'reserve',
        data: { keyId: rec.keyId, device, cosigners: cosigners.join(','), slots: n },
      });
    this.#onEvent({ type: 'reserve', device, keyId: rec.keyId, slots: n });
    if (n === 0)
      throw new CoordinatorError(
        errors.some((e) => e.includes('RESOURCE_EXHAUSTED')) ? 'RESOURCE_EXHAUSTED' : 'UNAVAILABLE',
        `no reservations made: ${errors.join('; ')}`,
      );
    return { slots, errors };
  }

  /**
   * Completes an offline package exactly once: verifies it (the device's share, every
   * reservation), has each reserved co-signer use its nonce, aggregates and checks the
   * signature with the plain verifier, and stores the result under the package id. Delivering
   * the same package again (device, merchant, a retry after a crash) returns that result; the
   * co-signers' ledgers guarantee the same even if this store lost it.
   */
  async completePackage(bytes: Uint8Array): Promise<PackageResult> {
    return this.#admit(
      () => this.#completePackage(bytes),
      () => this.#onEvent({ type: 'package', keyId: '', ok: false, cause: 'RESOURCE_EXHAUSTED', ms: 0, cached: false }),
    );
  }

  async #completePackage(bytes: Uint8Array): Promise<PackageResult> {
    const t0 = this.#clock();
    let keyId = '';
    try {
      const pkg = decodeOfflinePackage(bytes);
      keyId = pkg.keyId;
      return await this.#packageLocks.run(`package/${pkg.packageId}`, async () => {
        const prior = await this.#store.get(`package/${pkg.packageId}`);
        if (prior) {
          const r = decodeMessage('SubmitPackageResponse', prior);
          this.#onEvent({ type: 'package', keyId, ok: true, ms: this.#clock() - t0, cached: true });
          return { ...r, alreadyCompleted: true };
        }
        const rec = await this.keyAt(pkg.keyId, pkg.epoch);
        const session = verifyOfflinePackage(rec.key, pkg, { keyId: rec.keyId, epoch: rec.epoch });
        for (const c of pkg.cosigners) {
          const used = await this.#store.get(`resv/${c.signer}/${toHex(c.nonceId)}`);
          if (used && new TextDecoder().decode(used) !== pkg.packageId)
            throw new CoordinatorError(
              'RESERVATION_USED',
              `the reservation of ${c.signer} was already used by package ${new TextDecoder().decode(used)}`,
              [pkg.device],
            );
        }
        const off = pkg.cosigners.map((c) => c.signer).filter((id) => !this.#participants.has(id));
        if (off.length)
          throw new CoordinatorError(
            'UNAVAILABLE',
            `reserved co-signer not connected: ${off.join(', ')}; the package stays pending`,
          );
        const answers = await Promise.allSettled(
          pkg.cosigners.map((c) =>
            (this.#participants.get(c.signer) as ParticipantHandle).call(
              { body: 'complete', complete: pkg.bytes },
              this.#timeout,
            ),
          ),
        );
        const shares = new Map<string, Uint8Array>([[pkg.device, pkg.share]]);
        const failures: CoordinatorError[] = [];
        answers.forEach((a, i) => {
          const id = (pkg.cosigners[i] as (typeof pkg.cosigners)[number]).signer;
          const h = this.#participants.get(id);
          if (a.status === 'rejected' || !h)
            return void failures.push(
              new CoordinatorError('UNAVAILABLE', `${id} did not answer; the package stays pending`),
            );
          const r = a.value;
          if (r.body !== 'envelope' || !r.envelope) {
            const code =
              typeof r.error?.code === 'string' && /^[A-Z][A-Z_]{1,39}$/.test(r.error.code) ? r.error.code : 'INTERNAL';
            return void failures.push(
              new CoordinatorError(
                code,
                `${id}: ${String(r.error?.message ?? code).slice(0, 300)}`,
                code.startsWith('RESERVATION_') || code === 'BAD_SIGNATURE_SHARE' ? [pkg.device] : [],
              ),
            );
          }
          try {
            const env = openEnvelope(r.envelope, PayloadKind.SIGNATURE_SHARE);
            if (!equalBytes(env.sender, h.info.signKey))
              throw new CoordinatorError('BAD_SIGNATURE', 'share signed by another key');
            const s = decodeSignatureShare(rec.key.suite, env.payload);
            if (!equalBytes(s.requestDigest, pkg.digest))
              throw new CoordinatorError('BAD_SIGNATURE_SHARE', 'share answers another package');
            if (!session.verifyShare(id, s.share))
              throw new CoordinatorError('BAD_SIGNATURE_SHARE', `share of ${id} does not verify`);
            shares.set(id, s.share);
          } catch (e) {
            this.#onEvent({ type: 'culprit', participant: id, code: 'BAD_SIGNATURE_SHARE' });
            failures.push(
              new CoordinatorError('BAD_SIGNATURE_SHARE', `${id} sent an invalid share (${codeOf(e)})`, [id]),
            );
          }
        });
        if (failures.length) throw failures.find((f) => f.code !== 'UNAVAILABLE') ?? (failures[0] as CoordinatorError);
        const signature = session.aggregate(shares);
        const result: PackageResult = {
          packageId: pkg.packageId,
          keyId: rec.keyId,
          message: pkg.message,
          signature,
          publicKey: groupPublicKey(rec.key),
          signers: [pkg.device, ...pkg.cosigners.map((c) => c.signer)],
          alreadyCompleted: false,
        };
        await this.#store.batch(
          [
            { type: 'put', key: `package/${pkg.packageId}`, value: encodeMessage('SubmitPackageResponse', result) },
            ...pkg.cosigners.map((c) => ({
              type: 'put' as const,
              key: `resv/${c.signer}/${toHex(c.nonceId)}`,
              value: new TextEncoder().encode(pkg.packageId),
            })),
          ],
          { sync: true },
        );
        await this.audit.append({
          type: 'offline-complete',
          data: { keyId: rec.keyId, package: pkg.packageId, device: pkg.device, signers: result.signers.join(',') },
        });
        this.#onEvent({
          type: 'package',
          keyId,
          ok: true,
          ms: this.#clock() - t0,
          cached: false,
          createdAt: pkg.createdAt,
        });
        return result;
      });
    } catch (e) {
      this.#onEvent({ type: 'package', keyId, ok: false, cause: codeOf(e), ms: this.#clock() - t0, cached: false });
      throw e;
    }
  }

  /** Number of offline packages completed (stored results). */
  async completedPackages(): Promise<number> {
    let n = 0;
    for await (const _ of this.#store.iterate('package/')) n++;
    return n;
  }

  // ---- signing --------------------------------------------------------------------------------

  /**
   * Signs with the key the intent names. Idempotent on the intent's request id. Retries with
   * another quorum when a signer is unavailable, refuses, or sends a bad share (which is named).
   * Beyond maxInFlight requests in progress it is refused at once with RESOURCE_EXHAUSTED.
   */
  async sign(intentBytes: Uint8Array, preferred: string[] = []): Promise<SignResult> {
    return this.#admit(
      () => this.#sign(intentBytes, preferred),
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

  async #sign(intentBytes: Uint8Array, preferred: string[] = []): Promise<SignResult> {
    const t0 = this.#clock();
    let attempts = 0;
    let keyId = '';
    try {
      const intent = openSignIntent(intentBytes);
      keyId = intent.keyId;
      const rec = this.key(intent.keyId);
      if (rec.key.suite.id !== intent.suite.id)
        throw new CoordinatorError('WRONG_SUITE', `key ${rec.keyId} is ${rec.key.suite.id}`);
      // Results are kept per (requester, request id) and bound to the exact intent: a retry of the
      // same intent gets the stored signature; the same id with another intent is refused.
      const resultKey = `result/${toHex(intent.requester)}/${toHex(intent.requestId)}`;
      const intentDigest = sha256(intent.payload);
      const prior = await this.#store.get(resultKey);
      if (prior) {
        const stored = decodeResult(prior);
        if (!equalBytes(stored.intentDigest, intentDigest))
          throw new CoordinatorError(
            'INVALID_ARGUMENT',
            `request id ${toHex(intent.requestId).slice(0, 16)}… was already used for another intent`,
          );
        return stored.result;
      }
      // An HD child key (the intent's path): same roster and shares, publicly tweaked.
      const signingKey = intent.path ? deriveKey(rec.key, intent.path).key : rec.key;
      const excluded = new Map<string, string>();
      while (attempts < this.#maxAttempts) {
        attempts++;
        // Participants that recently timed out go last: one slow peer should not cost every
        // request a full task deadline.
        const now = this.#clock();
        const available = [...preferred, ...rec.key.roster.map((r) => r.id)]
          .filter((id) => this.#participants.has(id) && !this.#devices.has(id))
          .sort((a, b) => Number((this.#slowUntil.get(a) ?? 0) > now) - Number((this.#slowUntil.get(b) ?? 0) > now));
        let quorum: string[];
        try {
          quorum = selectQuorum(rec.key, available, excluded.keys());
        } catch {
          break;
        }
        try {
          const result = await this.#attempt(rec, intentBytes, intent.message, quorum, excluded, signingKey);
          const out: SignResult = {
            keyId: rec.keyId,
            signature: result.signature,
            signers: quorum,
            publicKey: groupPublicKey(signingKey),
            requestId: intent.requestId,
          };
          // The result and its audit entry: one synced batch.
          await this.audit.append(
            {
              type: 'sign',
              data: {
                keyId,
                requestId: toHex(intent.requestId),
                signers: quorum.join(','),
                attempts,
                ...(intent.path ? { path: intent.path } : {}),
              },
            },
            { with: [{ type: 'put', key: resultKey, value: encodeResult(out, intentDigest) }] },
          );
          this.#onEvent({ type: 'sign', keyId, ok: true, ms: this.#clock() - t0, attempts });
          return out;
        } catch (e) {
          if (!(e instanceof CoordinatorError) || e.code !== 'RETRY') throw e;
        }
      }
      const reasons = [...excluded].map(([id, why]) => `${id}: ${why}`).join('; ');
      const culprits = [...excluded].filter(([, why]) => why.startsWith('BAD_')).map(([id]) => id);
      const denied = [...excluded.values()].some((w) => w.startsWith('POLICY_DENIED'));
      throw new CoordinatorError(
        denied && culprits.length === 0 ? 'POLICY_DENIED' : 'NO_QUORUM',
        `no quorum of ${rec.key.threshold} could sign key ${rec.keyId}${reasons ? ` (${reasons})` : ''}`,
        culprits,
      );
    } catch (e) {
      this.#onEvent({ type: 'sign', keyId, ok: false, cause: codeOf(e), ms: this.#clock() - t0, attempts });
      throw e;
    }
  }

  /** One signing attempt with `quorum`; throws CoordinatorError('RETRY') after excluding whoever failed. */
  async #attempt(
    rec: KeyRecord,
    intent: Uint8Array,
    message: Uint8Array,
    quorum: string[],
    excluded: Map<string, string>,
    signingKey: KeyRecord['key'],
  ): Promise<{ signature: Uint8Array }> {
    const commitments: RequestCommitment[] = [];
    const got = await Promise.allSettled(quorum.map((id) => this.#takeCommitment(id, rec)));
    got.forEach((g, i) => {
      const id = quorum[i] as string;
      if (g.status === 'fulfilled') commitments.push(g.value);
      else excluded.set(id, codeOf(g.reason));
    });
    if (commitments.length < quorum.length) throw new CoordinatorError('RETRY', 'commitments unavailable');
    const request = encodeSignRequest({
      suite: rec.key.suite,
      sessionId: this.#rng(16),
      keyId: rec.keyId,
      epoch: rec.epoch,
      intent,
      commitments,
    });
    const digest = sha256(request);
    // The list is checked before any signer spends a nonce on it (each commitment was decoded and
    // validated when pooled); the session itself (binding factors, group commitment R: ~2 ms for
    // secp256k1) is computed while the signers work, off the one-request critical path.
    validateCommitmentList(signingKey, commitments);
    const pending = Promise.allSettled(
      quorum.map(async (id) =>
        (this.#participants.get(id) as ParticipantHandle).call({ body: 'sign', sign: request }, this.#timeout),
      ),
    );
    await new Promise((resolve) => setImmediate(resolve)); // the sign tasks go out first
    let session: SigningSession;
    try {
      session = new SigningSession(signingKey, message, commitments);
    } catch (e) {
      await pending;
      throw e;
    }
    const answers = await pending;
    const shares = new Map<string, Uint8Array>();
    const envelopes = new Map<string, ReturnType<typeof readEnvelope>>();
    answers.forEach((a, i) => {
      const id = quorum[i] as string;
      const h = this.#participants.get(id);
      if (a.status === 'rejected' || !h) {
        this.#slowUntil.set(id, this.#clock() + 60_000);
        return void excluded.set(id, 'UNAVAILABLE');
      }
      const r = a.value;
      if (r.body !== 'envelope' || !r.envelope) return void excluded.set(id, r.error?.code ?? 'UNEXPECTED_MESSAGE');
      try {
        // The share came over the signer's authenticated link: its envelope must name that
        // signer, and its signature is verified only if the aggregate fails (then it is evidence).
        const env = readEnvelope(r.envelope, PayloadKind.SIGNATURE_SHARE);
        if (!equalBytes(env.sender, h.info.signKey))
          throw new CoordinatorError('BAD_SIGNATURE', 'share signed by another key');
        envelopes.set(id, env);
        const s = decodeSignatureShare(rec.key.suite, env.payload);
        if (!equalBytes(s.requestDigest, digest))
          throw new CoordinatorError('BAD_SIGNATURE_SHARE', 'share answers another request');
        shares.set(id, s.share);
      } catch (e) {
        // Blamed now, so the envelope signature is evidence now.
        const env = envelopes.get(id);
        const code = env && !verifyEnvelope(env) ? 'BAD_SIGNATURE' : codeOf(e);
        excluded.set(id, `BAD_SIGNATURE_SHARE ${code}`);
        this.#onEvent({ type: 'culprit', participant: id, code });
      }
    });
    if (shares.size < quorum.length) throw new CoordinatorError('RETRY', 'missing shares');
    try {
      return { signature: session.aggregate(shares) };
    } catch (e) {
      // Now the envelope signatures are evidence: a share whose envelope does not verify is
      // blamed as such (its link named the sender), the others by share verification.
      const unsigned = [...envelopes].filter(([, env]) => !verifyEnvelope(env)).map(([id]) => id);
      const culprits = [...new Set([...unsigned, ...((e as { culprits?: string[] }).culprits ?? [])])];
      for (const c of culprits) {
        const code = unsigned.includes(c) ? 'BAD_SIGNATURE' : 'BAD_SIGNATURE_SHARE';
        excluded.set(c, code === 'BAD_SIGNATURE' ? 'BAD_SIGNATURE_SHARE BAD_SIGNATURE' : code);
        this.#onEvent({ type: 'culprit', participant: c, code });
      }
      if (culprits.length) throw new CoordinatorError('RETRY', 'bad shares');
      throw e;
    }
  }

  /** A commitment of `id` for the key: from the pool if any (the one-round-trip path), else fetched. */
  async #takeCommitment(id: string, rec: KeyRecord): Promise<Pooled> {
    const k = `${id}/${rec.keyId}`;
    // Under concurrency a refill can be drained by other waiters before this one gets a turn:
    // wait for further refills (each sized to the queue) rather than failing the request.
    for (let tries = 0; tries < 8; tries++) {
      const c = this.#pools.get(k)?.shift();
      if (c) {
        if ((this.#pools.get(k)?.length ?? 0) < this.#poolBatch / 2)
          this.#refill(id, rec.keyId).catch((e: unknown) =>
            this.#onEvent({
              type: 'pool',
              participant: id,
              ok: false,
              cause: codeOf(e),
              message: (e as Error).message,
            }),
          );
        return c;
      }
      this.#waiting.set(k, (this.#waiting.get(k) ?? 0) + 1);
      try {
        await this.#refill(id, rec.keyId);
      } finally {
        this.#waiting.set(k, (this.#waiting.get(k) ?? 1) - 1);
      }
    }
    throw new CoordinatorError('UNAVAILABLE', `${id} gave no commitments`);
  }

  /** Fetches a batch of commitments from `id` for `keyId` into the pool (one refill at a time). */
  #refill(id: string, keyId: string): Promise<void> {
    const k = `${id}/${keyId}`;
    const running = this.#refills.get(k);
    if (running) return running;
    const p = (async () => {
      const h = this.#participants.get(id);
      // The record's bytes identify its epoch: a lifecycle commit while this refill runs replaces
      // them (and drops the pool), and then this refill's commitments must not be pooled.
      const generation = this.#keyBytes.get(keyId);
      const rec = generation ? this.key(keyId) : undefined;
      if (!h || !rec) throw new CoordinatorError('UNAVAILABLE', `${id} is not connected`);
      const r = await h.call(
        {
          body: 'commit',
          commit: { keyId, count: Math.min(256, Math.max(this.#poolBatch, this.#waiting.get(k) ?? 0)) },
        },
        this.#timeout,
      );
      if (r.body !== 'commitments' || !r.commitments)
        throw new CoordinatorError(r.error?.code ?? 'UNAVAILABLE', r.error?.message ?? `${id} gave no commitments`);
      const identifier = rec.key.roster.find((x) => x.id === id)?.identifier;
      const pool = this.#pools.get(k) ?? [];
      let invalid = 0;
      for (const [i, e] of r.commitments.envelopes.entries()) {
        // Validation is background work: requests that arrive meanwhile run between commitments.
        if (i > 0) await new Promise((resolve) => setImmediate(resolve));
        // Over the signer's authenticated link (sender checked against it); each commitment is
        // decoded and validated here, once, off the signing path (RFC 9591 §3.1).
        try {
          const env = readEnvelope(e, PayloadKind.SIGNING_COMMITMENT);
          if (!equalBytes(env.sender, h.info.signKey))
            throw new CoordinatorError('BAD_SIGNATURE', 'commitment signed by another key');
          const c = decodeCommitment(rec.key.suite, env.payload);
          if (c.commitment.identifier !== identifier)
            throw new CoordinatorError('INVALID_ARGUMENT', 'commitment of another participant');
          pool.push(validateCommitment(rec.key.suite, { ...c.commitment, nonceId: c.nonceId }));
        } catch {
          invalid++;
        }
      }
      if (invalid)
        this.#onEvent({
          type: 'pool',
          participant: id,
          ok: false,
          cause: 'INVALID_ARGUMENT',
          message: `${invalid} invalid commitments dropped`,
        });
      if (this.#participants.get(id) === h && this.#keyBytes.get(keyId) === generation) this.#pools.set(k, pool);
    })().finally(() => this.#refills.delete(k));
    this.#refills.set(k, p);
    return p;
  }
}

function tokenHash(token: string): string {
  return toHex(sha256(new TextEncoder().encode(`tessera/v1/enrol-token/${token}`)));
}

function encodeResult(r: SignResult, intentDigest: Uint8Array): Uint8Array {
  return encodeMessage('SignResultRecord', {
    version: FORMAT_VERSION,
    keyId: r.keyId,
    signature: r.signature,
    signers: r.signers,
    publicKey: r.publicKey,
    requestId: r.requestId,
    intentDigest,
  });
}

function decodeResult(b: Uint8Array): { result: SignResult; intentDigest: Uint8Array } {
  const w = decodeMessage('SignResultRecord', b);
  if (w.version !== FORMAT_VERSION)
    throw new CoordinatorError('STORE_CORRUPT', `stored result has unsupported version ${w.version}`);
  return {
    result: {
      keyId: w.keyId,
      signature: w.signature,
      signers: w.signers,
      publicKey: w.publicKey,
      requestId: w.requestId,
    },
    intentDigest: w.intentDigest,
  };
}

/**
 * The signer engine: everything a signer node does, independent of transport. It answers the
 * coordinator's tasks (DKG rounds, nonce commitments, sign requests) from its sealed store and
 * its own policy.
 *
 * Safety rules enforced here:
 * - a sign request is checked against the requester's signed intent and this node's policy
 *   before any nonce is touched;
 * - a nonce is consumed through the NonceLedger: the share is computed, the ledger record is
 *   replaced by {consumed, request digest, share} in one fsync'd write, and only then is the
 *   share released. An identical retry gets the same share; anything else on that nonce fails.
 */
import {
  DkgParticipant,
  TesseraError,
  type ErrorCode,
  LifecycleParticipant,
  checkDeviceAdmission,
  checkRevocation,
  deriveKey,
  deriveShare,
  PayloadKind,
  SigningNonces,
  commit,
  decodeKeyShareRecord,
  decodeOfflinePackage,
  encodeReservation,
  packageCommitments,
  signReservation,
  verifyOfflinePackage,
  RESERVATION_NONCE_ID_BYTES,
  equalBytes,
  decodeMessage,
  decodeSignRequest,
  decodeCommitment,
  encodeCommitment,
  encodeKeyRecord,
  encodeKeyShareRecord,
  encodeSignatureShare,
  groupPublicKey,
  isTesseraError,
  keyDigest,
  openSignIntent,
  signEnvelope,
  signShare,
  toHex,
  type KeyShareRecord,
  type ParticipantIdentity,
  type Rng,
} from '@tessera/core';
import {
  AuditLog,
  KeyedMutex,
  NonceLedger,
  ShareVault,
  summarizeAudit,
  type BatchOp,
  type SealedKV,
} from '@tessera/store';
import { randomBytes } from 'node:crypto';
import { DEVICE_POLICY_DEFAULTS, PolicyEngine, type Policy } from './policy.js';
import { SignerLifecycleStore, deviceSegment } from './lifecycle-store.js';
import type { SpentReservations } from './spent.js';
import type { LinkResult, LinkTask, TaskError } from '@tessera/core';

export interface SignerEngineOptions {
  identity: ParticipantIdentity;
  store: SealedKV;
  policy: Policy;
  clock?: () => number;
  rng?: Rng;
  /** Most fresh nonces kept per key. */
  maxFreshPerKey?: number;
  /** Most attempts one request id may consume (each a fresh nonce), bounding what a coordinator can extract from one intent. */
  maxAttemptsPerRequest?: number;
  /**
   * The spent-reservation journal (outside LevelDB): a reservation recorded there is never used
   * for another package, even if a damaged store forgot that it was used.
   */
  spent?: SpentReservations;
  /** Called on every signing outcome (for metrics). */
  onEvent?: (e: SignerEvent) => void;
}

export type SignerEvent =
  | { type: 'sign'; keyId: string; result: 'ok' | 'cached' }
  | { type: 'refusal'; keyId: string; code: string }
  | { type: 'keygen'; keyId: string }
  | { type: 'commitments'; keyId: string; count: number }
  | { type: 'reserve'; keyId: string; device: string; count: number }
  | { type: 'complete'; keyId: string; device: string; result: 'ok' | 'cached' };

const defaultRng: Rng = ((n = 32) => new Uint8Array(randomBytes(n))) as Rng;

/** A typed refusal from the engine. */
export class SignerError extends TesseraError {
  constructor(code: ErrorCode, message: string, culprits: readonly string[] = []) {
    super(code, message, { culprits });
  }
}

export class SignerEngine {
  readonly identity: ParticipantIdentity;
  readonly vault: ShareVault;
  readonly ledger: NonceLedger;
  readonly audit: AuditLog;
  readonly #store: SealedKV;
  #policy: PolicyEngine;
  readonly #clock: () => number;
  readonly #rng: Rng;
  readonly #maxFresh: number;
  readonly #maxAttempts: number;
  readonly #onEvent: (e: SignerEvent) => void;
  readonly #spent: SpentReservations | undefined;
  readonly #dkg: DkgParticipant;
  readonly #lcStore: SignerLifecycleStore;
  readonly #lifecycle: LifecycleParticipant;
  readonly #attempts = new KeyedMutex();
  readonly #keys = new Map<string, KeyShareRecord>();
  /** Retained earlier epochs, decoded on demand. */
  readonly #older = new Map<string, KeyShareRecord>();

  constructor(opts: SignerEngineOptions) {
    this.identity = opts.identity;
    this.#store = opts.store;
    this.vault = new ShareVault(opts.store);
    this.ledger = new NonceLedger(opts.store);
    this.#clock = opts.clock ?? Date.now;
    this.audit = new AuditLog(opts.store, { clock: this.#clock });
    this.#policy = new PolicyEngine(opts.policy, this.#clock);
    this.#rng = opts.rng ?? defaultRng;
    this.#dkg = new DkgParticipant(this.identity, this.#rng);
    this.#maxFresh = opts.maxFreshPerKey ?? 256;
    this.#maxAttempts = opts.maxAttemptsPerRequest ?? 4;
    this.#onEvent = opts.onEvent ?? (() => {});
    this.#spent = opts.spent;
    this.#lcStore = new SignerLifecycleStore(opts.store, this.vault, {
      clock: this.#clock,
      retentionMs: () => this.#policy.policy.epochRetentionMs ?? 24 * 3600_000,
      active: (keyId) => this.key(keyId).catch(() => undefined),
      changed: (keyId, roster) => this.#epochChanged(keyId, roster),
    });
    const engine = this;
    this.#lifecycle = new LifecycleParticipant(this.identity, this.#rng, this.#lcStore, {
      // Read at every check, so a reloaded policy's operators are the ones that count.
      get operators() {
        return engine.#policy.policy.operators;
      },
      requireAuthorisation: true,
      pinned: (p) => this.#pinned(p),
      mayJoin: () => true,
      now: this.#clock,
    });
  }

  /**
   * Whether `p` is one of this node's pinned peers: id, signing key AND encryption key (shares
   * are sealed to the encryption key: a roster that keeps a peer's signing key but swaps its
   * X25519 key would hand the share to whoever holds that key).
   */
  #pinned(p: { id: string; signKey: Uint8Array; encKey: Uint8Array }): boolean {
    const { peers, allowUnpinnedPeers } = this.#policy.policy;
    // Development (allowUnpinnedPeers, no list): every participant counts as known.
    if (!peers?.length) return !!allowUnpinnedPeers;
    return peers.some(
      (k) =>
        k.id === p.id && k.publicKey.toLowerCase() === toHex(p.signKey) && k.encKey.toLowerCase() === toHex(p.encKey),
    );
  }

  /**
   * Why this node takes part in no DKG or lifecycle operation, or undefined. Without pinned peers
   * (and without an explicit `allowUnpinnedPeers`), a coordinator could put participants of its
   * own into a key; without pinned operators, nobody can authorise a refresh or reshare.
   */
  /**
   * Puts a reloaded policy in force (the operator's file on this host, re-read on SIGHUP): from
   * the next request on, requesters, pinned peers, operators and device rules are the new ones.
   * Throws, changing nothing, if the policy is unusable (a requester key that is not hex).
   */
  setPolicy(policy: Policy): void {
    this.#policy = this.#policy.with(policy);
  }

  /** The policy in force. */
  get policy(): Policy {
    return this.#policy.policy;
  }

  static unpinnedReason(policy: Policy): string | undefined {
    if ((!policy.peers || policy.peers.length === 0) && !policy.allowUnpinnedPeers)
      return 'no peers are pinned (policy.peers): this node joins no key generation or reshare until they are (or policy.allowUnpinnedPeers is set, for development only)';
    return undefined;
  }

  get id(): string {
    return this.identity.id;
  }

  /** Key ids held by this node. */
  async keys(): Promise<string[]> {
    return this.vault.listKeys();
  }

  /** The latest record of a key (decoded once and cached). */
  async key(keyId: string): Promise<KeyShareRecord> {
    const cached = this.#keys.get(keyId);
    if (cached) return cached;
    const epoch = await this.vault.latestEpoch(keyId);
    if (epoch === undefined) throw new SignerError('NOT_FOUND', `this node holds no share of key ${keyId}`);
    if ((await this.#lcStore.stored(keyId))?.left)
      throw new SignerError('NOT_FOUND', `this node left key ${keyId} in a reshare`);
    const bytes = await this.vault.getShare(keyId, epoch);
    if (!bytes) throw new SignerError('NOT_FOUND', `this node holds no share of key ${keyId}`);
    const rec = decodeKeyShareRecord(bytes);
    bytes.fill(0);
    this.#keys.set(keyId, rec);
    return rec;
  }

  /**
   * The record of `keyId` at `epoch`: the active one, or an earlier epoch still retained after a
   * refresh or reshare (packages reserved before it still complete with it).
   */
  async keyAt(keyId: string, epoch: number): Promise<KeyShareRecord> {
    const active = await this.key(keyId);
    if (active.epoch === epoch) return active;
    // Earlier epochs are kept until enough members acknowledged the new one and the retention time passed.
    if (await this.#lcStore.prune(keyId))
      for (const k of [...this.#older.keys()]) if (k.startsWith(`${keyId}@`)) this.#older.delete(k);
    const cacheKey = `${keyId}@${epoch}`;
    const cached = this.#older.get(cacheKey);
    if (cached) return cached;
    const bytes =
      Number.isSafeInteger(epoch) && epoch >= 0 && epoch < active.epoch
        ? await this.vault.getShare(keyId, epoch)
        : undefined;
    if (!bytes)
      throw new SignerError(
        'RESERVATION_INVALID',
        `this node no longer holds key ${keyId} at epoch ${epoch} (now at ${active.epoch})`,
      );
    const rec = decodeKeyShareRecord(bytes);
    bytes.fill(0);
    this.#older.set(cacheKey, rec);
    return rec;
  }

  /**
   * Discards every unused nonce. Called when a new coordinator link is established: pooled
   * commitments live only in the coordinator's memory, so after a reconnect they may be gone.
   * Consumed records are kept (a replay still fails with NONCE_REUSED).
   */
  async discardFreshNonces(): Promise<number> {
    let n = 0;
    // Reservations (`r.` ids) are promises held by devices, not pooled commitments: they stay.
    for await (const k of this.#store.keys('nonce/'))
      if (!k.startsWith('nonce/r.') && (await this.ledger.discard(k.slice('nonce/'.length)))) n++;
    return n;
  }

  /**
   * The share a sign request at `epoch` uses: the active one, or an earlier epoch while the active
   * one is not yet retired (fewer than min(n', 2t'−1) members acknowledged it, so a quorum may
   * still be at the earlier epoch only: a coordinator that committed on some nodes and not on
   * others cannot make the key unusable). Once retired, only the active epoch signs.
   */
  async #signingRecord(keyId: string, epoch: number): Promise<KeyShareRecord> {
    const active = await this.key(keyId);
    if (epoch === active.epoch) return active;
    const retired = (await this.#lcStore.stored(keyId))?.retired ?? false;
    if (epoch > active.epoch || retired)
      throw new SignerError('INVALID_ARGUMENT', `request is for epoch ${epoch}, this node holds epoch ${active.epoch}`);
    return this.keyAt(keyId, epoch).catch(() => {
      throw new SignerError('INVALID_ARGUMENT', `request is for epoch ${epoch}, this node holds epoch ${active.epoch}`);
    });
  }

  /** Handles one coordinator task. Never throws: failures become a typed error result. */
  async handle(task: LinkTask): Promise<LinkResult> {
    const taskId = task.taskId;
    try {
      switch (task.body) {
        case 'dkgStart':
          try {
            return {
              taskId,
              body: 'envelope',
              envelope: await this.#dkgStart(task.dkgStart?.params, task.dkgStart?.deviceAdmissions ?? []),
            };
          } catch (e) {
            // A refused DKG (policy, unknown roster) is a refusal like a refused signature.
            const err = toTaskError(e);
            if (err.code === 'POLICY_DENIED') {
              await this.audit
                .append({
                  type: 'refusal',
                  actor: this.id,
                  data: { what: 'keygen', code: err.code, reason: err.message.slice(0, 200) },
                })
                .catch(() => {});
              this.#onEvent({ type: 'refusal', keyId: '', code: err.code });
            }
            throw e;
          }
        case 'dkgBundle':
          return { taskId, ...(await this.#dkgBundle(task.dkgBundle)) };
        case 'dkgAbort':
          if (task.dkgAbort) this.#dkg.abort(asBytes(task.dkgAbort.sessionHash, 'session hash'));
          return { taskId, body: 'ok', ok: true };
        case 'commit':
          return {
            taskId,
            body: 'commitments',
            commitments: { envelopes: await this.commitments(task.commit?.keyId ?? '', task.commit?.count ?? 0) },
          };
        case 'sign':
          return { taskId, body: 'envelope', envelope: await this.sign(asBytes(task.sign, 'sign request')) };
        case 'audit':
          return { taskId, body: 'audit', audit: summarizeAudit(await this.audit.verify()) };
        case 'reserve': {
          const r = task.reserve;
          if (!r) throw new SignerError('INVALID_ARGUMENT', 'missing reserve task');
          return {
            taskId,
            body: 'reservations',
            reservations: { envelopes: await this.reserve(r.keyId, r.device, r.count, r.ttlMs) },
          };
        }
        case 'complete':
          return { taskId, body: 'envelope', envelope: await this.complete(asBytes(task.complete, 'offline package')) };
        case 'lifecycle': {
          const r = await this.lifecycle(task.lifecycle);
          return r ? { taskId, body: 'envelope', envelope: r } : { taskId, body: 'ok', ok: true };
        }
        case 'revoke':
          await this.revoke(asBytes(task.revoke, 'revocation'));
          return { taskId, body: 'ok', ok: true };
        default:
          throw new SignerError('INVALID_ARGUMENT', `unknown task ${String(task.body)}`);
      }
    } catch (e) {
      return { taskId, body: 'error', error: toTaskError(e) };
    }
  }

  async #dkgStart(paramsBytes: Uint8Array | undefined, admissions: readonly Uint8Array[]): Promise<Uint8Array> {
    if (!this.#policy.policy.allowKeygen)
      throw new SignerError('POLICY_DENIED', 'this node does not take part in key generation');
    return this.#dkg.start(paramsBytes, (cfg) => {
      const why = SignerEngine.unpinnedReason(this.#policy.policy);
      if (why) throw new SignerError('POLICY_DENIED', why);
      if (!this.#policy.policy.peers?.length) return; // allowUnpinnedPeers (development)
      const unknown = cfg.participants.filter((p) => p.id !== this.id && !p.device && !this.#pinned(p));
      if (unknown.length)
        throw new SignerError(
          'POLICY_DENIED',
          `DKG roster has participants this node does not know: ${unknown.map((p) => p.id).join(', ')}`,
        );
      // Devices enrol at run time and cannot be pinned: each needs the operators' admission. They
      // are marked in the roster every participant confirms; only marked devices get reservations.
      for (const p of cfg.participants)
        if (p.device) checkDeviceAdmission(p, admissions, this.#policy.policy.operators);
    });
  }

  async #dkgBundle(b: LinkTask['dkgBundle']): Promise<Omit<LinkResult, 'taskId'>> {
    const step = this.#dkg.bundle(b);
    if ('envelope' in step) return { body: 'envelope', envelope: step.envelope };
    const out = step.done;
    const keyId = out.keyId;
    const rec: KeyShareRecord = {
      keyId,
      epoch: 0,
      key: out.key,
      share: out.share,
      transcriptHash: out.transcriptHash,
      createdAt: this.#clock(),
    };
    await this.vault.putShare(keyId, 0, encodeKeyShareRecord(rec));
    this.#keys.set(keyId, rec);
    await this.audit.append({
      type: 'keygen',
      actor: this.id,
      data: {
        keyId,
        suite: out.key.suite.id,
        threshold: out.key.threshold,
        participants: out.key.roster.map((r) => r.id).join(','),
        publicKey: toHex(groupPublicKey(out.key)),
      },
    });
    this.#onEvent({ type: 'keygen', keyId });
    return {
      body: 'dkgDone',
      dkgDone: {
        keyId,
        keyDigest: keyDigest(out.key),
        keyRecord: encodeKeyRecord({ keyId, epoch: 0, key: out.key, createdAt: rec.createdAt }),
      },
    };
  }

  /** Produces `count` fresh commitments for `keyId`, each backed by a nonce durably in the ledger. */
  async commitments(keyId: string, count: number): Promise<Uint8Array[]> {
    if (!Number.isInteger(count) || count < 1 || count > 1024)
      throw new SignerError('INVALID_ARGUMENT', 'commitment count must be 1..1024');
    const rec = await this.key(keyId);
    const fresh = await this.ledger.countFresh(`${keyId}.`);
    const n = Math.min(count, Math.max(0, this.#maxFresh - fresh));
    if (n === 0) throw new SignerError('RESOURCE_EXHAUSTED', `already ${fresh} unused commitments for key ${keyId}`);
    // Every nonce of the batch durably in the ledger (one synced write) before any commitment
    // leaves. The public commitment is kept with the nonce (the record's meta): signing compares
    // the listed commitment with it instead of recomputing it from the secret nonces.
    const batch: { nonceId: string; secret: Uint8Array; meta: Uint8Array }[] = [];
    try {
      for (let i = 0; i < n; i++) {
        // A refill is background work: a sign task that arrives meanwhile waits for one nonce at most.
        if (i > 0) await yieldToEventLoop();
        const { nonces, commitment } = commit(rec.share, this.#rng);
        const nonceId = `${keyId}.${toHex(this.#rng(12))}`;
        batch.push({
          nonceId,
          secret: nonces.exportSecret(),
          meta: encodeCommitment(rec.key.suite, commitment, new TextEncoder().encode(nonceId)),
        });
      }
      await this.ledger.addFreshMany(batch);
    } finally {
      for (const b of batch) b.secret.fill(0);
    }
    const out = batch.map((b) => signEnvelope(this.identity, PayloadKind.SIGNING_COMMITMENT, b.meta));
    this.#onEvent({ type: 'commitments', keyId, count: out.length });
    return out;
  }

  /**
   * Answers a sign request with a SIGNATURE_SHARE envelope, or refuses. Order matters: decode,
   * check the intent and policy, find our own commitment and its nonce, and only then consume
   * the nonce (durably, before the share leaves).
   */
  async sign(requestBytes: Uint8Array): Promise<Uint8Array> {
    const req = decodeSignRequest(requestBytes);
    const keyId = req.keyId;
    let ownNonce: string | undefined;
    try {
      const rec = await this.#signingRecord(req.keyId, req.epoch);
      const mine = req.commitments.filter((c) => c.identifier === rec.share.identifier);
      if (mine.length !== 1)
        throw new SignerError(
          'INVALID_ARGUMENT',
          'the commitment list does not carry exactly one commitment of this node',
        );
      const nonceId = new TextDecoder().decode((mine[0] as (typeof mine)[number]).nonceId);
      if (!nonceId.startsWith(`${req.keyId}.`))
        throw new SignerError('INVALID_ARGUMENT', 'the nonce belongs to another key');
      ownNonce = nonceId;
      if (rec.key.suite.id !== req.suite.id)
        throw new SignerError('WRONG_SUITE', `key ${req.keyId} is ${rec.key.suite.id}, request is ${req.suite.id}`);
      const intent = openSignIntent(req.intent, rec.key.suite);
      if (intent.keyId !== req.keyId) throw new SignerError('POLICY_DENIED', 'the intent authorises another key');
      const rule = this.#policy.authorise(intent, req.keyId);
      const auditEntry = {
        type: 'sign',
        actor: rule.id,
        data: {
          keyId,
          requestId: toHex(intent.requestId),
          nonce: nonceId,
          digest: toHex(req.digest),
          ...(intent.path ? { path: intent.path } : {}),
        },
      };
      let audited = false;
      // Serialise per (requester, request id): concurrent tasks cannot overrun the attempt bound.
      const share = await this.#attempts.run(`${toHex(intent.requester)}/${toHex(intent.requestId)}`, async () => {
        let kept: ReturnType<typeof decodeCommitment> | undefined;
        let attempt: BatchOp[] = [];
        return this.ledger.consume(
          nonceId,
          req.digest,
          (secret) => {
            const nonces = SigningNonces.importSecret(rec.key.suite, rec.share.identifier, secret, kept?.commitment);
            // An HD child key: the public tweak of the intent's path applied to key and share.
            if (intent.path) {
              const child = deriveKey(rec.key, intent.path);
              return signShare(deriveShare(rec.share, child.tweak), child.key, nonces, req.commitments, intent.message);
            }
            return signShare(rec.share, rec.key, nonces, req.commitments, intent.message);
          },
          {
            // Only for a fresh nonce (a retry of the same request gets the recorded share).
            beforeProduce: async (meta) => {
              // The commitment kept with the nonce when it was made (absent in older records).
              kept = meta ? decodeCommitment(rec.key.suite, meta) : undefined;
              if (kept && new TextDecoder().decode(kept.nonceId) !== nonceId)
                throw new SignerError('INTERNAL', 'nonce record does not match its id');
              attempt = await this.#countAttempt(intent.requester, intent.requestId, nonceId);
              // Rate tokens are spent only on work that uses a nonce, never on cached retries.
              this.#policy.spendRateToken(rule);
            },
            // The consumption, the request's attempt record and the audit entry: one synced batch,
            // on disk before the share leaves.
            commit: async (ops) => {
              await this.audit.append(auditEntry, { with: [...ops, ...attempt] });
              audited = true;
            },
          },
        );
      });
      // A cached retry (the same request again) releases the recorded share again: audited too.
      if (!audited) await this.audit.append(auditEntry);
      this.#onEvent({ type: 'sign', keyId, result: 'ok' });
      const payload = encodeSignatureShare(rec.key.suite, {
        sessionId: req.sessionId,
        identifier: rec.share.identifier,
        share,
        requestDigest: req.digest,
      });
      return signEnvelope(this.identity, PayloadKind.SIGNATURE_SHARE, payload);
    } catch (e) {
      // A refused request burns the nonce it named (the coordinator has handed its commitment
      // out); discarding it keeps refusals from filling the fresh-nonce cap. A consumed record
      // is never discarded, so replays still fail with NONCE_REUSED.
      if (ownNonce) await this.ledger.discard(ownNonce).catch(() => false);
      const err = toTaskError(e);
      await this.audit
        .append({ type: 'refusal', actor: this.id, data: { keyId, code: err.code, reason: err.message.slice(0, 200) } })
        .catch(() => {});
      this.#onEvent({ type: 'refusal', keyId, code: err.code });
      throw e;
    }
  }

  // ---- share lifecycle: refresh and reshare ---------------------------------------------------

  /**
   * One step of a refresh or reshare (core's `LifecycleParticipant`: operator authorisation,
   * pending outcomes, verified commits, retirement). Refused outright without pinned peers.
   */
  async lifecycle(t: LinkTask['lifecycle']): Promise<Uint8Array | undefined> {
    const why = SignerEngine.unpinnedReason(this.#policy.policy);
    if (why) throw new SignerError('POLICY_DENIED', why);
    const out = await this.#lifecycle.handle(t);
    if (t && (t.step === 3 || t.step === 5))
      await this.audit.append({
        type: 'lifecycle',
        actor: this.id,
        data: { keyId: t.keyId, epoch: Number(t.epoch), step: t.step === 3 ? 'commit' : 'retire' },
      });
    return out;
  }

  /**
   * Revokes devices on the operators' signed word (never the coordinator's): M of the pinned
   * operators approved the revocation. From then on this node reserves nothing for them and
   * completes none of their packages; their unused reservations are discarded. Idempotent.
   */
  async revoke(approved: Uint8Array): Promise<readonly string[]> {
    const devices = checkRevocation(approved, { operators: this.#policy.policy.operators, now: this.#clock() });
    await this.#lcStore.recordRevocations(devices);
    let discarded = 0;
    for (const d of devices)
      for await (const k of this.#store.keys(`nonce/r.${deviceSegment(d)}.`))
        if (await this.ledger.discard(k.slice('nonce/'.length))) discarded++;
    await this.audit.append({
      type: 'device-revoked',
      actor: this.id,
      data: { devices: devices.join(','), discarded },
    });
    return devices;
  }

  /** After a commit: caches drop, and devices no longer in the key lose their reservations on it. */
  async #epochChanged(keyId: string, roster: readonly string[]): Promise<void> {
    this.#keys.delete(keyId);
    for (const k of [...this.#older.keys()]) if (k.startsWith(`${keyId}@`)) this.#older.delete(k);
    const keep = new Set(roster.map(deviceSegment));
    for await (const k of this.#store.keys('nonce/r.')) {
      const [, device, kid] = k.slice('nonce/'.length).split('.');
      if (kid === keyId && device && !keep.has(device)) await this.ledger.discard(k.slice('nonce/'.length));
    }
  }

  // ---- offline co-signing -----------------------------------------------------------------

  #devicePolicy() {
    return { ...DEVICE_POLICY_DEFAULTS, ...(this.#policy.policy.devices ?? {}) };
  }

  /**
   * Reserves `count` nonces of `keyId` for `device` (a participant of the key): each a fresh
   * nonce in the ledger under `r.<device>.<key>.<id>` with the signed reservation as its meta,
   * so completion checks a package against this node's own record. Bounded by the policy's
   * per-device cap (expired reservations are dropped first) and lifetime.
   */
  async reserve(keyId: string, device: string, count: number, ttlMs: number): Promise<Uint8Array[]> {
    const dp = this.#devicePolicy();
    if (!dp.allow) throw new SignerError('POLICY_DENIED', 'this node does not co-sign for devices');
    if (!Number.isInteger(count) || count < 1 || count > 1024)
      throw new SignerError('INVALID_ARGUMENT', 'reservation count must be 1..1024');
    if (dp.revoked?.includes(device) || (await this.#lcStore.revoked(device)))
      throw new SignerError('POLICY_DENIED', `device ${device} is revoked on this node`);
    const rec = await this.key(keyId);
    // Only a participant every member recorded as a device when the key was made (or reshared).
    if (device === this.id || !rec.key.roster.some((r) => r.id === device && r.device))
      throw new SignerError('POLICY_DENIED', `${String(device).slice(0, 64)} is not a device of key ${keyId}`);
    const ttl = Math.min(Number.isSafeInteger(ttlMs) && ttlMs > 0 ? ttlMs : dp.maxTtlMs, dp.maxTtlMs);
    const now = this.#clock();
    // Drop this device's expired, unused reservations: they no longer count against its cap.
    let outstanding = 0;
    for await (const k of this.#store.keys(`nonce/r.${deviceSegment(device)}.`)) {
      const id = k.slice('nonce/'.length);
      const st = await this.ledger.status(id);
      if (st.state !== 'fresh') continue;
      const meta = st.meta ? decodeMessageSafe(st.meta) : undefined;
      if (!meta || meta.expiresAt < now) await this.ledger.discard(id);
      else outstanding++;
    }
    const n = Math.min(count, dp.maxReservations - outstanding);
    if (n <= 0)
      throw new SignerError(
        'RESOURCE_EXHAUSTED',
        `device ${device} already holds ${outstanding} reservations on this node (cap ${dp.maxReservations})`,
      );
    // All reservations of the call durably in the ledger (one synced write) before any leaves.
    const made: {
      r: Parameters<typeof signReservation>[1];
      entry: { nonceId: string; secret: Uint8Array; meta: Uint8Array };
    }[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const { nonces, commitment } = commit(rec.share, this.#rng);
        const nonceId = this.#rng(RESERVATION_NONCE_ID_BYTES);
        const r = {
          suite: rec.key.suite,
          keyId,
          epoch: rec.epoch,
          device,
          signer: this.id,
          nonceId,
          hiding: commitment.hiding,
          binding: commitment.binding,
          expiresAt: now + ttl,
        };
        made.push({
          r,
          entry: {
            nonceId: reservationLedgerId(device, keyId, nonceId),
            secret: nonces.exportSecret(),
            meta: encodeReservation(r),
          },
        });
      }
      await this.ledger.addFreshMany(made.map((m) => m.entry));
    } finally {
      for (const m of made) m.entry.secret.fill(0);
    }
    const out = made.map((m) => signReservation(this.identity, m.r));
    await this.audit.append({
      type: 'reserve',
      actor: this.id,
      data: { keyId, device, count: n, expiresAt: now + ttl },
    });
    this.#onEvent({ type: 'reserve', keyId, device, count: n });
    return out;
  }

  /**
   * Completes an offline package with this node's reserved nonce. The package must be for a
   * reservation this node issued to that device (its own ledger record, not the package, is
   * the authority), unexpired, and carry a valid share of the device over the message: the
   * device's share is its authorisation. The nonce is consumed durably before the share
   * leaves; the same package again gets the same share; another package on the same
   * reservation is refused with RESERVATION_USED. A refused package does not burn the
   * reservation.
   */
  async complete(bytes: Uint8Array): Promise<Uint8Array> {
    const pkg = decodeOfflinePackage(bytes);
    const keyId = pkg.keyId;
    try {
      const dp = this.#devicePolicy();
      if (!dp.allow) throw new SignerError('POLICY_DENIED', 'this node does not co-sign for devices');
      if (dp.revoked?.includes(pkg.device) || (await this.#lcStore.revoked(pkg.device)))
        throw new SignerError('POLICY_DENIED', `device ${pkg.device} is revoked on this node`);
      // A package completes with the share of its own epoch (kept for a while after a refresh).
      const rec = await this.keyAt(keyId, pkg.epoch);
      const mine = pkg.cosigners.filter((c) => c.signer === this.id);
      if (mine.length !== 1) throw new SignerError('INVALID_ARGUMENT', 'the package names no reservation of this node');
      const res = mine[0] as (typeof mine)[number];
      const ledgerId = reservationLedgerId(pkg.device, keyId, res.nonceId);
      const st = await this.ledger.status(ledgerId);
      if (st.state === 'unknown')
        throw new SignerError(
          'RESERVATION_UNKNOWN',
          `no reservation ${toHex(res.nonceId)} of ${pkg.device} on this node`,
        );
      // Reservations exist only for devices of the key; checked again against the key itself.
      if (!rec.key.roster.some((r) => r.id === pkg.device && r.device))
        throw new SignerError('POLICY_DENIED', `${pkg.device.slice(0, 64)} is not a device of key ${keyId}`);
      const own = st.meta ? decodeMessageSafe(st.meta) : undefined;
      if (
        !own ||
        own.epoch !== pkg.epoch ||
        own.keyId !== keyId ||
        own.device !== pkg.device ||
        !equalBytes(own.hiding, res.hiding) ||
        !equalBytes(own.binding, res.binding) ||
        own.expiresAt !== res.expiresAt
      )
        throw new SignerError('RESERVATION_INVALID', 'the package does not match the reservation this node issued', [
          pkg.device,
        ]);
      if (st.state === 'fresh' && own.expiresAt < this.#clock()) {
        await this.ledger.discard(ledgerId);
        throw new SignerError(
          'RESERVATION_EXPIRED',
          `reservation ${toHex(res.nonceId)} expired at ${new Date(own.expiresAt).toISOString()}`,
        );
      }
      if (st.state === 'consumed' && !equalBytes(st.requestDigest, pkg.digest))
        throw new SignerError(
          'RESERVATION_USED',
          `reservation ${toHex(res.nonceId)} was already used by another package`,
        );
      // The journal outlives a damaged store: a used reservation stays used.
      const spentFor = this.#spent?.get(ledgerId);
      if (spentFor !== undefined && spentFor !== toHex(pkg.digest))
        throw new SignerError(
          'RESERVATION_USED',
          `reservation ${toHex(res.nonceId)} was already used by another package`,
        );
      verifyOfflinePackage(rec.key, pkg, { keyId, epoch: rec.epoch });
      // Cached unless this call's produce() runs: concurrent deliveries that lose the ledger's
      // per-nonce lock get the stored share and must not be counted as fresh completions.
      let cached = true;
      let share: Uint8Array;
      try {
        share = await this.ledger.consume(ledgerId, pkg.digest, async (secret) => {
          cached = false;
          // The reservation this node signed names the commitment of exactly these nonces.
          const nonces = SigningNonces.importSecret(rec.key.suite, rec.share.identifier, secret, {
            identifier: rec.share.identifier,
            hiding: own.hiding,
            binding: own.binding,
          });
          const out = signShare(rec.share, rec.key, nonces, packageCommitments(rec.key, pkg), pkg.message);
          // Journalled (fsync) before the ledger write and before release.
          await this.#spent?.add(ledgerId, toHex(pkg.digest));
          return out;
        });
      } catch (e) {
        if ((e as { code?: string }).code === 'NONCE_REUSED')
          throw new SignerError(
            'RESERVATION_USED',
            `reservation ${toHex(res.nonceId)} was already used by another package`,
          );
        throw e;
      }
      await this.audit.append({
        type: 'offline-complete',
        actor: pkg.device,
        data: { keyId, package: pkg.packageId, nonce: ledgerId, cached },
      });
      this.#onEvent({ type: 'complete', keyId, device: pkg.device, result: cached ? 'cached' : 'ok' });
      const payload = encodeSignatureShare(rec.key.suite, {
        sessionId: pkg.digest.subarray(0, 16),
        identifier: rec.share.identifier,
        share,
        requestDigest: pkg.digest,
      });
      return signEnvelope(this.identity, PayloadKind.SIGNATURE_SHARE, payload);
    } catch (e) {
      const err = toTaskError(e);
      await this.audit
        .append({
          type: 'refusal',
          actor: this.id,
          data: { keyId, what: 'offline', package: pkg.packageId, code: err.code, reason: err.message.slice(0, 200) },
        })
        .catch(() => {});
      this.#onEvent({ type: 'refusal', keyId, code: err.code });
      throw e;
    }
  }

  /**
   * Bounds how many distinct nonces one request may consume: a coordinator that retries with new
   * quorums gets a few attempts; one replaying an intent does not get unbounded signatures.
   * Callers hold the per-request mutex.
   */
  async #countAttempt(requester: Uint8Array, requestId: Uint8Array, nonceId: string): Promise<BatchOp[]> {
    const k = `attempts/${toHex(requester)}/${toHex(requestId)}`;
    const prev = await this.#store.get(k);
    const list = prev ? new TextDecoder().decode(prev).split(',') : [];
    if (list.includes(nonceId)) return [];
    if (list.length >= this.#maxAttempts)
      throw new SignerError(
        'POLICY_DENIED',
        `request ${toHex(requestId).slice(0, 16)}… already used ${list.length} nonces`,
      );
    list.push(nonceId);
    // Written by the caller with the nonce's consumption (one atomic, synced batch).
    return [{ type: 'put', key: k, value: new TextEncoder().encode(list.join(',')) }];
  }
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Ledger id of a reservation: per device, so a device's outstanding reservations count by prefix.
 * The device id is hex-encoded: no character of an id can act as the separator, so device `a`'s
 * prefix never covers device `a.b`'s records.
 */
function reservationLedgerId(device: string, keyId: string, nonceId: Uint8Array): string {
  return `r.${deviceSegment(device)}.${keyId}.${toHex(nonceId)}`;
}

/** The reservation a ledger record carries as its meta (written by this node). */
function decodeMessageSafe(
  meta: Uint8Array,
):
  | { keyId: string; epoch: number; device: string; hiding: Uint8Array; binding: Uint8Array; expiresAt: number }
  | undefined {
  try {
    return decodeMessage('Reservation', meta);
  } catch {
    return undefined;
  }
}

function asBytes(b: unknown, what: string): Uint8Array {
  if (!(b instanceof Uint8Array)) throw new SignerError('INVALID_ARGUMENT', `${what}: expected bytes`);
  return b;
}

/**
 * Maps any failure to the wire error shape. Only Tessera's own errors (a stable code and a
 * culprits list: core, store, policy, engine) keep their message; anything else — a Node or
 * LevelDB error that might carry paths or values — becomes INTERNAL with no message.
 */
export function toTaskError(e: unknown): TaskError {
  if (isTesseraError(e) && /^[A-Z_]+$/.test(e.code))
    return { code: e.code, message: e.message, culprits: [...e.culprits].map(String) };
  return { code: 'INTERNAL', message: 'internal error', culprits: [] };
}

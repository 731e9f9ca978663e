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
  LifecycleParticipant,
  checkDeviceAdmission,
  checkRevocation,
  decodeKeyRecord,
  decodeReshareParams,
  decodeKeyShareRecord,
  encodeKeyRecord,
  encodeKeyShareRecord,
  groupPublicKey,
  keyDigest,
  toHex,
  type GroupKey,
  type KeyShareRecord,
  type ParticipantIdentity,
  type Rng,
} from '@tessera/core';
import { AuditLog, KeyedMutex, NonceLedger, ShareVault, summarizeAudit, type SealedKV } from '@tessera/store';
import { randomBytes } from 'node:crypto';
import { PolicyEngine, type Policy } from './policy.js';
import { SignerLifecycleStore, deviceSegment } from './lifecycle-store.js';
import type { SpentReservations } from './spent.js';
import { SignerError, toTaskError } from './errors.js';
import { OfflineCosigner } from './offline-cosigner.js';
import { OnlineSigner } from './online-signer.js';
import { EcdsaSigner } from './ecdsa-signer.js';

export { SignerError, toTaskError };
import type { Allowance, LinkResult, LinkTask } from '@tessera/core';

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
  readonly #offline: OfflineCosigner;
  readonly #online: OnlineSigner;
  readonly #ecdsa: EcdsaSigner;

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
    this.#online = new OnlineSigner({
      identity: this.identity,
      ledger: this.ledger,
      audit: this.audit,
      store: opts.store,
      rng: this.#rng,
      maxFresh: this.#maxFresh,
      maxAttempts: this.#maxAttempts,
      attempts: this.#attempts,
      policy: () => this.#policy,
      key: (keyId) => this.key(keyId),
      signingRecord: (keyId, epoch) => this.#signingRecord(keyId, epoch),
      onEvent: (e) => this.#onEvent(e),
    });
    this.#ecdsa = new EcdsaSigner({
      identity: this.identity,
      ledger: this.ledger,
      audit: this.audit,
      store: opts.store,
      rng: this.#rng,
      maxFresh: this.#maxFresh,
      clock: this.#clock,
      attempts: this.#attempts,
      policy: () => this.#policy,
      key: (keyId) => this.key(keyId),
      signingRecord: (keyId, epoch) => this.#signingRecord(keyId, epoch),
      countAttempt: (requester, requestId, nonceId) => this.#online.countAttempt(requester, requestId, nonceId),
      onEvent: (e) => this.#onEvent(e),
    });
    this.#offline = new OfflineCosigner({
      identity: this.identity,
      ledger: this.ledger,
      audit: this.audit,
      store: opts.store,
      rng: this.#rng,
      clock: this.#clock,
      spent: this.#spent,
      policy: () => this.#policy.policy,
      revoked: (device) => this.#lcStore.revoked(device),
      key: (keyId) => this.key(keyId),
      keyAt: (keyId, epoch) => this.keyAt(keyId, epoch),
      onEvent: (e) => this.#onEvent(e),
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
    // The old link's ECDSA sessions cannot continue either (their ids stay spent).
    this.#ecdsa.dropSessions();
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
            reservations: {
              envelopes: await this.reserve(r.keyId, r.device, r.count, r.ttlMs, r.allowance ?? undefined),
            },
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
        case 'ecdsa': {
          const a = await this.#ecdsa.task(task.ecdsa ?? undefined);
          if ('envelopes' in a) return { taskId, body: 'ecdsa', ecdsa: { envelopes: a.envelopes } };
          if ('envelope' in a) return { taskId, body: 'envelope', envelope: a.envelope };
          return { taskId, body: 'ok', ok: true };
        }
        case 'ecdsaSign':
          return {
            taskId,
            body: 'envelope',
            envelope: await this.#ecdsa.sign(asBytes(task.ecdsaSign, 'ECDSA sign request')),
          };
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

  /** Fresh nonce commitments for the coordinator's pool (see {@link OnlineSigner.commitments}). */
  commitments(keyId: string, count: number): Promise<Uint8Array[]> {
    return this.#online.commitments(keyId, count);
  }

  /** Answers a sign request with a SIGNATURE_SHARE envelope, or refuses (see {@link OnlineSigner.sign}). */
  sign(requestBytes: Uint8Array): Promise<Uint8Array> {
    return this.#online.sign(requestBytes);
  }

  // ---- share lifecycle: refresh and reshare ---------------------------------------------------

  /**
   * One step of a refresh or reshare (core's `LifecycleParticipant`: operator authorisation,
   * pending outcomes, verified commits, retirement). Refused outright without pinned peers.
   */
  async lifecycle(t: LinkTask['lifecycle']): Promise<Uint8Array | undefined> {
    const why = SignerEngine.unpinnedReason(this.#policy.policy);
    if (why) throw new SignerError('POLICY_DENIED', why);
    if (t?.kind === 'reshare' && (await this.#ecdsaReshareToDevices(t)))
      throw new SignerError('UNIMPLEMENTED', `key ${t.keyId} is ECDSA: devices cannot hold its shares yet`);
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
   * Whether a reshare would give a device a share of an ECDSA key (`keyId` held here, or else
   * described by the task's old key record): its pairwise setup runs on signer nodes only.
   */
  async #ecdsaReshareToDevices(t: NonNullable<LinkTask['lifecycle']>): Promise<boolean> {
    const held = (await this.key(t.keyId).catch(() => undefined))?.key;
    let given: GroupKey | undefined;
    try {
      given = t.oldKeyRecord?.length ? decodeKeyRecord(t.oldKeyRecord).key : undefined;
    } catch {
      // the lifecycle participant refuses a malformed record itself
    }
    // The params decode against the key they were made for: the task's old record (a catch-up
    // of a missed epoch) or the held one. Params that decode against neither are refused by the
    // lifecycle participant itself, which decodes them the same way.
    for (const old of [given, held])
      if (old?.suite.scheme === 'ecdsa')
        try {
          return decodeReshareParams(t.params, old).newParticipants.some((p) => p.device);
        } catch {}
    return false;
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

  // ---- offline co-signing (offline-cosigner.ts) ----------------------------------------------

  /** Reserves `count` nonces of `keyId` for `device` (see {@link OfflineCosigner.reserve}). */
  reserve(keyId: string, device: string, count: number, ttlMs: number, allowance?: Allowance): Promise<Uint8Array[]> {
    return this.#offline.reserve(keyId, device, count, ttlMs, allowance);
  }

  /** Completes an offline package with this node's reserved nonce (see {@link OfflineCosigner.complete}). */
  complete(bytes: Uint8Array): Promise<Uint8Array> {
    return this.#offline.complete(bytes);
  }
}

function asBytes(b: unknown, what: string): Uint8Array {
  if (!(b instanceof Uint8Array)) throw new SignerError('INVALID_ARGUMENT', `${what}: expected bytes`);
  return b;
}

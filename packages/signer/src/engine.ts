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
  LifecycleParticipant,
  checkRevocation,
  toHex,
  type KeyShareRecord,
  type ParticipantIdentity,
  type Rng,
} from '@tessera/core';
import { AuditLog, KeyedMutex, NonceLedger, ShareVault, summarizeAudit, type SealedKV } from '@tessera/store';
import { randomBytes } from 'node:crypto';
import { PolicyEngine, type Policy, unpinnedReason } from './policy.js';
import { KeyRecords } from './key-records.js';
import { KeygenSigner } from './keygen-signer.js';
import { reshareGivesDevicesEcdsa } from './ecdsa-reshare-guard.js';
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
  readonly #keygen: KeygenSigner;
  readonly #lcStore: SignerLifecycleStore;
  readonly #lifecycle: LifecycleParticipant;
  readonly #attempts = new KeyedMutex();
  readonly #records: KeyRecords;
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
    this.#maxFresh = opts.maxFreshPerKey ?? 256;
    this.#maxAttempts = opts.maxAttemptsPerRequest ?? 4;
    this.#onEvent = opts.onEvent ?? (() => {});
    this.#spent = opts.spent;
    this.#records = new KeyRecords(this.vault, () => this.#lcStore);
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
    this.#keygen = new KeygenSigner({
      identity: this.identity,
      rng: this.#rng,
      clock: this.#clock,
      vault: this.vault,
      audit: this.audit,
      policy: () => this.#policy.policy,
      pinned: (p) => this.#pinned(p),
      remember: (rec) => this.#records.remember(rec),
      onEvent: (e) => this.#onEvent(e),
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
      signingRecord: (keyId, epoch) => this.#records.signingRecord(keyId, epoch),
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
      signingRecord: (keyId, epoch) => this.#records.signingRecord(keyId, epoch),
      countAttempt: (requester, requestId, nonceId) => this.#online.countAttempt(requester, requestId, nonceId),
      admitDevice: (device, presigning) => this.#offline.admitDevice(device, presigning),
      reservationTtlMs: () => this.#offline.reservationTtlMs(),
      spent: this.#spent,
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

  /** Why a node with `policy` joins no DKG or lifecycle operation (./policy.ts). */
  static readonly unpinnedReason = unpinnedReason;

  get id(): string {
    return this.identity.id;
  }

  /** Key ids held by this node. */
  async keys(): Promise<string[]> {
    return this.vault.listKeys();
  }

  /** The latest record of a key (./key-records.ts). */
  key(keyId: string): Promise<KeyShareRecord> {
    return this.#records.key(keyId);
  }

  /** The record of `keyId` at `epoch`: the active one or a retained earlier one (./key-records.ts). */
  keyAt(keyId: string, epoch: number): Promise<KeyShareRecord> {
    return this.#records.keyAt(keyId, epoch);
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
    // Reservations (`r.` ids, and a device's ECDSA presignatures, `q.`) are promises held by
    // devices, not pooled commitments: they stay.
    for await (const k of this.#store.keys('nonce/'))
      if (!/^nonce\/[rq]\./.test(k) && (await this.ledger.discard(k.slice('nonce/'.length)))) n++;
    return n;
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
              envelope: await this.#keygen.start(task.dkgStart?.params, task.dkgStart?.deviceAdmissions ?? []),
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
          return { taskId, ...(await this.#keygen.bundle(task.dkgBundle)) };
        case 'dkgAbort':
          if (task.dkgAbort) this.#keygen.abort(asBytes(task.dkgAbort.sessionHash, 'session hash'));
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
              envelopes: await this.reserve(r.keyId, r.device, r.count, r.ttlMs, r.allowance ?? undefined, {
                ...(r.deviceCall?.length ? { deviceCall: r.deviceCall } : {}),
              }),
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
    const why = unpinnedReason(this.#policy.policy);
    if (why) throw new SignerError('POLICY_DENIED', why);
    if (t?.kind === 'reshare' && reshareGivesDevicesEcdsa(t, (await this.key(t.keyId).catch(() => undefined))?.key))
      throw new SignerError(
        'UNIMPLEMENTED',
        `key ${t.keyId} is ECDSA: a device joins it by its keygen only, not by a reshare`,
      );
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
      for (const kind of ['r', 'q'])
        for await (const k of this.#store.keys(`nonce/${kind}.${deviceSegment(d)}.`))
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
    this.#records.forget(keyId);
    const keep = new Set(roster.map(deviceSegment));
    for (const kind of ['r', 'q'])
      for await (const k of this.#store.keys(`nonce/${kind}.`)) {
        const [, device, kid] = k.slice('nonce/'.length).split('.');
        if (kid === keyId && device && !keep.has(device)) await this.ledger.discard(k.slice('nonce/'.length));
      }
  }

  // ---- offline co-signing (offline-cosigner.ts) ----------------------------------------------

  /** Reserves `count` nonces of `keyId` for `device` (see {@link OfflineCosigner.reserve}). */
  reserve(
    keyId: string,
    device: string,
    count: number,
    ttlMs: number,
    allowance?: Allowance,
    opts: { deviceCall?: Uint8Array } = {},
  ): Promise<Uint8Array[]> {
    return this.#offline.reserve(keyId, device, count, ttlMs, allowance, opts);
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

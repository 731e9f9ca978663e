/**
 * A participant's side of refresh and reshare, as link tasks: one state machine shared by signer
 * nodes and devices (as {@link DkgParticipant} is for the DKG); storage is the caller's, behind
 * {@link LifecycleStore}.
 *
 * The participant acts on signed authority only, never on the coordinator's word:
 * - CONTRIBUTE (seals something derived from its share to others) and APPLY (takes a new share)
 *   need an operator authorisation it checks itself ({@link checkAuthorisation}): the key, the
 *   epoch, the exact new roster and threshold, M of its pinned operator keys. A contribution also
 *   needs the authorisation unexpired.
 * - APPLY keeps the new share *pending*, one record per session: applying several sessions of
 *   one epoch confirms each, but activates none.
 * - COMMIT activates a pending outcome only with the confirmations of everyone that had to
 *   confirm it (refresh: the contributors, at least t; reshare: every new participant), checked
 *   against this participant's OWN pending outcome. A commit for anything else is refused and
 *   changes nothing. Activation deletes no share: the previous epochs stay.
 * - RETIRE carries activation acknowledgements: once min(n', 2t'−1) members of the new epoch
 *   have signed that they activated exactly this outcome (so t' honest ones did, even with t'−1
 *   liars among them), the store may drop older epochs after its retention time. Until then a
 *   quorum of some epoch always still holds its shares.
 * - ABORT drops pending outcomes only, never an active share.
 */
import { checkAuthorisation, type LifecycleAuthorisation, type OperatorPolicy } from './authorisation.js';
import { equalBytes, fromHex, toHex, type Rng } from './bytes.js';
import { openEnvelope, signEnvelope } from './envelope.js';
import { ErrorCode, InvalidArgumentError, ProtocolError } from './errors.js';
import { sameIdentity, type ParticipantIdentity, type ParticipantPublic } from './identity.js';
import { keyDigest, type GroupKey } from './key.js';
import {
  applyRefresh,
  applyReshare,
  checkLifecycleConfirmations,
  confirmLifecycle,
  decodeRefreshParams,
  decodeReshareParams,
  refreshRound1,
  reshareRound1,
  resharePublicKey,
  type LifecyclePublic,
} from './lifecycle.js';
import {
  KEY_ID_PATTERN,
  decodeKeyRecord,
  decodeKeyShareRecord,
  encodeKeyRecord,
  encodeKeyShareRecord,
  type KeyShareRecord,
} from './records.js';
import { decodeMessage, encodeMessage } from './wire/codec.js';
import { LifecycleStep, type LifecycleTask } from './wire/link.js';
import { makeHeader } from './wire/packages.js';
import { PayloadKind } from './wire/types.js';

/** A refresh or reshare outcome this participant applied and confirmed, not yet committed. */
export interface PendingOutcome {
  readonly kind: 'refresh' | 'reshare';
  readonly public: LifecyclePublic;
  /** Who must have confirmed before a commit counts (refresh: contributors; reshare: the new roster). */
  readonly required: readonly string[];
  /** The new share; absent for an old member leaving the key in a reshare. */
  readonly share?: KeyShareRecord;
  /** Devices the authorisation revokes. */
  readonly revoke: readonly string[];
}

/** The public side of the epoch a participant made active (kept also when it left the key). */
export interface ActiveOutcome {
  readonly epoch: number;
  readonly key: GroupKey;
  readonly transcriptHash: Uint8Array;
  /** This participant is not in the key's roster any more (it left in a reshare). */
  readonly left: boolean;
}

/** What the participant needs of its storage. Every write is durable (synced) before it resolves. */
export interface LifecycleStore {
  /** The active share of a key, or undefined (none, or the participant left it). */
  active(keyId: string): Promise<KeyShareRecord | undefined>;
  /** The public side of the latest committed epoch (also after leaving). */
  outcome(keyId: string): Promise<ActiveOutcome | undefined>;
  pending(keyId: string, epoch: number): Promise<PendingOutcome[]>;
  putPending(keyId: string, p: PendingOutcome): Promise<void>;
  /** Drops every pending outcome of the key (never an active share). */
  dropPending(keyId: string): Promise<void>;
  /** Makes `p` the active epoch (or records leaving) and drops the pending outcomes. Deletes no share. */
  activate(keyId: string, p: PendingOutcome): Promise<void>;
  /** Records that at least t' members acknowledged activating `epoch`: older epochs may go after the retention time. */
  retire(keyId: string, epoch: number): Promise<void>;
}

export interface LifecyclePolicy {
  /** Operator keys this participant pins; without them it contributes to no lifecycle operation. */
  readonly operators?: OperatorPolicy;
  /**
   * Whether every step needs an operator authorisation (signer nodes: always). A device without
   * pinned operators still applies refreshes (which cannot move a key) and commits, but
   * contributes to no reshare.
   */
  readonly requireAuthorisation: boolean;
  /** Whether this participant pinned `p` (its id and keys). */
  pinned(p: ParticipantPublic): boolean;
  /** Whether it may join a key it does not hold through a reshare (a device: only when it asked to). */
  mayJoin(keyId: string): boolean;
  now(): number;
}

export class LifecycleParticipant {
  constructor(
    private readonly identity: ParticipantIdentity,
    private readonly rng: Rng,
    private readonly store: LifecycleStore,
    private readonly policy: LifecyclePolicy,
  ) {}

  /** Handles one step; returns the envelope to answer with, or undefined for a plain ok. */
  async handle(t: LifecycleTask | null | undefined): Promise<Uint8Array | undefined> {
    if (!t || typeof t.keyId !== 'string') throw new InvalidArgumentError('missing lifecycle task');
    // Key ids become record-key segments of the caller's store: only the canonical form.
    if (!KEY_ID_PATTERN.test(t.keyId)) throw new InvalidArgumentError(`malformed key id "${t.keyId.slice(0, 40)}"`);
    if (!Number.isSafeInteger(Number(t.epoch)) || Number(t.epoch) < 0)
      throw new InvalidArgumentError('malformed epoch');
    if (t.kind !== 'refresh' && t.kind !== 'reshare')
      throw new InvalidArgumentError(`unknown lifecycle kind ${String(t.kind).slice(0, 20)}`);
    switch (t.step) {
      case LifecycleStep.ABORT:
        await this.store.dropPending(t.keyId);
        return undefined;
      case LifecycleStep.CONTRIBUTE:
        return this.#contribute(t);
      case LifecycleStep.APPLY:
        return this.#apply(t);
      case LifecycleStep.COMMIT:
        return this.#commit(t);
      case LifecycleStep.RETIRE:
        return void (await this.#retire(t));
      default:
        throw new InvalidArgumentError(`unknown lifecycle step ${String(t.step).slice(0, 10)}`);
    }
  }

  #authorise(
    t: LifecycleTask,
    req: Parameters<typeof checkAuthorisation>[1],
    contributing: boolean,
  ): LifecycleAuthorisation | undefined {
    const { operators, requireAuthorisation } = this.policy;
    const needed = requireAuthorisation || !!operators || (contributing && req.operation === 'reshare');
    if (!needed) return undefined;
    // Expiry bounds when shares may be handed out; a participant applying a session it missed
    // (catch-up, long after) still checks the approvals and the content.
    const self = this.identity.public;
    const pinned = (p: ParticipantPublic) => sameIdentity(p, self) || this.policy.pinned(p);
    return checkAuthorisation(t.authorisation, req, { operators, pinned, now: contributing ? this.policy.now() : 0 });
  }

  async #held(keyId: string): Promise<KeyShareRecord> {
    const held = await this.store.active(keyId);
    if (!held) throw new ProtocolError(ErrorCode.NOT_FOUND, `this participant holds no share of key ${keyId}`);
    return held;
  }

  async #contribute(t: LifecycleTask): Promise<Uint8Array> {
    const held = await this.#held(t.keyId);
    if (t.kind === 'refresh') {
      const cfg = decodeRefreshParams(t.params, held.key);
      this.#sameEpoch(cfg.keyId, t.keyId, cfg.fromEpoch, held.epoch);
      this.#authorise(t, { operation: 'refresh', keyId: t.keyId, fromEpoch: cfg.fromEpoch, key: held.key }, true);
      return refreshRound1(cfg, this.identity, this.rng);
    }
    const cfg = decodeReshareParams(t.params, held.key);
    this.#sameEpoch(cfg.keyId, t.keyId, cfg.fromEpoch, held.epoch);
    this.#authorise(
      t,
      {
        operation: 'reshare',
        keyId: t.keyId,
        fromEpoch: cfg.fromEpoch,
        key: held.key,
        newThreshold: cfg.newThreshold,
        newParticipants: cfg.newParticipants,
      },
      true,
    );
    return reshareRound1(cfg, this.identity, held.share, this.rng);
  }

  #sameEpoch(cfgKeyId: string, keyId: string, fromEpoch: number, held: number): void {
    if (cfgKeyId !== keyId)
      throw new ProtocolError(
        ErrorCode.UNEXPECTED_MESSAGE,
        `the session is for key ${cfgKeyId}, the task names ${keyId}`,
      );
    if (fromEpoch !== held)
      throw new ProtocolError(
        ErrorCode.UNEXPECTED_MESSAGE,
        `the session starts from epoch ${fromEpoch}, this participant is at ${held}`,
      );
  }

  async #apply(t: LifecycleTask): Promise<Uint8Array | undefined> {
    const held = await this.store.active(t.keyId);
    if (held && held.epoch >= Number(t.epoch)) return undefined; // applied and committed before (a catch-up retry)
    if (t.kind === 'refresh') {
      if (!held) throw new ProtocolError(ErrorCode.NOT_FOUND, `this participant holds no share of key ${t.keyId}`);
      const cfg = decodeRefreshParams(t.params, held.key);
      this.#sameEpoch(cfg.keyId, t.keyId, cfg.fromEpoch, held.epoch);
      const auth = this.#authorise(
        t,
        { operation: 'refresh', keyId: t.keyId, fromEpoch: cfg.fromEpoch, key: held.key },
        false,
      );
      const out = applyRefresh(cfg, this.identity, held.share, t.envelopes);
      return this.#keep(t.keyId, 'refresh', out, cfg.contributors, auth, out.share);
    }
    // A participant joining by reshare learns the old key from the task (it never held it); the
    // result's public key must then be compared with one it trusts (the CLI does).
    const oldKey = held?.key ?? (t.oldKeyRecord?.length ? decodeKeyRecord(t.oldKeyRecord).key : undefined);
    if (!oldKey)
      throw new InvalidArgumentError('reshare: this participant does not hold the key and no old key record was sent');
    const cfg = decodeReshareParams(t.params, oldKey);
    if (held) this.#sameEpoch(cfg.keyId, t.keyId, cfg.fromEpoch, held.epoch);
    else if (cfg.keyId !== t.keyId)
      throw new ProtocolError(
        ErrorCode.UNEXPECTED_MESSAGE,
        `the session is for key ${cfg.keyId}, the task names ${t.keyId}`,
      );
    const auth = this.#authorise(
      t,
      {
        operation: 'reshare',
        keyId: t.keyId,
        fromEpoch: cfg.fromEpoch,
        key: oldKey,
        newThreshold: cfg.newThreshold,
        newParticipants: cfg.newParticipants,
      },
      false,
    );
    const required = cfg.newParticipants.map((p) => p.id);
    if (!cfg.newParticipants.some((p) => p.id === this.identity.id)) {
      if (!held) return undefined; // neither old nor new: nothing to do
      // Leaving: remember the outcome, so that a commit is checked like anyone else's.
      await this.store.putPending(t.keyId, {
        kind: 'reshare',
        public: resharePublicKey(cfg, t.envelopes),
        required,
        revoke: auth?.revoke ?? [],
      });
      return undefined;
    }
    if (!held && !this.policy.mayJoin(t.keyId))
      throw new ProtocolError(ErrorCode.POLICY_DENIED, 'this participant joins only keys it asked to join');
    const out = applyReshare(cfg, this.identity, t.envelopes);
    return this.#keep(t.keyId, 'reshare', out, required, auth, out.share);
  }

  async #keep(
    keyId: string,
    kind: 'refresh' | 'reshare',
    out: LifecyclePublic,
    required: readonly string[],
    auth: LifecycleAuthorisation | undefined,
    share: KeyShareRecord['share'],
  ): Promise<Uint8Array> {
    const rec: KeyShareRecord = {
      keyId,
      epoch: out.epoch,
      key: out.key,
      share,
      transcriptHash: out.transcriptHash,
      createdAt: this.policy.now(),
    };
    await this.store.putPending(keyId, { kind, public: out, required, share: rec, revoke: auth?.revoke ?? [] });
    return confirmLifecycle(this.identity, out);
  }

  async #commit(t: LifecycleTask): Promise<Uint8Array | undefined> {
    const epoch = Number(t.epoch);
    const done = await this.store.outcome(t.keyId);
    if (done && done.epoch >= epoch) return done.left ? undefined : this.#ack(t.keyId, done);
    const candidates = await this.store.pending(t.keyId, epoch);
    // Only an outcome this participant derived itself, confirmed by everyone who had to confirm it.
    const match = candidates.find((p) => {
      try {
        checkLifecycleConfirmations(p.public, t.envelopes, p.required);
        return true;
      } catch {
        return false;
      }
    });
    if (!match)
      throw new ProtocolError(
        ErrorCode.UNEXPECTED_MESSAGE,
        candidates.length === 0
          ? `nothing pending for key ${t.keyId} at epoch ${epoch}: a commit activates only an outcome this participant applied`
          : `the commit of key ${t.keyId} epoch ${epoch} does not carry the confirmations of this participant's pending outcome`,
      );
    await this.store.activate(t.keyId, match);
    return match.share
      ? this.#ack(t.keyId, { epoch, key: match.public.key, transcriptHash: match.public.transcriptHash, left: false })
      : undefined;
  }

  /** The signed acknowledgement that this participant activated `o`. */
  #ack(keyId: string, o: ActiveOutcome): Uint8Array {
    const r = o.key.roster.find((x) => x.id === this.identity.id);
    if (!r) throw new ProtocolError(ErrorCode.INVALID_STATE, `not a participant of key ${keyId}`);
    return signEnvelope(this.identity, PayloadKind.LIFECYCLE_ACTIVATED, activationPayload(o, r.identifier));
  }

  async #retire(t: LifecycleTask): Promise<void> {
    const o = await this.store.outcome(t.keyId);
    if (!o || o.epoch !== Number(t.epoch))
      throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, `key ${t.keyId} is not at epoch ${Number(t.epoch)} here`);
    const n = countActivations(o, t.envelopes);
    const need = retirementQuorum(o.key);
    if (n < need)
      throw new ProtocolError(
        ErrorCode.UNEXPECTED_MESSAGE,
        `retiring epochs before ${o.epoch} of key ${t.keyId} needs ${need} activation acknowledgements, got ${n}`,
      );
    await this.store.retire(t.keyId, o.epoch);
  }
}

function activationPayload(o: Pick<ActiveOutcome, 'epoch' | 'key' | 'transcriptHash'>, identifier: string): Uint8Array {
  // The same statement as a confirmation, under another payload kind: "I made it active".
  return encodeMessage('LifecycleConfirm', {
    header: makeHeader(o.key.suite),
    sessionHash: new Uint8Array(0),
    identifier: fromHex(identifier),
    epoch: o.epoch,
    transcriptHash: o.transcriptHash,
    keyDigest: keyDigest(o.key),
  });
}

/**
 * Activation acknowledgements needed before earlier epochs may go: min(n', 2t'−1). Even if t'−1
 * of the acknowledging members lie (they hold nothing, or will delete it), t' honest members
 * hold the new epoch, so some quorum always holds a common epoch.
 */
export function retirementQuorum(key: GroupKey): number {
  return Math.min(key.roster.length, 2 * key.threshold - 1);
}

/** How many distinct members of `o.key` acknowledged activating exactly `o` among `envelopes` (others ignored). */
export function countActivations(
  o: Pick<ActiveOutcome, 'epoch' | 'key' | 'transcriptHash'>,
  envelopes: readonly Uint8Array[],
): number {
  if (!Array.isArray(envelopes)) return 0;
  const digest = keyDigest(o.key);
  const by = new Set<string>();
  for (const bytes of envelopes) {
    try {
      const env = openEnvelope(bytes, PayloadKind.LIFECYCLE_ACTIVATED);
      const member = o.key.roster.find((r) => equalBytes(r.signKey, env.sender));
      if (!member) continue;
      const p = decodeMessage('LifecycleConfirm', env.payload);
      if (
        p.epoch === o.epoch &&
        equalBytes(p.transcriptHash, o.transcriptHash) &&
        equalBytes(p.keyDigest, digest) &&
        equalBytes(p.identifier, fromHex(member.identifier))
      )
        by.add(member.id);
    } catch {
      // not an acknowledgement of this outcome
    }
  }
  return by.size;
}

// ---- records a store keeps (the same bytes on signer nodes and devices) ------------------------

/** Record-key prefix of a key's pending outcomes (`<prefix><epoch, 16 digits>/<session hash>`). */
export const pendingPrefix = (keyId: string): string => `lcpending/${keyId}/`;
/** Record-key prefix of a key's pending outcomes at one epoch. */
export const pendingEpochPrefix = (keyId: string, epoch: number): string =>
  `${pendingPrefix(keyId)}${String(epoch).padStart(16, '0')}/`;
/** Record key of one pending outcome. */
export const pendingRecordKey = (keyId: string, p: PendingOutcome): string =>
  `${pendingEpochPrefix(keyId, p.public.epoch)}${toHex(p.public.sessionHash)}`;

const publicRecord = (keyId: string, epoch: number, key: GroupKey) =>
  encodeKeyRecord({ keyId, epoch, key, createdAt: 0 });

/** A pending outcome as stored (`PendingLifecycle`; the store seals it). */
export function encodePendingOutcome(keyId: string, p: PendingOutcome): Uint8Array {
  return encodeMessage('PendingLifecycle', {
    kind: p.kind,
    sessionHash: p.public.sessionHash,
    transcriptHash: p.public.transcriptHash,
    keyRecord: publicRecord(keyId, p.public.epoch, p.public.key),
    required: [...p.required],
    revoke: [...p.revoke],
    shareRecord: p.share ? encodeKeyShareRecord(p.share) : new Uint8Array(0),
  });
}

export function decodePendingOutcome(keyId: string, epoch: number, bytes: Uint8Array): PendingOutcome {
  const w = decodeMessage('PendingLifecycle', bytes);
  if (w.kind !== 'refresh' && w.kind !== 'reshare')
    throw new ProtocolError(ErrorCode.DECODE, 'pending lifecycle record: unknown kind');
  const share = w.shareRecord.length ? decodeKeyShareRecord(w.shareRecord) : undefined;
  w.shareRecord.fill(0);
  return {
    kind: w.kind,
    public: {
      keyId,
      epoch,
      key: decodeKeyRecord(w.keyRecord).key,
      sessionHash: w.sessionHash,
      transcriptHash: w.transcriptHash,
    },
    required: w.required,
    revoke: w.revoke,
    ...(share ? { share } : {}),
  };
}

/** The committed epoch as a store keeps it (`LifecycleOutcome`), with when and whether it was retired. */
export interface StoredOutcome extends ActiveOutcome {
  readonly activatedAt: number;
  readonly retired: boolean;
}

export function encodeOutcome(keyId: string, o: StoredOutcome): Uint8Array {
  return encodeMessage('LifecycleOutcome', {
    epoch: o.epoch,
    activatedAt: o.activatedAt,
    left: o.left,
    retired: o.retired,
    keyRecord: publicRecord(keyId, o.epoch, o.key),
    transcriptHash: o.transcriptHash,
  });
}

export function decodeOutcome(bytes: Uint8Array): StoredOutcome {
  const w = decodeMessage('LifecycleOutcome', bytes);
  return {
    epoch: w.epoch,
    activatedAt: w.activatedAt,
    left: w.left,
    retired: w.retired,
    key: decodeKeyRecord(w.keyRecord).key,
    transcriptHash: w.transcriptHash,
  };
}

/** The stored outcome of activating `p` now. */
export function outcomeOf(p: PendingOutcome, activatedAt: number): StoredOutcome {
  return {
    epoch: p.public.epoch,
    key: p.public.key,
    transcriptHash: p.public.transcriptHash,
    left: !p.share,
    retired: false,
    activatedAt,
  };
}

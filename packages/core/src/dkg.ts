/**
 * Distributed key generation: noble's frost-rs-compatible Pedersen DKG (with proofs of
 * knowledge) wrapped in what a coordinator-relayed deployment needs:
 *
 * - every round message is a signed envelope bound to the session (a replay from another
 *   session or round is refused);
 * - round-2 secret shares are HPKE-sealed to their recipient, so the coordinator relays only
 *   ciphertext;
 * - round 2 echoes the whole round-1 transcript: participants that saw different broadcasts
 *   abort, and the signed copies prove who equivocated (broadcast consistency);
 * - a confirmation round: everyone signs the transcript hash and the key it derived; the key is
 *   usable only when all confirmations agree, so a split outcome cannot go unnoticed.
 *
 * Each round is its own state object; a state can be advanced once (a finished round's secret
 * cannot be used again). Errors name the culprit when the culprit's own signature proves it.
 */
import type { DKG_Round1, DKG_Round2, DKG_Secret, Key } from '@noble/curves/abstract/frost.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { compareBytes, equalBytes, fromHex, toHex, wipe, type Rng } from './bytes.js';
import { openEnvelope, signEnvelope, type OpenedEnvelope } from './envelope.js';
import { ErrorCode, InvalidArgumentError, InvalidStateError, ProtocolError } from './errors.js';
import { hpkeSeal } from './hpke.js';
import { sameIdentity, type ParticipantIdentity } from './identity.js';
import { KeyShare, keyDigest, type GroupKey, type RosterEntry } from './key.js';
import { decodeMessage, encodeMessage } from './wire/codec.js';
import { expectLengthBetween, makeHeader } from './wire/packages.js';
import { PayloadKind, type WireDkgConfirm, type WireDkgRound2 } from './wire/types.js';

export {
  MAX_PARTICIPANTS,
  dkgSessionHash,
  dkgSessionHashOfParams,
  encodeDkgParams,
  type DkgConfig,
  type DkgOutput,
} from './dkg-rounds.js';
import {
  DkgState,
  blame,
  checkRoundPayload,
  decodeRound1,
  dkgSessionHash,
  findBadRound1,
  inRosterOrder,
  openRound,
  shareInfo,
  transcriptHash,
  validateConfig,
  type Ctx,
  type DkgConfig,
  type DkgOutput,
} from './dkg-rounds.js';

/** Starts a DKG as `identity`, one of `cfg.participants`. Returns the round-1 envelope to broadcast. */
export function startDkg(
  cfg: DkgConfig,
  identity: ParticipantIdentity,
  rng: Rng = randomBytes,
): { state: DkgAwaitingRound1; round1: Uint8Array } {
  const roster = validateConfig(cfg);
  const me = roster.find((r) => r.id === identity.id);
  if (!me || !sameIdentity(me, identity.public))
    throw new InvalidArgumentError(
      `${identity.id} is not a participant of this DKG (or its keys differ from the roster)`,
    );
  const ctx: Ctx = { cfg, suite: cfg.suite, roster, me, identity, sessionHash: dkgSessionHash(cfg), rng };
  const r1 = cfg.suite.frost.DKG.round1(me.identifier, { min: cfg.threshold, max: roster.length }, undefined, rng);
  const payload = encodeMessage('DkgRound1', {
    header: makeHeader(cfg.suite),
    sessionHash: ctx.sessionHash,
    identifier: fromHex(me.identifier),
    commitment: r1.public.commitment,
    proofOfKnowledge: r1.public.proofOfKnowledge,
  });
  const round1 = signEnvelope(identity, PayloadKind.DKG_ROUND1, payload);
  return { state: new DkgAwaitingRound1(ctx, r1.secret, round1), round1 };
}

/** After round 1 was sent: waits for every participant's round-1 envelope. */
export class DkgAwaitingRound1 extends DkgState {
  readonly #secret: DKG_Secret;
  readonly #own: Uint8Array;
  /** @internal */
  constructor(ctx: Ctx, secret: DKG_Secret, own: Uint8Array) {
    super(ctx);
    this.#secret = secret;
    this.#own = own;
  }

  /**
   * Takes all n round-1 envelopes (own included or not; any order), validates them and returns
   * the round-2 envelope to broadcast. Throws (and aborts the session) on any problem.
   */
  receiveRound1(envelopes: readonly Uint8Array[]): { state: DkgAwaitingRound2; round2: Uint8Array } {
    this.take('round 1');
    const { ctx } = this;
    try {
      const opened = openRound(ctx, [this.#own, ...envelopes], PayloadKind.DKG_ROUND1, 'DKG round 1');
      const packages = new Map<string, DKG_Round1>();
      for (const r of ctx.roster) packages.set(r.id, decodeRound1(ctx, r, opened.get(r.id) as OpenedEnvelope));
      const others = ctx.roster.filter((r) => r.id !== ctx.me.id).map((r) => packages.get(r.id) as DKG_Round1);
      let shares: Record<string, DKG_Round2>;
      try {
        shares = ctx.suite.frost.DKG.round2(this.#secret, others);
      } catch (e) {
        const culprits = findBadRound1(ctx, others);
        throw new ProtocolError(
          ErrorCode.BAD_PROOF_OF_KNOWLEDGE,
          culprits.length ? `invalid round-1 package from ${culprits.join(', ')}` : 'round-1 packages rejected',
          culprits,
          e,
        );
      }
      const sealed = ctx.roster
        .filter((r) => r.id !== ctx.me.id)
        .map((to) => {
          const out = shares[to.identifier];
          if (!out) throw new InvalidStateError(`no round-2 share was produced for ${to.id}`);
          const plain = out.signingShare;
          const box = hpkeSeal(to.encKey, shareInfo(ctx, ctx.me, to), new Uint8Array(0), plain, ctx.rng);
          wipe(plain);
          return { recipient: fromHex(to.identifier), enc: box.enc, ciphertext: box.ciphertext };
        });
      const transcript1 = inRosterOrder(ctx, opened);
      const payload = encodeMessage('DkgRound2', {
        header: makeHeader(ctx.suite),
        sessionHash: ctx.sessionHash,
        identifier: fromHex(ctx.me.identifier),
        round1: transcript1,
        shares: sealed,
      });
      const round2 = signEnvelope(ctx.identity, PayloadKind.DKG_ROUND2, payload);
      return { state: new DkgAwaitingRound2(ctx, this.#secret, transcript1, packages, round2), round2 };
    } catch (e) {
      ctx.suite.frost.DKG.clean(this.#secret);
      throw e;
    }
  }
}

/** After round 2 was sent: waits for every participant's round-2 envelope. */
export class DkgAwaitingRound2 extends DkgState {
  readonly #secret: DKG_Secret;
  readonly #transcript1: readonly Uint8Array[];
  readonly #round1: ReadonlyMap<string, DKG_Round1>;
  readonly #own: Uint8Array;
  /** @internal */
  constructor(
    ctx: Ctx,
    secret: DKG_Secret,
    transcript1: readonly Uint8Array[],
    round1: ReadonlyMap<string, DKG_Round1>,
    own: Uint8Array,
  ) {
    super(ctx);
    this.#secret = secret;
    this.#transcript1 = transcript1;
    this.#round1 = round1;
    this.#own = own;
  }

  /**
   * Takes all n round-2 envelopes, checks the echoed round-1 transcripts, opens this
   * participant's shares, derives the key and returns the confirmation envelope to broadcast.
   */
  receiveRound2(envelopes: readonly Uint8Array[]): { state: DkgAwaitingConfirmations; confirm: Uint8Array } {
    this.take('round 2');
    const { ctx } = this;
    try {
      const opened = openRound(ctx, [this.#own, ...envelopes], PayloadKind.DKG_ROUND2, 'DKG round 2');
      const received: DKG_Round2[] = [];
      for (const sender of ctx.roster) {
        const env = opened.get(sender.id) as OpenedEnvelope;
        const p = blame(sender.id, () => decodeMessage('DkgRound2', env.payload));
        checkRoundPayload(ctx, sender, p, 'DKG round 2');
        this.#checkEcho(sender, p);
        if (sender.id === ctx.me.id) continue;
        received.push({ identifier: sender.identifier, signingShare: this.#openShare(sender, p) } as DKG_Round2);
      }
      const others = ctx.roster.filter((r) => r.id !== ctx.me.id).map((r) => this.#round1.get(r.id) as DKG_Round1);
      let key: Key;
      try {
        key = ctx.suite.frost.DKG.round3(this.#secret, others, received);
      } catch (e) {
        const culprits = this.#findBadShares(received);
        throw new ProtocolError(
          ErrorCode.BAD_SHARE,
          culprits.length
            ? `round-2 share from ${culprits.join(', ')} does not match its commitment`
            : 'DKG round 3 failed',
          culprits,
          e,
        );
      } finally {
        for (const r of received) wipe(r.signingShare);
      }
      const group: GroupKey = Object.freeze({
        suite: ctx.suite,
        threshold: ctx.cfg.threshold,
        roster: ctx.roster,
        public: key.public,
      });
      const share = new KeyShare(ctx.suite, key.secret.identifier, key.secret.signingShare);
      wipe(key.secret.signingShare);
      const thash = transcriptHash(ctx, this.#transcript1, inRosterOrder(ctx, opened));
      const digest = keyDigest(group);
      const payload = encodeMessage('DkgConfirm', {
        header: makeHeader(ctx.suite),
        sessionHash: ctx.sessionHash,
        identifier: fromHex(ctx.me.identifier),
        transcriptHash: thash,
        keyDigest: digest,
      });
      const confirm = signEnvelope(ctx.identity, PayloadKind.DKG_CONFIRM, payload);
      return { state: new DkgAwaitingConfirmations(ctx, group, share, thash, digest, confirm), confirm };
    } catch (e) {
      ctx.suite.frost.DKG.clean(this.#secret);
      throw e;
    }
  }

  /** The sender's echo must equal our round-1 transcript byte for byte; a mismatch is proven. */
  #checkEcho(sender: RosterEntry, p: WireDkgRound2): void {
    const { ctx } = this;
    if (p.round1.length !== this.#transcript1.length)
      throw new ProtocolError(
        ErrorCode.EQUIVOCATION,
        `${sender.id} echoed ${p.round1.length} round-1 messages, expected ${this.#transcript1.length}`,
        [sender.id],
      );
    for (let i = 0; i < ctx.roster.length; i++) {
      const mine = this.#transcript1[i] as Uint8Array;
      const theirs = p.round1[i] as Uint8Array;
      if (equalBytes(mine, theirs)) continue;
      const origin = ctx.roster[i] as RosterEntry;
      // Is the echoed copy a genuine round-1 message of `origin` for this session? Then origin
      // signed two different round-1 messages: it equivocated. Otherwise the echoer lied.
      let genuine = false;
      try {
        const env = openEnvelope(theirs, PayloadKind.DKG_ROUND1);
        const payload = decodeMessage('DkgRound1', env.payload);
        genuine = equalBytes(env.sender, origin.signKey) && equalBytes(payload.sessionHash, ctx.sessionHash);
      } catch {
        genuine = false;
      }
      if (genuine)
        throw new ProtocolError(
          ErrorCode.EQUIVOCATION,
          `${origin.id} sent different round-1 messages to different participants (seen via ${sender.id})`,
          [origin.id],
        );
      throw new ProtocolError(
        ErrorCode.EQUIVOCATION,
        `${sender.id} echoed a round-1 message of ${origin.id} that ${origin.id} never signed`,
        [sender.id],
      );
    }
  }

  #openShare(sender: RosterEntry, p: WireDkgRound2): Uint8Array {
    const { ctx } = this;
    const mine = p.shares.filter((s) => toHex(s.recipient) === ctx.me.identifier);
    if (p.shares.length !== ctx.roster.length - 1 || mine.length !== 1)
      throw new ProtocolError(ErrorCode.BAD_SHARE, `${sender.id} did not send exactly one share per participant`, [
        sender.id,
      ]);
    const s = mine[0] as (typeof mine)[number];
    return blame(sender.id, () => {
      const plain = ctx.identity.open(s.enc, shareInfo(ctx, sender, ctx.me), new Uint8Array(0), s.ciphertext);
      return expectLengthBetween(plain, ctx.suite.scalarBytes, ctx.suite.scalarBytes, 'DKG share');
    });
  }

  /** noble's vss_verify of each received share against its sender's commitment. */
  #findBadShares(received: readonly DKG_Round2[]): string[] {
    const { ctx } = this;
    const culprits: string[] = [];
    for (const r of received) {
      const sender = ctx.roster.find((x) => x.identifier === r.identifier) as RosterEntry;
      const commitment = (this.#round1.get(sender.id) as DKG_Round1).commitment;
      try {
        ctx.suite.frost.validateSecret(
          { identifier: ctx.me.identifier, signingShare: r.signingShare },
          { signers: { min: ctx.cfg.threshold, max: ctx.roster.length }, commitments: commitment, verifyingShares: {} },
        );
      } catch {
        culprits.push(sender.id);
      }
    }
    return culprits;
  }
}

/** After the confirmation was sent: the key is usable once every participant confirmed it. */
export class DkgAwaitingConfirmations extends DkgState {
  readonly #key: GroupKey;
  readonly #share: KeyShare;
  readonly #transcript: Uint8Array;
  readonly #digest: Uint8Array;
  readonly #own: Uint8Array;
  /** @internal */
  constructor(ctx: Ctx, key: GroupKey, share: KeyShare, transcript: Uint8Array, digest: Uint8Array, own: Uint8Array) {
    super(ctx);
    this.#key = key;
    this.#share = share;
    this.#transcript = transcript;
    this.#digest = digest;
    this.#own = own;
  }

  /** The key this participant derived, not yet confirmed by the others. */
  get pendingKey(): GroupKey {
    return this.#key;
  }

  /**
   * Takes all n confirmation envelopes. Returns the key and this participant's share only if
   * every participant confirmed the same transcript and key; otherwise CONFIRMATION_MISMATCH
   * names those who disagree (and the share is erased).
   */
  receiveConfirmations(envelopes: readonly Uint8Array[]): DkgOutput {
    this.take('confirmation');
    const { ctx } = this;
    try {
      const opened = openRound(ctx, [this.#own, ...envelopes], PayloadKind.DKG_CONFIRM, 'DKG confirmation');
      const disagree: string[] = [];
      for (const sender of ctx.roster) {
        const env = opened.get(sender.id) as OpenedEnvelope;
        const p: WireDkgConfirm = blame(sender.id, () => decodeMessage('DkgConfirm', env.payload));
        checkRoundPayload(ctx, sender, p, 'DKG confirmation');
        if (!equalBytes(p.transcriptHash, this.#transcript) || !equalBytes(p.keyDigest, this.#digest))
          disagree.push(sender.id);
      }
      if (disagree.length > 0)
        throw new ProtocolError(
          ErrorCode.CONFIRMATION_MISMATCH,
          `DKG outcome differs: ${disagree.join(', ')} derived another transcript or key`,
          disagree,
        );
      const confirmations = inRosterOrder(ctx, opened).sort(compareBytes);
      return Object.freeze({ key: this.#key, share: this.#share, transcriptHash: this.#transcript, confirmations });
    } catch (e) {
      this.#share.wipe();
      throw e;
    }
  }
}

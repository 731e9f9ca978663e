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
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { compareBytes, equalBytes, fromHex, lengthPrefixed, toHex, utf8ToBytes, wipe, type Rng } from './bytes.js';
import { openEnvelope, signEnvelope, type OpenedEnvelope } from './envelope.js';
import { ErrorCode, InvalidArgumentError, InvalidStateError, ProtocolError, isTesseraError } from './errors.js';
import { hpkeSeal } from './hpke.js';
import { participantToWire, sameIdentity, type ParticipantIdentity, type ParticipantPublic } from './identity.js';
import { KeyShare, buildRoster, keyDigest, type GroupKey, type RosterEntry } from './key.js';
import type { Suite } from './suites.js';
import { decodeMessage, encodeMessage } from './wire/codec.js';
import { checkHeader, expectLength, expectLengthBetween, makeHeader } from './wire/packages.js';
import { PayloadKind, type WireDkgConfirm, type WireDkgRound1, type WireDkgRound2 } from './wire/types.js';

/** What a DKG session is. Every participant must hold the same config (its hash binds all rounds). */
export interface DkgConfig {
  readonly suite: Suite;
  /** 16..64 bytes, unique per session (the coordinator draws it). */
  readonly sessionId: Uint8Array;
  /** Signers needed to sign (t). */
  readonly threshold: number;
  /** All n participants. Order does not matter; the roster is sorted by identifier. */
  readonly participants: readonly ParticipantPublic[];
}

/** The output of a completed DKG for one participant. */
export interface DkgOutput {
  readonly key: GroupKey;
  readonly share: KeyShare;
  /** Hash of the whole round-1 and round-2 transcript every participant confirmed. */
  readonly transcriptHash: Uint8Array;
  /** All confirmation envelopes, as evidence that every participant derived this key. */
  readonly confirmations: readonly Uint8Array[];
}

/** Largest supported participant count. */
export const MAX_PARTICIPANTS = 255;

const SHARE_INFO = utf8ToBytes('tessera/v1/dkg-share');
const TRANSCRIPT_DST = utf8ToBytes('tessera/v1/dkg-transcript');

/** The session hash: binds every round message to this exact session, suite and roster. */
export function dkgSessionHash(cfg: DkgConfig): Uint8Array {
  return dkgSessionHashOfParams(encodeDkgParams(cfg));
}

/** The canonical `DkgParams` package of a config (participants in roster order). */
export function encodeDkgParams(cfg: DkgConfig): Uint8Array {
  const roster = buildRoster(cfg.suite, cfg.participants);
  return encodeMessage('DkgParams', {
    header: makeHeader(cfg.suite),
    sessionId: cfg.sessionId,
    threshold: cfg.threshold,
    participants: roster.map(participantToWire),
  });
}

/** The session hash of an encoded `DkgParams` package (what a coordinator that only relays computes). */
export function dkgSessionHashOfParams(params: Uint8Array): Uint8Array {
  return sha256(lengthPrefixed(utf8ToBytes('tessera/v1/dkg-session'), params));
}

function validateConfig(cfg: DkgConfig): RosterEntry[] {
  const n = cfg.participants.length;
  if (!(cfg.sessionId instanceof Uint8Array) || cfg.sessionId.length < 16 || cfg.sessionId.length > 64)
    throw new InvalidArgumentError('DKG session id must be 16..64 bytes');
  if (n < 2 || n > MAX_PARTICIPANTS)
    throw new InvalidArgumentError(`DKG needs 2..${MAX_PARTICIPANTS} participants, got ${n}`);
  if (!Number.isInteger(cfg.threshold) || cfg.threshold < 2 || cfg.threshold > n)
    throw new InvalidArgumentError(`threshold must be between 2 and ${n}, got ${cfg.threshold}`);
  return buildRoster(cfg.suite, cfg.participants);
}

/** Re-throws a failure inside `fn` as attributable to `culprit` (the culprit signed the input). */
function blame<T>(culprit: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isTesseraError(e) && e.culprits.length > 0) throw e;
    const code = isTesseraError(e) ? e.code : ErrorCode.DECODE;
    const msg = e instanceof Error ? e.message : String(e);
    throw new ProtocolError(code, `${culprit}: ${msg}`, [culprit], e);
  }
}

interface Ctx {
  readonly cfg: DkgConfig;
  readonly suite: Suite;
  readonly roster: readonly RosterEntry[];
  readonly me: RosterEntry;
  readonly identity: ParticipantIdentity;
  readonly sessionHash: Uint8Array;
  readonly rng: Rng;
}

/**
 * Opens envelopes of one round: verifies signatures, maps senders to roster entries, drops
 * byte-identical duplicates, and turns two different messages from one sender into an
 * EQUIVOCATION naming that sender.
 */
function openRound(
  ctx: Ctx,
  envelopes: readonly Uint8Array[],
  kind: PayloadKind,
  round: string,
): Map<string, OpenedEnvelope> {
  if (!Array.isArray(envelopes)) throw new InvalidArgumentError(`${round}: expected a list of envelopes`);
  const bySender = new Map<string, OpenedEnvelope>();
  for (const bytes of envelopes) {
    const env = openEnvelope(bytes, kind);
    const sender = ctx.roster.find((r) => equalBytes(r.signKey, env.sender));
    if (!sender)
      throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, `${round}: message from a key that is not a participant`);
    const prev = bySender.get(sender.id);
    if (prev) {
      if (equalBytes(prev.bytes, env.bytes)) continue;
      throw new ProtocolError(ErrorCode.EQUIVOCATION, `${round}: ${sender.id} signed two different messages`, [
        sender.id,
      ]);
    }
    bySender.set(sender.id, env);
  }
  const missing = ctx.roster.filter((r) => !bySender.has(r.id)).map((r) => r.id);
  if (missing.length > 0)
    throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, `${round}: no message yet from ${missing.join(', ')}`);
  return bySender;
}

/** Common checks of a decoded round payload's header, session and identifier. */
function checkRoundPayload(
  ctx: Ctx,
  sender: RosterEntry,
  p: { header: WireDkgRound1['header']; sessionHash: Uint8Array; identifier: Uint8Array },
  round: string,
): void {
  blame(sender.id, () => checkHeader(p.header, round, ctx.suite));
  if (!equalBytes(p.sessionHash, ctx.sessionHash))
    // Validly signed by the sender but for another session: a replay by whoever relayed it.
    throw new ProtocolError(
      ErrorCode.UNEXPECTED_MESSAGE,
      `${round}: message from ${sender.id} belongs to another session (replayed?)`,
    );
  if (toHex(p.identifier) !== sender.identifier)
    throw new ProtocolError(
      ErrorCode.UNEXPECTED_MESSAGE,
      `${round}: ${sender.id} used another participant's identifier`,
      [sender.id],
    );
}

function decodeRound1(ctx: Ctx, sender: RosterEntry, env: OpenedEnvelope): DKG_Round1 {
  const p = blame(sender.id, () => decodeMessage('DkgRound1', env.payload));
  checkRoundPayload(ctx, sender, p, 'DKG round 1');
  return blame(sender.id, () => {
    if (p.commitment.length !== ctx.cfg.threshold)
      throw new ProtocolError(
        ErrorCode.BAD_PROOF_OF_KNOWLEDGE,
        `round-1 commitment has ${p.commitment.length} elements, expected ${ctx.cfg.threshold}`,
      );
    return {
      identifier: sender.identifier,
      commitment: p.commitment.map((c, i) => expectLength(c, ctx.suite.elementBytes, `commitment[${i}]`)),
      proofOfKnowledge: expectLength(p.proofOfKnowledge, ctx.suite.signatureBytes, 'proof of knowledge'),
    } as DKG_Round1;
  });
}

/**
 * Finds which round-1 package fails noble's checks (proof of knowledge, commitment points) by
 * running each one alone through a throwaway 2-party round 2.
 */
function findBadRound1(ctx: Ctx, packages: readonly DKG_Round1[]): string[] {
  const culprits: string[] = [];
  const probeId = ctx.suite.frost.Identifier.derive('tessera-pok-probe');
  for (const pkg of packages) {
    const probe = ctx.suite.frost.DKG.round1(probeId, { min: ctx.cfg.threshold, max: 2 }, undefined, ctx.rng);
    try {
      ctx.suite.frost.DKG.round2(probe.secret, [pkg]);
    } catch {
      const who = ctx.roster.find((r) => r.identifier === pkg.identifier);
      if (who) culprits.push(who.id);
    } finally {
      ctx.suite.frost.DKG.clean(probe.secret);
    }
  }
  return culprits;
}

function shareInfo(ctx: Ctx, from: RosterEntry, to: RosterEntry): Uint8Array {
  return lengthPrefixed(SHARE_INFO, ctx.sessionHash, fromHex(from.identifier), fromHex(to.identifier));
}

function transcriptHash(ctx: Ctx, round1: readonly Uint8Array[], round2: readonly Uint8Array[]): Uint8Array {
  return sha256(lengthPrefixed(TRANSCRIPT_DST, ctx.sessionHash, ...round1, ...round2));
}

/** Envelopes sorted by their sender's identifier (roster order). */
function inRosterOrder(ctx: Ctx, m: Map<string, OpenedEnvelope>): Uint8Array[] {
  return ctx.roster.map((r) => (m.get(r.id) as OpenedEnvelope).bytes);
}

abstract class DkgState {
  #used = false;
  protected constructor(protected readonly ctx: Ctx) {}
  protected take(round: string): void {
    if (this.#used) throw new InvalidStateError(`DKG ${round} was already processed; start a new session`);
    this.#used = true;
  }
  get sessionHash(): Uint8Array {
    return this.ctx.sessionHash;
  }
}

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

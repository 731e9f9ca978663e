/**
 * The DKG's shared pieces (./dkg.ts holds its round states): the session config and its hash,
 * the checks every round applies to an envelope (signed by a roster member, bound to this session
 * and round, blame only on the culprit's own signature), the round-1 decoding and proof checks,
 * and the transcript hashes the confirmation round signs.
 */
import type { DKG_Round1 } from '@noble/curves/abstract/frost.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { equalBytes, fromHex, lengthPrefixed, toHex, utf8ToBytes, type Rng } from './bytes.js';
import { openEnvelope, type OpenedEnvelope } from './envelope.js';
import { ErrorCode, InvalidArgumentError, InvalidStateError, ProtocolError, isTesseraError } from './errors.js';
import { participantToWire, type ParticipantIdentity, type ParticipantPublic } from './identity.js';
import { type KeyShare, buildRoster, type GroupKey, type RosterEntry } from './key.js';
import type { Suite } from './suites.js';
import { decodeMessage, encodeMessage } from './wire/codec.js';
import { checkHeader, expectLength, makeHeader } from './wire/packages.js';
import type { PayloadKind, WireDkgRound1 } from './wire/types.js';

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

export function validateConfig(cfg: DkgConfig): RosterEntry[] {
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
export function blame<T>(culprit: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isTesseraError(e) && e.culprits.length > 0) throw e;
    const code = isTesseraError(e) ? e.code : ErrorCode.DECODE;
    const msg = e instanceof Error ? e.message : String(e);
    throw new ProtocolError(code, `${culprit}: ${msg}`, [culprit], e);
  }
}

export interface Ctx {
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
export function openRound(
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
export function checkRoundPayload(
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

export function decodeRound1(ctx: Ctx, sender: RosterEntry, env: OpenedEnvelope): DKG_Round1 {
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
export function findBadRound1(ctx: Ctx, packages: readonly DKG_Round1[]): string[] {
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

export function shareInfo(ctx: Ctx, from: RosterEntry, to: RosterEntry): Uint8Array {
  return lengthPrefixed(SHARE_INFO, ctx.sessionHash, fromHex(from.identifier), fromHex(to.identifier));
}

export function transcriptHash(ctx: Ctx, round1: readonly Uint8Array[], round2: readonly Uint8Array[]): Uint8Array {
  return sha256(lengthPrefixed(TRANSCRIPT_DST, ctx.sessionHash, ...round1, ...round2));
}

/** Envelopes sorted by their sender's identifier (roster order). */
export function inRosterOrder(ctx: Ctx, m: Map<string, OpenedEnvelope>): Uint8Array[] {
  return ctx.roster.map((r) => (m.get(r.id) as OpenedEnvelope).bytes);
}

export abstract class DkgState {
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

/**
 * Receiving round 1 of a refresh or reshare (./lifecycle.ts): opening and checking every
 * contribution (signature, session, shape, equivocation), summing this participant's evaluations
 * with blame, the transcript, the VSS consistency check, and the new group key.
 */
import type { FrostPublic } from '@noble/curves/abstract/frost.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex, equalBytes, fromHex, lengthPrefixed, toHex, wipe } from './bytes.js';
import { openEnvelope, type OpenedEnvelope } from './envelope.js';
import { ErrorCode, InvalidArgumentError, ProtocolError } from './errors.js';
import { hpkeEncBytes } from './hpke.js';
import type { ParticipantIdentity } from './identity.js';
import { KeyShare, type GroupKey, type RosterEntry } from './key.js';
import type { Suite, SuitePoint } from './suites.js';
import { decodeMessage } from './wire/codec.js';
import { checkHeader } from './wire/packages.js';
import type { WireLifecycleRound1, WireSealedShare } from './wire/types.js';

import {
  decodeElement,
  encodeElement,
  msm,
  powers,
  evalInExponent,
  mulBase,
  identifierScalar,
  lagrangeAtZero,
  blame,
} from './lifecycle-math.js';
import {
  type LifecycleOutput,
  TRANSCRIPT_DST,
  CONSISTENCY_DST,
  AEAD_TAG_BYTES,
  EMPTY,
  type Ctx,
  shareInfo,
} from './lifecycle-session.js';

// ---- round 1: receiving -------------------------------------------------------------------------

/** One contributor's verified, decoded round-1 message. */
export interface Contribution {
  readonly sender: RosterEntry;
  readonly bytes: Uint8Array;
  readonly commitments: readonly SuitePoint[];
  readonly shares: readonly WireSealedShare[];
}

/**
 * Opens every contributor's round-1 envelope and runs every PUBLIC check: signatures, senders
 * (exactly the config's contributors, by their current signKey), equivocation, session,
 * identifier, commitment count and encoding, one well-formed sealed share per recipient in
 * recipient order. Returns contributions in contributor (roster) order.
 */
export function openContributions(ctx: Ctx, envelopes: readonly Uint8Array[]): Contribution[] {
  if (!Array.isArray(envelopes)) throw new InvalidArgumentError(`${ctx.round}: expected a list of envelopes`);
  const bySender = new Map<string, OpenedEnvelope>();
  for (const bytes of envelopes) {
    const env = openEnvelope(bytes, ctx.kind);
    const sender = ctx.current.roster.find((r) => equalBytes(r.signKey, env.sender));
    if (!sender)
      throw new ProtocolError(
        ErrorCode.UNEXPECTED_MESSAGE,
        `${ctx.round}: message from a key that is not a participant`,
      );
    if (!ctx.contributors.includes(sender))
      throw new ProtocolError(
        ErrorCode.UNEXPECTED_MESSAGE,
        `${ctx.round}: message from ${sender.id}, which is not a contributor of this session`,
      );
    const prev = bySender.get(sender.id);
    if (prev) {
      if (equalBytes(prev.bytes, env.bytes)) continue;
      throw new ProtocolError(ErrorCode.EQUIVOCATION, `${ctx.round}: ${sender.id} signed two different messages`, [
        sender.id,
      ]);
    }
    bySender.set(sender.id, env);
  }
  const missing = ctx.contributors.filter((r) => !bySender.has(r.id)).map((r) => r.id);
  if (missing.length > 0)
    throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, `${ctx.round}: no message yet from ${missing.join(', ')}`);
  return ctx.contributors.map((sender) => decodeContribution(ctx, sender, bySender.get(sender.id) as OpenedEnvelope));
}

export function decodeContribution(ctx: Ctx, sender: RosterEntry, env: OpenedEnvelope): Contribution {
  const { suite } = ctx;
  const p: WireLifecycleRound1 = blame(sender.id, ErrorCode.DECODE, () =>
    decodeMessage('LifecycleRound1', env.payload),
  );
  blame(sender.id, ErrorCode.DECODE, () => checkHeader(p.header, ctx.round, suite));
  if (!equalBytes(p.sessionHash, ctx.sessionHash))
    // Validly signed by the sender but for another session: a replay by whoever relayed it.
    throw new ProtocolError(
      ErrorCode.UNEXPECTED_MESSAGE,
      `${ctx.round}: message from ${sender.id} belongs to another session (replayed?)`,
    );
  if (toHex(p.identifier) !== sender.identifier)
    throw new ProtocolError(
      ErrorCode.UNEXPECTED_MESSAGE,
      `${ctx.round}: ${sender.id} used another participant's identifier`,
      [sender.id],
    );
  // The commitment count IS the threshold: refresh t−1 (no constant term: δ(0) = 0, the group key
  // cannot move), reshare t'. A different count is an attempt to change the threshold.
  if (p.commitments.length !== ctx.commitmentCount)
    throw new ProtocolError(
      ErrorCode.BAD_SHARE,
      `${ctx.round}: ${sender.id} sent ${p.commitments.length} commitments, expected ${ctx.commitmentCount} (threshold ${ctx.threshold})`,
      [sender.id],
    );
  const commitments = blame(sender.id, ErrorCode.BAD_SHARE, () =>
    p.commitments.map((c, k) => decodeElement(suite, c, `commitment ${k + ctx.firstPower}`)),
  );
  if (p.shares.length !== ctx.recipients.length)
    throw new ProtocolError(
      ErrorCode.BAD_SHARE,
      `${ctx.round}: ${sender.id} did not send exactly one share per recipient`,
      [sender.id],
    );
  ctx.recipients.forEach((to, i) => {
    const s = p.shares[i] as WireSealedShare;
    if (toHex(s.recipient) !== to.identifier)
      throw new ProtocolError(
        ErrorCode.BAD_SHARE,
        `${ctx.round}: ${sender.id}'s shares are not one per recipient in roster order`,
        [sender.id],
      );
    if (s.enc.length !== hpkeEncBytes(to.encKey) || s.ciphertext.length !== suite.scalarBytes + AEAD_TAG_BYTES)
      throw new ProtocolError(
        ErrorCode.BAD_SHARE,
        `${ctx.round}: ${sender.id}'s sealed share for ${to.id} has the wrong length`,
        [sender.id],
      );
  });
  if (ctx.op === 'reshare') {
    // D_i0 must be λ_i·Y_i (Y_i: i's OLD verifying share): i shares its own share of this key,
    // so Σ_i D_i0 is the group key. Public check: the coordinator runs it too.
    const xs = ctx.contributors.map((c) => identifierScalar(suite, c.identifier));
    const lambda = lagrangeAtZero(suite, xs, identifierScalar(suite, sender.identifier));
    const Y = suite.Point.fromBytes(ctx.current.public.verifyingShares[sender.identifier] as Uint8Array);
    if (!(commitments[0] as SuitePoint).equals(Y.multiplyUnsafe(lambda)))
      throw new ProtocolError(
        ErrorCode.BAD_SHARE,
        `${ctx.round}: ${sender.id}'s constant-term commitment is not λ·Y of its old verifying share`,
        [sender.id],
      );
  }
  return { sender, bytes: env.bytes, commitments, shares: p.shares };
}

/**
 * Opens `recipient`'s sealed evaluation from every contribution and checks each against its
 * sender's commitments: `v·G == Σ_k x^(k+first)·C_k`. DECRYPT names a sender whose box does not
 * open; BAD_SHARE names every sender whose evaluation is wrong (a polynomial with a smuggled
 * non-zero constant term fails here: its commitments cannot account for it). Returns Σ_i v_i.
 */
export function sumOwnEvaluations(
  ctx: Ctx,
  contributions: readonly Contribution[],
  identity: ParticipantIdentity,
  recipient: RosterEntry,
): bigint {
  const { suite } = ctx;
  const Fn = suite.Fn;
  const x = identifierScalar(suite, recipient.identifier);
  const index = ctx.recipients.indexOf(recipient);
  const bad: string[] = [];
  let sum = Fn.ZERO;
  for (const c of contributions) {
    const box = c.shares[index] as WireSealedShare;
    const v = blame(c.sender.id, ErrorCode.DECRYPT, () => {
      const plain = identity.open(box.enc, shareInfo(ctx, c.sender, recipient), EMPTY, box.ciphertext);
      try {
        if (plain.length !== suite.scalarBytes)
          throw new ProtocolError(ErrorCode.BAD_SHARE, 'sealed share has the wrong length');
        try {
          return Fn.fromBytes(plain);
        } catch {
          throw new ProtocolError(ErrorCode.BAD_SHARE, 'sealed share is not a canonical scalar');
        }
      } finally {
        wipe(plain);
      }
    });
    if (!mulBase(suite, v).equals(evalInExponent(suite, c.commitments, x, ctx.firstPower))) bad.push(c.sender.id);
    else sum = Fn.add(sum, v);
  }
  if (bad.length > 0)
    throw new ProtocolError(
      ErrorCode.BAD_SHARE,
      `${ctx.round}: share from ${bad.join(', ')} does not match its commitments`,
      bad,
    );
  return sum;
}

export function transcriptHash(ctx: Ctx, contributions: readonly Contribution[]): Uint8Array {
  return sha256(lengthPrefixed(TRANSCRIPT_DST, ctx.sessionHash, ...contributions.map((c) => c.bytes)));
}

/**
 * Batch check that a public package is a consistent Feldman VSS: for every roster member m,
 * Y_m == Σ_k x_m^k·E_k. Checked at once as Σ_m r_m·Y_m == Σ_k (Σ_m r_m·x_m^k)·E_k with r_m
 * derived by hashing the package (fixed before the r_m are known; a wrong Y_m slips through with
 * probability ~1/q). n + t multiplications instead of n·t.
 */
export function assertConsistentVss(
  suite: Suite,
  E: readonly SuitePoint[],
  Y: ReadonlyMap<RosterEntry, SuitePoint>,
  seed: Uint8Array,
): void {
  const Fn = suite.Fn;
  const ys: SuitePoint[] = [];
  const rs: bigint[] = [];
  const coef: bigint[] = E.map(() => Fn.ZERO);
  for (const [m, Ym] of Y) {
    if (Ym.is0())
      throw new ProtocolError(ErrorCode.INVALID_STATE, `new verifying share of ${m.id} is the identity element`);
    const h = sha512(lengthPrefixed(CONSISTENCY_DST, seed, fromHex(m.identifier), Ym.toBytes()));
    const r = Fn.create(BigInt('0x' + bytesToHex(h)));
    ys.push(Ym);
    rs.push(r);
    powers(suite, identifierScalar(suite, m.identifier), 0, E.length).forEach(
      (p, k) => (coef[k] = Fn.add(coef[k] as bigint, Fn.mul(r, p))),
    );
  }
  if (!msm(suite, ys, rs).equals(msm(suite, E, coef)))
    throw new ProtocolError(
      ErrorCode.INVALID_STATE,
      'derived verifying shares do not match the VSS commitments (is the current key data consistent?)',
    );
}

export function makeGroupKey(
  ctx: Ctx,
  roster: readonly RosterEntry[],
  commitments: Uint8Array[],
  Y: ReadonlyMap<RosterEntry, SuitePoint>,
): GroupKey {
  const verifyingShares: Record<string, Uint8Array> = {};
  for (const m of roster)
    verifyingShares[m.identifier] = encodeElement(Y.get(m) as SuitePoint, `new verifying share of ${m.id}`);
  const pub = {
    signers: { min: ctx.threshold, max: roster.length },
    commitments,
    verifyingShares,
  } as unknown as FrostPublic;
  return Object.freeze({ suite: ctx.suite, threshold: ctx.threshold, roster, public: pub });
}

/** New public data of a refresh, from the (publicly checked) contributions alone. */
export function refreshedKey(
  ctx: Ctx,
  contributions: readonly Contribution[],
  thash: Uint8Array,
): { key: GroupKey; Y: Map<RosterEntry, SuitePoint> } {
  const { suite, current } = ctx;
  const t = ctx.threshold;
  // ΔE_k = Σ_i C_ik for k = 1..t−1 (index k−1).
  const delta: SuitePoint[] = [];
  for (let k = 0; k < t - 1; k++)
    delta.push(contributions.reduce((acc, c) => acc.add(c.commitments[k] as SuitePoint), suite.Point.ZERO));
  const E = current.public.commitments.map((b) => suite.Point.fromBytes(b));
  const newE = E.map((Ek, k) => (k === 0 ? Ek : Ek.add(delta[k - 1] as SuitePoint)));
  // E'_0 is E_0, byte for byte: the stored group key (Taproot: as tweaked, odd Y and all).
  const commitments = [
    (current.public.commitments[0] as Uint8Array).slice(),
    ...newE.slice(1).map((p, k) => encodeElement(p, `refreshed commitment ${k + 1}`)),
  ];
  const Y = new Map<RosterEntry, SuitePoint>();
  for (const m of current.roster) {
    const Ym = suite.Point.fromBytes(current.public.verifyingShares[m.identifier] as Uint8Array);
    Y.set(m, Ym.add(evalInExponent(suite, delta, identifierScalar(suite, m.identifier), 1)));
  }
  assertConsistentVss(suite, newE, Y, thash);
  return { key: makeGroupKey(ctx, current.roster, commitments, Y), Y };
}

/** New public data of a reshare, from the (publicly checked) contributions alone. */
export function resharedKey(
  ctx: Ctx,
  contributions: readonly Contribution[],
): { key: GroupKey; Y: Map<RosterEntry, SuitePoint> } {
  const { suite, current } = ctx;
  const E: SuitePoint[] = [];
  for (let k = 0; k < ctx.threshold; k++)
    E.push(contributions.reduce((acc, c) => acc.add(c.commitments[k] as SuitePoint), suite.Point.ZERO));
  const groupKey = current.public.commitments[0] as Uint8Array;
  // Σ_i D_i0 = Σ_i λ_i·Y_i, the interpolation of the old verifying shares at 0: the old group key
  // if the old data is consistent. Never publish a different key.
  if (!(E[0] as SuitePoint).equals(suite.Point.fromBytes(groupKey)))
    throw new ProtocolError(
      ErrorCode.INVALID_STATE,
      'reshared group key differs from the old one (old verifying shares inconsistent with the group key)',
    );
  const commitments = [groupKey.slice(), ...E.slice(1).map((p, k) => encodeElement(p, `reshared commitment ${k + 1}`))];
  const Y = new Map<RosterEntry, SuitePoint>();
  for (const m of ctx.recipients) Y.set(m, evalInExponent(suite, E, identifierScalar(suite, m.identifier), 0));
  return { key: makeGroupKey(ctx, ctx.recipients, commitments, Y), Y };
}

/**
 * The new share `s'` of `recipient`: checks it against its new verifying share (which holds when
 * every evaluation matched its commitments and the current share matched its verifying share).
 */
export function finish(
  ctx: Ctx,
  pub: { key: GroupKey; Y: Map<RosterEntry, SuitePoint> },
  recipient: RosterEntry,
  s: bigint,
  thash: Uint8Array,
): LifecycleOutput {
  const { suite } = ctx;
  if (!mulBase(suite, s).equals(pub.Y.get(recipient) as SuitePoint))
    throw new ProtocolError(
      ErrorCode.INVALID_STATE,
      `${recipient.id}'s new share does not match its new verifying share`,
    );
  const bytes = suite.Fn.toBytes(s);
  try {
    const share = new KeyShare(suite, recipient.identifier, bytes);
    return Object.freeze({
      keyId: ctx.keyId,
      epoch: ctx.epoch,
      key: pub.key,
      share,
      sessionHash: ctx.sessionHash,
      transcriptHash: thash,
    });
  } finally {
    wipe(bytes);
  }
}

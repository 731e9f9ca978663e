/**
 * Share lifecycle: proactive **refresh** (new shares of the same key, same roster and threshold)
 * and **reshare** (new shares of the same key for a new threshold and/or roster). Both leave the
 * group public key exactly as it is stored (`public.commitments[0]`, byte for byte), so every
 * address, descriptor and verifier that knows the key keeps working, and both move the key to
 * epoch `fromEpoch + 1`.
 *
 * Each is one broadcast round plus a local "apply" step (and an optional confirmation round):
 *
 * - **Refresh** (Herzberg et al. proactive secret sharing over Feldman VSS). Each contributor i
 *   (a subset of the roster holding at least t members: the ones online) draws a random
 *   polynomial δ_i of degree t−1 with δ_i(0) = 0 and broadcasts `C_ik = a_ik·G` for k = 1..t−1
 *   — exactly t−1 elements; the constant-term commitment is *implicitly the identity*, which is
 *   what guarantees that the group key cannot move — plus δ_i(x_j) HPKE-sealed to EVERY roster
 *   member j (offline ones included: they apply the same envelopes when they reconnect). Member
 *   j checks `δ_i(x_j)·G == Σ_k x_j^k·C_ik` and sets `s'_j = s_j + Σ_i δ_i(x_j)`. Anyone derives
 *   the new public data from the commitments alone: `E'_0 = E_0`, `E'_k = E_k + Σ_i C_ik`,
 *   `Y'_m = Y_m + Σ_i Σ_k x_m^k·C_ik`.
 * - **Reshare** (Desmedt–Jajodia / Wong–Wang–Wing redistribution). Each member i of an old
 *   quorum Q (exactly t_old old members) shares `w_i = λ_i·s_i` (λ_i its Lagrange coefficient at
 *   0 for Q, so Σ_i w_i is the group secret) with a random polynomial g_i of degree t'−1,
 *   `g_i(0) = w_i`, broadcasting `D_ik = g_ik·G` (k = 0..t'−1, exactly t' elements) and sealing
 *   g_i(x'_j) to every NEW participant j. A receiver checks `D_i0 == λ_i·Y_i` against i's OLD
 *   verifying share Y_i (so i really shares its own share of this key) and its evaluation
 *   against D_i. `s'_j = Σ_i g_i(x'_j)`, `E'_k = Σ_i D_ik` (and `E'_0` must equal the old group
 *   key), `Y'_m = Σ_k x'_m^k·E'_k`.
 *
 * Wire and trust model, as in the DKG (./dkg.ts): every round-1 message is a signed envelope
 * bound to a session hash that commits to the suite, session id, key id, epoch, the digest of the
 * whole current public key (roster, commitments, verifying shares) and the contributor set (and,
 * for reshare, the new threshold and roster); secret evaluations travel HPKE-sealed with an info
 * string binding the session hash and both identifiers; two different envelopes from one
 * contributor are an EQUIVOCATION naming it; an evaluation that does not match its sender's
 * commitments, or a commitment vector of the wrong length, is a BAD_SHARE naming the sender.
 * A BAD_SHARE found after decryption is the receiver's claim (like the DKG's): the envelope is
 * signed by the culprit, but only the receiver can open its sealed share.
 *
 * Trust anchors: the config's key data (the old key, for reshare) is what the session hash
 * commits to, so an envelope is accepted only if its contributor signed a session over the very
 * same key data; a refresh/reshare result is therefore backed by the contributors' signatures.
 * The contributors' identity keys, however, come from that key data: a NEW reshare participant
 * that has never held the key must learn the group public key it is joining from a source it
 * trusts and compare it with `groupPublicKey(out.key)`; otherwise whoever hands it the config
 * can make it join a key of the sender's choosing.
 *
 * Taproot (secp256k1-tr): noble applies the BIP341 empty-root TapTweak to DKG output and
 * normalises a key with odd-Y group element only at signing time (negating every share and
 * verifying share). The stored package is nevertheless a consistent Feldman sharing of the
 * stored `commitments[0]`: `s_j·G == Y_j` and `Y_j == Σ_k x_j^k·E_k` hold in the stored frame.
 * Refresh and reshare work in exactly that frame and never re-tweak or re-normalise, so the
 * published x-only key and the signing-time normalisation are unchanged (tested).
 *
 * What this module does not do (the caller's job): persist the new share durably, then erase the
 * old one (keeping old-epoch shares around defeats proactive security); make each contributor
 * send the same round-1 envelope bytes on every retry of a session (two different ones are an
 * equivocation); agree on the envelope set (run the confirmation round: participants that saw
 * different envelopes derive different transcripts and disagree there); and, for a participant
 * applying later (an offline device), check its result against the confirmations of those that
 * applied earlier ({@link checkLifecycleConfirmations}).
 *
 * The module is split by step: ./lifecycle-math.ts (arithmetic and checks),
 * ./lifecycle-session.ts (types, contexts, parameters), ./lifecycle-receive.ts (checking and
 * combining round-1 contributions); this file contributes, applies and confirms.
 *
 * Everything here is pure: randomness is injected, there is no I/O. No curve arithmetic is
 * written here: only the suite's `Fn` and `Point` operations and noble's `mulAddUnsafe` MSM (on
 * public data only).
 */
import { randomBytes } from '@noble/hashes/utils.js';
import { compareBytes, equalBytes, fromHex, toHex, wipe, type Rng } from './bytes.js';
import { openEnvelope, signEnvelope, type OpenedEnvelope } from './envelope.js';
import { ErrorCode, InvalidArgumentError, InvalidStateError, ProtocolError } from './errors.js';
import { hpkeSeal } from './hpke.js';
import type { ParticipantIdentity } from './identity.js';
import { KeyShare, keyDigest, type GroupKey, type RosterEntry } from './key.js';
import type { Suite } from './suites.js';
import { decodeMessage, encodeMessage } from './wire/codec.js';
import { checkHeader, makeHeader } from './wire/packages.js';
import { PayloadKind, type WireSealedShare } from './wire/types.js';

import {
  encodeElement,
  evalPoly,
  mulBase,
  identifierScalar,
  lagrangeAtZero,
  randomNonZeroScalar,
  blame,
  pickContributors,
  me,
} from './lifecycle-math.js';
import {
  type RefreshConfig,
  type ReshareConfig,
  type LifecyclePublic,
  type LifecycleOutput,
  EMPTY,
  type Ctx,
  refreshCtx,
  reshareCtx,
  encodeRefreshParams,
  refreshSessionHash,
  encodeReshareParams,
  reshareSessionHash,
  decodeRefreshParams,
  decodeReshareParams,
  shareInfo,
} from './lifecycle-session.js';
import {
  openContributions,
  sumOwnEvaluations,
  transcriptHash,
  refreshedKey,
  resharedKey,
  finish,
} from './lifecycle-receive.js';

export {
  lagrangeAtZero,
  encodeRefreshParams,
  refreshSessionHash,
  encodeReshareParams,
  reshareSessionHash,
  decodeRefreshParams,
  decodeReshareParams,
};
export type { RefreshConfig, ReshareConfig, LifecyclePublic, LifecycleOutput };

function contribute(
  ctx: Ctx,
  identity: ParticipantIdentity,
  sender: RosterEntry,
  coeffs: readonly bigint[],
  rng: Rng,
): Uint8Array {
  const { suite } = ctx;
  const commitments = coeffs.slice(ctx.firstPower).map((c, k) => encodeElement(mulBase(suite, c), `commitment ${k}`));
  if (commitments.length !== ctx.commitmentCount) throw new InvalidStateError('internal: wrong commitment count');
  const shares: WireSealedShare[] = ctx.recipients.map((to) => {
    const plain = suite.Fn.toBytes(evalPoly(suite, coeffs, identifierScalar(suite, to.identifier)));
    try {
      const box = hpkeSeal(to.encKey, shareInfo(ctx, sender, to), EMPTY, plain, rng);
      return { recipient: fromHex(to.identifier), enc: box.enc, ciphertext: box.ciphertext };
    } finally {
      wipe(plain);
    }
  });
  const payload = encodeMessage('LifecycleRound1', {
    header: makeHeader(suite),
    sessionHash: ctx.sessionHash,
    identifier: fromHex(sender.identifier),
    commitments,
    shares,
  });
  return signEnvelope(identity, ctx.kind, payload);
}

/**
 * The caller's share as a scalar, checked to be `who`'s share of `key` (its verifying share):
 * a refresh or reshare started from a wrong or stale share would hand out garbage.
 */
function ownShareScalar(suite: Suite, share: KeyShare, who: RosterEntry, key: GroupKey, what: string): bigint {
  if (!(share instanceof KeyShare) || share.suite.id !== suite.id || share.identifier !== who.identifier)
    throw new InvalidArgumentError(`the share given is not ${who.id}'s share of this key`);
  const sBytes = share.signingShare();
  let s: bigint;
  try {
    s = suite.Fn.fromBytes(sBytes);
  } finally {
    wipe(sBytes);
  }
  const Y = suite.Point.fromBytes(key.public.verifyingShares[who.identifier] as Uint8Array);
  if (!mulBase(suite, s).equals(Y))
    throw new InvalidStateError(`${who.id}'s share does not match its verifying share in ${what}`);
  return s;
}

/**
 * Refresh round 1 for contributor `identity`: a random zero-constant polynomial δ of degree t−1
 * (a_1..a_{t−1} uniformly random and non-zero), its t−1 commitments and δ(x_j) sealed to every
 * roster member j. Returns the envelope to broadcast. The polynomial is not kept: a retry of the
 * session must resend these exact bytes (persist them before sending), never call this again.
 */
export function refreshRound1(cfg: RefreshConfig, identity: ParticipantIdentity, rng: Rng = randomBytes): Uint8Array {
  const ctx = refreshCtx(cfg);
  const sender = me(ctx.contributors, identity, 'a contributor of this refresh');
  const coeffs = [ctx.suite.Fn.ZERO];
  for (let k = 1; k < ctx.threshold; k++) coeffs.push(randomNonZeroScalar(ctx.suite, rng));
  try {
    return contribute(ctx, identity, sender, coeffs, rng);
  } finally {
    coeffs.fill(0n); // best effort: bigints are immutable, the values may survive elsewhere
  }
}

/**
 * Reshare round 1 for old-quorum member `identity` holding `share` of the old key: shares
 * w_i = λ_i·s_i with a random polynomial g of degree t'−1, g(0) = w_i (g_1..g_{t'−1} random,
 * non-zero); commits to all t' coefficients; seals g(x'_j) to every NEW participant j. Checks
 * first that `share` matches this member's old verifying share. Same retry rule as refresh.
 */
export function reshareRound1(
  cfg: ReshareConfig,
  identity: ParticipantIdentity,
  share: KeyShare,
  rng: Rng = randomBytes,
): Uint8Array {
  const ctx = reshareCtx(cfg);
  const { suite } = ctx;
  const sender = me(ctx.contributors, identity, 'a contributor of this reshare');
  const s = ownShareScalar(suite, share, sender, ctx.current, 'the old key');
  const xs = ctx.contributors.map((c) => identifierScalar(suite, c.identifier));
  const lambda = lagrangeAtZero(suite, xs, identifierScalar(suite, sender.identifier));
  const coeffs = [suite.Fn.mul(lambda, s)];
  for (let k = 1; k < ctx.threshold; k++) coeffs.push(randomNonZeroScalar(suite, rng));
  try {
    return contribute(ctx, identity, sender, coeffs, rng);
  } finally {
    coeffs.fill(0n);
  }
}

// ---- refresh: apply ------------------------------------------------------------------------------

/**
 * The new public data of a refresh, derivable by anyone from the round-1 envelopes (the
 * coordinator, or an auditor). Runs every public check; cannot check the sealed evaluations.
 */
export function refreshPublicKey(cfg: RefreshConfig, envelopes: readonly Uint8Array[]): LifecyclePublic {
  const ctx = refreshCtx(cfg);
  const contributions = openContributions(ctx, envelopes);
  const thash = transcriptHash(ctx, contributions);
  const { key } = refreshedKey(ctx, contributions, thash);
  return Object.freeze({
    keyId: ctx.keyId,
    epoch: ctx.epoch,
    key,
    sessionHash: ctx.sessionHash,
    transcriptHash: thash,
  });
}

/**
 * Applies a refresh as roster member `identity` holding `share` (epoch `fromEpoch`): verifies
 * every contributor's envelope and own sealed evaluation, and returns the new key data and
 * `s' = s + Σ_i δ_i(x)`. Works the same for a member that was offline during the session and
 * applies the stored envelopes later. `envelopes`: every contributor's round-1 envelope (the
 * caller's own included, any order; byte-identical duplicates are ignored). Does not touch
 * `share`: erase it once the new share is durable and the refresh confirmed.
 */
export function applyRefresh(
  cfg: RefreshConfig,
  identity: ParticipantIdentity,
  share: KeyShare,
  envelopes: readonly Uint8Array[],
): LifecycleOutput {
  const ctx = refreshCtx(cfg);
  const { suite } = ctx;
  const recipient = me(ctx.current.roster, identity, 'a participant of this key');
  const s = ownShareScalar(suite, share, recipient, ctx.current, 'the current key');
  const contributions = openContributions(ctx, envelopes);
  const delta = sumOwnEvaluations(ctx, contributions, identity, recipient);
  const thash = transcriptHash(ctx, contributions);
  const pub = refreshedKey(ctx, contributions, thash);
  return finish(ctx, pub, recipient, suite.Fn.add(s, delta), thash);
}

// ---- reshare: apply ------------------------------------------------------------------------------

/** The new public data of a reshare, derivable by anyone from the round-1 envelopes. */
export function resharePublicKey(cfg: ReshareConfig, envelopes: readonly Uint8Array[]): LifecyclePublic {
  const ctx = reshareCtx(cfg);
  const contributions = openContributions(ctx, envelopes);
  const thash = transcriptHash(ctx, contributions);
  const { key } = resharedKey(ctx, contributions);
  return Object.freeze({
    keyId: ctx.keyId,
    epoch: ctx.epoch,
    key,
    sessionHash: ctx.sessionHash,
    transcriptHash: thash,
  });
}

/**
 * Applies a reshare as NEW participant `identity`: verifies the old quorum's envelopes (signed by
 * their OLD identity keys), each D_i0 against the old verifying shares, and its own sealed
 * evaluations; returns the new key data and `s' = Σ_i g_i(x')`. Old participants that are not in
 * the new roster have nothing to apply (INVALID_ARGUMENT).
 */
export function applyReshare(
  cfg: ReshareConfig,
  identity: ParticipantIdentity,
  envelopes: readonly Uint8Array[],
): LifecycleOutput {
  const ctx = reshareCtx(cfg);
  const recipient = me(ctx.recipients, identity, 'a participant of the new key');
  const contributions = openContributions(ctx, envelopes);
  const s = sumOwnEvaluations(ctx, contributions, identity, recipient);
  const thash = transcriptHash(ctx, contributions);
  return finish(ctx, resharedKey(ctx, contributions), recipient, s, thash);
}

// ---- confirmation ------------------------------------------------------------------------------

/**
 * Signs the confirmation of a refresh/reshare outcome: the session, the new epoch, the transcript
 * hash and the digest of the new key. Broadcast it; the new key is usable once the participants
 * that must agree have confirmed the same outcome ({@link checkLifecycleConfirmations}).
 */
export function confirmLifecycle(identity: ParticipantIdentity, out: LifecyclePublic): Uint8Array {
  const r = me(out.key.roster, identity, 'a participant of the new key');
  const payload = encodeMessage('LifecycleConfirm', {
    header: makeHeader(out.key.suite),
    sessionHash: out.sessionHash,
    identifier: fromHex(r.identifier),
    epoch: out.epoch,
    transcriptHash: out.transcriptHash,
    keyDigest: keyDigest(out.key),
  });
  return signEnvelope(identity, PayloadKind.LIFECYCLE_CONFIRM, payload);
}

/**
 * Checks confirmations against this participant's outcome `out`. Every id in `required` (members
 * of the new roster, e.g. everyone that applied the refresh online) must have confirmed; any
 * confirmation present (required or not) must agree. Disagreeing members are named by
 * CONFIRMATION_MISMATCH; two different confirmations from one member by EQUIVOCATION. Returns the
 * confirmation envelopes, sorted, as evidence. A member applying later (an offline device) passes
 * the earlier members' confirmations to learn that it derived the same key they did.
 */
export function checkLifecycleConfirmations(
  out: LifecyclePublic,
  envelopes: readonly Uint8Array[],
  required: readonly string[],
): Uint8Array[] {
  const { key } = out;
  const round = 'lifecycle confirmation';
  if (!Array.isArray(envelopes)) throw new InvalidArgumentError(`${round}: expected a list of envelopes`);
  const need = pickContributors(key.roster, required);
  const digest = keyDigest(key);
  const bySender = new Map<string, OpenedEnvelope>();
  for (const bytes of envelopes) {
    const env = openEnvelope(bytes, PayloadKind.LIFECYCLE_CONFIRM);
    const sender = key.roster.find((r) => equalBytes(r.signKey, env.sender));
    if (!sender)
      throw new ProtocolError(
        ErrorCode.UNEXPECTED_MESSAGE,
        `${round}: message from a key that is not a participant of the new key`,
      );
    const prev = bySender.get(sender.id);
    if (prev) {
      if (equalBytes(prev.bytes, env.bytes)) continue;
      throw new ProtocolError(ErrorCode.EQUIVOCATION, `${round}: ${sender.id} signed two different confirmations`, [
        sender.id,
      ]);
    }
    bySender.set(sender.id, env);
  }
  const missing = need.filter((r) => !bySender.has(r.id)).map((r) => r.id);
  if (missing.length > 0)
    throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, `${round}: no confirmation yet from ${missing.join(', ')}`);
  const disagree: string[] = [];
  for (const sender of key.roster) {
    const env = bySender.get(sender.id);
    if (!env) continue;
    const p = blame(sender.id, ErrorCode.DECODE, () => decodeMessage('LifecycleConfirm', env.payload));
    blame(sender.id, ErrorCode.DECODE, () => checkHeader(p.header, round, key.suite));
    if (!equalBytes(p.sessionHash, out.sessionHash))
      throw new ProtocolError(
        ErrorCode.UNEXPECTED_MESSAGE,
        `${round}: confirmation from ${sender.id} belongs to another session (replayed?)`,
      );
    if (toHex(p.identifier) !== sender.identifier)
      throw new ProtocolError(
        ErrorCode.UNEXPECTED_MESSAGE,
        `${round}: ${sender.id} used another participant's identifier`,
        [sender.id],
      );
    if (p.epoch !== out.epoch || !equalBytes(p.transcriptHash, out.transcriptHash) || !equalBytes(p.keyDigest, digest))
      disagree.push(sender.id);
  }
  if (disagree.length > 0)
    throw new ProtocolError(
      ErrorCode.CONFIRMATION_MISMATCH,
      `${round}: ${disagree.join(', ')} derived another transcript or key`,
      disagree,
    );
  return [...bySender.values()].map((e) => e.bytes).sort(compareBytes);
}

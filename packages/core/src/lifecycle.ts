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
 * Everything here is pure: randomness is injected, there is no I/O. No curve arithmetic is
 * written here: only the suite's `Fn` and `Point` operations and noble's `mulAddUnsafe` MSM (on
 * public data only).
 */
import { mulAddUnsafe } from '@noble/curves/abstract/curve.js';
import type { FrostPublic } from '@noble/curves/abstract/frost.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';
import {
  bytesToHex,
  compareBytes,
  equalBytes,
  fromHex,
  lengthPrefixed,
  toHex,
  utf8ToBytes,
  wipe,
  type Rng,
} from './bytes.js';
import { MAX_PARTICIPANTS } from './dkg.js';
import { openEnvelope, signEnvelope, type OpenedEnvelope } from './envelope.js';
import {
  DecodeError,
  ErrorCode,
  InvalidArgumentError,
  InvalidStateError,
  ProtocolError,
  isTesseraError,
} from './errors.js';
import { hpkeEncBytes, hpkeOpen, hpkeSeal } from './hpke.js';
import {
  participantFromWire,
  participantToWire,
  sameIdentity,
  type ParticipantIdentity,
  type ParticipantPublic,
} from './identity.js';
import { KeyShare, buildRoster, keyDigest, type GroupKey, type RosterEntry } from './key.js';
import { KEY_ID_PATTERN } from './records.js';
import type { Suite, SuitePoint } from './suites.js';
import { decodeMessage, encodeMessage } from './wire/codec.js';
import { checkHeader, makeHeader } from './wire/packages.js';
import { PayloadKind, type WireLifecycleRound1, type WireSealedShare } from './wire/types.js';

// ---- public types -----------------------------------------------------------------------------

/**
 * A refresh session: new shares of `key` for the same roster and threshold. Every participant
 * (and the coordinator) must hold the same config; its hash binds every message.
 */
export interface RefreshConfig {
  readonly suite: Suite;
  /** 16..64 bytes, unique per session (the coordinator draws it). */
  readonly sessionId: Uint8Array;
  /** The key's id (16 lowercase hex characters, see `keyIdFor`). */
  readonly keyId: string;
  /** Epoch of the shares being refreshed; the result is epoch `fromEpoch + 1`. */
  readonly fromEpoch: number;
  /** The key's current public data (epoch `fromEpoch`). */
  readonly key: GroupKey;
  /** Participant ids that contribute a zero-sharing (the online ones): roster members, at least t. */
  readonly contributors: readonly string[];
}

/** A reshare session: new shares of `oldKey`'s group key for a new threshold and/or roster. */
export interface ReshareConfig {
  readonly suite: Suite;
  /** 16..64 bytes, unique per session. */
  readonly sessionId: Uint8Array;
  readonly keyId: string;
  /** Epoch of the old key; the result is epoch `fromEpoch + 1`. */
  readonly fromEpoch: number;
  /** The old key's public data. */
  readonly oldKey: GroupKey;
  /** Exactly `oldKey.threshold` distinct old participants (the quorum that redistributes). */
  readonly contributors: readonly string[];
  /** t' (2 ≤ t' ≤ n'). */
  readonly newThreshold: number;
  /** The n' participants of the new key; may overlap the old roster, add and remove members. */
  readonly newParticipants: readonly ParticipantPublic[];
}

/** The public outcome of a refresh or reshare: what anyone (the coordinator too) can derive. */
export interface LifecyclePublic {
  readonly keyId: string;
  /** The new epoch (`fromEpoch + 1`). */
  readonly epoch: number;
  /** The new public key data; `groupPublicKey(key)` is unchanged. */
  readonly key: GroupKey;
  /** The session hash the round-1 envelopes were bound to. */
  readonly sessionHash: Uint8Array;
  /** Hash of the session hash and every contributor's round-1 envelope (contributor order). */
  readonly transcriptHash: Uint8Array;
}

/** A participant's outcome: the public outcome plus its new secret share. */
export interface LifecycleOutput extends LifecyclePublic {
  readonly share: KeyShare;
}

// ---- constants ------------------------------------------------------------------------------

const REFRESH_SESSION_DST = utf8ToBytes('tessera/v1/refresh-session');
const RESHARE_SESSION_DST = utf8ToBytes('tessera/v1/reshare-session');
const REFRESH_SHARE_INFO = utf8ToBytes('tessera/v1/refresh-share');
const RESHARE_SHARE_INFO = utf8ToBytes('tessera/v1/reshare-share');
const TRANSCRIPT_DST = utf8ToBytes('tessera/v1/lifecycle-transcript');
const CONSISTENCY_DST = utf8ToBytes('tessera/v1/lifecycle-vss-check');
/** ChaCha20-Poly1305 tag length (the enc length follows the recipient key, hpkeEncBytes). */
const AEAD_TAG_BYTES = 16;
const EMPTY = new Uint8Array(0);

// ---- small helpers ----------------------------------------------------------------------------

/** noble points also carry these (not in {@link SuitePoint}): RFC 9591 §3.1 element checks. */
interface CheckedPoint extends SuitePoint {
  assertValidity(): void;
  isTorsionFree(): boolean;
}

/**
 * RFC 9591 §3.1 DeserializeElement for a sender's commitment: exact length, on the curve, not the
 * identity, in the prime-order subgroup (Ed25519: no small-order component), canonical encoding.
 * Throws a plain Error; callers attribute it.
 */
function decodeElement(suite: Suite, bytes: Uint8Array, what: string): SuitePoint {
  if (!(bytes instanceof Uint8Array) || bytes.length !== suite.elementBytes)
    throw new Error(`${what}: expected ${suite.elementBytes} bytes`);
  let p: CheckedPoint;
  try {
    p = suite.Point.fromBytes(bytes) as CheckedPoint;
    p.assertValidity();
  } catch {
    throw new Error(`${what}: not a valid group element`);
  }
  if (p.is0()) throw new Error(`${what}: the identity element`);
  if (!p.isTorsionFree()) throw new Error(`${what}: not in the prime-order subgroup`);
  if (!equalBytes(p.toBytes(), bytes)) throw new Error(`${what}: non-canonical encoding`);
  return p;
}

/** Serialises a derived public element; the identity has no encoding in RFC 9591 (§3.1). */
function encodeElement(p: SuitePoint, what: string): Uint8Array {
  if (p.is0()) throw new ProtocolError(ErrorCode.INVALID_STATE, `${what} is the identity element`);
  return p.toBytes();
}

/** Σ_k scalars[k]·points[k] with noble's variable-time MSM. Public data only. */
function msm(suite: Suite, points: readonly SuitePoint[], scalars: readonly bigint[]): SuitePoint {
  return mulAddUnsafe(suite.Point as never, points as never[], scalars as bigint[]) as unknown as SuitePoint;
}

/** [x^first, x^(first+1), …] (count entries), in Fn. */
function powers(suite: Suite, x: bigint, first: number, count: number): bigint[] {
  const Fn = suite.Fn;
  let acc = first === 0 ? Fn.ONE : Fn.pow(x, BigInt(first));
  const out: bigint[] = [];
  for (let k = 0; k < count; k++) {
    out.push(acc);
    acc = Fn.mul(acc, x);
  }
  return out;
}

/** Σ_k x^(first+k)·points[k]: a Feldman VSS evaluation "in the exponent" (public data). */
function evalInExponent(suite: Suite, points: readonly SuitePoint[], x: bigint, first: number): SuitePoint {
  return msm(suite, points, powers(suite, x, first, points.length));
}

/** Horner evaluation of Σ_k coeffs[k]·x^k in Fn. */
function evalPoly(suite: Suite, coeffs: readonly bigint[], x: bigint): bigint {
  const Fn = suite.Fn;
  let acc = Fn.ZERO;
  for (let k = coeffs.length - 1; k >= 0; k--) acc = Fn.add(Fn.mul(acc, x), coeffs[k] as bigint);
  return acc;
}

/** x·G for a secret scalar (constant-time `multiply`; the zero scalar maps to the identity). */
function mulBase(suite: Suite, x: bigint): SuitePoint {
  return suite.Fn.is0(x) ? suite.Point.ZERO : suite.Point.BASE.multiply(x);
}

function identifierScalar(suite: Suite, identifier: string): bigint {
  return suite.Fn.fromBytes(fromHex(identifier));
}

/** RFC 9591 §4.2 derive_interpolating_value(L, x_i) at 0: Π_{j≠i} x_j / (x_j − x_i). */
export function lagrangeAtZero(suite: Suite, xs: readonly bigint[], xi: bigint): bigint {
  const Fn = suite.Fn;
  if (new Set(xs).size !== xs.length || !xs.includes(xi))
    throw new InvalidArgumentError('Lagrange coefficient: invalid identifier set');
  let num = Fn.ONE;
  let den = Fn.ONE;
  for (const x of xs) {
    if (x === xi) continue;
    num = Fn.mul(num, x);
    den = Fn.mul(den, Fn.sub(x, xi));
  }
  return Fn.div(num, den);
}

/** A fresh uniformly random non-zero scalar (noble's FROST scalar generation). */
function randomNonZeroScalar(suite: Suite, rng: Rng): bigint {
  for (;;) {
    const x = suite.Fn.fromBytes(suite.frost.utils.randomScalar(rng));
    if (!suite.Fn.is0(x)) return x;
  }
}

/** Re-throws a failure inside `fn` as attributable to `culprit` (whose signature covers the input). */
function blame<T>(culprit: string, code: ErrorCode, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isTesseraError(e) && e.culprits.length > 0) throw e;
    const c = isTesseraError(e) ? e.code : code;
    const msg = e instanceof Error ? e.message : String(e);
    throw new ProtocolError(c, `${culprit}: ${msg}`, [culprit], e);
  }
}

function checkSessionId(sessionId: Uint8Array): void {
  if (!(sessionId instanceof Uint8Array) || sessionId.length < 16 || sessionId.length > 64)
    throw new InvalidArgumentError('session id must be 16..64 bytes');
}

function checkKeyIdAndEpoch(keyId: string, fromEpoch: number): void {
  if (typeof keyId !== 'string' || !KEY_ID_PATTERN.test(keyId))
    throw new InvalidArgumentError(`malformed key id "${String(keyId).slice(0, 40)}"`);
  if (!Number.isSafeInteger(fromEpoch) || fromEpoch < 0 || fromEpoch >= Number.MAX_SAFE_INTEGER)
    throw new InvalidArgumentError('fromEpoch must be a non-negative safe integer');
}

/**
 * Checks the shape of a key's public data (what the protocols below rely on): threshold in
 * 2..n, exactly t VSS commitments, one verifying share per roster member and no other.
 */
function checkKeyShape(suite: Suite, key: GroupKey, what: string): void {
  if (!key || key.suite?.id !== suite.id) throw new InvalidArgumentError(`${what} is not a ${suite.id} key`);
  const n = key.roster.length;
  if (!Number.isInteger(key.threshold) || key.threshold < 2 || key.threshold > n)
    throw new InvalidArgumentError(`${what}: threshold out of range`);
  if (key.public.commitments.length !== key.threshold)
    throw new InvalidArgumentError(
      `${what}: ${key.public.commitments.length} VSS commitments for threshold ${key.threshold}`,
    );
  const vs = key.public.verifyingShares;
  if (Object.keys(vs).length !== n || !key.roster.every((r) => vs[r.identifier] instanceof Uint8Array))
    throw new InvalidArgumentError(`${what}: verifying shares do not match the roster`);
}

/** Roster entries of `ids` in roster order; unknown or repeated ids are refused. */
function pickContributors(roster: readonly RosterEntry[], ids: readonly string[]): RosterEntry[] {
  if (!Array.isArray(ids)) throw new InvalidArgumentError('contributors must be a list of participant ids');
  const set = new Set(ids);
  if (set.size !== ids.length) throw new InvalidArgumentError('a contributor is listed twice');
  for (const id of ids)
    if (!roster.some((r) => r.id === id))
      throw new InvalidArgumentError(`contributor ${String(id)} is not a participant of the key`);
  return roster.filter((r) => set.has(r.id));
}

/** Roster entry for `identity`, which must match the roster's keys exactly. */
function me(roster: readonly RosterEntry[], identity: ParticipantIdentity, what: string): RosterEntry {
  const r = roster.find((x) => x.id === identity.id);
  if (!r || !sameIdentity(r, identity.public))
    throw new InvalidArgumentError(`${identity.id} is not ${what} (or its keys differ from the roster)`);
  return r;
}

// ---- session contexts -------------------------------------------------------------------------

/** Everything the generic round-1 machinery needs, for either protocol. */
interface Ctx {
  readonly op: 'refresh' | 'reshare';
  readonly suite: Suite;
  readonly keyId: string;
  readonly epoch: number;
  readonly sessionHash: Uint8Array;
  /** The key whose shares exist now (refresh: the key; reshare: the old key). */
  readonly current: GroupKey;
  /** Senders of round 1, in roster order, as entries of the CURRENT roster. */
  readonly contributors: readonly RosterEntry[];
  /** Who receives a sealed evaluation from every contributor (refresh: roster; reshare: new roster). */
  readonly recipients: readonly RosterEntry[];
  /** Threshold of the resulting key. */
  readonly threshold: number;
  /** Number of commitments per contributor: t−1 (refresh) or t' (reshare). */
  readonly commitmentCount: number;
  /** Power of x of the first commitment: 1 (refresh: no constant term) or 0 (reshare). */
  readonly firstPower: number;
  readonly kind: PayloadKind;
  readonly shareInfoDst: Uint8Array;
  readonly round: string;
}

function refreshCtx(cfg: RefreshConfig): Ctx & { params: Uint8Array } {
  const { suite, key } = cfg;
  checkSessionId(cfg.sessionId);
  checkKeyIdAndEpoch(cfg.keyId, cfg.fromEpoch);
  checkKeyShape(suite, key, 'refresh key');
  const contributors = pickContributors(key.roster, cfg.contributors);
  if (contributors.length < key.threshold)
    throw new InvalidArgumentError(
      `refresh needs at least t = ${key.threshold} contributors, got ${contributors.length}`,
    );
  const params = encodeMessage('RefreshParams', {
    header: makeHeader(suite),
    sessionId: cfg.sessionId,
    keyId: cfg.keyId,
    fromEpoch: cfg.fromEpoch,
    keyDigest: keyDigest(key),
    contributors: contributors.map((c) => c.id),
  });
  return {
    op: 'refresh',
    suite,
    keyId: cfg.keyId,
    epoch: cfg.fromEpoch + 1,
    sessionHash: sha256(lengthPrefixed(REFRESH_SESSION_DST, params)),
    current: key,
    contributors,
    recipients: key.roster,
    threshold: key.threshold,
    commitmentCount: key.threshold - 1,
    firstPower: 1,
    kind: PayloadKind.REFRESH_ROUND1,
    shareInfoDst: REFRESH_SHARE_INFO,
    round: 'refresh round 1',
    params,
  };
}

function reshareCtx(cfg: ReshareConfig): Ctx & { params: Uint8Array; newRoster: RosterEntry[] } {
  const { suite, oldKey } = cfg;
  checkSessionId(cfg.sessionId);
  checkKeyIdAndEpoch(cfg.keyId, cfg.fromEpoch);
  checkKeyShape(suite, oldKey, 'reshare old key');
  const contributors = pickContributors(oldKey.roster, cfg.contributors);
  if (contributors.length !== oldKey.threshold)
    throw new InvalidArgumentError(
      `reshare needs exactly t_old = ${oldKey.threshold} old participants as contributors, got ${contributors.length}`,
    );
  if (!Array.isArray(cfg.newParticipants)) throw new InvalidArgumentError('newParticipants must be a list');
  const n = cfg.newParticipants.length;
  if (n < 2 || n > MAX_PARTICIPANTS)
    throw new InvalidArgumentError(`a key needs 2..${MAX_PARTICIPANTS} participants, got ${n}`);
  if (!Number.isInteger(cfg.newThreshold) || cfg.newThreshold < 2 || cfg.newThreshold > n)
    throw new InvalidArgumentError(`new threshold must be between 2 and ${n}, got ${cfg.newThreshold}`);
  const newRoster = buildRoster(suite, cfg.newParticipants);
  const params = encodeMessage('ReshareParams', {
    header: makeHeader(suite),
    sessionId: cfg.sessionId,
    keyId: cfg.keyId,
    fromEpoch: cfg.fromEpoch,
    keyDigest: keyDigest(oldKey),
    contributors: contributors.map((c) => c.id),
    newThreshold: cfg.newThreshold,
    newParticipants: newRoster.map(participantToWire),
  });
  return {
    op: 'reshare',
    suite,
    keyId: cfg.keyId,
    epoch: cfg.fromEpoch + 1,
    sessionHash: sha256(lengthPrefixed(RESHARE_SESSION_DST, params)),
    current: oldKey,
    contributors,
    recipients: newRoster,
    threshold: cfg.newThreshold,
    commitmentCount: cfg.newThreshold,
    firstPower: 0,
    kind: PayloadKind.RESHARE_ROUND1,
    shareInfoDst: RESHARE_SHARE_INFO,
    round: 'reshare round 1',
    params,
    newRoster,
  };
}

/** The canonical `RefreshParams` package of a config (contributors in roster order). */
export function encodeRefreshParams(cfg: RefreshConfig): Uint8Array {
  return refreshCtx(cfg).params;
}

/** The session hash of a refresh: binds every refresh message to this key, epoch and contributor set. */
export function refreshSessionHash(cfg: RefreshConfig): Uint8Array {
  return refreshCtx(cfg).sessionHash;
}

/** The canonical `ReshareParams` package of a config (contributors and new roster in roster order). */
export function encodeReshareParams(cfg: ReshareConfig): Uint8Array {
  return reshareCtx(cfg).params;
}

/** The session hash of a reshare. */
export function reshareSessionHash(cfg: ReshareConfig): Uint8Array {
  return reshareCtx(cfg).sessionHash;
}

/**
 * Rebuilds a refresh config from its `RefreshParams` package and the key's public data as the
 * caller stores it (e.g. a device applying a refresh it missed). Refuses params made for other
 * public data (key digest mismatch) or another suite.
 */
export function decodeRefreshParams(bytes: Uint8Array, key: GroupKey): RefreshConfig {
  const w = decodeMessage('RefreshParams', bytes);
  checkHeader(w.header, 'refresh params', key.suite);
  if (!equalBytes(w.keyDigest, keyDigest(key)))
    throw new DecodeError('refresh params: made for other key data (key digest mismatch)');
  const cfg: RefreshConfig = {
    suite: key.suite,
    sessionId: w.sessionId,
    keyId: w.keyId,
    fromEpoch: w.fromEpoch,
    key,
    contributors: w.contributors,
  };
  if (!equalBytes(encodeRefreshParams(cfg), bytes)) throw new DecodeError('refresh params: non-canonical encoding');
  return cfg;
}

/** Rebuilds a reshare config from its `ReshareParams` package and the old key's public data. */
export function decodeReshareParams(bytes: Uint8Array, oldKey: GroupKey): ReshareConfig {
  const w = decodeMessage('ReshareParams', bytes);
  checkHeader(w.header, 'reshare params', oldKey.suite);
  if (!equalBytes(w.keyDigest, keyDigest(oldKey)))
    throw new DecodeError('reshare params: made for other key data (key digest mismatch)');
  const cfg: ReshareConfig = {
    suite: oldKey.suite,
    sessionId: w.sessionId,
    keyId: w.keyId,
    fromEpoch: w.fromEpoch,
    oldKey,
    contributors: w.contributors,
    newThreshold: w.newThreshold,
    newParticipants: w.newParticipants.map(participantFromWire),
  };
  if (!equalBytes(encodeReshareParams(cfg), bytes)) throw new DecodeError('reshare params: non-canonical encoding');
  return cfg;
}

// ---- round 1: contributing ----------------------------------------------------------------------

function shareInfo(ctx: Ctx, from: RosterEntry, to: RosterEntry): Uint8Array {
  return lengthPrefixed(ctx.shareInfoDst, ctx.sessionHash, fromHex(from.identifier), fromHex(to.identifier));
}

/**
 * Builds and signs a round-1 envelope from polynomial coefficients `coeffs` (c_0..c_d):
 * commitments c_k·G for k ≥ ctx.firstPower, one sealed evaluation per recipient.
 */
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

// ---- round 1: receiving -------------------------------------------------------------------------

/** One contributor's verified, decoded round-1 message. */
interface Contribution {
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
function openContributions(ctx: Ctx, envelopes: readonly Uint8Array[]): Contribution[] {
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

function decodeContribution(ctx: Ctx, sender: RosterEntry, env: OpenedEnvelope): Contribution {
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
function sumOwnEvaluations(
  ctx: Ctx,
  contributions: readonly Contribution[],
  identity: ParticipantIdentity,
  recipient: RosterEntry,
): bigint {
  const { suite } = ctx;
  const Fn = suite.Fn;
  const x = identifierScalar(suite, recipient.identifier);
  const index = ctx.recipients.indexOf(recipient);
  const secret = identity.encryptionSecret();
  const bad: string[] = [];
  let sum = Fn.ZERO;
  try {
    for (const c of contributions) {
      const box = c.shares[index] as WireSealedShare;
      const v = blame(c.sender.id, ErrorCode.DECRYPT, () => {
        const plain = hpkeOpen(secret, box.enc, shareInfo(ctx, c.sender, recipient), EMPTY, box.ciphertext);
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
  } finally {
    wipe(secret);
  }
  if (bad.length > 0)
    throw new ProtocolError(
      ErrorCode.BAD_SHARE,
      `${ctx.round}: share from ${bad.join(', ')} does not match its commitments`,
      bad,
    );
  return sum;
}

function transcriptHash(ctx: Ctx, contributions: readonly Contribution[]): Uint8Array {
  return sha256(lengthPrefixed(TRANSCRIPT_DST, ctx.sessionHash, ...contributions.map((c) => c.bytes)));
}

/**
 * Batch check that a public package is a consistent Feldman VSS: for every roster member m,
 * Y_m == Σ_k x_m^k·E_k. Checked at once as Σ_m r_m·Y_m == Σ_k (Σ_m r_m·x_m^k)·E_k with r_m
 * derived by hashing the package (fixed before the r_m are known; a wrong Y_m slips through with
 * probability ~1/q). n + t multiplications instead of n·t.
 */
function assertConsistentVss(
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

function makeGroupKey(
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
function refreshedKey(
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
function resharedKey(
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
function finish(
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

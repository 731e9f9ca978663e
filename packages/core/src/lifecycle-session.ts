/**
 * The sessions of refresh and reshare (./lifecycle.ts): their public types, domain separation
 * tags, the session contexts (roster, contributors, session hash) and the parameters' encoding.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { equalBytes, fromHex, lengthPrefixed, utf8ToBytes } from './bytes.js';
import { MAX_PARTICIPANTS } from './dkg.js';
import { DecodeError, InvalidArgumentError } from './errors.js';
import { participantFromWire, participantToWire, type ParticipantPublic } from './identity.js';
import { type KeyShare, buildRoster, keyDigest, type GroupKey, type RosterEntry } from './key.js';
import type { Suite } from './suites.js';
import { decodeMessage, encodeMessage } from './wire/codec.js';
import { checkHeader, makeHeader } from './wire/packages.js';
import { PayloadKind } from './wire/types.js';

import { checkSessionId, checkKeyIdAndEpoch, checkKeyShape, pickContributors } from './lifecycle-math.js';

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

export const REFRESH_SESSION_DST = utf8ToBytes('tessera/v1/refresh-session');
export const RESHARE_SESSION_DST = utf8ToBytes('tessera/v1/reshare-session');
export const REFRESH_SHARE_INFO = utf8ToBytes('tessera/v1/refresh-share');
export const RESHARE_SHARE_INFO = utf8ToBytes('tessera/v1/reshare-share');
export const TRANSCRIPT_DST = utf8ToBytes('tessera/v1/lifecycle-transcript');
export const CONSISTENCY_DST = utf8ToBytes('tessera/v1/lifecycle-vss-check');
/** ChaCha20-Poly1305 tag length (the enc length follows the recipient key, hpkeEncBytes). */
export const AEAD_TAG_BYTES = 16;
export const EMPTY = new Uint8Array(0);

// ---- session contexts -------------------------------------------------------------------------

/** Everything the generic round-1 machinery needs, for either protocol. */
export interface Ctx {
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

export function refreshCtx(cfg: RefreshConfig): Ctx & { params: Uint8Array } {
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

export function reshareCtx(cfg: ReshareConfig): Ctx & { params: Uint8Array; newRoster: RosterEntry[] } {
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

export function shareInfo(ctx: Ctx, from: RosterEntry, to: RosterEntry): Uint8Array {
  return lengthPrefixed(ctx.shareInfoDst, ctx.sessionHash, fromHex(from.identifier), fromHex(to.identifier));
}

/**
 * Builds and signs a round-1 envelope from polynomial coefficients `coeffs` (c_0..c_d):
 * commitments c_k·G for k ≥ ctx.firstPower, one sealed evaluation per recipient.
 */

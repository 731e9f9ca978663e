/**
 * Threshold signing (RFC 9591 §5) on noble's FROST: signer-side commit and share, coordinator-
 * side share verification, aggregation with identifiable abort, and quorum selection for retry.
 * Every aggregated signature is checked with the suite's plain single-party verifier before it
 * is returned.
 */
import type { FrostSecret, NonceCommitments, Nonces } from '@noble/curves/abstract/frost.js';
import { prepareKey, prepareSession, type PreparedKey, type PreparedSession } from './fast.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { equalBytes, fromHex, toHex, type Rng } from './bytes.js';
import { ErrorCode, InvalidArgumentError, InvalidStateError, ProtocolError } from './errors.js';
import { groupPublicKey, rosterByIdentifier, type GroupKey, type KeyShare, type RosterEntry } from './key.js';
import type { Suite } from './suites.js';
import { decodeMessage, encodeMessage } from './wire/codec.js';
import { checkHeader, expectLength, expectLengthBetween, makeHeader } from './wire/packages.js';

/** A signer's public round-one commitment (noble's shape: hex identifier, encoded elements). */
export interface NonceCommitment {
  readonly identifier: string;
  readonly hiding: Uint8Array;
  readonly binding: Uint8Array;
}

/**
 * A signer's secret nonce pair. Usable for exactly one signature share; prints `<redacted>`.
 * Durable one-time use across crashes is the nonce ledger's job (packages/store).
 */
export class SigningNonces {
  readonly identifier: string;
  /**
   * The public commitment to these nonces when the holder kept it (from {@link commit}, or stored
   * next to the sealed nonces): signing compares it with the listed commitment instead of
   * recomputing it. It must be the commitment of exactly these nonces.
   */
  readonly commitment: NonceCommitment | undefined;
  readonly #nonces: Nonces;
  #used = false;
  constructor(identifier: string, nonces: Nonces, commitment?: NonceCommitment) {
    this.identifier = identifier;
    this.#nonces = { hiding: nonces.hiding.slice(), binding: nonces.binding.slice() };
    this.commitment = commitment
      ? Object.freeze({
          identifier: commitment.identifier,
          hiding: commitment.hiding.slice(),
          binding: commitment.binding.slice(),
        })
      : undefined;
  }
  /** Serialises the secret nonces for sealed storage (hiding || binding). Handle as secret. */
  exportSecret(): Uint8Array {
    const out = new Uint8Array(this.#nonces.hiding.length + this.#nonces.binding.length);
    out.set(this.#nonces.hiding, 0);
    out.set(this.#nonces.binding, this.#nonces.hiding.length);
    return out;
  }
  /** Rebuilds nonces from {@link exportSecret}; `commitment` is their stored public commitment, if kept. */
  static importSecret(
    suite: Suite,
    identifier: string,
    bytes: Uint8Array,
    commitment?: NonceCommitment,
  ): SigningNonces {
    if (bytes.length !== 2 * suite.scalarBytes) throw new InvalidArgumentError('nonce secret has the wrong length');
    if (commitment && commitment.identifier !== identifier)
      throw new InvalidArgumentError('nonce commitment belongs to another participant');
    return new SigningNonces(
      identifier,
      { hiding: bytes.slice(0, suite.scalarBytes), binding: bytes.slice(suite.scalarBytes) },
      commitment,
    );
  }
  get used(): boolean {
    return this.#used;
  }
  /** @internal hands the nonces to noble exactly once. */
  take(): Nonces {
    if (this.#used) throw new InvalidStateError('signing nonces were already used');
    this.#used = true;
    return this.#nonces;
  }
  toJSON(): string {
    return '<redacted>';
  }
  toString(): string {
    return 'SigningNonces(<redacted>)';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

/** RFC 9591 §5.1 commit(): fresh nonces and their public commitment. */
export function commit(
  share: KeyShare,
  rng: Rng = randomBytes,
): { nonces: SigningNonces; commitment: NonceCommitment } {
  const secret = share.frostSecret();
  const g = share.suite.frost.commit(secret, rng);
  secret.signingShare.fill(0);
  const nonces = new SigningNonces(share.identifier, g.nonces, g.commitments);
  g.nonces.hiding.fill(0);
  g.nonces.binding.fill(0);
  return { nonces, commitment: g.commitments };
}

/** Checks a commitment list against a key: members of the roster, no duplicates, t..n entries, encodings. */
export function validateCommitmentList(key: GroupKey, commitments: readonly NonceCommitment[]): RosterEntry[] {
  if (!Array.isArray(commitments)) throw new InvalidArgumentError('commitment list must be an array');
  if (commitments.length < key.threshold || commitments.length > key.roster.length)
    throw new InvalidArgumentError(
      `commitment list has ${commitments.length} entries, need ${key.threshold}..${key.roster.length}`,
    );
  const seen = new Set<string>();
  const members: RosterEntry[] = [];
  for (const c of commitments) {
    const r = rosterByIdentifier(key, c.identifier);
    if (!r)
      throw new InvalidArgumentError(
        `commitment from identifier ${String(c.identifier).slice(0, 16)}… which is not a participant`,
      );
    if (seen.has(r.id)) throw new InvalidArgumentError(`two commitments from ${r.id}`);
    seen.add(r.id);
    expectLength(c.hiding, key.suite.elementBytes, `hiding commitment of ${r.id}`);
    expectLength(c.binding, key.suite.elementBytes, `binding commitment of ${r.id}`);
    members.push(r);
  }
  return members;
}

/**
 * RFC 9591 §5.2 sign(): this participant's signature share over `message` for the commitment
 * list. Consumes `nonces` (in memory; the caller must have durably marked them consumed).
 * Refuses if the list does not carry this signer's own commitment for these nonces.
 */
export function signShare(
  share: KeyShare,
  key: GroupKey,
  nonces: SigningNonces,
  commitments: readonly NonceCommitment[],
  message: Uint8Array,
): Uint8Array {
  if (!(message instanceof Uint8Array)) throw new InvalidArgumentError('message must be bytes');
  if (nonces.identifier !== share.identifier) throw new InvalidArgumentError('nonces belong to another participant');
  // The signer's own commitment (when kept) is valid by construction: no subgroup check for it.
  const own = nonces.commitment;
  return new SigningSession(key, message, commitments, own ? { own } : {}).signShare(share, nonces);
}

const prepared = new WeakMap<GroupKey, PreparedKey>();

/**
 * The key's points decoded and validated once (the fast path's per-key cache; keyed by the
 * GroupKey object, which holders keep for the key's lifetime).
 */
export function preparedKey(key: GroupKey): PreparedKey {
  let p = prepared.get(key);
  if (!p) {
    p = prepareKey(key.suite, key.public);
    prepared.set(key, p);
  }
  return p;
}

/**
 * The coordinator's view of one signing attempt: a message, a key and the commitment list of
 * the chosen quorum. Verifies each share (RFC 9591 §5.4) and aggregates (§5.3).
 */
export class SigningSession {
  readonly key: GroupKey;
  readonly message: Uint8Array;
  readonly commitments: readonly NonceCommitment[];
  /** Participant ids of the quorum, in identifier order. */
  readonly signers: readonly string[];
  readonly #session: PreparedSession;

  /**
   * `opts.own`: this participant's own commitment, when it signs in this session (valid by
   * construction: list entries with exactly these bytes are decoded without the subgroup check).
   */
  constructor(
    key: GroupKey,
    message: Uint8Array,
    commitments: readonly NonceCommitment[],
    opts: { own?: NonceCommitment } = {},
  ) {
    if (!(message instanceof Uint8Array)) throw new InvalidArgumentError('message must be bytes');
    const members = validateCommitmentList(key, commitments);
    this.key = key;
    this.message = message.slice();
    this.commitments = commitments.map((c) => ({
      identifier: c.identifier,
      hiding: c.hiding.slice(),
      binding: c.binding.slice(),
    }));
    this.signers = key.roster.filter((r) => members.includes(r)).map((r) => r.id);
    try {
      // Every commitment decoded and validated once (not again if it was validated at intake with
      // validateCommitment); binding factors and R computed once.
      this.#session = prepareSession(
        preparedKey(key),
        commitments as NonceCommitments[],
        this.message,
        opts.own ? { own: opts.own as NonceCommitments } : {},
      );
    } catch (e) {
      throw new InvalidArgumentError(`invalid commitment list: ${e instanceof Error ? e.message : 'rejected'}`);
    }
  }

  #entry(participantId: string): RosterEntry {
    const r = this.key.roster.find((x) => x.id === participantId);
    if (!r || !this.signers.includes(participantId))
      throw new InvalidArgumentError(`${participantId} is not in this signing quorum`);
    return r;
  }

  /**
   * This participant's signature share (RFC 9591 §5.2) in this session: the same bytes as
   * {@link signShare} with the same nonces, without decoding and checking the list again (a
   * co-signer that verified a package with this session signs with it). Consumes `nonces` (in
   * memory; the caller must have durably marked them consumed).
   */
  signShare(share: KeyShare, nonces: SigningNonces): Uint8Array {
    if (nonces.identifier !== share.identifier) throw new InvalidArgumentError('nonces belong to another participant');
    if (!this.commitments.some((c) => c.identifier === share.identifier))
      throw new InvalidArgumentError('commitment list does not include this signer');
    const taken = nonces.take();
    const secret = share.frostSecret();
    try {
      return this.#session.signShare(secret as FrostSecret, taken, nonces.commitment as NonceCommitments | undefined);
    } catch (e) {
      throw new ProtocolError(
        ErrorCode.INVALID_ARGUMENT,
        `refusing to sign: ${e instanceof Error ? e.message : 'invalid request'}`,
      );
    } finally {
      secret.signingShare.fill(0);
    }
  }

  /** True iff `share` is the correct share of `participantId` (a negated or shifted share fails). */
  verifyShare(participantId: string, share: Uint8Array): boolean {
    const r = this.#entry(participantId);
    if (!(share instanceof Uint8Array) || share.length !== this.key.suite.scalarBytes) return false;
    try {
      return this.#session.verifyShare(r.identifier, share);
    } catch {
      return false;
    }
  }

  /**
   * Aggregates and verifies the result. Throws BAD_SIGNATURE_SHARE naming every participant whose
   * share is wrong (identifiable abort), and SIGNATURE_INVALID if the result fails the plain
   * single-party verifier.
   */
  aggregate(shares: ReadonlyMap<string, Uint8Array>): Uint8Array {
    const missing = this.signers.filter((s) => !shares.has(s));
    if (missing.length) throw new InvalidArgumentError(`missing signature shares from ${missing.join(', ')}`);
    for (const id of shares.keys()) this.#entry(id);
    // Optimistic aggregation: a share that is not even a canonical scalar is blamed at once; the
    // rest are summed and the result verified once. Only when that fails does noble verify each
    // share (RFC 9591 §5.4) to name the cheaters — t share verifications saved on the common path.
    const Fn = this.key.suite.Fn;
    const malformed = this.signers.filter((s) => {
      const b = shares.get(s) as Uint8Array;
      if (!(b instanceof Uint8Array) || b.length !== this.key.suite.scalarBytes) return true;
      try {
        Fn.fromBytes(b);
        return false;
      } catch {
        return true;
      }
    });
    if (malformed.length)
      throw new ProtocolError(
        ErrorCode.BAD_SIGNATURE_SHARE,
        `invalid signature share from ${malformed.join(', ')}`,
        malformed,
      );
    const byIdentifier: Record<string, Uint8Array> = {};
    for (const s of this.signers) byIdentifier[this.#entry(s).identifier] = shares.get(s) as Uint8Array;
    let sig: Uint8Array;
    try {
      sig = this.#session.combine(byIdentifier);
    } catch (e) {
      throw new ProtocolError(ErrorCode.BAD_SIGNATURE_SHARE, 'aggregation failed', [], e);
    }
    // The one check of the common path is the scheme's plain single-party verifier (the same
    // equation noble's aggregate checks, so that check is not run twice). Only when it fails is
    // every share verified (RFC 9591 §5.4) to name the cheaters.
    if (this.key.suite.verify(sig, this.message, groupPublicKey(this.key))) return sig;
    const cheaters = this.signers.filter((s) => !this.verifyShare(s, shares.get(s) as Uint8Array));
    if (cheaters.length)
      throw new ProtocolError(
        ErrorCode.BAD_SIGNATURE_SHARE,
        `invalid signature share from ${cheaters.join(', ')}`,
        cheaters,
      );
    throw new ProtocolError(ErrorCode.SIGNATURE_INVALID, 'aggregated signature failed the single-party verifier');
  }
}

/**
 * Picks a quorum of `key.threshold` participants from `available` (in preference order),
 * skipping `excluded` (participants blamed in earlier attempts). NO_QUORUM if too few remain.
 */
export function selectQuorum(key: GroupKey, available: readonly string[], excluded: Iterable<string> = []): string[] {
  const ex = new Set(excluded);
  const pick: string[] = [];
  for (const id of available) {
    if (ex.has(id) || pick.includes(id) || !key.roster.some((r) => r.id === id)) continue;
    pick.push(id);
    if (pick.length === key.threshold) return pick;
  }
  throw new ProtocolError(
    ErrorCode.NO_QUORUM,
    `need ${key.threshold} signers, only ${pick.length} available${ex.size ? ` (excluded: ${[...ex].join(', ')})` : ''}`,
    [...ex],
  );
}

// ---- wire forms -----------------------------------------------------------------------------

/** Encodes a commitment as a `SigningCommitment` package. */
export function encodeCommitment(suite: Suite, c: NonceCommitment, nonceId: Uint8Array): Uint8Array {
  return encodeMessage('SigningCommitment', {
    header: makeHeader(suite),
    identifier: fromHex(c.identifier),
    hiding: c.hiding,
    binding: c.binding,
    nonceId,
  });
}

/** Decodes and length-checks a `SigningCommitment` of `suite`. */
export function decodeCommitment(
  suite: Suite,
  bytes: Uint8Array,
): { commitment: NonceCommitment; nonceId: Uint8Array } {
  const w = decodeMessage('SigningCommitment', bytes);
  checkHeader(w.header, 'signing commitment', suite);
  expectLength(w.identifier, suite.scalarBytes, 'commitment identifier');
  return {
    commitment: {
      identifier: toHex(w.identifier),
      hiding: expectLength(w.hiding, suite.elementBytes, 'hiding commitment'),
      binding: expectLength(w.binding, suite.elementBytes, 'binding commitment'),
    },
    nonceId: expectLengthBetween(w.nonceId, 0, 64, 'nonce id'),
  };
}

/** Encodes a signature share package bound to the request it answers. */
export function encodeSignatureShare(
  suite: Suite,
  s: { sessionId: Uint8Array; identifier: string; share: Uint8Array; requestDigest: Uint8Array },
): Uint8Array {
  return encodeMessage('SignatureShare', {
    header: makeHeader(suite),
    sessionId: s.sessionId,
    identifier: fromHex(s.identifier),
    share: s.share,
    requestDigest: s.requestDigest,
  });
}

export function decodeSignatureShare(
  suite: Suite,
  bytes: Uint8Array,
): { sessionId: Uint8Array; identifier: string; share: Uint8Array; requestDigest: Uint8Array } {
  const w = decodeMessage('SignatureShare', bytes);
  checkHeader(w.header, 'signature share', suite);
  return {
    sessionId: expectLengthBetween(w.sessionId, 16, 64, 'session id'),
    identifier: toHex(expectLength(w.identifier, suite.scalarBytes, 'share identifier')),
    share: expectLength(w.share, suite.scalarBytes, 'signature share'),
    requestDigest: expectLength(w.requestDigest, 32, 'request digest'),
  };
}

/** True if two commitment lists are the same set (order-insensitive). */
export function sameCommitmentList(a: readonly NonceCommitment[], b: readonly NonceCommitment[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x) =>
    b.some((y) => y.identifier === x.identifier && equalBytes(x.hiding, y.hiding) && equalBytes(x.binding, y.binding)),
  );
}

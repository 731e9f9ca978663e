/**
 * Threshold keys as the core sees them: the public {@link GroupKey} (suite, threshold, roster,
 * noble's public FROST package) and one participant's secret {@link KeyShare}.
 */
import type { FrostPublic } from '@noble/curves/abstract/frost.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { fromHex, lengthPrefixed, toHex, u32be, utf8ToBytes } from './bytes.js';
import { ErrorCode, InvalidArgumentError, ProtocolError } from './errors.js';
import { assertParticipantId, type ParticipantPublic } from './identity.js';
import type { Suite } from './suites.js';

/** A roster entry: a participant and its FROST identifier (hex scalar, noble's form). */
export interface RosterEntry extends ParticipantPublic {
  readonly identifier: string;
}

/** FROST identifier of a participant id: RFC 9591-style derivation, `H(contextString || "id", id)`. */
export function participantIdentifier(suite: Suite, id: string): string {
  return suite.frost.Identifier.derive(assertParticipantId(id));
}

function identifierOrder(suite: Suite, a: string, b: string): number {
  const x = suite.Fn.fromBytes(fromHex(a));
  const y = suite.Fn.fromBytes(fromHex(b));
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Builds the roster of a key from its participants: assigns identifiers, sorts by identifier,
 * rejects duplicate ids or keys.
 */
export function buildRoster(suite: Suite, participants: readonly ParticipantPublic[]): RosterEntry[] {
  const ids = new Set<string>();
  const keys = new Set<string>();
  const out: RosterEntry[] = [];
  for (const p of participants) {
    assertParticipantId(p.id);
    if (ids.has(p.id)) throw new InvalidArgumentError(`participant ${p.id} is listed twice`);
    const k = toHex(p.signKey);
    if (keys.has(k)) throw new InvalidArgumentError(`participant ${p.id} reuses another participant's identity key`);
    ids.add(p.id);
    keys.add(k);
    out.push(
      Object.freeze({
        id: p.id,
        signKey: p.signKey,
        encKey: p.encKey,
        ...(p.device ? { device: true } : {}),
        identifier: participantIdentifier(suite, p.id),
      }),
    );
  }
  out.sort((a, b) => identifierOrder(suite, a.identifier, b.identifier));
  return out;
}

/** The public half of a threshold key. */
export interface GroupKey {
  readonly suite: Suite;
  readonly threshold: number;
  readonly roster: readonly RosterEntry[];
  /** noble's public package: `commitments[0]` is the group verifying key. */
  readonly public: FrostPublic;
}

/** The group key in the suite's standard encoding (Ed25519 32 B, BIP340 x-only 32 B, SEC1 33 B). */
export function groupPublicKey(key: GroupKey): Uint8Array {
  const gk = key.public.commitments[0];
  if (!gk) throw new InvalidArgumentError('group key has no commitments');
  return key.suite.publicKey(gk);
}

/** Looks a participant up by id; throws a typed error naming the id. */
export function rosterEntry(key: GroupKey, id: string): RosterEntry {
  const e = key.roster.find((r) => r.id === id);
  if (!e) throw new InvalidArgumentError(`${id} is not a participant of this key`);
  return e;
}

export function rosterByIdentifier(key: GroupKey, identifier: string): RosterEntry | undefined {
  return key.roster.find((r) => r.identifier === identifier);
}

/**
 * A digest of everything public about a key (suite, threshold, commitments, verifying shares),
 * used in DKG confirmations and to detect that two participants disagree about a key.
 */
const DEVICE_MARK = utf8ToBytes('tessera/v1/key/device');

export function keyDigest(key: GroupKey): Uint8Array {
  const parts: Uint8Array[] = [utf8ToBytes('tessera/v1/key'), utf8ToBytes(key.suite.id), u32be(key.threshold)];
  parts.push(u32be(key.public.commitments.length), ...key.public.commitments);
  for (const r of key.roster) {
    const vs = key.public.verifyingShares[r.identifier];
    if (!vs) throw new ProtocolError(ErrorCode.INVALID_STATE, `no verifying share for ${r.id}`);
    parts.push(utf8ToBytes(r.id), fromHex(r.identifier), r.signKey, r.encKey, vs);
    // A device entry adds a marker no participant id can spell ('/' is not allowed in ids), so a
    // node's entry digests exactly as before devices were recorded in the roster.
    if (r.device) parts.push(DEVICE_MARK);
  }
  return sha256(lengthPrefixed(...parts));
}

/**
 * One participant's secret share of a key. Prints as `<redacted>`; the share bytes are
 * reachable only through {@link KeyShare.signingShare}.
 */
export class KeyShare {
  readonly suite: Suite;
  readonly identifier: string;
  readonly #share: Uint8Array;
  constructor(suite: Suite, identifier: string, signingShare: Uint8Array) {
    if (!(signingShare instanceof Uint8Array) || signingShare.length !== suite.scalarBytes)
      throw new InvalidArgumentError('signing share has the wrong length');
    this.suite = suite;
    this.identifier = identifier;
    this.#share = signingShare.slice();
  }
  /** A copy of the secret share bytes. */
  signingShare(): Uint8Array {
    return this.#share.slice();
  }
  /** noble's FrostSecret view (a fresh copy) for calls into FROST. */
  frostSecret(): { identifier: string; signingShare: Uint8Array } {
    return { identifier: this.identifier, signingShare: this.#share.slice() };
  }
  /** Best-effort erasure. */
  wipe(): void {
    this.#share.fill(0);
  }
  toJSON(): { suite: string; identifier: string; signingShare: string } {
    return { suite: this.suite.id, identifier: this.identifier, signingShare: '<redacted>' };
  }
  toString(): string {
    return `KeyShare(${this.suite.id}, ${this.identifier.slice(0, 8)}…, <redacted>)`;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

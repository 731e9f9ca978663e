/**
 * Stored forms of keys: a signer's {@link KeyShareRecord} (its share plus the key's public data)
 * and the coordinator's public {@link KeyRecord}. Both are versioned protobuf packages; decoding
 * checks the header, every length, and that the public data is self-consistent.
 */
import type { FrostPublic } from '@noble/curves/abstract/frost.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { fromHex, lengthPrefixed, toHex, utf8ToBytes } from './bytes.js';
import { DecodeError } from './errors.js';
import { participantFromWire, participantToWire } from './identity.js';
import { KeyShare, buildRoster, type GroupKey } from './key.js';
import type { Suite } from './suites.js';
import { decodeMessage, encodeMessage } from './wire/codec.js';
import { checkHeader, expectLength, makeHeader } from './wire/packages.js';
import type { WireKeyPublic, WireParticipantInfo } from './wire/types.js';

/** Key ids: 16 lowercase hex characters derived from the DKG session (`keyIdFor`). */
export { KEY_ID_PATTERN } from './wire/limits.js';

/** The key id of the key born in the DKG session with this hash. */
export function keyIdFor(sessionHash: Uint8Array): string {
  return toHex(sha256(lengthPrefixed(utf8ToBytes('tessera/v1/key-id'), sessionHash))).slice(0, 16);
}

function keyPublicToWire(key: GroupKey): WireKeyPublic {
  return {
    header: makeHeader(key.suite),
    threshold: key.threshold,
    commitments: [...key.public.commitments],
    verifyingShares: key.roster.map((r) => ({
      identifier: fromHex(r.identifier),
      element: key.public.verifyingShares[r.identifier] as Uint8Array,
    })),
  };
}

function groupKeyFromWire(
  suite: Suite,
  threshold: number,
  participants: WireParticipantInfo[],
  pub: WireKeyPublic | null,
): GroupKey {
  if (!pub) throw new DecodeError('key record: missing public package');
  checkHeader(pub.header, 'key public', suite);
  if (pub.threshold !== threshold) throw new DecodeError('key record: threshold mismatch');
  const roster = buildRoster(suite, participants.map(participantFromWire));
  if (threshold < 1 || threshold > roster.length) throw new DecodeError('key record: threshold out of range');
  if (pub.commitments.length !== threshold) throw new DecodeError('key record: wrong number of commitments');
  const verifyingShares: Record<string, Uint8Array> = {};
  for (const v of pub.verifyingShares)
    verifyingShares[toHex(expectLength(v.identifier, suite.scalarBytes, 'verifying share identifier'))] = expectLength(
      v.element,
      suite.elementBytes,
      'verifying share',
    );
  for (const r of roster)
    if (!verifyingShares[r.identifier]) throw new DecodeError(`key record: no verifying share for ${r.id}`);
  if (Object.keys(verifyingShares).length !== roster.length)
    throw new DecodeError('key record: verifying shares do not match the roster');
  const frostPublic = {
    signers: { min: threshold, max: roster.length },
    commitments: pub.commitments.map((c, i) => expectLength(c, suite.elementBytes, `commitment[${i}]`)),
    verifyingShares,
  } as unknown as FrostPublic;
  return Object.freeze({ suite, threshold, roster, public: frostPublic });
}

/** A signer's stored share of one key at one epoch. */
export interface KeyShareRecord {
  readonly keyId: string;
  readonly epoch: number;
  readonly key: GroupKey;
  readonly share: KeyShare;
  readonly transcriptHash: Uint8Array;
  readonly createdAt: number;
}

export function encodeKeyShareRecord(r: KeyShareRecord): Uint8Array {
  return encodeMessage('KeyShareRecord', {
    header: makeHeader(r.key.suite),
    keyId: r.keyId,
    epoch: r.epoch,
    threshold: r.key.threshold,
    participants: r.key.roster.map(participantToWire),
    public: keyPublicToWire(r.key),
    identifier: fromHex(r.share.identifier),
    signingShare: r.share.signingShare(),
    transcriptHash: r.transcriptHash,
    createdAt: r.createdAt,
  });
}

export function decodeKeyShareRecord(bytes: Uint8Array): KeyShareRecord {
  const w = decodeMessage('KeyShareRecord', bytes);
  const suite = checkHeader(w.header, 'key share record', undefined, true);
  const key = groupKeyFromWire(suite, w.threshold, w.participants, w.public);
  const identifier = toHex(expectLength(w.identifier, suite.scalarBytes, 'identifier'));
  if (!key.roster.some((r) => r.identifier === identifier))
    throw new DecodeError('key share record: identifier not in roster');
  const share = new KeyShare(suite, identifier, expectLength(w.signingShare, suite.scalarBytes, 'signing share'));
  w.signingShare.fill(0);
  return Object.freeze({
    keyId: w.keyId,
    epoch: w.epoch,
    key,
    share,
    transcriptHash: w.transcriptHash,
    createdAt: w.createdAt,
  });
}

/** The coordinator's public record of a key. */
export interface KeyRecord {
  readonly keyId: string;
  readonly epoch: number;
  readonly key: GroupKey;
  readonly createdAt: number;
}

export function encodeKeyRecord(r: KeyRecord): Uint8Array {
  return encodeMessage('KeyRecord', {
    header: makeHeader(r.key.suite),
    keyId: r.keyId,
    epoch: r.epoch,
    threshold: r.key.threshold,
    participants: r.key.roster.map(participantToWire),
    public: keyPublicToWire(r.key),
    createdAt: r.createdAt,
  });
}

export function decodeKeyRecord(bytes: Uint8Array): KeyRecord {
  const w = decodeMessage('KeyRecord', bytes);
  const suite = checkHeader(w.header, 'key record', undefined, true);
  return Object.freeze({
    keyId: w.keyId,
    epoch: w.epoch,
    key: groupKeyFromWire(suite, w.threshold, w.participants, w.public),
    createdAt: w.createdAt,
  });
}

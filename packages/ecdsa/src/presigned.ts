/**
 * What leaves a signer around one ECDSA signature, and what it keeps of a presignature between
 * presigning and its one use: the EcdsaPresigned statement (public: key, epoch, session,
 * signers, R), the secret scalars kept in the nonce ledger, the EcdsaSignRequest a coordinator
 * sends and the EcdsaPartial a signer answers with. Decoders check every length.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import {
  DecodeError,
  KEY_ID_PATTERN,
  assertParticipantId,
  checkHeader,
  decodeMessage,
  encodeMessage,
  makeHeader,
  utf8ToBytes,
  type Suite,
} from '@tessera/core';
import { type Point, scalarFromBytes, scalarToBytes, storedPoint } from './params.js';
import type { PartialSignature, Presignature } from './sign.js';
import { decodePresignatureSecret, encodePresignatureSecret } from './wire.js';

/** The public statement of one presignature. */
export interface Presigned {
  readonly keyId: string;
  readonly epoch: number;
  readonly session: Uint8Array;
  /** The signers' ids in roster-index order. */
  readonly signers: readonly string[];
  /** R, 33 bytes. */
  readonly R: Uint8Array;
  /** The point R, when decoded: encoded then uncompressed (65 bytes), so its reader needs no square root. */
  readonly Rpoint?: Point;
  /** A device's reservation: when the stating co-signer drops its part, unused (ms); absent: never. */
  readonly expiresAt?: number;
}

function bytes(b: Uint8Array | undefined, n: number, what: string): Uint8Array {
  if (!(b instanceof Uint8Array) || b.length !== n) throw new DecodeError(`${what}: expected ${n} bytes`);
  return b;
}

function ids(list: readonly string[], what: string): string[] {
  if (!Array.isArray(list) || list.length < 2 || list.length > 255) throw new DecodeError(`${what}: 2..255 signers`);
  try {
    for (const id of list) assertParticipantId(id);
  } catch (e) {
    throw new DecodeError(`${what}: a malformed participant id`, { cause: e });
  }
  if (new Set(list).size !== list.length) throw new DecodeError(`${what}: a signer listed twice`);
  return [...list];
}

export const encodePresigned = (suite: Suite, p: Presigned): Uint8Array =>
  encodeMessage('EcdsaPresigned', {
    header: makeHeader(suite),
    keyId: p.keyId,
    epoch: p.epoch,
    session: p.session,
    signers: [...p.signers],
    r: p.Rpoint ? p.Rpoint.toBytes(false) : p.R,
    expiresAt: p.expiresAt ?? 0,
  });

export function decodePresigned(suite: Suite, b: Uint8Array): Presigned {
  const w = decodeMessage('EcdsaPresigned', b);
  checkHeader(w.header, 'ECDSA presignature', suite);
  if (!KEY_ID_PATTERN.test(w.keyId)) throw new DecodeError('ECDSA presignature: malformed key id');
  const R = storedPoint(bytes(w.r, w.r?.length === 65 ? 65 : 33, 'R'), 'R');
  return {
    keyId: w.keyId,
    epoch: Number(w.epoch),
    session: bytes(w.session, 32, 'presignature session'),
    signers: ids(w.signers, 'ECDSA presignature'),
    R: R.compressed,
    Rpoint: R.point,
    ...(Number(w.expiresAt) > 0 ? { expiresAt: Number(w.expiresAt) } : {}),
  };
}

/**
 * The id of the i-th presigning session of a device's reservation with `seed` (its reserve call's
 * fresh random 32 bytes): the device presigns under these ids only, so none runs twice on it.
 */
export function devicePresignSession(seed: Uint8Array, i: number): Uint8Array {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new DecodeError('presign seed: 32 bytes');
  const n = new Uint8Array(4);
  new DataView(n.buffer).setUint32(0, i);
  return sha256(new Uint8Array([...utf8ToBytes('tessera/v1/ecdsa-device-presign'), ...seed, ...n]));
}

/** What the ledger keeps of a presignature: the secret scalars, and its public statement as meta. */
export function presignatureRecord(suite: Suite, ps: Presignature, p: Presigned) {
  return {
    secret: encodePresignatureSecret({ phi: scalarToBytes(ps.phi), u: scalarToBytes(ps.u), v: scalarToBytes(ps.v) }),
    meta: encodePresigned(suite, p),
  };
}

/** The presignature back from its ledger record (`me`: my index; `signers`: indices, sorted). */
export function presignatureFromRecord(
  secret: Uint8Array,
  p: Presigned,
  opts: { me: number; signers: readonly number[]; publicKey: Uint8Array; keyIdBytes: Uint8Array },
): Presignature {
  const s = decodePresignatureSecret(secret);
  return {
    keyId: opts.keyIdBytes,
    sigid: p.session,
    signers: opts.signers,
    me: opts.me,
    R: p.R,
    ...(p.Rpoint ? { Rpoint: p.Rpoint } : {}),
    publicKey: opts.publicKey,
    phi: scalarFromBytes(s.phi, 'φ'),
    u: scalarFromBytes(s.u, 'u'),
    v: scalarFromBytes(s.v, 'v'),
  };
}

/** A coordinator's request for one ECDSA signature on a held presignature. */
export interface EcdsaSignRequest {
  readonly keyId: string;
  readonly epoch: number;
  /** The requester's SIGN_INTENT envelope. */
  readonly intent: Uint8Array;
  readonly session: Uint8Array;
  readonly signers: readonly string[];
  /** 16 random bytes of this attempt. */
  readonly requestId: Uint8Array;
}

export const encodeEcdsaSignRequest = (r: EcdsaSignRequest): Uint8Array =>
  encodeMessage('EcdsaSignRequest', {
    keyId: r.keyId,
    epoch: r.epoch,
    intent: r.intent,
    session: r.session,
    signers: [...r.signers],
    requestId: r.requestId,
  });

export function decodeEcdsaSignRequest(b: Uint8Array): EcdsaSignRequest {
  const w = decodeMessage('EcdsaSignRequest', b);
  if (!KEY_ID_PATTERN.test(w.keyId)) throw new DecodeError('ECDSA sign request: malformed key id');
  if (!(w.intent instanceof Uint8Array) || w.intent.length === 0)
    throw new DecodeError('ECDSA sign request: no intent');
  return {
    keyId: w.keyId,
    epoch: Number(w.epoch),
    intent: w.intent,
    session: bytes(w.session, 32, 'presignature session'),
    signers: ids(w.signers, 'ECDSA sign request'),
    requestId: bytes(w.requestId, 16, 'request id'),
  };
}

/** One signer's part, bound to the request it answers. */
export interface EcdsaPartialPayload {
  readonly session: Uint8Array;
  readonly requestDigest: Uint8Array;
  readonly u: Uint8Array;
  readonly w: Uint8Array;
}

export const encodePartial = (suite: Suite, p: EcdsaPartialPayload): Uint8Array =>
  encodeMessage('EcdsaPartial', {
    header: makeHeader(suite),
    session: p.session,
    requestDigest: p.requestDigest,
    u: p.u,
    w: p.w,
  });

export function decodePartial(suite: Suite, b: Uint8Array, from: number): PartialSignature & EcdsaPartialPayload {
  const w = decodeMessage('EcdsaPartial', b);
  checkHeader(w.header, 'ECDSA partial signature', suite);
  scalarFromBytes(bytes(w.u, 32, 'partial u'), 'partial u');
  scalarFromBytes(bytes(w.w, 32, 'partial w'), 'partial w');
  return {
    from,
    session: bytes(w.session, 32, 'presignature session'),
    requestDigest: bytes(w.requestDigest, 32, 'request digest'),
    u: w.u,
    w: w.w,
  };
}

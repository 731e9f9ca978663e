/**
 * Sign intents and sign requests. A requester authorises one signature by signing a
 * {@link SignIntent} (key, message, request id, expiry). The coordinator forwards it inside a
 * {@link SignRequest} with the commitment list; each signer checks the intent against its own
 * policy before it touches a nonce, so the coordinator cannot get anything signed that a
 * requester did not authorise.
 */
import { formatHdPath } from './hd.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { fromHex, toHex } from './bytes.js';
import { openEnvelope, signEnvelope } from './envelope.js';
import { DecodeError, InvalidArgumentError } from './errors.js';
import type { ParticipantIdentity } from './identity.js';
import { KEY_ID_PATTERN } from './records.js';
import type { NonceCommitment } from './sign.js';
import type { Suite } from './suites.js';
import { decodeMessage, encodeMessage } from './wire/codec.js';
import { MAX_MESSAGE_BYTES } from './wire/limits.js';
import { checkHeader, expectLength, expectLengthBetween, makeHeader } from './wire/packages.js';
import { PayloadKind, type WireEnvelope } from './wire/types.js';

/** Largest message a signer will sign (bytes). */
export { MAX_MESSAGE_BYTES };

export interface SignIntent {
  readonly suite: Suite;
  readonly keyId: string;
  readonly message: Uint8Array;
  /** 16..32 random bytes; retries of the same request reuse it. */
  readonly requestId: Uint8Array;
  /** Expiry, ms since the Unix epoch. */
  readonly notAfter: number;
  /** HD child key to sign with (`m/0/5`, non-hardened); absent or empty = the key itself. */
  readonly path?: string;
}

/** Signs an intent as `requester`; returns the encoded envelope. */
export function createSignIntent(requester: ParticipantIdentity, intent: SignIntent): Uint8Array {
  if (!KEY_ID_PATTERN.test(intent.keyId)) throw new InvalidArgumentError(`malformed key id "${intent.keyId}"`);
  if (intent.message.length > MAX_MESSAGE_BYTES)
    throw new InvalidArgumentError(`message exceeds ${MAX_MESSAGE_BYTES} bytes`);
  if (intent.requestId.length < 16 || intent.requestId.length > 32)
    throw new InvalidArgumentError('request id must be 16..32 bytes');
  const payload = encodeMessage('SignIntent', {
    header: makeHeader(intent.suite),
    keyId: intent.keyId,
    message: intent.message,
    requestId: intent.requestId,
    notAfter: intent.notAfter,
    path: intent.path ? formatHdPath(intent.path) : '',
  });
  return signEnvelope(requester, PayloadKind.SIGN_INTENT, payload);
}

/** A verified intent and who signed it. */
export interface OpenedIntent extends SignIntent {
  /** The requester's Ed25519 public key (verified signature). */
  readonly requester: Uint8Array;
  /** The envelope bytes. */
  readonly bytes: Uint8Array;
  /** The signed payload (the encoded SignIntent). */
  readonly payload: Uint8Array;
}

/** Verifies and decodes an intent envelope. `suite` must match when given. */
export function openSignIntent(bytes: Uint8Array, suite?: Suite): OpenedIntent {
  const env = openEnvelope(bytes, PayloadKind.SIGN_INTENT);
  const w = decodeMessage('SignIntent', env.payload);
  const s = checkHeader(w.header, 'sign intent', suite, true);
  if (!KEY_ID_PATTERN.test(w.keyId)) throw new DecodeError('sign intent: malformed key id');
  expectLengthBetween(w.message, 0, MAX_MESSAGE_BYTES, 'sign intent message');
  expectLengthBetween(w.requestId, 16, 32, 'sign intent request id');
  if (w.path !== '' && formatHdPath(w.path) !== w.path)
    throw new DecodeError('sign intent: derivation path is not in canonical form');
  return Object.freeze({
    suite: s,
    keyId: w.keyId,
    message: w.message,
    requestId: w.requestId,
    notAfter: w.notAfter,
    path: w.path,
    requester: env.sender,
    bytes,
    payload: env.payload,
  });
}

/** One entry of a sign request's commitment list. */
export interface RequestCommitment extends NonceCommitment {
  /** The signer's handle for its nonce pair. */
  readonly nonceId: Uint8Array;
}

export interface SignRequest {
  readonly suite: Suite;
  readonly sessionId: Uint8Array;
  readonly keyId: string;
  readonly epoch: number;
  /** The requester's signed intent (envelope bytes). */
  readonly intent: Uint8Array;
  readonly commitments: readonly RequestCommitment[];
}

export function encodeSignRequest(r: SignRequest): Uint8Array {
  const intent = decodeMessage('Envelope', r.intent);
  return encodeMessage('SignRequest', {
    header: makeHeader(r.suite),
    sessionId: r.sessionId,
    keyId: r.keyId,
    epoch: r.epoch,
    intent,
    commitments: r.commitments.map((c) => ({
      header: makeHeader(r.suite),
      identifier: fromHex(c.identifier),
      hiding: c.hiding,
      binding: c.binding,
      nonceId: c.nonceId,
    })),
  });
}

/** Decodes a sign request, checking the header, lengths and the suite of every commitment. */
export function decodeSignRequest(bytes: Uint8Array): SignRequest & { digest: Uint8Array } {
  const w = decodeMessage('SignRequest', bytes);
  const suite = checkHeader(w.header, 'sign request');
  if (!KEY_ID_PATTERN.test(w.keyId)) throw new DecodeError('sign request: malformed key id');
  if (!w.intent) throw new DecodeError('sign request: missing intent');
  const commitments = w.commitments.map((c, i) => {
    checkHeader(c.header, `commitment[${i}]`, suite);
    return {
      identifier: toHex(expectLength(c.identifier, suite.scalarBytes, `commitment[${i}] identifier`)),
      hiding: expectLength(c.hiding, suite.elementBytes, `commitment[${i}] hiding`),
      binding: expectLength(c.binding, suite.elementBytes, `commitment[${i}] binding`),
      nonceId: expectLengthBetween(c.nonceId, 1, 64, `commitment[${i}] nonce id`),
    };
  });
  return {
    suite,
    sessionId: expectLengthBetween(w.sessionId, 16, 64, 'sign request session id'),
    keyId: w.keyId,
    epoch: w.epoch,
    intent: encodeMessage('Envelope', w.intent as WireEnvelope),
    commitments,
    digest: sha256(bytes),
  };
}

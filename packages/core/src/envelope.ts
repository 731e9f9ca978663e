/**
 * Signed envelopes: how a participant makes a statement. The Ed25519 signature covers a domain
 * tag, the payload kind and the exact payload bytes, so a payload cannot be replayed as another
 * kind, and receivers verify the bytes they hold (never a re-encoding).
 */
import { equalBytes } from './bytes.js';
import { DecodeError, ErrorCode, ProtocolError } from './errors.js';
import { envelopeSigningBytes } from './envelope-bytes.js';
import { verifyParticipantSignature, type ParticipantIdentity } from './identity.js';
import { decodeMessage, encodeMessage } from './wire/codec.js';
import { FORMAT_VERSION, expectLength } from './wire/packages.js';
import type { PayloadKind, WireEnvelope } from './wire/types.js';

export { envelopeSigningBytes };

/**
 * What signs an envelope: a participant identity, or just a signing key (an operator's, held in a
 * console page, which never needs the identity's encryption half).
 */
export type EnvelopeSigner = Pick<ParticipantIdentity, 'sign'> & { readonly public: { readonly signKey: Uint8Array } };

/** Signs `payload` as `kind` with `identity` and returns the encoded Envelope. */
export function signEnvelope(identity: EnvelopeSigner, kind: PayloadKind, payload: Uint8Array): Uint8Array {
  const signature = identity.sign(envelopeSigningBytes(kind, payload));
  return encodeMessage('Envelope', {
    version: FORMAT_VERSION,
    kind,
    sender: identity.public.signKey,
    payload,
    signature,
  });
}

/** A verified envelope. */
export interface OpenedEnvelope {
  readonly kind: PayloadKind;
  /** The sender's Ed25519 public key (verified). */
  readonly sender: Uint8Array;
  readonly payload: Uint8Array;
  /** The exact envelope bytes that were verified. */
  readonly bytes: Uint8Array;
}

/**
 * Decodes and verifies an envelope of the expected kind. Throws DecodeError on malformed bytes,
 * UNEXPECTED_MESSAGE on a wrong kind, BAD_SIGNATURE if the signature does not verify. A bad
 * signature proves nothing about the claimed sender (anyone can claim a key), so it names no
 * culprit.
 */
export function openEnvelope(bytes: Uint8Array, kind: PayloadKind): OpenedEnvelope {
  const env = readEnvelope(bytes, kind);
  if (!verifyEnvelope(env)) throw new ProtocolError(ErrorCode.BAD_SIGNATURE, 'envelope signature does not verify');
  return { kind, sender: env.sender, payload: env.payload, bytes };
}

/** An envelope decoded and checked like {@link openEnvelope} except for its signature. */
export interface ReadEnvelope extends OpenedEnvelope {
  readonly signature: Uint8Array;
}

/**
 * Everything {@link openEnvelope} checks except the signature: canonical encoding, kind, lengths.
 * For messages that arrive over a channel that already authenticates their sender (a signer's
 * mutually authenticated link, checked against `sender`), where verifying every signature on the
 * hot path would prove nothing new; verify it with {@link verifyEnvelope} where the signature is
 * to serve as evidence (e.g. before blaming the sender).
 */
export function readEnvelope(bytes: Uint8Array, kind: PayloadKind): ReadEnvelope {
  const env = decodeMessage('Envelope', bytes);
  if (env.version !== FORMAT_VERSION) throw new DecodeError(`envelope: unsupported version ${env.version}`);
  // Only the canonical encoding is accepted: the envelope bytes then determine (kind, sender,
  // payload, signature) one to one, so a relay cannot re-encode a genuine envelope into a
  // "different" one and make its honest sender look like an equivocator.
  if (env.kind !== kind)
    throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, `expected a payload of kind ${kind}, got kind ${env.kind}`);
  if (!isCanonical(env, bytes)) throw new DecodeError('envelope: non-canonical encoding');
  expectLength(env.sender, 32, 'envelope sender');
  expectLength(env.signature, 64, 'envelope signature');
  return { kind, sender: env.sender, payload: env.payload, bytes, signature: env.signature };
}

/** True iff the signature of an envelope read with {@link readEnvelope} verifies. */
export function verifyEnvelope(env: ReadEnvelope): boolean {
  return verifyParticipantSignature(env.sender, envelopeSigningBytes(env.kind, env.payload), env.signature);
}

function isCanonical(env: WireEnvelope, bytes: Uint8Array): boolean {
  try {
    return equalBytes(encodeMessage('Envelope', env), bytes);
  } catch {
    return false;
  }
}

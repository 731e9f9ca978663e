/**
 * Device-to-device co-signing, no cluster: two devices of one key (2-of-n) sign in two rounds
 * over any channel. The proposer sends its commitment and the message signed by its identity; the
 * other answers with its commitment and share; the proposer completes the signature. Each
 * device's nonce is used once: the proposer keeps its nonce sealed between the rounds and marks
 * it spent before completing (the caller's job, as for offline packages in ./offline.ts).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { equalBytes, type Rng } from './bytes.js';
import { openEnvelope, signEnvelope } from './envelope.js';
import { DecodeError, ErrorCode, InvalidArgumentError, ProtocolError } from './errors.js';
import type { ParticipantIdentity } from './identity.js';
import { groupPublicKey, type GroupKey, type KeyShare } from './key.js';
import { SigningNonces, SigningSession, commit, signShare, type NonceCommitment } from './sign.js';
import { decodeMessage, encodeMessage } from './wire/codec.js';
import { MAX_MESSAGE_BYTES } from './wire/limits.js';
import { checkHeader, expectLength, makeHeader } from './wire/packages.js';
import { PayloadKind } from './wire/types.js';

/** The proposer's pending state: its nonce, kept (sealed) until the answer arrives. */
export interface CosignPending {
  readonly requestEnvelope: Uint8Array;
  /**
   * Wiped by {@link completeCosign}. The caller stores it sealed until the answer arrives, and
   * must replace it durably with a spent marker before calling {@link completeCosign} (check the
   * answer first with {@link openCosignResponse}).
   */
  readonly nonceSecret: Uint8Array;
}

/** Round one from the proposing device: its commitment and the message, signed by its identity. */
export function createCosignRequest(args: {
  identity: ParticipantIdentity;
  key: GroupKey;
  share: KeyShare;
  keyId: string;
  epoch: number;
  message: Uint8Array;
  rng?: Rng;
}): CosignPending {
  if (args.key.threshold !== 2)
    throw new InvalidArgumentError(`device-to-device signing needs a 2-of-n key; this one needs ${args.key.threshold}`);
  if (args.message.length > MAX_MESSAGE_BYTES)
    throw new InvalidArgumentError(`message exceeds ${MAX_MESSAGE_BYTES} bytes`);
  const rng = args.rng ?? randomBytes;
  const { nonces, commitment } = commit(args.share, rng);
  const payload = encodeMessage('CosignRequest', {
    header: makeHeader(args.key.suite),
    keyId: args.keyId,
    epoch: args.epoch,
    device: args.identity.id,
    message: args.message,
    hiding: commitment.hiding,
    binding: commitment.binding,
    requestId: rng(16),
  });
  return {
    requestEnvelope: signEnvelope(args.identity, PayloadKind.COSIGN_REQUEST, payload),
    nonceSecret: nonces.exportSecret(),
  };
}

export interface OpenedCosignRequest {
  readonly keyId: string;
  readonly epoch: number;
  readonly device: string;
  readonly message: Uint8Array;
  readonly commitment: NonceCommitment;
  readonly requestId: Uint8Array;
  readonly digest: Uint8Array;
}

/** Opens a cosign request for `key`: signed by the roster member it names. */
export function openCosignRequest(key: GroupKey, envelope: Uint8Array): OpenedCosignRequest {
  const env = openEnvelope(envelope, PayloadKind.COSIGN_REQUEST);
  const w = decodeMessage('CosignRequest', env.payload);
  checkHeader(w.header, 'cosign request', key.suite);
  const who = key.roster.find((r) => r.id === w.device);
  if (!who || !equalBytes(who.signKey, env.sender))
    throw new ProtocolError(ErrorCode.BAD_SIGNATURE, 'cosign request is not signed by a participant of the key');
  if (w.message.length > MAX_MESSAGE_BYTES) throw new DecodeError('cosign request: message too long');
  expectLength(w.requestId, 16, 'cosign request id');
  return {
    keyId: w.keyId,
    epoch: w.epoch,
    device: w.device,
    message: w.message,
    commitment: {
      identifier: who.identifier,
      hiding: expectLength(w.hiding, key.suite.elementBytes, 'hiding'),
      binding: expectLength(w.binding, key.suite.elementBytes, 'binding'),
    },
    requestId: w.requestId,
    digest: sha256(envelope),
  };
}

/** Round two on the co-signing device: a fresh commitment and its share, in one answer. */
export function answerCosignRequest(args: {
  identity: ParticipantIdentity;
  key: GroupKey;
  share: KeyShare;
  request: OpenedCosignRequest;
  rng?: Rng;
}): Uint8Array {
  const { key, request } = args;
  if (request.device === args.identity.id) throw new InvalidArgumentError('a device cannot co-sign its own request');
  const { nonces, commitment } = commit(args.share, args.rng ?? randomBytes);
  const share = signShare(args.share, key, nonces, [request.commitment, commitment], request.message);
  return encodeMessage('CosignResponse', {
    header: makeHeader(key.suite),
    requestDigest: request.digest,
    device: args.identity.id,
    hiding: commitment.hiding,
    binding: commitment.binding,
    share,
  });
}

/** A checked answer to a cosign request: what the proposer needs to add its own share. */
export interface OpenedCosignResponse {
  readonly request: OpenedCosignRequest;
  /** The answering participant. */
  readonly other: string;
  /** Its signature share (verified). */
  readonly share: Uint8Array;
  readonly commitments: readonly NonceCommitment[];
  readonly session: SigningSession;
}

/**
 * Back on the proposer, before its nonce is touched: the answer is for this request, from another
 * participant of the key, and its share verifies. Lets a caller mark the nonce spent durably
 * between this check and {@link completeCosign}, so a bad answer does not burn the request.
 */
export function openCosignResponse(
  key: GroupKey,
  requestEnvelope: Uint8Array,
  response: Uint8Array,
): OpenedCosignResponse {
  const request = openCosignRequest(key, requestEnvelope);
  const w = decodeMessage('CosignResponse', response);
  checkHeader(w.header, 'cosign response', key.suite);
  if (!equalBytes(w.requestDigest, request.digest))
    throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, 'the answer is for another request');
  const other = key.roster.find((r) => r.id === w.device);
  if (!other || other.id === request.device)
    throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, 'the answer is not from another participant of the key');
  const theirs: NonceCommitment = {
    identifier: other.identifier,
    hiding: expectLength(w.hiding, key.suite.elementBytes, 'hiding'),
    binding: expectLength(w.binding, key.suite.elementBytes, 'binding'),
  };
  const commitments = [request.commitment, theirs];
  const session = new SigningSession(key, request.message, commitments);
  if (!session.verifyShare(other.id, expectLength(w.share, key.suite.scalarBytes, 'share')))
    throw new ProtocolError(ErrorCode.BAD_SIGNATURE_SHARE, `the signature share of ${other.id} does not verify`, [
      other.id,
    ]);
  return { request, other: other.id, share: w.share, commitments, session };
}

/** Back on the proposer: its own share, aggregation, and the plain verifier. */
export function completeCosign(args: {
  key: GroupKey;
  share: KeyShare;
  pending: CosignPending;
  response: Uint8Array;
}): { signature: Uint8Array; signers: string[]; message: Uint8Array } {
  const { key } = args;
  const {
    request,
    other,
    share: theirShare,
    commitments,
    session,
  } = openCosignResponse(key, args.pending.requestEnvelope, args.response);
  // The pending nonce is used once: wiped here, so a second answer to the same request (which
  // would sign another commitment list with the same nonce and leak the share) is refused.
  if (args.pending.nonceSecret.every((b) => b === 0))
    throw new ProtocolError(ErrorCode.INVALID_STATE, 'this request was already completed: its nonce is spent');
  const nonces = SigningNonces.importSecret(key.suite, args.share.identifier, args.pending.nonceSecret);
  args.pending.nonceSecret.fill(0);
  const mine = signShare(args.share, key, nonces, commitments, request.message);
  const signature = session.aggregate(
    new Map([
      [request.device, mine],
      [other, theirShare],
    ]),
  );
  if (!key.suite.verify(signature, request.message, groupPublicKey(key)))
    throw new ProtocolError(ErrorCode.SIGNATURE_INVALID, 'signature failed the plain verifier');
  return { signature, signers: [request.device, other], message: request.message };
}

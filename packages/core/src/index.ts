/**
 * @tessera/core — Tessera's protocol logic. Pure: no I/O; randomness and time are injected.
 */
export * from './errors.js';
export * from './bytes.js';
export * from './suites.js';
export * from './hpke.js';
export * from './hpke-xwing.js';
export * from './identity.js';
export { identityEd25519Backend } from './ed25519-identity.js';
export * from './envelope.js';
export * from './key.js';
export * from './dkg.js';
export * from './dkg-participant.js';
export * from './lifecycle.js';
export * from './authorisation.js';
export * from './operator-login.js';
export * from './lifecycle-participant.js';
export * from './sign.js';
export {
  prepareKey,
  prepareSession,
  validateCommitment,
  validateElements,
  FrostAggregateError,
  type PreparedKey,
  type PreparedSession,
  type SessionOptions,
} from './fast.js';
export * from './local.js';
export * from './records.js';
export * from './intent.js';
export * from './offline.js';
export * from './hd.js';
export { base45Encode, base45Decode } from './base45.js';
export { encodeMessage, decodeMessage, MAX_PACKAGE_BYTES } from './wire/codec.js';
export { encodeLinkTask, decodeLinkTask, encodeLinkResult, decodeLinkResult } from './wire/link-codec.js';
export { FORMAT_VERSION, makeHeader, checkHeader } from './wire/packages.js';
export { PayloadKind } from './wire/types.js';
export type * from './wire/types.js';
export * from './wire/link.js';
export { ERROR_DOMAIN, encodeErrorStatus, decodeErrorStatus, type ErrorStatus } from './wire/status.js';

/**
 * The parts of modules that @tessera/core makes public by name (the rest of each module is
 * internal). Kept out of ./index.ts, which has only `export *` lines: esbuild treats a barrel with
 * named re-exports as used whenever one of them is, and then every module the barrel re-exports
 * lands in the importing page's first chunk — also those a page imports on demand (the device
 * SDK's DKG and refresh/reshare participants, for one).
 */
export { identityEd25519Backend } from './ed25519-identity.js';
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
export { base45Encode, base45Decode } from './base45.js';
export { encodeLinkTask, decodeLinkTask, encodeLinkResult, decodeLinkResult } from './wire/link-codec.js';

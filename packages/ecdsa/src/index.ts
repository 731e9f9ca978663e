/**
 * @tessera/ecdsa — threshold ECDSA over secp256k1 (DKLs23: Doerner, Kondi, Lee, shelat,
 * "Threshold ECDSA in Three Rounds", IEEE S&P 2024). Pure protocol code on @noble/curves and
 * @noble/hashes: the pairwise setup (base OT, zero-sharing seeds) after Tessera's DKG, the
 * three presigning rounds, and the online partial signature and combination. No I/O: the
 * signer, device and coordinator move the messages and keep the state.
 */
export { EcdsaPairSetup, setupSid, instSid, type PairState, type SetupMessage1, type SetupMessage2 } from './setup.js';
export {
  EcdsaPresign,
  partialSign,
  combine,
  tweakedKey,
  type EcdsaSignature,
  type PartialSignature,
  type Presignature,
  type SignMessage1,
  type SignMessage2,
} from './sign.js';
export {
  hasSetupAbort,
  rosterDigest,
  setupAbort,
  setupDone,
  setupDoneSession,
  verifySetupDone,
} from './setup-done.js';
export {
  EcdsaSetups,
  keyView,
  type EcdsaAnswer,
  type EcdsaSetupContext,
  type EcdsaTask,
  type SetupStore,
} from './setup-store.js';
export {
  checkEcdsaPackage,
  createEcdsaPackage,
  isEcdsaPackage,
  openEcdsaPackage,
  peekEcdsaPackage,
  type EcdsaPackageCheck,
  type EcdsaPackageFields,
  type OpenedEcdsaPackage,
} from './offline-package.js';
export { OTE_MESSAGE_BYTES } from './ote.js';
export { RVOLE_MESSAGE_BYTES } from './rvole.js';
export { lagrangeAtZero } from './params.js';
export { ecdsaAddresses, evmAccount, evmAddress, p2wpkhAddress, tronAddress, type SegwitNetwork } from '@tessera/core';
export {
  PresignSession,
  SetupSession,
  evaluationPoints,
  rosterIndex,
  sealPeerMessage,
  type EcdsaKeyView,
  type SessionKind,
} from './session.js';
export {
  decodeEcdsaSignRequest,
  decodePartial,
  decodePresigned,
  devicePresignSession,
  encodeEcdsaSignRequest,
  encodePartial,
  encodePresigned,
  presignatureFromRecord,
  presignatureRecord,
  type EcdsaPartialPayload,
  type EcdsaSignRequest,
  type Presigned,
} from './presigned.js';
export { decodePairs, decodePresign1, encodePairs, encodePresign1, encodePresign2, type PairRecords } from './wire.js';

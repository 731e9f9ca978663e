/**
 * TypeScript shapes of the messages in proto/tessera/v1/packages.proto, as the codec produces
 * them (camelCase fields, every field present, uint64 as a safe-integer number).
 */

/** `tessera.v1.Suite` numbers. */
export type WireSuite = 0 | 1 | 2 | 3 | 4;

/** `tessera.v1.PayloadKind`. Numbers are stable. */
export const PayloadKind = {
  DKG_ROUND1: 1,
  DKG_ROUND2: 2,
  DKG_CONFIRM: 3,
  SIGN_INTENT: 10,
  SIGNING_COMMITMENT: 11,
  SIGN_REQUEST: 12,
  SIGNATURE_SHARE: 13,
  RESERVATION: 14,
  DEVICE_CALL: 20,
  COSIGN_REQUEST: 21,
  /** Share refresh round 1 (`LifecycleRound1`), packages/core/src/lifecycle.ts. */
  REFRESH_ROUND1: 30,
  /** Reshare round 1 (`LifecycleRound1`). */
  RESHARE_ROUND1: 31,
  /** Refresh/reshare confirmation (`LifecycleConfirm`). */
  LIFECYCLE_CONFIRM: 32,
  /** Refresh/reshare: the sender activated the new epoch (`LifecycleConfirm`). */
  LIFECYCLE_ACTIVATED: 33,
  /** An operator's approval of a `LifecycleAuthorisation` (the payload is its exact bytes). */
  OPERATOR_APPROVAL: 40,
} as const;
export type PayloadKind = (typeof PayloadKind)[keyof typeof PayloadKind];

export interface WireHeader {
  version: number;
  suite: number;
}
export interface WireEnvelope {
  version: number;
  kind: number;
  sender: Uint8Array;
  payload: Uint8Array;
  signature: Uint8Array;
}
export interface WireParticipantInfo {
  id: string;
  signKey: Uint8Array;
  encKey: Uint8Array;
  device?: boolean;
}
export interface WireDkgParams {
  header: WireHeader;
  sessionId: Uint8Array;
  threshold: number;
  participants: WireParticipantInfo[];
}
export interface WireDkgRound1 {
  header: WireHeader;
  sessionHash: Uint8Array;
  identifier: Uint8Array;
  commitment: Uint8Array[];
  proofOfKnowledge: Uint8Array;
}
export interface WireSealedShare {
  recipient: Uint8Array;
  enc: Uint8Array;
  ciphertext: Uint8Array;
}
export interface WireDkgRound2 {
  header: WireHeader;
  sessionHash: Uint8Array;
  identifier: Uint8Array;
  round1: Uint8Array[];
  shares: WireSealedShare[];
}
export interface WireDkgConfirm {
  header: WireHeader;
  sessionHash: Uint8Array;
  identifier: Uint8Array;
  transcriptHash: Uint8Array;
  keyDigest: Uint8Array;
}
export interface WireVerifyingShare {
  identifier: Uint8Array;
  element: Uint8Array;
}
export interface WireKeyPublic {
  header: WireHeader;
  threshold: number;
  commitments: Uint8Array[];
  verifyingShares: WireVerifyingShare[];
}
export interface WireSignIntent {
  header: WireHeader;
  keyId: string;
  message: Uint8Array;
  requestId: Uint8Array;
  notAfter: number;
  path: string;
}
export interface WireSigningCommitment {
  header: WireHeader;
  identifier: Uint8Array;
  hiding: Uint8Array;
  binding: Uint8Array;
  nonceId: Uint8Array;
}
export interface WireSignRequest {
  header: WireHeader;
  sessionId: Uint8Array;
  keyId: string;
  epoch: number;
  intent: WireEnvelope;
  commitments: WireSigningCommitment[];
}
export interface WireSignatureShare {
  header: WireHeader;
  sessionId: Uint8Array;
  identifier: Uint8Array;
  share: Uint8Array;
  requestDigest: Uint8Array;
}

export interface WireRefreshParams {
  header: WireHeader;
  sessionId: Uint8Array;
  keyId: string;
  fromEpoch: number;
  keyDigest: Uint8Array;
  contributors: string[];
}
export interface WireReshareParams {
  header: WireHeader;
  sessionId: Uint8Array;
  keyId: string;
  fromEpoch: number;
  keyDigest: Uint8Array;
  contributors: string[];
  newThreshold: number;
  newParticipants: WireParticipantInfo[];
}
export interface WireLifecycleRound1 {
  header: WireHeader;
  sessionHash: Uint8Array;
  identifier: Uint8Array;
  commitments: Uint8Array[];
  shares: WireSealedShare[];
}
export interface WireLifecycleAuthorisation {
  version: number;
  keyId: string;
  operation: string;
  fromEpoch: number;
  anyEpoch: boolean;
  newThreshold: number;
  newParticipants: WireParticipantInfo[];
  allowThresholdDecrease: boolean;
  allowUnpinned: string[];
  revoke: string[];
  notAfter: number;
  nonce: Uint8Array;
}
export interface WirePendingLifecycle {
  kind: string;
  sessionHash: Uint8Array;
  transcriptHash: Uint8Array;
  keyRecord: Uint8Array;
  required: string[];
  revoke: string[];
  shareRecord: Uint8Array;
}
export interface WireLifecycleOutcome {
  epoch: number;
  activatedAt: number;
  left: boolean;
  retired: boolean;
  keyRecord: Uint8Array;
  transcriptHash: Uint8Array;
}
export interface WireApprovedAuthorisation {
  authorisation: Uint8Array;
  approvals: Uint8Array[];
}
export interface WireLifecycleConfirm {
  header: WireHeader;
  sessionHash: Uint8Array;
  identifier: Uint8Array;
  epoch: number;
  transcriptHash: Uint8Array;
  keyDigest: Uint8Array;
}

export interface WireKeyShareRecord {
  header: WireHeader;
  keyId: string;
  epoch: number;
  threshold: number;
  participants: WireParticipantInfo[];
  public: WireKeyPublic;
  identifier: Uint8Array;
  signingShare: Uint8Array;
  transcriptHash: Uint8Array;
  createdAt: number;
}
export interface WireKeyRecord {
  header: WireHeader;
  keyId: string;
  epoch: number;
  threshold: number;
  participants: WireParticipantInfo[];
  public: WireKeyPublic;
  createdAt: number;
}
export interface WireIdentityRecord {
  version: number;
  id: string;
  signSecret: Uint8Array;
  encSecret: Uint8Array;
}
export interface WireSignResultRecord {
  version: number;
  keyId: string;
  signature: Uint8Array;
  signers: string[];
  publicKey: Uint8Array;
  requestId: Uint8Array;
  intentDigest: Uint8Array;
}

export interface WireReservation {
  header: WireHeader;
  keyId: string;
  epoch: number;
  device: string;
  signer: string;
  nonceId: Uint8Array;
  hiding: Uint8Array;
  binding: Uint8Array;
  expiresAt: number;
}
export interface WireReservedCommitment {
  signer: string;
  nonceId: Uint8Array;
  hiding: Uint8Array;
  binding: Uint8Array;
  expiresAt: number;
  signature: Uint8Array;
}
export interface WireOfflinePackage {
  header: WireHeader;
  keyId: string;
  epoch: number;
  device: string;
  message: Uint8Array;
  hiding: Uint8Array;
  binding: Uint8Array;
  share: Uint8Array;
  cosigners: WireReservedCommitment[];
  createdAt: number;
}
export interface WireCosignRequest {
  header: WireHeader;
  keyId: string;
  epoch: number;
  device: string;
  message: Uint8Array;
  hiding: Uint8Array;
  binding: Uint8Array;
  requestId: Uint8Array;
}
export interface WireCosignResponse {
  header: WireHeader;
  requestDigest: Uint8Array;
  device: string;
  hiding: Uint8Array;
  binding: Uint8Array;
  share: Uint8Array;
}
export interface WireDeviceCall {
  version: number;
  device: string;
  op: string;
  issuedAt: number;
  nonce: Uint8Array;
  body: Uint8Array;
  clusterId: string;
}
export interface WireErrorDetail {
  code: string;
  message: string;
  culprits: string[];
}

export interface WireKeyInfo {
  keyId: string;
  suite: number;
  threshold: number;
  participants: string[];
  publicKey: Uint8Array;
  epoch: number;
  createdAt: number;
}
export interface WireDeviceEnrol {
  token: string;
  participant: WireParticipantInfo;
}
export interface WireDeviceEnrolled {
  device: string;
  coordinator: string;
  clusterId: string;
}
export interface WireDevicePoll {
  results: Record<string, unknown>[];
  waitMs: number;
  keys: string[];
  pending: number;
  bye?: boolean;
}
export interface WireDeviceTasks {
  tasks: Record<string, unknown>[];
}
export interface WireDeviceReserve {
  keyId: string;
  count: number;
  cosigners: string[];
  ttlMs: number;
}
export interface WireDeviceReserved {
  slots: { reservations: Uint8Array[] }[];
  errors: string[];
}
export interface WireDeviceKeys {
  keys: WireKeyInfo[];
}
export interface WireKeygenRequest {
  suite: number;
  threshold: number;
  participants: string[];
}
export interface WireSubmitPackageRequest {
  package: Uint8Array;
}
export interface WireSubmitPackageResponse {
  packageId: string;
  keyId: string;
  message: Uint8Array;
  signature: Uint8Array;
  publicKey: Uint8Array;
  signers: string[];
  alreadyCompleted: boolean;
}

export interface WireTypes {
  KeyInfo: WireKeyInfo;
  DeviceEnrol: WireDeviceEnrol;
  DeviceEnrolled: WireDeviceEnrolled;
  DevicePoll: WireDevicePoll;
  DeviceTasks: WireDeviceTasks;
  DeviceReserve: WireDeviceReserve;
  DeviceReserved: WireDeviceReserved;
  DeviceKeys: WireDeviceKeys;
  KeygenRequest: WireKeygenRequest;
  SubmitPackageRequest: WireSubmitPackageRequest;
  SubmitPackageResponse: WireSubmitPackageResponse;
  Reservation: WireReservation;
  ReservedCommitment: WireReservedCommitment;
  OfflinePackage: WireOfflinePackage;
  CosignRequest: WireCosignRequest;
  CosignResponse: WireCosignResponse;
  DeviceCall: WireDeviceCall;
  ErrorDetail: WireErrorDetail;
  Header: WireHeader;
  Envelope: WireEnvelope;
  ParticipantInfo: WireParticipantInfo;
  DkgParams: WireDkgParams;
  DkgRound1: WireDkgRound1;
  SealedShare: WireSealedShare;
  DkgRound2: WireDkgRound2;
  DkgConfirm: WireDkgConfirm;
  VerifyingShare: WireVerifyingShare;
  KeyPublic: WireKeyPublic;
  SignIntent: WireSignIntent;
  SigningCommitment: WireSigningCommitment;
  SignRequest: WireSignRequest;
  SignatureShare: WireSignatureShare;
  KeyShareRecord: WireKeyShareRecord;
  KeyRecord: WireKeyRecord;
  IdentityRecord: WireIdentityRecord;
  SignResultRecord: WireSignResultRecord;
  RefreshParams: WireRefreshParams;
  ReshareParams: WireReshareParams;
  LifecycleRound1: WireLifecycleRound1;
  LifecycleConfirm: WireLifecycleConfirm;
  LifecycleAuthorisation: WireLifecycleAuthorisation;
  ApprovedAuthorisation: WireApprovedAuthorisation;
  PendingLifecycle: WirePendingLifecycle;
  LifecycleOutcome: WireLifecycleOutcome;
}
export type MessageName = keyof WireTypes;

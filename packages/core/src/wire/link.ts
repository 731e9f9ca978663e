/**
 * The participant-link messages of proto/tessera/v1/cluster.proto as @grpc/proto-loader yields
 * them (camelCase, `oneofs: true` adds the `body` discriminator, bytes as Buffer/Uint8Array).
 */
import type { Allowance } from '../allowance.js';

export interface TaskError {
  code: string;
  message: string;
  culprits: string[];
}

/** A process's verification of its own audit chain. */
export interface AuditReport {
  ok: boolean;
  count: number;
  head: string;
  problemSeq: number;
  reason: string;
}

export interface LinkTask {
  taskId: number;
  body?:
    | 'dkgStart'
    | 'dkgBundle'
    | 'dkgAbort'
    | 'commit'
    | 'sign'
    | 'audit'
    | 'reserve'
    | 'complete'
    | 'lifecycle'
    | 'revoke'
    | 'ecdsa'
    | 'ecdsaSign';
  /** `deviceAdmissions`: operator approvals of the roster's device entries ({@link admissionPayload}). */
  dkgStart?: { params: Uint8Array; deviceAdmissions?: Uint8Array[] } | null;
  dkgBundle?: { sessionHash: Uint8Array; round: number; envelopes: Uint8Array[] } | null;
  dkgAbort?: { sessionHash: Uint8Array; reason: string } | null;
  commit?: { keyId: string; count: number } | null;
  sign?: Uint8Array | null;
  audit?: Record<string, never> | null;
  /**
   * `allowance`: the caps the device asks for (allowance.ts); absent: none. `deviceCall`: the
   * device's signed reserve call, when it says it keeps reservations that require the integrity
   * verdict unasked (DeviceReserve.takes_integrity_rule, read from the device's signature).
   */
  reserve?: {
    keyId: string;
    device: string;
    count: number;
    ttlMs: number;
    allowance?: Allowance | null;
    deviceCall?: Uint8Array;
  } | null;
  /** An encoded OfflinePackage to complete. */
  complete?: Uint8Array | null;
  lifecycle?: LifecycleTask | null;
  /** An encoded `ApprovedAuthorisation` of operation `revoke`. */
  revoke?: Uint8Array | null;
  /** One step of a threshold ECDSA session (cluster.proto `EcdsaTask`). */
  ecdsa?: EcdsaTask | null;
  /** An encoded `EcdsaSignRequest`. */
  ecdsaSign?: Uint8Array | null;
}

/** One step of an ECDSA setup or presigning session on one signer (cluster.proto `EcdsaTask`). */
export interface EcdsaTask {
  kind: 'setup' | 'presign' | string;
  keyId: string;
  step: number;
  session: Uint8Array;
  signers: string[];
  /** The previous step's ECDSA_MESSAGE envelopes addressed to this signer. */
  messages: Uint8Array[];
}

/** One step of a refresh or reshare (cluster.proto `LifecycleTask`). */
export interface LifecycleTask {
  kind: 'refresh' | 'reshare' | string;
  keyId: string;
  /** A {@link LifecycleStep}. */
  step: number;
  params: Uint8Array;
  /** Contribute: none. Apply: the round-1 contributions. Commit: the confirmations. Retire: the activation acknowledgements. */
  envelopes: Uint8Array[];
  oldKeyRecord: Uint8Array;
  epoch: number;
  /** An encoded `ApprovedAuthorisation` (contribute and apply). */
  authorisation?: Uint8Array;
}

/**
 * The steps of a refresh or reshare, as numbered on the wire. A participant's answers:
 * CONTRIBUTE → its round-1 envelope; APPLY → its signed confirmation (the new share stays
 * pending); COMMIT (with the confirmations) → its activation acknowledgement; ABORT → ok (drops
 * pending shares, never an active one); RETIRE (with activation acknowledgements) → ok (the
 * previous epoch may go once the retention time has passed).
 */
export const LifecycleStep = { CONTRIBUTE: 1, APPLY: 2, COMMIT: 3, ABORT: 4, RETIRE: 5 } as const;
export type LifecycleStep = (typeof LifecycleStep)[keyof typeof LifecycleStep];

export interface LinkResult {
  taskId: number;
  body?: 'error' | 'envelope' | 'dkgDone' | 'commitments' | 'ok' | 'audit' | 'reservations' | 'ecdsa';
  error?: TaskError;
  envelope?: Uint8Array;
  dkgDone?: { keyId: string; keyDigest: Uint8Array; keyRecord: Uint8Array };
  commitments?: { envelopes: Uint8Array[] };
  ok?: boolean;
  audit?: AuditReport;
  reservations?: { envelopes: Uint8Array[] };
  /** An ECDSA session step's messages, one per other signer. */
  ecdsa?: { envelopes: Uint8Array[] };
}

export interface LinkDown {
  body?: 'challenge' | 'task';
  challenge?: { nonce: Uint8Array; coordinator: string } | null;
  task?: LinkTask | null;
}

export interface LinkUp {
  hello?: {
    participant: { id: string; signKey: Uint8Array; encKey: Uint8Array };
    signature: Uint8Array;
    metricsUrl: string;
    pid: number;
    keys: string[];
  };
  result?: LinkResult;
}

/** The bytes a participant signs to answer a link challenge. */
export const LINK_DST = 'tessera/v1/link';

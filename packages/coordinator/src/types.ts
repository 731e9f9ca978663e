/**
 * The coordinator's shared vocabulary: the participant handle its services talk through, its
 * typed error, and the shapes of its answers and events.
 */
import {
  TesseraError,
  asErrorCode,
  getSuite,
  groupPublicKey,
  type ErrorCode,
  type KeyRecord,
  type LinkResult,
  type LinkTask,
  type ParticipantPublic,
  type SuiteId,
} from '@tessera/core';

/** A connected participant as the coordinator sees it. */
export interface ParticipantHandle {
  readonly info: ParticipantPublic;
  /** Sends one task body and resolves with the participant's result (or rejects on transport failure). */
  call(task: Omit<LinkTask, 'taskId'>, timeoutMs: number): Promise<LinkResult>;
  readonly connectedSince: number;
  readonly metricsUrl?: string;
  readonly pid?: number;
  /** A device (linked through the device gateway): it co-signs offline, never in online sessions. */
  readonly device?: boolean;
}

/** An error of the coordinator with a stable code and culprits. */
export class CoordinatorError extends TesseraError {
  /** `code` may come from a participant's answer: one that is not an {@link ErrorCode} becomes INTERNAL. */
  constructor(code: ErrorCode | string, message: string, culprits: readonly string[] = []) {
    super(asErrorCode(code), message, { culprits });
  }
}

export interface KeyInfo {
  keyId: string;
  suite: SuiteId;
  threshold: number;
  participants: string[];
  publicKey: Uint8Array;
  epoch: number;
  createdAt: number;
}

export interface SignResult {
  keyId: string;
  signature: Uint8Array;
  signers: string[];
  publicKey: Uint8Array;
  requestId: Uint8Array;
}

export type CoordinatorEvent =
  | { type: 'sign'; keyId: string; ok: boolean; cause?: string; ms: number; attempts: number }
  | { type: 'keygen'; ok: boolean; ms: number; cause?: string }
  | { type: 'lifecycle'; kind: 'refresh' | 'reshare'; keyId: string; ok: boolean; ms: number; cause?: string }
  | { type: 'culprit'; participant: string; code: string }
  | { type: 'pool'; participant: string; ok: boolean; cause?: string; message?: string }
  /** The pairwise setup of an ECDSA key's roster (after a reshare; run again by the next signature if it failed). */
  | { type: 'ecdsa-setup'; keyId: string; ok: boolean; cause?: string }
  | {
      type: 'package';
      keyId: string;
      ok: boolean;
      cause?: string;
      ms: number;
      cached: boolean;
      createdAt?: number;
      /** The device that signed it ('' when the package could not even be decoded). */
      device?: string;
      packageId?: string;
    }
  | { type: 'reserve'; device: string; keyId: string; slots: number }
  | { type: 'enrol'; device: string };

/** The coordinator's answer for a completed offline package. */
export interface PackageResult {
  packageId: string;
  keyId: string;
  message: Uint8Array;
  signature: Uint8Array;
  publicKey: Uint8Array;
  signers: string[];
  alreadyCompleted: boolean;
}

/** The public summary of a key record. */
export function keyInfo(rec: KeyRecord): KeyInfo {
  return {
    keyId: rec.keyId,
    suite: rec.key.suite.id,
    threshold: rec.key.threshold,
    participants: rec.key.roster.map((r) => r.id).sort(),
    publicKey: groupPublicKey(rec.key),
    epoch: rec.epoch,
    createdAt: rec.createdAt,
  };
}

/** A key's summary as the wire carries it (`KeyInfo` of cluster.proto: the suite as its wire id). */
export function keyInfoToWire(k: KeyInfo) {
  return {
    keyId: k.keyId,
    suite: getSuite(k.suite).wireId,
    threshold: k.threshold,
    participants: k.participants,
    publicKey: k.publicKey,
    epoch: k.epoch,
    createdAt: k.createdAt,
  };
}

/** The stable code of an error, or INTERNAL. */
export function codeOf(e: unknown): string {
  const c = (e as { code?: unknown })?.code;
  return typeof c === 'string' ? c : 'INTERNAL';
}

/**
 * Error mapping between Tessera's error vocabulary and gRPC statuses.
 *
 * Server side, {@link toServiceError} turns anything a handler threw into a gRPC error: the
 * status follows the table in cluster.proto's header comment, and the trailer
 * `grpc-status-details-bin` carries gRPC's standard error model, a `google.rpc.Status` with one
 * `google.rpc.ErrorInfo` (reason = the stable Tessera `code`, domain `tessera.v1`, metadata
 * `culprits`; core's wire/status.ts). Any gRPC client's standard error-details support reads it.
 *
 * `tessera-error-bin` (the JSON object `{"code", "message", "culprits"}`, Tessera v0.1's own
 * trailer) is still written beside it so that v0.1 peers keep reading codes during a rolling
 * upgrade, and read when a peer sends nothing else. It goes in the next release.
 *
 * Client side, {@link fromServiceError} turns a failed call into a {@link RemoteError} with the
 * same code, status and culprits the server sent.
 *
 * Secrets: an error that is not a Tessera error (no string `code` + `culprits` array) is
 * reported as INTERNAL with the message 'internal error'; its own message never leaves the
 * process. Tessera errors' messages do cross the wire: by core's contract they name
 * participants, sessions and lengths, never secret material.
 */
import * as grpc from '@grpc/grpc-js';
import {
  TesseraError,
  asErrorCode,
  decodeErrorStatus,
  encodeErrorStatus,
  isTesseraError,
  type ErrorCode,
} from '@tessera/core';

/** The standard trailer carrying a serialised `google.rpc.Status`. */
export const STATUS_DETAILS_KEY = 'grpc-status-details-bin';
/** v0.1's trailer, the JSON-encoded ErrorDetail (read and written for one more release). */
export const ERROR_DETAIL_KEY = 'tessera-error-bin';

/** Daemon-side codes that are not in core's ErrorCode. */
export const RuntimeErrorCode = {
  /** A signer's policy refused the request. */
  POLICY_DENIED: 'POLICY_DENIED',
  /** Unknown key, participant or other named object. */
  NOT_FOUND: 'NOT_FOUND',
  /** A dependency (participant, peer, store) is not reachable now; retrying may help. */
  UNAVAILABLE: 'UNAVAILABLE',
  /** The caller exceeded a rate limit. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** The server is at capacity (queue full, too many sessions). */
  OVERLOADED: 'OVERLOADED',
  /** The peer could not be authenticated. */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** Configuration is missing or invalid (startup only). */
  CONFIG: 'CONFIG',
  /** The operation's deadline passed. */
  DEADLINE: 'DEADLINE',
} as const;
export type RuntimeErrorCode = (typeof RuntimeErrorCode)[keyof typeof RuntimeErrorCode];

const S = grpc.status;

/** Tessera code → gRPC status (cluster.proto header comment). Codes not listed map to INTERNAL. */
export const CODE_TO_STATUS: Readonly<Record<string, grpc.status>> = Object.freeze({
  INVALID_ARGUMENT: S.INVALID_ARGUMENT,
  DECODE: S.INVALID_ARGUMENT,
  WRONG_SUITE: S.INVALID_ARGUMENT,
  UNSUPPORTED_VERSION: S.INVALID_ARGUMENT,
  POLICY_DENIED: S.PERMISSION_DENIED,
  NOT_FOUND: S.NOT_FOUND,
  NO_QUORUM: S.UNAVAILABLE,
  UNAVAILABLE: S.UNAVAILABLE,
  RATE_LIMITED: S.RESOURCE_EXHAUSTED,
  OVERLOADED: S.RESOURCE_EXHAUSTED,
  RESOURCE_EXHAUSTED: S.RESOURCE_EXHAUSTED,
  RESERVATION_USED: S.FAILED_PRECONDITION,
  RESERVATION_EXPIRED: S.FAILED_PRECONDITION,
  RESERVATION_UNKNOWN: S.FAILED_PRECONDITION,
  RESERVATION_INVALID: S.FAILED_PRECONDITION,
  NO_ALLOWANCE: S.FAILED_PRECONDITION,
  OVER_ALLOWANCE: S.FAILED_PRECONDITION,
  PAYMENT_MISMATCH: S.INVALID_ARGUMENT,
  BAD_SIGNATURE: S.ABORTED,
  BAD_SIGNATURE_SHARE: S.ABORTED,
  BAD_MULTIPLICATION: S.ABORTED,
  BAD_COMMITMENT: S.ABORTED,
  BAD_SHARE: S.ABORTED,
  BAD_PROOF_OF_KNOWLEDGE: S.ABORTED,
  EQUIVOCATION: S.ABORTED,
  CONFIRMATION_MISMATCH: S.ABORTED,
  UNEXPECTED_MESSAGE: S.ABORTED,
  NONCE_REUSED: S.ABORTED,
  DECRYPT: S.ABORTED,
  UNAUTHENTICATED: S.UNAUTHENTICATED,
  DEADLINE: S.DEADLINE_EXCEEDED,
});

/**
 * gRPC status → Tessera code, used by {@link fromServiceError} when a failed call carries no
 * `tessera-error-bin` (a non-Tessera server, a transport failure, a deadline hit client-side).
 */
const STATUS_TO_CODE: Readonly<Partial<Record<grpc.status, string>>> = Object.freeze({
  [S.CANCELLED]: 'CANCELLED',
  [S.INVALID_ARGUMENT]: 'INVALID_ARGUMENT',
  [S.DEADLINE_EXCEEDED]: 'DEADLINE',
  [S.NOT_FOUND]: 'NOT_FOUND',
  [S.PERMISSION_DENIED]: 'POLICY_DENIED',
  [S.RESOURCE_EXHAUSTED]: 'OVERLOADED',
  [S.ABORTED]: 'ABORTED',
  [S.UNIMPLEMENTED]: 'UNIMPLEMENTED',
  [S.UNAVAILABLE]: 'UNAVAILABLE',
  [S.UNAUTHENTICATED]: 'UNAUTHENTICATED',
  [S.FAILED_PRECONDITION]: 'FAILED_PRECONDITION',
});

/** Daemon-side error with a stable code (see {@link RuntimeErrorCode}) and optional culprits. */
export class TesseraRuntimeError extends TesseraError {
  constructor(code: ErrorCode | string, message: string, opts: { culprits?: readonly string[]; cause?: unknown } = {}) {
    super(asErrorCode(code), message, opts);
  }
}

/** The error a client sees for a failed rpc: Tessera `code`, gRPC `status` and `culprits`. */
export class RemoteError extends TesseraError {
  readonly status: number;
  constructor(
    code: ErrorCode | string,
    message: string,
    status: number,
    culprits: readonly string[] = [],
    opts: { cause?: unknown } = {},
  ) {
    super(asErrorCode(code), message, { culprits, ...opts });
    this.status = status;
  }
  override toJSON(): { name: string; code: ErrorCode; status: number; message: string; culprits: readonly string[] } {
    return { ...super.toJSON(), status: this.status };
  }
}

interface Detail {
  code: string;
  message: string;
  culprits: string[];
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/** The code/message/culprits a thrown value is reported with, and its status. */
function describe(e: unknown): { detail: Detail; status: grpc.status } {
  if (e instanceof RemoteError) {
    // Relaying a downstream failure: keep its code and, for codes outside the table, its status.
    const status = CODE_TO_STATUS[e.code] ?? (e.status === S.OK ? S.INTERNAL : (e.status as grpc.status));
    return { detail: { code: e.code, message: oneLine(e.message), culprits: [...e.culprits] }, status };
  }
  if (e instanceof TesseraRuntimeError || isTesseraError(e)) {
    const err = e as { code: string; message?: unknown; culprits: readonly unknown[] };
    const culprits = err.culprits.filter((c): c is string => typeof c === 'string');
    const message = typeof err.message === 'string' ? oneLine(err.message) : err.code;
    return { detail: { code: err.code, message, culprits }, status: CODE_TO_STATUS[err.code] ?? S.INTERNAL };
  }
  return { detail: { code: 'INTERNAL', message: 'internal error', culprits: [] }, status: S.INTERNAL };
}

/**
 * Maps any thrown value to the error object grpc-js accepts in a handler's callback:
 * `{ code, details, metadata }` (an Error). The metadata carries `grpc-status-details-bin`
 * (and v0.1's `tessera-error-bin`).
 */
export function toServiceError(e: unknown): grpc.ServiceError {
  const { detail, status } = describe(e);
  const metadata = new grpc.Metadata();
  metadata.set(STATUS_DETAILS_KEY, Buffer.from(encodeErrorStatus({ status, ...detail })));
  metadata.set(ERROR_DETAIL_KEY, Buffer.from(JSON.stringify(detail), 'utf8'));
  const err = new Error(`${status} ${S[status]}: ${detail.message}`) as grpc.ServiceError;
  err.code = status;
  err.details = detail.message;
  err.metadata = metadata;
  return err;
}

function parseStatus(buf: unknown): Detail | undefined {
  if (!Buffer.isBuffer(buf)) return undefined;
  const s = decodeErrorStatus(buf);
  return s && { code: s.code, message: s.message, culprits: s.culprits };
}

function parseDetail(buf: unknown): Detail | undefined {
  if (!Buffer.isBuffer(buf)) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.code !== 'string' || o.code === '') return undefined;
  const culprits = Array.isArray(o.culprits) ? o.culprits.filter((c): c is string => typeof c === 'string') : [];
  return { code: o.code, message: typeof o.message === 'string' ? o.message : '', culprits };
}

/**
 * Turns a failed call's error into a {@link RemoteError}. Reads `grpc-status-details-bin` (or, from
 * a v0.1 peer, `tessera-error-bin`) when present;
 * otherwise the code is derived from the gRPC status (UNAVAILABLE, DEADLINE, NOT_FOUND, ...;
 * INTERNAL for anything unmapped). A RemoteError is returned as is.
 */
export function fromServiceError(e: unknown): RemoteError {
  if (e instanceof RemoteError) return e;
  if (typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'number') {
    const se = e as Partial<grpc.ServiceError>;
    const status = se.code as number;
    const details = typeof se.details === 'string' ? se.details : '';
    const meta = se.metadata instanceof grpc.Metadata ? se.metadata : undefined;
    const detail = parseStatus(meta?.get(STATUS_DETAILS_KEY)[0]) ?? parseDetail(meta?.get(ERROR_DETAIL_KEY)[0]);
    if (detail !== undefined) {
      return new RemoteError(detail.code, detail.message || details, status, detail.culprits);
    }
    const code = STATUS_TO_CODE[status as grpc.status] ?? 'INTERNAL';
    return new RemoteError(code, details || (S[status] ?? `status ${status}`), status);
  }
  // Not a gRPC error (a local bug, a serialization failure): report it without its message.
  return new RemoteError('INTERNAL', 'internal error', S.INTERNAL, [], { cause: e });
}

/**
 * Wraps an async unary handler: resolves into the callback, or calls back
 * `toServiceError(e)` when it throws. `opts.onError` sees every thrown value first (for
 * logging: unknown errors are otherwise invisible, since their message never leaves).
 */
export function handleUnary<Req, Res>(
  fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>,
  opts: { onError?: (e: unknown, call: grpc.ServerUnaryCall<Req, Res>) => void } = {},
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request, call))
      .then(
        (res) => callback(null, res),
        (e: unknown) => {
          try {
            opts.onError?.(e, call);
          } catch {
            // a failing logger must not keep the caller waiting
          }
          callback(toServiceError(e));
        },
      );
  };
}

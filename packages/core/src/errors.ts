/**
 * Tessera's error vocabulary. Every error that crosses a package boundary is a
 * {@link TesseraError} with a stable `code` (part of the API: tests and operators' scripts match
 * on it, never on the message) and, where a participant misbehaved, the `culprits` it names.
 *
 * Messages never contain secret material: they name participants, sessions and lengths, not
 * shares, nonces or keys.
 */

/** Stable error codes. Adding a code is fine; renaming or reusing one is a breaking change. */
export const ErrorCode = {
  /** Input failed validation (wrong type, length, range). Nothing was changed. */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** The named key, session or record does not exist here. */
  NOT_FOUND: 'NOT_FOUND',
  /** Bytes could not be decoded as the expected package. */
  DECODE: 'DECODE',
  /** A package carries a format version this build does not speak. */
  UNSUPPORTED_VERSION: 'UNSUPPORTED_VERSION',
  /** A package belongs to another ciphersuite than the one expected. */
  WRONG_SUITE: 'WRONG_SUITE',
  /** A signed envelope's signature does not verify, or its sender is not who it must be. */
  BAD_SIGNATURE: 'BAD_SIGNATURE',
  /** A message belongs to another session, round or recipient, or was already seen. */
  UNEXPECTED_MESSAGE: 'UNEXPECTED_MESSAGE',
  /** A DKG round-1 proof of knowledge does not verify. */
  BAD_PROOF_OF_KNOWLEDGE: 'BAD_PROOF_OF_KNOWLEDGE',
  /** A secret share (DKG round 2, refresh/reshare delta) does not match its sender's commitment. */
  BAD_SHARE: 'BAD_SHARE',
  /** A sealed payload could not be opened (wrong recipient, tampered ciphertext). */
  DECRYPT: 'DECRYPT',
  /** Participants saw different broadcasts (echo mismatch): a sender equivocated. */
  EQUIVOCATION: 'EQUIVOCATION',
  /**
   * The DKG confirmation round disagrees: participants derived different keys; or an ECDSA setup
   * word says a pair exchanged other messages than the receiver's end did (two runs of a session).
   */
  CONFIRMATION_MISMATCH: 'CONFIRMATION_MISMATCH',
  /** A signature share does not verify against its sender's verifying share. */
  BAD_SIGNATURE_SHARE: 'BAD_SIGNATURE_SHARE',
  /**
   * Threshold ECDSA: a two-party multiplication with the named counterparty failed its check (OT
   * extension consistency, vector-OLE check, or the public-value equations). The counterparty
   * cheated; the participant that saw it signs with it no more until the pair is set up again.
   */
  BAD_MULTIPLICATION: 'BAD_MULTIPLICATION',
  /** A value opened does not match the commitment its sender made to it earlier in the session. */
  BAD_COMMITMENT: 'BAD_COMMITMENT',
  /** Not enough honest, available participants remain for a quorum. */
  NO_QUORUM: 'NO_QUORUM',
  /** A state machine was driven out of order (a finished round's secret used again). */
  INVALID_STATE: 'INVALID_STATE',
  /** The aggregated signature failed the plain single-party verifier. */
  SIGNATURE_INVALID: 'SIGNATURE_INVALID',
  /** A reservation (a co-signer's nonce promised to a device) was already used by another package. */
  RESERVATION_USED: 'RESERVATION_USED',
  /** A reservation is past its expiry: the co-signer no longer completes packages on it. */
  RESERVATION_EXPIRED: 'RESERVATION_EXPIRED',
  /** The co-signer has no such reservation (never issued, discarded, or for another device). */
  RESERVATION_UNKNOWN: 'RESERVATION_UNKNOWN',
  /** A reservation in a package is not signed by the co-signer it names, or does not fit the package. */
  RESERVATION_INVALID: 'RESERVATION_INVALID',
  /** The device has no unused reservation left for the key (its offline allowance is spent). */
  NO_ALLOWANCE: 'NO_ALLOWANCE',
  /**
   * A payment past its allowance: above one payment's most or the total cap (counted over every
   * package of the allowance), in an asset it does not list, or no payment where caps are set.
   */
  OVER_ALLOWANCE: 'OVER_ALLOWANCE',
  /** A package's payment cannot be read, or its message is not what the transaction signs. */
  PAYMENT_MISMATCH: 'PAYMENT_MISMATCH',
  /** A device's event journal was altered on disk: an entry edited, removed, moved or out of order. */
  JOURNAL_TAMPERED: 'JOURNAL_TAMPERED',
  /**
   * A participant's own policy refused: an unknown requester, a key not granted, a roster with
   * participants it has not pinned, a lifecycle operation without enough operator approvals.
   */
  POLICY_DENIED: 'POLICY_DENIED',

  // ---- requests and capacity (daemons, gateway, CLI) ----
  /** The caller is not who it must be (unknown token, device or certificate). */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** A device call names another cluster than the one it reached. */
  WRONG_CLUSTER: 'WRONG_CLUSTER',
  /** A participant, peer or store is not reachable now; retrying may help. */
  UNAVAILABLE: 'UNAVAILABLE',
  /** The caller exceeded a rate limit; retry later. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** A bound was reached (requests in flight, reservations, remembered calls); retry later. */
  RESOURCE_EXHAUSTED: 'RESOURCE_EXHAUSTED',
  /** The server is at capacity. */
  OVERLOADED: 'OVERLOADED',
  /** A request body is larger than accepted. */
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** The operation is not offered here (e.g. a device asked to sign online). */
  NOT_SUPPORTED: 'NOT_SUPPORTED',
  /** The operation's deadline passed. */
  DEADLINE: 'DEADLINE',
  /** A gRPC status without a Tessera code: the remote aborted, has no such method, or refused a precondition. */
  ABORTED: 'ABORTED',
  UNIMPLEMENTED: 'UNIMPLEMENTED',
  FAILED_PRECONDITION: 'FAILED_PRECONDITION',
  /** The operation was cancelled before it finished. */
  CANCELLED: 'CANCELLED',
  /** A fault inside the process; its message says nothing more (no internals leak). */
  INTERNAL: 'INTERNAL',

  // ---- signer policy (reasons of POLICY_DENIED, kept for logs) ----
  UNKNOWN_REQUESTER: 'UNKNOWN_REQUESTER',
  KEY_NOT_ALLOWED: 'KEY_NOT_ALLOWED',
  EXPIRED: 'EXPIRED',

  // ---- storage (packages/store) ----
  /** No key-encryption key was given. */
  KEK_MISSING: 'KEK_MISSING',
  /** The KEK is malformed. */
  KEK_INVALID: 'KEK_INVALID',
  /** The KEK does not open this store. */
  KEK_MISMATCH: 'KEK_MISMATCH',
  /** The HSM holding the KEK cannot be used now: wrong PIN, no such token or key, token removed. */
  KEK_UNAVAILABLE: 'KEK_UNAVAILABLE',
  /** A record does not open or decode: the store is damaged. */
  STORE_CORRUPT: 'STORE_CORRUPT',
  /** The store cannot be read or written now (closed, disk full, refused after a failed write). */
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE',
  /** The vault already holds a different share for that key and epoch. */
  SHARE_EXISTS: 'SHARE_EXISTS',
  /** A record that is written once exists already (a batch insert); nothing was written. */
  KEY_EXISTS: 'KEY_EXISTS',
  /** No such nonce in the ledger (never made, or discarded). */
  NONCE_UNKNOWN: 'NONCE_UNKNOWN',
  /** The nonce was consumed by another request. */
  NONCE_REUSED: 'NONCE_REUSED',
  /** A nonce with that id exists already. */
  NONCE_EXISTS: 'NONCE_EXISTS',

  // ---- device SDK and CLI ----
  /** The device has no identity yet (`init` first). */
  NOT_INITIALISED: 'NOT_INITIALISED',
  /** The device store is open in another process. */
  STORE_LOCKED: 'STORE_LOCKED',
  /** The device store's key does not open it. */
  STORE_KEY: 'STORE_KEY',
  /** A backup's password is wrong. */
  BACKUP_PASSWORD: 'BACKUP_PASSWORD',
  /** A backup is damaged or not a backup. */
  BACKUP_CORRUPT: 'BACKUP_CORRUPT',
  /** Recovery pieces are mixed, damaged or too few. */
  RECOVERY_PIECES: 'RECOVERY_PIECES',
  /** A backup password below the floor (override with allowWeakPassword). */
  WEAK_PASSWORD: 'WEAK_PASSWORD',
  /** A configuration file or directory is missing or malformed. */
  CONFIG: 'CONFIG',
  /** The command line is malformed (CLI exit code 2). */
  USAGE: 'USAGE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class of every Tessera error. `code` is stable API; `culprits` names who misbehaved. */
export class TesseraError extends Error {
  readonly code: ErrorCode;
  /** Participant identifiers (or other stable ids) blamed for the failure, if any. */
  readonly culprits: readonly string[];
  constructor(code: ErrorCode, message: string, opts: { culprits?: readonly string[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.culprits = Object.freeze([...(opts.culprits ?? [])]);
    this.name = new.target.name;
  }
  /** A plain-data view for logs and wire errors (never includes `cause`, which may be foreign). */
  toJSON(): { name: string; code: ErrorCode; message: string; culprits: readonly string[] } {
    return { name: this.name, code: this.code, message: this.message, culprits: this.culprits };
  }
}

/** Bad argument supplied by the caller; nothing was changed. */
export class InvalidArgumentError extends TesseraError {
  constructor(message: string) {
    super(ErrorCode.INVALID_ARGUMENT, message);
  }
}

/** Bytes that are not a valid package of the expected type. */
export class DecodeError extends TesseraError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(ErrorCode.DECODE, message, opts);
  }
}

export class UnsupportedVersionError extends TesseraError {
  constructor(got: number, want: number) {
    super(ErrorCode.UNSUPPORTED_VERSION, `unsupported format version ${got} (this build speaks ${want})`);
  }
}

export class WrongSuiteError extends TesseraError {
  constructor(got: string, want: string) {
    super(ErrorCode.WRONG_SUITE, `package is for suite ${got}, expected ${want}`);
  }
}

/** A protocol violation attributable to specific participants. */
export class ProtocolError extends TesseraError {
  constructor(code: ErrorCode, message: string, culprits: readonly string[] = [], cause?: unknown) {
    super(code, message, { culprits, cause });
  }
}

/** A state machine misuse by the local caller (not by a remote participant). */
export class InvalidStateError extends TesseraError {
  constructor(message: string) {
    super(ErrorCode.INVALID_STATE, message);
  }
}

/** `code` if it is one of {@link ErrorCode}, else INTERNAL (a code received from elsewhere). */
export function asErrorCode(code: unknown): ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ErrorCode, code) ? (code as ErrorCode) : ErrorCode.INTERNAL;
}

/** True if `e` is a TesseraError (works across duplicated module instances: checks shape). */
export function isTesseraError(e: unknown): e is TesseraError {
  return (
    e instanceof TesseraError ||
    (typeof e === 'object' &&
      e !== null &&
      typeof (e as { code?: unknown }).code === 'string' &&
      Array.isArray((e as { culprits?: unknown }).culprits))
  );
}

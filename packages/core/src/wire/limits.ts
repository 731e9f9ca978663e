/**
 * The wire contract's format version, size limits and name patterns. No imports: the full codec
 * (./codec.ts, ./packages.ts) and the merchant's small package check (../package-check.ts) read
 * the same values from here.
 */

/** The format version this build writes and the only one it reads. */
export const FORMAT_VERSION = 1;

/** Largest package the core will decode (a DKG round 2 at n=255 stays well below). */
export const MAX_PACKAGE_BYTES = 1 << 20;

/** Largest message a signing request or an offline package may carry. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/** A key id: the first 16 hex digits of a hash (see `keyIdFor`). */
export const KEY_ID_PATTERN = /^[0-9a-f]{16}$/;

/** A participant id: 1-64 characters of A-Z a-z 0-9 . _ -, starting alphanumeric. */
export const PARTICIPANT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Most bytes of a package's device claims (a DEVICE_CLAIMS envelope is ~150). */
export const MAX_CLAIMS_BYTES = 512;

/** Bytes of a reservation's nonce handle. */
export const RESERVATION_NONCE_ID_BYTES = 12;

/** Most co-signers an offline package may name (a quorum of 255 participants at most). */
export const MAX_COSIGNERS = 254;

/** An X-Wing public key (ML-KEM-768 + X25519), one of the two HPKE recipient key kinds. */
export const XWING_PUBLIC_KEY_BYTES = 1216;

/** Bytes of an Ed25519 identity signature (envelopes, reservations). */
export const IDENTITY_SIGNATURE_BYTES = 64;

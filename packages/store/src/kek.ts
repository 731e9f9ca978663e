/**
 * Key-encryption keys (KEKs). The KEK only ever wraps the store's data key; it never touches
 * stored values directly. It is an interface so that an HSM or cloud KMS can provide it later.
 */
import { readFileSync } from 'node:fs';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { openEnvelope, sealEnvelope } from './aead.js';
import { utf8 } from './bytes.js';
import { StoreError } from './errors.js';

/**
 * A key-encryption key. `wrap`/`unwrap` may be synchronous (a local key) or return a promise (a
 * KMS round trip); the store awaits either. `unwrap` must reject bytes it did not wrap with the
 * same `aad` (authenticated wrapping), and neither method may put key material in errors.
 */
export interface KeyEncryptionKey {
  /** Non-secret identifier, recorded next to the wrapped data key and shown in errors. */
  readonly id: string;
  /** Encrypt and authenticate `plain`, binding `aad`. */
  wrap(plain: Uint8Array, aad: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /** Reverse {@link wrap}; throws if `wrapped` was not produced by this KEK with this `aad`. */
  unwrap(wrapped: Uint8Array, aad: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

/** A KEK held in process memory (the local default). Its methods are synchronous. */
export interface LocalKek extends KeyEncryptionKey {
  wrap(plain: Uint8Array, aad: Uint8Array): Uint8Array;
  unwrap(wrapped: Uint8Array, aad: Uint8Array): Uint8Array;
}

/** Length of a local KEK in bytes. */
export const KEK_LENGTH = 32;

/**
 * A non-secret fingerprint of a local KEK: `local:` + 16 hex chars of a domain-separated SHA-256.
 * Lets operators tell KEKs apart in errors without revealing them.
 */
export function kekFingerprint(bytes: Uint8Array): string {
  const input = concatBytes(utf8('tessera/store/kek-id/v1\0'), bytes);
  const h = sha256(input);
  input.fill(0);
  return `local:${bytesToHex(h.subarray(0, 8))}`;
}

/**
 * A local KEK from 32 raw bytes: XChaCha20-Poly1305 wrapping with a random 24-byte nonce. The
 * bytes are copied (the caller may wipe its own). `id` defaults to {@link kekFingerprint}.
 */
export function kekFromBytes(bytes: Uint8Array, id?: string): LocalKek {
  if (!(bytes instanceof Uint8Array) || bytes.length !== KEK_LENGTH) {
    const got = bytes instanceof Uint8Array ? `${bytes.length} bytes` : typeof bytes;
    throw new StoreError('KEK_INVALID', `key-encryption key: expected ${KEK_LENGTH} bytes, got ${got}`);
  }
  const key = new Uint8Array(bytes);
  const kekId = id ?? kekFingerprint(key);
  return {
    id: kekId,
    wrap: (plain, aad) => sealEnvelope(key, plain, aad),
    unwrap: (wrapped, aad) => {
      const plain = openEnvelope(key, wrapped, aad);
      if (plain === undefined) {
        throw new StoreError('KEK_MISMATCH', `key-encryption key ${kekId} cannot unwrap this value`);
      }
      return plain;
    },
  };
}

/** Where {@link loadKek} reads the KEK from: exactly one of these must be given. */
export interface KekSource {
  /** Path of a file holding 64 hex characters (surrounding whitespace is ignored). */
  file?: string;
  /** Name of an environment variable holding 64 hex characters. */
  env?: string;
  /** The 64 hex characters themselves (tests, tooling). */
  hex?: string;
}

/**
 * Load a local KEK (32 bytes written as 64 hex characters) from a file, an environment variable
 * or a literal. Missing → `KEK_MISSING`, malformed → `KEK_INVALID`; the one-line message names the
 * source and never echoes its content. `environ` defaults to `process.env`.
 */
export function loadKek(source: KekSource, environ: NodeJS.ProcessEnv = process.env): LocalKek {
  const given = (['file', 'env', 'hex'] as const).filter((k) => source[k] !== undefined);
  if (given.length !== 1) {
    const what = given.length === 0 ? 'none given' : `got ${given.join(', ')}`;
    throw new StoreError('KEK_MISSING', `key-encryption key: give exactly one of file, env, hex (${what})`);
  }
  let text: string;
  let label: string;
  if (source.file !== undefined) {
    label = `KEK file ${source.file}`;
    try {
      text = readFileSync(source.file, 'utf8');
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      const why = code === 'ENOENT' ? 'not found' : `cannot be read (${typeof code === 'string' ? code : 'error'})`;
      throw new StoreError('KEK_MISSING', `${label}: ${why}`);
    }
  } else if (source.env !== undefined) {
    label = `KEK environment variable ${source.env}`;
    const v = environ[source.env];
    if (v === undefined || v.trim() === '') throw new StoreError('KEK_MISSING', `${label}: not set`);
    text = v;
  } else {
    label = 'KEK hex';
    text = source.hex ?? '';
  }
  const trimmed = text.trim();
  if (trimmed === '') throw new StoreError('KEK_MISSING', `${label}: empty`);
  if (!/^[0-9a-fA-F]{64}$/.test(trimmed)) {
    throw new StoreError('KEK_INVALID', `${label}: expected 64 hex characters`);
  }
  const bytes = hexToBytes(trimmed.toLowerCase());
  try {
    return kekFromBytes(bytes);
  } finally {
    bytes.fill(0);
  }
}

/** A fresh random KEK as 64 lowercase hex characters (for provisioning a KEK file). */
export function generateKekHex(): string {
  const b = randomBytes(KEK_LENGTH);
  try {
    return bytesToHex(b);
  } finally {
    b.fill(0);
  }
}

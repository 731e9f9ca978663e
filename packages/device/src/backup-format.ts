/**
 * The backup format's synchronous parts (./backup.ts has the layout): its constants and header
 * parsing, the text form, the password floor. The rest of ./backup.ts — encrypting, decrypting,
 * recovery pieces, with the KDFs — is imported on first use.
 */
import { DeviceError } from './errors.js';

export interface BackupOptions {
  /** Password KDF; default `scrypt`. */
  kdf?: 'scrypt' | 'argon2id';
  /** Work factor; default `interactive`. */
  cost?: 'interactive' | 'moderate' | 'test';
  /** Accept a password {@link backupPasswordWeakness} refuses (the caller's explicit choice). */
  allowWeakPassword?: boolean;
}

export type Kdf = NonNullable<BackupOptions['kdf']>;
export type Cost = NonNullable<BackupOptions['cost']>;

export const MAGIC = [0x54, 0x53, 0x42, 0x31] as const; // "TSB1"
export const VERSION = 1;
export const KDF_IDS: Record<Kdf, number> = { scrypt: 1, argon2id: 2 };
export const SALT_LEN = 16;
export const NONCE_LEN = 24;
export const TAG_LEN = 16;
export const KEY_LEN = 32;
export const PARAMS_AT = 6;
export const SALT_AT = PARAMS_AT + 12;
export const NONCE_AT = SALT_AT + SALT_LEN;
export const HEADER_LEN = NONCE_AT + NONCE_LEN; // 58

/**
 * KDF parameters per cost level: scrypt (N, r, p), argon2id (t, m KiB, p). scrypt `interactive`
 * is OWASP's scrypt recommendation (N = 2^17, r = 8, p = 1: 128 MiB); `moderate` doubles the work
 * with p = 2 at the same memory. argon2id `interactive` is OWASP's minimum (m = 19 MiB, t = 2).
 * Before 2^17, scrypt `interactive` was N = 2^15: such backups still decrypt (header parameters).
 */
export const PARAMS: Record<Kdf, Record<Cost, readonly [number, number, number]>> = {
  scrypt: { interactive: [2 ** 17, 8, 1], moderate: [2 ** 17, 8, 2], test: [2 ** 10, 8, 1] },
  argon2id: { interactive: [2, 19456, 1], moderate: [3, 65536, 1], test: [1, 64, 1] },
};

/** Largest KDF memory a blob may ask for (256 MiB; scrypt's defaults need 128 MiB, argon2id's `moderate` 64 MiB). */
export const MAX_KDF_MEMORY = 256 * 1024 * 1024;

export const TEXT_PREFIX = 'tessera-backup:';
export const PIECE_PREFIX = 'tessera-piece:';
export const PIECE_VERSION = 1;
export const SET_ID_LEN = 8;
export const PIECE_HEAD_LEN = 3 + SET_ID_LEN;
export const CHECKSUM_LEN = 4;

/** A parsed, bounds-checked backup header; views into the blob, no copies. */
export interface Header {
  kdf: Kdf;
  params: readonly [number, number, number];
  aad: Uint8Array;
  salt: Uint8Array;
  nonce: Uint8Array;
  sealed: Uint8Array;
}

/** The password floor of {@link backupPasswordWeakness}. */
const MIN_PASSWORD_CHARS = 12;
const MIN_PASSWORD_DISTINCT = 6;
const MIN_PASSWORD_BITS = 50;

/**
 * Why `password` is too weak to protect a backup, or undefined if it passes. The rule, on the
 * NFKC-normalized password counted in Unicode code points: at least 12 characters, at least 6
 * distinct ones, and at least 50 bits by a character-class estimate (length × log2 of the pool,
 * where the pool adds 10 for digits, 26 for a-z, 26 for A-Z and 33 for anything else present).
 * So "aaaaaaaaaaaa" and a 15-digit number fail and a four-word passphrase passes. A floor against
 * the worst passwords, not a strength meter. The reason never quotes the password.
 */
export function backupPasswordWeakness(password: string): string | undefined {
  const chars = [...String(password).normalize('NFKC')];
  if (chars.length < MIN_PASSWORD_CHARS) return `it is shorter than ${MIN_PASSWORD_CHARS} characters`;
  if (new Set(chars).size < MIN_PASSWORD_DISTINCT)
    return `it has fewer than ${MIN_PASSWORD_DISTINCT} distinct characters`;
  const has = (test: (c: string) => boolean) => chars.some(test);
  const pool =
    (has((c) => c >= '0' && c <= '9') ? 10 : 0) +
    (has((c) => c >= 'a' && c <= 'z') ? 26 : 0) +
    (has((c) => c >= 'A' && c <= 'Z') ? 26 : 0) +
    (has((c) => !/^[0-9a-zA-Z]$/.test(c)) ? 33 : 0);
  if (chars.length * Math.log2(pool) < MIN_PASSWORD_BITS)
    return `it is too predictable (under ${MIN_PASSWORD_BITS} bits by a character-class estimate)`;
  return undefined;
}

/** The text form of a backup: "tessera-backup:" + base64url without padding. */
export function backupToText(blob: Uint8Array): string {
  if (!(blob instanceof Uint8Array)) throw new DeviceError('INVALID_ARGUMENT', 'backup must be a Uint8Array');
  return TEXT_PREFIX + toBase64url(blob);
}

/**
 * Parses the text form of a backup (whitespace, e.g. line breaks from copying, is ignored) and
 * checks its header, so a bad paste is reported before anyone types a password.
 */
export function backupFromText(text: string): Uint8Array {
  if (typeof text !== 'string') throw new DeviceError('INVALID_ARGUMENT', 'backup text must be a string');
  const s = text.replace(/\s+/g, '');
  if (!s.startsWith(TEXT_PREFIX))
    throw new DeviceError('BACKUP_CORRUPT', `backup text must start with "${TEXT_PREFIX}"`);
  const blob = fromBase64url(s.slice(TEXT_PREFIX.length));
  if (!blob) throw new DeviceError('BACKUP_CORRUPT', 'backup text is not valid base64url');
  parseHeader(blob);
  return blob;
}

/** Parses and bounds-checks a backup header; throws BACKUP_CORRUPT / UNSUPPORTED_VERSION. */
export function parseHeader(blob: Uint8Array): Header {
  if (blob.length < MAGIC.length || MAGIC.some((b, i) => blob[i] !== b)) {
    throw new DeviceError('BACKUP_CORRUPT', 'not a Tessera backup (bad magic)');
  }
  if (blob.length > 4 && blob[4] !== VERSION) {
    throw new DeviceError('UNSUPPORTED_VERSION', `unsupported backup version ${blob[4]}`);
  }
  if (blob.length < HEADER_LEN + TAG_LEN) throw new DeviceError('BACKUP_CORRUPT', 'backup is truncated');
  const kdf = (Object.keys(KDF_IDS) as Kdf[]).find((name) => KDF_IDS[name] === blob[5]);
  if (!kdf) throw new DeviceError('UNSUPPORTED_VERSION', `unsupported backup KDF ${blob[5]}`);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const params = [view.getUint32(PARAMS_AT), view.getUint32(PARAMS_AT + 4), view.getUint32(PARAMS_AT + 8)] as const;
  if (!kdfParamsOk(kdf, params)) throw new DeviceError('BACKUP_CORRUPT', 'backup has out-of-range KDF parameters');
  return {
    kdf,
    params,
    aad: blob.subarray(0, HEADER_LEN),
    salt: blob.subarray(SALT_AT, NONCE_AT),
    nonce: blob.subarray(NONCE_AT, HEADER_LEN),
    sealed: blob.subarray(HEADER_LEN),
  };
}

/** Whether KDF parameters are sane and within the memory budget, checked before any KDF work. */
export function kdfParamsOk(kdf: Kdf, [a, b, p]: readonly [number, number, number]): boolean {
  if (p < 1 || p > 16) return false;
  if (kdf === 'scrypt') {
    const [N, r] = [a, b];
    const powerOfTwo = N >= 2 && (N & (N - 1)) === 0;
    return powerOfTwo && N >= 2 ** 10 && r >= 1 && r <= 32 && 128 * r * (N + p + 1) <= MAX_KDF_MEMORY;
  }
  const [t, m] = [a, b];
  return t >= 1 && t <= 10 && m >= 8 * p && m * 1024 <= MAX_KDF_MEMORY;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64_INDEX = new Map([...B64].map((c, i) => [c, i]));

/** base64url (RFC 4648 §5) without padding. */
export function toBase64url(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let j = 0; j < chars; j++) out += B64[(n >> (18 - 6 * j)) & 63];
  }
  return out;
}

/** Strict inverse of toBase64url: no padding, no foreign characters, no non-zero spare bits. */
export function fromBase64url(s: string): Uint8Array | undefined {
  if (s.length % 4 === 1) return undefined;
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let j = 0;
  for (const c of s) {
    const v = B64_INDEX.get(c);
    if (v === undefined) return undefined;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = (acc >> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  return acc === 0 ? out : undefined;
}

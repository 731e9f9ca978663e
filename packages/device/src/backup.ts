/**
 * Encrypted backups of a device's secret state, and optional k-of-m recovery pieces.
 *
 * Backup blob (all integers big-endian):
 *
 *   offset  size  field
 *        0     4  magic "TSB1"
 *        4     1  format version (1)
 *        5     1  KDF id: 1 = scrypt, 2 = argon2id
 *        6    12  three u32 KDF parameters: scrypt (N, r, p); argon2id (t, m in KiB, p)
 *       18    16  salt
 *       34    24  XChaCha20-Poly1305 nonce
 *       58     …  ciphertext || 16-byte tag; the 58 header bytes are the AAD
 *
 * The header carries everything decryption needs, so `decryptBackup` takes no options (a backup
 * made under older, weaker defaults decrypts with its own parameters). Its KDF parameters are
 * checked against fixed bounds before any work is done, so a crafted blob cannot make a device
 * allocate gigabytes or spin for minutes.
 *
 * `encryptBackup` refuses a weak password (WEAK_PASSWORD, see {@link backupPasswordWeakness})
 * unless the caller passes `allowWeakPassword: true`.
 *
 * Recovery piece (text "tessera-piece:" + base64url, no padding):
 *
 *   [version (1), k, m, set id (8 random bytes), Shamir share (blob length + 1), checksum (4)]
 *
 * The set id tells pieces of different splits apart; the checksum (first 4 bytes of SHA-256 over
 * the preceding bytes) catches a mistyped or damaged piece and names it, instead of silently
 * combining into garbage. Every future piece version must keep that trailing checksum, so that
 * an intact piece of a newer format is reported as UNSUPPORTED_VERSION and a damaged one as such.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { DeviceError } from './errors.js';

export { DeviceError } from './errors.js';

/** How the password is stretched. `test` uses tiny parameters and must only be used in tests. */
export interface BackupOptions {
  /** Password KDF; default `scrypt`. */
  kdf?: 'scrypt' | 'argon2id';
  /** Work factor; default `interactive`. */
  cost?: 'interactive' | 'moderate' | 'test';
  /** Accept a password {@link backupPasswordWeakness} refuses (the caller's explicit choice). */
  allowWeakPassword?: boolean;
}

type Kdf = NonNullable<BackupOptions['kdf']>;
type Cost = NonNullable<BackupOptions['cost']>;

const MAGIC = [0x54, 0x53, 0x42, 0x31] as const; // "TSB1"
const VERSION = 1;
const KDF_IDS: Record<Kdf, number> = { scrypt: 1, argon2id: 2 };
const SALT_LEN = 16;
const NONCE_LEN = 24;
const TAG_LEN = 16;
const KEY_LEN = 32;
const PARAMS_AT = 6;
const SALT_AT = PARAMS_AT + 12;
const NONCE_AT = SALT_AT + SALT_LEN;
const HEADER_LEN = NONCE_AT + NONCE_LEN; // 58

/**
 * KDF parameters per cost level: scrypt (N, r, p), argon2id (t, m KiB, p). scrypt `interactive`
 * is OWASP's scrypt recommendation (N = 2^17, r = 8, p = 1: 128 MiB); `moderate` doubles the work
 * with p = 2 at the same memory. argon2id `interactive` is OWASP's minimum (m = 19 MiB, t = 2).
 * Before 2^17, scrypt `interactive` was N = 2^15: such backups still decrypt (header parameters).
 */
const PARAMS: Record<Kdf, Record<Cost, readonly [number, number, number]>> = {
  scrypt: { interactive: [2 ** 17, 8, 1], moderate: [2 ** 17, 8, 2], test: [2 ** 10, 8, 1] },
  argon2id: { interactive: [2, 19456, 1], moderate: [3, 65536, 1], test: [1, 64, 1] },
};

/** Largest KDF memory a blob may ask for (256 MiB; scrypt's defaults need 128 MiB, argon2id's `moderate` 64 MiB). */
const MAX_KDF_MEMORY = 256 * 1024 * 1024;

const TEXT_PREFIX = 'tessera-backup:';
const PIECE_PREFIX = 'tessera-piece:';
const PIECE_VERSION = 1;
const SET_ID_LEN = 8;
const PIECE_HEAD_LEN = 3 + SET_ID_LEN;
const CHECKSUM_LEN = 4;

/** A parsed, bounds-checked backup header; views into the blob, no copies. */
interface Header {
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

/**
 * Encrypts `secret` (arbitrary bytes) under `password`. The password is NFKC-normalized and UTF-8
 * encoded, so the same password typed on different keyboards derives the same key. A weak
 * password ({@link backupPasswordWeakness}) is refused with WEAK_PASSWORD unless
 * `opts.allowWeakPassword` is true.
 */
export async function encryptBackup(
  secret: Uint8Array,
  password: string,
  opts: BackupOptions = {},
): Promise<Uint8Array> {
  if (!(secret instanceof Uint8Array)) throw new DeviceError('INVALID_ARGUMENT', 'secret must be a Uint8Array');
  if (typeof password !== 'string' || password.length === 0)
    throw new DeviceError('INVALID_ARGUMENT', 'password must be a non-empty string');
  const kdf = opts.kdf ?? 'scrypt';
  const cost = opts.cost ?? 'interactive';
  if (!Object.hasOwn(PARAMS, kdf)) throw new DeviceError('INVALID_ARGUMENT', `unknown kdf ${String(kdf)}`);
  if (!Object.hasOwn(PARAMS[kdf], cost)) throw new DeviceError('INVALID_ARGUMENT', `unknown cost ${String(cost)}`);
  const params = PARAMS[kdf][cost];
  if (opts.allowWeakPassword !== true) {
    const why = backupPasswordWeakness(password);
    if (why)
      throw new DeviceError(
        'WEAK_PASSWORD',
        `the backup password is too weak: ${why}; choose a longer passphrase (or pass allowWeakPassword: true)`,
      );
  }

  const blob = new Uint8Array(HEADER_LEN + secret.length + TAG_LEN);
  blob.set(MAGIC, 0);
  blob[4] = VERSION;
  blob[5] = KDF_IDS[kdf];
  const view = new DataView(blob.buffer);
  params.forEach((v, i) => view.setUint32(PARAMS_AT + 4 * i, v));
  blob.set(randomBytes(SALT_LEN), SALT_AT);
  blob.set(randomBytes(NONCE_LEN), NONCE_AT);
  const aad = blob.subarray(0, HEADER_LEN);

  const key = await deriveKey(kdf, params, password, blob.subarray(SALT_AT, NONCE_AT));
  try {
    blob.set(xchacha20poly1305(key, blob.subarray(NONCE_AT, HEADER_LEN), aad).encrypt(secret), HEADER_LEN);
  } finally {
    key.fill(0);
  }
  return blob;
}

/**
 * Decrypts a blob from `encryptBackup`. Fails with BACKUP_PASSWORD on a wrong password or any
 * tampering the authentication tag catches, BACKUP_CORRUPT on a malformed or truncated blob, and
 * UNSUPPORTED_VERSION on a format or KDF this SDK does not know.
 */
export async function decryptBackup(blob: Uint8Array, password: string): Promise<Uint8Array> {
  if (!(blob instanceof Uint8Array)) throw new DeviceError('INVALID_ARGUMENT', 'backup must be a Uint8Array');
  const h = parseHeader(blob);
  const key = await deriveKey(h.kdf, h.params, password, h.salt);
  try {
    return xchacha20poly1305(key, h.nonce, h.aad).decrypt(h.sealed);
  } catch {
    throw new DeviceError('BACKUP_PASSWORD', 'wrong password or damaged backup');
  } finally {
    key.fill(0);
  }
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

/**
 * Splits a backup blob into `m` recovery pieces (text), any `k` of which restore it with
 * `combineBackup`; fewer reveal nothing about it. Requires 2 <= k <= m <= 255.
 */
export async function splitBackup(blob: Uint8Array, k: number, m: number): Promise<string[]> {
  if (!Number.isInteger(k) || !Number.isInteger(m) || k < 2 || m > 255 || k > m) {
    throw new DeviceError('INVALID_ARGUMENT', 'recovery pieces need integers 2 <= k <= m <= 255');
  }
  if (!(blob instanceof Uint8Array)) throw new DeviceError('INVALID_ARGUMENT', 'backup must be a Uint8Array');
  parseHeader(blob);
  const setId = randomBytes(SET_ID_LEN);
  // `split` insists on a plain Uint8Array (not a subclass such as Buffer), hence the copy.
  const { split } = await import('./backup-kdf.js');
  const shares = await split(Uint8Array.from(blob), m, k);
  return shares.map((share) => {
    const piece = new Uint8Array(PIECE_HEAD_LEN + share.length + CHECKSUM_LEN);
    piece.set([PIECE_VERSION, k, m], 0);
    piece.set(setId, 3);
    piece.set(share, PIECE_HEAD_LEN);
    piece.set(checksum(piece.subarray(0, piece.length - CHECKSUM_LEN)), piece.length - CHECKSUM_LEN);
    share.fill(0);
    return PIECE_PREFIX + toBase64url(piece);
  });
}

/**
 * Restores a backup blob from at least k of its recovery pieces. Fails with RECOVERY_PIECES (and
 * `culprits`: the 1-based positions of the offending pieces) on malformed or damaged pieces,
 * duplicates, pieces from different splits, or too few pieces; UNSUPPORTED_VERSION on a piece
 * format this SDK does not know.
 */
export async function combineBackup(pieces: string[]): Promise<Uint8Array> {
  if (!Array.isArray(pieces)) throw new DeviceError('INVALID_ARGUMENT', 'pieces must be an array of strings');
  if (pieces.length === 0) throw new DeviceError('RECOVERY_PIECES', 'no recovery pieces given');
  const parsed = pieces.map((p, i) => parsePiece(p, String(i + 1)));

  // Group by split (set id, k, m and length must all agree); keep the largest group.
  const groups = new Map<string, Piece[]>();
  for (const p of parsed) {
    const id = `${toBase64url(p.setId)}/${p.k}/${p.m}/${p.share.length}`;
    groups.set(id, [...(groups.get(id) ?? []), p]);
  }
  if (groups.size > 1) {
    const main = [...groups.values()].reduce((a, b) => (b.length > a.length ? b : a));
    const culprits = parsed.filter((p) => !main.includes(p)).map((p) => p.position);
    throw new DeviceError(
      'RECOVERY_PIECES',
      `the pieces come from ${groups.size} different backups or splits`,
      culprits,
    );
  }

  const seen = new Set<number>();
  const duplicates: string[] = [];
  for (const p of parsed) {
    const x = p.share[p.share.length - 1]!;
    if (seen.has(x)) duplicates.push(p.position);
    seen.add(x);
  }
  if (duplicates.length)
    throw new DeviceError('RECOVERY_PIECES', 'the same recovery piece was given more than once', duplicates);

  const { k } = parsed[0]!;
  if (parsed.length < k)
    throw new DeviceError('RECOVERY_PIECES', `${k} recovery pieces are needed, got ${parsed.length}`);

  const { combine } = await import('./backup-kdf.js');
  const blob = await combine(parsed.map((p) => Uint8Array.from(p.share)));
  try {
    parseHeader(blob);
  } catch {
    throw new DeviceError('RECOVERY_PIECES', 'the recovery pieces do not combine into a valid backup');
  }
  return blob;
}

/** A decoded recovery piece; `position` is its 1-based index in the caller's list. */
interface Piece {
  position: string;
  k: number;
  m: number;
  setId: Uint8Array;
  share: Uint8Array;
}

function parsePiece(text: unknown, position: string): Piece {
  const bad = (why: string) => new DeviceError('RECOVERY_PIECES', `recovery piece ${position} ${why}`, [position]);
  if (typeof text !== 'string') throw bad('is not a string');
  const s = text.replace(/\s+/g, '');
  if (!s.startsWith(PIECE_PREFIX)) throw bad(`does not start with "${PIECE_PREFIX}"`);
  const bytes = fromBase64url(s.slice(PIECE_PREFIX.length));
  if (!bytes) throw bad('is not valid base64url');
  if (bytes.length < 1 + CHECKSUM_LEN) throw bad('is truncated');
  // The checksum comes first: a typo in the version byte reads as damage, not as a newer format.
  const body = bytes.subarray(0, bytes.length - CHECKSUM_LEN);
  if (!equal(checksum(body), bytes.subarray(body.length))) throw bad('is damaged (checksum mismatch)');
  if (bytes[0] !== PIECE_VERSION) {
    throw new DeviceError('UNSUPPORTED_VERSION', `recovery piece ${position} has unsupported version ${bytes[0]}`, [
      position,
    ]);
  }
  if (bytes.length < PIECE_HEAD_LEN + 2 + CHECKSUM_LEN) throw bad('is truncated');
  const k = bytes[1]!;
  const m = bytes[2]!;
  const share = bytes.subarray(PIECE_HEAD_LEN, body.length);
  if (k < 2 || k > m || share[share.length - 1] === 0) throw bad('is malformed');
  return { position, k, m, setId: bytes.subarray(3, PIECE_HEAD_LEN), share };
}

/** Parses and bounds-checks a backup header; throws BACKUP_CORRUPT / UNSUPPORTED_VERSION. */
function parseHeader(blob: Uint8Array): Header {
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
function kdfParamsOk(kdf: Kdf, [a, b, p]: readonly [number, number, number]): boolean {
  if (p < 1 || p > 16) return false;
  if (kdf === 'scrypt') {
    const [N, r] = [a, b];
    const powerOfTwo = N >= 2 && (N & (N - 1)) === 0;
    return powerOfTwo && N >= 2 ** 10 && r >= 1 && r <= 32 && 128 * r * (N + p + 1) <= MAX_KDF_MEMORY;
  }
  const [t, m] = [a, b];
  return t >= 1 && t <= 10 && m >= 8 * p && m * 1024 <= MAX_KDF_MEMORY;
}

/** The KDF with these parameters (./backup-kdf.ts, imported on first use). */
async function loadKdf(
  kdf: Kdf,
  [a, b, p]: readonly [number, number, number],
): Promise<(pw: Uint8Array, salt: Uint8Array) => Promise<Uint8Array>> {
  const maxmem = MAX_KDF_MEMORY + 1024 * 1024;
  if (kdf === 'scrypt') {
    const { scryptAsync } = await import('./backup-kdf.js');
    return (pw, salt) => scryptAsync(pw, salt, { N: a, r: b, p, dkLen: KEY_LEN, maxmem });
  }
  const { argon2idAsync } = await import('./backup-kdf.js');
  return (pw, salt) => argon2idAsync(pw, salt, { t: a, m: b, p, dkLen: KEY_LEN, maxmem });
}

/** Stretches the password into a 32-byte key; the caller must zero the result. */
async function deriveKey(
  kdf: Kdf,
  params: readonly [number, number, number],
  password: string,
  salt: Uint8Array,
): Promise<Uint8Array> {
  if (typeof password !== 'string' || password.length === 0) {
    throw new DeviceError('INVALID_ARGUMENT', 'password must be a non-empty string');
  }
  // Outside the try: a chunk that fails to load is that error, not a corrupt backup.
  const derive = await loadKdf(kdf, params);
  const pw = new TextEncoder().encode(password.normalize('NFKC'));
  try {
    return await derive(pw, salt);
  } catch {
    // Parameters passed kdfParamsOk, so this is a KDF the header should never have described.
    throw new DeviceError('BACKUP_CORRUPT', 'backup KDF parameters were rejected');
  } finally {
    pw.fill(0);
  }
}

function checksum(bytes: Uint8Array): Uint8Array {
  return sha256(bytes).subarray(0, CHECKSUM_LEN);
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64_INDEX = new Map([...B64].map((c, i) => [c, i]));

/** base64url (RFC 4648 §5) without padding. */
function toBase64url(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let j = 0; j < chars; j++) out += B64[(n >> (18 - 6 * j)) & 63];
  }
  return out;
}

/** Strict inverse of toBase64url: no padding, no foreign characters, no non-zero spare bits. */
function fromBase64url(s: string): Uint8Array | undefined {
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

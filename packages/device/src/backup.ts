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
import { argon2idAsync, combine, scryptAsync, split } from './backup-kdf.js';
import {
  type BackupOptions,
  type Kdf,
  backupPasswordWeakness,
  fromBase64url,
  parseHeader,
  toBase64url,
  MAGIC,
  VERSION,
  KDF_IDS,
  SALT_LEN,
  NONCE_LEN,
  TAG_LEN,
  KEY_LEN,
  PARAMS_AT,
  SALT_AT,
  NONCE_AT,
  HEADER_LEN,
  PARAMS,
  MAX_KDF_MEMORY,
  PIECE_PREFIX,
  PIECE_VERSION,
  SET_ID_LEN,
  PIECE_HEAD_LEN,
  CHECKSUM_LEN,
} from './backup-format.js';

export { type BackupOptions, backupFromText, backupPasswordWeakness, backupToText } from './backup-format.js';

export { DeviceError } from './errors.js';
/** What a backup holds, and how a device state is exported and restored (used by device.ts on first use). */
export { exportState, openState, restoreWrites } from './backup-state.js';

/** How the password is stretched. `test` uses tiny parameters and must only be used in tests. */
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

/** The KDF with these parameters. */
async function loadKdf(
  kdf: Kdf,
  [a, b, p]: readonly [number, number, number],
): Promise<(pw: Uint8Array, salt: Uint8Array) => Promise<Uint8Array>> {
  const maxmem = MAX_KDF_MEMORY + 1024 * 1024;
  if (kdf === 'scrypt') {
    return (pw, salt) => scryptAsync(pw, salt, { N: a, r: b, p, dkLen: KEY_LEN, maxmem });
  }
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

/**
 * The parts of HPKE (RFC 9180) that do not depend on the KEM: labeled key derivation (§4) with
 * HKDF-SHA256, and the base-mode key schedule with its ChaCha20Poly1305 context and exporter
 * (§5.1–§5.3). ./hpke.ts (DHKEM(X25519)) and ./hpke-xwing.ts (the X-Wing hybrid KEM) each
 * supply a KEM's shared secret and the suite id naming it. Section numbers refer to RFC 9180.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, utf8ToBytes, wipe } from './bytes.js';
import { ErrorCode, InvalidArgumentError, InvalidStateError, ProtocolError } from './errors.js';

/** §7.2 KDF id of HKDF-SHA256 and §7.3 AEAD id of ChaCha20Poly1305, the only ones spoken here. */
export const KDF_HKDF_SHA256 = 0x0001;
export const AEAD_CHACHA20POLY1305 = 0x0003;
// §7.2: Nh = 32. §7.3: Nk = 32, Nn = 12.
const N_H = 32;
const N_K = 32;
const N_N = 12;
/** §5: mode_base. */
const MODE_BASE = 0x00;
export const EMPTY = new Uint8Array(0);

/** §3 I2OSP(n, w): big-endian, w bytes. */
export function i2osp(n: number, w: number): Uint8Array {
  const out = new Uint8Array(w);
  for (let i = w - 1; i >= 0 && n > 0; i--, n = Math.floor(n / 256)) out[i] = n % 256;
  return out;
}

const VERSION_LABEL = utf8ToBytes('HPKE-v1');

/** §4.1: the KEM's suite_id = concat("KEM", I2OSP(kem_id, 2)). */
export function kemSuiteId(kem: number): Uint8Array {
  return concatBytes(utf8ToBytes('KEM'), i2osp(kem, 2));
}

/** §5.1: suite_id = concat("HPKE", I2OSP(kem_id, 2), I2OSP(kdf_id, 2), I2OSP(aead_id, 2)). */
export function hpkeSuiteId(kem: number): Uint8Array {
  return concatBytes(utf8ToBytes('HPKE'), i2osp(kem, 2), i2osp(KDF_HKDF_SHA256, 2), i2osp(AEAD_CHACHA20POLY1305, 2));
}

/** §4: LabeledExtract(salt, label, ikm) = Extract(salt, concat("HPKE-v1", suite_id, label, ikm)). */
export function labeledExtract(suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return extract(sha256, concatBytes(VERSION_LABEL, suiteId, utf8ToBytes(label), ikm), salt);
}

/** §4: LabeledExpand(prk, label, info, L) = Expand(prk, concat(I2OSP(L, 2), "HPKE-v1", suite_id, label, info), L). */
export function labeledExpand(
  suiteId: Uint8Array,
  prk: Uint8Array,
  label: string,
  info: Uint8Array,
  L: number,
): Uint8Array {
  const labeledInfo = concatBytes(i2osp(L, 2), VERSION_LABEL, suiteId, utf8ToBytes(label), info);
  return expand(sha256, prk, labeledInfo, L);
}

export function assertBytes(b: unknown, what: string, len?: number): asserts b is Uint8Array {
  if (!(b instanceof Uint8Array)) throw new InvalidArgumentError(`${what}: expected a Uint8Array`);
  if (len !== undefined && b.length !== len)
    throw new InvalidArgumentError(`${what}: expected ${len} bytes, got ${b.length}`);
}

export interface Context {
  seal(aad: Uint8Array, pt: Uint8Array): Uint8Array;
  open(aad: Uint8Array, ct: Uint8Array): Uint8Array;
  export(ctx: Uint8Array, len: number): Uint8Array;
}

/**
 * §5.1 KeySchedule for mode_base (psk = psk_id = ""), then the §5.2 context (Seal/Open with a
 * sequence number) and the §5.3 secret export.
 */
export function keyScheduleBase(suiteId: Uint8Array, sharedSecret: Uint8Array, info: Uint8Array): Context {
  const pskIdHash = labeledExtract(suiteId, EMPTY, 'psk_id_hash', EMPTY);
  const infoHash = labeledExtract(suiteId, EMPTY, 'info_hash', info);
  const ksContext = concatBytes(Uint8Array.of(MODE_BASE), pskIdHash, infoHash);
  const secret = labeledExtract(suiteId, sharedSecret, 'secret', EMPTY);
  const key = labeledExpand(suiteId, secret, 'key', ksContext, N_K);
  const baseNonce = labeledExpand(suiteId, secret, 'base_nonce', ksContext, N_N);
  const exporterSecret = labeledExpand(suiteId, secret, 'exp', ksContext, N_H);
  wipe(secret, sharedSecret);

  let seq = 0;
  /** §5.2 ComputeNonce(seq) = base_nonce XOR I2OSP(seq, Nn). */
  const nonce = (): Uint8Array => {
    // §5.2 IncrementSeq raises MessageLimitReachedError at 2^96 - 1; a JS number stops earlier.
    if (seq >= Number.MAX_SAFE_INTEGER) throw new InvalidStateError('HPKE context: message limit reached');
    const seqBytes = i2osp(seq, N_N);
    return baseNonce.map((b, i) => b ^ (seqBytes[i] as number));
  };
  return {
    seal(aad, pt) {
      assertBytes(aad, 'HPKE aad');
      assertBytes(pt, 'HPKE plaintext');
      const ct = chacha20poly1305(key, nonce(), aad).encrypt(pt);
      seq += 1;
      return ct;
    },
    open(aad, ct) {
      assertBytes(aad, 'HPKE aad');
      assertBytes(ct, 'HPKE ciphertext');
      const n = nonce();
      let pt: Uint8Array;
      try {
        pt = chacha20poly1305(key, n, aad).decrypt(ct);
      } catch {
        // §5.2: on OpenError the sequence number is not advanced.
        throw new ProtocolError(ErrorCode.DECRYPT, 'HPKE open: authentication failed');
      }
      seq += 1;
      return pt;
    },
    /** §5.3 Export(exporter_context, L) = LabeledExpand(exporter_secret, "sec", exporter_context, L), L <= 255*Nh. */
    export(ctx, len) {
      assertBytes(ctx, 'HPKE exporter context');
      if (!Number.isInteger(len) || len < 0 || len > 255 * N_H)
        throw new InvalidArgumentError(`HPKE export: length must be an integer in [0, ${255 * N_H}]`);
      return labeledExpand(suiteId, exporterSecret, 'sec', ctx, len);
    },
  };
}

/**
 * HPKE (RFC 9180), base mode only, for exactly one ciphersuite:
 * DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20Poly1305.
 *
 * All primitives come from noble (x25519, HKDF, SHA-256, ChaCha20-Poly1305); this file only
 * wires RFC 9180's labeled key derivation, KEM and key schedule around them. Section numbers in
 * the comments refer to RFC 9180.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { concatBytes, equalBytes, utf8ToBytes, wipe, type Rng } from './bytes.js';
import { ErrorCode, InvalidArgumentError, InvalidStateError, ProtocolError } from './errors.js';

export interface HpkeKeyPair {
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** The one suite spoken here (§7.1 KEM, §7.2 KDF, §7.3 AEAD identifiers). */
export const HPKE_SUITE: { kem: 0x0020; kdf: 0x0001; aead: 0x0003 } = Object.freeze({
  kem: 0x0020,
  kdf: 0x0001,
  aead: 0x0003,
} as const);

// §7.1: Nsecret = Nenc = Npk = Nsk = 32 for DHKEM(X25519). §7.2: Nh = 32. §7.3: Nk = 32, Nn = 12.
const N_SK = 32;
const N_PK = 32;
const N_SECRET = 32;
const N_H = 32;
const N_K = 32;
const N_N = 12;
/** §5: mode_base. */
const MODE_BASE = 0x00;
const EMPTY = new Uint8Array(0);

/** §3 I2OSP(n, w): big-endian, w bytes. */
function i2osp(n: number, w: number): Uint8Array {
  const out = new Uint8Array(w);
  for (let i = w - 1; i >= 0 && n > 0; i--, n = Math.floor(n / 256)) out[i] = n % 256;
  return out;
}

const VERSION_LABEL = utf8ToBytes('HPKE-v1');
/** §4.1: suite_id = concat("KEM", I2OSP(kem_id, 2)), used inside the DHKEM. */
const KEM_SUITE_ID = concatBytes(utf8ToBytes('KEM'), i2osp(HPKE_SUITE.kem, 2));
/** §5.1: suite_id = concat("HPKE", I2OSP(kem_id, 2), I2OSP(kdf_id, 2), I2OSP(aead_id, 2)). */
const HPKE_SUITE_ID = concatBytes(
  utf8ToBytes('HPKE'),
  i2osp(HPKE_SUITE.kem, 2),
  i2osp(HPKE_SUITE.kdf, 2),
  i2osp(HPKE_SUITE.aead, 2),
);

/** §4: LabeledExtract(salt, label, ikm) = Extract(salt, concat("HPKE-v1", suite_id, label, ikm)). */
function labeledExtract(suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return extract(sha256, concatBytes(VERSION_LABEL, suiteId, utf8ToBytes(label), ikm), salt);
}

/** §4: LabeledExpand(prk, label, info, L) = Expand(prk, concat(I2OSP(L, 2), "HPKE-v1", suite_id, label, info), L). */
function labeledExpand(suiteId: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, L: number): Uint8Array {
  const labeledInfo = concatBytes(i2osp(L, 2), VERSION_LABEL, suiteId, utf8ToBytes(label), info);
  return expand(sha256, prk, labeledInfo, L);
}

function assertBytes(b: unknown, what: string, len?: number): asserts b is Uint8Array {
  if (!(b instanceof Uint8Array)) throw new InvalidArgumentError(`${what}: expected a Uint8Array`);
  if (len !== undefined && b.length !== len)
    throw new InvalidArgumentError(`${what}: expected ${len} bytes, got ${b.length}`);
}

/**
 * §7.1.3 DeriveKeyPair for X25519: dkp_prk = LabeledExtract("", "dkp_prk", ikm);
 * sk = LabeledExpand(dkp_prk, "sk", "", Nsk). `ikm` must be at least Nsk = 32 bytes (the RFC's
 * SHOULD, enforced). The secret key is returned as derived, unclamped, exactly as in the
 * Appendix A vectors; X25519 clamps it on every use (RFC 7748 §5).
 */
export function hpkeKeyPairFromSeed(ikm: Uint8Array): HpkeKeyPair {
  assertBytes(ikm, 'HPKE ikm');
  if (ikm.length < N_SK) throw new InvalidArgumentError(`HPKE ikm: expected at least ${N_SK} bytes, got ${ikm.length}`);
  const dkpPrk = labeledExtract(KEM_SUITE_ID, EMPTY, 'dkp_prk', ikm);
  const secretKey = labeledExpand(KEM_SUITE_ID, dkpPrk, 'sk', EMPTY, N_SK);
  wipe(dkpPrk);
  return { secretKey, publicKey: x25519.getPublicKey(secretKey) };
}

/** §4 GenerateKeyPair, implemented as DeriveKeyPair(random(Nsk)). */
export function hpkeGenerateKeyPair(rng: Rng = randomBytes): HpkeKeyPair {
  return hpkeKeyPairFromSeed(rng(N_SK));
}

/**
 * X25519 DH with the §7.1.4 validation: a Diffie-Hellman output of all zeros (a low-order public
 * key) must abort. noble refuses low-order inputs before the ladder (it throws); the all-zero
 * test below is the RFC's check itself, kept so the guarantee does not rest on the library.
 * Returns undefined on failure; callers raise the error that fits their side.
 */
function dh(sk: Uint8Array, pk: Uint8Array): Uint8Array | undefined {
  let out: Uint8Array;
  try {
    out = x25519.getSharedSecret(sk, pk);
  } catch {
    return undefined;
  }
  let acc = 0;
  for (const b of out) acc |= b;
  if (acc === 0) return undefined;
  return out;
}

/**
 * §4.1 ExtractAndExpand(dh, kem_context): eae_prk = LabeledExtract("", "eae_prk", dh);
 * shared_secret = LabeledExpand(eae_prk, "shared_secret", kem_context, Nsecret).
 */
function extractAndExpand(dhOut: Uint8Array, kemContext: Uint8Array): Uint8Array {
  const eaePrk = labeledExtract(KEM_SUITE_ID, EMPTY, 'eae_prk', dhOut);
  const sharedSecret = labeledExpand(KEM_SUITE_ID, eaePrk, 'shared_secret', kemContext, N_SECRET);
  wipe(eaePrk, dhOut);
  return sharedSecret;
}

interface Context {
  seal(aad: Uint8Array, pt: Uint8Array): Uint8Array;
  open(aad: Uint8Array, ct: Uint8Array): Uint8Array;
  export(ctx: Uint8Array, len: number): Uint8Array;
}

/**
 * §5.1 KeySchedule for mode_base (psk = psk_id = ""), then the §5.2 context (Seal/Open with a
 * sequence number) and the §5.3 secret export.
 */
function keyScheduleBase(sharedSecret: Uint8Array, info: Uint8Array): Context {
  const pskIdHash = labeledExtract(HPKE_SUITE_ID, EMPTY, 'psk_id_hash', EMPTY);
  const infoHash = labeledExtract(HPKE_SUITE_ID, EMPTY, 'info_hash', info);
  const ksContext = concatBytes(Uint8Array.of(MODE_BASE), pskIdHash, infoHash);
  const secret = labeledExtract(HPKE_SUITE_ID, sharedSecret, 'secret', EMPTY);
  const key = labeledExpand(HPKE_SUITE_ID, secret, 'key', ksContext, N_K);
  const baseNonce = labeledExpand(HPKE_SUITE_ID, secret, 'base_nonce', ksContext, N_N);
  const exporterSecret = labeledExpand(HPKE_SUITE_ID, secret, 'exp', ksContext, N_H);
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
      return labeledExpand(HPKE_SUITE_ID, exporterSecret, 'sec', ctx, len);
    },
  };
}

/**
 * §5.1.1 SetupBaseS with §4.1 Encap, the ephemeral key pair supplied by the caller:
 * dh = DH(skE, pkR); enc = SerializePublicKey(pkE); kem_context = concat(enc, pkRm).
 * A low-order `pkR` (all-zero DH, §7.1.4) is refused with InvalidArgumentError.
 */
export function setupBaseSender(
  pkR: Uint8Array,
  info: Uint8Array,
  ephemeral: HpkeKeyPair,
): {
  enc: Uint8Array;
  seal(aad: Uint8Array, pt: Uint8Array): Uint8Array;
  export(ctx: Uint8Array, len: number): Uint8Array;
} {
  assertBytes(pkR, 'HPKE recipient public key', N_PK);
  assertBytes(info, 'HPKE info');
  assertBytes(ephemeral.secretKey, 'HPKE ephemeral secret key', N_SK);
  assertBytes(ephemeral.publicKey, 'HPKE ephemeral public key', N_PK);
  const enc = x25519.getPublicKey(ephemeral.secretKey);
  if (!equalBytes(enc, ephemeral.publicKey))
    throw new InvalidArgumentError('HPKE ephemeral key pair: public key does not match secret key');
  const dhOut = dh(ephemeral.secretKey, pkR);
  if (dhOut === undefined) throw new InvalidArgumentError('HPKE recipient public key is invalid (low-order point)');
  const ctx = keyScheduleBase(extractAndExpand(dhOut, concatBytes(enc, pkR)), info);
  return { enc, seal: ctx.seal, export: ctx.export };
}

/**
 * §5.1.1 SetupBaseR with §4.1 Decap: pkE = DeserializePublicKey(enc); dh = DH(skR, pkE);
 * kem_context = concat(enc, SerializePublicKey(pk(skR))). A malformed `enc` (wrong length, or
 * low-order so that the DH is all zero, §7.1.4) fails with ProtocolError code DECRYPT.
 */
export function setupBaseReceiver(
  enc: Uint8Array,
  skR: Uint8Array,
  info: Uint8Array,
): { open(aad: Uint8Array, ct: Uint8Array): Uint8Array; export(ctx: Uint8Array, len: number): Uint8Array } {
  assertBytes(skR, 'HPKE recipient secret key', N_SK);
  assertBytes(info, 'HPKE info');
  if (!(enc instanceof Uint8Array) || enc.length !== N_PK)
    throw new ProtocolError(ErrorCode.DECRYPT, `HPKE enc: expected ${N_PK} bytes`);
  const dhOut = dh(skR, enc);
  if (dhOut === undefined) throw new ProtocolError(ErrorCode.DECRYPT, 'HPKE enc is invalid (low-order point)');
  const pkRm = x25519.getPublicKey(skR);
  const ctx = keyScheduleBase(extractAndExpand(dhOut, concatBytes(enc, pkRm)), info);
  return { open: ctx.open, export: ctx.export };
}

export interface SealedBox {
  readonly enc: Uint8Array;
  readonly ciphertext: Uint8Array;
}

/** Single-shot base-mode seal (RFC 9180 §6.1). `rng` supplies the ephemeral key seed (32 bytes via DeriveKeyPair). */
export function hpkeSeal(
  recipientPublicKey: Uint8Array,
  info: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
  rng: Rng = randomBytes,
): SealedBox {
  assertBytes(recipientPublicKey, 'HPKE recipient public key', N_PK);
  const ephemeral = hpkeGenerateKeyPair(rng);
  try {
    const sender = setupBaseSender(recipientPublicKey, info, ephemeral);
    return { enc: sender.enc, ciphertext: sender.seal(aad, plaintext) };
  } finally {
    wipe(ephemeral.secretKey);
  }
}

/**
 * Single-shot base-mode open (RFC 9180 §6.1). Any failure (bad enc, wrong key, tampered
 * ciphertext/aad/info) throws ProtocolError with code ErrorCode.DECRYPT and a message with no
 * secret bytes. A recipient secret key of the wrong length is a caller error: InvalidArgumentError.
 */
export function hpkeOpen(
  recipientSecretKey: Uint8Array,
  enc: Uint8Array,
  info: Uint8Array,
  aad: Uint8Array,
  ciphertext: Uint8Array,
): Uint8Array {
  assertBytes(recipientSecretKey, 'HPKE recipient secret key', N_SK);
  assertBytes(info, 'HPKE info');
  assertBytes(aad, 'HPKE aad');
  assertBytes(ciphertext, 'HPKE ciphertext');
  try {
    return setupBaseReceiver(enc, recipientSecretKey, info).open(aad, ciphertext);
  } catch (e) {
    if (e instanceof ProtocolError && e.code === ErrorCode.DECRYPT) throw e;
    throw new ProtocolError(ErrorCode.DECRYPT, 'HPKE open failed');
  }
}

/**
 * HPKE (RFC 9180), base mode only, and the one entry point Tessera seals with.
 *
 * Two suites, chosen by the recipient's key: DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 /
 * ChaCha20Poly1305 (this file; 32-byte keys), and the post-quantum hybrid X-Wing / HKDF-SHA256 /
 * ChaCha20Poly1305 (./hpke-xwing.ts; 1216-byte public keys). {@link hpkeSeal} seals to whichever
 * kind of key it is given and {@link hpkeOpen} opens by the size of `enc`, so participants with
 * classic keys and data sealed before the hybrid suite existed keep working.
 *
 * All primitives come from noble (x25519, HKDF, SHA-256, ChaCha20-Poly1305, ML-KEM); this file
 * only wires RFC 9180's KEM around them (the key schedule is ./hpke-schedule.ts). Section numbers
 * in the comments refer to RFC 9180.
 */
import { x25519 } from '@noble/curves/ed25519.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { concatBytes, equalBytes, wipe, type Rng } from './bytes.js';
import { ErrorCode, InvalidArgumentError, ProtocolError } from './errors.js';
import {
  EMPTY,
  assertBytes,
  hpkeSuiteId,
  kemSuiteId,
  keyScheduleBase,
  labeledExpand,
  labeledExtract,
} from './hpke-schedule.js';
import {
  XWING_ENCAP_RANDOM_BYTES,
  XWING_ENC_BYTES,
  XWING_PUBLIC_KEY_BYTES,
  setupXWingReceiver,
  setupXWingSender,
} from './hpke-xwing.js';

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

const KEM_SUITE_ID = kemSuiteId(HPKE_SUITE.kem);
const HPKE_SUITE_ID = hpkeSuiteId(HPKE_SUITE.kem);

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
  const ctx = keyScheduleBase(HPKE_SUITE_ID, extractAndExpand(dhOut, concatBytes(enc, pkR)), info);
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
  const ctx = keyScheduleBase(HPKE_SUITE_ID, extractAndExpand(dhOut, concatBytes(enc, pkRm)), info);
  return { open: ctx.open, export: ctx.export };
}

/** The size of `enc` in a box sealed to `recipientPublicKey` (Nenc of its suite). */
export function hpkeEncBytes(recipientPublicKey: Uint8Array): number {
  return recipientPublicKey.length === XWING_PUBLIC_KEY_BYTES ? XWING_ENC_BYTES : N_PK;
}

export interface SealedBox {
  readonly enc: Uint8Array;
  readonly ciphertext: Uint8Array;
}

/**
 * Single-shot base-mode seal (RFC 9180 §6.1) to `recipientPublicKey`: a 32-byte key is
 * DHKEM(X25519) (`rng` supplies the ephemeral key seed), a 1216-byte key is X-Wing (`rng`
 * supplies the encapsulation's 64 random bytes).
 */
export function hpkeSeal(
  recipientPublicKey: Uint8Array,
  info: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
  rng: Rng = randomBytes,
): SealedBox {
  if (recipientPublicKey instanceof Uint8Array && recipientPublicKey.length === XWING_PUBLIC_KEY_BYTES) {
    const eseed = rng(XWING_ENCAP_RANDOM_BYTES);
    try {
      const sender = setupXWingSender(recipientPublicKey, info, eseed);
      return { enc: sender.enc, ciphertext: sender.seal(aad, plaintext) };
    } finally {
      wipe(eseed);
    }
  }
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
 * Single-shot base-mode open (RFC 9180 §6.1), of either suite (the size of `enc` tells which; the
 * secret key is 32 bytes in both: an X25519 scalar or an X-Wing seed). Any failure (bad enc, wrong key, tampered
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
  // The suite is told by the enc's size: X-Wing's ciphertext, or an X25519 public key.
  const xwing = enc instanceof Uint8Array && enc.length === XWING_ENC_BYTES;
  try {
    const receiver = xwing
      ? setupXWingReceiver(enc, recipientSecretKey, info)
      : setupBaseReceiver(enc, recipientSecretKey, info);
    return receiver.open(aad, ciphertext);
  } catch (e) {
    if (e instanceof ProtocolError && e.code === ErrorCode.DECRYPT) throw e;
    throw new ProtocolError(ErrorCode.DECRYPT, 'HPKE open failed');
  }
}

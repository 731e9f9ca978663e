/**
 * HD derivation for threshold keys: non-hardened child keys by a public additive tweak, so one
 * DKG serves many addresses. Nobody reconstructs anything: the coordinator (or anyone holding the
 * {@link GroupKey}) derives the child's public package, and each participant derives its own
 * child share locally with {@link deriveShare}. The child {@link GroupKey} and child
 * {@link KeyShare}s then work unchanged with `commit`, `signShare`, `SigningSession` and
 * `runLocalSign`.
 *
 * ## Why it works
 * Shares are points on a degree t-1 polynomial f with f(0) = s (the group secret). For any public
 * a ∈ {1, -1} and scalar b, a·f(x) + b is a polynomial of the same degree with constant term
 * a·s + b, so the shares a·s_i + b are a valid sharing of the child secret (the Lagrange
 * coefficients of any quorum sum to 1). Publicly: commitments[0] ↦ a·C_0 + b·G, commitments[k] ↦
 * a·C_k (k ≥ 1), verifying shares Y_i ↦ a·Y_i + b·G. A {@link ShareTweak} is that (a, b). For
 * `ed25519`, `secp256k1` and `p256`, a = 1 and b = τ, the sum of the per-level tweaks; the sign
 * only appears for `secp256k1-tr` (below).
 *
 * ## Chain code
 * A FROST key has no BIP32 chain code, so Tessera defines one from the key itself:
 *
 *     chainCode = HMAC-SHA256(key = ASCII "tessera/v1/hd-chaincode",
 *                             data = u32be(len(suiteId)) || suiteId || u32be(len(pk)) || pk)
 *
 * where `pk` is the suite's standard public key encoding (`groupPublicKey`: Ed25519 32 B, x-only
 * 32 B for secp256k1-tr, SEC1 compressed 33 B otherwise). Privacy: this chain code is public, so
 * anyone who knows the root key can compute every child and link them to the root. Callers that
 * need children to be unlinkable for outsiders pass their own 32-byte `chainCode` (kept with the
 * key's metadata, shared only with whoever must derive); the math is unchanged.
 *
 * ## The BIP32 root
 * The BIP32 parent of the root is the group element `commitments[0]` exactly as the key package
 * stores it (SEC1 compressed, parity included; for Ed25519 its 32-byte encoding), so the package's
 * shares are its discrete-log shares with no sign adjustment.
 *
 * ## Per-level derivation, by suite
 * - `secp256k1`, `secp256k1-tr`: BIP32 CKDpub, byte for byte:
 *   I = HMAC-SHA512(c, serP(K) || ser32(i)); K_i = K + parse256(I_L)·G; c_i = I_R. If
 *   parse256(I_L) ≥ n or K_i is the point at infinity (probability < 2^-127) BIP32 says the index
 *   is invalid: {@link deriveKey} throws INVALID_ARGUMENT and the caller uses another index.
 * - `p256`: SLIP-0010 CKDpub for NIST P-256 (the same as BIP32 with P-256's order, but on an
 *   invalid result it retries with I = HMAC-SHA512(c, 0x01 || I_R || ser32(i)); this matters for
 *   P-256, where parse256(I_L) ≥ n has probability ≈ 2^-32). Checked against SLIP-0010's vectors.
 * - `ed25519`: a Tessera scheme in the same shape (SLIP-0010 defines only *hardened* Ed25519
 *   derivation, which needs the secret key, and BIP32-Ed25519 relies on clamped "extended" keys
 *   that FROST shares are not, so neither applies):
 *   I = HMAC-SHA512(c, A || ser32(i)); τ_i = int_LE(I_L) mod L; A_i = A + τ_i·B; c_i = I_R
 *   (A = the 32-byte RFC 8032 encoding; reducing 256 bits mod L ≈ 2^252 is within 2^-127 of uniform).
 *   The child is a plain Ed25519 key: RFC 8032 (and Solana) verify the child signatures.
 *
 * Paths are `m/<i>/<j>/…` with decimal non-hardened indices 0 ≤ i < 2^31, 1 to 255 levels (BIP32's
 * depth byte). Hardened indices (`'`, `h`, `H`) are refused: they need the secret key, which no
 * party holds. The bare root `m` is refused too: the root key is the GroupKey itself.
 *
 * ## secp256k1-tr: "BIP32 + Taproot tweak"
 * noble's `schnorr_FROST` (like frost-rs) applies the BIP341 TapTweak with an empty merkle root to
 * DKG output: a Tessera Taproot key Q is already an *output* key, whose internal key P (the sum of
 * the DKG contributions) is not kept in the GroupKey and cannot be recovered from Q (it is hashed
 * into the tweak). At signing time noble (and fast.ts) take Q as is and only negate the whole
 * package when Q has odd Y (BIP340's even-Y lift); they never tweak again. Therefore Tessera derives
 * Taproot children like a BIP86 wallet derives from an account xpub:
 *
 * 1. BIP32 CKDpub from the xpub (Q as stored, chainCode) along the path → child internal key K_c;
 * 2. BIP86 / BIP341 key-path-only output tweak of the child:
 *    t = int(tagged_hash("TapTweak", x(K_c))) (must be < n), Q_c = lift_x(x(K_c)) + t·G.
 *
 * Q_c (x-only) is the child's public key and its P2TR witness program; the child package is exactly
 * what noble's `frostTweakPublic(childPackage, emptyMerkleRoot)` makes of the untweaked child, so
 * noble's FROST signs for it unchanged and the result verifies with plain BIP340
 * `schnorr.verify(sig, msg, x(Q_c))`. Share map: s ↦ σ·(s + τ) + t, with σ = -1 iff K_c has odd Y.
 * Consequence: the child addresses are exactly those of the output descriptor `tr(XPUB/<path>)`
 * where XPUB = {@link extendedPublicKey}(key), so standard watch-only wallets show the same
 * addresses (checked in the tests against BIP86's published vectors). What is *not* possible is a
 * full BIP86 path from the DKG's internal key (m/86'/0'/0' is hardened, and P is not available):
 * Tessera's xpub plays the role of BIP86's account-level xpub.
 */
import type { FrostPublic } from '@noble/curves/abstract/frost.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToNumberBE, bytesToNumberLE } from '@noble/curves/utils.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { createBase58check } from '@scure/base';
import { concatBytes, lengthPrefixed, u32be, utf8ToBytes } from './bytes.js';
import { InvalidArgumentError } from './errors.js';
import { groupPublicKey, KeyShare, type GroupKey } from './key.js';
import { getSuite, type Suite, type SuiteId, type SuitePoint } from './suites.js';

export * from './address.js';

/** HMAC key of the default chain code (see the module comment). */
export const HD_CHAIN_CODE_TAG = 'tessera/v1/hd-chaincode';
/** BIP32's depth is one byte. */
export const MAX_HD_DEPTH = 255;
/** First hardened index; every index of a Tessera path is below it. */
export const HARDENED_OFFSET = 0x80000000;

type Scheme = 'bip32' | 'slip10' | 'ed25519';
const SCHEME: Readonly<Record<SuiteId, Scheme>> = Object.freeze({
  ed25519: 'ed25519',
  'secp256k1-tr': 'bip32',
  secp256k1: 'bip32',
  'ecdsa-secp256k1': 'bip32',
  p256: 'slip10',
});

/**
 * A derived share map s ↦ (negate ? -s : s) + add (mod the group order), for one suite. Public:
 * anyone who knows the root key, the chain code and the path can compute it.
 */
export interface ShareTweak {
  readonly suite: SuiteId;
  readonly negate: boolean;
  readonly add: bigint;
}

/** A public BIP32-style node: a group element (suite element encoding) and a chain code. */
export interface HdNode {
  readonly publicKey: Uint8Array;
  readonly chainCode: Uint8Array;
}

export interface DerivedKey {
  /** The child's public data: same suite, threshold and roster; tweaked FROST package. */
  readonly key: GroupKey;
  /** The path in canonical form (`m/0/5`). */
  readonly path: string;
  /** The child public key in the suite's standard encoding (`groupPublicKey(key)`). */
  readonly publicKey: Uint8Array;
  /** The child's chain code (BIP32 I_R of the last level). */
  readonly chainCode: Uint8Array;
  /** What each participant applies to its share: {@link deriveShare}(share, tweak). */
  readonly tweak: ShareTweak;
  /**
   * The BIP32 child node (element encoding). For `secp256k1-tr` it is the BIP341 *internal* key
   * K_c that the Taproot output key `publicKey` commits to; otherwise it is the child key itself.
   */
  readonly internalKey: Uint8Array;
}

export interface HdOptions {
  /** A 32-byte chain code to use instead of the default {@link hdChainCode}. */
  readonly chainCode?: Uint8Array;
}

const bad = (msg: string) => new InvalidArgumentError(msg);
const show = (s: string) => JSON.stringify(s.length > 24 ? `${s.slice(0, 24)}…` : s);

/**
 * Parses a derivation path: `m/0/5` (or an array of indices). Throws INVALID_ARGUMENT for anything
 * else: hardened indices, indices ≥ 2^31, more than 255 levels, no level, leading zeros, spaces.
 */
export function parseHdPath(path: string | readonly number[]): number[] {
  let idx: number[];
  if (typeof path === 'string') {
    const parts = path.split('/');
    if (parts[0] !== 'm') throw bad(`HD path ${show(path)} must start with "m/"`);
    if (parts.length === 1) throw bad('HD path "m" has no index: the root key is the GroupKey itself');
    if (parts.length - 1 > MAX_HD_DEPTH)
      throw bad(`HD path has ${parts.length - 1} levels, at most ${MAX_HD_DEPTH} allowed`);
    idx = parts.slice(1).map((p) => {
      if (/^[0-9]+['hH]$/.test(p))
        throw bad(
          `HD path ${show(path)}: hardened index ${show(p)} needs the secret key; threshold keys derive non-hardened children only`,
        );
      if (!/^(0|[1-9][0-9]{0,9})$/.test(p)) throw bad(`HD path ${show(path)}: malformed index ${show(p)}`);
      return Number(p);
    });
  } else if (Array.isArray(path)) {
    if (path.length === 0) throw bad('HD path has no index: the root key is the GroupKey itself');
    if (path.length > MAX_HD_DEPTH) throw bad(`HD path has ${path.length} levels, at most ${MAX_HD_DEPTH} allowed`);
    idx = path.map((i: unknown) => {
      if (typeof i !== 'number' || !Number.isInteger(i) || i < 0)
        throw bad('HD path indices must be non-negative integers');
      return i;
    });
  } else {
    throw bad('HD path must be a string like "m/0/5" or an array of indices');
  }
  for (const i of idx)
    if (i >= HARDENED_OFFSET)
      throw bad(`HD index ${i} is hardened (≥ 2^31); threshold keys derive non-hardened children only`);
  return idx;
}

/** Canonical string form of a path. */
export function formatHdPath(path: string | readonly number[]): string {
  return ['m', ...parseHdPath(path)].join('/');
}

/** The default chain code of a key (see the module comment). */
export function hdChainCode(key: GroupKey): Uint8Array {
  return hmac(sha256, utf8ToBytes(HD_CHAIN_CODE_TAG), lengthPrefixed(utf8ToBytes(key.suite.id), groupPublicKey(key)));
}

function chainCodeArg(c: unknown): Uint8Array {
  if (!(c instanceof Uint8Array) || c.length !== 32) throw bad('chain code must be 32 bytes');
  return c.slice();
}

/** The BIP32 root node of a key: `commitments[0]` as stored, and the chain code. */
export function hdRoot(key: GroupKey, opts: HdOptions = {}): HdNode {
  const gk = key.public.commitments[0];
  if (!gk) throw bad('group key has no commitments');
  return {
    publicKey: gk.slice(),
    chainCode: opts.chainCode === undefined ? hdChainCode(key) : chainCodeArg(opts.chainCode),
  };
}

interface PointWithChecks extends SuitePoint {
  isTorsionFree?(): boolean;
}

/**
 * SerializeElement⁻¹ with the checks of RFC 9591 §3.1 (on-curve, not the identity, prime order).
 * `subgroup = false` skips the (Ed25519) prime-order check for the elements of a key package that
 * are only mapped here: a ± and a public b·G keep any torsion component, so a bad element still
 * fails prepareKey's full validation when the child key is used.
 */
function decodeElement(suite: Suite, bytes: unknown, what: string, subgroup = true): SuitePoint {
  if (!(bytes instanceof Uint8Array) || bytes.length !== suite.elementBytes)
    throw bad(`${what} must be a ${suite.elementBytes}-byte ${suite.id} element`);
  let p: PointWithChecks;
  try {
    p = suite.Point.fromBytes(bytes) as PointWithChecks;
  } catch {
    throw bad(`${what} is not a valid ${suite.id} element`);
  }
  if (p.is0() || (subgroup && p.isTorsionFree !== undefined && !p.isTorsionFree()))
    throw bad(`${what} is not a valid ${suite.id} element`);
  return p;
}

const enc = (p: SuitePoint): Uint8Array => p.toBytes(true); // SEC1 compressed = serP; Ed25519 ignores the flag
const hasEvenY = (p: SuitePoint): boolean => enc(p)[0] === 0x02;

/** One CKDpub level. Returns the child point, its chain code and this level's tweak. */
function ckdStep(suite: Suite, K: SuitePoint, c: Uint8Array, i: number): { K: SuitePoint; c: Uint8Array; t: bigint } {
  const { Fn, Point } = suite;
  const scheme = SCHEME[suite.id];
  let I = hmac(sha512, c, concatBytes(enc(K), u32be(i)));
  if (scheme === 'ed25519') {
    const t = Fn.create(bytesToNumberLE(I.subarray(0, 32)));
    const child = K.add(Point.BASE.multiplyUnsafe(t));
    if (child.is0()) throw bad(`HD index ${i} gives an invalid child key; use another index`);
    return { K: child, c: I.slice(32), t };
  }
  for (;;) {
    const IL = bytesToNumberBE(I.subarray(0, 32));
    const IR = I.slice(32);
    if (IL < Fn.ORDER) {
      const child = K.add(Point.BASE.multiplyUnsafe(IL));
      if (!child.is0()) return { K: child, c: IR, t: IL };
    }
    // BIP32: "the resulting key is invalid, and one should proceed with the next value for i".
    if (scheme === 'bip32') throw bad(`HD index ${i} gives an invalid BIP32 child key; use another index`);
    // SLIP-0010 (P-256): retry with I = HMAC-SHA512(c, 0x01 || I_R || ser32(i)).
    I = hmac(sha512, c, concatBytes(Uint8Array.of(1), IR, u32be(i)));
  }
}

function ckd(
  suite: Suite,
  parent: HdNode,
  path: string | readonly number[],
): { K: SuitePoint; c: Uint8Array; tweak: bigint; idx: number[] } {
  const idx = parseHdPath(path);
  let K = decodeElement(suite, parent.publicKey, 'parent public key');
  let c = chainCodeArg(parent.chainCode);
  let tweak = suite.Fn.ZERO;
  for (const i of idx) {
    const step = ckdStep(suite, K, c, i);
    K = step.K;
    c = step.c;
    tweak = suite.Fn.add(tweak, step.t);
  }
  return { K, c, tweak, idx };
}

/**
 * Public child derivation from any node (BIP32/SLIP-0010 CKDpub for the Weierstrass suites, the
 * Tessera scheme for Ed25519), e.g. from a decoded xpub. Returns the child node and τ, the sum of
 * the per-level tweaks (child = parent + τ·G). For `secp256k1-tr` this is the BIP32 (internal) key:
 * the Taproot output tweak is applied by {@link deriveKey} / {@link taprootOutputKey}.
 */
export function ckdPub(
  suite: Suite,
  parent: HdNode,
  path: string | readonly number[],
): HdNode & { readonly tweak: bigint; readonly depth: number } {
  const r = ckd(suite, parent, path);
  return { publicKey: enc(r.K), chainCode: r.c, tweak: r.tweak, depth: r.idx.length };
}

/** BIP341 taproot_tweak_pubkey with an empty merkle root (BIP86): the tweak t and the output point. */
function taprootTweak(suite: Suite, internal: SuitePoint): { t: bigint; even: boolean; Q: SuitePoint } {
  const even = hasEvenY(internal);
  const t = bytesToNumberBE(schnorr.utils.taggedHash('TapTweak', enc(internal).subarray(1)));
  if (t >= suite.Fn.ORDER) throw bad('TapTweak hash is not below the group order; use another index');
  const Q = (even ? internal : internal.negate()).add(suite.Point.BASE.multiplyUnsafe(t));
  if (Q.is0()) throw bad('Taproot output key is the point at infinity; use another index');
  return { t, even, Q };
}

/**
 * BIP86 output key of a BIP341 internal key (33-byte SEC1 or 32-byte x-only): the x-only key that
 * `p2tr(internalKey)` pays to.
 */
export function taprootOutputKey(internalKey: Uint8Array): Uint8Array {
  const suite = SECP_TR();
  const bytes =
    internalKey instanceof Uint8Array && internalKey.length === 32
      ? concatBytes(Uint8Array.of(2), internalKey)
      : internalKey;
  return enc(taprootTweak(suite, decodeElement(suite, bytes, 'internal key')).Q).slice(1);
}

let secpTr: Suite | undefined;
const SECP_TR = (): Suite => (secpTr ??= getSuite('secp256k1-tr'));

/**
 * Derives the child key at `path` (non-hardened, see the module comment): the child's public
 * package as a {@link GroupKey}, its standard public key, chain code, and the share tweak every
 * participant applies with {@link deriveShare}. Deterministic: every party that holds the same
 * GroupKey (and chain code) gets the same child. Signers should derive the tweak themselves from
 * the key and the path rather than accept one from the coordinator.
 */
export function deriveKey(key: GroupKey, path: string | readonly number[], opts: HdOptions = {}): DerivedKey {
  const suite = key.suite;
  const { Fn, Point } = suite;
  const r = ckd(suite, hdRoot(key, opts), path);
  let negate = false;
  let add = r.tweak;
  let child = r.K;
  if (suite.id === 'secp256k1-tr') {
    const tr = taprootTweak(suite, r.K);
    negate = !tr.even;
    add = Fn.add(negate ? Fn.neg(r.tweak) : r.tweak, tr.t);
    child = tr.Q;
  }
  const addG = Point.BASE.multiplyUnsafe(add);
  const map = (bytes: Uint8Array, what: string, withAdd: boolean): Uint8Array => {
    let p = decodeElement(suite, bytes, what, false);
    if (negate) p = p.negate();
    if (withAdd) p = p.add(addG);
    if (p.is0()) throw bad(`HD path ${formatHdPath(r.idx)} maps ${what} to the identity; use another index`);
    return enc(p);
  };
  const pub = key.public;
  const commitments = pub.commitments.map((c, k) => map(c, `commitment ${k}`, k === 0));
  const verifyingShares: Record<string, Uint8Array> = {};
  for (const [id, vs] of Object.entries(pub.verifyingShares))
    verifyingShares[id] = map(vs, `verifying share ${id.slice(0, 8)}…`, true);
  // Internal consistency: the mapped group key is the derived child.
  if (!Point.fromBytes(commitments[0] as Uint8Array).equals(child))
    throw new Error('hd: derived package does not match the derived key');
  const childKey: GroupKey = Object.freeze({
    suite,
    threshold: key.threshold,
    roster: key.roster,
    public: { signers: { min: pub.signers.min, max: pub.signers.max }, commitments, verifyingShares } as FrostPublic,
  });
  return Object.freeze({
    key: childKey,
    path: formatHdPath(r.idx),
    publicKey: groupPublicKey(childKey),
    chainCode: r.c,
    tweak: Object.freeze({ suite: suite.id, negate, add }),
    internalKey: enc(r.K),
  });
}

/**
 * A participant's share of the child key: (negate ? -s : s) + add. The result works with the
 * child GroupKey from {@link deriveKey} in `commit`, `signShare` and `runLocalSign` unchanged.
 */
export function deriveShare(share: KeyShare, tweak: ShareTweak): KeyShare {
  if (!(share instanceof KeyShare)) throw bad('deriveShare needs a KeyShare');
  const Fn = share.suite.Fn;
  if (typeof tweak !== 'object' || tweak === null || tweak.suite !== share.suite.id)
    throw bad(`tweak is for suite ${String(tweak?.suite)}, share is ${share.suite.id}`);
  if (typeof tweak.negate !== 'boolean' || typeof tweak.add !== 'bigint' || !Fn.isValid(tweak.add))
    throw bad('malformed share tweak');
  const bytes = share.signingShare();
  try {
    const s = Fn.fromBytes(bytes);
    return new KeyShare(share.suite, share.identifier, Fn.toBytes(Fn.add(tweak.negate ? Fn.neg(s) : s, tweak.add)));
  } finally {
    bytes.fill(0);
  }
}

export type ExtendedKeyNetwork = 'mainnet' | 'testnet';
const XPUB_VERSION: Readonly<Record<ExtendedKeyNetwork, number>> = Object.freeze({
  mainnet: 0x0488b21e,
  testnet: 0x043587cf,
});

/**
 * The key's BIP32 extended public key (`xpub…`, or `tpub…` for testnet/signet/regtest): depth 0,
 * parent fingerprint 0, child number 0, the chain code, and `commitments[0]` as stored. For
 * `secp256k1-tr`, `tr(XPUB/<path>)` descriptors give the same addresses as {@link deriveKey}; for
 * `secp256k1` the same public keys. Only the secp256k1 suites have an xpub format.
 */
export function extendedPublicKey(key: GroupKey, opts: HdOptions & { network?: ExtendedKeyNetwork } = {}): string {
  if (key.suite.id !== 'secp256k1' && key.suite.id !== 'secp256k1-tr')
    throw bad(`suite ${key.suite.id} has no BIP32 extended-key format`);
  const version = XPUB_VERSION[opts.network ?? 'mainnet'];
  if (version === undefined) throw bad(`unknown network "${String(opts.network)}"`);
  const root = hdRoot(key, opts);
  decodeElement(key.suite, root.publicKey, 'group key');
  const body = concatBytes(
    u32be(version),
    Uint8Array.of(0),
    new Uint8Array(4),
    u32be(0),
    root.chainCode,
    root.publicKey,
  );
  return createBase58check(sha256).encode(body);
}

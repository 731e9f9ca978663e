/**
 * Threshold ECDSA signing, [DKLs23] Protocol 3.6, split at the presignature boundary of §3.3:
 * rounds 1–3 (`EcdsaPresign`) use no message and end in a {@link Presignature}; the online part
 * ({@link partialSign}) is one scalar pair per signer, combined by anyone ({@link combine}).
 *
 * Presignatures and additive (BIP32 non-hardened) key derivation: Groth & Shoup ("On the Security
 * of ECDSA with Additive Key Derivation and Presignatures", Eurocrypt 2022) show that a
 * presignature R known before the message and the derivation tweak are chosen weakens ECDSA; their
 * mitigation is to **re-randomise** the presignature once the message and tweak are fixed. Here
 * R' = R + ρ·G with ρ = Hs(keyId, sigid, signers, R, pk, tweak, digest), applied by every signer
 * (u'_i = u_i + ρ·φ_i) — always, whether or not a tweak is used.
 */
import { ErrorCode, InvalidArgumentError, InvalidStateError, ProtocolError, type Rng } from '@tessera/core';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToNumberBE } from '@noble/curves/utils.js';
import { oteReceive, oteSend, type OteMessage } from './ote.js';
import {
  Fn,
  H,
  Hs,
  Point,
  Q,
  encodeSet,
  keyPoint,
  lagrangeAtZero,
  pointFromBytes,
  pointToBytes,
  randomScalar,
  scalarFromBytes,
  scalarToBytes,
  u16,
  type Point as PointT,
} from './params.js';
import { bobInput, rvoleReceive, rvoleSend, type RvoleMessage } from './rvole.js';
import { blame, checkIndex, constantTimeEqual, instSid, type PairState } from './setup.js';

/** Round 1 to one counterparty: a commitment to R_i and the OT-extension message (me as Bob). */
export interface SignMessage1 {
  readonly commitment: Uint8Array;
  readonly ote: OteMessage;
}

/** Round 2 to one counterparty: R_i opened, the vector-OLE message (me as Alice) and the public checks. */
export interface SignMessage2 {
  readonly R: Uint8Array;
  readonly salt: Uint8Array;
  readonly rvole: RvoleMessage;
  /** Γ^u = c^u·G and Γ^v = c^v·G of my multiplication shares with this counterparty. */
  readonly gammaU: Uint8Array;
  readonly gammaV: Uint8Array;
  /** ψ = φ_i − χ_{i,j}: my mask corrected by my own random input to the other direction. */
  readonly psi: Uint8Array;
  /** pk_i = sk_i·G of my additive share. */
  readonly pk: Uint8Array;
}

/** A signer's presignature: secret (φ_i, u_i, v_i); used for one signature, then deleted. */
export interface Presignature {
  readonly keyId: Uint8Array;
  readonly sigid: Uint8Array;
  readonly signers: readonly number[];
  readonly me: number;
  /** R = Σ R_k (33 bytes). */
  readonly R: Uint8Array;
  /**
   * The point R encodes, when its holder has it decoded (at presigning, or from a stored
   * record): the online part then needs no square root. Absent: decoded from `R`.
   */
  readonly Rpoint?: PointT;
  /** The group public key (33 bytes). */
  readonly publicKey: Uint8Array;
  readonly phi: bigint;
  readonly u: bigint;
  readonly v: bigint;
}

/** A signer's contribution to one signature: (u'_i, w_i). */
export interface PartialSignature {
  readonly from: number;
  readonly u: Uint8Array;
  readonly w: Uint8Array;
}

/** A low-S ECDSA signature with its recovery id. */
export interface EcdsaSignature {
  readonly r: bigint;
  readonly s: bigint;
  /** 0–3: bit 0 the parity of R'.y after low-S normalisation, bit 1 set when R'.x ≥ q. */
  readonly recovery: number;
  /** r ‖ s, 64 bytes. */
  readonly compact: Uint8Array;
}

const commitR = (
  keyId: Uint8Array,
  sigid: Uint8Array,
  set: Uint8Array,
  i: number,
  j: number,
  R: Uint8Array,
  salt: Uint8Array,
) => H('com-R', [keyId, sigid, set, u16(i), u16(j), R, salt], 32);

const rvSid = (keyId: Uint8Array, bob: number, alice: number, epoch: number, sigid: Uint8Array, set: Uint8Array) =>
  H('rvole-sid', [instSid(keyId, bob, alice, epoch), sigid, set], 32);
const oteSid = (rv: Uint8Array) => H('ote-sid', [rv], 32);

interface Outgoing {
  chi: bigint;
  beta: Uint8Array;
  gamma: bigint[][];
  salt: Uint8Array;
  commitment: Uint8Array; // theirs, from round 1
}

/** One signer's presigning session: rounds 1–3 of Protocol 3.6 (steps 4–8). */
export class EcdsaPresign {
  readonly #keyId: Uint8Array;
  readonly #sigid: Uint8Array;
  readonly #me: number;
  readonly #signers: readonly number[];
  readonly #peers: readonly number[];
  readonly #set: Uint8Array;
  readonly #share: bigint;
  readonly #points: ReadonlyMap<number, bigint> | undefined;
  readonly #publicKey: PointT;
  readonly #pairs: ReadonlyMap<number, PairState>;
  readonly #rng: Rng;
  readonly #name: (j: number) => string;
  #stage = 0;
  #r = 0n;
  #phi = 0n;
  #R: Uint8Array = new Uint8Array(0);
  #Rpoint: PointT = Point.BASE;
  #sk = 0n;
  #pkPoint: PointT = Point.BASE;
  readonly #out = new Map<number, Outgoing>();
  readonly #c = new Map<number, [bigint, bigint]>();

  constructor(opts: {
    keyId: Uint8Array;
    /** 32 bytes, never used twice for this key by this signer (the caller's ledger ensures it). */
    sigid: Uint8Array;
    me: number;
    signers: readonly number[];
    /** My Shamir share p(x_me) of the key. */
    share: bigint;
    /**
     * Where each signer's share is evaluated (x_i), when not at its index: Tessera's DKG gives
     * each participant a hashed FROST identifier, so a key from it passes those here.
     */
    points?: ReadonlyMap<number, bigint>;
    publicKey: Uint8Array;
    pairs: ReadonlyMap<number, PairState>;
    rng: Rng;
    name?: (index: number) => string;
  }) {
    for (const j of opts.signers) checkIndex(j, 'signer');
    const signers = [...opts.signers].sort((a, b) => a - b);
    if (new Set(signers).size !== signers.length || signers.length < 2 || !signers.includes(opts.me))
      throw new InvalidArgumentError('signers: at least two distinct indices, mine among them');
    if (!(opts.sigid instanceof Uint8Array) || opts.sigid.length !== 32)
      throw new InvalidArgumentError('sigid: 32 bytes');
    if (typeof opts.share !== 'bigint' || opts.share <= 0n || opts.share >= Q)
      throw new InvalidArgumentError('share: a non-zero scalar');
    this.#peers = signers.filter((j) => j !== opts.me);
    for (const j of this.#peers)
      if (opts.pairs.get(j)?.peer !== j)
        throw new InvalidArgumentError(`no pair state with signer ${j}: set the pair up first`);
    this.#keyId = opts.keyId;
    this.#sigid = opts.sigid;
    this.#me = opts.me;
    this.#signers = signers;
    this.#set = encodeSet(signers);
    this.#share = opts.share;
    if (opts.points) {
      const xs = signers.map((j) => opts.points?.get(j));
      if (xs.some((x) => typeof x !== 'bigint' || x <= 0n || x >= Q) || new Set(xs).size !== xs.length)
        throw new InvalidArgumentError('points: a distinct non-zero scalar for every signer');
      this.#points = opts.points;
    }
    this.#publicKey = pointFromBytes(opts.publicKey, 'public key');
    this.#pairs = opts.pairs;
    this.#rng = opts.rng;
    this.#name = opts.name ?? String;
  }

  #advance(from: number, what: string): void {
    if (this.#stage !== from) throw new InvalidStateError(`ECDSA presign: ${what} out of order`);
    this.#stage = from + 1;
  }

  #expect<T>(incoming: ReadonlyMap<number, T>, round: string): void {
    const got = [...incoming.keys()].sort((a, b) => a - b);
    if (got.length !== this.#peers.length || got.some((j, k) => j !== this.#peers[k]))
      throw new ProtocolError(
        ErrorCode.UNEXPECTED_MESSAGE,
        `ECDSA presign ${round}: expected one message from each other signer`,
      );
  }

  #pair(j: number): PairState {
    return this.#pairs.get(j) as PairState;
  }

  /** Round 1 (steps 5–6): instance key r_i, mask φ_i, commitments to R_i, OT extension as Bob. */
  round1(): Map<number, SignMessage1> {
    this.#advance(0, 'round 1');
    this.#r = randomScalar(this.#rng);
    this.#phi = randomScalar(this.#rng);
    this.#Rpoint = Point.BASE.multiply(this.#r);
    this.#R = pointToBytes(this.#Rpoint);
    const out = new Map<number, SignMessage1>();
    for (const j of this.#peers) {
      const salt = this.#rng(32);
      const rv = rvSid(this.#keyId, this.#me, j, this.#pair(j).epoch, this.#sigid, this.#set);
      const ote = oteReceive(oteSid(rv), this.#pair(j).bob, this.#rng);
      this.#out.set(j, {
        chi: bobInput(ote.beta),
        beta: ote.beta,
        gamma: ote.gamma,
        salt,
        commitment: new Uint8Array(0),
      });
      out.set(j, {
        commitment: commitR(this.#keyId, this.#sigid, this.#set, this.#me, j, this.#R, salt),
        ote: ote.message,
      });
    }
    return out;
  }

  /** Round 2 (step 7): additive share sk_i, vector OLE as Alice with (r_i, sk_i), the public checks. */
  round2(incoming: ReadonlyMap<number, SignMessage1>): Map<number, SignMessage2> {
    this.#advance(1, 'round 2');
    this.#expect(incoming, 'round 1');
    // Zero share (F_Zero, [DKLs23] §3.1): Σ ζ_k = 0 over the signers.
    let zeta = 0n;
    for (const j of this.#peers) {
      const z = Hs('zero', [this.#pair(j).zeroSeed, this.#keyId, this.#sigid, this.#set], 1)[0] as bigint;
      zeta = this.#me < j ? Fn.sub(zeta, z) : Fn.add(zeta, z);
    }
    const lambda = this.#points
      ? lagrangeAtZero(
          this.#points.get(this.#me) as bigint,
          this.#signers.map((j) => this.#points?.get(j) as bigint),
        )
      : lagrangeAtZero(BigInt(this.#me), this.#signers.map(BigInt));
    this.#sk = Fn.add(Fn.mul(lambda, this.#share), zeta);
    this.#pkPoint = Point.BASE.multiply(this.#sk);
    const pk = pointToBytes(this.#pkPoint);
    const out = new Map<number, SignMessage2>();
    for (const j of this.#peers) {
      const m = incoming.get(j) as SignMessage1;
      const who = this.#name(j);
      if (!(m?.commitment instanceof Uint8Array) || m.commitment.length !== 32 || !m.ote)
        throw new ProtocolError(ErrorCode.DECODE, `ECDSA presign: malformed round-1 message from ${who}`, [who]);
      const mine = this.#out.get(j) as Outgoing;
      mine.commitment = m.commitment;
      const rv = rvSid(this.#keyId, j, this.#me, this.#pair(j).epoch, this.#sigid, this.#set);
      let ot: ReturnType<typeof oteSend>;
      try {
        ot = oteSend(oteSid(rv), this.#pair(j).alice, m.ote, who);
      } catch (e) {
        throw blame(e, who);
      }
      const { c, message } = rvoleSend(rv, [this.#r, this.#sk], ot.alpha0, ot.alpha1, this.#rng);
      this.#c.set(j, c);
      out.set(j, {
        R: this.#R,
        salt: mine.salt,
        rvole: message,
        gammaU: pointToBytes(Point.BASE.multiply(nonZero(c[0]))),
        gammaV: pointToBytes(Point.BASE.multiply(nonZero(c[1]))),
        psi: scalarToBytes(Fn.sub(this.#phi, mine.chi)),
        pk,
      });
    }
    return out;
  }

  /** Round 3 (step 8): the checks, then the presignature (φ_i, u_i, v_i, R). */
  round3(incoming: ReadonlyMap<number, SignMessage2>): Presignature {
    this.#advance(2, 'round 3');
    this.#expect(incoming, 'round 2');
    let R = this.#Rpoint;
    let pkSum = this.#pkPoint;
    let psiSum = 0n;
    let uSum = 0n;
    let vSum = 0n;
    for (const j of this.#peers) {
      const m = incoming.get(j) as SignMessage2;
      const who = this.#name(j);
      const mine = this.#out.get(j) as Outgoing;
      let Rj: PointT;
      let gu: PointT;
      let gv: PointT;
      let pkj: PointT;
      let psi: bigint;
      let d: [bigint, bigint];
      try {
        if (!(m?.salt instanceof Uint8Array) || m.salt.length !== 32 || !m.rvole)
          throw new InvalidArgumentError('malformed');
        Rj = pointFromBytes(m.R, 'R');
        gu = pointFromBytes(m.gammaU, 'Γu');
        gv = pointFromBytes(m.gammaV, 'Γv');
        pkj = pointFromBytes(m.pk, 'pk');
        psi = scalarFromBytes(m.psi, 'ψ');
      } catch (e) {
        throw new ProtocolError(ErrorCode.DECODE, `ECDSA presign: malformed round-2 message from ${who}`, [who], e);
      }
      // (a) R_j opens the commitment j made in round 1.
      if (!constantTimeEqual(commitR(this.#keyId, this.#sigid, this.#set, j, this.#me, m.R, m.salt), mine.commitment))
        throw new ProtocolError(ErrorCode.BAD_COMMITMENT, `ECDSA presign: ${who}'s R does not open its commitment`, [
          who,
        ]);
      // (b) The vector OLE where I am Bob (my b is χ_{i,j}) and j is Alice with (r_j, sk_j).
      const rv = rvSid(this.#keyId, this.#me, j, this.#pair(j).epoch, this.#sigid, this.#set);
      try {
        d = rvoleReceive(rv, mine.beta, mine.gamma, m.rvole, who);
      } catch (e) {
        throw blame(e, who);
      }
      // (c), (d): j used the r_j behind R_j and the sk_j behind pk_j in the multiplication.
      const okU = Rj.multiply(nonZero(mine.chi))
        .subtract(gu)
        .equals(Point.BASE.multiply(nonZero(d[0])));
      const okV = pkj
        .multiply(nonZero(mine.chi))
        .subtract(gv)
        .equals(Point.BASE.multiply(nonZero(d[1])));
      if (!okU || !okV)
        throw new ProtocolError(
          ErrorCode.BAD_MULTIPLICATION,
          `ECDSA presign: ${who}'s multiplication does not match its ${okU ? 'public key share' : 'nonce point'}`,
          [who],
        );
      const c = this.#c.get(j) as [bigint, bigint];
      R = R.add(Rj);
      pkSum = pkSum.add(pkj);
      psiSum = Fn.add(psiSum, psi);
      uSum = Fn.add(uSum, Fn.add(c[0], d[0]));
      vSum = Fn.add(vSum, Fn.add(c[1], d[1]));
    }
    // (e) The additive shares add up to the key: someone's sk_k is off otherwise (no blame).
    if (!pkSum.equals(this.#publicKey))
      throw new ProtocolError(
        ErrorCode.CONFIRMATION_MISMATCH,
        "ECDSA presign: the signers' key shares do not add up to the key",
      );
    // (f) R is usable.
    if (R.is0() || Fn.create(R.toAffine().x) === 0n)
      throw new ProtocolError(ErrorCode.INTERNAL, 'ECDSA presign: degenerate nonce point, start a new session');
    const mask = Fn.add(this.#phi, psiSum);
    const presig: Presignature = {
      keyId: this.#keyId,
      sigid: this.#sigid,
      signers: this.#signers,
      me: this.#me,
      R: pointToBytes(R),
      Rpoint: R,
      publicKey: pointToBytes(this.#publicKey),
      phi: this.#phi,
      u: Fn.add(Fn.mul(this.#r, mask), uSum),
      v: Fn.add(Fn.mul(this.#sk, mask), vSum),
    };
    this.#r = 0n;
    this.#sk = 0n;
    this.#out.clear();
    this.#c.clear();
    return presig;
  }
}

/** A multiplication share of zero would make its Γ the identity: negligible for honest parties. */
function nonZero(x: bigint): bigint {
  if (x === 0n)
    throw new ProtocolError(ErrorCode.INTERNAL, 'ECDSA presign: zero multiplication share, start a new session');
  return x;
}

/** The digest as a scalar (bits2int of a 32-byte digest, then mod q). */
function digestScalar(digest: Uint8Array): bigint {
  if (!(digest instanceof Uint8Array) || digest.length !== 32) throw new InvalidArgumentError('digest: 32 bytes');
  return Fn.create(bytesToNumberBE(digest));
}

/**
 * R' = R + ρ·G. ρ is public (a hash of the presignature's public statement, the tweak and the
 * digest), so its multiple is taken in variable time: about half the cost of the constant-time
 * ladder, on the online path where each signer and the combiner compute it.
 */
function rerandomised(ps: Pick<Presignature, 'R' | 'Rpoint'>, rho: bigint) {
  return (ps.Rpoint ?? pointFromBytes(ps.R, 'R')).add(Point.BASE.multiplyUnsafe(rho));
}

/** The Groth–Shoup re-randomiser ρ, the same for every signer of the session. */
function rerandomiser(
  ps: Pick<Presignature, 'keyId' | 'sigid' | 'signers' | 'R' | 'publicKey'>,
  tweak: bigint,
  digest: Uint8Array,
) {
  return Hs(
    'rerandomise',
    [ps.keyId, ps.sigid, encodeSet(ps.signers), ps.R, ps.publicKey, scalarToBytes(tweak), digest],
    1,
  )[0] as bigint;
}

/**
 * The online part (step 9): w_i = e·φ_i + r'_x·(v_i + δ·φ_i) on the re-randomised presignature,
 * for the key tweaked by δ (0 for the key itself). The caller must have durably marked the
 * presignature consumed before this leaves the signer.
 */
export function partialSign(ps: Presignature, digest: Uint8Array, tweak = 0n): PartialSignature {
  const e = digestScalar(digest);
  const rho = rerandomiser(ps, tweak, digest);
  const R = rerandomised(ps, rho);
  const rx = Fn.create(R.toAffine().x);
  const u = Fn.add(ps.u, Fn.mul(rho, ps.phi));
  const v = Fn.add(ps.v, Fn.mul(Fn.create(tweak), ps.phi));
  const w = Fn.add(Fn.mul(e, ps.phi), Fn.mul(rx, v));
  return { from: ps.me, u: scalarToBytes(u), w: scalarToBytes(w) };
}

/**
 * Combines every signer's partial (step 10) into a low-S signature with its recovery id, and
 * checks it with the plain verifier against the (tweaked) public key. A failure names nobody:
 * [DKLs23] gives no per-signer check of (u_i, w_i).
 */
export function combine(
  ps: Pick<Presignature, 'keyId' | 'sigid' | 'signers' | 'R' | 'Rpoint' | 'publicKey'>,
  digest: Uint8Array,
  partials: readonly PartialSignature[],
  tweak = 0n,
): EcdsaSignature {
  const from = partials.map((p) => p.from).sort((a, b) => a - b);
  if (from.length !== ps.signers.length || from.some((j, k) => j !== ps.signers[k]))
    throw new ProtocolError(
      ErrorCode.UNEXPECTED_MESSAGE,
      'ECDSA combine: expected one partial signature from each signer',
    );
  digestScalar(digest);
  const rho = rerandomiser(ps, tweak, digest);
  const R = rerandomised(ps, rho);
  const { x, y } = R.toAffine();
  let U = 0n;
  let W = 0n;
  for (const p of partials) {
    U = Fn.add(U, scalarFromBytes(p.u, 'partial u'));
    W = Fn.add(W, scalarFromBytes(p.w, 'partial w'));
  }
  if (U === 0n) throw new ProtocolError(ErrorCode.SIGNATURE_INVALID, 'ECDSA combine: degenerate partials');
  const r = Fn.create(x);
  let s = Fn.mul(W, Fn.inv(U));
  let flip = 0;
  if (s > Q >> 1n) {
    s = Fn.neg(s);
    flip = 1;
  }
  const recovery = (Number(y & 1n) ^ flip) | (x >= Q ? 2 : 0);
  const compact = new Uint8Array([...scalarToBytes(r), ...scalarToBytes(s)]);
  // The plain verifier, recovery id included (noble's "recovered" form, v ‖ r ‖ s: the point it
  // computes is the one recovery reconstructs, so one multiplication checks both), given the key
  // uncompressed (it then parses without a square root).
  const pk = tweakedPoint(ps.publicKey, tweak).toBytes(false);
  const recovered = new Uint8Array([recovery, ...compact]);
  if (
    r === 0n ||
    s === 0n ||
    !secp256k1.verify(recovered, digest, pk, { prehash: false, lowS: true, format: 'recovered' })
  )
    throw new ProtocolError(ErrorCode.SIGNATURE_INVALID, 'ECDSA combine: the signature does not verify');
  return { r, s, recovery, compact };
}

/** The public key tweaked by δ (BIP32 non-hardened derivation adds δ·G). */
export function tweakedKey(publicKey: Uint8Array, tweak: bigint): Uint8Array {
  return pointToBytes(tweakedPoint(publicKey, tweak));
}

function tweakedPoint(publicKey: Uint8Array, tweak: bigint) {
  const t = Fn.create(tweak);
  const pk = keyPoint(publicKey);
  // δ is public (BIP32's tweak of the public key and chain code): variable time is fine.
  return t === 0n ? pk : pk.add(Point.BASE.multiplyUnsafe(t));
}

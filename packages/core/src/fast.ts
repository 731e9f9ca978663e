/**
 * A faster RFC 9591 FROST protocol layer on noble's own point and field types.
 *
 * noble's `suite.frost` re-decodes and re-validates every element (ed25519: a subgroup check per
 * point) and recomputes the binding factors, group commitment, challenge and Lagrange coefficients
 * in every `signShare`, `verifyShare` and `aggregate` call. This module does each of those once:
 *
 * - {@link prepareKey}: decode + validate the group key and every verifying share once
 *   (RFC 9591 §3.1 DeserializeElement), apply the secp256k1-tr even-Y normalisation once.
 * - {@link prepareSession}: decode + validate the commitment list once, compute binding factors
 *   (§4.4), the group commitment (§4.5), the challenge (§4.6) and every signer's Lagrange
 *   coefficient (§4.2) once.
 * - `session.signShare` (§5.2), `session.verifyShare` (§5.4), `session.aggregate` (§5.3).
 *
 * No curve arithmetic is written here: only `Point.fromBytes`, `add`, `subtract`, `negate`,
 * `multiply`, `multiplyUnsafe`, `equals`, `toBytes`, noble's `mulAddUnsafe` MSM, and `Fn`.
 *
 * Outputs are byte-identical to noble 2.4.0's `createFROST` (abstract/frost.ts) for the four
 * Tessera suites; the property tests in test/fast-frost.test.ts check that differentially.
 * Departures from noble (none changes a successful output) are marked `DEPARTURE:` below.
 */
import { mulAddUnsafe } from '@noble/curves/abstract/curve.js';
import type { FrostPublic, FrostSecret, NonceCommitments, Nonces } from '@noble/curves/abstract/frost.js';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import type { Flavor, NP } from './frost-flavor.js';

/** What this module needs of a suite: its curve (./suites.ts gives every suite one). */
export interface FlavoredSuite {
  readonly flavor: Flavor;
}

const flavor = (suite: FlavoredSuite): Flavor => suite.flavor;

/**
 * The FROST identifier noble's `Identifier.derive` gives a name: HID(name) as a canonical scalar
 * (hex), HID the suite's hash-to-scalar with contextString || "id" (as frost-rs).
 */
export function deriveIdentifier(suite: FlavoredSuite, name: string): string {
  const f = flavor(suite);
  return bytesToHex(f.Fn.toBytes(f.hashToScalar(utf8ToBytes(name), f.HID)));
}
/** BIP340 has_even_y on a compressed SEC1 encoding. */
const hasEvenY = (p: NP): boolean => p.toBytes(true)[0] === 0x02;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** Aggregation failure; `cheaters` lists the identifiers whose shares fail verifyShare (noble's AggErr). */
export class FrostAggregateError extends Error {
  readonly cheaters: string[];
  constructor(message: string, cheaters: string[]) {
    super(message);
    this.name = 'FrostAggregateError';
    this.cheaters = cheaters;
  }
}

// ---------------------------------------------------------------------------------------------
// Element and identifier decoding (RFC 9591 §3.1)
// ---------------------------------------------------------------------------------------------

/**
 * RFC 9591 §3.1 DeserializeElement, as noble's `parsePoint`: decode, reject off-curve, identity and
 * non-prime-order elements. DEPARTURE: noble's ed25519 `validatePoint` hook repeats
 * assertValidity + isTorsionFree after the generic checks; those are pure predicates on the same
 * point, so they are run once here (same verdict).
 */
function parsePoint(f: Flavor, bytes: Uint8Array | undefined): NP {
  if (!(bytes instanceof Uint8Array)) throw new Error('invalid point: expected Uint8Array');
  let cache = validElements.get(f);
  if (!cache) validElements.set(f, (cache = new Map()));
  const hex = bytesToHex(bytes);
  const hit = cache.get(hex);
  if (hit) return hit;
  const p = f.Point.fromBytes(bytes);
  p.assertValidity();
  if (p.is0()) throw new Error('invalid point: identity');
  if (!p.isTorsionFree()) throw new Error('bad point: not in prime-order subgroup');
  if (cache.size >= VALID_ELEMENTS) cache.delete(cache.keys().next().value as string);
  cache.set(hex, p);
  return p;
}

/**
 * Elements validated lately, per curve: §3.1's verdict is a function of the bytes alone, so an
 * encoding seen valid once decodes to the same (immutable) point again without the subgroup
 * check, the costly part (Ed25519: a multiplication by the group order). Bounded; the oldest
 * go first. What fills it ahead of time: {@link validateElements}.
 */
const VALID_ELEMENTS = 16_384;
const validElements = new WeakMap<Flavor, Map<string, NP>>();

/**
 * Validates elements now (RFC 9591 §3.1; throws on an invalid one) so that a session using them
 * later does not: a co-signer's reserved commitments when the reservation is made, long before a
 * payment arrives with them (as commitment pools are validated at intake).
 */
export function validateElements(suite: FlavoredSuite, elements: readonly Uint8Array[]): void {
  for (const e of elements) parsePoint(flavor(suite), e);
}

/** noble's `parseIdentifier`: canonical hex of a non-zero scalar (RFC 9591 §3.1 DeserializeScalar). */
function parseIdentifier(f: Flavor, id: unknown): bigint {
  if (typeof id !== 'string') throw new Error('identifier: expected string');
  const n = f.Fn.fromBytes(hexToBytes(id));
  if (f.Fn.is0(n)) throw new Error('Invalid identifier ' + n);
  if (bytesToHex(f.Fn.toBytes(n)) !== id) throw new Error('expected canonical identifier hex');
  return n;
}

function scalarBytes(f: Flavor, b: unknown, what: string): Uint8Array {
  if (!(b instanceof Uint8Array) || b.length !== f.Fn.BYTES) throw new Error(`${what}: expected ${f.Fn.BYTES} bytes`);
  return b;
}

/**
 * Commitments validated once at intake (see {@link validateCommitment}): the frozen object handed
 * out, mapped to its decoded points and the encodings they came from. Only this module writes it.
 */
const validated = new WeakMap<
  object,
  {
    readonly f: Flavor;
    readonly hidingHex: string;
    readonly bindingHex: string;
    readonly hiding: NP;
    readonly binding: NP;
  }
>();

/**
 * Decodes and validates one signer's commitment (RFC 9591 §3.1 for the identifier and both
 * elements) when it arrives, e.g. into a coordinator's commitment pool, instead of on the signing
 * path. Returns a frozen copy of `c` (other own properties such as a nonce id are kept) that
 * {@link prepareSession} recognises: its elements are not decoded or subgroup-checked again as long
 * as its bytes are unchanged. Throws what prepareSession would throw for this commitment.
 */
export function validateCommitment<
  T extends { readonly identifier: string; readonly hiding: Uint8Array; readonly binding: Uint8Array },
>(suite: FlavoredSuite, c: T): Readonly<T> {
  const f = flavor(suite);
  parseIdentifier(f, c.identifier);
  // Copied first: the bytes parsed are the bytes kept, whatever else views the caller's buffer.
  const out = Object.freeze({ ...c, hiding: c.hiding.slice(), binding: c.binding.slice() });
  const hiding = parsePoint(f, out.hiding);
  const binding = parsePoint(f, out.binding);
  validated.set(out, { f, hidingHex: bytesToHex(out.hiding), bindingHex: bytesToHex(out.binding), hiding, binding });
  return out;
}

/** Options of {@link prepareSession}. */
export interface SessionOptions {
  /**
   * The caller's own commitment, computed by the caller from its nonces (G·d, G·e), so valid by
   * construction: list entries with exactly these bytes are decoded without the subgroup check.
   * {@link PreparedSession.signShare} still refuses nonces whose commitment is not the listed one.
   */
  readonly own?: NonceCommitments;
}

// ---------------------------------------------------------------------------------------------
// Prepared key
// ---------------------------------------------------------------------------------------------

/** A FROST public package decoded, validated and (secp256k1-tr) even-Y normalised once. */
export interface PreparedKey {
  readonly suite: FlavoredSuite;
  readonly signers: { readonly min: number; readonly max: number };
  /** Group key as the protocol uses it (secp256k1-tr: the even-Y lift). */
  readonly groupKey: NP;
  /** SerializeElement(groupKey), the first part of every binding-factor input (§4.4). */
  readonly groupKeyBytes: Uint8Array;
  /** Verifying shares as the protocol uses them (secp256k1-tr: negated with an odd-Y group key). */
  readonly verifyingShares: ReadonlyMap<string, NP>;
  /** secp256k1-tr with an odd-Y group key: signing shares are negated (noble `adjustSecret`). */
  readonly negateSecrets: boolean;
  /** @internal */
  readonly _f: Flavor;
}

/**
 * Decodes and validates a {@link FrostPublic} once.
 *
 * DEPARTURE (stricter): every commitment and verifying share is validated (§3.1) here, whereas
 * noble's signShare only validates commitments[0] and verifyShare only the signer's own share; a
 * package with any bad element is rejected up front instead of at the call that touches it. Keys of
 * `verifyingShares` must also be canonical identifiers (noble only parses the ones it looks up).
 */
export function prepareKey(suite: FlavoredSuite, pub: FrostPublic): PreparedKey {
  const f = flavor(suite);
  const { min, max } = pub.signers;
  // noble validateSigners (frost-rs compatible min >= 2).
  if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min < 2 || max < 2 || min > max)
    throw new Error('Wrong signers info: min=' + min + ' max=' + max);
  if (!Array.isArray(pub.commitments) || pub.commitments.length < 1)
    throw new Error('pub.commitments: expected non-empty array');
  const commitments = pub.commitments.map((c) => parsePoint(f, c));
  let groupKey = commitments[0]!;
  // secp256k1-tr (noble adjustPublic = frostPubToEvenY): with an odd-Y group key every public point
  // of the package is negated, and (adjustSecret) every signing share. BIP340 signs under the even-Y
  // lift of x(groupKey); negating the whole package keeps shares and verifying shares consistent.
  const negate = f.taproot && !hasEvenY(groupKey);
  if (negate) groupKey = groupKey.negate();
  const verifyingShares = new Map<string, NP>();
  for (const [id, bytes] of Object.entries(pub.verifyingShares)) {
    parseIdentifier(f, id);
    const P = parsePoint(f, bytes);
    verifyingShares.set(id, negate ? P.negate() : P);
  }
  return Object.freeze({
    suite,
    signers: Object.freeze({ min, max }),
    groupKey,
    groupKeyBytes: groupKey.toBytes(),
    verifyingShares,
    negateSecrets: negate,
    _f: f,
  });
}

// ---------------------------------------------------------------------------------------------
// Prepared session
// ---------------------------------------------------------------------------------------------

interface Entry {
  readonly id: string;
  readonly idNum: bigint;
  /** Raw bytes as listed (noble compares the signer's own commitment on raw hex). */
  readonly hidingHex: string;
  readonly bindingHex: string;
  readonly hiding: NP;
  readonly binding: NP;
  readonly bindingFactor: bigint;
  readonly lambda: bigint;
}

export interface PreparedSession {
  readonly key: PreparedKey;
  /** Group commitment R (§4.5), not even-Y adjusted. */
  readonly groupCommitment: NP;
  /** Challenge c (§4.6). */
  readonly challenge: bigint;
  /**
   * RFC 9591 §5.2 sign: same bytes as noble `signShare`; zeroes `nonces` on success. `commitment`,
   * when given, is the caller's record of G·d, G·e for these nonces (kept from commit time): it is
   * compared with the listed one instead of recomputing two constant-time base multiplications.
   */
  signShare(secret: FrostSecret, nonces: Nonces, commitment?: NonceCommitments): Uint8Array;
  /** RFC 9591 §5.4 verify_signature_share: same result (boolean or throw) as noble `verifyShare`. */
  verifyShare(identifier: string, sigShare: Uint8Array): boolean;
  /** RFC 9591 §5.3 aggregate: same bytes as noble `aggregate`; throws {@link FrostAggregateError}. */
  aggregate(sigShares: Record<string, Uint8Array>): Uint8Array;
  /**
   * The signature `aggregate` would return, without its final check: the caller verifies it (e.g.
   * with the scheme's plain single-party verifier) and calls `verifyShare` to attribute a failure.
   * Structural errors throw as in `aggregate`.
   */
  combine(sigShares: Record<string, Uint8Array>): Uint8Array;
}

/**
 * Decodes the commitment list once and computes everything a signing session shares.
 *
 * Throws where every noble call on this list would throw: invalid identifier or element (§3.1),
 * duplicate identifiers (noble: `deriveInterpolatingValue` throws in signShare/verifyShare,
 * aggregate throws AggErr with no cheaters; here a {@link FrostAggregateError} with `cheaters: []`).
 * The participant-count check (§5.2/§5.3 MIN <= NUM <= MAX) is deferred to signShare/aggregate
 * because noble's verifyShare does not apply it.
 */
export function prepareSession(
  key: PreparedKey,
  commitmentList: NonceCommitments[],
  msg: Uint8Array,
  opts: SessionOptions = {},
): PreparedSession {
  const f = key._f;
  const { Fn, Point } = f;
  if (!Array.isArray(commitmentList)) throw new Error('commitmentList: expected array');
  if (!(msg instanceof Uint8Array)) throw new Error('msg: expected Uint8Array');
  const message = msg.slice();
  const own = opts.own;
  const ownHex = own
    ? { id: own.identifier, hiding: bytesToHex(own.hiding), binding: bytesToHex(own.binding) }
    : undefined;
  const parsed = commitmentList.map((c) => {
    const idNum = parseIdentifier(f, c.identifier);
    const hidingHex = bytesToHex(c.hiding);
    const bindingHex = bytesToHex(c.binding);
    // Validated at intake (and unchanged since), or the caller's own G·d / G·e: decode only.
    const v = typeof c === 'object' && c !== null ? validated.get(c) : undefined;
    if (v && v.f === f && v.hidingHex === hidingHex && v.bindingHex === bindingHex)
      return { id: c.identifier, idNum, hidingHex, bindingHex, hiding: v.hiding, binding: v.binding };
    if (ownHex && ownHex.id === c.identifier && ownHex.hiding === hidingHex && ownHex.binding === bindingHex)
      return {
        id: c.identifier,
        idNum,
        hidingHex,
        bindingHex,
        hiding: f.Point.fromBytes(c.hiding),
        binding: f.Point.fromBytes(c.binding),
      };
    return {
      id: c.identifier,
      idNum,
      hidingHex,
      bindingHex,
      hiding: parsePoint(f, c.hiding),
      binding: parsePoint(f, c.binding),
    };
  });
  // §4.2 derive_interpolating_value raises on repeated x-coordinates.
  if (new Set(parsed.map((p) => p.idNum)).size !== parsed.length)
    throw new FrostAggregateError('duplicate identifier in commitment list', []);
  // §4.3/§5.2: commitment_list is sorted by identifier for encoding and binding factors.
  const sorted = [...parsed].sort((a, b) => (a.idNum < b.idNum ? -1 : a.idNum > b.idNum ? 1 : 0));
  // §4.3 encode_group_commitment_list: SerializeScalar(id) || SerializeElement(D) || SerializeElement(E),
  // from the decoded points (as noble: a non-canonical but accepted encoding is re-serialised).
  const encoded = concatBytes(...sorted.flatMap((p) => [Fn.toBytes(p.idNum), p.hiding.toBytes(), p.binding.toBytes()]));
  // §4.4 compute_binding_factors: rho_input_prefix = SerializeElement(PK) || H4(msg) || H5(encoded).
  const rhoPrefix = concatBytes(
    key.groupKeyBytes,
    f.hash(concatBytes(f.H4, message)),
    f.hash(concatBytes(f.H5, encoded)),
  );
  const rho = sorted.map((p) => f.hashToScalar(concatBytes(rhoPrefix, Fn.toBytes(p.idNum)), f.H1));
  // §4.5 compute_group_commitment: R = Σ D_i + Σ rho_i·E_i (hiding sum + one MSM, as noble).
  let hidingSum = Point.ZERO;
  for (const p of sorted) hidingSum = hidingSum.add(p.hiding);
  const msm = mulAddUnsafe(Point as never, sorted.map((p) => p.binding) as never[], rho) as unknown as NP;
  const R = hidingSum.add(msm);
  // §4.6 compute_challenge: H2(SerializeElement(R) || SerializeElement(PK) || msg); secp256k1-tr
  // (BIP340): int(tagged_hash("BIP0340/challenge", x(R) || x(PK) || msg)) mod n, x-only so R's Y
  // parity does not matter. Also reused by aggregate's final check, where noble recomputes the same
  // challenge after adjustPoint (x-only: unchanged; other suites: no adjustment).
  const c = f.taproot
    ? Fn.create(
        BigInt(
          '0x' +
            bytesToHex(
              (f.taggedHash as NonNullable<Flavor['taggedHash']>)(
                'BIP0340/challenge',
                R.toBytes(true).subarray(1),
                key.groupKeyBytes.subarray(1),
                message,
              ),
            ),
        ),
      )
    : f.hashToScalar(concatBytes(R.toBytes(), key.groupKeyBytes, message), f.H2);
  // §4.2 derive_interpolating_value for every participant: lambda_i = Π x_j / Π (x_j - x_i).
  const xs = sorted.map((p) => p.idNum);
  const lambdaOf = (xi: bigint) => {
    let num = Fn.ONE;
    let den = Fn.ONE;
    for (const x of xs) {
      if (x === xi) continue;
      num = Fn.mul(num, x);
      den = Fn.mul(den, Fn.sub(x, xi));
    }
    return Fn.div(num, den);
  };
  const byId = new Map<string, Entry>();
  sorted.forEach((p, i) => byId.set(p.id, { ...p, bindingFactor: rho[i]!, lambda: lambdaOf(p.idNum) }));
  const order = parsed.map((p) => p.id); // noble iterates the list as given (cheater order)
  const countOk = parsed.length >= key.signers.min && parsed.length <= key.signers.max;
  // secp256k1-tr: noble adjustNonces / adjustGroupCommitmentShare negate when R has odd Y (BIP340
  // signs with the even-Y lift of R).
  const oddR = f.taproot && !hasEvenY(R);

  const verifyShare = (identifier: string, sigShare: Uint8Array): boolean => {
    parseIdentifier(f, identifier);
    const z = Fn.fromBytes(scalarBytes(f, sigShare, 'sigShare'));
    const e = byId.get(identifier);
    if (e === undefined) throw new Error('cannot find identifier commitment');
    const PK = key.verifyingShares.get(identifier);
    if (PK === undefined) throw new Error('missing verifying share for ' + identifier);
    // §5.4: comm_share = D_i + rho_i·E_i ; check z_i·G == comm_share + (c·lambda_i)·PK_i.
    let commShare = e.hiding.add(e.binding.multiplyUnsafe(e.bindingFactor));
    if (oddR) commShare = commShare.negate();
    const l = Point.BASE.multiplyUnsafe(z);
    const r = commShare.add(PK.multiplyUnsafe(Fn.mul(c, e.lambda)));
    return l.equals(r);
  };

  const sum = (sigShares: Record<string, Uint8Array>): { z: bigint; sig: Uint8Array } => {
    if (typeof sigShares !== 'object' || sigShares === null) throw new Error('sigShares: expected object');
    // noble's structural checks, each an AggErr with no cheaters.
    if (!countOk) throw new FrostAggregateError('aggregation failed', []);
    if (order.length !== Object.keys(sigShares).length) throw new FrostAggregateError('aggregation failed', []);
    for (const id of order)
      if (!(id in sigShares) || !key.verifyingShares.has(id)) throw new FrostAggregateError('aggregation failed', []);
    // §5.3: z = Σ z_i
    let z = Fn.ZERO;
    for (const id of order) z = Fn.add(z, Fn.fromBytes(sigShares[id]!));
    // RFC 9591 Appendix A / §5.3: SerializeElement(R) || SerializeScalar(z);
    // secp256k1-tr drops R's SEC1 prefix byte (BIP340 x-only R, noble adjustTx.encode).
    const sig = concatBytes(R.toBytes(), Fn.toBytes(z));
    return { z, sig: f.taproot ? sig.slice(1) : sig };
  };

  return Object.freeze({
    key,
    groupCommitment: R,
    challenge: c,

    signShare(secret: FrostSecret, nonces: Nonces, commitment?: NonceCommitments): Uint8Array {
      scalarBytes(f, secret.signingShare, 'secret.signingShare');
      scalarBytes(f, nonces.hiding, 'nonces.hiding');
      scalarBytes(f, nonces.binding, 'nonces.binding');
      if (!countOk) throw new Error('Wrong number of commitments=' + parsed.length); // §5.2
      const h0 = Fn.fromBytes(nonces.hiding);
      const b0 = Fn.fromBytes(nonces.binding);
      if (Fn.is0(h0) || Fn.is0(b0)) throw new Error('signing nonces already used');
      // noble: the list must carry exactly this signer's commitments to these nonces (raw bytes,
      // checked before any taproot adjustment): against the caller's record of G·d, G·e when it
      // has one, else recomputed with constant-time multiplications (the nonces are secret).
      const e = byId.get(secret.identifier);
      if (e === undefined) throw new Error('missing signer commitment');
      const mine = commitment
        ? commitment.identifier === secret.identifier &&
          e.hidingHex === bytesToHex(commitment.hiding) &&
          e.bindingHex === bytesToHex(commitment.binding)
        : e.hidingHex === bytesToHex(Point.BASE.multiply(h0).toBytes()) &&
          e.bindingHex === bytesToHex(Point.BASE.multiply(b0).toBytes());
      if (!mine) throw new Error('incorrect signer commitment');
      let sk = Fn.fromBytes(secret.signingShare);
      if (key.negateSecrets) sk = Fn.neg(sk); // secp256k1-tr adjustSecret
      const h = oddR ? Fn.neg(h0) : h0; // secp256k1-tr adjustNonces
      const b = oddR ? Fn.neg(b0) : b0;
      // §5.2: z_i = d_i + (e_i·rho_i) + (lambda_i·s_i·c)
      const z = Fn.add(Fn.add(h, Fn.mul(b, e.bindingFactor)), Fn.mul(Fn.mul(e.lambda, sk), c));
      // Nonces are one-time (§5.1); noble zeroes the caller's arrays after a successful share.
      nonces.hiding.fill(0);
      nonces.binding.fill(0);
      return Fn.toBytes(z);
    },

    verifyShare,

    aggregate(sigShares: Record<string, Uint8Array>): Uint8Array {
      const { z, sig } = sum(sigShares);
      // As noble: no per-share verification; the aggregate is checked once with the suite's
      // equation (Basic.verify: [h](z·G - c·PK - R) == O, R and PK even-Y adjusted for TR) and
      // shares are attributed with verifyShare only on failure.
      const Rv = oddR ? R.negate() : R;
      let check = Point.BASE.multiplyUnsafe(z).subtract(key.groupKey.multiplyUnsafe(c)).subtract(Rv);
      check = check.clearCofactor();
      if (!Point.ZERO.equals(check)) {
        const cheaters: string[] = [];
        for (const id of order) if (!verifyShare(id, sigShares[id]!)) cheaters.push(id);
        throw new FrostAggregateError('aggregation failed', cheaters);
      }
      return sig;
    },

    combine: (sigShares: Record<string, Uint8Array>): Uint8Array => sum(sigShares).sig,
  });
}

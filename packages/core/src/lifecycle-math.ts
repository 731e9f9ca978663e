/**
 * Arithmetic and checks shared by refresh and reshare (./lifecycle.ts): element encoding, MSM,
 * polynomial evaluation in the exponent, Lagrange coefficients, blame, input shape checks. Only
 * the suite's `Fn` and `Point` operations and noble's MSM; no curve arithmetic of our own.
 */
import { mulAddUnsafe } from '@noble/curves/abstract/curve.js';
import { equalBytes, fromHex, type Rng } from './bytes.js';
import { ErrorCode, InvalidArgumentError, ProtocolError, isTesseraError } from './errors.js';
import { sameIdentity, type ParticipantIdentity } from './identity.js';
import type { GroupKey, RosterEntry } from './key.js';
import { KEY_ID_PATTERN } from './records.js';
import type { Suite, SuitePoint } from './suites.js';

// ---- small helpers ----------------------------------------------------------------------------

/** noble points also carry these (not in {@link SuitePoint}): RFC 9591 §3.1 element checks. */
export interface CheckedPoint extends SuitePoint {
  assertValidity(): void;
  isTorsionFree(): boolean;
}

/**
 * RFC 9591 §3.1 DeserializeElement for a sender's commitment: exact length, on the curve, not the
 * identity, in the prime-order subgroup (Ed25519: no small-order component), canonical encoding.
 * Throws a plain Error; callers attribute it.
 */
export function decodeElement(suite: Suite, bytes: Uint8Array, what: string): SuitePoint {
  if (!(bytes instanceof Uint8Array) || bytes.length !== suite.elementBytes)
    throw new Error(`${what}: expected ${suite.elementBytes} bytes`);
  let p: CheckedPoint;
  try {
    p = suite.Point.fromBytes(bytes) as CheckedPoint;
    p.assertValidity();
  } catch {
    throw new Error(`${what}: not a valid group element`);
  }
  if (p.is0()) throw new Error(`${what}: the identity element`);
  if (!p.isTorsionFree()) throw new Error(`${what}: not in the prime-order subgroup`);
  if (!equalBytes(p.toBytes(), bytes)) throw new Error(`${what}: non-canonical encoding`);
  return p;
}

/** Serialises a derived public element; the identity has no encoding in RFC 9591 (§3.1). */
export function encodeElement(p: SuitePoint, what: string): Uint8Array {
  if (p.is0()) throw new ProtocolError(ErrorCode.INVALID_STATE, `${what} is the identity element`);
  return p.toBytes();
}

/** Σ_k scalars[k]·points[k] with noble's variable-time MSM. Public data only. */
export function msm(suite: Suite, points: readonly SuitePoint[], scalars: readonly bigint[]): SuitePoint {
  return mulAddUnsafe(suite.Point as never, points as never[], scalars as bigint[]) as unknown as SuitePoint;
}

/** [x^first, x^(first+1), …] (count entries), in Fn. */
export function powers(suite: Suite, x: bigint, first: number, count: number): bigint[] {
  const Fn = suite.Fn;
  let acc = first === 0 ? Fn.ONE : Fn.pow(x, BigInt(first));
  const out: bigint[] = [];
  for (let k = 0; k < count; k++) {
    out.push(acc);
    acc = Fn.mul(acc, x);
  }
  return out;
}

/** Σ_k x^(first+k)·points[k]: a Feldman VSS evaluation "in the exponent" (public data). */
export function evalInExponent(suite: Suite, points: readonly SuitePoint[], x: bigint, first: number): SuitePoint {
  return msm(suite, points, powers(suite, x, first, points.length));
}

/** Horner evaluation of Σ_k coeffs[k]·x^k in Fn. */
export function evalPoly(suite: Suite, coeffs: readonly bigint[], x: bigint): bigint {
  const Fn = suite.Fn;
  let acc = Fn.ZERO;
  for (let k = coeffs.length - 1; k >= 0; k--) acc = Fn.add(Fn.mul(acc, x), coeffs[k] as bigint);
  return acc;
}

/** x·G for a secret scalar (constant-time `multiply`; the zero scalar maps to the identity). */
export function mulBase(suite: Suite, x: bigint): SuitePoint {
  return suite.Fn.is0(x) ? suite.Point.ZERO : suite.Point.BASE.multiply(x);
}

export function identifierScalar(suite: Suite, identifier: string): bigint {
  return suite.Fn.fromBytes(fromHex(identifier));
}

/** RFC 9591 §4.2 derive_interpolating_value(L, x_i) at 0: Π_{j≠i} x_j / (x_j − x_i). */
export function lagrangeAtZero(suite: Suite, xs: readonly bigint[], xi: bigint): bigint {
  const Fn = suite.Fn;
  if (new Set(xs).size !== xs.length || !xs.includes(xi))
    throw new InvalidArgumentError('Lagrange coefficient: invalid identifier set');
  let num = Fn.ONE;
  let den = Fn.ONE;
  for (const x of xs) {
    if (x === xi) continue;
    num = Fn.mul(num, x);
    den = Fn.mul(den, Fn.sub(x, xi));
  }
  return Fn.div(num, den);
}

/** A fresh uniformly random non-zero scalar (noble's FROST scalar generation). */
export function randomNonZeroScalar(suite: Suite, rng: Rng): bigint {
  for (;;) {
    const x = suite.Fn.fromBytes(suite.frost.utils.randomScalar(rng));
    if (!suite.Fn.is0(x)) return x;
  }
}

/** Re-throws a failure inside `fn` as attributable to `culprit` (whose signature covers the input). */
export function blame<T>(culprit: string, code: ErrorCode, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isTesseraError(e) && e.culprits.length > 0) throw e;
    const c = isTesseraError(e) ? e.code : code;
    const msg = e instanceof Error ? e.message : String(e);
    throw new ProtocolError(c, `${culprit}: ${msg}`, [culprit], e);
  }
}

export function checkSessionId(sessionId: Uint8Array): void {
  if (!(sessionId instanceof Uint8Array) || sessionId.length < 16 || sessionId.length > 64)
    throw new InvalidArgumentError('session id must be 16..64 bytes');
}

export function checkKeyIdAndEpoch(keyId: string, fromEpoch: number): void {
  if (typeof keyId !== 'string' || !KEY_ID_PATTERN.test(keyId))
    throw new InvalidArgumentError(`malformed key id "${String(keyId).slice(0, 40)}"`);
  if (!Number.isSafeInteger(fromEpoch) || fromEpoch < 0 || fromEpoch >= Number.MAX_SAFE_INTEGER)
    throw new InvalidArgumentError('fromEpoch must be a non-negative safe integer');
}

/**
 * Checks the shape of a key's public data (what the protocols below rely on): threshold in
 * 2..n, exactly t VSS commitments, one verifying share per roster member and no other.
 */
export function checkKeyShape(suite: Suite, key: GroupKey, what: string): void {
  if (!key || key.suite?.id !== suite.id) throw new InvalidArgumentError(`${what} is not a ${suite.id} key`);
  const n = key.roster.length;
  if (!Number.isInteger(key.threshold) || key.threshold < 2 || key.threshold > n)
    throw new InvalidArgumentError(`${what}: threshold out of range`);
  if (key.public.commitments.length !== key.threshold)
    throw new InvalidArgumentError(
      `${what}: ${key.public.commitments.length} VSS commitments for threshold ${key.threshold}`,
    );
  const vs = key.public.verifyingShares;
  if (Object.keys(vs).length !== n || !key.roster.every((r) => vs[r.identifier] instanceof Uint8Array))
    throw new InvalidArgumentError(`${what}: verifying shares do not match the roster`);
}

/** Roster entries of `ids` in roster order; unknown or repeated ids are refused. */
export function pickContributors(roster: readonly RosterEntry[], ids: readonly string[]): RosterEntry[] {
  if (!Array.isArray(ids)) throw new InvalidArgumentError('contributors must be a list of participant ids');
  const set = new Set(ids);
  if (set.size !== ids.length) throw new InvalidArgumentError('a contributor is listed twice');
  for (const id of ids)
    if (!roster.some((r) => r.id === id))
      throw new InvalidArgumentError(`contributor ${String(id)} is not a participant of the key`);
  return roster.filter((r) => set.has(r.id));
}

/** Roster entry for `identity`, which must match the roster's keys exactly. */
export function me(roster: readonly RosterEntry[], identity: ParticipantIdentity, what: string): RosterEntry {
  const r = roster.find((x) => x.id === identity.id);
  if (!r || !sameIdentity(r, identity.public))
    throw new InvalidArgumentError(`${identity.id} is not ${what} (or its keys differ from the roster)`);
  return r;
}

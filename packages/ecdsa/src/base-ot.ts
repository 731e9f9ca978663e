/**
 * Base OT for the OT extension: the two-message endemic OT of Masny and Rindal (eprint 2019/706),
 * run over secp256k1, 128 OTs per directed instance — the choice of [DKLs23] §8.1. No zero-knowledge
 * proofs are needed.
 *
 * Roles are those of the extension: Bob (the multiplication receiver, the extension *receiver*)
 * is the base-OT **sender** and learns both seeds of every OT; Alice (the extension sender) is the
 * base-OT **receiver** with choice bits Δ and learns one seed of each.
 *
 * The hash-to-group is RFC 9380 hash-to-curve, never H(x)·G: a point whose discrete log is public
 * would let Bob open Alice's choices, learn Δ and with it Alice's multiplication inputs.
 *
 * The variable-base products use noble's `multiplyUnsafe` (4× faster than the ladder here, which
 * made a key's setup take seconds per node): every secret scalar it multiplies is used in one
 * setup only (Alice's a_k per OT, Bob's b per directed instance), once per key, so a timing side
 * channel gets one aggregate measurement of a secret that is never used again.
 */
import { DecodeError, ErrorCode, ProtocolError, type Rng } from '@tessera/core';
import { drain } from './steps.js';
import {
  BASE_OTS,
  Fn,
  H,
  HtC,
  Point,
  bit,
  pointFromBytes,
  pointToBytes,
  randomScalar,
  u16,
  type Point as PointT,
} from './params.js';

/** Bob's state after sending his point: b, used once. */
export interface BaseOtSender {
  readonly b: bigint;
  readonly point: Uint8Array;
}

/** What Bob keeps: both 32-byte seeds of each base OT. */
export interface BaseOtSeeds {
  readonly s0: readonly Uint8Array[];
  readonly s1: readonly Uint8Array[];
}

/** What Alice keeps: her 128 choice bits Δ (16 bytes) and the seed of her choice for each OT. */
export interface BaseOtChoices {
  readonly delta: Uint8Array;
  readonly s: readonly Uint8Array[];
}

/** Setup message S1 (Bob → Alice): B = b·G. */
export function baseOtStart(rng: Rng): BaseOtSender {
  const b = randomScalar(rng);
  return { b, point: pointToBytes(Point.BASE.multiply(b)) };
}

const hPoint = (sid: Uint8Array, k: number, other: Uint8Array): PointT =>
  HtC('mr19-H', new Uint8Array([...sid, ...u16(k), ...other]));

function seed(sid: Uint8Array, k: number, c: number, B: Uint8Array, r0: Uint8Array, r1: Uint8Array, key: PointT) {
  return H('mr19-key', [sid, u16(k), new Uint8Array([c]), B, r0, r1, pointToBytes(key)], 32);
}

/**
 * Setup message S2 (Alice → Bob): for each OT k with choice c = Δ_k, r^{1−c} is a random point of
 * unknown discrete log and r^c = a_k·G − H(sid, k, r^{1−c}); Alice's seed is derived from a_k·B.
 */
export function baseOtRespond(
  sid: Uint8Array,
  bobPoint: Uint8Array,
  rng: Rng,
): { pairs: Uint8Array[]; choices: BaseOtChoices } {
  return drain(baseOtRespondSteps(sid, bobPoint, rng));
}

/** {@link baseOtRespond} one OT per step (a caller may pause between steps: see ./steps.ts). */
export function* baseOtRespondSteps(
  sid: Uint8Array,
  bobPoint: Uint8Array,
  rng: Rng,
): Generator<void, { pairs: Uint8Array[]; choices: BaseOtChoices }> {
  const B = pointFromBytes(bobPoint, 'base OT sender point');
  const delta = rng(BASE_OTS / 8);
  const pairs: Uint8Array[] = [];
  const s: Uint8Array[] = [];
  for (let k = 0; k < BASE_OTS; k++) {
    const c = bit(delta, k);
    const a = randomScalar(rng);
    const other = pointToBytes(HtC('mr19-rand', rng(32)));
    const mine = Point.BASE.multiply(a).subtract(hPoint(sid, k, other));
    if (mine.is0()) throw new ProtocolError(ErrorCode.INTERNAL, 'base OT: degenerate point, retry');
    const r = c === 0 ? [pointToBytes(mine), other] : [other, pointToBytes(mine)];
    pairs.push(new Uint8Array([...(r[0] as Uint8Array), ...(r[1] as Uint8Array)]));
    s.push(seed(sid, k, c, bobPoint, r[0] as Uint8Array, r[1] as Uint8Array, B.multiplyUnsafe(a)));
    yield;
  }
  return { pairs, choices: { delta, s } };
}

/** Bob's seeds from Alice's S2: s^c = H(…, b·(r^c + H(sid, k, r^{1−c}))) for c = 0, 1. */
export function baseOtFinish(sid: Uint8Array, sender: BaseOtSender, pairs: readonly Uint8Array[]): BaseOtSeeds {
  return drain(baseOtFinishSteps(sid, sender, pairs));
}

/** {@link baseOtFinish} one OT per step. */
export function* baseOtFinishSteps(
  sid: Uint8Array,
  sender: BaseOtSender,
  pairs: readonly Uint8Array[],
): Generator<void, BaseOtSeeds> {
  if (!Array.isArray(pairs) || pairs.length !== BASE_OTS)
    throw new DecodeError(`base OT: expected ${BASE_OTS} point pairs`);
  const s0: Uint8Array[] = [];
  const s1: Uint8Array[] = [];
  const b = Fn.create(sender.b);
  for (let k = 0; k < BASE_OTS; k++) {
    const pair = pairs[k] as Uint8Array;
    if (!(pair instanceof Uint8Array) || pair.length !== 66)
      throw new DecodeError('base OT: a pair is two 33-byte points');
    const r0 = pair.subarray(0, 33);
    const r1 = pair.subarray(33, 66);
    const R0 = pointFromBytes(r0, 'base OT r0');
    const R1 = pointFromBytes(r1, 'base OT r1');
    const M0 = R0.add(hPoint(sid, k, r1));
    const M1 = R1.add(hPoint(sid, k, r0));
    if (M0.is0() || M1.is0()) throw new DecodeError('base OT: degenerate point');
    s0.push(seed(sid, k, 0, sender.point, r0, r1, M0.multiplyUnsafe(b)));
    s1.push(seed(sid, k, 1, sender.point, r0, r1, M1.multiplyUnsafe(b)));
    yield;
  }
  return { s0, s1 };
}

/**
 * Two-party random vector OLE ([DKLs23] Functionality 3.5, realised by Protocol 5.2): Bob's
 * random b = ⟨g, β⟩ comes from his OT choice bits; Alice inputs a = (a_1, a_2) — in signing
 * (r_i, sk_i), both multiplied by the **same** b (the "forced reuse" that binds u and v to one
 * mask) — and the two end with c_i + d_i = a_i·b. Alice adds two random check columns â and a
 * Fiat–Shamir challenge θ; Bob verifies the hash μ of the combined pads, so an Alice who sends
 * inconsistent corrections is caught except where she guessed a bit of β (Protocol 5.2, step 4),
 * and a failure names her and bans her from the pair.
 */
import { DecodeError, ErrorCode, ProtocolError, type Rng } from '@tessera/core';
import { ELL, Fn, H, Hs, Q, RHO, XI, bit, randomScalar, scalarFromBytes, scalarToBytes, u32 } from './params.js';
import { PAYLOAD } from './ote.js';

/** Alice's one message: the correction matrix ã (ξ × 4 scalars), η (2 scalars) and μ (32 bytes). */
export interface RvoleMessage {
  readonly corrections: Uint8Array; // ξ·4·32 bytes, row-major
  readonly eta: Uint8Array; // 2·32 bytes
  readonly mu: Uint8Array; // 32 bytes
}

export const RVOLE_MESSAGE_BYTES = XI * PAYLOAD * 32 + RHO * 32 + 32;

/** x mod q, for a sum or product not reduced yet (possibly negative). */
function mod(x: bigint): bigint {
  const r = x % Q;
  return r < 0n ? r + Q : r;
}

let gadgetCache: bigint[] | undefined;
/** The public gadget vector g ∈ Z_q^ξ, a common reference string ([DKLs23] Protocol 5.2). */
export function gadget(): bigint[] {
  gadgetCache ??= Hs('gadget', [u32(XI)], XI);
  return gadgetCache;
}

/** b = ⟨g, β⟩: Bob's random multiplication input from his first ξ choice bits. */
export function bobInput(beta: Uint8Array): bigint {
  const g = gadget();
  let b = 0n;
  for (let j = 0; j < XI; j++) if (bit(beta, j)) b = Fn.add(b, g[j] as bigint);
  return b;
}

function theta(sid: Uint8Array, corrections: Uint8Array): bigint[][] {
  const t = Hs('rvole-theta', [sid, corrections], ELL * RHO);
  return [0, 1].map((i) => [0, 1].map((k) => t[RHO * i + k] as bigint));
}

function muHash(sid: Uint8Array, mu: bigint[][]): Uint8Array {
  const bytes = new Uint8Array(XI * RHO * 32);
  for (let j = 0; j < XI; j++)
    for (let k = 0; k < RHO; k++) bytes.set(scalarToBytes(mu[j]?.[k] as bigint), 32 * (RHO * j + k));
  return H('rvole-mu', [sid, bytes], 32);
}

/** Alice (Protocol 5.2, step 3): her shares c and the message for Bob. */
export function rvoleSend(
  sid: Uint8Array,
  a: readonly [bigint, bigint],
  alpha0: readonly bigint[][],
  alpha1: readonly bigint[][],
  rng: Rng,
): { c: [bigint, bigint]; message: RvoleMessage } {
  const g = gadget();
  const check = [randomScalar(rng), randomScalar(rng)];
  const inputs = [a[0], a[1], check[0] as bigint, check[1] as bigint];
  const corrections = new Uint8Array(XI * PAYLOAD * 32);
  // Sums are reduced once at the end (BigInt `%` dominates the cost otherwise).
  const acc = [0n, 0n];
  for (let j = 0; j < XI; j++) {
    const a0 = alpha0[j] as bigint[];
    const a1 = alpha1[j] as bigint[];
    for (let col = 0; col < PAYLOAD; col++)
      corrections.set(
        scalarToBytes(mod((a0[col] as bigint) - (a1[col] as bigint) + (inputs[col] as bigint))),
        32 * (PAYLOAD * j + col),
      );
    for (let i = 0; i < ELL; i++) acc[i] = (acc[i] as bigint) + (g[j] as bigint) * (a0[i] as bigint);
  }
  const c: [bigint, bigint] = [Fn.neg(mod(acc[0] as bigint)), Fn.neg(mod(acc[1] as bigint))];
  const th = theta(sid, corrections);
  const eta = new Uint8Array(RHO * 32);
  for (let k = 0; k < RHO; k++) {
    let e = check[k] as bigint;
    for (let i = 0; i < ELL; i++) e += (th[i]?.[k] as bigint) * (a[i] as bigint);
    eta.set(scalarToBytes(mod(e)), 32 * k);
  }
  const mu: bigint[][] = [];
  for (let j = 0; j < XI; j++) {
    const a0 = alpha0[j] as bigint[];
    const row: bigint[] = [];
    for (let k = 0; k < RHO; k++) {
      let m = a0[ELL + k] as bigint;
      for (let i = 0; i < ELL; i++) m += (th[i]?.[k] as bigint) * (a0[i] as bigint);
      row.push(mod(m));
    }
    mu.push(row);
  }
  return { c, message: { corrections, eta, mu: muHash(sid, mu) } };
}

/**
 * Bob (Protocol 5.2, step 4): checks Alice's message against his OT outputs γ and choice bits β
 * and returns his shares d, with c_i + d_i = a_i·b. `alice` names her in the error.
 */
export function rvoleReceive(
  sid: Uint8Array,
  beta: Uint8Array,
  gamma: readonly bigint[][],
  message: RvoleMessage,
  alice: string,
): [bigint, bigint] {
  const { corrections, eta, mu } = message;
  if (!(corrections instanceof Uint8Array) || corrections.length !== XI * PAYLOAD * 32)
    throw new DecodeError(`vector OLE: expected ${XI * PAYLOAD} correction scalars`);
  if (!(eta instanceof Uint8Array) || eta.length !== RHO * 32 || !(mu instanceof Uint8Array) || mu.length !== 32)
    throw new DecodeError('vector OLE: malformed check values');
  const g = gadget();
  const th = theta(sid, corrections);
  const etas = [0, 1].map((k) => scalarFromBytes(eta.subarray(32 * k, 32 * k + 32), 'vector OLE η'));
  const acc = [0n, 0n];
  const mus: bigint[][] = [];
  for (let j = 0; j < XI; j++) {
    const bj = bit(beta, j) === 1;
    const gj = gamma[j] as bigint[];
    const v: bigint[] = [];
    for (let col = 0; col < PAYLOAD; col++) {
      const corr = scalarFromBytes(
        corrections.subarray(32 * (PAYLOAD * j + col), 32 * (PAYLOAD * j + col + 1)),
        'vector OLE ã',
      );
      // Every correction is decoded (and checked canonical) whether or not it is used.
      v.push(bj ? (gj[col] as bigint) + corr : (gj[col] as bigint));
    }
    const row: bigint[] = [];
    for (let k = 0; k < RHO; k++) {
      let m = v[ELL + k] as bigint;
      for (let i = 0; i < ELL; i++) m += (th[i]?.[k] as bigint) * (v[i] as bigint);
      if (bj) m -= etas[k] as bigint;
      row.push(mod(m));
    }
    mus.push(row);
    for (let i = 0; i < ELL; i++) acc[i] = (acc[i] as bigint) + (g[j] as bigint) * (v[i] as bigint);
  }
  const d: [bigint, bigint] = [mod(acc[0] as bigint), mod(acc[1] as bigint)];
  const want = muHash(sid, mus);
  let diff = 0;
  for (let i = 0; i < 32; i++) diff |= (want[i] as number) ^ (mu[i] as number);
  if (diff !== 0)
    throw new ProtocolError(
      ErrorCode.BAD_MULTIPLICATION,
      `vector OLE check failed: ${alice} sent inconsistent corrections`,
      [alice],
    );
  return d;
}

/**
 * Correlated-OT extension in one message from Bob: KOS / SoftSpokenOT with k = 1 under
 * Fiat–Shamir, as [DKLs23] §5.1 describes (Functionality 5.1, F_EOTE). From the 128 base OTs of a
 * directed pair (base-ot.ts) each signing session extends 768 OTs: the first ξ = 416 carry Bob's
 * random choice bits β (his multiplication output is b = ⟨g, β⟩), the rest pad the consistency
 * check. Alice checks that Bob used one choice vector across all 128 columns (the fold check);
 * a failure names Bob, and the signer (signer/src/ecdsa-signer.ts) bans the pair durably ([DKLs23] Protocol 3.6, step 8).
 */
import { DecodeError, ErrorCode, ProtocolError, type Rng } from '@tessera/core';
import type { BaseOtChoices, BaseOtSeeds } from './base-ot.js';
import { GfMultiplier, fold } from './gf256.js';
import { BASE_OTS, COLUMN_BYTES, H, XI, bit, hasher, toScalars, u16, u32, xor } from './params.js';

/** Scalars per OT payload: w = ℓ + ρ = 4 ([DKLs23] Protocol 5.2). */
export const PAYLOAD = 4;

/** Bob's one message: U_0..U_127 (96 B each), the folded choice vector x̃ and folded columns t̃_k. */
export interface OteMessage {
  readonly u: Uint8Array; // 128 × 96 bytes
  readonly xt: Uint8Array; // 32 bytes
  readonly tt: Uint8Array; // 128 × 32 bytes
}

export const OTE_MESSAGE_BYTES = BASE_OTS * COLUMN_BYTES + 32 + BASE_OTS * 32;

const prgs = (sid: Uint8Array) => {
  const h = hasher('ote-prg', COLUMN_BYTES, [sid]);
  return (k: number, seed: Uint8Array) => h([u16(k), seed]);
};

function challenges(sid: Uint8Array, u: Uint8Array): [GfMultiplier, GfMultiplier] {
  const chi = H('ote-chi', [sid, u], 64);
  return [new GfMultiplier(chi.subarray(0, 32)), new GfMultiplier(chi.subarray(32, 64))];
}

/** Row j (16 bytes) of the 128 columns: bit k of row j is bit j of column k. */
function rows(columns: readonly Uint8Array[], count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let j = 0; j < count; j++) {
    const row = new Uint8Array(BASE_OTS / 8);
    const byte = j >>> 3;
    const shift = j & 7;
    for (let k = 0; k < BASE_OTS; k++) {
      const b = (((columns[k] as Uint8Array)[byte] as number) >>> shift) & 1;
      row[k >>> 3] = (row[k >>> 3] as number) | (b << (k & 7));
    }
    out.push(row);
  }
  return out;
}

/** The random-OT outputs of a session: row j ↦ four scalars, H(ote-out, sid, j, row). */
const payloads = (sid: Uint8Array) => {
  const h = hasher('ote-out', 48 * PAYLOAD, [sid]);
  return (j: number, row: Uint8Array) => toScalars(h([u32(j), row]), PAYLOAD);
};

/**
 * Bob's side: random choice bits (the first ξ are β), the message for Alice and his OT outputs
 * γ_j = α^{β_j}_j (four scalars each) for j < ξ.
 */
export function oteReceive(
  sid: Uint8Array,
  seeds: BaseOtSeeds,
  rng: Rng,
): { message: OteMessage; beta: Uint8Array; gamma: bigint[][] } {
  const x = rng(COLUMN_BYTES);
  const prg = prgs(sid);
  const t0: Uint8Array[] = [];
  const u = new Uint8Array(BASE_OTS * COLUMN_BYTES);
  for (let k = 0; k < BASE_OTS; k++) {
    const a = prg(k, seeds.s0[k] as Uint8Array);
    const b = prg(k, seeds.s1[k] as Uint8Array);
    t0.push(a);
    u.set(xor(xor(a, b), x), k * COLUMN_BYTES);
  }
  const [chi1, chi2] = challenges(sid, u);
  const tt = new Uint8Array(BASE_OTS * 32);
  for (let k = 0; k < BASE_OTS; k++) tt.set(fold(chi1, chi2, t0[k] as Uint8Array), 32 * k);
  const payload = payloads(sid);
  const gamma = rows(t0, XI).map((row, j) => payload(j, row));
  return { message: { u, xt: fold(chi1, chi2, x), tt }, beta: x.slice(0, XI / 8), gamma };
}

/**
 * Alice's side: checks Bob's message and returns both OT outputs α^0_j, α^1_j for j < ξ.
 * `bob` names him in the error when the check fails.
 */
export function oteSend(
  sid: Uint8Array,
  choices: BaseOtChoices,
  message: OteMessage,
  bob: string,
): { alpha0: bigint[][]; alpha1: bigint[][] } {
  const { u, xt, tt } = message;
  if (!(u instanceof Uint8Array) || u.length !== BASE_OTS * COLUMN_BYTES)
    throw new DecodeError(`OT extension: expected ${BASE_OTS * COLUMN_BYTES} bytes of columns`);
  if (!(xt instanceof Uint8Array) || xt.length !== 32 || !(tt instanceof Uint8Array) || tt.length !== BASE_OTS * 32)
    throw new DecodeError('OT extension: malformed check values');
  const [chi1, chi2] = challenges(sid, u);
  const prg = prgs(sid);
  const q: Uint8Array[] = [];
  let ok = 0;
  for (let k = 0; k < BASE_OTS; k++) {
    const d = bit(choices.delta, k);
    const col = prg(k, choices.s[k] as Uint8Array);
    const qk = d ? xor(col, u.subarray(k * COLUMN_BYTES, (k + 1) * COLUMN_BYTES)) : col;
    q.push(qk);
    // fold(Q_k) must equal t̃_k ⊕ Δ_k·x̃ (compared over every k before deciding).
    const want = d ? xor(tt.subarray(32 * k, 32 * k + 32), xt) : tt.subarray(32 * k, 32 * k + 32);
    const got = fold(chi1, chi2, qk);
    for (let i = 0; i < 32; i++) ok |= (got[i] as number) ^ (want[i] as number);
  }
  if (ok !== 0)
    throw new ProtocolError(
      ErrorCode.BAD_MULTIPLICATION,
      `OT extension consistency check failed: ${bob} used inconsistent choice bits`,
      [bob],
    );
  const alpha0: bigint[][] = [];
  const alpha1: bigint[][] = [];
  const payload = payloads(sid);
  for (const [j, row] of rows(q, XI).entries()) {
    alpha0.push(payload(j, row));
    alpha1.push(payload(j, xor(row, choices.delta)));
  }
  return { alpha0, alpha1 };
}

/**
 * The protocol's messages and kept state as bytes: the generated wire types of
 * proto/tessera/v1/packages.proto (EcdsaSetup1/2, EcdsaPresign1/2, EcdsaPairs,
 * EcdsaPresignatureSecret). Every decoder checks each field's exact length, so a malformed
 * message fails here with a DecodeError before any protocol step runs on it.
 */
import { DecodeError, decodeMessage, encodeMessage } from '@tessera/core';
import { BASE_OTS, COLUMN_BYTES, RHO, XI } from './params.js';
import { PAYLOAD, type OteMessage } from './ote.js';
import type { RvoleMessage } from './rvole.js';
import type { PairState, SetupMessage1, SetupMessage2 } from './setup.js';
import type { SignMessage1, SignMessage2 } from './sign.js';

function len(b: Uint8Array | undefined, n: number, what: string): Uint8Array {
  if (!(b instanceof Uint8Array) || b.length !== n)
    throw new DecodeError(`${what}: expected ${n} bytes, got ${b instanceof Uint8Array ? b.length : 'none'}`);
  return b;
}

function list(bs: readonly Uint8Array[] | undefined, count: number, n: number, what: string): Uint8Array[] {
  if (!Array.isArray(bs) || bs.length !== count) throw new DecodeError(`${what}: expected ${count} entries`);
  return bs.map((b, i) => len(b, n, `${what}[${i}]`));
}

export const encodeSetup1 = (m: SetupMessage1): Uint8Array =>
  encodeMessage('EcdsaSetup1', { bobPoint: m.bobPoint, zeroCommit: m.zeroCommit });

export function decodeSetup1(b: Uint8Array): SetupMessage1 {
  const w = decodeMessage('EcdsaSetup1', b);
  return { bobPoint: len(w.bobPoint, 33, 'setup point'), zeroCommit: len(w.zeroCommit, 32, 'zero-seed commitment') };
}

export const encodeSetup2 = (m: SetupMessage2): Uint8Array =>
  encodeMessage('EcdsaSetup2', { pairs: [...m.pairs], zeroSeed: m.zeroSeed, zeroSalt: m.zeroSalt });

export function decodeSetup2(b: Uint8Array): SetupMessage2 {
  const w = decodeMessage('EcdsaSetup2', b);
  // The base-OT answer's own decoder checks each pair's length and content.
  if (!Array.isArray(w.pairs) || w.pairs.length !== BASE_OTS) throw new DecodeError('setup answer: expected 128 pairs');
  return { pairs: w.pairs, zeroSeed: len(w.zeroSeed, 32, 'zero seed'), zeroSalt: len(w.zeroSalt, 32, 'zero salt') };
}

export const encodePresign1 = (m: SignMessage1): Uint8Array =>
  encodeMessage('EcdsaPresign1', { commitment: m.commitment, ote: { u: m.ote.u, xt: m.ote.xt, tt: m.ote.tt } });

export function decodePresign1(b: Uint8Array): SignMessage1 {
  const w = decodeMessage('EcdsaPresign1', b);
  const ote: OteMessage = {
    u: len(w.ote?.u, BASE_OTS * COLUMN_BYTES, 'OT extension u'),
    xt: len(w.ote?.xt, 32, 'OT extension x̃'),
    tt: len(w.ote?.tt, BASE_OTS * 32, 'OT extension t̃'),
  };
  return { commitment: len(w.commitment, 32, 'R commitment'), ote };
}

export const encodePresign2 = (m: SignMessage2): Uint8Array =>
  encodeMessage('EcdsaPresign2', {
    r: m.R,
    salt: m.salt,
    rvole: { corrections: m.rvole.corrections, eta: m.rvole.eta, mu: m.rvole.mu },
    gammaU: m.gammaU,
    gammaV: m.gammaV,
    psi: m.psi,
    pk: m.pk,
  });

export function decodePresign2(b: Uint8Array): SignMessage2 {
  const w = decodeMessage('EcdsaPresign2', b);
  const rvole: RvoleMessage = {
    corrections: len(w.rvole?.corrections, XI * PAYLOAD * 32, 'vector OLE corrections'),
    eta: len(w.rvole?.eta, RHO * 32, 'vector OLE η'),
    mu: len(w.rvole?.mu, 32, 'vector OLE μ'),
  };
  return {
    R: len(w.r, 33, 'R'),
    salt: len(w.salt, 32, 'R salt'),
    rvole,
    gammaU: len(w.gammaU, 33, 'Γu'),
    gammaV: len(w.gammaV, 33, 'Γv'),
    psi: len(w.psi, 32, 'ψ'),
    pk: len(w.pk, 33, 'pk'),
  };
}

/** A signer's pair states of one key, by counterparty id (its roster index inside). */
export interface PairRecords {
  readonly keyId: string;
  readonly me: number;
  readonly pairs: ReadonlyMap<string, PairState>;
}

export function encodePairs(r: PairRecords): Uint8Array {
  return encodeMessage('EcdsaPairs', {
    version: 1,
    keyId: r.keyId,
    me: r.me,
    pairs: [...r.pairs].map(([peer, p]) => ({
      peer,
      index: p.peer,
      epoch: p.epoch,
      bobS0: [...p.bob.s0],
      bobS1: [...p.bob.s1],
      aliceDelta: p.alice.delta,
      aliceS: [...p.alice.s],
      zeroSeed: p.zeroSeed,
    })),
  });
}

export function decodePairs(b: Uint8Array): PairRecords {
  const w = decodeMessage('EcdsaPairs', b);
  if (w.version !== 1) throw new DecodeError(`ECDSA pair records: unsupported version ${w.version}`);
  const pairs = new Map<string, PairState>();
  for (const p of w.pairs) {
    pairs.set(p.peer, {
      peer: p.index,
      epoch: p.epoch,
      bob: { s0: list(p.bobS0, BASE_OTS, 32, 'seed'), s1: list(p.bobS1, BASE_OTS, 32, 'seed') },
      alice: { delta: len(p.aliceDelta, BASE_OTS / 8, 'choices'), s: list(p.aliceS, BASE_OTS, 32, 'seed') },
      zeroSeed: len(p.zeroSeed, 32, 'zero seed'),
    });
  }
  return { keyId: w.keyId, me: w.me, pairs };
}

/** A presignature's secret scalars (φ, u, v), 32 bytes each. */
export interface PresignatureSecret {
  readonly phi: Uint8Array;
  readonly u: Uint8Array;
  readonly v: Uint8Array;
}

export const encodePresignatureSecret = (s: PresignatureSecret): Uint8Array =>
  encodeMessage('EcdsaPresignatureSecret', { phi: s.phi, u: s.u, v: s.v });

export function decodePresignatureSecret(b: Uint8Array): PresignatureSecret {
  const w = decodeMessage('EcdsaPresignatureSecret', b);
  return { phi: len(w.phi, 32, 'φ'), u: len(w.u, 32, 'u'), v: len(w.v, 32, 'v') };
}

/**
 * In-process harness for the protocol tests and the bench: a dealt test key (a random polynomial,
 * only here — product code never has the polynomial), every pair set up, and a whole signing
 * session with the messages routed in memory.
 */
import { randomBytes } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { ParticipantIdentity, getSuite, groupPublicKey, runLocalDkg, type GroupKey } from '@tessera/core';
import {
  EcdsaPairSetup,
  EcdsaPresign,
  combine,
  partialSign,
  type EcdsaSignature,
  type PairState,
  type Presignature,
} from '../src/index.js';

export const rng = (n = 32) => new Uint8Array(randomBytes(n));
const Fn = secp256k1.Point.Fn;

export interface TestKey {
  keyId: Uint8Array;
  n: number;
  t: number;
  secret: bigint;
  shares: Map<number, bigint>;
  publicKey: Uint8Array;
  pairs: Map<number, Map<number, PairState>>;
  /** Evaluation points of the shares when not the indices (a key from Tessera's DKG). */
  points?: Map<number, bigint>;
}

/** A random degree-(t−1) polynomial's values at 1..n. */
export function deal(n: number, t: number): { secret: bigint; shares: Map<number, bigint> } {
  const coeffs = Array.from({ length: t }, () => Fn.create(BigInt(`0x${randomBytes(48).toString('hex')}`)));
  const shares = new Map<number, bigint>();
  for (let i = 1; i <= n; i++) {
    let y = 0n;
    for (let k = t - 1; k >= 0; k--) y = Fn.add(Fn.mul(y, BigInt(i)), coeffs[k] as bigint);
    shares.set(i, y);
  }
  return { secret: coeffs[0] as bigint, shares };
}

/** Runs the pairwise setup among `parties` in memory. */
export function setupPairs(
  keyId: Uint8Array,
  parties: readonly number[],
  epoch = 0,
): Map<number, Map<number, PairState>> {
  const sessions = new Map(
    parties.map((i) => [i, new EcdsaPairSetup({ keyId, me: i, peers: parties.filter((j) => j !== i), epoch, rng })]),
  );
  const m1 = new Map([...sessions].map(([i, s]) => [i, s.round1()]));
  const m2 = new Map([...sessions].map(([i, s]) => [i, s.round2(inbox(m1, i))]));
  return new Map([...sessions].map(([i, s]) => [i, s.finish(inbox(m2, i))]));
}

/** What `to` receives: the message each other party addressed to it. */
export function inbox<M>(sent: ReadonlyMap<number, ReadonlyMap<number, M>>, to: number): Map<number, M> {
  const out = new Map<number, M>();
  for (const [from, m] of sent) if (from !== to) out.set(from, m.get(to) as M);
  return out;
}

export function testKey(n: number, t: number): TestKey {
  const { secret, shares } = deal(n, t);
  const keyId = rng(32);
  const parties = [...shares.keys()];
  return {
    keyId,
    n,
    t,
    secret,
    shares,
    publicKey: secp256k1.Point.BASE.multiply(secret).toBytes(true),
    pairs: setupPairs(keyId, parties),
  };
}

export function presignSessions(key: TestKey, signers: readonly number[], sigid = rng(32)): Map<number, EcdsaPresign> {
  return new Map(
    signers.map((i) => [
      i,
      new EcdsaPresign({
        keyId: key.keyId,
        sigid,
        me: i,
        signers,
        share: key.shares.get(i) as bigint,
        publicKey: key.publicKey,
        pairs: key.pairs.get(i) as Map<number, PairState>,
        ...(key.points ? { points: key.points } : {}),
        rng,
      }),
    ]),
  );
}

/** Rounds 1–3 for every signer, messages routed in memory. */
export function presign(key: TestKey, signers: readonly number[]): Map<number, Presignature> {
  const s = presignSessions(key, signers);
  const m1 = new Map([...s].map(([i, x]) => [i, x.round1()]));
  const m2 = new Map([...s].map(([i, x]) => [i, x.round2(inbox(m1, i))]));
  return new Map([...s].map(([i, x]) => [i, x.round3(inbox(m2, i))]));
}

export function sign(key: TestKey, signers: readonly number[], message: Uint8Array, tweak = 0n): EcdsaSignature {
  return signDigest(key, signers, sha256(message), tweak);
}

/** A whole signature of a 32-byte digest (a chain's sighash or transaction hash). */
export function signDigest(key: TestKey, signers: readonly number[], digest: Uint8Array, tweak = 0n): EcdsaSignature {
  const ps = presign(key, signers);
  const partials = [...ps.values()].map((p) => partialSign(p, digest, tweak));
  return combine(ps.values().next().value as Presignature, digest, partials, tweak);
}

/** A 2-of-3 key made by Tessera's DKG on secp256k1 (shares at hashed FROST identifiers), pairs set up. */
export function dkgKey(pairs?: Map<number, Map<number, PairState>>): TestKey & { group: GroupKey } {
  const people = ['signer-a', 'signer-b', 'signer-c'].map((id) => ParticipantIdentity.generate(id));
  const out = runLocalDkg(getSuite('secp256k1'), 2, people);
  const group = (out.get('signer-a') as NonNullable<ReturnType<typeof out.get>>).key;
  const keyId = rng(32);
  // Signer k + 1 is roster entry k; its share is evaluated at its FROST identifier.
  return {
    group,
    keyId,
    n: 3,
    t: 2,
    secret: 0n, // unknown: no party ever holds it
    shares: new Map(
      group.roster.map((r, k) => [
        k + 1,
        BigInt(`0x${Buffer.from(out.get(r.id)?.share.signingShare() as Uint8Array).toString('hex')}`),
      ]),
    ),
    points: new Map(group.roster.map((r, k) => [k + 1, BigInt(`0x${r.identifier}`)])),
    publicKey: groupPublicKey(group),
    pairs: pairs ?? setupPairs(keyId, [1, 2, 3]),
  };
}

/**
 * DKLs23 signing end to end, in memory: every quorum of a 2-of-3 key and the 3-of-3 key sign;
 * each signature is checked by two independent verifiers (noble's ECDSA and OpenSSL through
 * node:crypto), is low-S, and its recovery id recovers the key; a BIP32-style tweak signs for the
 * tweaked key only. Then a hostile co-signer, one deviation at a time: each is refused with its
 * typed code, naming it where the protocol can ([DKLs23] §4: the commitment, the OT-extension and
 * vector-OLE checks and the public-value equations name the sender; a bad ψ, u or w is only caught
 * by the final verification, which names nobody), and t−1 signers cannot sign.
 */
import { createPublicKey, verify as osslVerify } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { TesseraError, groupPublicKey } from '@tessera/core';
import {
  EcdsaPairSetup,
  combine,
  partialSign,
  tweakedKey,
  type EcdsaSignature,
  type Presignature,
  type SignMessage1,
  type SignMessage2,
} from '../src/index.js';
import { deal, dkgKey, inbox, presign, presignSessions, rng, sign, testKey, type TestKey } from './harness.js';

const Point = secp256k1.Point;
let key23: TestKey;
let key33: TestKey;

beforeAll(() => {
  key23 = testKey(3, 2);
  // Pair states do not depend on the key: the 3-of-3 key reuses the same pairs.
  const { secret, shares } = deal(3, 3);
  key33 = { ...key23, t: 3, secret, shares, publicKey: Point.BASE.multiply(secret).toBytes(true) };
}, 60_000);

/** OpenSSL's verdict on an ECDSA/SHA-256 signature of `message` (a second, independent verifier). */
function openssl(message: Uint8Array, sig: EcdsaSignature, publicKey: Uint8Array): boolean {
  const { x, y } = Point.fromBytes(publicKey).toAffine();
  const b64 = (n: bigint) => Buffer.from(n.toString(16).padStart(64, '0'), 'hex').toString('base64url');
  const pub = createPublicKey({ key: { kty: 'EC', crv: 'secp256k1', x: b64(x), y: b64(y) }, format: 'jwk' });
  return osslVerify('sha256', message, { key: pub, dsaEncoding: 'ieee-p1363' }, sig.compact);
}

function checkSignature(message: Uint8Array, sig: EcdsaSignature, publicKey: Uint8Array): void {
  const digest = sha256(message);
  expect(secp256k1.verify(sig.compact, digest, publicKey, { prehash: false, lowS: true })).toBe(true);
  expect(openssl(message, sig, publicKey)).toBe(true);
  expect(sig.s <= Point.Fn.ORDER >> 1n).toBe(true);
  const recovered = secp256k1.Signature.fromBytes(sig.compact).addRecoveryBit(sig.recovery).recoverPublicKey(digest);
  expect(Buffer.from(recovered.toBytes(true)).toString('hex')).toBe(Buffer.from(publicKey).toString('hex'));
}

function failure(fn: () => unknown): TesseraError {
  try {
    fn();
  } catch (e) {
    if (e instanceof TesseraError) return e;
    throw e;
  }
  throw new Error('expected a failure');
}

describe('threshold ECDSA signing (DKLs23)', () => {
  it('every 2-of-3 quorum signs; two independent verifiers accept; low-S; the recovery id recovers the key', () => {
    for (const signers of [
      [1, 2],
      [1, 3],
      [2, 3],
    ]) {
      const message = rng(40);
      checkSignature(message, sign(key23, signers, message), key23.publicKey);
    }
  });

  it("a key made by Tessera's DKG (secp256k1 shares at hashed identifiers) signs for the DKG's group key", () => {
    const fromDkg = dkgKey(key23.pairs);
    const message = rng(33);
    checkSignature(message, sign(fromDkg, [1, 3], message), groupPublicKey(fromDkg.group));
  });

  it('the 3-of-3 key signs with all three', () => {
    const message = rng(12);
    checkSignature(message, sign(key33, [1, 2, 3], message), key33.publicKey);
  });

  it('random quorums and messages (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.subarray([1, 2, 3], { minLength: 2 }), (message, signers) => {
        checkSignature(message, sign(key23, signers, message), key23.publicKey);
      }),
      { numRuns: 4 },
    );
  });

  it('a derivation tweak δ signs for pk + δ·G, and that signature does not verify for pk', () => {
    const tweak = 0x1234567890abcdefn;
    const message = rng(20);
    const sig = sign(key23, [1, 3], message, tweak);
    const child = tweakedKey(key23.publicKey, tweak);
    checkSignature(message, sig, child);
    expect(secp256k1.verify(sig.compact, sha256(message), key23.publicKey, { prehash: false })).toBe(false);
  });

  it('a presignature re-randomised for another digest gives another R (Groth–Shoup): two signatures never share r', () => {
    const ps = presign(key23, [1, 2]);
    const sigs = [rng(8), rng(8)].map((m) => {
      const digest = sha256(m);
      return combine(
        ps.get(1) as Presignature,
        digest,
        [...ps.values()].map((p) => partialSign(p, digest)),
      );
    });
    // (A presignature is used once in the product; here the same one twice only to see ρ at work.)
    expect(sigs[0]?.r).not.toBe(sigs[1]?.r);
  });

  it('t − 1 signers of the 3-of-3 key: the shares do not add up to the key, nobody is blamed', () => {
    const e = failure(() => presign(key33, [1, 2]));
    expect(e.code).toBe('CONFIRMATION_MISMATCH');
    expect(e.culprits).toEqual([]);
  });

  it('misuse: fewer than two signers, a signer without pair state, rounds out of order or missing messages', () => {
    expect(failure(() => presignSessions(key23, [1])).code).toBe('INVALID_ARGUMENT');
    expect(failure(() => presignSessions({ ...key23, pairs: new Map([[1, new Map()]]) }, [1, 2])).code).toBe(
      'INVALID_ARGUMENT',
    );
    const s = presignSessions(key23, [1, 2]);
    const one = s.get(1);
    expect(failure(() => one?.round2(new Map())).code).toBe('INVALID_STATE');
    one?.round1();
    expect(failure(() => one?.round1()).code).toBe('INVALID_STATE');
    const s2 = presignSessions(key23, [1, 2]);
    s2.get(1)?.round1();
    expect(failure(() => s2.get(1)?.round2(new Map())).code).toBe('UNEXPECTED_MESSAGE');
  });
});

/** A 2-of-3 session between 1 and 2 where `tamper` edits what 2 sends 1 in round 1 or 2. */
function hostile(tamper: { r1?: (m: SignMessage1) => SignMessage1; r2?: (m: SignMessage2) => SignMessage2 }): {
  round2?: TesseraError;
  round3?: TesseraError;
  combine?: TesseraError;
} {
  const s = presignSessions(key23, [1, 2]);
  const m1 = new Map([...s].map(([i, x]) => [i, x.round1()]));
  const to1 = inbox(m1, 1);
  if (tamper.r1) to1.set(2, tamper.r1(to1.get(2) as SignMessage1));
  let r2: Map<number, SignMessage2>;
  try {
    r2 = (s.get(1) as NonNullable<ReturnType<typeof s.get>>).round2(to1);
  } catch (e) {
    return { round2: e as TesseraError };
  }
  const m2 = new Map([
    [1, r2],
    [2, s.get(2)?.round2(inbox(m1, 2)) as Map<number, SignMessage2>],
  ]);
  const in1 = inbox(m2, 1);
  if (tamper.r2) in1.set(2, tamper.r2(in1.get(2) as SignMessage2));
  let ps1: Presignature;
  try {
    ps1 = (s.get(1) as NonNullable<ReturnType<typeof s.get>>).round3(in1);
  } catch (e) {
    return { round3: e as TesseraError };
  }
  const ps2 = s.get(2)?.round3(inbox(m2, 2)) as Presignature;
  const digest = sha256(rng(10));
  try {
    combine(ps1, digest, [partialSign(ps1, digest), partialSign(ps2, digest)]);
  } catch (e) {
    return { combine: e as TesseraError };
  }
  return {};
}

const plusG = (b: Uint8Array) => Point.fromBytes(b).add(Point.BASE).toBytes(true);
const flip = (b: Uint8Array, at = 0) => {
  const c = b.slice();
  c[at] = (c[at] as number) ^ 1;
  return c;
};

describe('a hostile co-signer, one deviation at a time', () => {
  it('an honest run completes (control)', () => {
    expect(hostile({})).toEqual({});
  });

  it('R opened differently from its commitment: BAD_COMMITMENT naming it', () => {
    const r = hostile({ r2: (m) => ({ ...m, R: plusG(m.R) }) });
    expect(r.round3?.code).toBe('BAD_COMMITMENT');
    expect(r.round3?.culprits).toEqual(['2']);
  });

  it('Γu or Γv or pk_j inconsistent with its multiplication: BAD_MULTIPLICATION naming it', () => {
    for (const field of ['gammaU', 'gammaV', 'pk'] as const) {
      const r = hostile({ r2: (m) => ({ ...m, [field]: plusG(m[field]) }) });
      expect(r.round3?.code, field).toBe('BAD_MULTIPLICATION');
      expect(r.round3?.culprits).toEqual(['2']);
    }
  });

  it('an OT-extension message altered, or replayed from another session: BAD_MULTIPLICATION naming it in round 2', () => {
    const altered = hostile({ r1: (m) => ({ ...m, ote: { ...m.ote, tt: flip(m.ote.tt, 7) } }) });
    expect(altered.round2?.code).toBe('BAD_MULTIPLICATION');
    expect(altered.round2?.culprits).toEqual(['2']);
    const old = presignSessions(key23, [1, 2]).get(2);
    if (!old) throw new Error('no session');
    const stale = old.round1().get(1) as SignMessage1;
    const replayed = hostile({ r1: (m) => ({ ...m, ote: stale.ote }) });
    expect(replayed.round2?.code).toBe('BAD_MULTIPLICATION');
    expect(replayed.round2?.culprits).toEqual(['2']);
  });

  it('a vector-OLE message altered: BAD_MULTIPLICATION naming it', () => {
    const r = hostile({ r2: (m) => ({ ...m, rvole: { ...m.rvole, mu: flip(m.rvole.mu) } }) });
    expect(r.round3?.code).toBe('BAD_MULTIPLICATION');
    expect(r.round3?.culprits).toEqual(['2']);
  });

  it('malformed values (a point off the curve, a short salt): DECODE naming it', () => {
    const bad = new Uint8Array(33).fill(7);
    for (const t of [
      (m: SignMessage2) => ({ ...m, R: bad }),
      (m: SignMessage2) => ({ ...m, salt: new Uint8Array(3) }),
    ]) {
      const r = hostile({ r2: t });
      expect(r.round3?.code).toBe('DECODE');
      expect(r.round3?.culprits).toEqual(['2']);
    }
  });

  it('a wrong ψ passes every check and fails the final verification: SIGNATURE_INVALID, nobody named', () => {
    const r = hostile({ r2: (m) => ({ ...m, psi: flip(m.psi, 31) }) });
    expect(r.combine?.code).toBe('SIGNATURE_INVALID');
    expect(r.combine?.culprits).toEqual([]);
  });

  it('a wrong partial (u or w) or a missing one: the combination refuses it', () => {
    const ps = presign(key23, [2, 3]);
    const digest = sha256(rng(5));
    const parts = [...ps.values()].map((p) => partialSign(p, digest));
    const p0 = parts[0] as (typeof parts)[number];
    for (const bad of [
      { ...p0, w: flip(p0.w, 31) },
      { ...p0, u: flip(p0.u, 31) },
    ]) {
      const e = failure(() => combine(ps.get(2) as Presignature, digest, [bad, parts[1] as (typeof parts)[number]]));
      expect(e.code).toBe('SIGNATURE_INVALID');
    }
    expect(failure(() => combine(ps.get(2) as Presignature, digest, [p0])).code).toBe('UNEXPECTED_MESSAGE');
  });
});

describe('pair setup', () => {
  it('a zero-seed opening that does not match its commitment: BAD_COMMITMENT naming the peer; the setup cannot be finished after it', () => {
    const keyId = rng(32);
    const a = new EcdsaPairSetup({ keyId, me: 1, peers: [2], rng, name: (i) => `signer-${i}` });
    const b = new EcdsaPairSetup({ keyId, me: 2, peers: [1], rng, name: (i) => `signer-${i}` });
    const a1 = a.round1();
    const b1 = b.round1();
    a.round2(new Map([[2, b1.get(1)!]]));
    const b2 = b.round2(new Map([[1, a1.get(2)!]])).get(1)!;
    const e = failure(() => a.finish(new Map([[2, { ...b2, zeroSeed: flip(b2.zeroSeed) }]])));
    expect(e.code).toBe('BAD_COMMITMENT');
    expect(e.culprits).toEqual(['signer-2']);
    expect(failure(() => a.finish(new Map([[2, b2]]))).code).toBe('INVALID_STATE');
  }, 30_000);
});

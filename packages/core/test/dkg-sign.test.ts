/**
 * DKG at 2-of-3, 3-of-5 and 7-of-10, then signing by random quorums. Every signature is checked
 * with the plain single-party verifier of its scheme (RFC 8032 for Ed25519, BIP340 for Taproot).
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ErrorCode,
  type GroupKey,
  SUITES,
  SigningNonces,
  SigningSession,
  commit,
  signShare,
  bytesToHex,
  getSuite,
  groupPublicKey,
  keyDigest,
  runLocalDkg,
  runLocalSign,
  startDkg,
  type DkgOutput,
  type KeyShare,
} from '../src/index.js';
import { identities, pick, seededRng } from './helpers.js';

function sharesOf(out: Map<string, DkgOutput>): Map<string, KeyShare> {
  return new Map([...out].map(([id, o]) => [id, o.share]));
}

describe.each([
  ['ed25519', 2, 3],
  ['ed25519', 3, 5],
  ['ed25519', 7, 10],
  ['secp256k1-tr', 2, 3],
  ['secp256k1-tr', 3, 5],
  ['secp256k1-tr', 7, 10],
  ['secp256k1', 2, 3],
  ['p256', 2, 3],
] as const)('DKG %s %i-of-%i', (suiteId, t, n) => {
  const suite = getSuite(suiteId);
  const ids = identities(n, seededRng(`${suiteId}-${t}-${n}-ids`));
  const out = runLocalDkg(suite, t, ids, seededRng(`${suiteId}-${t}-${n}`));
  const key = (out.get('p1') as DkgOutput).key;

  it('every participant derives the same key, transcript and roster', () => {
    const digests = new Set([...out.values()].map((o) => bytesToHex(keyDigest(o.key))));
    const transcripts = new Set([...out.values()].map((o) => bytesToHex(o.transcriptHash)));
    expect(digests.size).toBe(1);
    expect(transcripts.size).toBe(1);
    expect(key.threshold).toBe(t);
    expect(key.roster.map((r) => r.id).sort()).toEqual(ids.map((i) => i.id).sort());
    expect(groupPublicKey(key).length).toBe(suite.publicKeyBytes);
  });

  it('each share matches its verifying share (noble vss check)', () => {
    for (const o of out.values())
      expect(() => suite.frost.validateSecret(o.share.frostSecret(), key.public)).not.toThrow();
  });

  it('random quorums of t sign; the plain verifier accepts every signature', () => {
    const shares = sharesOf(out);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 }),
        fc.uint8Array({ minLength: 0, maxLength: 64 }),
        (seed, message) => {
          const quorum = pick(
            ids.map((i) => i.id),
            t,
            seed,
          );
          const sig = runLocalSign(key, shares, quorum, message, seededRng(seed));
          expect(sig.length).toBe(suite.signatureBytes);
          expect(suite.verify(sig, message, groupPublicKey(key))).toBe(true);
          if (suite.id === 'ed25519')
            expect(ed25519.verify(sig, message, groupPublicKey(key), { zip215: false })).toBe(true);
          if (suite.id === 'secp256k1-tr') expect(schnorr.verify(sig, message, groupPublicKey(key))).toBe(true);
          // A signature for one message is not one for another.
          const other = new Uint8Array([...message, 1]);
          expect(suite.verify(sig, other, groupPublicKey(key))).toBe(false);
        },
      ),
      { numRuns: t >= 7 ? 3 : 8 },
    );
  });

  it('fewer than t shares cannot sign', () => {
    const shares = sharesOf(out);
    expect(() =>
      runLocalSign(
        key,
        shares,
        ids.slice(0, t - 1).map((i) => i.id),
        new Uint8Array([1]),
      ),
    ).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
  });

  it('any t shares interpolate to the group secret (test-only check; production never reconstructs)', () => {
    const quorum = pick([...out.values()], t, 7).map((o) => o.share.frostSecret());
    const secret = suite.frost.combineSecret(quorum, { min: t, max: n });
    const pub = suite.Point.BASE.multiply(suite.Fn.fromBytes(secret)).toBytes();
    // secp256k1-tr keys are normalised to even Y: compare x-only.
    expect(bytesToHex(suite.publicKey(pub)).slice(-64)).toBe(bytesToHex(groupPublicKey(key)).slice(-64));
  });
});

describe('DKG state machine', () => {
  const suite = getSuite('ed25519');
  it('a round cannot be processed twice (a finished round is spent)', () => {
    const ids = identities(3);
    const cfg = { suite, sessionId: new Uint8Array(32).fill(1), threshold: 2, participants: ids.map((i) => i.public) };
    const starts = ids.map((i) => startDkg(cfg, i));
    const r1 = starts.map((s) => s.round1);
    const first = starts[0]!.state.receiveRound1(r1);
    expect(first.round2.length).toBeGreaterThan(0);
    expect(() => starts[0]!.state.receiveRound1(r1)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_STATE }),
    );
  });

  it('refuses to start for an identity that is not in the roster', () => {
    const ids = identities(3);
    const outsider = identities(4)[3]!;
    const cfg = { suite, sessionId: new Uint8Array(32), threshold: 2, participants: ids.map((i) => i.public) };
    expect(() => startDkg(cfg, outsider)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
  });

  it.each([
    [1, 3],
    [4, 3],
    [2, 1],
  ])('rejects threshold %i with %i participants', (t, n) => {
    const ids = identities(n);
    const cfg = { suite, sessionId: new Uint8Array(32), threshold: t, participants: ids.map((i) => i.public) };
    expect(() => startDkg(cfg, ids[0]!)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
  });

  it('missing round-1 messages are reported, naming who is missing', () => {
    const ids = identities(3);
    const cfg = { suite, sessionId: new Uint8Array(32).fill(2), threshold: 2, participants: ids.map((i) => i.public) };
    const starts = ids.map((i) => startDkg(cfg, i));
    try {
      starts[0]!.state.receiveRound1([starts[1]!.round1]);
      expect.unreachable();
    } catch (e) {
      expect((e as { code: string }).code).toBe(ErrorCode.UNEXPECTED_MESSAGE);
      expect((e as Error).message).toContain('p3');
    }
  });

  it('covers every suite', () => {
    expect(SUITES.map((s) => s.id)).toEqual(['ed25519', 'secp256k1-tr', 'secp256k1', 'p256']);
  });
});

describe('SigningSession.signShare: the share the free signShare gives, without preparing the list again', () => {
  it.each(SUITES.map((s) => s.id))('%s: same bytes for the same nonces, any message; the aggregate verifies', (id) => {
    const suite = getSuite(id);
    const ids = identities(3, seededRng(`session-sign-${id}`));
    const out = runLocalDkg(suite, 2, ids, seededRng(`session-sign-dkg-${id}`));
    const [a, b] = ['p1', 'p2'].map((p) => out.get(p) as { key: GroupKey; share: KeyShare });
    if (!a || !b) throw new Error('no DKG output');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer(), (message, seed) => {
        const rng = seededRng(seed);
        const na = commit(a.share, rng);
        const nb = commit(b.share, rng);
        const list = [na.commitment, nb.commitment];
        const again = (n: typeof na, share: KeyShare) =>
          SigningNonces.importSecret(suite, share.identifier, n.nonces.exportSecret(), n.commitment);
        const a2 = again(na, a.share);
        const b2 = again(nb, b.share);
        const session = new SigningSession(a.key, message, list);
        const za = session.signShare(a.share, na.nonces);
        const zb = session.signShare(b.share, nb.nonces);
        expect(bytesToHex(za)).toBe(bytesToHex(signShare(a.share, a.key, a2, list, message)));
        expect(bytesToHex(zb)).toBe(bytesToHex(signShare(b.share, b.key, b2, list, message)));
        const sig = session.aggregate(
          new Map([
            ['p1', za],
            ['p2', zb],
          ]),
        );
        expect(suite.verify(sig, message, groupPublicKey(a.key))).toBe(true);
        // The nonces are spent: a second share from them is refused.
        expect(() => session.signShare(a.share, na.nonces)).toThrow();
      }),
      { numRuns: 8 },
    );
  });
});

/**
 * Share lifecycle: proactive refresh and resharing (src/lifecycle.ts). Every signature is checked
 * with the suite's plain single-party verifier under the key published before the operation.
 */
import { schnorr } from '@noble/curves/secp256k1.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ErrorCode,
  KeyShare,
  ParticipantIdentity,
  PayloadKind,
  SigningSession,
  applyRefresh,
  applyReshare,
  bytesToHex,
  checkLifecycleConfirmations,
  commit,
  confirmLifecycle,
  decodeMessage,
  decodeRefreshParams,
  decodeReshareParams,
  encodeMessage,
  encodeRefreshParams,
  encodeReshareParams,
  fromHex,
  getSuite,
  groupPublicKey,
  hpkeOpen,
  hpkeSeal,
  keyDigest,
  lagrangeAtZero,
  lengthPrefixed,
  openEnvelope,
  refreshPublicKey,
  refreshRound1,
  refreshSessionHash,
  reshareRound1,
  resharePublicKey,
  reshareSessionHash,
  runLocalDkg,
  runLocalSign,
  signEnvelope,
  signShare,
  utf8ToBytes,
  type GroupKey,
  type LifecycleOutput,
  type RefreshConfig,
  type ReshareConfig,
  type Rng,
  type RosterEntry,
  type SigningNonces,
  type Suite,
  type SuiteId,
  type SuitePoint,
  type WireLifecycleRound1,
} from '../src/index.js';
import { identities, pick, seededRng } from './helpers.js';

const KEY_ID = '0123456789abcdef';

// ---- harness ----------------------------------------------------------------------------------

/** A key at some epoch plus every participant's identity and share (tests hold everything). */
interface World {
  suite: Suite;
  key: GroupKey;
  epoch: number;
  ids: Map<string, ParticipantIdentity>;
  shares: Map<string, KeyShare>;
}

function dkgWorld(suiteId: SuiteId, t: number, n: number, seed: string): World {
  const suite = getSuite(suiteId);
  const idList = identities(n, seededRng(`${seed}-ids`));
  const out = runLocalDkg(suite, t, idList, seededRng(seed));
  const key = out.get('p1')!.key;
  return {
    suite,
    key,
    epoch: 0,
    ids: new Map(idList.map((i) => [i.id, i])),
    shares: new Map([...out].map(([id, o]) => [id, o.share])),
  };
}

function refreshCfg(w: World, contributors: readonly string[], rng: Rng): RefreshConfig {
  return { suite: w.suite, sessionId: rng(32), keyId: KEY_ID, fromEpoch: w.epoch, key: w.key, contributors };
}

/** Runs a refresh: contributors send round 1, `appliers` (default: everyone) apply it. */
function refresh(
  w: World,
  contributors: readonly string[],
  seed: string,
  appliers: readonly string[] = w.key.roster.map((r) => r.id),
) {
  const rng = seededRng(seed);
  const cfg = refreshCfg(w, contributors, rng);
  const envelopes = contributors.map((id) => refreshRound1(cfg, w.ids.get(id)!, rng));
  const outs = new Map<string, LifecycleOutput>(
    appliers.map((id) => [id, applyRefresh(cfg, w.ids.get(id)!, w.shares.get(id)!, envelopes)]),
  );
  return { cfg, envelopes, outs };
}

function worldAfter(
  w: World,
  outs: Map<string, LifecycleOutput>,
  ids: Map<string, ParticipantIdentity> = w.ids,
): World {
  const first = [...outs.values()][0]!;
  return {
    suite: w.suite,
    key: first.key,
    epoch: first.epoch,
    ids,
    shares: new Map([...outs].map(([id, o]) => [id, o.share])),
  };
}

function reshareCfg(
  w: World,
  contributors: readonly string[],
  newThreshold: number,
  newIds: readonly ParticipantIdentity[],
  rng: Rng,
): ReshareConfig {
  return {
    suite: w.suite,
    sessionId: rng(32),
    keyId: KEY_ID,
    fromEpoch: w.epoch,
    oldKey: w.key,
    contributors,
    newThreshold,
    newParticipants: newIds.map((i) => i.public),
  };
}

function reshare(
  w: World,
  contributors: readonly string[],
  newThreshold: number,
  newIds: readonly ParticipantIdentity[],
  seed: string,
) {
  const rng = seededRng(seed);
  const cfg = reshareCfg(w, contributors, newThreshold, newIds, rng);
  const envelopes = contributors.map((id) => reshareRound1(cfg, w.ids.get(id)!, w.shares.get(id)!, rng));
  const outs = new Map<string, LifecycleOutput>(newIds.map((i) => [i.id, applyReshare(cfg, i, envelopes)]));
  return { cfg, envelopes, outs, world: worldAfter(w, outs, new Map(newIds.map((i) => [i.id, i]))) };
}

/** Signs with a quorum and checks the signature with the plain verifier under `published`. */
function signAndVerify(
  w: World,
  quorum: readonly string[],
  message: Uint8Array,
  published: Uint8Array,
  seed: string | number,
): void {
  const sig = runLocalSign(w.key, w.shares, quorum, message, seededRng(seed));
  expect(w.suite.verify(sig, message, published)).toBe(true);
  expect(w.suite.verify(sig, new Uint8Array([...message, 0]), published)).toBe(false);
  if (w.suite.id === 'secp256k1-tr') expect(schnorr.verify(sig, message, published)).toBe(true);
}

/**
 * Runs one signing attempt where each signer uses the (key, share) it is given, then aggregates
 * under `sessionKey`. Returns the signature, or throws what aggregation throws.
 */
function mixedSign(
  sessionKey: GroupKey,
  signers: readonly { id: string; key: GroupKey; share: KeyShare }[],
  message: Uint8Array,
): Uint8Array {
  const nonces = new Map<string, SigningNonces>();
  const commitments = signers.map((s) => {
    const c = commit(s.share, seededRng(`mix-${s.id}`));
    nonces.set(s.id, c.nonces);
    return c.commitment;
  });
  const session = new SigningSession(sessionKey, message, commitments);
  const shares = new Map(
    signers.map((s) => [s.id, signShare(s.share, s.key, nonces.get(s.id)!, commitments, message)]),
  );
  return session.aggregate(shares);
}

/** Σ λ_i·Y_i over `subset` of the key's verifying shares: must be the group key. */
function interpolateVerifyingShares(key: GroupKey, subset: readonly RosterEntry[]): SuitePoint {
  const { suite } = key;
  const xs = subset.map((r) => suite.Fn.fromBytes(fromHex(r.identifier)));
  return subset.reduce(
    (acc, r, i) =>
      acc.add(
        suite.Point.fromBytes(key.public.verifyingShares[r.identifier]!).multiply(lagrangeAtZero(suite, xs, xs[i]!)),
      ),
    suite.Point.ZERO,
  );
}

function expectBlame(fn: () => unknown, code: string, culprits: string[]): void {
  try {
    fn();
  } catch (e) {
    expect({ code: (e as { code: string }).code, message: (e as Error).message }).toMatchObject({ code });
    expect([...(e as { culprits: string[] }).culprits].sort()).toEqual([...culprits].sort());
    return;
  }
  expect.unreachable(`expected ${code}`);
}

/** Everything that must hold of a refreshed or reshared key. */
function checkInvariants(before: World, after: World, outs: Map<string, LifecycleOutput>, t: number): void {
  const { suite } = after;
  expect(after.key.threshold).toBe(t);
  expect(bytesToHex(groupPublicKey(after.key))).toBe(bytesToHex(groupPublicKey(before.key)));
  // commitments[0] is the stored group key byte for byte (secp256k1-tr: even the parity prefix).
  expect(bytesToHex(after.key.public.commitments[0]!)).toBe(bytesToHex(before.key.public.commitments[0]!));
  expect(after.key.public.commitments.length).toBe(t);
  expect(after.key.public.signers).toEqual({ min: t, max: after.key.roster.length });
  // Everyone derived the same public data and transcript.
  expect(new Set([...outs.values()].map((o) => bytesToHex(keyDigest(o.key)))).size).toBe(1);
  expect(new Set([...outs.values()].map((o) => bytesToHex(o.transcriptHash))).size).toBe(1);
  expect(new Set([...outs.values()].map((o) => o.epoch))).toEqual(new Set([before.epoch + 1]));
  for (const [id, o] of outs) {
    // noble's own vss_verify accepts each new share against the new package.
    expect(() => suite.frost.validateSecret(o.share.frostSecret(), after.key.public), id).not.toThrow();
    // Every share changed.
    const old = before.shares.get(id);
    if (old) expect(bytesToHex(o.share.signingShare())).not.toBe(bytesToHex(old.signingShare()));
  }
  // Any t verifying shares interpolate to the group key.
  const subset = pick(after.key.roster, t, after.epoch * 31 + t);
  expect(
    interpolateVerifyingShares(after.key, subset).equals(suite.Point.fromBytes(after.key.public.commitments[0]!)),
  ).toBe(true);
}

// ---- refresh ------------------------------------------------------------------------------------

describe.each([
  ['ed25519', 2, 3],
  ['ed25519', 3, 5],
  ['secp256k1-tr', 2, 3],
  ['secp256k1-tr', 3, 5],
  ['secp256k1', 2, 3],
  ['p256', 2, 3],
] as const)('refresh %s %i-of-%i', (suiteId, t, n) => {
  const w0 = dkgWorld(suiteId, t, n, `refresh-${suiteId}-${t}-${n}`);
  const published = groupPublicKey(w0.key);
  const all = w0.key.roster.map((r) => r.id);
  const r1 = refresh(w0, all, `r1-${suiteId}-${t}`);
  const w1 = worldAfter(w0, r1.outs);

  it('keeps the group key and threshold, changes every share and verifying share', () => {
    checkInvariants(w0, w1, r1.outs, t);
    for (const r of w0.key.roster)
      expect(bytesToHex(w1.key.public.verifyingShares[r.identifier]!)).not.toBe(
        bytesToHex(w0.key.public.verifyingShares[r.identifier]!),
      );
    expect(w1.key.roster).toBe(w0.key.roster);
    // The coordinator derives the same public data from the envelopes alone.
    const pub = refreshPublicKey(r1.cfg, r1.envelopes);
    expect(bytesToHex(keyDigest(pub.key))).toBe(bytesToHex(keyDigest(w1.key)));
    expect(bytesToHex(pub.transcriptHash)).toBe(bytesToHex(r1.outs.get('p1')!.transcriptHash));
  });

  it('random quorums of new shares sign under the published key', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.uint8Array({ maxLength: 48 }), (seed, message) => {
        signAndVerify(w1, pick(all, t, seed), message, published, seed);
      }),
      { numRuns: 4 },
    );
  });

  it('an old-epoch share does not combine with new-epoch shares', () => {
    const message = utf8ToBytes('mixed epochs');
    const [a, b] = all as [string, string];
    const rest = all.slice(2, t);
    const fresh = (id: string) => ({ id, key: w1.key, share: w1.shares.get(id)! });
    // New key, one signer still on its old share: identifiable abort names it.
    expectBlame(
      () =>
        mixedSign(w1.key, [{ id: a, key: w1.key, share: w0.shares.get(a)! }, fresh(b), ...rest.map(fresh)], message),
      ErrorCode.BAD_SIGNATURE_SHARE,
      [a],
    );
    // Old key, one signer on its new share.
    const stale = (id: string) => ({ id, key: w0.key, share: w0.shares.get(id)! });
    expectBlame(
      () =>
        mixedSign(w0.key, [{ id: a, key: w0.key, share: w1.shares.get(a)! }, stale(b), ...rest.map(stale)], message),
      ErrorCode.BAD_SIGNATURE_SHARE,
      [a],
    );
    // Sanity: the same flows with consistent epochs succeed.
    expect(w0.suite.verify(mixedSign(w1.key, all.slice(0, t).map(fresh), message), message, published)).toBe(true);
    expect(w0.suite.verify(mixedSign(w0.key, all.slice(0, t).map(stale), message), message, published)).toBe(true);
  });

  it('confirmations: everyone confirms the same outcome', () => {
    const confirms = all.map((id) => confirmLifecycle(w1.ids.get(id)!, r1.outs.get(id)!));
    for (const id of all) expect(checkLifecycleConfirmations(r1.outs.get(id)!, confirms, all)).toHaveLength(n);
  });

  it('an offline participant applies the same envelopes later; exactly t contributors; a second refresh', () => {
    const offline = all[n - 1]!;
    const contributors = all.slice(0, t); // exactly t, the offline member not among them
    const online = all.filter((id) => id !== offline);
    const r2 = refresh(w1, contributors, `r2-${suiteId}-${t}`, online);
    // Later: the device gets the stored params and envelopes and rebuilds the config itself.
    const cfg = decodeRefreshParams(encodeRefreshParams(r2.cfg), w1.key);
    const late = applyRefresh(cfg, w1.ids.get(offline)!, w1.shares.get(offline)!, [...r2.envelopes].reverse());
    expect(bytesToHex(keyDigest(late.key))).toBe(bytesToHex(keyDigest(r2.outs.get(online[0]!)!.key)));
    const confirms = online.map((id) => confirmLifecycle(w1.ids.get(id)!, r2.outs.get(id)!));
    expect(checkLifecycleConfirmations(late, confirms, online)).toHaveLength(online.length);
    r2.outs.set(offline, late);
    const w2 = worldAfter(w1, r2.outs);
    checkInvariants(w1, w2, r2.outs, t);
    expect(w2.epoch).toBe(2);
    // A quorum including the late member signs.
    signAndVerify(w2, [offline, ...all.slice(0, t - 1)], utf8ToBytes('after two refreshes'), published, 'late');
  });
});

// ---- Taproot ------------------------------------------------------------------------------------

describe('secp256k1-tr: the published (tweaked) key survives refresh and reshare, both Y parities', () => {
  // Find DKG keys whose stored group element has odd and even Y (noble normalises only when signing).
  const worlds = new Map<number, World>();
  for (let i = 0; worlds.size < 2 && i < 12; i++) {
    const w = dkgWorld('secp256k1-tr', 2, 3, `tr-parity-${i}`);
    const prefix = w.key.public.commitments[0]![0]!;
    if (!worlds.has(prefix)) worlds.set(prefix, w);
  }

  it.each([0x02, 0x03])('group element prefix %i', (prefix) => {
    const w0 = worlds.get(prefix);
    expect(w0, 'no DKG key of that parity found').toBeDefined();
    if (!w0) return;
    const published = groupPublicKey(w0.key);
    const all = w0.key.roster.map((r) => r.id);
    const w1 = worldAfter(w0, refresh(w0, all, `tr-r-${prefix}`).outs);
    expect(w1.key.public.commitments[0]![0]).toBe(prefix);
    signAndVerify(w1, ['p1', 'p3'], utf8ToBytes('taproot refresh'), published, 1);
    const newIds = [...w0.ids.values(), ...identities(4, seededRng(`tr-new-${prefix}`)).slice(3)];
    const { world: w2, outs } = reshare(w1, ['p2', 'p3'], 3, newIds, `tr-rs-${prefix}`);
    checkInvariants(w1, w2, outs, 3);
    signAndVerify(w2, ['p1', 'p2', 'p4'], utf8ToBytes('taproot reshare'), published, 2);
  });
});

// ---- refresh attacks ------------------------------------------------------------------------------

/** A contributor's round-1 envelope built from chosen commitments and evaluations (an attacker's tool). */
function craftRound1(opts: {
  suite: Suite;
  sessionHash: Uint8Array;
  kind: PayloadKind;
  infoDst: string;
  sender: ParticipantIdentity;
  senderIdentifier: string;
  recipients: readonly RosterEntry[];
  commitments: readonly bigint[];
  evaluate: (x: bigint, to: RosterEntry) => bigint;
  rng: Rng;
}): Uint8Array {
  const { suite } = opts;
  const shares = opts.recipients.map((to) => {
    const v = suite.Fn.toBytes(opts.evaluate(suite.Fn.fromBytes(fromHex(to.identifier)), to));
    const info = lengthPrefixed(
      utf8ToBytes(opts.infoDst),
      opts.sessionHash,
      fromHex(opts.senderIdentifier),
      fromHex(to.identifier),
    );
    const box = hpkeSeal(to.encKey, info, new Uint8Array(0), v, opts.rng);
    return { recipient: fromHex(to.identifier), enc: box.enc, ciphertext: box.ciphertext };
  });
  const payload = encodeMessage('LifecycleRound1', {
    header: { version: 1, suite: suite.wireId },
    sessionHash: opts.sessionHash,
    identifier: fromHex(opts.senderIdentifier),
    commitments: opts.commitments.map((c) => suite.Point.BASE.multiply(c).toBytes()),
    shares,
  });
  return signEnvelope(opts.sender, opts.kind, payload);
}

/** Σ_k coeffs[k]·x^k. */
function poly(suite: Suite, coeffs: readonly bigint[], x: bigint): bigint {
  return coeffs.reduceRight((acc, c) => suite.Fn.add(suite.Fn.mul(acc, x), c), suite.Fn.ZERO);
}

/** Re-signs an envelope's payload after `edit`, as `who` (a sender misbehaving on purpose). */
function resign(
  who: ParticipantIdentity,
  kind: PayloadKind,
  envelope: Uint8Array,
  edit: (p: WireLifecycleRound1) => void,
): Uint8Array {
  const p = decodeMessage('LifecycleRound1', openEnvelope(envelope, kind).payload);
  edit(p);
  return signEnvelope(who, kind, encodeMessage('LifecycleRound1', p));
}

describe('refresh attacks (ed25519 3-of-5)', () => {
  const w = dkgWorld('ed25519', 3, 5, 'attacks');
  const { suite } = w;
  const all = w.key.roster.map((r) => r.id);
  const rng = seededRng('attack-rng');
  const cfg = refreshCfg(w, all, rng);
  const sessionHash = refreshSessionHash(cfg);
  const honest = all.map((id) => refreshRound1(cfg, w.ids.get(id)!, rng));
  const p3Honest = honest[all.indexOf('p3')]!;
  const p3 = w.ids.get('p3')!;
  const p3Entry = w.key.roster.find((r) => r.id === 'p3')!;
  const evil = (commitments: bigint[], evaluate: (x: bigint, to: RosterEntry) => bigint) =>
    craftRound1({
      suite,
      sessionHash,
      kind: PayloadKind.REFRESH_ROUND1,
      infoDst: 'tessera/v1/refresh-share',
      sender: p3,
      senderIdentifier: p3Entry.identifier,
      recipients: w.key.roster,
      commitments,
      evaluate,
      rng,
    });
  const withEvil = (env: Uint8Array) => honest.map((e, i) => (all[i] === 'p3' ? env : e));
  const applyAs = (id: string, envs: Uint8Array[]) => applyRefresh(cfg, w.ids.get(id)!, w.shares.get(id)!, envs);
  const [a1, a2, c] = [11n, 22n, 12345n];

  it('the honest run goes through (control)', () => {
    expect(applyAs('p1', honest).epoch).toBe(1);
  });

  it('a smuggled non-zero constant term (commit a_1..a_{t-1}, evaluate c + Σ a_k x^k) is BAD_SHARE naming the sender, at every recipient', () => {
    const env = evil([a1, a2], (x) => poly(suite, [c, a1, a2], x));
    for (const id of all) expectBlame(() => applyAs(id, withEvil(env)), ErrorCode.BAD_SHARE, ['p3']);
  });

  it('"a refresh that turns shares into shares of zero": t commitments (constant term included) is BAD_SHARE', () => {
    // The attacker would need −secret as constant term; any explicit constant-term commitment is refused.
    const env = evil([c, a1, a2], (x) => poly(suite, [c, a1, a2], x));
    expectBlame(() => applyAs('p1', withEvil(env)), ErrorCode.BAD_SHARE, ['p3']);
    expectBlame(() => refreshPublicKey(cfg, withEvil(env)), ErrorCode.BAD_SHARE, ['p3']);
  });

  it('"a refresh that lowers the threshold": t−2 commitments with matching evaluations is BAD_SHARE', () => {
    const env = evil([a1], (x) => poly(suite, [0n, a1], x));
    expectBlame(() => applyAs('p2', withEvil(env)), ErrorCode.BAD_SHARE, ['p3']);
    expectBlame(() => refreshPublicKey(cfg, withEvil(env)), ErrorCode.BAD_SHARE, ['p3']);
  });

  it('a wrong evaluation for one recipient is caught by that recipient only', () => {
    const env = evil([a1, a2], (x, to) => poly(suite, [0n, a1, a2], x) + (to.id === 'p5' ? 1n : 0n));
    expectBlame(() => applyAs('p5', withEvil(env)), ErrorCode.BAD_SHARE, ['p3']);
    expect(applyAs('p4', withEvil(env)).epoch).toBe(1);
  });

  it('an identity-element commitment is BAD_SHARE (Ed25519 encodes the identity; it must be refused)', () => {
    const env = resign(p3, PayloadKind.REFRESH_ROUND1, p3Honest, (p) => {
      p.commitments[0] = suite.Point.ZERO.toBytes();
    });
    expectBlame(() => applyAs('p1', withEvil(env)), ErrorCode.BAD_SHARE, ['p3']);
  });

  it('a small-order (torsion) component in a commitment is BAD_SHARE', () => {
    // (0, −1) has order 2 on edwards25519: y = −1, x = 0.
    const order2 = fromHex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f');
    const env = resign(p3, PayloadKind.REFRESH_ROUND1, p3Honest, (p) => {
      p.commitments[0] = suite.Point.fromBytes(p.commitments[0]!).add(suite.Point.fromBytes(order2)).toBytes();
    });
    expectBlame(() => applyAs('p1', withEvil(env)), ErrorCode.BAD_SHARE, ['p3']);
  });

  it('a share sealed for another recipient is DECRYPT naming the sender', () => {
    // p3 puts p2's box into p1's slot (recipient field says p1).
    const env = resign(p3, PayloadKind.REFRESH_ROUND1, p3Honest, (p) => {
      const i1 = all.indexOf('p1');
      const i2 = all.indexOf('p2');
      p.shares[i1] = { ...p.shares[i2]!, recipient: p.shares[i1]!.recipient };
    });
    expectBlame(() => applyAs('p1', withEvil(env)), ErrorCode.DECRYPT, ['p3']);
  });

  it('shares out of recipient order, or one missing, are BAD_SHARE', () => {
    const swapped = resign(p3, PayloadKind.REFRESH_ROUND1, p3Honest, (p) => p.shares.reverse());
    expectBlame(() => applyAs('p1', withEvil(swapped)), ErrorCode.BAD_SHARE, ['p3']);
    const short = resign(p3, PayloadKind.REFRESH_ROUND1, p3Honest, (p) => p.shares.pop());
    expectBlame(() => refreshPublicKey(cfg, withEvil(short)), ErrorCode.BAD_SHARE, ['p3']);
  });

  it('equivocation: two different envelopes from one contributor name it', () => {
    const again = refreshRound1(cfg, p3, rng);
    expectBlame(() => applyAs('p1', [...honest, again]), ErrorCode.EQUIVOCATION, ['p3']);
    // Byte-identical duplicates are fine.
    expect(applyAs('p1', [...honest, p3Honest]).epoch).toBe(1);
  });

  it('a forged signature, a replay from another session, a wrong kind, a missing or an extra sender: typed errors, nobody blamed', () => {
    const forged = p3Honest.slice();
    forged[forged.length - 1]! ^= 1;
    expectBlame(() => applyAs('p1', withEvil(forged)), ErrorCode.BAD_SIGNATURE, []);
    const other = refreshCfg(w, all, seededRng('another-session'));
    expectBlame(() => applyAs('p1', withEvil(refreshRound1(other, p3, rng))), ErrorCode.UNEXPECTED_MESSAGE, []);
    expectBlame(() => applyAs('p1', honest.slice(0, 4)), ErrorCode.UNEXPECTED_MESSAGE, []);
    const fewer: RefreshConfig = { ...cfg, contributors: all.filter((id) => id !== 'p5').slice(0, 3) };
    expectBlame(() => applyAs('p1', []), ErrorCode.UNEXPECTED_MESSAGE, []);
    expectBlame(
      () => applyRefresh(fewer, w.ids.get('p1')!, w.shares.get('p1')!, honest),
      ErrorCode.UNEXPECTED_MESSAGE,
      [],
    );
    const wrongKind = signEnvelope(
      p3,
      PayloadKind.RESHARE_ROUND1,
      openEnvelope(p3Honest, PayloadKind.REFRESH_ROUND1).payload,
    );
    expectBlame(() => applyAs('p1', withEvil(wrongKind)), ErrorCode.UNEXPECTED_MESSAGE, []);
  });

  it("a contributor using another participant's identifier is named", () => {
    const env = resign(p3, PayloadKind.REFRESH_ROUND1, p3Honest, (p) => {
      p.identifier = fromHex(w.key.roster.find((r) => r.id === 'p1')!.identifier);
    });
    expectBlame(() => applyAs('p2', withEvil(env)), ErrorCode.UNEXPECTED_MESSAGE, ['p3']);
  });

  it('config and caller errors are INVALID_ARGUMENT / INVALID_STATE', () => {
    expectBlame(() => refreshCfgCheck({ ...cfg, contributors: all.slice(0, 2) }), ErrorCode.INVALID_ARGUMENT, []);
    expectBlame(() => refreshCfgCheck({ ...cfg, contributors: ['p1', 'p1', 'p2'] }), ErrorCode.INVALID_ARGUMENT, []);
    expectBlame(() => refreshCfgCheck({ ...cfg, contributors: ['p1', 'p2', 'x9'] }), ErrorCode.INVALID_ARGUMENT, []);
    expectBlame(() => refreshCfgCheck({ ...cfg, sessionId: new Uint8Array(8) }), ErrorCode.INVALID_ARGUMENT, []);
    expectBlame(() => refreshCfgCheck({ ...cfg, keyId: 'not-a-key-id' }), ErrorCode.INVALID_ARGUMENT, []);
    expectBlame(() => refreshCfgCheck({ ...cfg, suite: getSuite('p256') }), ErrorCode.INVALID_ARGUMENT, []);
    // A non-contributor cannot produce round 1; a share of someone else is refused.
    expectBlame(
      () => refreshRound1({ ...cfg, contributors: all.filter((id) => id !== 'p5') }, w.ids.get('p5')!, rng),
      ErrorCode.INVALID_ARGUMENT,
      [],
    );
    expectBlame(() => applyRefresh(cfg, w.ids.get('p1')!, w.shares.get('p2')!, honest), ErrorCode.INVALID_ARGUMENT, []);
    // A share that does not match the key (e.g. already refreshed) is a local state error.
    const wrong = new KeyShare(suite, w.shares.get('p1')!.identifier, suite.Fn.toBytes(5n));
    expectBlame(() => applyRefresh(cfg, w.ids.get('p1')!, wrong, honest), ErrorCode.INVALID_STATE, []);
    // Params made for other key data are refused.
    const other = dkgWorld('ed25519', 3, 5, 'attacks-other').key;
    expect(() => decodeRefreshParams(encodeRefreshParams(cfg), other)).toThrow(
      expect.objectContaining({ code: ErrorCode.DECODE }),
    );
  });

  it('confirmation mismatch names who derived something else; equivocating confirmations are named', () => {
    const outs = new Map(all.map((id) => [id, applyAs(id, honest)]));
    const confirms = all.map((id) => confirmLifecycle(w.ids.get(id)!, outs.get(id)!));
    // p4 confirms the outcome of another refresh of the same key.
    const other = refresh(w, all, 'confirm-other', ['p4']).outs.get('p4')!;
    const lying = confirmLifecycle(w.ids.get('p4')!, { ...other, sessionHash: outs.get('p4')!.sessionHash });
    const mixed = confirms.map((e, i) => (all[i] === 'p4' ? lying : e));
    expectBlame(() => checkLifecycleConfirmations(outs.get('p1')!, mixed, all), ErrorCode.CONFIRMATION_MISMATCH, [
      'p4',
    ]);
    expectBlame(() => checkLifecycleConfirmations(outs.get('p1')!, [...confirms, lying], all), ErrorCode.EQUIVOCATION, [
      'p4',
    ]);
    expectBlame(
      () => checkLifecycleConfirmations(outs.get('p1')!, confirms.slice(1), all),
      ErrorCode.UNEXPECTED_MESSAGE,
      [],
    );
    // A confirmation from another session (replayed) names nobody.
    const replay = confirmLifecycle(w.ids.get('p4')!, other);
    expectBlame(
      () =>
        checkLifecycleConfirmations(
          outs.get('p1')!,
          confirms.map((e, i) => (all[i] === 'p4' ? replay : e)),
          all,
        ),
      ErrorCode.UNEXPECTED_MESSAGE,
      [],
    );
  });
});

function refreshCfgCheck(cfg: RefreshConfig): void {
  refreshSessionHash(cfg);
}

// ---- reshare --------------------------------------------------------------------------------------

describe.each(['ed25519', 'secp256k1-tr'] as const)('reshare %s', (suiteId) => {
  const w23 = dkgWorld(suiteId, 2, 3, `reshare-${suiteId}`);
  const published = groupPublicKey(w23.key);
  // p1..p3 kept, fresh p4 and p5 added.
  const newIds = [...w23.ids.values(), ...identities(5, seededRng(`reshare-${suiteId}-ids`)).slice(3)];

  it('2-of-3 → 3-of-5 (adding members), then 3-of-5 → 2-of-3 (retiring p4, p5)', () => {
    const up = reshare(w23, ['p1', 'p3'], 3, newIds, `up-${suiteId}`);
    checkInvariants(w23, up.world, up.outs, 3);
    expect(up.world.key.roster.map((r) => r.id).sort()).toEqual(['p1', 'p2', 'p3', 'p4', 'p5']);
    const pub = resharePublicKey(up.cfg, up.envelopes);
    expect(bytesToHex(keyDigest(pub.key))).toBe(bytesToHex(keyDigest(up.world.key)));
    signAndVerify(up.world, ['p2', 'p4', 'p5'], utf8ToBytes('3-of-5'), published, 'a');
    signAndVerify(up.world, ['p1', 'p3', 'p5'], utf8ToBytes('3-of-5 again'), published, 'b');
    expect(() => runLocalSign(up.world.key, up.world.shares, ['p1', 'p4'], utf8ToBytes('two'))).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    const confirms = newIds.map((i) => confirmLifecycle(i, up.outs.get(i.id)!));
    expect(
      checkLifecycleConfirmations(
        up.outs.get('p5')!,
        confirms,
        newIds.map((i) => i.id),
      ),
    ).toHaveLength(5);

    const down = reshare(up.world, ['p2', 'p4', 'p5'], 2, [...w23.ids.values()], `down-${suiteId}`);
    checkInvariants(up.world, down.world, down.outs, 2);
    expect(down.world.epoch).toBe(2);
    signAndVerify(down.world, ['p1', 'p3'], utf8ToBytes('2-of-3'), published, 'c');
    // Retired members get nothing.
    expectBlame(() => applyReshare(down.cfg, newIds[3]!, down.envelopes), ErrorCode.INVALID_ARGUMENT, []);
    // Old (3-of-5) shares do not combine with new (2-of-3) ones.
    expectBlame(
      () =>
        mixedSign(
          down.world.key,
          [
            { id: 'p1', key: down.world.key, share: up.world.shares.get('p1')! },
            { id: 'p2', key: down.world.key, share: down.world.shares.get('p2')! },
          ],
          utf8ToBytes('mix'),
        ),
      ErrorCode.BAD_SIGNATURE_SHARE,
      ['p1'],
    );
  });

  it('replaces one member (device-old → device-new), others kept', () => {
    const rng = seededRng(`replace-${suiteId}`);
    const base = dkgWorldWithIds(
      suiteId,
      2,
      [w23.ids.get('p1')!, w23.ids.get('p2')!, ParticipantIdentity.generate('device-old', rng)],
      `replace-${suiteId}`,
    );
    const deviceNew = ParticipantIdentity.generate('device-new', rng);
    const next = [base.ids.get('p1')!, base.ids.get('p2')!, deviceNew];
    const r = reshare(base, ['device-old', 'p2'], 2, next, `replace-rs-${suiteId}`);
    checkInvariants(base, r.world, r.outs, 2);
    expect(r.world.key.roster.map((e) => e.id).sort()).toEqual(['device-new', 'p1', 'p2']);
    signAndVerify(r.world, ['device-new', 'p1'], utf8ToBytes('new device'), groupPublicKey(base.key), 'd');
    signAndVerify(r.world, ['p2', 'device-new'], utf8ToBytes('new device 2'), groupPublicKey(base.key), 'e');
    expectBlame(() => applyReshare(r.cfg, base.ids.get('device-old')!, r.envelopes), ErrorCode.INVALID_ARGUMENT, []);
    // The old device's share is useless under the new key: it is not even in the roster.
    expect(() =>
      mixedSign(
        r.world.key,
        [
          { id: 'device-old', key: r.world.key, share: base.shares.get('device-old')! },
          { id: 'p1', key: r.world.key, share: r.world.shares.get('p1')! },
        ],
        utf8ToBytes('x'),
      ),
    ).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
  });

  it('a bad contribution names its sender: D_0 ≠ λ·Y, a wrong evaluation, a wrong commitment count', () => {
    const { suite } = w23;
    const rng = seededRng(`bad-rs-${suiteId}`);
    const cfg = reshareCfg(w23, ['p1', 'p2'], 3, newIds, rng);
    const sessionHash = reshareSessionHash(cfg);
    const honest = ['p1', 'p2'].map((id) => reshareRound1(cfg, w23.ids.get(id)!, w23.shares.get(id)!, rng));
    const p2 = w23.ids.get('p2')!;
    const p2Entry = w23.key.roster.find((r) => r.id === 'p2')!;
    const newRoster = resharePublicKey(cfg, honest).key.roster;
    const craft = (commitments: bigint[], evaluate: (x: bigint, to: RosterEntry) => bigint) =>
      craftRound1({
        suite,
        sessionHash,
        kind: PayloadKind.RESHARE_ROUND1,
        infoDst: 'tessera/v1/reshare-share',
        sender: p2,
        senderIdentifier: p2Entry.identifier,
        recipients: newRoster,
        commitments,
        evaluate,
        rng,
      });
    // p2 shares a fresh random value instead of λ_2·s_2 (consistent polynomial, wrong constant).
    const coeffs = [777n, 5n, 6n];
    const rogue = craft(coeffs, (x) => poly(suite, coeffs, x));
    expectBlame(() => resharePublicKey(cfg, [honest[0]!, rogue]), ErrorCode.BAD_SHARE, ['p2']);
    expectBlame(() => applyReshare(cfg, newIds[4]!, [honest[0]!, rogue]), ErrorCode.BAD_SHARE, ['p2']);
    // A wrong evaluation for p4 (commitments honest): p4 names p2, p5 is unaffected.
    const p4Box = tamperBox(cfg, honest[1]!, p2, newRoster, 'p4', newIds[3]!, (v) => suite.Fn.add(v, 1n), rng);
    expectBlame(() => applyReshare(cfg, newIds[3]!, [honest[0]!, p4Box]), ErrorCode.BAD_SHARE, ['p2']);
    expect(applyReshare(cfg, newIds[4]!, [honest[0]!, p4Box]).epoch).toBe(1);
    // t'−1 commitments (trying to lower the new threshold).
    const short = resign(p2, PayloadKind.RESHARE_ROUND1, honest[1]!, (p) => p.commitments.pop());
    expectBlame(() => applyReshare(cfg, newIds[0]!, [honest[0]!, short]), ErrorCode.BAD_SHARE, ['p2']);
    // Equivocation by a contributor.
    const again = reshareRound1(cfg, p2, w23.shares.get('p2')!, rng);
    expectBlame(() => applyReshare(cfg, newIds[0]!, [...honest, again]), ErrorCode.EQUIVOCATION, ['p2']);
    // The honest run still works (control).
    expect(applyReshare(cfg, newIds[0]!, honest).epoch).toBe(1);
  });

  it('a contributor set that is not exactly t_old old members is INVALID_ARGUMENT', () => {
    const rng = seededRng(`inv-${suiteId}`);
    for (const contributors of [['p1'], ['p1', 'p2', 'p3'], ['p1', 'p1'], ['p1', 'p4']])
      expectBlame(
        () => reshareSessionHash(reshareCfg(w23, contributors, 3, newIds, rng)),
        ErrorCode.INVALID_ARGUMENT,
        [],
      );
    expectBlame(
      () => reshareSessionHash(reshareCfg(w23, ['p1', 'p2'], 1, newIds, rng)),
      ErrorCode.INVALID_ARGUMENT,
      [],
    );
    expectBlame(
      () => reshareSessionHash(reshareCfg(w23, ['p1', 'p2'], 6, newIds, rng)),
      ErrorCode.INVALID_ARGUMENT,
      [],
    );
    expectBlame(
      () => reshareSessionHash(reshareCfg(w23, ['p1', 'p2'], 2, [newIds[0]!], rng)),
      ErrorCode.INVALID_ARGUMENT,
      [],
    );
    // A contributor must bring its own share of the old key.
    const cfg = reshareCfg(w23, ['p1', 'p2'], 2, newIds, rng);
    expectBlame(
      () => reshareRound1(cfg, w23.ids.get('p1')!, w23.shares.get('p2')!, rng),
      ErrorCode.INVALID_ARGUMENT,
      [],
    );
    expectBlame(
      () => reshareRound1(cfg, w23.ids.get('p3')!, w23.shares.get('p3')!, rng),
      ErrorCode.INVALID_ARGUMENT,
      [],
    );
    // Params round-trip for a late applier.
    const again = decodeReshareParams(encodeReshareParams(cfg), w23.key);
    expect(bytesToHex(reshareSessionHash(again))).toBe(bytesToHex(reshareSessionHash(cfg)));
  });
});

function dkgWorldWithIds(suiteId: SuiteId, t: number, idList: ParticipantIdentity[], seed: string): World {
  const suite = getSuite(suiteId);
  const out = runLocalDkg(suite, t, idList, seededRng(seed));
  const key = out.get(idList[0]!.id)!.key;
  return {
    suite,
    key,
    epoch: 0,
    ids: new Map(idList.map((i) => [i.id, i])),
    shares: new Map([...out].map(([id, o]) => [id, o.share])),
  };
}

/** Replaces `toId`'s sealed value in `envelope` by f(value), re-sealed and re-signed by the sender. */
function tamperBox(
  cfg: ReshareConfig,
  envelope: Uint8Array,
  sender: ParticipantIdentity,
  roster: readonly RosterEntry[],
  toId: string,
  to: ParticipantIdentity,
  f: (v: bigint) => bigint,
  rng: Rng,
): Uint8Array {
  const { suite } = cfg;
  const sessionHash = reshareSessionHash(cfg);
  const i = roster.findIndex((r) => r.id === toId);
  const senderIdentifier = cfg.oldKey.roster.find((r) => r.id === sender.id)!.identifier;
  const info = lengthPrefixed(
    utf8ToBytes('tessera/v1/reshare-share'),
    sessionHash,
    fromHex(senderIdentifier),
    fromHex(roster[i]!.identifier),
  );
  return resign(sender, PayloadKind.RESHARE_ROUND1, envelope, (p) => {
    const box = p.shares[i]!;
    const v = suite.Fn.fromBytes(hpkeOpen(to.encryptionSecret(), box.enc, info, new Uint8Array(0), box.ciphertext));
    const sealed = hpkeSeal(roster[i]!.encKey, info, new Uint8Array(0), suite.Fn.toBytes(f(v)), rng);
    p.shares[i] = { recipient: box.recipient, enc: sealed.enc, ciphertext: sealed.ciphertext };
  });
}

// ---- properties ---------------------------------------------------------------------------------

describe('properties: random thresholds, rosters, contributor sets and messages', () => {
  // One DKG per suite; random (t, n) keys are then reached by resharing it (itself under test).
  const bases = new Map((['ed25519', 'secp256k1-tr'] as const).map((s) => [s, dkgWorld(s, 2, 3, `prop-${s}`)]));

  it('reshare to random t-of-n, refresh with a random contributor set, sign with a random quorum', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('ed25519', 'secp256k1-tr'),
        fc.integer({ min: 2, max: 5 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 2, max: n }))),
        fc.integer({ min: 0, max: 2 ** 31 }),
        fc.uint8Array({ maxLength: 40 }),
        (suiteId, [n, t], seed, message) => {
          const base = bases.get(suiteId)!;
          const published = groupPublicKey(base.key);
          // New roster: keep a random subset of p1..p3, add fresh members up to n.
          const keep = pick([...base.ids.values()], Math.min(n, 1 + (seed % 3)), seed);
          const fresh = Array.from({ length: n - keep.length }, (_, i) =>
            ParticipantIdentity.generate(`q${i + 1}`, seededRng(`${seed}-q${i}`)),
          );
          const contributors = pick(['p1', 'p2', 'p3'], 2, seed >>> 3);
          const rs = reshare(base, contributors, t, [...keep, ...fresh], `prop-rs-${seed}`);
          checkInvariants(base, rs.world, rs.outs, t);
          // Refresh with a random set of at least t contributors; everyone applies.
          const ids = rs.world.key.roster.map((r) => r.id);
          const k = t + (seed % (n - t + 1));
          const rf = refresh(rs.world, pick(ids, k, seed >>> 5), `prop-rf-${seed}`);
          const w2 = worldAfter(rs.world, rf.outs);
          checkInvariants(rs.world, w2, rf.outs, t);
          signAndVerify(w2, pick(ids, t, seed >>> 7), message, published, seed);
        },
      ),
      { numRuns: 10 },
    );
  });
});

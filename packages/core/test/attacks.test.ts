/**
 * One named test per known attack on DKG and signing. Each asserts the stable error code and
 * that the culprit (and only the culprit) is blamed — or, where nothing proves who did it
 * (a relay replaying or forging), that nobody is blamed.
 */
import { describe, expect, it } from 'vitest';
import {
  ErrorCode,
  PayloadKind,
  SigningSession,
  commit,
  decodeMessage,
  encodeMessage,
  fromHex,
  getSuite,
  groupPublicKey,
  hpkeOpen,
  hpkeSeal,
  lengthPrefixed,
  openEnvelope,
  runLocalDkg,
  selectQuorum,
  signEnvelope,
  signShare,
  startDkg,
  toHex,
  utf8ToBytes,
  type DkgConfig,
  type DkgOutput,
  type GroupKey,
  type KeyShare,
  type NonceCommitment,
  type ParticipantIdentity,
  type SigningNonces,
  type Suite,
} from '../src/index.js';
import { identities, seededRng } from './helpers.js';

const suite = getSuite('ed25519');

function expectBlame(fn: () => unknown, code: string, culprits: string[]): void {
  try {
    fn();
  } catch (e) {
    expect((e as { code: string }).code).toBe(code);
    expect([...(e as { culprits: string[] }).culprits].sort()).toEqual([...culprits].sort());
    return;
  }
  expect.unreachable('expected an error');
}

interface Harness {
  ids: ParticipantIdentity[];
  cfg: DkgConfig;
  starts: ReturnType<typeof startDkg>[];
}

function harness(n = 3, t = 2, s: Suite = suite, seed = 'h'): Harness {
  const ids = identities(n, seededRng(`${seed}-ids`));
  const cfg: DkgConfig = {
    suite: s,
    sessionId: seededRng(seed)(32),
    threshold: t,
    participants: ids.map((i) => i.public),
  };
  return { ids, cfg, starts: ids.map((i) => startDkg(cfg, i, seededRng(`${seed}-${i.id}`))) };
}

/** Re-signs a modified payload as `who` (the sender misbehaving on purpose). */
function resign(
  who: ParticipantIdentity,
  kind: PayloadKind,
  envelope: Uint8Array,
  edit: (p: any) => void,
  type: 'DkgRound1' | 'DkgRound2' | 'DkgConfirm',
): Uint8Array {
  const env = openEnvelope(envelope, kind);
  const payload = decodeMessage(type, env.payload) as any;
  edit(payload);
  return signEnvelope(who, kind, encodeMessage(type, payload));
}

function shareInfo(sessionHash: Uint8Array, from: string, to: string): Uint8Array {
  return lengthPrefixed(utf8ToBytes('tessera/v1/dkg-share'), sessionHash, fromHex(from), fromHex(to));
}

describe('DKG attacks', () => {
  it('rogue round-1 package: a commitment without a valid proof of knowledge is blamed on its sender', () => {
    const h = harness();
    const [a, , c] = h.ids as [ParticipantIdentity, ParticipantIdentity, ParticipantIdentity];
    // p3 replaces its constant-term commitment (a rogue-key attempt) but cannot prove knowledge.
    const rogue = resign(
      c,
      PayloadKind.DKG_ROUND1,
      h.starts[2]!.round1,
      (p) => {
        p.commitment[0] = suite.Point.BASE.multiply(12345n).toBytes();
      },
      'DkgRound1',
    );
    void a;
    expectBlame(
      () => h.starts[0]!.state.receiveRound1([h.starts[1]!.round1, rogue]),
      ErrorCode.BAD_PROOF_OF_KNOWLEDGE,
      ['p3'],
    );
  });

  it('rogue round-1 package: a wrong number of commitments is blamed on its sender', () => {
    const h = harness();
    const bad = resign(
      h.ids[1]!,
      PayloadKind.DKG_ROUND1,
      h.starts[1]!.round1,
      (p) => {
        p.commitment = p.commitment.slice(0, 1);
      },
      'DkgRound1',
    );
    expectBlame(() => h.starts[0]!.state.receiveRound1([bad, h.starts[2]!.round1]), ErrorCode.BAD_PROOF_OF_KNOWLEDGE, [
      'p2',
    ]);
  });

  it('equivocating broadcast: a sender that signs two round-1 messages is caught by the echo and blamed', () => {
    const h = harness(3, 2, suite, 'equiv');
    // p3 runs DKG twice under the same session and shows p1 one round-1, p2 the other.
    const second = startDkg(h.cfg, h.ids[2]!, seededRng('equiv-second'));
    const r1 = h.starts.map((s) => s.round1);
    const p1 = h.starts[0]!.state.receiveRound1([r1[1]!, r1[2]!]);
    const p2 = h.starts[1]!.state.receiveRound1([r1[0]!, second.round1]);
    const p3 = h.starts[2]!.state.receiveRound1([r1[0]!, r1[1]!]);
    // p1 sees p2's echo, which carries the other round-1 message signed by p3.
    expectBlame(() => p1.state.receiveRound2([p2.round2, p3.round2]), ErrorCode.EQUIVOCATION, ['p3']);
  });

  it('equivocating broadcast: one sender delivering two messages to the same participant is blamed', () => {
    const h = harness(3, 2, suite, 'equiv2');
    const second = startDkg(h.cfg, h.ids[2]!, seededRng('equiv2-second'));
    expectBlame(
      () => h.starts[0]!.state.receiveRound1([h.starts[1]!.round1, h.starts[2]!.round1, second.round1]),
      ErrorCode.EQUIVOCATION,
      ['p3'],
    );
  });

  it('lying echo: a participant that echoes a round-1 message its author never signed is blamed', () => {
    const h = harness(3, 2, suite, 'lie');
    const r1 = h.starts.map((s) => s.round1);
    const p1 = h.starts[0]!.state.receiveRound1(r1);
    const p2 = h.starts[1]!.state.receiveRound1(r1);
    const p3 = h.starts[2]!.state.receiveRound1(r1);
    // p2 tampers with p3's round-1 message inside its own (validly signed) round-2 echo.
    const lying = resign(
      h.ids[1]!,
      PayloadKind.DKG_ROUND2,
      p2.round2,
      (p) => {
        const forged = new Uint8Array(p.round1[2]);
        forged[forged.length - 1]! ^= 1;
        p.round1[2] = forged;
      },
      'DkgRound2',
    );
    void p3;
    expectBlame(() => p1.state.receiveRound2([lying, p3.round2]), ErrorCode.EQUIVOCATION, ['p2']);
  });

  it("round-2 share meant for someone else: a ciphertext for p2 placed in p3's slot is blamed on its sender", () => {
    const h = harness(3, 2, suite, 'misroute');
    const r1 = h.starts.map((s) => s.round1);
    const st = h.starts.map((s) => s.state.receiveRound1(r1));
    const p1id = h.cfg.participants.map((p) => suite.frost.Identifier.derive(p.id));
    // p1 puts the box it sealed for p2 where p3's share should be.
    const bad = resign(
      h.ids[0]!,
      PayloadKind.DKG_ROUND2,
      st[0]!.round2,
      (p) => {
        const forP2 = p.shares.find((s: any) => toHex(s.recipient) === p1id[1]);
        const forP3 = p.shares.find((s: any) => toHex(s.recipient) === p1id[2]);
        forP3.enc = forP2.enc;
        forP3.ciphertext = forP2.ciphertext;
      },
      'DkgRound2',
    );
    expectBlame(() => st[2]!.state.receiveRound2([bad, st[1]!.round2]), ErrorCode.DECRYPT, ['p1']);
  });

  it("round-2 share meant for someone else: p2's share re-sealed to p3 fails the VSS check and is blamed on its sender", () => {
    const h = harness(3, 2, suite, 'wrongshare');
    const r1 = h.starts.map((s) => s.round1);
    const st = h.starts.map((s) => s.state.receiveRound1(r1));
    const idOf = (i: number) => suite.frost.Identifier.derive(h.ids[i]!.id);
    const sessionHash = st[0]!.state.sessionHash;
    const bad = resign(
      h.ids[0]!,
      PayloadKind.DKG_ROUND2,
      st[0]!.round2,
      (p) => {
        const forP2 = p.shares.find((s: any) => toHex(s.recipient) === idOf(1));
        const forP3 = p.shares.find((s: any) => toHex(s.recipient) === idOf(2));
        // The sender knows what it sent p2; it seals that same value to p3 (properly encrypted).
        const plain = hpkeOpen(
          h.ids[1]!.encryptionSecret(),
          forP2.enc,
          shareInfo(sessionHash, idOf(0), idOf(1)),
          new Uint8Array(0),
          forP2.ciphertext,
        );
        const box = hpkeSeal(
          h.ids[2]!.public.encKey,
          shareInfo(sessionHash, idOf(0), idOf(2)),
          new Uint8Array(0),
          plain,
        );
        forP3.enc = box.enc;
        forP3.ciphertext = box.ciphertext;
      },
      'DkgRound2',
    );
    expectBlame(() => st[2]!.state.receiveRound2([bad, st[1]!.round2]), ErrorCode.BAD_SHARE, ['p1']);
  });

  it('replayed round message: a round-1 message from an earlier session is refused and blames nobody', () => {
    const old = harness(3, 2, suite, 'old');
    const h = harness(3, 2, suite, 'new');
    // Same participants' keys? No: the replay comes from the same identities in another session.
    const oldCfg: DkgConfig = { ...h.cfg, sessionId: new Uint8Array(32).fill(9) };
    const replayed = startDkg(oldCfg, h.ids[2]!).round1;
    void old;
    expectBlame(
      () => h.starts[0]!.state.receiveRound1([h.starts[1]!.round1, replayed]),
      ErrorCode.UNEXPECTED_MESSAGE,
      [],
    );
  });

  it('replayed round message: a round-1 message replayed as a round-2 message is refused', () => {
    const h = harness(3, 2, suite, 'kind');
    const r1 = h.starts.map((s) => s.round1);
    const st = h.starts.map((s) => s.state.receiveRound1(r1));
    expectBlame(() => st[0]!.state.receiveRound2([r1[1]!, st[2]!.round2]), ErrorCode.UNEXPECTED_MESSAGE, []);
  });

  it('package of the wrong suite: a secp256k1 round-1 in an ed25519 session is refused and blamed', () => {
    const h = harness(3, 2, suite, 'suite');
    const wrong = resign(
      h.ids[1]!,
      PayloadKind.DKG_ROUND1,
      h.starts[1]!.round1,
      (p) => {
        p.header.suite = getSuite('secp256k1').wireId;
      },
      'DkgRound1',
    );
    expectBlame(() => h.starts[0]!.state.receiveRound1([wrong, h.starts[2]!.round1]), ErrorCode.WRONG_SUITE, ['p2']);
  });

  it('re-encoded envelope: a relay that re-encodes a genuine envelope cannot frame its sender as an equivocator', () => {
    const h = harness(3, 2, suite, 'reencode');
    // Appending an unknown field keeps every signed field intact; only the bytes differ.
    const reencoded = new Uint8Array([...h.starts[0]!.round1, 0x78, 0x05]);
    expectBlame(() => h.starts[1]!.state.receiveRound1([reencoded, h.starts[2]!.round1]), ErrorCode.DECODE, []);
  });

  it('forged envelope: a message whose signature does not verify is refused and blames nobody', () => {
    const h = harness(3, 2, suite, 'forged');
    const forged = new Uint8Array(h.starts[1]!.round1);
    forged[forged.length - 1]! ^= 0x40;
    expectBlame(() => h.starts[0]!.state.receiveRound1([forged, h.starts[2]!.round1]), ErrorCode.BAD_SIGNATURE, []);
  });

  it('split outcome: a participant confirming another key is caught by the confirmation round', () => {
    const h = harness(3, 2, suite, 'confirm');
    const r1 = h.starts.map((s) => s.round1);
    const st = h.starts.map((s) => s.state.receiveRound1(r1));
    const r2 = st.map((s) => s.round2);
    const fin = st.map((s) => s.state.receiveRound2(r2));
    const lying = resign(
      h.ids[2]!,
      PayloadKind.DKG_CONFIRM,
      fin[2]!.confirm,
      (p) => {
        p.keyDigest = new Uint8Array(32).fill(7);
      },
      'DkgConfirm',
    );
    expectBlame(() => fin[0]!.state.receiveConfirmations([fin[1]!.confirm, lying]), ErrorCode.CONFIRMATION_MISMATCH, [
      'p3',
    ]);
  });
});

describe('signing attacks', () => {
  const ids = identities(3, seededRng('sign-ids'));
  const out = runLocalDkg(suite, 2, ids, seededRng('sign'));
  const key: GroupKey = (out.get('p1') as DkgOutput).key;
  const share = (id: string) => (out.get(id) as DkgOutput).share as KeyShare;
  const msg = utf8ToBytes('pay 1 BTC to bob');

  function round(signers: string[]) {
    const nonces = new Map<string, SigningNonces>();
    const list: NonceCommitment[] = [];
    for (const s of signers) {
      const c = commit(share(s));
      nonces.set(s, c.nonces);
      list.push(c.commitment);
    }
    const shares = new Map(signers.map((s) => [s, signShare(share(s), key, nonces.get(s)!, list, msg)]));
    return { session: new SigningSession(key, msg, list), shares };
  }

  it('negated signature share is rejected and blamed on its sender', () => {
    const { session, shares } = round(['p1', 'p2']);
    const z = suite.Fn.fromBytes(shares.get('p2')!);
    shares.set('p2', suite.Fn.toBytes(suite.Fn.neg(z)));
    expect(session.verifyShare('p2', shares.get('p2')!)).toBe(false);
    expectBlame(() => session.aggregate(shares), ErrorCode.BAD_SIGNATURE_SHARE, ['p2']);
  });

  it('signature share off by one is rejected and blamed on its sender', () => {
    const { session, shares } = round(['p1', 'p3']);
    const z = suite.Fn.fromBytes(shares.get('p1')!);
    shares.set('p1', suite.Fn.toBytes(suite.Fn.add(z, 1n)));
    expectBlame(() => session.aggregate(shares), ErrorCode.BAD_SIGNATURE_SHARE, ['p1']);
  });

  it('after a blamed share the coordinator retries with another quorum and succeeds', () => {
    const first = round(['p1', 'p2']);
    first.shares.set('p2', new Uint8Array(32).fill(1));
    let blamed: string[] = [];
    try {
      first.session.aggregate(first.shares);
    } catch (e) {
      blamed = [...(e as { culprits: string[] }).culprits];
    }
    expect(blamed).toEqual(['p2']);
    const quorum = selectQuorum(key, ['p1', 'p2', 'p3'], blamed);
    expect(quorum).toEqual(['p1', 'p3']);
    const retry = round(quorum);
    const sig = retry.session.aggregate(retry.shares);
    expect(suite.verify(sig, msg, groupPublicKey(key))).toBe(true);
    expectBlame(() => selectQuorum(key, ['p1', 'p2', 'p3'], ['p2', 'p3']), ErrorCode.NO_QUORUM, ['p2', 'p3']);
  });

  it('swapped commitment list: a signer refuses a list that does not carry its own commitment', () => {
    const a = commit(share('p1'));
    const b = commit(share('p2'));
    const other = commit(share('p1'));
    // The coordinator swaps p1's commitment for a different (unused) one of p1.
    expect(() => signShare(share('p1'), key, a.nonces, [other.commitment, b.commitment], msg)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
  });

  it('nonces are single use in memory: a second share from the same nonces is refused', () => {
    const a = commit(share('p1'));
    const b = commit(share('p2'));
    const list = [a.commitment, b.commitment];
    signShare(share('p1'), key, a.nonces, list, msg);
    expect(() => signShare(share('p1'), key, a.nonces, list, utf8ToBytes('another message'))).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_STATE }),
    );
  });

  it('a share from a participant outside the quorum is refused', () => {
    const { session, shares } = round(['p1', 'p2']);
    shares.set('p3', new Uint8Array(32));
    expect(() => session.aggregate(shares)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
  });
});

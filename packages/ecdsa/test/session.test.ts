/**
 * The sealed sessions (session.ts) with Tessera identities and a key from Tessera's DKG on the
 * ecdsa-secp256k1 suite: setup and presigning relayed as bytes, a signature every verifier
 * accepts; a relay that redirects, replays, reorders or forges messages is refused without
 * blaming an honest sender; the kept state and wire encodings round-trip.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToNumberBE } from '@noble/curves/utils.js';
import {
  ErrorCode,
  ParticipantIdentity,
  PayloadKind,
  decodeMessage,
  encodeMessage,
  getSuite,
  groupPublicKey,
  openEnvelope,
  runLocalDkg,
  signEnvelope,
} from '@tessera/core';
import {
  PresignSession,
  SetupSession,
  combine,
  decodePairs,
  decodePresigned,
  encodePairs,
  partialSign,
  presignatureFromRecord,
  presignatureRecord,
  type EcdsaKeyView,
  type PairRecords,
} from '../src/index.js';
import { rng } from './harness.js';

const suite = getSuite('ecdsa-secp256k1');

function makeKey(n = 3, t = 2) {
  const people = Array.from({ length: n }, (_, i) => ParticipantIdentity.generate(`s${i + 1}`));
  const out = runLocalDkg(suite, t, people);
  const first = out.get('s1');
  if (!first) throw new Error('no DKG output');
  const view: EcdsaKeyView = {
    keyId: '00ecd5a000000001',
    epoch: 0,
    threshold: t,
    suite,
    roster: first.key.roster,
    publicKey: groupPublicKey(first.key),
  };
  const share = (id: string) => bytesToNumberBE(out.get(id)?.share.signingShare() as Uint8Array);
  return { people, view, share };
}

/** Delivers each envelope to the identity it is addressed to. */
function route(sent: Map<string, Uint8Array[]>): Map<string, Uint8Array[]> {
  const inbox = new Map<string, Uint8Array[]>();
  for (const list of sent.values())
    for (const env of list) {
      const to = decodeMessage('EcdsaPeerMessage', openEnvelope(env, PayloadKind.ECDSA_MESSAGE).payload).to;
      inbox.set(to, [...(inbox.get(to) ?? []), env]);
    }
  return inbox;
}

async function setupAll(k: ReturnType<typeof makeKey>): Promise<Map<string, PairRecords>> {
  const session = rng(32);
  const s = new Map(k.people.map((p) => [p.id, new SetupSession({ identity: p, key: k.view, session, rng })]));
  const m1 = route(new Map([...s].map(([id, x]) => [id, x.step1()])));
  const m2 = route(
    new Map(await Promise.all([...s].map(async ([id, x]) => [id, await x.step2(m1.get(id) ?? [])] as const))),
  );
  return new Map(await Promise.all([...s].map(async ([id, x]) => [id, await x.step3(m2.get(id) ?? [])] as const)));
}

describe('ECDSA sessions over a relay', () => {
  const k = makeKey();
  let pairs: Map<string, PairRecords>;
  beforeAll(async () => {
    pairs = await setupAll(k);
  }, 60_000);

  function presign(signers: string[], session = rng(32)) {
    const s = new Map(
      signers.map((id) => {
        const identity = k.people.find((p) => p.id === id) as ParticipantIdentity;
        const p = pairs.get(id) as PairRecords;
        return [id, new PresignSession({ identity, key: k.view, session, signers, share: k.share(id), pairs: p, rng })];
      }),
    );
    return { s, session };
  }

  it('sets up, presigns and signs with the DKG key; noble verifies with the recovery id', () => {
    const { s } = presign(['s1', 's3']);
    const m1 = route(new Map([...s].map(([id, x]) => [id, x.step1()])));
    const m2 = route(new Map([...s].map(([id, x]) => [id, x.step2(m1.get(id) ?? [])])));
    const presigs = [...s].map(([id, x]) => x.step3(m2.get(id) ?? []));
    const digest = rng(32);
    const sig = combine(
      presigs[0] as (typeof presigs)[number],
      digest,
      presigs.map((p) => partialSign(p, digest)),
    );
    const full = new Uint8Array([...sig.compact, sig.recovery]);
    expect(suite.verify(full, digest, k.view.publicKey)).toBe(true);
    expect(suite.verify(full, rng(32), k.view.publicKey)).toBe(false);
    const recovered = secp256k1.Signature.fromBytes(sig.compact, 'compact')
      .addRecoveryBit(sig.recovery)
      .recoverPublicKey(digest);
    expect(recovered.toBytes(true)).toEqual(k.view.publicKey);
    // The suite's verifier checks the recovery id in one pass: every other v is refused, as a
    // verification plus a recovery (what it replaced) refuses it.
    for (let v = 0; v < 4; v++) {
      const other = new Uint8Array([...sig.compact, v]);
      let reference = false;
      try {
        reference =
          secp256k1.verify(sig.compact, digest, k.view.publicKey, { prehash: false, lowS: true }) &&
          secp256k1.Signature.fromBytes(sig.compact, 'compact')
            .addRecoveryBit(v)
            .recoverPublicKey(digest)
            .equals(secp256k1.Point.fromBytes(k.view.publicKey));
      } catch {
        reference = false;
      }
      expect(suite.verify(other, digest, k.view.publicKey)).toBe(reference);
      expect(reference).toBe(v === sig.recovery);
    }
  });

  it('a presignature survives its ledger record (public statement as meta, scalars as secret), R kept uncompressed or, as records written before, compressed', () => {
    const { s, session } = presign(['s1', 's2']);
    const m1 = route(new Map([...s].map(([id, x]) => [id, x.step1()])));
    const m2 = route(new Map([...s].map(([id, x]) => [id, x.step2(m1.get(id) ?? [])])));
    const presigs = [...s].map(([id, x]) => x.step3(m2.get(id) ?? []));
    const digest = rng(32);
    const want = presigs.map((p) => partialSign(p, digest));
    for (const stored of ['uncompressed', 'compressed'] as const) {
      const back = presigs.map((ps) => {
        const rec = presignatureRecord(suite, ps, {
          keyId: k.view.keyId,
          epoch: 0,
          session,
          signers: ['s1', 's2'],
          R: ps.R,
          ...(stored === 'uncompressed' ? { Rpoint: ps.Rpoint as NonNullable<typeof ps.Rpoint> } : {}),
        });
        expect(decodeMessage('EcdsaPresigned', rec.meta).r.length).toBe(stored === 'uncompressed' ? 65 : 33);
        const stated = decodePresigned(suite, rec.meta);
        return presignatureFromRecord(rec.secret, stated, {
          me: ps.me,
          signers: ps.signers,
          publicKey: ps.publicKey,
          keyIdBytes: ps.keyId,
        });
      });
      // The same secret scalars and compressed R; the point read back is the presignature's.
      const strip = <T extends { Rpoint?: unknown }>({ Rpoint, ...x }: T) => x;
      expect(back.map(strip)).toEqual(presigs.map(strip));
      for (const [i, b] of back.entries())
        expect(b.Rpoint?.equals(presigs[i]?.Rpoint as NonNullable<typeof b.Rpoint>)).toBe(true);
      // Byte for byte the same partials, with the point or from the bytes alone.
      expect(back.map((p) => partialSign(p, digest))).toEqual(want);
      expect(back.map((p) => partialSign(strip(p), digest))).toEqual(want);
      const sig = combine(back[0] as (typeof back)[number], digest, want);
      expect(secp256k1.verify(sig.compact, digest, k.view.publicKey, { prehash: false })).toBe(true);
    }
  });

  it("the setup's seconds of base OTs pause for the event loop: a node keeps answering its link meanwhile", async () => {
    const session = rng(32);
    const s = k.people.map((p) => new SetupSession({ identity: p, key: k.view, session, rng }));
    const m1 = route(new Map(s.map((x, i) => [k.people[i]?.id as string, x.step1()])));
    let done = false;
    let ranMeanwhile = 0;
    const tick = () => {
      if (done) return;
      ranMeanwhile++;
      setImmediate(tick);
    };
    setImmediate(tick);
    await (s[0] as SetupSession).step2(m1.get('s1') ?? []);
    done = true;
    // 256 base OTs (two peers), a pause every 8: the event loop ran many times before it finished.
    expect(ranMeanwhile).toBeGreaterThanOrEqual(16);
  });

  it("pair states of another participant's index are refused, not reinterpreted", () => {
    const identity = k.people.find((p) => p.id === 's1') as ParticipantIdentity;
    const make = (p: PairRecords) => () =>
      new PresignSession({
        identity,
        key: k.view,
        session: rng(32),
        signers: ['s1', 's2'],
        share: k.share('s1'),
        pairs: p,
        rng,
      });
    expect(make(pairs.get('s1') as PairRecords)).not.toThrow();
    expect(make(pairs.get('s2') as PairRecords)).toThrow(/another index of this participant/);
    const mine = pairs.get('s1') as PairRecords;
    const shifted = new Map([...mine.pairs].map(([id, st]) => [id, { ...st, peer: st.peer + 1 }]));
    expect(make({ ...mine, pairs: shifted })).toThrow(/was set up at another index/);
  });

  it('pair records round-trip through their encoding', () => {
    const mine = pairs.get('s2') as PairRecords;
    const back = decodePairs(encodePairs(mine));
    expect(back.me).toBe(mine.me);
    expect([...back.pairs.keys()].sort()).toEqual([...mine.pairs.keys()].sort());
    expect(back.pairs.get('s1')).toEqual(mine.pairs.get('s1'));
  });

  it('refuses a message redirected to another recipient, replayed into another session or round, or sent twice', () => {
    const a = presign(['s1', 's2', 's3']);
    const m1 = route(new Map([...a.s].map(([id, x]) => [id, x.step1()])));
    const toS1 = m1.get('s1') ?? [];
    const toS2 = m1.get('s2') ?? [];
    const code = (f: () => unknown) => {
      try {
        f();
        return 'ok';
      } catch (e) {
        return (e as { code?: string }).code;
      }
    };
    // s2 gets a message that was for s1 (the relay redirects it).
    expect(code(() => a.s.get('s2')?.step2([toS1[0] as Uint8Array, toS2[1] as Uint8Array]))).toBe(
      ErrorCode.UNEXPECTED_MESSAGE,
    );
    // Another session's messages.
    const b = presign(['s1', 's2', 's3']);
    const other = route(new Map([...b.s].map(([id, x]) => [id, x.step1()])));
    expect(code(() => a.s.get('s3')?.step2(other.get('s3') ?? []))).toBe(ErrorCode.UNEXPECTED_MESSAGE);
    // One message twice instead of one from each.
    expect(
      code(() => b.s.get('s1')?.step2([other.get('s1')?.[0] as Uint8Array, other.get('s1')?.[0] as Uint8Array])),
    ).toBe(ErrorCode.UNEXPECTED_MESSAGE);
  });

  it('a message signed by someone outside the roster, or claiming another sender, names nobody', () => {
    const a = presign(['s1', 's2']);
    const [env] = a.s.get('s1')?.step1() ?? [];
    const w = decodeMessage('EcdsaPeerMessage', openEnvelope(env as Uint8Array, PayloadKind.ECDSA_MESSAGE).payload);
    const mallory = ParticipantIdentity.generate('mallory');
    const forged = signEnvelope(mallory, PayloadKind.ECDSA_MESSAGE, encodeMessage('EcdsaPeerMessage', w));
    try {
      a.s.get('s2')?.step2([forged]);
      expect.unreachable();
    } catch (e) {
      expect((e as { code?: string }).code).toBe(ErrorCode.UNEXPECTED_MESSAGE);
      expect((e as { culprits?: string[] }).culprits ?? []).toEqual([]);
    }
  });

  it('a tampered sealed body is DECRYPT naming its signed sender', () => {
    const a = presign(['s1', 's2']);
    a.s.get('s2')?.step1();
    const [env] = a.s.get('s1')?.step1() ?? [];
    const w = decodeMessage('EcdsaPeerMessage', openEnvelope(env as Uint8Array, PayloadKind.ECDSA_MESSAGE).payload);
    const ct = w.ciphertext.slice();
    ct[5] = (ct[5] as number) ^ 1;
    const s1 = k.people.find((p) => p.id === 's1') as ParticipantIdentity;
    const bad = signEnvelope(
      s1,
      PayloadKind.ECDSA_MESSAGE,
      encodeMessage('EcdsaPeerMessage', { ...w, ciphertext: ct }),
    );
    try {
      a.s.get('s2')?.step2([bad]);
      expect.unreachable();
    } catch (e) {
      expect((e as { code?: string }).code).toBe(ErrorCode.DECRYPT);
      expect((e as { culprits?: string[] }).culprits).toEqual(['s1']);
    }
  });

  it('refuses fewer signers than the threshold and a non-ECDSA key', () => {
    const identity = k.people[0] as ParticipantIdentity;
    const p = pairs.get('s1') as PairRecords;
    expect(
      () =>
        new PresignSession({
          identity,
          key: { ...k.view, threshold: 3 },
          session: rng(32),
          signers: ['s1', 's2'],
          share: k.share('s1'),
          pairs: p,
          rng,
        }),
    ).toThrow(/threshold/);
    expect(
      () => new SetupSession({ identity, key: { ...k.view, suite: getSuite('secp256k1') }, session: rng(32), rng }),
    ).toThrow(/not an ECDSA key/);
  });
});

/**
 * Threshold ECDSA against a hostile coordinator, on a REAL signer process (its own LevelDB, KEK
 * and mTLS link): the coordinator is a test-controlled gRPC server that relays the DKG and the
 * DKLs23 setup between the real signer and two in-process engines, then sends whatever setup,
 * presigning and sign tasks it likes — unasked, twice, out of order, below the threshold, and
 * with signer-2 on its side (signer-2 cheats in the OT extension and in its sealed messages).
 * After SIGTERM the real signer's ledger and audit chain are read from its own store.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToNumberBE } from '@noble/curves/utils.js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LifecycleStep,
  ParticipantIdentity,
  PayloadKind,
  createSignIntent,
  decodeKeyRecord,
  decodeMessage,
  encodeKeyRecord,
  encodeMessage,
  encodeReshareParams,
  groupPublicKey,
  openEnvelope,
  participantFromWire,
  signEnvelope,
  toHex,
  getSuite,
  type KeyRecord,
  type LinkResult,
  type RosterEntry,
} from '@tessera/core';
import {
  EcdsaPresign,
  combine,
  decodePairs,
  decodePresign1,
  decodePartial,
  decodePresigned,
  encodeEcdsaSignRequest,
  encodePresign1,
  encodePresign2,
  evaluationPoints,
  rosterIndex,
  sealPeerMessage,
  setupAbort,
  setupDone,
  setupDoneSession,
  type EcdsaKeyView,
  type PairState,
} from '@tessera/ecdsa';
import { createDevPki } from '@tessera/runtime';
import { AuditLog, NonceLedger, SealedStore, loadKek } from '@tessera/store';
import type { SignerEngine } from '@tessera/signer';
import type { Proc } from './harness.js';
import { startHostileCoordinator, type Hostile } from './hostile.js';
import {
  engineParticipant,
  localEngine,
  realParticipant,
  relayDkg,
  startRealSigner,
  type Participant,
} from './hostile-fixture.js';

const suite = getSuite('ecdsa-secp256k1');
const requester = ParticipantIdentity.generate('wallet-api');
const mallory = ParticipantIdentity.generate('mallory');
let dir: string;
let hostile: Hostile;
let proc: Proc;
let signerConfig: { dataDir: string; kekFile: string };
let s2: SignerEngine;
let s3: SignerEngine;
let parts: Participant[];
let key: KeyRecord;
/** A second key, set up step by step by the two-phase setup test. */
let key2: KeyRecord;
let view: EcdsaKeyView;
const stores: SealedStore[] = [];
/** What the real signer's store must show at the end. */
const expectConsumed = new Map<string, string>();
const expectBurned: string[] = [];
const expectRefusals: string[] = [];
/** Presigning sessions that failed: no presignature of theirs in the ledger. */
const expectNotKept: string[] = [];

/** The key's one setup session (its pairs in use on every member). */
const setupSession = new Uint8Array(randomBytes(32));
const part = (id: string) => parts.find((p) => p.id === id) as Participant;
const ecdsaTask = (
  kind: string,
  step: number,
  session: Uint8Array,
  signers: string[],
  messages: Uint8Array[] = [],
) => ({
  kind,
  keyId: key.keyId,
  step,
  session,
  signers,
  messages,
});

/** The one set of pair states an engine's store holds for the key (its one roster). */
async function pairsIn(store: SealedStore) {
  const all = [];
  for await (const [, v] of store.iterate(`ecdsa/pairs/${key.keyId}/`)) all.push(decodePairs(v));
  expect(all).toHaveLength(1);
  return all[0] as ReturnType<typeof decodePairs>;
}

/** Routes one step's answers to their recipients, as the coordinator does (it reads only `to`). */
function route(results: Map<string, LinkResult>): Map<string, Uint8Array[]> {
  const inbox = new Map<string, Uint8Array[]>();
  for (const r of results.values())
    for (const env of r.ecdsa?.envelopes ?? []) {
      const to = decodeMessage('EcdsaPeerMessage', openEnvelope(env, PayloadKind.ECDSA_MESSAGE).payload).to;
      inbox.set(to, [...(inbox.get(to) ?? []), env]);
    }
  return inbox;
}

/** Steps 1..`upTo` of a session among `ids`; the answers of the last step run. */
async function relay(
  kind: string,
  session: Uint8Array,
  ids: string[],
  upTo = 3,
  keyId = key.keyId,
): Promise<Map<string, LinkResult>> {
  let inbox = new Map<string, Uint8Array[]>();
  let results = new Map<string, LinkResult>();
  for (let step = 1; step <= upTo; step++) {
    const answers = await Promise.all(
      ids.map((id) => part(id).call('ecdsa', { ...ecdsaTask(kind, step, session, ids, inbox.get(id) ?? []), keyId })),
    );
    results = new Map(ids.map((id, i) => [id, answers[i] as LinkResult]));
    for (const [id, r] of results) expect(r.error?.code, `${id} at ${kind} step ${step}`).toBeUndefined();
    inbox = route(results);
  }
  return results;
}

/** The whole setup among `ids`: steps 1–3, then step 4 on every member with every member's word. */
async function setUp(session: Uint8Array, ids: string[], keyId = key.keyId): Promise<Uint8Array[]> {
  const words = [...(await relay('setup', session, ids, 3, keyId)).values()].map((r) => r.envelope as Uint8Array);
  for (const id of ids) {
    const r = await part(id).call('ecdsa', { ...ecdsaTask('setup', 4, session, ids, words), keyId });
    expect(r.error?.code, `${id} at setup step 4`).toBeUndefined();
  }
  return words;
}

function intentFor(who: ParticipantIdentity, digest: Uint8Array): Uint8Array {
  return createSignIntent(who, {
    suite,
    keyId: key.keyId,
    message: digest,
    requestId: new Uint8Array(randomBytes(16)),
    notAfter: Date.now() + 120_000,
  });
}

function signRequest(intent: Uint8Array, session: Uint8Array, signers: string[]): Uint8Array {
  return encodeEcdsaSignRequest({
    keyId: key.keyId,
    epoch: 0,
    intent,
    session,
    signers,
    requestId: new Uint8Array(randomBytes(16)),
  });
}

const presignatureId = (session: Uint8Array) => `${key.keyId}.${toHex(session)}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-ecdsa-hostile-'));
  const pki = await createDevPki(join(dir, 'pki'), ['coordinator', 'signer-1']);
  hostile = await startHostileCoordinator(pki.certs.coordinator, 60_000);
  const policy = {
    allowKeygen: true,
    allowUnpinnedPeers: true,
    requesters: [{ id: 'wallet-api', publicKey: toHex(requester.public.signKey), keys: ['*'] }],
  };
  s2 = await localEngine(dir, 'signer-2', policy, stores);
  s3 = await localEngine(dir, 'signer-3', policy, stores);
  ({ proc, config: signerConfig } = await startRealSigner({
    dir,
    id: 'signer-1',
    hostile,
    tls: pki.certs['signer-1'],
    policy: {
      allowKeygen: true,
      requesters: policy.requesters,
      peers: [s2, s3].map((e) => ({
        id: e.id,
        publicKey: toHex(e.identity.public.signKey),
        encKey: toHex(e.identity.public.encKey),
      })),
    },
  }));
  const { hello } = await hostile.hello;
  parts = [
    realParticipant(hostile, 'signer-1', participantFromWire(hello.participant)),
    engineParticipant(s2),
    engineParticipant(s3),
  ];
  const done = await relayDkg(parts, 2, suite);
  key = decodeKeyRecord(done[0]?.dkgDone?.keyRecord as Uint8Array);
  view = {
    keyId: key.keyId,
    epoch: 0,
    threshold: 2,
    suite,
    roster: key.key.roster,
    publicKey: groupPublicKey(key.key),
  };
  await setUp(setupSession, ['signer-1', 'signer-2', 'signer-3']);
}, 120_000);

afterAll(async () => {
  if (proc && proc.child.exitCode === null && proc.child.signalCode === null) {
    const exited = new Promise((r) => proc.child.once('exit', r));
    proc.child.kill('SIGKILL');
    await exited;
  }
  if (hostile) await hostile.server.close(500);
  for (const s of stores) await s.close().catch(() => {});
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('threshold ECDSA: hostile coordinator vs a real signer process', () => {
  it('positive control: presigned by signer-1 and signer-2 (same R stated by both), the partials combine to a signature the plain verifier accepts', async () => {
    const session = new Uint8Array(randomBytes(32));
    const stated = await relay('presign', session, ['signer-1', 'signer-2']);
    const Rs = [...stated.values()].map(
      (r) => decodePresigned(suite, openEnvelope(r.envelope as Uint8Array, PayloadKind.ECDSA_PRESIGNATURE).payload).R,
    );
    expect(toHex(Rs[0] as Uint8Array)).toBe(toHex(Rs[1] as Uint8Array));
    const digest = sha256(new TextEncoder().encode('pay 5 USDT'));
    const request = signRequest(intentFor(requester, digest), session, ['signer-1', 'signer-2']);
    const partials = await Promise.all(['signer-1', 'signer-2'].map((id) => part(id).call('ecdsaSign', request)));
    const ps = partials.map((r, i) =>
      decodePartial(
        suite,
        openEnvelope(r.envelope as Uint8Array, PayloadKind.ECDSA_PARTIAL).payload,
        rosterIndex(view, ['signer-1', 'signer-2'][i] as string),
      ),
    );
    const sig = combine(
      {
        keyId: new TextEncoder().encode(key.keyId),
        sigid: session,
        signers: ['signer-1', 'signer-2'].map((id) => rosterIndex(view, id)).sort((a, b) => a - b),
        R: Rs[0] as Uint8Array,
        publicKey: view.publicKey,
      },
      digest,
      ps,
    );
    expect(suite.verify(new Uint8Array([...sig.compact, sig.recovery]), digest, view.publicKey)).toBe(true);
    expectConsumed.set(presignatureId(session), toHex(sha256(request)));

    // The identical request again: the identical partial (nothing new consumed). Another request
    // on the same presignature — another message — is NONCE_REUSED: one presignature, one signature.
    const again = await part('signer-1').call('ecdsaSign', request);
    expect(toHex(again.envelope as Uint8Array)).toBe(toHex(partials[0]?.envelope as Uint8Array));
    const other = signRequest(intentFor(requester, sha256(new Uint8Array([1]))), session, ['signer-1', 'signer-2']);
    const reused = await part('signer-1').call('ecdsaSign', other);
    expect(reused.error?.code).toBe('NONCE_REUSED');
    expectRefusals.push('NONCE_REUSED');
  });

  it('setup again, unasked: refused (KEY_EXISTS); the pair states are never replaced on the coordinator’s word', async () => {
    const r = await part('signer-1').call(
      'ecdsa',
      ecdsaTask('setup', 1, new Uint8Array(randomBytes(32)), ['signer-1', 'signer-2', 'signer-3']),
    );
    expect(r.error?.code).toBe('KEY_EXISTS');
    expect(r.ecdsa).toBeFalsy();
  });

  it("the setup's two phases, hostile: pairs stay pending until every roster member's word for their session (unasked, a word short, forged, twice, of another session or key: refused); a session id runs once; a member that gave its word sets up again only on another member's signed abort, and never aborts its own; the pairs then in use presign with every peer", async () => {
    const done = await relayDkg(parts, 2, suite);
    key2 = decodeKeyRecord(done[0]?.dkgDone?.keyRecord as Uint8Array);
    const v2: EcdsaKeyView = {
      ...view,
      keyId: key2.keyId,
      roster: key2.key.roster,
      publicKey: groupPublicKey(key2.key),
    };
    const ids = ['signer-1', 'signer-2', 'signer-3'];
    const rand = () => new Uint8Array(randomBytes(32));
    const step = async (id: string, n: number, session: Uint8Array, messages: Uint8Array[] = []) => {
      const r = await part(id).call('ecdsa', {
        kind: 'setup',
        keyId: key2.keyId,
        step: n,
        session,
        signers: ids,
        messages,
      });
      return { code: r.error?.code ?? 'ok', r };
    };
    const inUse = async () => {
      const r = await part('signer-1').call('ecdsa', {
        kind: 'presign',
        keyId: key2.keyId,
        step: 1,
        session: rand(),
        signers: ['signer-1', 'signer-2'],
        messages: [],
      });
      return r.error?.code !== 'FAILED_PRECONDITION';
    };
    const heldBy = async (id: string) =>
      toHex(setupDoneSession(v2, (await step(id, 5, rand())).r.envelope as Uint8Array).session);
    // Unasked, before any setup: nothing pending, nothing to say.
    expect((await step('signer-1', 4, rand())).code).toBe('INVALID_STATE');
    expect((await step('signer-1', 5, rand())).code).toBe('NOT_FOUND');
    // The first session's rounds on all three; step 3 (pairs pending, the word) on signer-1 and
    // signer-2 only: signer-3 never gives its word.
    const first = rand();
    const inbox3 = route(await relay('setup', first, ids, 2, key2.keyId));
    const w1 = (await step('signer-1', 3, first, inbox3.get('signer-1'))).r.envelope as Uint8Array;
    const w2 = (await step('signer-2', 3, first, inbox3.get('signer-2'))).r.envelope as Uint8Array;
    expect([w1, w2].map((x) => setupDoneSession(v2, x).from)).toEqual(['signer-1', 'signer-2']);
    expect(await inUse()).toBe(false);
    expect(await heldBy('signer-1')).toBe(toHex(first));
    // With signer-2 on its side the coordinator has two words of three: not enough.
    expect((await step('signer-1', 4, first, [w1, w2])).code).toBe('FAILED_PRECONDITION');
    // signer-3's word made up (another key in its name), signer-2's given twice.
    const impostor = ParticipantIdentity.generate('signer-3');
    expect((await step('signer-1', 4, first, [w1, w2, setupDone(impostor, v2, first, new Map())])).code).toBe(
      'BAD_SIGNATURE',
    );
    expect((await step('signer-1', 4, first, [w1, w2, w2])).code).toBe('UNEXPECTED_MESSAGE');
    // signer-3's genuine words, but for another session, or for the first key's roster.
    for (const misplaced of [
      setupDone(s3.identity, v2, rand(), new Map()),
      setupDone(s3.identity, view, first, new Map()),
    ])
      expect((await step('signer-1', 4, first, [w1, w2, misplaced])).code).toBe('UNEXPECTED_MESSAGE');
    // signer-3's word for this session, but its pair with signer-1 exchanged other messages (what
    // a signer-3 whose store was restored and that ran the session again would say): refused.
    const rerun = setupDone(s3.identity, v2, first, new Map([['signer-1', rand()]]));
    expect((await step('signer-1', 4, first, [w1, w2, rerun])).code).toBe('CONFIRMATION_MISMATCH');
    expect(await inUse()).toBe(false);
    // A session id runs once: the first session again is refused before any message.
    expect((await step('signer-1', 1, first)).code).toBe('INVALID_STATE');
    // signer-1 gave its word: a new setup needs another member's abort of that session — not
    // none, not its own (it refuses to sign one), not one made up, not one of another session.
    const second = rand();
    expect((await step('signer-1', 1, second)).code).toBe('FAILED_PRECONDITION');
    expect((await step('signer-1', 6, first)).code).toBe('FAILED_PRECONDITION');
    for (const bad of [
      setupAbort(impostor, v2, first),
      setupAbort(s3.identity, v2, rand()),
      setupDone(s3.identity, v2, first, new Map()),
    ])
      expect((await step('signer-1', 1, second, [bad])).code).toBe('FAILED_PRECONDITION');
    expect(await heldBy('signer-1')).toBe(toHex(first));
    // signer-3, which never gave its word, aborts the session: then it never gives it.
    const abort = (await step('signer-3', 6, first)).r.envelope as Uint8Array;
    expect((await step('signer-3', 3, first, inbox3.get('signer-3'))).code).toBe('INVALID_STATE');
    // The second session, started with the abort: signer-1 and signer-2 drop the first's pairs.
    let inbox = new Map(ids.map((id) => [id, [abort]]));
    let results = new Map<string, LinkResult>();
    for (const n of [1, 2, 3]) {
      results = new Map(
        await Promise.all(ids.map(async (id) => [id, (await step(id, n, second, inbox.get(id) ?? [])).r] as const)),
      );
      for (const [id, r] of results) expect(r.error?.code, `${id} at step ${n}`).toBeUndefined();
      if (n < 3) inbox = route(results);
    }
    const words2 = ids.map((id) => results.get(id)?.envelope as Uint8Array);
    // The first session's two words no longer put anything in use anywhere.
    expect((await step('signer-1', 4, first, [w1, w2])).code).toBe('INVALID_STATE');
    for (const id of ids) expect((await step(id, 4, second, words2)).code, id).toBe('ok');
    expect(await inUse()).toBe(true);
    // Again: nothing to do; a new setup, the old words or an abort: KEY_EXISTS; step 5 says the session in use.
    expect((await step('signer-1', 4, second, words2)).code).toBe('ok');
    expect((await step('signer-1', 1, rand())).code).toBe('KEY_EXISTS');
    expect((await step('signer-1', 4, first, [w1, w2])).code).toBe('KEY_EXISTS');
    expect((await step('signer-1', 6, rand())).code).toBe('KEY_EXISTS');
    expect(await heldBy('signer-1')).toBe(toHex(second));
    // Every member's pairs are of the one session: signer-1 presigns with each peer.
    for (const peer of ['signer-2', 'signer-3']) {
      const stated = await relay('presign', rand(), ['signer-1', peer], 3, key2.keyId);
      expect(stated.size).toBe(2);
    }
  });

  it('a reshare that would give a device a share of the ECDSA key is refused (UNIMPLEMENTED) before any step of it runs', async () => {
    const phone = { ...ParticipantIdentity.generate('phone-1').public, device: true };
    const params = encodeReshareParams({
      suite,
      sessionId: new Uint8Array(randomBytes(32)),
      keyId: key.keyId,
      fromEpoch: key.epoch,
      oldKey: key.key,
      contributors: ['signer-1', 'signer-2'],
      newThreshold: 2,
      newParticipants: [part('signer-1').info, phone],
    });
    const r = await part('signer-1').call('lifecycle', {
      kind: 'reshare',
      keyId: key.keyId,
      step: LifecycleStep.CONTRIBUTE,
      params,
      envelopes: [],
      oldKeyRecord: encodeKeyRecord(key),
      epoch: key.epoch + 1,
      authorisation: new Uint8Array(0),
    });
    expect(r.error?.code).toBe('UNIMPLEMENTED');
    expect(r.envelope).toBeFalsy();
  });

  it('one session id in two step-1 tasks at once: exactly one runs, the other is NONCE_REUSED (the OT extension never runs twice under one id)', async () => {
    const session = new Uint8Array(randomBytes(32));
    const both = await Promise.all(
      [1, 2].map(() => part('signer-1').call('ecdsa', ecdsaTask('presign', 1, session, ['signer-1', 'signer-3']))),
    );
    expect(both.filter((r) => (r.ecdsa?.envelopes.length ?? 0) === 1)).toHaveLength(1);
    expect(both.filter((r) => r.error?.code === 'NONCE_REUSED')).toHaveLength(1);
  });

  it('a presigning session id used twice is refused before any message leaves (NONCE_REUSED), also after the session ended', async () => {
    const session = new Uint8Array(randomBytes(32));
    const first = await part('signer-1').call('ecdsa', ecdsaTask('presign', 1, session, ['signer-1', 'signer-3']));
    expect(first.ecdsa?.envelopes).toHaveLength(1);
    const second = await part('signer-1').call('ecdsa', ecdsaTask('presign', 1, session, ['signer-1', 'signer-3']));
    expect(second.error?.code).toBe('NONCE_REUSED');
    expect(second.ecdsa).toBeFalsy();
    // Steps out of order: step 3 of a session never started, step 2 of one that is not open.
    const stray = await part('signer-1').call(
      'ecdsa',
      ecdsaTask('presign', 3, new Uint8Array(randomBytes(32)), ['signer-1', 'signer-3']),
    );
    expect(stray.error?.code).toBe('INVALID_STATE');
  });

  it('below the threshold (signer-1 alone) and a non-member in the list are refused; a FROST task on the ECDSA key is WRONG_SUITE', async () => {
    const alone = await part('signer-1').call(
      'ecdsa',
      ecdsaTask('presign', 1, new Uint8Array(randomBytes(32)), ['signer-1']),
    );
    expect(alone.error?.code).toBe('INVALID_ARGUMENT');
    const outsider = await part('signer-1').call(
      'ecdsa',
      ecdsaTask('presign', 1, new Uint8Array(randomBytes(32)), ['signer-1', 'mallory']),
    );
    expect(outsider.error?.code).toBe('INVALID_ARGUMENT');
    const frost = await part('signer-1').call('commit', { keyId: key.keyId, count: 2 });
    expect(frost.error?.code).toBe('WRONG_SUITE');
  });

  it('an intent signed by a key outside the policy is refused (POLICY_DENIED) and the named presignature burned', async () => {
    const session = new Uint8Array(randomBytes(32));
    await relay('presign', session, ['signer-1', 'signer-3']);
    const r = await part('signer-1').call(
      'ecdsaSign',
      signRequest(intentFor(mallory, sha256(new Uint8Array([7]))), session, ['signer-1', 'signer-3']),
    );
    expect(r.error?.code).toBe('POLICY_DENIED');
    expect(r.envelope ?? new Uint8Array(0)).toHaveLength(0);
    expectRefusals.push('POLICY_DENIED');
    expectBurned.push(presignatureId(session));
  });

  it('signer-2 on the coordinator’s side: a sealed message it tampered with is DECRYPT naming signer-2; a tampered OT extension is refused naming signer-2', async () => {
    // (a) A genuine step-1 message of signer-2 with its ciphertext altered, re-signed by signer-2.
    const session = new Uint8Array(randomBytes(32));
    const s1 = await part('signer-1').call('ecdsa', ecdsaTask('presign', 1, session, ['signer-1', 'signer-2']));
    expect(s1.error).toBeFalsy();
    const r2 = await part('signer-2').call('ecdsa', ecdsaTask('presign', 1, session, ['signer-1', 'signer-2']));
    const [env] = r2.ecdsa?.envelopes ?? [];
    const w = decodeMessage('EcdsaPeerMessage', openEnvelope(env as Uint8Array, PayloadKind.ECDSA_MESSAGE).payload);
    const ct = w.ciphertext.slice();
    ct[9] = (ct[9] as number) ^ 0x80;
    const bad = signEnvelope(
      s2.identity,
      PayloadKind.ECDSA_MESSAGE,
      encodeMessage('EcdsaPeerMessage', { ...w, ciphertext: ct }),
    );
    const refused = await part('signer-1').call(
      'ecdsa',
      ecdsaTask('presign', 2, session, ['signer-1', 'signer-2'], [bad]),
    );
    expect(refused.error?.code).toBe('DECRYPT');
    expect(refused.error?.culprits).toEqual(['signer-2']);

    // (b) signer-2's OT-extension message with one bit of U flipped, sealed and signed by signer-2.
    const session2 = new Uint8Array(randomBytes(32));
    const ok1 = await part('signer-1').call('ecdsa', ecdsaTask('presign', 1, session2, ['signer-1', 'signer-2']));
    expect(ok1.error).toBeFalsy();
    const rec2 = await s2.key(key.keyId);
    const pairs2 = await pairsIn(stores[0] as SealedStore);
    const me = rosterIndex(view, 'signer-2');
    const peer = rosterIndex(view, 'signer-1');
    const share = rec2.share.signingShare();
    const cheat = new EcdsaPresign({
      keyId: new TextEncoder().encode(key.keyId),
      sigid: session2,
      me,
      signers: [me, peer].sort((a, b) => a - b),
      share: bytesToNumberBE(share),
      points: evaluationPoints(view),
      publicKey: view.publicKey,
      pairs: new Map([[peer, { ...(pairs2.pairs.get('signer-1') as PairState), peer }]]),
      rng: (n = 32) => new Uint8Array(randomBytes(n)),
    });
    const m = cheat.round1().get(peer);
    if (!m) throw new Error('no message for signer-1');
    const u = m.ote.u.slice();
    u[100] = (u[100] as number) ^ 1;
    const body = encodePresign1({ commitment: m.commitment, ote: { ...m.ote, u } });
    const to = key.key.roster.find((r) => r.id === 'signer-1') as RosterEntry;
    const sealed = sealPeerMessage(
      s2.identity,
      view,
      'presign',
      session2,
      1,
      to,
      body,
      (n = 32) => new Uint8Array(randomBytes(n)),
    );
    const named = await part('signer-1').call(
      'ecdsa',
      ecdsaTask('presign', 2, session2, ['signer-1', 'signer-2'], [sealed]),
    );
    expect(named.error?.code).toBe('BAD_MULTIPLICATION');
    expect(named.error?.culprits).toEqual(['signer-2']);
    expect(named.ecdsa).toBeFalsy();
  });

  it('signer-3 on the coordinator’s side sends a wrong correlation (a tampered vector-OLE message): refused naming signer-3, no presignature kept', async () => {
    const session = new Uint8Array(randomBytes(32));
    const ids = ['signer-1', 'signer-3'];
    const me = rosterIndex(view, 'signer-3');
    const peer = rosterIndex(view, 'signer-1');
    const rng = (n = 32) => new Uint8Array(randomBytes(n));
    const rec2 = await s3.key(key.keyId);
    const pairs2 = await pairsIn(stores[1] as SealedStore);
    const cheat = new EcdsaPresign({
      keyId: new TextEncoder().encode(key.keyId),
      sigid: session,
      me,
      signers: [me, peer].sort((a, b) => a - b),
      share: bytesToNumberBE(rec2.share.signingShare()),
      points: evaluationPoints(view),
      publicKey: view.publicKey,
      pairs: new Map([[peer, { ...(pairs2.pairs.get('signer-1') as PairState), peer }]]),
      rng,
    });
    const to = key.key.roster.find((r) => r.id === 'signer-1') as RosterEntry;
    // Round 1 both ways, honest.
    const r1 = await part('signer-1').call('ecdsa', ecdsaTask('presign', 1, session, ids));
    const mine1 = cheat.round1().get(peer);
    if (!mine1) throw new Error('no round-1 message');
    const sealed1 = sealPeerMessage(s3.identity, view, 'presign', session, 1, to, encodePresign1(mine1), rng);
    const r2 = await part('signer-1').call('ecdsa', ecdsaTask('presign', 2, session, ids, [sealed1]));
    expect(r2.error).toBeFalsy();
    // signer-1's round-1 message, opened by signer-3 (sealed to it), feeds the cheat's round 2.
    const env = openEnvelope((r1.ecdsa?.envelopes ?? [])[0] as Uint8Array, PayloadKind.ECDSA_MESSAGE);
    const w = decodeMessage('EcdsaPeerMessage', env.payload);
    const aad = encodeMessage('EcdsaPeerMessage', { ...w, enc: new Uint8Array(0), ciphertext: new Uint8Array(0) });
    const body = s3.identity.open(w.enc, new TextEncoder().encode('tessera/v1/ecdsa'), aad, w.ciphertext);
    const mine2 = cheat.round2(new Map([[peer, decodePresign1(body)]])).get(peer);
    if (!mine2) throw new Error('no round-2 message');
    const corrections = mine2.rvole.corrections.slice();
    corrections[40] = (corrections[40] as number) ^ 0x01;
    const tampered = encodePresign2({ ...mine2, rvole: { ...mine2.rvole, corrections } });
    const sealed2 = sealPeerMessage(s3.identity, view, 'presign', session, 2, to, tampered, rng);
    const r3 = await part('signer-1').call('ecdsa', ecdsaTask('presign', 3, session, ids, [sealed2]));
    expect(r3.error?.code).toBe('BAD_MULTIPLICATION');
    expect(r3.error?.culprits).toEqual(['signer-3']);
    expect(r3.envelope ?? new Uint8Array(0)).toHaveLength(0);
    expectNotKept.push(presignatureId(session));
  });

  it('after a failed multiplication check the pair is banned, durably: signer-1 presigns with neither cheater again (POLICY_DENIED), and says so before any message', async () => {
    for (const peer of ['signer-2', 'signer-3']) {
      const r = await part('signer-1').call(
        'ecdsa',
        ecdsaTask('presign', 1, new Uint8Array(randomBytes(32)), ['signer-1', peer]),
      );
      expect(r.error?.code, peer).toBe('POLICY_DENIED');
      expect(r.ecdsa).toBeFalsy();
    }
  });

  it('a sign request for a presignature this signer does not hold is refused (NONCE_UNKNOWN), nothing released', async () => {
    const digest = sha256(new Uint8Array([3]));
    const unknown = await part('signer-1').call(
      'ecdsaSign',
      signRequest(intentFor(requester, digest), new Uint8Array(randomBytes(32)), ['signer-1', 'signer-2']),
    );
    expect(unknown.error?.code).toBe('NONCE_UNKNOWN');
    expectRefusals.push('NONCE_UNKNOWN');
  });

  it('fuzzed ECDSA tasks and undecodable sign requests: every answer is a typed error or a well-formed step, and the signer keeps working', async () => {
    const ids = ['signer-1', 'signer-2', 'signer-3', 'mallory', ''];
    const genuine = [
      ...(await relay('presign', new Uint8Array(randomBytes(32)), ['signer-2', 'signer-3'], 1)).values(),
    ].flatMap((r) => r.ecdsa?.envelopes ?? []);
    const task = fc.record({
      kind: fc.constantFrom('setup', 'presign', 'sign', ''),
      step: fc.integer({ min: -1, max: 5 }),
      session: fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 40 })),
      signers: fc.subarray(ids),
      messages: fc.array(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc.tuple(fc.constantFrom(...genuine), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([g, i, v]) => {
            const b = g.slice();
            b[i % b.length] = v;
            return b;
          }),
        ),
        { maxLength: 3 },
      ),
    });
    const answers: string[] = [];
    await fc.assert(
      fc.asyncProperty(task, fc.uint8Array({ maxLength: 300 }), async (t, junk) => {
        const r = await part('signer-1').call('ecdsa', { ...t, keyId: key.keyId });
        if (r.error) expect(r.error.code).toMatch(/^[A-Z][A-Z_]+$/);
        // Setup step 5 tells anyone which setup session this node holds: its signed word.
        else if (t.kind === 'setup' && t.step === 5)
          expect(toHex(setupDoneSession(view, r.envelope as Uint8Array).session)).toBe(toHex(setupSession));
        else expect(r.ecdsa?.envelopes?.length, JSON.stringify(t.signers)).toBeGreaterThan(0);
        answers.push(r.error?.code ?? 'step');
        const s = await part('signer-1').call('ecdsaSign', junk);
        expect(s.error?.code).toMatch(/^[A-Z][A-Z_]+$/);
        expect(s.envelope).toBeFalsy();
      }),
      { numRuns: 120 },
    );
    expect(new Set(answers).size, answers.join(',')).toBeGreaterThan(2);
    // Still answering, its rules intact (the SIGTERM test below reads its ledger and audit chain).
    const again = await part('signer-1').call(
      'ecdsa',
      ecdsaTask('setup', 1, new Uint8Array(randomBytes(32)), ['signer-1', 'signer-2', 'signer-3']),
    );
    expect(again.error?.code).toBe('KEY_EXISTS');
  });

  it("after SIGTERM the real signer's own store: each presignature consumed once for its one request, refusals burned and audited, the audit chain verifies", async () => {
    const exited = new Promise<number | null>((r) => proc.child.once('exit', (code) => r(code)));
    proc.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const store = await SealedStore.open(signerConfig.dataDir, loadKek({ file: signerConfig.kekFile }), {
      createIfMissing: false,
    });
    try {
      const ledger = new NonceLedger(store);
      const consumed = await ledger.listConsumed(`${key.keyId}.`);
      expect(Object.fromEntries(consumed.map((c) => [c.nonceId, toHex(c.requestDigest)]))).toEqual(
        Object.fromEntries(expectConsumed),
      );
      for (const id of [...expectBurned, ...expectNotKept]) expect((await ledger.status(id)).state, id).toBe('unknown');
      // One set of pairs, for the key's one roster (ecdsa/pairs/<key>/<roster tag>).
      const pairs = [];
      for await (const k of store.keys(`ecdsa/pairs/${key.keyId}/`)) pairs.push(k);
      expect(pairs).toHaveLength(1);
      for (const peer of ['signer-2', 'signer-3'])
        expect(await store.get(`ecdsa/ban/${key.keyId}/${peer}`), `ban of ${peer}`).toBeDefined();
      const audit = new AuditLog(store);
      expect((await audit.verify()).ok).toBe(true);
      const entries = [];
      for await (const e of audit.entries()) entries.push(e);
      // Each key's setup once: the second key's when its second session's words came, not before.
      expect(entries.filter((e) => e.type === 'ecdsa-setup').map((e) => e.data.keyId)).toEqual([key.keyId, key2.keyId]);
      expect(entries.filter((e) => e.type === 'sign').map((e) => e.data.nonce)).toEqual([
        ...expectConsumed.keys(),
        ...expectConsumed.keys(), // the identical retry, audited again
      ]);
      expect(entries.filter((e) => e.type === 'refusal' && e.data.keyId === key.keyId).map((e) => e.data.code)).toEqual(
        expectRefusals,
      );
    } finally {
      await store.close();
    }
  });
});

/**
 * The signer's guarantees against a hostile coordinator, checked on a REAL signer process
 * (packages/signer/dist/main.js: its own LevelDB, KEK file and mTLS link). The coordinator it
 * dials is a test-controlled gRPC server that speaks ParticipantLink itself: it records the
 * hello, relays a DKG between the real signer and two in-process engines (signer-2, signer-3)
 * exactly as the real coordinator does, and then sends whatever sign requests it likes.
 *
 * After the process is stopped, its own LevelDB is opened to check what it durably did: which
 * nonces it consumed (and for which request), and that its audit chain verifies and records the
 * refusals.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LINK_DST,
  ParticipantIdentity,
  PayloadKind,
  SigningSession,
  concatBytes,
  createSignIntent,
  decodeCommitment,
  decodeKeyRecord,
  decodeMessage,
  decodeSignatureShare,
  dkgSessionHashOfParams,
  encodeDkgParams,
  encodeMessage,
  encodeSignRequest,
  equalBytes,
  getSuite,
  groupPublicKey,
  keyDigest,
  openEnvelope,
  participantFromWire,
  toHex,
  utf8ToBytes,
  verifyParticipantSignature,
  type KeyRecord,
  type LinkResult,
  type ParticipantPublic,
  type RequestCommitment,
} from '@tessera/core';
import { createDevPki } from '@tessera/runtime';
import { AuditLog, NonceLedger, SealedStore, ShareVault, loadKek } from '@tessera/store';
import type { SignerEngine } from '@tessera/signer';
import type { Proc } from './harness.js';
import {
  engineParticipant,
  localEngine as fixtureEngine,
  realParticipant,
  relayDkg,
  startRealSigner,
} from './hostile-fixture.js';
import { startHostileCoordinator, type Hostile } from './hostile.js';
import { opensslEd25519 } from './verifiers.js';
import { operators } from './authority.js';

const suite = getSuite('ed25519');
const _TASK_TIMEOUT_MS = 10_000;
/** A key id no DKG here produces: the only key the second requester is granted. */
const OTHER_KEY_ID = '0000000000000000';

// ---- fixture -----------------------------------------------------------------------------------

let dir: string;
let hostile: Hostile;
let proc: Proc;
let signerConfig: { dataDir: string; kekFile: string };
let s1Info: ParticipantPublic;
let s2: SignerEngine;
let s3: SignerEngine;
const localStores: SealedStore[] = [];
const requester = ParticipantIdentity.generate('wallet-api');
/** In signer-1's policy, but granted only OTHER_KEY_ID. */
const otherRequester = ParticipantIdentity.generate('other-app');
const mallory = ParticipantIdentity.generate('mallory');
let key: KeyRecord;
let dkgViews: { keyId: string; digest: string }[];
/** Unused commitments of the real signer and of signer-2 (each taken once). */
const realPool: RequestCommitment[] = [];
const s2Pool: RequestCommitment[] = [];

/** What the real signer's store must show at the end. */
const expectConsumed = new Map<string, string>(); // nonce id → hex sha256 of the one request it signed
const expectBurned = new Set<string>(); // nonce ids named by refused requests: gone from the ledger
const expectRefusals: string[] = []; // codes of refused sign requests, in order
const expectSignAudits: string[] = []; // nonce ids of released shares (a cached retry is audited too)

const nonceIdOf = (c: RequestCommitment) => new TextDecoder().decode(c.nonceId);

function decodeCommitmentEnvelope(env: Uint8Array, sender: Uint8Array): RequestCommitment {
  const opened = openEnvelope(env, PayloadKind.SIGNING_COMMITMENT);
  expect(equalBytes(opened.sender, sender)).toBe(true);
  const d = decodeCommitment(suite, opened.payload);
  return { ...d.commitment, nonceId: d.nonceId };
}

function intentFor(
  who: ParticipantIdentity,
  message: Uint8Array,
  keyId = key.keyId,
  requestId = new Uint8Array(randomBytes(16)),
): Uint8Array {
  return createSignIntent(who, { suite, keyId, message, requestId, notAfter: Date.now() + 120_000 });
}

function signRequest(
  intent: Uint8Array,
  commitments: RequestCommitment[],
  sessionId = new Uint8Array(randomBytes(16)),
): Uint8Array {
  return encodeSignRequest({ suite, sessionId, keyId: key.keyId, epoch: 0, intent, commitments });
}

/** Sends a sign request to the real signer as the hostile coordinator. */
const signReal = (request: Uint8Array) => hostile.send({ sign: request });

/** Asserts a typed refusal (and no share), and records it for the audit check. */
function expectRefusal(r: LinkResult, code: string): void {
  expect(r.body).toBe('error');
  expect(r.error?.code).toBe(code);
  expect(r.envelope ?? new Uint8Array(0)).toHaveLength(0);
  expectRefusals.push(code);
}

/** Opens a SIGNATURE_SHARE answer of the real signer: signed by its hello key, bound to `request`. */
function shareOf(r: LinkResult, request: Uint8Array): { share: Uint8Array; envelope: Uint8Array } {
  expect(r.body).toBe('envelope');
  const env = openEnvelope(r.envelope as Uint8Array, PayloadKind.SIGNATURE_SHARE);
  expect(equalBytes(env.sender, s1Info.signKey)).toBe(true);
  const s = decodeSignatureShare(suite, env.payload);
  expect(toHex(s.requestDigest)).toBe(toHex(sha256(request)));
  return { share: s.share, envelope: r.envelope as Uint8Array };
}

function take(pool: RequestCommitment[]): RequestCommitment {
  const c = pool.shift();
  if (!c) throw new Error('commitment pool exhausted');
  return c;
}

const localEngine = (id: string) =>
  fixtureEngine(
    dir,
    id,
    {
      allowKeygen: true,
      allowUnpinnedPeers: true,
      operators,
      requesters: [{ id: 'wallet-api', publicKey: toHex(requester.public.signKey), keys: ['*'] }],
    },
    localStores,
  );

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-hostile-'));
  const pki = await createDevPki(join(dir, 'pki'), ['coordinator', 'signer-1']);
  hostile = await startHostileCoordinator(pki.certs.coordinator);
  s2 = await localEngine('signer-2');
  s3 = await localEngine('signer-3');

  ({ proc, config: signerConfig } = await startRealSigner({
    dir,
    id: 'signer-1',
    hostile,
    tls: pki.certs['signer-1'],
    policy: {
      allowKeygen: true,
      requesters: [
        { id: 'wallet-api', publicKey: toHex(requester.public.signKey), keys: ['*'] },
        { id: 'other-app', publicKey: toHex(otherRequester.public.signKey), keys: [OTHER_KEY_ID] },
      ],
      peers: [s2, s3].map((e) => ({
        id: e.id,
        publicKey: toHex(e.identity.public.signKey),
        encKey: toHex(e.identity.public.encKey),
      })),
    },
  }));
  const { hello } = await hostile.hello;
  s1Info = participantFromWire(hello.participant);

  // DKG 2-of-3 among the real signer and the two in-process engines.
  const real = realParticipant(hostile, 'signer-1', s1Info);
  const done = await relayDkg([real, engineParticipant(s2), engineParticipant(s3)], 2, suite);
  dkgViews = done.map((r) => {
    expect(r.body).toBe('dkgDone');
    const d = r.dkgDone!;
    const rec = decodeKeyRecord(d.keyRecord);
    expect(rec.keyId).toBe(d.keyId);
    expect(toHex(keyDigest(rec.key))).toBe(toHex(d.keyDigest));
    return { keyId: d.keyId, digest: toHex(d.keyDigest) };
  });
  key = decodeKeyRecord(done[0]!.dkgDone!.keyRecord);

  // Preprocessing: commitments from the real signer (commit task) and from signer-2.
  const r = await hostile.send({ commit: { keyId: key.keyId, count: 10 } });
  expect(r.body).toBe('commitments');
  realPool.push(...r.commitments!.envelopes.map((e) => decodeCommitmentEnvelope(e, s1Info.signKey)));
  s2Pool.push(
    ...(await s2.commitments(key.keyId, 10)).map((e) => decodeCommitmentEnvelope(e, s2.identity.public.signKey)),
  );
}, 30_000);

afterAll(async () => {
  if (proc && proc.child.exitCode === null && proc.child.signalCode === null) {
    const exited = new Promise((r) => proc.child.once('exit', r));
    proc.child.kill('SIGKILL');
    await exited;
  }
  if (hostile) await hostile.server.close(500);
  for (const s of localStores) await s.close().catch(() => {});
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---- the cases ---------------------------------------------------------------------------------

describe('hostile coordinator vs a real signer process (own LevelDB, KEK, mTLS)', () => {
  it('the signer authenticates with a hello signed over "tessera/v1/link" || the challenge nonce', async () => {
    const { nonce, hello } = await hostile.hello;
    expect(hello.participant.id).toBe('signer-1');
    expect(hello.pid).toBe(proc.child.pid);
    expect(
      verifyParticipantSignature(hello.participant.signKey, concatBytes(utf8ToBytes(LINK_DST), nonce), hello.signature),
    ).toBe(true);
    // The signature is bound to this challenge: it does not verify for another nonce.
    expect(
      verifyParticipantSignature(
        hello.participant.signKey,
        concatBytes(utf8ToBytes(LINK_DST), new Uint8Array(32)),
        hello.signature,
      ),
    ).toBe(false);
    expect(hello.keys).toEqual([]);
  });

  it('the DKG relayed by the hostile coordinator gives all three participants the same key', () => {
    expect(new Set(dkgViews.map((v) => v.digest)).size).toBe(1);
    expect(dkgViews.map((v) => v.keyId)).toEqual([key.keyId, key.keyId, key.keyId]);
    expect(key.key.roster.map((r) => r.id).sort()).toEqual(['signer-1', 'signer-2', 'signer-3']);
    expect(realPool).toHaveLength(10);
  });

  it("positive control: a legitimate request gets a share that, with signer-2's, aggregates to a signature the plain verifier accepts", async () => {
    const msg = new TextEncoder().encode('pay 5 to bob');
    const mine = take(realPool);
    const theirs = take(s2Pool);
    const commitments = [mine, theirs];
    const request = signRequest(intentFor(requester, msg), commitments);
    const { share: share1 } = shareOf(await signReal(request), request);
    expectConsumed.set(nonceIdOf(mine), toHex(sha256(request)));
    expectSignAudits.push(nonceIdOf(mine));

    const env2 = openEnvelope(await s2.sign(request), PayloadKind.SIGNATURE_SHARE);
    const share2 = decodeSignatureShare(suite, env2.payload).share;

    const session = new SigningSession(key.key, msg, commitments);
    expect(session.verifyShare('signer-1', share1)).toBe(true);
    expect(session.verifyShare('signer-2', share2)).toBe(true);
    const signature = session.aggregate(
      new Map([
        ['signer-1', share1],
        ['signer-2', share2],
      ]),
    );
    const pk = groupPublicKey(key.key);
    expect(suite.verify(signature, msg, pk)).toBe(true);
    expect(opensslEd25519(signature, msg, pk)).toBe(true);
    expect(suite.verify(signature, new TextEncoder().encode('pay 6 to bob'), pk)).toBe(false);
  });

  it('message altered between rounds: an intent whose payload was altered under its original signature is refused (BAD_SIGNATURE), no share released', async () => {
    const msg = new TextEncoder().encode('pay 1 to alice');
    const genuine = intentFor(requester, msg);
    const env = openEnvelope(genuine, PayloadKind.SIGN_INTENT);
    // Alter the message bytes inside the signed payload ("pay 1" → "pay 9"), keep the signature.
    const payload = new Uint8Array(env.payload);
    const at = Buffer.from(payload).indexOf(Buffer.from(msg));
    expect(at).toBeGreaterThanOrEqual(0);
    payload[at + 4] = '9'.charCodeAt(0);
    const altered = encodeMessage('Envelope', {
      version: 1,
      kind: PayloadKind.SIGN_INTENT,
      sender: env.sender,
      payload,
      signature: decodeMessage('Envelope', genuine).signature,
    });

    const mine = take(realPool);
    const commitments = [mine, take(s2Pool)];
    expectRefusal(await signReal(signRequest(altered, commitments)), 'BAD_SIGNATURE');
    expectBurned.add(nonceIdOf(mine));

    // The refusal burned the nonce it named: not even the genuine intent gets a share on it now,
    // so nothing signed with that nonce can ever leave the signer.
    expectRefusal(await signReal(signRequest(genuine, commitments)), 'NONCE_UNKNOWN');
  });

  it("commitment list swapped: this signer's entry carrying another commitment of its own, or hiding/binding swapped, is refused", async () => {
    const msg = new TextEncoder().encode('pay 2 to carol');
    const intent = intentFor(requester, msg);
    const x = take(realPool);
    const y = take(realPool);
    // x's nonce id with y's (genuine, signer-1-made) commitment points.
    const replaced: RequestCommitment = { ...x, hiding: y.hiding, binding: y.binding };
    expectRefusal(await signReal(signRequest(intent, [replaced, take(s2Pool)])), 'INVALID_ARGUMENT');
    expectBurned.add(nonceIdOf(x));
    // y's own entry with its hiding and binding commitments swapped.
    const swapped: RequestCommitment = { ...y, hiding: y.binding, binding: y.hiding };
    expectRefusal(await signReal(signRequest(intent, [swapped, take(s2Pool)])), 'INVALID_ARGUMENT');
    expectBurned.add(nonceIdOf(y));
  });

  it('replayed request: the identical request twice gets the identical share (one nonce); the same nonce under another request is NONCE_REUSED', async () => {
    const intent = intentFor(requester, new TextEncoder().encode('pay 3 to dave'));
    const mine = take(realPool);
    const commitments = [mine, take(s2Pool)];
    const request = signRequest(intent, commitments);
    const a = shareOf(await signReal(request), request);
    const b = shareOf(await signReal(request), request);
    expect(toHex(b.share)).toBe(toHex(a.share));
    expect(toHex(b.envelope)).toBe(toHex(a.envelope));
    expectConsumed.set(nonceIdOf(mine), toHex(sha256(request)));
    expectSignAudits.push(nonceIdOf(mine), nonceIdOf(mine));

    // Same nonce, different intent (same requester, another message): would leak the share.
    const other = intentFor(requester, new TextEncoder().encode('pay 1000 to mallory'));
    expectRefusal(await signReal(signRequest(other, commitments)), 'NONCE_REUSED');
    // Same intent and commitments under another session id (another request digest) is not a replay either.
    expectRefusal(await signReal(signRequest(intent, commitments)), 'NONCE_REUSED');
    // The identical request still gets the cached share.
    expect(toHex(shareOf(await signReal(request), request).share)).toBe(toHex(a.share));
    expectSignAudits.push(nonceIdOf(mine));
  });

  it('forged intent: an intent signed by a key outside the policy is refused (POLICY_DENIED)', async () => {
    const mine = take(realPool);
    const forged = intentFor(mallory, new TextEncoder().encode('pay 4 to mallory'));
    expectRefusal(await signReal(signRequest(forged, [mine, take(s2Pool)])), 'POLICY_DENIED');
    expectBurned.add(nonceIdOf(mine));
  });

  it('a requester asking for a key its policy does not grant is refused (POLICY_DENIED)', async () => {
    // other-app is a known requester, but signer-1's policy grants it only OTHER_KEY_ID.
    const mine = take(realPool);
    const intent = intentFor(otherRequester, new TextEncoder().encode('pay 5 to other'));
    expectRefusal(await signReal(signRequest(intent, [mine, take(s2Pool)])), 'POLICY_DENIED');
    expectBurned.add(nonceIdOf(mine));
  });

  it('DKG roster injection: with policy.peers set, a roster with a participant it does not know is refused at dkgStart (POLICY_DENIED)', async () => {
    const dkgStart = (participants: ParticipantPublic[]) => {
      const params = encodeDkgParams({ suite, sessionId: new Uint8Array(randomBytes(32)), threshold: 2, participants });
      return { params, sessionHash: dkgSessionHashOfParams(params) };
    };
    const cases = [
      // mallory added to the genuine roster,
      [s1Info, s2.identity.public, s3.identity.public, mallory.public],
      // mallory instead of signer-3,
      [s1Info, s2.identity.public, mallory.public],
      // mallory's keys under signer-3's name.
      [s1Info, s2.identity.public, { ...mallory.public, id: 'signer-3' }],
    ];
    for (const roster of cases) {
      const { params, sessionHash } = dkgStart(roster);
      const r = await hostile.send({ dkgStart: { params } });
      expect(r.body).toBe('error');
      expect(r.error?.code).toBe('POLICY_DENIED');
      expect(r.envelope ?? new Uint8Array(0)).toHaveLength(0);
      // No session state was kept: the next round has nothing to continue.
      const next = await hostile.send({ dkgBundle: { sessionHash, round: 1, envelopes: [] } });
      expect(next.error?.code).toBe('NOT_FOUND');
    }
  });

  it("after SIGTERM the signer's own LevelDB shows exactly the consumed nonces, burned refusals and a verifying audit chain with the refusals", async () => {
    // One link for the whole run: a reconnect would have discarded the fresh nonces.
    expect(hostile.links).toHaveLength(1);
    const exited = new Promise<number | null>((r) => proc.child.once('exit', (code) => r(code)));
    proc.child.kill('SIGTERM');
    expect(await exited).toBe(0);

    const store = await SealedStore.open(signerConfig.dataDir, loadKek({ file: signerConfig.kekFile }), {
      createIfMissing: false,
    });
    try {
      const ledger = new NonceLedger(store);
      const consumed = await ledger.listConsumed();
      const ids = consumed.map((c) => c.nonceId);
      expect(new Set(ids).size).toBe(ids.length);
      expect(Object.fromEntries(consumed.map((c) => [c.nonceId, toHex(c.requestDigest)]))).toEqual(
        Object.fromEntries(expectConsumed),
      );
      expect(expectConsumed.size).toBe(2);
      for (const id of expectBurned) expect((await ledger.status(id)).state, id).toBe('unknown');
      // The untouched commitments are still fresh (the pool was not drained behind our back).
      for (const c of realPool) expect((await ledger.status(nonceIdOf(c))).state).toBe('fresh');

      expect(await new ShareVault(store).listKeys()).toEqual([key.keyId]);

      const audit = new AuditLog(store);
      const verified = await audit.verify();
      expect(verified.ok).toBe(true);
      const entries = [];
      for await (const e of audit.entries()) entries.push(e);
      expect(verified.count).toBe(entries.length);
      expect(entries.filter((e) => e.type === 'keygen').map((e) => e.data.keyId)).toEqual([key.keyId]);
      expect(entries.filter((e) => e.type === 'sign').map((e) => e.data.nonce)).toEqual(expectSignAudits);
      // The refused sign requests, in order, each with its code (refusals of this key only).
      expect(entries.filter((e) => e.type === 'refusal' && e.data.keyId === key.keyId).map((e) => e.data.code)).toEqual(
        expectRefusals,
      );
      expect(expectRefusals).toEqual([
        'BAD_SIGNATURE',
        'NONCE_UNKNOWN',
        'INVALID_ARGUMENT',
        'INVALID_ARGUMENT',
        'NONCE_REUSED',
        'NONCE_REUSED',
        'POLICY_DENIED',
        'POLICY_DENIED',
      ]);
    } finally {
      await store.close();
    }
  });
});

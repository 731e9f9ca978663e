/**
 * The coordinator and signer engines together, in one process, each signer on its own real
 * LevelDB store. Participants are wired by direct calls here; the multi-process tests run the
 * same engines behind gRPC.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ParticipantIdentity,
  PayloadKind,
  createSignIntent,
  decodeSignRequest,
  encodeMessage,
  encodeSignRequest,
  getSuite,
  openEnvelope,
  decodeSignatureShare,
  signEnvelope,
  decodeCommitment,
  decodeMessage,
  toHex,
  type LinkResult,
  type LinkTask,
  type SuiteId,
} from '@tessera/core';
import { SealedStore, kekFromBytes } from '@tessera/store';
import { SignerEngine } from '@tessera/signer';
import { Coordinator, type ParticipantHandle } from '@tessera/coordinator';
import { randomBytes } from 'node:crypto';
import { operators } from './authority.js';

const dirs: string[] = [];
const stores: SealedStore[] = [];
afterAll(async () => {
  for (const s of stores) await s.close().catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function openStore(): Promise<SealedStore> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-engines-'));
  dirs.push(dir);
  const s = await SealedStore.open(dir, kekFromBytes(new Uint8Array(randomBytes(32))));
  stores.push(s);
  return s;
}

type Tamper = (r: LinkResult, task: Omit<LinkTask, 'taskId'>) => LinkResult;

async function cluster(
  n: number,
  opts: { requester?: ParticipantIdentity; allowKeys?: string[]; maxFreshPerKey?: number; perMinute?: number } = {},
) {
  const requester = opts.requester ?? ParticipantIdentity.generate('wallet-api');
  const signers: SignerEngine[] = [];
  for (let i = 1; i <= n; i++) {
    signers.push(
      new SignerEngine({
        identity: ParticipantIdentity.generate(`signer-${i}`),
        store: await openStore(),
        policy: {
          allowKeygen: true,
          allowUnpinnedPeers: true,
          operators,
          requesters: [
            {
              id: 'wallet-api',
              publicKey: toHex(requester.public.signKey),
              keys: opts.allowKeys ?? ['*'],
              ...(opts.perMinute ? { perMinute: opts.perMinute } : {}),
            },
          ],
        },
        ...(opts.maxFreshPerKey ? { maxFreshPerKey: opts.maxFreshPerKey } : {}),
      }),
    );
  }
  const events: import('@tessera/coordinator').CoordinatorEvent[] = [];
  const coordinator = new Coordinator({ store: await openStore(), poolBatch: 4, onEvent: (e) => events.push(e) });
  const tamper = new Map<string, Tamper>();
  const down = new Set<string>();
  let taskId = 0;
  for (const s of signers) {
    const handle: ParticipantHandle = {
      info: s.identity.public,
      connectedSince: Date.now(),
      async call(task) {
        if (down.has(s.id)) throw new Error('link down');
        const r = await s.handle({ ...task, taskId: ++taskId });
        return tamper.get(s.id)?.(r, task) ?? r;
      },
    };
    coordinator.register(handle);
  }
  return { signers, coordinator, requester, tamper, down, events };
}

function intentFor(
  requester: ParticipantIdentity,
  suite: SuiteId,
  keyId: string,
  message: Uint8Array,
  requestId = new Uint8Array(randomBytes(16)),
) {
  return createSignIntent(requester, {
    suite: getSuite(suite),
    keyId,
    message,
    requestId,
    notAfter: Date.now() + 60_000,
  });
}

describe.each(['ed25519', 'secp256k1-tr', 'secp256k1', 'p256'] as const)('engines: %s', (suiteId) => {
  it('DKG 2-of-3 then sign; the plain verifier accepts', async () => {
    const c = await cluster(3);
    const info = await c.coordinator.keygen({ suite: suiteId, threshold: 2 });
    expect(info.participants).toEqual(['signer-1', 'signer-2', 'signer-3']);
    for (const s of c.signers) expect(await s.keys()).toEqual([info.keyId]);
    const msg = new TextEncoder().encode(`withdrawal ${suiteId}`);
    const res = await c.coordinator.sign(intentFor(c.requester, suiteId, info.keyId, msg));
    expect(getSuite(suiteId).verify(res.signature, msg, info.publicKey)).toBe(true);
    expect(res.signers).toHaveLength(2);
  });
});

describe('engines: DKG outcome', () => {
  it('a participant reporting another key after DKG is named and no key is registered', async () => {
    const c = await cluster(3);
    // Whoever lies — the first participant or another — is the one named.
    for (const liar of ['signer-1', 'signer-2']) {
      c.tamper.clear();
      c.tamper.set(liar, (r) =>
        r.body === 'dkgDone' && r.dkgDone ? { ...r, dkgDone: { ...r.dkgDone, keyDigest: new Uint8Array(32) } } : r,
      );
      await expect(c.coordinator.keygen({ suite: 'ed25519', threshold: 2 })).rejects.toMatchObject({
        code: 'CONFIRMATION_MISMATCH',
        culprits: [liar],
      });
    }
    expect(c.coordinator.keys()).toHaveLength(0);
  });
});

describe('engines: DKG roster allowlist', () => {
  it('a signer with a peer list refuses a DKG roster that contains a participant it does not know', async () => {
    const c = await cluster(3);
    const known = c.signers
      .slice(0, 2)
      .map((s) => ({ id: s.id, publicKey: toHex(s.identity.public.signKey), encKey: toHex(s.identity.public.encKey) }));
    const strict = new SignerEngine({
      identity: c.signers[0]!.identity,
      store: await openStore(),
      policy: { allowKeygen: true, requesters: [], peers: known },
    });
    const handle = c.coordinator.participant('signer-1')!;
    c.coordinator.register({ ...handle, call: (task) => strict.handle({ ...task, taskId: 1 }) });
    // signer-3 is not in signer-1's peer list: the DKG is refused before any round runs.
    await expect(c.coordinator.keygen({ suite: 'ed25519', threshold: 2 })).rejects.toMatchObject({
      code: 'POLICY_DENIED',
    });
    expect(await strict.keys()).toEqual([]);
    // The refused roster is on the record.
    const entries = [];
    for await (const e of strict.audit.entries()) entries.push(e);
    expect(entries.some((e) => e.type === 'refusal' && e.data.what === 'keygen')).toBe(true);
    // With only known peers it takes part.
    const info = await c.coordinator.keygen({ suite: 'ed25519', threshold: 2, participants: ['signer-1', 'signer-2'] });
    expect(await strict.keys()).toEqual([info.keyId]);
  });
});

describe('engines: signing behaviour', () => {
  it('a retried request returns the stored signature and consumes no further nonce', async () => {
    const c = await cluster(3);
    const info = await c.coordinator.keygen({ suite: 'ed25519', threshold: 2 });
    const intent = intentFor(c.requester, 'ed25519', info.keyId, new Uint8Array([1, 2, 3]));
    const a = await c.coordinator.sign(intent);
    const b = await c.coordinator.sign(intent);
    expect(toHex(b.signature)).toBe(toHex(a.signature));
    const consumed = (await Promise.all(c.signers.map((s) => s.ledger.listConsumed()))).flat();
    expect(consumed).toHaveLength(2);
  });

  it('a signer that is down is replaced by another quorum', async () => {
    const c = await cluster(3);
    const info = await c.coordinator.keygen({ suite: 'ed25519', threshold: 2 });
    c.down.add('signer-1');
    const msg = new Uint8Array([9]);
    const res = await c.coordinator.sign(intentFor(c.requester, 'ed25519', info.keyId, msg));
    expect(res.signers.sort()).toEqual(['signer-2', 'signer-3']);
    expect(getSuite('ed25519').verify(res.signature, msg, info.publicKey)).toBe(true);
  });

  it('a signer sending a negated share is named, excluded, and the coordinator signs with another quorum', async () => {
    const c = await cluster(3);
    const info = await c.coordinator.keygen({ suite: 'ed25519', threshold: 2 });
    const suite = getSuite('ed25519');
    const bad = c.signers[0]!;
    const culprits: string[] = [];
    const coordinator = c.coordinator;
    c.tamper.set(bad.id, (r, task) => {
      if (task.body !== 'sign' || !r.envelope) return r;
      const env = openEnvelope(r.envelope, PayloadKind.SIGNATURE_SHARE);
      const s = decodeSignatureShare(suite, env.payload);
      const neg = suite.Fn.toBytes(suite.Fn.neg(suite.Fn.fromBytes(s.share)));
      const payload = encodeMessage('SignatureShare', {
        header: { version: 1, suite: suite.wireId },
        sessionId: s.sessionId,
        identifier: Uint8Array.from(Buffer.from(s.identifier, 'hex')),
        share: neg,
        requestDigest: s.requestDigest,
      });
      // The malicious signer signs its own bad share (it holds its identity key).
      return { ...r, envelope: signAs(bad.identity, payload) };
    });
    void coordinator;
    const msg = new Uint8Array([7, 7]);
    const res = await c.coordinator.sign(intentFor(c.requester, 'ed25519', info.keyId, msg), ['signer-1', 'signer-2']);
    expect(res.signers).not.toContain('signer-1');
    expect(suite.verify(res.signature, msg, info.publicKey)).toBe(true);
    expect(c.events.filter((e) => e.type === 'culprit').map((e) => (e as { participant: string }).participant)).toEqual(
      ['signer-1'],
    );
    void culprits;
  });
});

function signAs(id: ParticipantIdentity, payload: Uint8Array): Uint8Array {
  return signEnvelope(id, PayloadKind.SIGNATURE_SHARE, payload);
}

describe('malicious coordinator: a signer never signs what its policy did not authorise', () => {
  async function setup() {
    const c = await cluster(3);
    const info = await c.coordinator.keygen({ suite: 'ed25519', threshold: 2 });
    const s1 = c.signers[0]!;
    const s2 = c.signers[1]!;
    const [c1] = await s1.commitments(info.keyId, 1);
    const [c2] = await s2.commitments(info.keyId, 1);
    const suite = getSuite('ed25519');
    const dc = (e: Uint8Array) => {
      const d = decodeCommitment(suite, openEnvelope(e, PayloadKind.SIGNING_COMMITMENT).payload);
      return { ...d.commitment, nonceId: d.nonceId };
    };
    const commitments = [dc(c1!), dc(c2!)];
    const msg = new TextEncoder().encode('pay 1 to alice');
    const intent = intentFor(c.requester, 'ed25519', info.keyId, msg);
    const request = (over: Partial<Parameters<typeof encodeSignRequest>[0]> = {}) =>
      encodeSignRequest({
        suite,
        sessionId: new Uint8Array(16).fill(1),
        keyId: info.keyId,
        epoch: 0,
        intent,
        commitments,
        ...over,
      });
    return { c, info, s1, commitments, intent, request, msg, suite };
  }

  async function expectRefused(p: Promise<unknown>, code: string) {
    await expect(p).rejects.toMatchObject({ code });
  }

  it('message altered between rounds: an intent whose signature no longer covers the message is refused', async () => {
    const t = await setup();
    const env = openEnvelope(t.intent, PayloadKind.SIGN_INTENT);
    const tampered = new Uint8Array(env.payload);
    tampered[tampered.length - 30]! ^= 1;
    const forged = encodeMessage('Envelope', {
      version: 1,
      kind: PayloadKind.SIGN_INTENT,
      sender: env.sender,
      payload: tampered,
      signature: decodeMessage('Envelope', t.intent).signature,
    });
    await expectRefused(t.s1.sign(t.request({ intent: forged })), 'BAD_SIGNATURE');
    expect(await t.s1.ledger.listConsumed()).toHaveLength(0);
  });

  it('forged intent: an intent signed by a key outside the policy is refused before any nonce is used', async () => {
    const t = await setup();
    const mallory = ParticipantIdentity.generate('mallory');
    const forged = intentFor(mallory, 'ed25519', t.info.keyId, t.msg);
    await expectRefused(t.s1.sign(t.request({ intent: forged })), 'POLICY_DENIED');
    expect(await t.s1.ledger.listConsumed()).toHaveLength(0);
  });

  it('request for a key the requester does not own is refused', async () => {
    const other = ParticipantIdentity.generate('wallet-api');
    const c = await cluster(3, { requester: other, allowKeys: ['0000000000000000'] });
    const info = await c.coordinator.keygen({ suite: 'ed25519', threshold: 2 });
    await expect(
      c.coordinator.sign(intentFor(other, 'ed25519', info.keyId, new Uint8Array([1]))),
    ).rejects.toMatchObject({ code: 'POLICY_DENIED' });
    for (const s of c.signers) expect(await s.ledger.listConsumed()).toHaveLength(0);
  });

  it('replayed request: the identical request gets the identical share; a changed request on the same nonce is refused', async () => {
    const t = await setup();
    const req = t.request();
    const a = await t.s1.sign(req);
    const b = await t.s1.sign(req);
    const sa = decodeSignatureShare(t.suite, openEnvelope(a, PayloadKind.SIGNATURE_SHARE).payload).share;
    const sb = decodeSignatureShare(t.suite, openEnvelope(b, PayloadKind.SIGNATURE_SHARE).payload).share;
    expect(toHex(sb)).toBe(toHex(sa));
    const other = intentFor(t.c.requester, 'ed25519', t.info.keyId, new TextEncoder().encode('pay 1000 to mallory'));
    await expectRefused(t.s1.sign(t.request({ intent: other })), 'NONCE_REUSED');
    expect(await t.s1.ledger.listConsumed()).toHaveLength(1);
  });

  it("commitment list swapped: a list without this signer's own commitment for the nonce is refused", async () => {
    const t = await setup();
    const swapped = [{ ...t.commitments[0]!, hiding: t.commitments[1]!.hiding }, t.commitments[1]!];
    await expectRefused(t.s1.sign(t.request({ commitments: swapped })), 'INVALID_ARGUMENT');
    // The nonce is not spent on a refused request.
    expect((await t.s1.ledger.listConsumed()).length).toBe(0);
  });

  it('an expired intent is refused', async () => {
    const t = await setup();
    const expired = createSignIntent(t.c.requester, {
      suite: t.suite,
      keyId: t.info.keyId,
      message: t.msg,
      requestId: new Uint8Array(16).fill(3),
      notAfter: Date.now() - 1,
    });
    await expectRefused(t.s1.sign(t.request({ intent: expired })), 'POLICY_DENIED');
  });

  it('the sign request digest binds the share: decodeSignRequest round-trips', async () => {
    const t = await setup();
    const d = decodeSignRequest(t.request());
    expect(d.keyId).toBe(t.info.keyId);
    expect(d.commitments).toHaveLength(2);
  });
});

describe('signer resource bounds under a hostile coordinator or requester', () => {
  it('refused requests do not use up the fresh-nonce cap (their nonces are discarded)', async () => {
    const c = await cluster(3, { maxFreshPerKey: 6 });
    const info = await c.coordinator.keygen({ suite: 'ed25519', threshold: 2 });
    const mallory = ParticipantIdentity.generate('mallory');
    for (let i = 0; i < 12; i++)
      await expect(
        c.coordinator.sign(intentFor(mallory, 'ed25519', info.keyId, new Uint8Array([i]))),
      ).rejects.toMatchObject({ code: 'POLICY_DENIED' });
    const msg = new Uint8Array([42]);
    const res = await c.coordinator.sign(intentFor(c.requester, 'ed25519', info.keyId, msg));
    expect(getSuite('ed25519').verify(res.signature, msg, info.publicKey)).toBe(true);
  });

  it('concurrent requests for one intent with different nonces release at most 4 shares per signer', async () => {
    const c = await cluster(3);
    const info = await c.coordinator.keygen({ suite: 'ed25519', threshold: 2 });
    const suite = getSuite('ed25519');
    const [s1, s2] = c.signers as [SignerEngine, SignerEngine];
    const dc = (e: Uint8Array) => {
      const d = decodeCommitment(suite, openEnvelope(e, PayloadKind.SIGNING_COMMITMENT).payload);
      return { ...d.commitment, nonceId: d.nonceId };
    };
    const mine = (await s1.commitments(info.keyId, 12)).map(dc);
    const theirs = (await s2.commitments(info.keyId, 12)).map(dc);
    const intent = intentFor(c.requester, 'ed25519', info.keyId, new Uint8Array([5]));
    const requests = mine.map((m, i) =>
      encodeSignRequest({
        suite,
        sessionId: new Uint8Array(16).fill(i + 1),
        keyId: info.keyId,
        epoch: 0,
        intent,
        commitments: [m, theirs[i]!],
      }),
    );
    const results = await Promise.allSettled(requests.map((r) => s1.sign(r)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(4);
    expect(await s1.ledger.listConsumed()).toHaveLength(4);
  });

  it("identical retries do not spend the requester's rate budget", async () => {
    const c = await cluster(3, { perMinute: 2 });
    const info = await c.coordinator.keygen({ suite: 'ed25519', threshold: 2 });
    const suite = getSuite('ed25519');
    const s1 = c.signers[0]!;
    const s2 = c.signers[1]!;
    const dc = (e: Uint8Array) => {
      const d = decodeCommitment(suite, openEnvelope(e, PayloadKind.SIGNING_COMMITMENT).payload);
      return { ...d.commitment, nonceId: d.nonceId };
    };
    const [m] = (await s1.commitments(info.keyId, 1)).map(dc);
    const [o] = (await s2.commitments(info.keyId, 1)).map(dc);
    const req = encodeSignRequest({
      suite,
      sessionId: new Uint8Array(16).fill(9),
      keyId: info.keyId,
      epoch: 0,
      intent: intentFor(c.requester, 'ed25519', info.keyId, new Uint8Array([1])),
      commitments: [m!, o!],
    });
    for (let i = 0; i < 6; i++) await s1.sign(req);
    // The budget (2/min) is untouched but for the one real use: one more new request passes, the next is limited.
    const fresh = async () => {
      const [m2] = (await s1.commitments(info.keyId, 1)).map(dc);
      const [o2] = (await s2.commitments(info.keyId, 1)).map(dc);
      return s1.sign(
        encodeSignRequest({
          suite,
          sessionId: new Uint8Array(16).fill(3),
          keyId: info.keyId,
          epoch: 0,
          intent: intentFor(c.requester, 'ed25519', info.keyId, new Uint8Array([2])),
          commitments: [m2!, o2!],
        }),
      );
    };
    await fresh();
    await expect(fresh()).rejects.toMatchObject({ code: 'RATE_LIMITED' });
  });
});

describe('coordinator: results and blame', () => {
  it('a request id is bound to its intent: another intent under the same id is refused; another requester has its own ids', async () => {
    const other = ParticipantIdentity.generate('wallet-api');
    const c = await cluster(3);
    const info = await c.coordinator.keygen({ suite: 'ed25519', threshold: 2 });
    const id = new Uint8Array(16).fill(0x33);
    const intentA = intentFor(c.requester, 'ed25519', info.keyId, new Uint8Array([1]), id);
    const a = await c.coordinator.sign(intentA);
    await expect(
      c.coordinator.sign(intentFor(c.requester, 'ed25519', info.keyId, new Uint8Array([2]), id)),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    // A stranger reusing the id does not get the stored signature (it is refused by policy instead).
    await expect(
      c.coordinator.sign(intentFor(other, 'ed25519', info.keyId, new Uint8Array([2]), id)),
    ).rejects.toMatchObject({ code: 'POLICY_DENIED' });
    const again = await c.coordinator.sign(intentA);
    expect(toHex(again.signature)).toBe(toHex(a.signature));
  });

  it('one participant accusing another in a DKG abort does not get it blamed', async () => {
    const c = await cluster(3);
    c.tamper.set('signer-1', (r, task) =>
      task.body === 'dkgStart'
        ? { taskId: r.taskId, body: 'error', error: { code: 'BAD_SHARE', message: 'framed', culprits: ['signer-3'] } }
        : r,
    );
    await expect(c.coordinator.keygen({ suite: 'ed25519', threshold: 2 })).rejects.toMatchObject({
      code: 'BAD_SHARE',
      culprits: [],
    });
  });
});

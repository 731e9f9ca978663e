/**
 * The adversary catalogue: a malicious signer, a malicious coordinator and a malicious device,
 * each case detected, blamed by participant id where the protocol can prove (or the
 * coordinator itself saw) who misbehaved, and nothing signed that a signer's policy did not
 * allow — checked afterwards from every signer's own nonce ledger and audit chain.
 *
 * Real coordinator and signer engines, each on its own real LevelDB store, wired in one process
 * by direct calls (as in engines.test.ts). Two hooks play the adversary: `tamper` rewrites what a
 * participant answers (a malicious signer holds its own identity key, so it can sign whatever it
 * likes), `deliver` rewrites what a participant is sent (a malicious relay; with `tamper`, a
 * signer equivocating to different peers).
 *
 * Covered elsewhere, not repeated here (the catalogue below lists them):
 * - test/malicious-coordinator.test.ts, against a real signer process: altered message, swapped
 *   commitment list, identical replay (same share) and changed replay (NONCE_REUSED) of a used
 *   nonce, forged intent, a key the requester is not granted, DKG roster injection with
 *   policy.peers — and the ledger/audit check after the process stopped.
 * - test/engines.test.ts: a negated share blamed and replaced; refused requests do not fill the
 *   fresh-nonce cap; at most 4 shares per request id; a lone DKG accuser frames nobody.
 * - test/device.test.ts (malicious device): replayed package (one completion, one signature,
 *   one consumed nonce, 5x concurrent too); forged/tampered package (BAD_SIGNATURE_SHARE naming
 *   the device, nothing consumed, the genuine completes); over-allowance (RESOURCE_EXHAUSTED on
 *   reserve, NO_ALLOWANCE offline); another device's reservation (RESERVATION_INVALID naming the
 *   thief); a second package on a used reservation (RESERVATION_USED naming the device); replayed
 *   or forged gateway calls (UNAUTHENTICATED).
 * - packages/core/test/attacks.test.ts: DKG rogue proof of knowledge, lying echo, misdirected
 *   shares, replayed round messages, split outcome; signing share attacks at the core level.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DkgParticipant,
  ParticipantIdentity,
  PayloadKind,
  createSignIntent,
  decodeCommitment,
  decodeMessage,
  decodeOfflinePackage,
  decodeRefreshParams,
  decodeSignatureShare,
  encodeMessage,
  encodeOfflinePackage,
  encodeSignRequest,
  encodeSignatureShare,
  equalBytes,
  fromHex,
  getSuite,
  openEnvelope,
  refreshRound1,
  signEnvelope,
  toHex,
  type LinkResult,
  type LinkTask,
  type RequestCommitment,
  type Rng,
  type SuiteId,
} from '@tessera/core';
import { SealedStore, kekFromBytes } from '@tessera/store';
import { SignerEngine } from '@tessera/signer';
import { Coordinator, startDeviceGateway, type CoordinatorEvent, type ParticipantHandle } from '@tessera/coordinator';
import { Device } from '@tessera/device';
import { operators, reshareAuthorisation, standingRefresh } from './authority.js';

const SUITE: SuiteId = 'ed25519';
const suite = getSuite(SUITE);
const rng: Rng = ((n = 32) => new Uint8Array(randomBytes(n))) as Rng;

const dirs: string[] = [];
const closers: (() => Promise<unknown>)[] = [];
/** One line per case: what the adversary did, what caught it, whom it blamed. */
const catalogue: string[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  console.log(
    [`adversary catalogue: ${catalogue.length} cases in this file`, ...catalogue.map((l) => `  ${l}`)].join('\n'),
  );
});

async function openStore(): Promise<SealedStore> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-adversary-'));
  dirs.push(dir);
  const s = await SealedStore.open(dir, kekFromBytes(new Uint8Array(randomBytes(32))));
  closers.push(() => s.close());
  return s;
}

const requester = ParticipantIdentity.generate('wallet-api');

type Tamper = (r: LinkResult, task: Omit<LinkTask, 'taskId'>) => LinkResult | Promise<LinkResult>;
type Deliver = (task: Omit<LinkTask, 'taskId'>) => Omit<LinkTask, 'taskId'>;

/**
 * `n` signer engines and a coordinator. With `peers`, every signer knows exactly the other
 * signers of this cluster as its DKG/reshare peers; `extra` ids are further participants the
 * signers do not know (a coordinator's stooge).
 */
async function cluster(n: number, opts: { peers?: boolean; extra?: string[] } = {}) {
  const ids = [...Array.from({ length: n }, (_, i) => `signer-${i + 1}`), ...(opts.extra ?? [])];
  const identities = ids.map((id) => ParticipantIdentity.generate(id));
  const known = identities
    .slice(0, n)
    .map((i) => ({ id: i.id, publicKey: toHex(i.public.signKey), encKey: toHex(i.public.encKey) }));
  const signers: SignerEngine[] = [];
  for (const [i, identity] of identities.entries()) {
    signers.push(
      new SignerEngine({
        identity,
        store: await openStore(),
        policy: {
          allowKeygen: true,
          requesters: [{ id: 'wallet-api', publicKey: toHex(requester.public.signKey), keys: ['*'] }],
          operators,
          ...(opts.peers && i < n
            ? { peers: known.filter((k) => k.id !== identity.id) }
            : { allowUnpinnedPeers: true }),
        },
      }),
    );
  }
  const events: CoordinatorEvent[] = [];
  const coordinator = new Coordinator({
    store: await openStore(),
    poolBatch: 4,
    refreshAuthorisation: standingRefresh(),
    onEvent: (e) => events.push(e),
  });
  await coordinator.load();
  const tamper = new Map<string, Tamper>();
  const deliver = new Map<string, Deliver>();
  const down = new Set<string>();
  let taskId = 0;
  for (const s of signers) {
    coordinator.register({
      info: s.identity.public,
      connectedSince: Date.now(),
      async call(task) {
        if (down.has(s.id)) throw new Error('link down');
        const sent = deliver.get(s.id)?.(task) ?? task;
        const r = await s.handle({ ...sent, taskId: ++taskId });
        return (await tamper.get(s.id)?.(r, task)) ?? r;
      },
    } satisfies ParticipantHandle);
  }
  const signer = (id: string) => signers.find((s) => s.id === id) as SignerEngine;
  /** Participants named in 'culprit' events so far. */
  const culprits = () =>
    events
      .filter((e): e is Extract<CoordinatorEvent, { type: 'culprit' }> => e.type === 'culprit')
      .map((e) => e.participant);
  return { signers, signer, coordinator, events, tamper, deliver, down, culprits };
}
type Cluster = Awaited<ReturnType<typeof cluster>>;

function intentFor(keyId: string, message: Uint8Array, requestId = new Uint8Array(randomBytes(16))): Uint8Array {
  return createSignIntent(requester, { suite, keyId, message, requestId, notAfter: Date.now() + 60_000 });
}

/** Signs through the coordinator and checks the result with the plain verifier. */
async function signs(c: Cluster, keyId: string, preferred: string[] = []): Promise<string[]> {
  const message = new Uint8Array(randomBytes(32));
  const res = await c.coordinator.sign(intentFor(keyId, message), preferred);
  expect(suite.verify(res.signature, message, c.coordinator.keys().find((k) => k.keyId === keyId)!.publicKey)).toBe(
    true,
  );
  return res.signers;
}

/**
 * Nothing was signed that policy did not allow: on every signer, every consumed (online) nonce
 * has exactly one 'sign' audit entry by an allowed requester for exactly that request digest, no
 * request id used more than 4 nonces, and the audit chain verifies.
 */
async function onlyAuthorised(signers: SignerEngine[], allowed = ['wallet-api']): Promise<number> {
  let total = 0;
  for (const s of signers) {
    const consumed = (await s.ledger.listConsumed()).filter((x) => !x.nonceId.startsWith('r.'));
    const audits = new Map<string, { actor?: string; digest: string; requestId: string }>();
    for await (const e of s.audit.entries()) {
      if (e.type !== 'sign') continue;
      const nonce = String(e.data.nonce);
      const prior = audits.get(nonce);
      // A cached retry is audited again, for the same digest.
      if (prior) expect(prior.digest, `${s.id}: nonce ${nonce} audited for two requests`).toBe(String(e.data.digest));
      audits.set(nonce, {
        ...(e.actor === undefined ? {} : { actor: e.actor }),
        digest: String(e.data.digest),
        requestId: String(e.data.requestId),
      });
    }
    const perRequest = new Map<string, number>();
    for (const x of consumed) {
      const a = audits.get(x.nonceId);
      expect(a, `${s.id}: consumed nonce ${x.nonceId} without a sign audit`).toBeDefined();
      expect(allowed).toContain(a?.actor);
      expect(a?.digest).toBe(toHex(x.requestDigest));
      perRequest.set(a!.requestId, (perRequest.get(a!.requestId) ?? 0) + 1);
    }
    for (const [rid, k] of perRequest) expect(k, `${s.id}: request ${rid} used ${k} nonces`).toBeLessThanOrEqual(4);
    expect(audits.size, `${s.id}: sign audits without a consumed nonce`).toBe(consumed.length);
    expect((await s.audit.verify()).ok).toBe(true);
    total += consumed.length;
  }
  return total;
}

/** A SIGNATURE_SHARE answer rewritten by its (malicious) sender and signed with its own key. */
function reshare(
  signerIdentity: ParticipantIdentity,
  r: LinkResult,
  edit: (s: ReturnType<typeof decodeSignatureShare>) => Partial<ReturnType<typeof decodeSignatureShare>>,
): LinkResult {
  const s = decodeSignatureShare(suite, openEnvelope(r.envelope as Uint8Array, PayloadKind.SIGNATURE_SHARE).payload);
  return {
    ...r,
    envelope: signEnvelope(
      signerIdentity,
      PayloadKind.SIGNATURE_SHARE,
      encodeSignatureShare(suite, { ...s, ...edit(s) }),
    ),
  };
}

const scalar = (b: Uint8Array) => suite.Fn.fromBytes(b);
const bytesOf = (x: bigint) => suite.Fn.toBytes(suite.Fn.create(x));

// ---- malicious signer: signing -----------------------------------------------------------------

describe('malicious signer: bad signature shares are detected, blamed by id, and signing goes on without it', () => {
  /** [name, rewrite of signer-1's answers to sign tasks (after an honest first one)]. */
  const variants: [string, (s: SignerEngine) => Tamper][] = [
    [
      'an off-by-one share',
      (s) => (r, t) =>
        t.body === 'sign' && r.envelope ? reshare(s.identity, r, (x) => ({ share: bytesOf(scalar(x.share) + 1n) })) : r,
    ],
    [
      'a negated share',
      (s) => (r, t) =>
        t.body === 'sign' && r.envelope ? reshare(s.identity, r, (x) => ({ share: bytesOf(-scalar(x.share)) })) : r,
    ],
    [
      'a random share',
      (s) => (r, t) =>
        t.body === 'sign' && r.envelope
          ? reshare(s.identity, r, () => ({
              share: bytesOf(scalar(suite.Fn.toBytes(suite.Fn.create(BigInt(`0x${toHex(randomBytes(32))}`))))),
            }))
          : r,
    ],
    [
      'its genuine share of an earlier request (a share for another request)',
      () => {
        let earlier: Uint8Array | undefined;
        return (r, t) => {
          if (t.body !== 'sign' || !r.envelope) return r;
          earlier ??= r.envelope;
          return { ...r, envelope: earlier };
        };
      },
    ],
    [
      'an off-by-one share in an envelope whose signature does not verify (checked once the aggregate fails)',
      (s) => (r, t) => {
        if (t.body !== 'sign' || !r.envelope) return r;
        const env = reshare(s.identity, r, (x) => ({ share: bytesOf(scalar(x.share) + 1n) })).envelope as Uint8Array;
        const w = decodeMessage('Envelope', env);
        return { ...r, envelope: encodeMessage('Envelope', { ...w, signature: new Uint8Array(64).fill(7) }) };
      },
    ],
    [
      "a share envelope signed by another participant's key",
      () => {
        const impostor = ParticipantIdentity.generate('signer-1');
        return (r, t) =>
          t.body === 'sign' && r.envelope
            ? {
                ...r,
                envelope: signEnvelope(
                  impostor,
                  PayloadKind.SIGNATURE_SHARE,
                  openEnvelope(r.envelope, PayloadKind.SIGNATURE_SHARE).payload,
                ),
              }
            : r;
      },
    ],
  ];

  it.each(variants)('%s', async (name, make) => {
    const c = await cluster(3);
    const key = await c.coordinator.keygen({ suite: SUITE, threshold: 2 });
    const bad = c.signer('signer-1');
    const cheat = make(bad);
    // The first share is genuine (the replay variant keeps it); from then on signer-1 cheats.
    let cheating = false;
    c.tamper.set(bad.id, async (r, t) => {
      const out = await cheat(r, t);
      return cheating ? out : r;
    });
    expect(await signs(c, key.keyId, ['signer-1', 'signer-2'])).toEqual(['signer-1', 'signer-2']);
    expect(c.culprits()).toEqual([]);
    cheating = true;
    // With a choice of quorum: signer-1 is named, excluded, and another quorum signs.
    const quorum = await signs(c, key.keyId, ['signer-1', 'signer-2']);
    expect(quorum).not.toContain('signer-1');
    expect(c.culprits()).toEqual(['signer-1']);
    // Without one (signer-3 down): the request fails, and the error names signer-1.
    c.down.add('signer-3');
    const e = await c.coordinator.sign(intentFor(key.keyId, new Uint8Array([1, 2, 3]))).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'NO_QUORUM', culprits: ['signer-1'] });
    expect(c.culprits()).toEqual(['signer-1', 'signer-1']);
    // Every share released (the cheater's genuine computations and the honest signers' shares of
    // failed attempts included) was for a valid intent of an allowed requester, and audited.
    const consumed = await onlyAuthorised(c.signers);
    expect(consumed).toBeGreaterThanOrEqual(2 + 4 + 1);
    expect(consumed).toBeLessThanOrEqual(2 + 4 + 4);
    catalogue.push(
      `malicious signer, ${name}: BAD_SIGNATURE_SHARE, culprit signer-1, another quorum signed; alone: NO_QUORUM culprits [signer-1]`,
    );
  });
});

describe('share envelopes on an authenticated link: their signatures are evidence when blame is due', () => {
  const badSignature = (r: LinkResult): LinkResult => {
    const w = decodeMessage('Envelope', r.envelope as Uint8Array);
    return { ...r, envelope: encodeMessage('Envelope', { ...w, signature: new Uint8Array(64).fill(7) }) };
  };
  const culpritCodes = (c: Cluster) =>
    c.events
      .filter((e): e is Extract<CoordinatorEvent, { type: 'culprit' }> => e.type === 'culprit')
      .map((e) => `${e.participant} ${e.code}`);

  it('a wrong share in an envelope that does not verify is blamed as BAD_SIGNATURE; a right one over the link still signs', async () => {
    const c = await cluster(3);
    const key = await c.coordinator.keygen({ suite: SUITE, threshold: 2 });
    const bad = c.signer('signer-1');
    let wrongShare = true;
    c.tamper.set(bad.id, (r, t) =>
      t.body === 'sign' && r.envelope
        ? badSignature(wrongShare ? reshare(bad.identity, r, (x) => ({ share: bytesOf(scalar(x.share) + 1n) })) : r)
        : r,
    );
    expect(await signs(c, key.keyId, ['signer-1', 'signer-2'])).not.toContain('signer-1');
    expect(culpritCodes(c)).toEqual(['signer-1 BAD_SIGNATURE']);
    // A correct share whose envelope signature is broken: the aggregate verifies, so nothing is
    // blamed (the sender is the link's, checked against the envelope's sender key).
    wrongShare = false;
    expect(await signs(c, key.keyId, ['signer-1', 'signer-2'])).toEqual(['signer-1', 'signer-2']);
    expect(culpritCodes(c)).toEqual(['signer-1 BAD_SIGNATURE']);
    // An undecodable share in such an envelope is blamed as BAD_SIGNATURE too.
    c.tamper.set(bad.id, (r, t) =>
      t.body === 'sign' && r.envelope
        ? badSignature({
            ...r,
            envelope: signEnvelope(bad.identity, PayloadKind.SIGNATURE_SHARE, new Uint8Array([1, 2, 3])),
          })
        : r,
    );
    expect(await signs(c, key.keyId, ['signer-1', 'signer-2'])).not.toContain('signer-1');
    expect(culpritCodes(c)).toEqual(['signer-1 BAD_SIGNATURE', 'signer-1 BAD_SIGNATURE']);
  });
});

// ---- malicious signer: DKG equivocation --------------------------------------------------------

describe('malicious signer: DKG', () => {
  it('equivocation: two different signed round-1 messages to different peers are caught by the echo and blamed on their author; no key exists anywhere', async () => {
    const c = await cluster(3);
    const bad = c.signer('signer-1');
    // signer-1 runs a second DKG state with the same identity and shows signer-3 that other round-1 message.
    const twin = new DkgParticipant(bad.identity, rng);
    let other: Uint8Array | undefined;
    c.deliver.set('signer-1', (t) => {
      if (t.body === 'dkgStart') other = twin.start(t.dkgStart?.params);
      return t;
    });
    c.deliver.set('signer-3', (t) => {
      if (t.body !== 'dkgBundle' || t.dkgBundle?.round !== 1 || !other) return t;
      const envelopes = t.dkgBundle.envelopes.map((e) =>
        equalBytes(openEnvelope(e, PayloadKind.DKG_ROUND1).sender, bad.identity.public.signKey)
          ? (other as Uint8Array)
          : e,
      );
      expect(envelopes.some((e) => e === other)).toBe(true);
      return { ...t, dkgBundle: { ...t.dkgBundle, envelopes } };
    });
    const e = await c.coordinator.keygen({ suite: SUITE, threshold: 2 }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'EQUIVOCATION', culprits: ['signer-1'] });
    expect(c.coordinator.keys()).toEqual([]);
    for (const s of c.signers) expect(await s.keys()).toEqual([]);
    // The honest two go on without it.
    c.deliver.clear();
    const key = await c.coordinator.keygen({ suite: SUITE, threshold: 2, participants: ['signer-2', 'signer-3'] });
    await signs(c, key.keyId);
    await onlyAuthorised(c.signers);
    catalogue.push(
      'malicious signer, DKG equivocation (two round-1 messages): EQUIVOCATION, culprits [signer-1] (reported by both honest peers), no key registered or held',
    );
  });
});

// ---- malicious signer: refresh and reshare -------------------------------------------------------

/** The LifecycleRound1 of an envelope, rewritten and re-signed by its sender. */
function resignRound1(
  identity: ParticipantIdentity,
  kind: PayloadKind,
  envelope: Uint8Array,
  edit: (p: ReturnType<typeof decodeMessage<'LifecycleRound1'>>) => void,
): Uint8Array {
  const p = decodeMessage('LifecycleRound1', openEnvelope(envelope, kind).payload);
  edit(p);
  return signEnvelope(identity, kind, encodeMessage('LifecycleRound1', p));
}

/** Every signer still at `epoch` with nothing pending, and the key still signing. */
async function epochKept(c: Cluster, keyId: string, epoch: number, holders: string[]): Promise<void> {
  expect(c.coordinator.key(keyId).epoch).toBe(epoch);
  for (const id of holders) expect((await c.signer(id).key(keyId)).epoch).toBe(epoch);
  await signs(c, keyId);
}

describe('malicious signer: refresh and reshare contributions', () => {
  it('a refresh contribution for the wrong epoch (made with params for fromEpoch - 1) is refused and blamed on its sender; the epoch stays', async () => {
    const c = await cluster(3);
    const key = await c.coordinator.keygen({ suite: SUITE, threshold: 2 });
    expect((await c.coordinator.refresh(key.keyId)).epoch).toBe(1);
    const bad = c.signer('signer-3');
    c.tamper.set(bad.id, async (r, t) => {
      if (t.body !== 'lifecycle' || t.lifecycle?.step !== 1 || !r.envelope) return r;
      const rec = await bad.key(key.keyId);
      const cfg = decodeRefreshParams(t.lifecycle.params, rec.key);
      // A well-formed, validly signed zero-sharing — for the previous epoch's session.
      return { ...r, envelope: refreshRound1({ ...cfg, fromEpoch: cfg.fromEpoch - 1 }, bad.identity, rng) };
    });
    const e = await c.coordinator.refresh(key.keyId).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'UNEXPECTED_MESSAGE', culprits: ['signer-3'] });
    expect(c.culprits()).toContain('signer-3');
    c.tamper.clear();
    await epochKept(c, key.keyId, 1, ['signer-1', 'signer-2', 'signer-3']);
    await onlyAuthorised(c.signers);
    catalogue.push(
      'malicious signer, refresh delta for the wrong epoch: UNEXPECTED_MESSAGE, culprits [signer-3], epoch 1 kept, signing continues',
    );
  });

  it('a replayed refresh contribution (its envelope of the previous refresh session) is refused and blamed on its sender; the epoch stays', async () => {
    const c = await cluster(3);
    const key = await c.coordinator.keygen({ suite: SUITE, threshold: 2 });
    let first: Uint8Array | undefined;
    c.tamper.set('signer-3', (r, t) => {
      if (t.body === 'lifecycle' && t.lifecycle?.step === 1 && r.envelope) {
        first ??= r.envelope;
        return { ...r, envelope: first };
      }
      return r;
    });
    expect((await c.coordinator.refresh(key.keyId)).epoch).toBe(1);
    const e = await c.coordinator.refresh(key.keyId).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'UNEXPECTED_MESSAGE', culprits: ['signer-3'] });
    c.tamper.clear();
    await epochKept(c, key.keyId, 1, ['signer-1', 'signer-2', 'signer-3']);
    expect((await c.coordinator.refresh(key.keyId)).epoch).toBe(2);
    await onlyAuthorised(c.signers);
    catalogue.push(
      'malicious signer, replayed refresh delta (earlier session): UNEXPECTED_MESSAGE, culprits [signer-3], epoch kept, a later honest refresh succeeds',
    );
  });

  it('a reshare contribution with a bad constant-term commitment D_0 is refused (BAD_SHARE) and blamed on its sender; roster and epoch stay', async () => {
    const c = await cluster(4);
    const key = await c.coordinator.keygen({
      suite: SUITE,
      threshold: 2,
      participants: ['signer-1', 'signer-2', 'signer-3'],
    });
    const bad = c.signer('signer-2');
    c.tamper.set(bad.id, (r, t) => {
      if (t.body !== 'lifecycle' || t.lifecycle?.kind !== 'reshare' || t.lifecycle.step !== 1 || !r.envelope) return r;
      // D_0 moved by G: the sender's sub-sharing would no longer add up to the group key.
      return {
        ...r,
        envelope: resignRound1(bad.identity, PayloadKind.RESHARE_ROUND1, r.envelope, (p) => {
          p.commitments[0] = suite.Point.fromBytes(p.commitments[0] as Uint8Array)
            .add(suite.Point.BASE)
            .toBytes();
        }),
      };
    });
    const e = await c.coordinator
      .reshare(key.keyId, {
        threshold: 2,
        participants: ['signer-1', 'signer-2', 'signer-4'],
        authorisation: reshareAuthorisation(c.coordinator, key.keyId, {
          threshold: 2,
          participants: ['signer-1', 'signer-2', 'signer-4'],
        }),
      })
      .catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'BAD_SHARE', culprits: ['signer-2'] });
    c.tamper.clear();
    await epochKept(c, key.keyId, 0, ['signer-1', 'signer-2', 'signer-3']);
    expect(
      c.coordinator
        .key(key.keyId)
        .key.roster.map((r) => r.id)
        .sort(),
    ).toEqual(['signer-1', 'signer-2', 'signer-3']);
    await expect(c.signer('signer-4').key(key.keyId)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await onlyAuthorised(c.signers);
    catalogue.push(
      'malicious signer, reshare with a bad D_0: BAD_SHARE, culprits [signer-2], roster and epoch 0 kept, the joiner holds nothing',
    );
  });

  it('a refresh confirmation of another key is caught (CONFIRMATION_MISMATCH) and blamed on its sender; nothing is committed', async () => {
    const c = await cluster(3);
    const key = await c.coordinator.keygen({ suite: SUITE, threshold: 2 });
    const bad = c.signer('signer-2');
    c.tamper.set(bad.id, (r, t) => {
      if (t.body !== 'lifecycle' || t.lifecycle?.step !== 2 || !r.envelope) return r;
      const p = decodeMessage('LifecycleConfirm', openEnvelope(r.envelope, PayloadKind.LIFECYCLE_CONFIRM).payload);
      p.keyDigest = new Uint8Array(p.keyDigest.length).fill(7);
      return {
        ...r,
        envelope: signEnvelope(bad.identity, PayloadKind.LIFECYCLE_CONFIRM, encodeMessage('LifecycleConfirm', p)),
      };
    });
    const e = await c.coordinator.refresh(key.keyId).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'CONFIRMATION_MISMATCH', culprits: ['signer-2'] });
    c.tamper.clear();
    await epochKept(c, key.keyId, 0, ['signer-1', 'signer-2', 'signer-3']);
    await onlyAuthorised(c.signers);
    catalogue.push(
      'malicious signer, refresh confirmation of another key: CONFIRMATION_MISMATCH, culprits [signer-2], epoch 0 kept',
    );
  });
});

// ---- malicious coordinator -----------------------------------------------------------------------

/** `count` commitments of signer `s` for `keyId`, as a coordinator holds them. */
async function commitmentsOf(s: SignerEngine, keyId: string, count = 1): Promise<RequestCommitment[]> {
  return (await s.commitments(keyId, count)).map((e) => {
    const d = decodeCommitment(suite, openEnvelope(e, PayloadKind.SIGNING_COMMITMENT).payload);
    return { ...d.commitment, nonceId: d.nonceId };
  });
}

const nonceIdOf = (c: RequestCommitment) => new TextDecoder().decode(c.nonceId);

describe('malicious coordinator', () => {
  it('asks a signer to sign under an intent for another key: refused before any nonce is used (POLICY_DENIED / INVALID_ARGUMENT)', async () => {
    const c = await cluster(3);
    const k1 = await c.coordinator.keygen({ suite: SUITE, threshold: 2 });
    const k2 = await c.coordinator.keygen({ suite: SUITE, threshold: 2 });
    const [s1, s2] = [c.signer('signer-1'), c.signer('signer-2')];
    // The requester authorised a payment with k1; the coordinator asks for it with k2.
    const intent = intentFor(k1.keyId, new TextEncoder().encode('pay 1 to alice (key 1)'));
    const mine = (await commitmentsOf(s1, k2.keyId))[0] as RequestCommitment;
    const theirs = (await commitmentsOf(s2, k2.keyId))[0] as RequestCommitment;
    const req = encodeSignRequest({
      suite,
      sessionId: new Uint8Array(randomBytes(16)),
      keyId: k2.keyId,
      epoch: 0,
      intent,
      commitments: [mine, theirs],
    });
    await expect(s1.sign(req)).rejects.toMatchObject({ code: 'POLICY_DENIED' });
    expect((await s1.ledger.status(nonceIdOf(mine))).state).toBe('unknown'); // the named nonce is burned, never used
    // The request says k1 (matching the intent) but carries signer-1's nonce of k2.
    const other = (await commitmentsOf(s1, k2.keyId))[0] as RequestCommitment;
    const k1theirs = (await commitmentsOf(s2, k1.keyId))[0] as RequestCommitment;
    const crossed = encodeSignRequest({
      suite,
      sessionId: new Uint8Array(randomBytes(16)),
      keyId: k1.keyId,
      epoch: 0,
      intent,
      commitments: [other, k1theirs],
    });
    await expect(s1.sign(crossed)).rejects.toMatchObject({
      code: expect.stringMatching(/^(INVALID_ARGUMENT|POLICY_DENIED)$/),
    });
    expect(await s1.ledger.listConsumed()).toEqual([]);
    expect(await onlyAuthorised(c.signers)).toBe(0);
    // Through the real coordinator the same intent signs with k1, once.
    const res = await c.coordinator.sign(intent);
    expect(res.keyId).toBe(k1.keyId);
    catalogue.push(
      'malicious coordinator, intent for another key: POLICY_DENIED (and a crossed nonce INVALID_ARGUMENT), no nonce consumed',
    );
  });

  it('replays an old sign request after its nonce was used: the identical bytes get the identical share, anything else NONCE_REUSED; after a refresh the old request is refused', async () => {
    const c = await cluster(3);
    const key = await c.coordinator.keygen({ suite: SUITE, threshold: 2 });
    const [s1, s2] = [c.signer('signer-1'), c.signer('signer-2')];
    const intent = intentFor(key.keyId, new TextEncoder().encode('pay 3 to dave'));
    const commitments = [...(await commitmentsOf(s1, key.keyId)), ...(await commitmentsOf(s2, key.keyId))];
    const old = encodeSignRequest({
      suite,
      sessionId: new Uint8Array(16).fill(1),
      keyId: key.keyId,
      epoch: 0,
      intent,
      commitments,
    });
    const first = await s1.sign(old);
    // Replayed later: no new share exists to be had.
    expect(equalBytes(await s1.sign(old), first)).toBe(true);
    const replays = [
      encodeSignRequest({
        suite,
        sessionId: new Uint8Array(16).fill(2),
        keyId: key.keyId,
        epoch: 0,
        intent,
        commitments,
      }),
      encodeSignRequest({
        suite,
        sessionId: new Uint8Array(16).fill(1),
        keyId: key.keyId,
        epoch: 0,
        intent,
        commitments: [...commitments].reverse(),
      }),
      encodeSignRequest({
        suite,
        sessionId: new Uint8Array(16).fill(1),
        keyId: key.keyId,
        epoch: 0,
        intent: intentFor(key.keyId, new TextEncoder().encode('pay 1000 to mallory')),
        commitments,
      }),
    ];
    for (const r of replays) await expect(s1.sign(r)).rejects.toMatchObject({ code: 'NONCE_REUSED' });
    expect((await s1.ledger.listConsumed()).map((x) => x.nonceId)).toEqual([
      nonceIdOf(commitments[0] as RequestCommitment),
    ]);
    // After a refresh, the old request (epoch 0) gets nothing at all.
    await c.coordinator.refresh(key.keyId);
    await expect(s1.sign(old)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await s1.ledger.listConsumed()).toHaveLength(1);
    await onlyAuthorised(c.signers);
    catalogue.push(
      'malicious coordinator, replay of a used request: identical share (no new nonce use), NONCE_REUSED x3, refused after a refresh',
    );
  });

  it('asks for a reshare to a participant the signers do not know (policy.peers): POLICY_DENIED, nothing pending anywhere, the key unchanged', async () => {
    const c = await cluster(3, { peers: true, extra: ['mallory'] });
    const key = await c.coordinator.keygen({
      suite: SUITE,
      threshold: 2,
      participants: ['signer-1', 'signer-2', 'signer-3'],
    });
    const e = await c.coordinator
      .reshare(key.keyId, {
        threshold: 2,
        participants: ['signer-1', 'signer-2', 'mallory'],
        authorisation: reshareAuthorisation(c.coordinator, key.keyId, {
          threshold: 2,
          participants: ['signer-1', 'signer-2', 'mallory'],
        }),
      })
      .catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'POLICY_DENIED' });
    expect((e as Error).message).toContain('mallory');
    await epochKept(c, key.keyId, 0, ['signer-1', 'signer-2', 'signer-3']);
    await expect(c.signer('mallory').key(key.keyId)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // A DKG with mallory in the roster is refused the same way.
    await expect(
      c.coordinator.keygen({ suite: SUITE, threshold: 2, participants: ['signer-1', 'mallory'] }),
    ).rejects.toMatchObject({ code: 'POLICY_DENIED' });
    // Among known peers, a reshare goes through.
    expect(
      (
        await c.coordinator.reshare(key.keyId, {
          threshold: 2,
          participants: ['signer-1', 'signer-2'],
          authorisation: reshareAuthorisation(c.coordinator, key.keyId, {
            threshold: 2,
            participants: ['signer-1', 'signer-2'],
          }),
        })
      ).epoch,
    ).toBe(1);
    await onlyAuthorised(c.signers);
    catalogue.push(
      'malicious coordinator, reshare to an unknown participant with policy.peers: POLICY_DENIED naming it, epoch 0 kept, mallory holds nothing',
    );
  });

  it('asks a co-signer to complete a package whose device share is forged: BAD_SIGNATURE_SHARE, the reservation is not burned, the genuine package completes once', async () => {
    const c = await cluster(3);
    const gateway = await startDeviceGateway({ coordinator: c.coordinator, port: 0 });
    closers.push(() => gateway.close());
    const dir = mkdtempSync(join(tmpdir(), 'tessera-adversary-phone-'));
    dirs.push(dir);
    const phone = await Device.open({ location: dir, storageKey: new Uint8Array(randomBytes(32)) });
    closers.push(() => phone.close());
    await phone.init('phone-1');
    await phone.enrol(gateway.url, (await c.coordinator.issueEnrolmentToken()).token);
    const key = await phone.keygen(gateway.url, { suite: SUITE, threshold: 2, with: ['signer-1', 'signer-2'] });
    await phone.reserve(gateway.url, { keyId: key.keyId, count: 1, cosigners: ['signer-1'] });
    const message = new TextEncoder().encode('pay 7 to erin, offline');
    const p = await phone.signOffline({ keyId: key.keyId, message });
    const d = decodeOfflinePackage(p.bytes);
    const forged = encodeOfflinePackage({ ...d, share: bytesOf(scalar(d.share) + 1n) });
    const cos = c.signer('signer-1');
    // Straight to the co-signer, as a malicious coordinator would send it.
    await expect(cos.complete(forged)).rejects.toMatchObject({ code: 'BAD_SIGNATURE_SHARE' });
    expect(await cos.ledger.listConsumed('r.')).toEqual([]);
    expect(await cos.ledger.countFresh('r.')).toBe(1);
    // Through the coordinator: refused before any co-signer is asked, the device named.
    await expect(c.coordinator.completePackage(forged)).rejects.toMatchObject({
      code: 'BAD_SIGNATURE_SHARE',
      culprits: ['phone-1'],
    });
    const s = await phone.sync(gateway.url);
    expect(s.completed.map((x) => x.packageId)).toEqual([p.packageId]);
    expect(suite.verify(fromHex(s.completed[0]!.signature), message, fromHex(key.publicKey))).toBe(true);
    expect(await cos.ledger.listConsumed('r.')).toHaveLength(1);
    catalogue.push(
      'malicious coordinator, completion of a forged package: BAD_SIGNATURE_SHARE (coordinator: culprits [phone-1]), reservation kept fresh, the genuine package completed once',
    );
  });
});

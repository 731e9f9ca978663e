/**
 * "No single party can steal or destroy a key", against REAL signer processes (own LevelDB, KEK,
 * mTLS link, pinned policy as shipped) driven by a hostile coordinator (test/hostile.ts): each
 * attack of the adversarial review is a named test that failed on the code before the fix.
 *
 * The coordinator here holds everything a malicious coordinator can hold: its own identities
 * (evil-1, evil-2, a would-be operator), an operator authorisation it legitimately received for
 * one refresh, every envelope it relayed. The signers pin their peers and two operator keys
 * (both must approve). The run ends by stopping every signer and reading its own store: the
 * shares, pending records, reservations and audit chain it durably kept.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DkgParticipant,
  ParticipantIdentity,
  PayloadKind,
  SigningSession,
  approveAuthorisation,
  approveDevice,
  createSignIntent,
  decodeCommitment,
  decodeKeyRecord,
  decodeSignatureShare,
  dkgSessionHashOfParams,
  encodeApproved,
  encodeAuthorisation,
  encodeDkgParams,
  encodeRefreshParams,
  encodeReshareParams,
  encodeSignRequest,
  getSuite,
  groupPublicKey,
  keyDigest,
  openEnvelope,
  toHex,
  type KeyRecord,
  type LinkResult,
  type ParticipantPublic,
  type RequestCommitment,
} from '@tessera/core';
import { createDevPki } from '@tessera/runtime';
import { AuditLog, NonceLedger, SealedStore, ShareVault, loadKek } from '@tessera/store';
import { SIGNER_BIN, startProcess, type Proc } from './harness.js';
import { startHostileCoordinator, type Hostile } from './hostile.js';

const suite = getSuite('ed25519');
const SIGNERS = ['signer-1', 'signer-2', 'signer-3'] as const;
const alice = ParticipantIdentity.generate('op-alice');
const bob = ParticipantIdentity.generate('op-bob');
/** The coordinator's own key, dressed up as an operator. */
const fakeOperator = ParticipantIdentity.generate('op-mallory');
const evil1 = ParticipantIdentity.generate('evil-1');
const evil2 = ParticipantIdentity.generate('evil-2');
const requester = ParticipantIdentity.generate('wallet-api');
const phone = ParticipantIdentity.generate('phone');
const phoneB = ParticipantIdentity.generate('phone.b');

let dir: string;
let hostile: Hostile;
const procs = new Map<string, Proc>();
const cfgs = new Map<string, { dataDir: string; kekFile: string }>();
const info = new Map<string, ParticipantPublic>();
let keyA: KeyRecord; // signer-1..3, 2-of-3
let keyB: KeyRecord; // signer-1, phone, phone.b (devices), 2-of-3
let keyC: KeyRecord; // signer-1..3, 2-of-3: the split-commit attack
let unpinnedStderr = '';

/** Identity of a signer's store (`tessera-signer --init`), created before it first starts. */
function initIdentity(cfgFile: string): { id: string; signKey: string; encKey: string } {
  const r = spawnSync(process.execPath, [SIGNER_BIN, '--config', cfgFile, '--init'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`--init failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { id: string; signKey: string; encKey: string };
}

const approvedBy = (auth: Uint8Array, by: ParticipantIdentity[]) =>
  encodeApproved(
    auth,
    by.map((o) => approveAuthorisation(o, auth)),
  );
const send = (id: string, body: Record<string, unknown>) => hostile.sendTo(id, body);

function refused(r: LinkResult, code: string, text?: string): void {
  expect(r.body, JSON.stringify(r.error)).toBe('error');
  expect(r.error?.code).toBe(code);
  if (text) expect(r.error?.message).toContain(text);
  expect(r.envelope ?? new Uint8Array(0)).toHaveLength(0);
}

/** A DKG relayed exactly as the coordinator does; `local` participants run in this process. */
async function relayDkg(
  real: string[],
  local: ParticipantIdentity[],
  threshold: number,
  deviceAdmissions: Uint8Array[] = [],
): Promise<KeyRecord> {
  const parts: { info: ParticipantPublic; call: (kind: string, v: Record<string, unknown>) => Promise<LinkResult> }[] =
    [
      ...real.map((id) => ({
        info: info.get(id) as ParticipantPublic,
        call: (kind: string, v: Record<string, unknown>) =>
          send(id, { [kind]: kind === 'dkgStart' ? { ...v, deviceAdmissions } : v }),
      })),
      ...local.map((identity) => {
        const dkg = new DkgParticipant(identity, (n = 32) => new Uint8Array(randomBytes(n)));
        return {
          info: { ...identity.public, device: true } as ParticipantPublic,
          call: async (kind: string, v: Record<string, unknown>): Promise<LinkResult> => {
            if (kind === 'dkgStart')
              return { taskId: 0, body: 'envelope', envelope: dkg.start(v.params as Uint8Array) };
            const step = dkg.bundle(v as never);
            return 'envelope' in step
              ? { taskId: 0, body: 'envelope', envelope: step.envelope }
              : {
                  taskId: 0,
                  body: 'dkgDone',
                  dkgDone: {
                    keyId: step.done.keyId,
                    keyDigest: keyDigest(step.done.key),
                    keyRecord: new Uint8Array(0),
                  },
                };
          },
        };
      }),
    ];
  const params = encodeDkgParams({
    suite,
    sessionId: new Uint8Array(randomBytes(32)),
    threshold,
    participants: parts.map((p) => p.info),
  });
  const sessionHash = dkgSessionHashOfParams(params);
  let results = await Promise.all(parts.map((p) => p.call('dkgStart', { params })));
  for (const round of [1, 2, 3]) {
    for (const r of results) expect(r.error?.code, `round ${round}`).toBeUndefined();
    const envelopes = results.map((r) => r.envelope as Uint8Array);
    results = await Promise.all(parts.map((p) => p.call('dkgBundle', { sessionHash, round, envelopes })));
  }
  const done = results.find((r) => r.dkgDone?.keyRecord.length);
  return decodeKeyRecord(done?.dkgDone?.keyRecord as Uint8Array);
}

/** Signs a message with `key` (default key A) through `signers` at `epoch` and checks the plain verifier. */
async function signsAt(epoch: number, key: KeyRecord = keyA, signers = ['signer-1', 'signer-2']): Promise<void> {
  const message = new Uint8Array(randomBytes(32));
  const commitments: RequestCommitment[] = [];
  for (const id of signers) {
    const r = await send(id, { commit: { keyId: key.keyId, count: 1 } });
    expect(r.body, JSON.stringify(r.error)).toBe('commitments');
    const d = decodeCommitment(
      suite,
      openEnvelope(r.commitments!.envelopes[0]!, PayloadKind.SIGNING_COMMITMENT).payload,
    );
    commitments.push({ ...d.commitment, nonceId: d.nonceId });
  }
  const intent = createSignIntent(requester, {
    suite,
    keyId: key.keyId,
    message,
    requestId: new Uint8Array(randomBytes(16)),
    notAfter: Date.now() + 60_000,
  });
  const request = encodeSignRequest({
    suite,
    sessionId: new Uint8Array(randomBytes(16)),
    keyId: key.keyId,
    epoch,
    intent,
    commitments,
  });
  const shares = new Map<string, Uint8Array>();
  for (const id of signers) {
    const r = await send(id, { sign: request });
    expect(r.body, JSON.stringify(r.error)).toBe('envelope');
    shares.set(id, decodeSignatureShare(suite, openEnvelope(r.envelope!, PayloadKind.SIGNATURE_SHARE).payload).share);
  }
  // The verifying shares change with the epoch; the session only needs them to blame, the group key never changes.
  const signature = new SigningSession(key.key, message, commitments).aggregate(shares);
  expect(suite.verify(signature, message, groupPublicKey(key.key))).toBe(true);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-trust-'));
  const pki = await createDevPki(join(dir, 'pki'), ['coordinator', ...SIGNERS, 'signer-4']);
  hostile = await startHostileCoordinator(pki.certs.coordinator);
  const operators = { keys: [toHex(alice.public.signKey), toHex(bob.public.signKey)], approvals: 2 };
  const write = (id: string, policy: Record<string, unknown>) => {
    const kekFile = join(dir, `${id}.kek`);
    if (!existsSync(kekFile)) writeFileSync(kekFile, randomBytes(32).toString('hex'), { mode: 0o600 });
    const dataDir = join(dir, id, 'data');
    cfgs.set(id, { dataDir, kekFile });
    const f = join(dir, `${id}.json`);
    writeFileSync(
      f,
      JSON.stringify({
        id,
        dataDir,
        coordinator: `127.0.0.1:${hostile.server.port}`,
        kekFile,
        tls: pki.certs[id],
        policy,
      }),
    );
    return f;
  };
  const base = {
    allowKeygen: true,
    requesters: [{ id: 'wallet-api', publicKey: toHex(requester.public.signKey), keys: ['*'] }],
    operators,
    devices: { maxReservations: 4 },
  };
  // Identities first (as `tessera dev` does), then every signer pins the others.
  const keys = SIGNERS.map((id) => initIdentity(write(id, base)));
  for (const id of SIGNERS) {
    const f = write(id, {
      ...base,
      peers: keys.filter((k) => k.id !== id).map((k) => ({ id: k.id, publicKey: k.signKey, encKey: k.encKey })),
    });
    procs.set(id, startProcess(SIGNER_BIN, f));
  }
  await Promise.all([...procs.values()].map((p) => p.ready));
  for (const id of SIGNERS)
    info.set(id, {
      id,
      signKey: (await hostile.linked(id)).participant.signKey,
      encKey: (await hostile.linked(id)).participant.encKey,
    });
  keyA = await relayDkg([...SIGNERS], [], 2);
  // The operators admitted both phones (tessera device admit); signers refuse devices without it.
  keyB = await relayDkg(
    ['signer-1'],
    [phone, phoneB],
    2,
    [phone, phoneB].flatMap((d) => [alice, bob].map((o) => approveDevice(o, d.public))),
  );
  keyC = await relayDkg([...SIGNERS], [], 2);

  // A node started as an operator might forget to: no peers pinned.
  const p4 = startProcess(SIGNER_BIN, write('signer-4', base));
  p4.child.stderr?.on('data', (d: Buffer) => (unpinnedStderr += d.toString()));
  procs.set('signer-4', p4);
  await p4.ready;
  await hostile.linked('signer-4');
}, 60_000);

afterAll(async () => {
  for (const p of procs.values()) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
    const exited = new Promise((r) => p.child.once('exit', r));
    p.child.kill('SIGKILL');
    await exited;
  }
  if (hostile) await hostile.server.close(500);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('no single party can steal or destroy a key (real signer processes, hostile coordinator)', () => {
  it('positive control: the DKGs gave every participant the same keys; key A signs at epoch 0', async () => {
    expect(keyA.key.roster.map((r) => r.id).sort()).toEqual([...SIGNERS]);
    expect(
      keyB.key.roster
        .filter((r) => r.device)
        .map((r) => r.id)
        .sort(),
    ).toEqual(['phone', 'phone.b']);
    await signsAt(0);
  });

  it("key theft by reshare: a reshare to the coordinator's own identities is refused by every contributor, whatever authorisation it forges or replays", async () => {
    const params = encodeReshareParams({
      suite,
      sessionId: new Uint8Array(randomBytes(32)),
      keyId: keyA.keyId,
      fromEpoch: 0,
      oldKey: keyA.key,
      contributors: ['signer-1', 'signer-2'],
      newThreshold: 2,
      newParticipants: [evil1.public, evil2.public],
    });
    const taskFor = (p: Uint8Array, authorisation: Uint8Array) => ({
      lifecycle: {
        kind: 'reshare',
        keyId: keyA.keyId,
        step: 1,
        params: p,
        envelopes: [],
        oldKeyRecord: new Uint8Array(0),
        epoch: 1,
        authorisation,
      },
    });
    const task = (authorisation: Uint8Array) => taskFor(params, authorisation);
    const swapped = SIGNERS.map((id, i) =>
      i === 0 ? info.get(id)! : { ...info.get(id)!, encKey: (i === 1 ? evil1 : evil2).public.encKey },
    );
    const swapParams = encodeReshareParams({
      suite,
      sessionId: new Uint8Array(randomBytes(32)),
      keyId: keyA.keyId,
      fromEpoch: 0,
      oldKey: keyA.key,
      contributors: ['signer-1', 'signer-2'],
      newThreshold: 2,
      newParticipants: swapped,
    });
    const swapAuth = encodeAuthorisation({
      keyId: keyA.keyId,
      operation: 'reshare',
      fromEpoch: 0,
      anyEpoch: false,
      newThreshold: 2,
      newParticipants: swapped,
      allowThresholdDecrease: false,
      allowUnpinned: [],
      revoke: [],
      notAfter: Date.now() + 600_000,
    });
    const evilRoster = encodeAuthorisation({
      keyId: keyA.keyId,
      operation: 'reshare',
      fromEpoch: 0,
      anyEpoch: false,
      newThreshold: 2,
      newParticipants: [evil1.public, evil2.public],
      allowThresholdDecrease: false,
      allowUnpinned: [],
      revoke: [],
      notAfter: Date.now() + 600_000,
    });
    const honestRoster = encodeAuthorisation({
      keyId: keyA.keyId,
      operation: 'reshare',
      fromEpoch: 0,
      anyEpoch: false,
      newThreshold: 2,
      newParticipants: SIGNERS.map((id) => info.get(id)!),
      allowThresholdDecrease: false,
      allowUnpinned: [],
      revoke: [],
      notAfter: Date.now() + 600_000,
    });
    for (const id of ['signer-1', 'signer-2']) {
      // No authorisation at all (the shipped configs before: the coordinator's word sufficed).
      refused(await send(id, task(new Uint8Array(0))), 'POLICY_DENIED', 'no operator authorisation');
      // Approved by a key of the coordinator's own: not a pinned operator.
      refused(await send(id, task(approvedBy(evilRoster, [fakeOperator]))), 'POLICY_DENIED', 'has 0');
      // One real operator of the two required.
      refused(await send(id, task(approvedBy(evilRoster, [alice]))), 'POLICY_DENIED', 'has 1');
      // Both operators tricked into approving unknown participants: still not pinned, not vouched for.
      refused(await send(id, task(approvedBy(evilRoster, [alice, bob]))), 'POLICY_DENIED', 'evil-1');
      // The real signers' ids and signing keys, but X25519 keys of the coordinator's: shares
      // sealed to that roster would open for the coordinator. Operators approved it (tricked).
      refused(
        await send(id, taskFor(swapParams, approvedBy(swapAuth, [alice, bob]))),
        'POLICY_DENIED',
        'has not pinned: signer-2, signer-3',
      );
      // A genuine authorisation of another roster, replayed onto the evil session.
      refused(
        await send(id, task(approvedBy(honestRoster, [alice, bob]))),
        'POLICY_DENIED',
        'not the one the operators approved',
      );
    }
  });

  it("erasure by an unsolicited commit: a commit with nothing pending, or with confirmations that are not this node's own outcome, changes nothing", async () => {
    for (const id of SIGNERS) {
      const r = await send(id, {
        lifecycle: {
          kind: 'refresh',
          keyId: keyA.keyId,
          step: 3,
          params: new Uint8Array(0),
          envelopes: [],
          oldKeyRecord: new Uint8Array(0),
          epoch: 1,
        },
      });
      refused(r, 'UNEXPECTED_MESSAGE', 'nothing pending');
      // A retire of an epoch this node is not at.
      refused(
        await send(id, {
          lifecycle: {
            kind: 'refresh',
            keyId: keyA.keyId,
            step: 5,
            params: new Uint8Array(0),
            envelopes: [],
            oldKeyRecord: new Uint8Array(0),
            epoch: 1,
          },
        }),
        'UNEXPECTED_MESSAGE',
      );
    }
    await signsAt(0);
  });

  it('erasure by split refreshes: three sessions from epoch 0, a different one applied on each signer, then commits everywhere: nobody activates, epoch 0 still signs; an honest session then commits', async () => {
    // The coordinator holds one genuine refresh authorisation and replays it on every session.
    const auth = approvedBy(
      encodeAuthorisation({
        keyId: keyA.keyId,
        operation: 'refresh',
        fromEpoch: 0,
        anyEpoch: false,
        newThreshold: 0,
        newParticipants: [],
        allowThresholdDecrease: false,
        allowUnpinned: [],
        revoke: [],
        notAfter: Date.now() + 600_000,
      }),
      [alice, bob],
    );
    const session = () =>
      encodeRefreshParams({
        suite,
        sessionId: new Uint8Array(randomBytes(32)),
        keyId: keyA.keyId,
        fromEpoch: 0,
        key: keyA.key,
        contributors: [...SIGNERS],
      });
    const lc = (step: number, params: Uint8Array, envelopes: Uint8Array[] = []) => ({
      lifecycle: {
        kind: 'refresh',
        keyId: keyA.keyId,
        step,
        params,
        envelopes,
        oldKeyRecord: new Uint8Array(0),
        epoch: 1,
        authorisation: auth,
      },
    });
    const sessions = [session(), session(), session()];
    const round1: Uint8Array[][] = [];
    for (const params of sessions) {
      const r = await Promise.all(SIGNERS.map((id) => send(id, lc(1, params))));
      for (const x of r) expect(x.body, JSON.stringify(x.error)).toBe('envelope');
      round1.push(r.map((x) => x.envelope as Uint8Array));
    }
    // signer-i applies session i only.
    const confirmations: Uint8Array[] = [];
    for (const [i, id] of SIGNERS.entries()) {
      const r = await send(id, lc(2, sessions[i]!, round1[i]!));
      expect(r.body, JSON.stringify(r.error)).toBe('envelope');
      confirmations.push(r.envelope as Uint8Array);
    }
    for (const [i, id] of SIGNERS.entries()) {
      // Its own confirmation alone, all three mixed: neither is its outcome confirmed by every contributor.
      refused(
        await send(id, lc(3, new Uint8Array(0), [confirmations[i]!])),
        'UNEXPECTED_MESSAGE',
        'does not carry the confirmations',
      );
      refused(
        await send(id, lc(3, new Uint8Array(0), confirmations)),
        'UNEXPECTED_MESSAGE',
        'does not carry the confirmations',
      );
    }
    await signsAt(0);

    // An honest session: everyone applies the same one, the commit carries every confirmation.
    const honest = session();
    const r1 = (await Promise.all(SIGNERS.map((id) => send(id, lc(1, honest))))).map((x) => x.envelope as Uint8Array);
    const confs = (await Promise.all(SIGNERS.map((id) => send(id, lc(2, honest, r1))))).map(
      (x) => x.envelope as Uint8Array,
    );
    const acks: Uint8Array[] = [];
    for (const id of SIGNERS) {
      const r = await send(id, lc(3, new Uint8Array(0), confs));
      expect(r.body, JSON.stringify(r.error)).toBe('envelope');
      acks.push(r.envelope as Uint8Array);
      // A commit replayed is answered with the same acknowledgement and changes nothing.
      expect((await send(id, lc(3, new Uint8Array(0), confs))).body).toBe('envelope');
    }
    // t acknowledgements are not enough to retire epoch 0 (one of them could lie); min(n, 2t−1) = 3 are.
    refused(
      await send('signer-1', lc(5, new Uint8Array(0), acks.slice(0, 2))),
      'UNEXPECTED_MESSAGE',
      'needs 3 activation acknowledgements, got 2',
    );
    // Acknowledgements of another member's key, or the same one twice, count once.
    refused(
      await send('signer-1', lc(5, new Uint8Array(0), [acks[0]!, acks[0]!, acks[1]!])),
      'UNEXPECTED_MESSAGE',
      'got 2',
    );
    expect((await send('signer-1', lc(5, new Uint8Array(0), acks))).body).toBe('ok');
    keyA = { ...keyA, epoch: 1 };
    await signsAt(1);
  });

  it('erasure by split commits on subsets: each contributor pair commits a different refresh on one node only; no two nodes share the new epoch, yet epoch 0 still signs with any two', async () => {
    const auth = approvedBy(
      encodeAuthorisation({
        keyId: keyC.keyId,
        operation: 'refresh',
        fromEpoch: 0,
        anyEpoch: false,
        newThreshold: 0,
        newParticipants: [],
        allowThresholdDecrease: false,
        allowUnpinned: [],
        revoke: [],
        notAfter: Date.now() + 600_000,
      }),
      [alice, bob],
    );
    const lc = (step: number, params: Uint8Array, envelopes: Uint8Array[] = []) => ({
      lifecycle: {
        kind: 'refresh',
        keyId: keyC.keyId,
        step,
        params,
        envelopes,
        oldKeyRecord: new Uint8Array(0),
        epoch: 1,
        authorisation: auth,
      },
    });
    const commitOn = async (contributors: string[], on: string) => {
      const params = encodeRefreshParams({
        suite,
        sessionId: new Uint8Array(randomBytes(32)),
        keyId: keyC.keyId,
        fromEpoch: 0,
        key: keyC.key,
        contributors,
      });
      const r1 = await Promise.all(
        contributors.map(async (id) => (await send(id, lc(1, params))).envelope as Uint8Array),
      );
      const confs = await Promise.all(
        contributors.map(async (id) => (await send(id, lc(2, params, r1))).envelope as Uint8Array),
      );
      expect((await send(on, lc(3, new Uint8Array(0), confs))).body).toBe('envelope');
      for (const id of contributors) if (id !== on) expect((await send(id, lc(4, params))).body).toBe('ok');
    };
    await commitOn(['signer-1', 'signer-2'], 'signer-1'); // signer-1 at session A
    await commitOn(['signer-2', 'signer-3'], 'signer-2'); // signer-2 at session B; signer-3 at 0
    // Nobody retired epoch 0 (one acknowledgement each, three needed), so it still signs with any two.
    for (const pair of [
      ['signer-1', 'signer-2'],
      ['signer-1', 'signer-3'],
      ['signer-2', 'signer-3'],
    ])
      await signsAt(0, keyC, pair);
    // A retire with the acknowledgements the coordinator has cannot change that.
    refused(
      await send('signer-1', lc(5, new Uint8Array(0), [])),
      'UNEXPECTED_MESSAGE',
      'needs 3 activation acknowledgements',
    );
  });

  it('devices the operators did not admit: a DKG roster with "devices" of the coordinator\'s own (or one operator\'s admission of two) is refused; a node marked as a device likewise', async () => {
    const params = (participants: ParticipantPublic[]) =>
      encodeDkgParams({ suite, sessionId: new Uint8Array(randomBytes(32)), threshold: 2, participants });
    const fake = { ...evil1.public, device: true };
    for (const id of SIGNERS) {
      // Two made-up devices would hold a quorum of the new key; one would co-sign offline at will.
      refused(
        await send(id, {
          dkgStart: { params: params([...SIGNERS.map((s) => info.get(s)!), fake, { ...evil2.public, device: true }]) },
        }),
        'POLICY_DENIED',
        'is not admitted by the operators',
      );
      refused(
        await send(id, {
          dkgStart: {
            params: params([...SIGNERS.map((s) => info.get(s)!), fake]),
            deviceAdmissions: [approveDevice(alice, fake), approveDevice(fakeOperator, fake)],
          },
        }),
        'POLICY_DENIED',
        '1 of 2 approvals',
      );
      // An admission of other keys under the same id does not count.
      refused(
        await send(id, {
          dkgStart: {
            params: params([...SIGNERS.map((s) => info.get(s)!), { ...fake, id: 'phone' }]),
            deviceAdmissions: [alice, bob].map((o) => approveDevice(o, phone.public)),
          },
        }),
        'POLICY_DENIED',
        'not admitted',
      );
    }
    // A pinned peer passed off as a device needs an admission too.
    const s2AsDevice = { ...info.get('signer-2')!, device: true };
    refused(
      await send('signer-1', {
        dkgStart: { params: params([info.get('signer-1')!, s2AsDevice, info.get('signer-3')!]) },
      }),
      'POLICY_DENIED',
      'signer-2 is not admitted',
    );
  });

  it('offline co-signing for a non-device: a node reserves nonces only for participants the key records as devices', async () => {
    // signer-2 is a roster member of key A but not a device; evil-1 is not in the key at all.
    for (const device of ['signer-2', 'evil-1']) {
      refused(
        await send('signer-1', { reserve: { keyId: keyA.keyId, device, count: 1, ttlMs: 60_000 } }),
        'POLICY_DENIED',
        'is not a device of key',
      );
    }
    // On key B, where the DKG recorded phone as a device, it does.
    const ok = await send('signer-1', { reserve: { keyId: keyB.keyId, device: 'phone', count: 1, ttlMs: 60_000 } });
    expect(ok.body, JSON.stringify(ok.error)).toBe('reservations');
  });

  it('ids with a dot: device "phone.b"\'s reservations are not counted, swept or revoked as device "phone"\'s', async () => {
    // The cap is 4 per device; phone holds 1 from the test above.
    const b = await send('signer-1', { reserve: { keyId: keyB.keyId, device: 'phone.b', count: 4, ttlMs: 60_000 } });
    expect(b.reservations?.envelopes).toHaveLength(4);
    const a = await send('signer-1', { reserve: { keyId: keyB.keyId, device: 'phone', count: 4, ttlMs: 60_000 } });
    expect(a.reservations?.envelopes, JSON.stringify(a.error)).toHaveLength(3);
    refused(
      await send('signer-1', { reserve: { keyId: keyB.keyId, device: 'phone', count: 1, ttlMs: 60_000 } }),
      'RESOURCE_EXHAUSTED',
    );
  });

  it("revocation reaches the signers on the operators' word only: forged or 1-of-2 revocations are refused; an approved one stops reservations for that device alone and discards its unused ones", async () => {
    const revocation = (by: ParticipantIdentity[], devices = ['phone']) =>
      approvedBy(
        encodeAuthorisation({
          keyId: '*',
          operation: 'revoke',
          fromEpoch: 0,
          anyEpoch: false,
          newThreshold: 0,
          newParticipants: [],
          allowThresholdDecrease: false,
          allowUnpinned: [],
          revoke: devices,
          notAfter: Date.now() + 600_000,
        }),
        by,
      );
    refused(await send('signer-1', { revoke: revocation([fakeOperator]) }), 'POLICY_DENIED', 'has 0');
    refused(await send('signer-1', { revoke: revocation([alice]) }), 'POLICY_DENIED', 'has 1');
    refused(await send('signer-1', { revoke: new Uint8Array(0) }), 'POLICY_DENIED', 'no operator authorisation');
    expect((await send('signer-1', { revoke: revocation([alice, bob]) })).body).toBe('ok');
    // Twice is the same as once.
    expect((await send('signer-1', { revoke: revocation([alice, bob]) })).body).toBe('ok');
    refused(
      await send('signer-1', { reserve: { keyId: keyB.keyId, device: 'phone', count: 1, ttlMs: 60_000 } }),
      'POLICY_DENIED',
      'revoked',
    );
    // phone.b (a prefix-sharing id) is untouched: still at its cap, not revoked.
    refused(
      await send('signer-1', { reserve: { keyId: keyB.keyId, device: 'phone.b', count: 1, ttlMs: 60_000 } }),
      'RESOURCE_EXHAUSTED',
    );
  });

  it('peers pinned by default: a node without policy.peers says why at startup and refuses DKG and lifecycle', async () => {
    expect(unpinnedStderr).toContain('no peers are pinned');
    const params = encodeDkgParams({
      suite,
      sessionId: new Uint8Array(randomBytes(32)),
      threshold: 2,
      participants: [
        info.get('signer-1')!,
        { ...evil1.public },
        {
          id: 'signer-4',
          signKey: (await hostile.linked('signer-4')).participant.signKey,
          encKey: (await hostile.linked('signer-4')).participant.encKey,
        },
      ],
    });
    refused(await send('signer-4', { dkgStart: { params } }), 'POLICY_DENIED', 'no peers are pinned');
    refused(
      await send('signer-4', {
        lifecycle: {
          kind: 'refresh',
          keyId: keyA.keyId,
          step: 1,
          params: new Uint8Array(0),
          envelopes: [],
          oldKeyRecord: new Uint8Array(0),
          epoch: 1,
        },
      }),
      'POLICY_DENIED',
      'no peers are pinned',
    );
  });

  it('every honest store afterwards: key A at epochs 0 and 1 (0 kept for the retention time), nothing pending, reservations only for devices, audit chains verify', async () => {
    for (const id of [...SIGNERS]) {
      const p = procs.get(id)!;
      const exited = new Promise<number | null>((r) => p.child.once('exit', (code) => r(code)));
      p.child.kill('SIGTERM');
      expect(await exited).toBe(0);
      const cfg = cfgs.get(id)!;
      const store = await SealedStore.open(cfg.dataDir, loadKek({ file: cfg.kekFile }), { createIfMissing: false });
      try {
        const vault = new ShareVault(store);
        expect(await vault.listEpochs(keyA.keyId), id).toEqual([0, 1]);
        expect(await vault.listEpochs(keyC.keyId), id).toEqual(id === 'signer-3' ? [0] : [0, 1]);
        const pending: string[] = [];
        for await (const k of store.keys('lcpending/')) pending.push(k);
        expect(pending, id).toEqual([]);
        const reserved: string[] = [];
        for await (const k of store.keys('nonce/r.')) reserved.push(k);
        // Only signer-1 co-signs key B; every reservation is of a device of key B (hex-encoded id).
        const devices = new Set(reserved.map((k) => Buffer.from(k.split('.')[1]!, 'hex').toString()));
        // phone was revoked: its unused reservations are gone.
        expect([...devices].sort(), id).toEqual(id === 'signer-1' ? ['phone.b'] : []);
        expect(
          await new NonceLedger(store).listConsumed().then((l) => l.every((c) => !c.nonceId.startsWith('r.'))),
        ).toBe(true);
        expect((await new AuditLog(store).verify()).ok, id).toBe(true);
      } finally {
        await store.close();
      }
    }
  });
});

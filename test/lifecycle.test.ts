/**
 * Refresh, reshare, device replacement and HD child keys through the real coordinator and signer
 * engines (real LevelDB stores) and real devices on the HTTP gateway, in one process. Every
 * signature is checked with the suite's plain single-party verifier under the key's unchanged
 * public key (or the derived child key).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ParticipantIdentity,
  approveDevice,
  createSignIntent,
  deriveKey,
  fromHex,
  getSuite,
  groupPublicKey,
  toHex,
  type LinkResult,
  type LinkTask,
  type SuiteId,
} from '@tessera/core';
import { SealedStore, kekFromBytes } from '@tessera/store';
import { SignerEngine } from '@tessera/signer';
import { Coordinator, startDeviceGateway, type ParticipantHandle } from '@tessera/coordinator';
import { Device } from '@tessera/device';
import { operator, operators, peersOf, reshareAuthorisation, standingRefresh } from './authority.js';

const dirs: string[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tessera-lifecycle-'));
  dirs.push(d);
  return d;
}

async function openStore(): Promise<SealedStore> {
  const s = await SealedStore.open(tempDir(), kekFromBytes(new Uint8Array(randomBytes(32))));
  closers.push(() => s.close());
  return s;
}

const requester = ParticipantIdentity.generate('wallet-api');

async function cluster(n: number, opts: { clock?: () => number; keyCacheSize?: number } = {}) {
  const signers: SignerEngine[] = [];
  const ids = Array.from({ length: n }, (_, i) => ParticipantIdentity.generate(`signer-${i + 1}`));
  for (const identity of ids) {
    signers.push(
      new SignerEngine({
        identity,
        store: await openStore(),
        ...(opts.clock ? { clock: opts.clock } : {}),
        policy: {
          allowKeygen: true,
          requesters: [{ id: 'wallet-api', publicKey: toHex(requester.public.signKey), keys: ['*'] }],
          peers: peersOf(identity.id, ids),
          operators,
        },
      }),
    );
  }
  const coordinator = new Coordinator({
    store: await openStore(),
    refreshAuthorisation: standingRefresh(),
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.keyCacheSize ? { keyCacheSize: opts.keyCacheSize } : {}),
  });
  await coordinator.load();
  const tamper = new Map<string, (r: LinkResult, t: Omit<LinkTask, 'taskId'>) => LinkResult>();
  const handles = new Map<string, ParticipantHandle>();
  let taskId = 0;
  for (const s of signers) {
    const handle: ParticipantHandle = {
      info: s.identity.public,
      connectedSince: Date.now(),
      async call(task) {
        const r = await s.handle({ ...task, taskId: ++taskId });
        return tamper.get(s.id)?.(r, task) ?? r;
      },
    };
    handles.set(s.id, handle);
    coordinator.register(handle);
  }
  const gateway = await startDeviceGateway({ coordinator, port: 0 });
  closers.push(() => gateway.close());
  /** Takes a signer off the link (offline) or back (it catches up on what it missed). */
  const link = (id: string, up: boolean) =>
    up ? coordinator.register(handles.get(id) as ParticipantHandle) : coordinator.unregister(id);
  return { signers, coordinator, url: gateway.url, tamper, link };
}

async function device(
  c: Awaited<ReturnType<typeof cluster>>,
  id: string,
  opts: { operators?: typeof operators } = {},
): Promise<Device> {
  const d = await Device.open({ location: tempDir(), storageKey: new Uint8Array(randomBytes(32)), ...opts });
  closers.push(() => d.close());
  await d.init(id);
  await d.enrol(c.url, (await c.coordinator.issueEnrolmentToken()).token);
  await c.coordinator.admitDevice(id, [approveDevice(operator, d.info)]);
  return d;
}

async function onlineSign(c: Awaited<ReturnType<typeof cluster>>, suite: SuiteId, keyId: string, path?: string) {
  const message = new Uint8Array(randomBytes(32));
  const intent = createSignIntent(requester, {
    suite: getSuite(suite),
    keyId,
    message,
    requestId: new Uint8Array(randomBytes(16)),
    notAfter: Date.now() + 60_000,
    ...(path ? { path } : {}),
  });
  const r = await c.coordinator.sign(intent);
  return { message, ...r };
}

/** A reshare the test operator approved (a replacement phone vouched for as unpinned). */
function reshare(
  c: Awaited<ReturnType<typeof cluster>>,
  keyId: string,
  req: { threshold: number; participants: string[]; allowThresholdDecrease?: boolean },
) {
  return c.coordinator.reshare(keyId, {
    ...req,
    authorisation: reshareAuthorisation(c.coordinator, keyId, { ...req, allowUnpinned: ['phone-new'] }),
  });
}

/** Waits until `cond` holds (a catch-up runs in the background when a participant links). */
async function until(cond: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('refresh', () => {
  for (const suite of ['ed25519', 'secp256k1-tr'] as SuiteId[]) {
    it(`${suite}: new epoch, same public key; a signer offline during the refresh catches up when it links; old-epoch packages still complete`, async () => {
      const c = await cluster(3);
      const phone = await device(c, `phone-${suite}`);
      const key = await phone.keygen(c.url, { suite, threshold: 2, with: ['signer-1', 'signer-2', 'signer-3'] });
      const pk = fromHex(key.publicKey);
      await phone.reserve(c.url, { keyId: key.keyId, count: 2, cosigners: ['signer-1'] });
      // Signed offline at epoch 0, delivered after the refresh.
      const early = await phone.signOffline({ keyId: key.keyId, message: new Uint8Array(32).fill(1) });
      const before = await Promise.all(c.signers.map((s) => s.key(key.keyId)));

      c.link('signer-3', false);
      const info = await c.coordinator.refresh(key.keyId);
      expect(info.epoch).toBe(1);
      expect(toHex(info.publicKey)).toBe(key.publicKey);
      const after = await Promise.all(c.signers.slice(0, 2).map((s) => s.key(key.keyId)));
      after.forEach((r, i) => {
        expect(r.epoch).toBe(1);
        expect(toHex(r.share.signingShare())).not.toBe(toHex((before[i] as typeof r).share.signingShare()));
        expect(toHex(groupPublicKey(r.key))).toBe(key.publicKey);
      });
      expect((await c.signers[2]?.key(key.keyId))?.epoch).toBe(0);
      // The two refreshed signers sign at epoch 1.
      const s1 = await onlineSign(c, suite, key.keyId);
      expect(getSuite(suite).verify(s1.signature, s1.message, pk)).toBe(true);
      // The phone (offline during the refresh) still completes its epoch-0 package.
      const done = await phone.sync(c.url);
      expect(done.completed.map((x) => x.packageId)).toEqual([early.packageId]);
      expect(
        getSuite(suite).verify(fromHex(done.completed[0]?.signature as string), new Uint8Array(32).fill(1), pk),
      ).toBe(true);

      // signer-3 links again and applies the refresh it missed; then it signs with signer-1.
      c.link('signer-3', true);
      await until(async () => (await c.signers[2]?.key(key.keyId))?.epoch === 1, 'signer-3 to catch up');
      c.link('signer-2', false);
      const s2 = await onlineSign(c, suite, key.keyId);
      expect([...s2.signers].sort()).toEqual(['signer-1', 'signer-3']);
      expect(getSuite(suite).verify(s2.signature, s2.message, pk)).toBe(true);
      c.link('signer-2', true);

      // The phone catches up when it links, and its remaining epoch-0 reservation still works.
      const moved: { keyId: string; epoch: number; previous: number }[] = [];
      const off = phone.on('lifecycle', (e) => moved.push(e));
      await phone.connect(c.url);
      await until(async () => (await phone.keys())[0]?.epoch === 1, 'the phone to catch up');
      await phone.disconnect();
      off();
      // The app heard of it: one lifecycle event for the key, epoch 0 → 1.
      expect(moved).toEqual([{ keyId: key.keyId, epoch: 1, previous: 0 }]);
      const old = await phone.signOffline({ keyId: key.keyId, message: new Uint8Array(32).fill(2) });
      await phone.reserve(c.url, { keyId: key.keyId, count: 1 });
      const fresh = await phone.signOffline({ keyId: key.keyId, message: new Uint8Array(32).fill(3) });
      const synced = await phone.sync(c.url);
      expect(synced.completed.map((x) => x.packageId).sort()).toEqual([old.packageId, fresh.packageId].sort());
      for (const x of synced.completed)
        expect(getSuite(suite).verify(fromHex(x.signature), fromHex(x.message), pk)).toBe(true);
    });
  }

  it('an abort in the middle of a refresh leaves the previous epoch in force and usable; a retry succeeds', async () => {
    const c = await cluster(3);
    const phone = await device(c, 'phone-abort');
    const key = await phone.keygen(c.url, {
      suite: 'ed25519',
      threshold: 2,
      with: ['signer-1', 'signer-2', 'signer-3'],
    });
    // signer-2 fails while applying (step 2): nothing is committed anywhere.
    c.tamper.set('signer-2', (r, t) =>
      t.body === 'lifecycle' && t.lifecycle?.step === 2
        ? { taskId: r.taskId, body: 'error', error: { code: 'INTERNAL', message: 'disk full', culprits: [] } }
        : r,
    );
    await expect(c.coordinator.refresh(key.keyId)).rejects.toThrow(/aborted/);
    expect(c.coordinator.key(key.keyId).epoch).toBe(0);
    for (const s of c.signers) expect((await s.key(key.keyId)).epoch).toBe(0);
    const s = await onlineSign(c, 'ed25519', key.keyId);
    expect(getSuite('ed25519').verify(s.signature, s.message, fromHex(key.publicKey))).toBe(true);
    c.tamper.clear();
    expect((await c.coordinator.refresh(key.keyId)).epoch).toBe(1);
    const s2 = await onlineSign(c, 'ed25519', key.keyId);
    expect(getSuite('ed25519').verify(s2.signature, s2.message, fromHex(key.publicKey))).toBe(true);
  });

  it('a contribution that would change the key or the threshold is refused and names its sender; the epoch stays', async () => {
    const c = await cluster(3);
    const key = await c.coordinator.keygen({ suite: 'ed25519', threshold: 2 });
    // signer-3 answers round 1 with an envelope of another session (a replay of an earlier round).
    let first: Uint8Array | undefined;
    c.tamper.set('signer-3', (r, t) => {
      if (t.body === 'lifecycle' && t.lifecycle?.step === 1 && r.envelope) {
        if (!first) first = r.envelope;
        else return { ...r, envelope: first };
      }
      return r;
    });
    expect((await c.coordinator.refresh(key.keyId)).epoch).toBe(1);
    await expect(c.coordinator.refresh(key.keyId)).rejects.toMatchObject({
      code: expect.stringMatching(/UNEXPECTED_MESSAGE|BAD_SHARE|DECODE/),
    });
    expect(c.coordinator.key(key.keyId).epoch).toBe(1);
  });
});

describe("the coordinator's key registry with a decoded-record cache of one", () => {
  it('three keys sign in turn, a refresh of one is what every later lookup sees, and an offline signer catches up', async () => {
    const c = await cluster(3, { keyCacheSize: 1 });
    const keys = [];
    for (const suite of ['ed25519', 'secp256k1-tr', 'ed25519'] as SuiteId[])
      keys.push(await c.coordinator.keygen({ suite, threshold: 2 }));
    for (let round = 0; round < 2; round++)
      for (const k of keys) {
        const r = await onlineSign(c, k.suite, k.keyId);
        expect(getSuite(k.suite).verify(r.signature, r.message, k.publicKey)).toBe(true);
      }
    c.link('signer-3', false);
    const target = keys[1]!;
    const refreshed = await c.coordinator.refresh(target.keyId);
    expect(refreshed.epoch).toBe(1);
    expect(c.coordinator.key(target.keyId).epoch).toBe(1); // the cached epoch-0 record was replaced
    // Other keys used in between evict the refreshed record; a lookup decodes the new epoch.
    await onlineSign(c, keys[0]!.suite, keys[0]!.keyId);
    expect(c.coordinator.key(target.keyId).epoch).toBe(1);
    expect(
      c.coordinator
        .keys()
        .map((k) => [k.keyId, k.epoch])
        .sort(),
    ).toEqual(keys.map((k) => [k.keyId, k.keyId === target.keyId ? 1 : 0]).sort());
    c.link('signer-3', true);
    const s3 = c.signers.find((s) => s.id === 'signer-3')!;
    await until(async () => (await s3.key(target.keyId)).epoch === 1, 'signer-3 to catch up');
    const r = await c.coordinator.sign(
      createSignIntent(requester, {
        suite: getSuite(target.suite),
        keyId: target.keyId,
        message: new Uint8Array(32),
        requestId: new Uint8Array(randomBytes(16)),
        notAfter: Date.now() + 60_000,
      }),
      ['signer-3', 'signer-1'],
    );
    expect(r.signers).toContain('signer-3');
    expect(getSuite(target.suite).verify(r.signature, new Uint8Array(32), target.publicKey)).toBe(true);
    expect(() => c.coordinator.key('0123456789abcdef')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
  });
});

describe('scheduled refresh', () => {
  it('refreshes exactly the keys whose epoch is older than the policy age, audits it, and reports keys it could not refresh', async () => {
    let now = Date.now();
    const c = await cluster(3, { clock: () => now });
    const old = await c.coordinator.keygen({ suite: 'ed25519', threshold: 2 });
    now += 8 * 86_400_000;
    const recent = await c.coordinator.keygen({ suite: 'ed25519', threshold: 2 });
    now += 86_400_000;
    const week = 7 * 86_400_000;
    expect(await c.coordinator.refreshDue(week)).toEqual([{ keyId: old.keyId, epoch: 1 }]);
    expect(c.coordinator.key(recent.keyId).epoch).toBe(0);
    // Just refreshed: not due again.
    expect(await c.coordinator.refreshDue(week)).toEqual([]);
    // A key that cannot be refreshed now is reported, audited, and left at its epoch.
    now += 8 * 86_400_000;
    c.link('signer-1', false);
    c.link('signer-2', false);
    const r = await c.coordinator.refreshDue(week);
    expect(r.map((x) => x.keyId).sort()).toEqual([old.keyId, recent.keyId].sort());
    expect(r.every((x) => x.error?.startsWith('UNAVAILABLE'))).toBe(true);
    expect(c.coordinator.key(old.keyId).epoch).toBe(1);
    const audit: { type: string }[] = [];
    for await (const e of c.coordinator.audit.entries()) audit.push(e);
    expect(audit.filter((e) => e.type === 'refresh').length).toBe(1);
    expect(audit.filter((e) => e.type === 'refresh-failed').length).toBe(2);
  });
});

describe('reshare and device replacement', () => {
  it('an abort in the middle of a reshare leaves the previous epoch and roster in force and usable', async () => {
    const c = await cluster(4);
    const key = await c.coordinator.keygen({
      suite: 'ed25519',
      threshold: 2,
      participants: ['signer-1', 'signer-2', 'signer-3'],
    });
    // The joining member fails to apply: nothing is committed, nobody activates anything.
    c.tamper.set('signer-4', (r, t) =>
      t.body === 'lifecycle' && t.lifecycle?.step === 2
        ? {
            taskId: r.taskId,
            body: 'error',
            error: { code: 'BAD_SHARE', message: 'share does not match', culprits: ['signer-1'] },
          }
        : r,
    );
    await expect(
      reshare(c, key.keyId, { threshold: 3, participants: ['signer-1', 'signer-2', 'signer-3', 'signer-4'] }),
    ).rejects.toThrow(/aborted/);
    expect(c.coordinator.key(key.keyId)).toMatchObject({ epoch: 0 });
    expect(c.coordinator.key(key.keyId).key.threshold).toBe(2);
    for (const s of c.signers.slice(0, 3)) expect((await s.key(key.keyId)).epoch).toBe(0);
    await expect(c.signers[3]?.key(key.keyId)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const s = await onlineSign(c, 'ed25519', key.keyId);
    expect(
      getSuite('ed25519').verify(
        s.signature,
        s.message,
        fromHex(toHex(groupPublicKey(c.coordinator.key(key.keyId).key))),
      ),
    ).toBe(true);
  });

  it('2-of-3 → 3-of-5 → 2-of-3 with the same public key; new quorums sign', async () => {
    const c = await cluster(5);
    const key = await c.coordinator.keygen({
      suite: 'secp256k1-tr',
      threshold: 2,
      participants: ['signer-1', 'signer-2', 'signer-3'],
    });
    const pk = groupPublicKey(c.coordinator.key(key.keyId).key);
    const up = await reshare(c, key.keyId, {
      threshold: 3,
      participants: ['signer-1', 'signer-2', 'signer-3', 'signer-4', 'signer-5'],
    });
    expect(up).toMatchObject({
      epoch: 1,
      threshold: 3,
      participants: ['signer-1', 'signer-2', 'signer-3', 'signer-4', 'signer-5'],
    });
    expect(toHex(up.publicKey)).toBe(toHex(pk));
    // The coordinator's participant → keys index follows the roster.
    expect(c.coordinator.keysOf('signer-5').map((k) => k.keyId)).toEqual([key.keyId]);
    for (const drop of ['signer-1', 'signer-2']) c.link(drop, false);
    const s = await onlineSign(c, 'secp256k1-tr', key.keyId);
    expect([...s.signers].sort()).toEqual(['signer-3', 'signer-4', 'signer-5']);
    expect(getSuite('secp256k1-tr').verify(s.signature, s.message, pk)).toBe(true);
    for (const back of ['signer-1', 'signer-2']) c.link(back, true);
    const down = await reshare(c, key.keyId, {
      threshold: 2,
      participants: ['signer-3', 'signer-4', 'signer-5'],
      allowThresholdDecrease: true,
    });
    expect(down).toMatchObject({ epoch: 2, threshold: 2, participants: ['signer-3', 'signer-4', 'signer-5'] });
    expect(c.coordinator.keysOf('signer-1')).toEqual([]);
    expect(c.coordinator.keysOf('signer-4').map((k) => k.keyId)).toEqual([key.keyId]);
    expect(c.coordinator.rosterParticipants()).toEqual(['signer-3', 'signer-4', 'signer-5']);
    // Retired members hold nothing of the key any more.
    await expect(c.signers[0]?.key(key.keyId)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const s2 = await onlineSign(c, 'secp256k1-tr', key.keyId);
    expect(getSuite('secp256k1-tr').verify(s2.signature, s2.message, pk)).toBe(true);
  });

  it("a lost phone is replaced: the new phone signs offline under the same key; the old phone's package and calls are refused", async () => {
    const c = await cluster(3);
    const lost = await device(c, 'phone-lost');
    const key = await lost.keygen(c.url, { suite: 'ed25519', threshold: 2, with: ['signer-1', 'signer-2'] });
    await lost.reserve(c.url, { keyId: key.keyId, count: 2 });
    const stranded = await lost.signOffline({ keyId: key.keyId, message: new Uint8Array(32).fill(7) });
    const fresh = await device(c, 'phone-new');
    await fresh.connect(c.url, { acceptKeygen: true });
    const r = await reshare(c, key.keyId, { threshold: 2, participants: ['phone-new', 'signer-1', 'signer-2'] });
    await c.coordinator.revokeDevice('phone-lost');
    await fresh.disconnect();
    expect(toHex(r.publicKey)).toBe(key.publicKey);
    expect(r.participants).toEqual(['phone-new', 'signer-1', 'signer-2']);
    // The lost phone's package cannot complete (its reservations died with the reshare), and it
    // cannot even reach the gateway any more.
    await expect(c.coordinator.completePackage(stranded.bytes)).rejects.toMatchObject({
      code: expect.stringMatching(/RESERVATION_UNKNOWN|RESERVATION_INVALID|INVALID_ARGUMENT/),
    });
    await expect(lost.sync(c.url)).resolves.toMatchObject({ completed: [] });
    await expect(lost.reserve(c.url, { keyId: key.keyId, count: 1 })).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
    });
    // The new phone reserves and signs offline under the unchanged key.
    await fresh.reserve(c.url, { keyId: key.keyId, count: 1 });
    const p = await fresh.signOffline({ keyId: key.keyId, message: new Uint8Array(32).fill(8) });
    const s = await fresh.sync(c.url);
    expect(s.completed.map((x) => x.packageId)).toEqual([p.packageId]);
    expect(
      getSuite('ed25519').verify(
        fromHex(s.completed[0]?.signature as string),
        new Uint8Array(32).fill(8),
        fromHex(key.publicKey),
      ),
    ).toBe(true);
  });
});

describe('device keygen', () => {
  it('without naming participants, the key is the device and every connected signer node', async () => {
    const c = await cluster(3);
    const phone = await device(c, 'phone-default');
    const k = await phone.keygen(c.url, { suite: 'ed25519', threshold: 2 });
    expect(k.participants).toEqual(['phone-default', 'signer-1', 'signer-2', 'signer-3']);
    expect(
      c.coordinator
        .key(k.keyId)
        .key.roster.filter((r) => r.device)
        .map((r) => r.id),
    ).toEqual(['phone-default']);
  });
});

describe('a device asked to contribute to a reshare', () => {
  it('refuses without pinned operators (POLICY_DENIED, nothing changes); with the operators pinned it checks their approval and contributes', async () => {
    const c = await cluster(3);
    // One node and the phone: the nodes alone are fewer than t, so the phone must contribute.
    const unpinned = await device(c, 'phone-unpinned');
    const key = await unpinned.keygen(c.url, { suite: 'ed25519', threshold: 2, with: ['signer-1'] });
    await unpinned.connect(c.url);
    const e = await reshare(c, key.keyId, {
      threshold: 2,
      participants: ['phone-unpinned', 'signer-1', 'signer-2'],
    }).catch((x: unknown) => x);
    await unpinned.disconnect();
    expect(e).toMatchObject({ code: 'POLICY_DENIED' });
    expect((e as Error).message).toMatch(/phone-unpinned: POLICY_DENIED no operator keys are pinned here/);
    expect(c.coordinator.key(key.keyId).epoch).toBe(0);
    expect((await unpinned.keys())[0]).toMatchObject({ epoch: 0, participants: ['phone-unpinned', 'signer-1'] });

    const pinned = await device(c, 'phone-pinned', { operators });
    const key2 = await pinned.keygen(c.url, { suite: 'ed25519', threshold: 2, with: ['signer-1'] });
    await pinned.connect(c.url);
    // An authorisation of the coordinator's own making is refused by the phone too.
    const forged = await c.coordinator
      .reshare(key2.keyId, {
        threshold: 2,
        participants: ['phone-pinned', 'signer-1', 'signer-2'],
        authorisation: reshareAuthorisation(
          c.coordinator,
          key2.keyId,
          { threshold: 2, participants: ['phone-pinned', 'signer-1', 'signer-2'] },
          [ParticipantIdentity.generate('not-an-operator')],
        ),
      })
      .catch((x: unknown) => x);
    expect(forged).toMatchObject({ code: 'POLICY_DENIED' });
    const r = await reshare(c, key2.keyId, { threshold: 2, participants: ['phone-pinned', 'signer-1', 'signer-2'] });
    await pinned.disconnect();
    expect(r).toMatchObject({ epoch: 1, participants: ['phone-pinned', 'signer-1', 'signer-2'] });
    expect((await pinned.keys())[0]).toMatchObject({
      epoch: 1,
      participants: ['phone-pinned', 'signer-1', 'signer-2'],
    });
  });
});

describe('HD child keys across the cluster', () => {
  for (const suite of ['secp256k1-tr', 'ed25519', 'secp256k1'] as SuiteId[]) {
    it(`${suite}: signatures at m/0/5 verify under the derived key (plain verifier), also after a refresh`, async () => {
      const c = await cluster(3);
      const key = await c.coordinator.keygen({ suite, threshold: 2 });
      const child = deriveKey(c.coordinator.key(key.keyId).key, 'm/0/5');
      for (let round = 0; round < 2; round++) {
        const s = await onlineSign(c, suite, key.keyId, 'm/0/5');
        expect(toHex(s.publicKey)).toBe(toHex(child.publicKey));
        expect(getSuite(suite).verify(s.signature, s.message, child.publicKey)).toBe(true);
        expect(getSuite(suite).verify(s.signature, s.message, key.publicKey)).toBe(false);
        await c.coordinator.refresh(key.keyId);
        // The child key is a function of the public key only: unchanged by the refresh.
        expect(toHex(deriveKey(c.coordinator.key(key.keyId).key, 'm/0/5').publicKey)).toBe(toHex(child.publicKey));
      }
    });
  }
});

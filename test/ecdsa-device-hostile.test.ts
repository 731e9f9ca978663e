/**
 * A device's ECDSA presignatures against a hostile coordinator (issue "Threshold ECDSA"): what the
 * phone and a co-signer do with messages the coordinator sends unasked, twice, or made up. The
 * phone acts only for its own reserve call; a co-signer gives its partial of a device's
 * presignature only on the device's signed package, once, and a refused request never erases the
 * reservation. Real gateway on loopback, real signer engines on LevelDB, the phone's real SDK.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ParticipantIdentity,
  createSignIntent,
  decodeMessage,
  encodeMessage,
  decodeIdentityRecord,
  decodeKeyRecord,
  fromHex,
  getSuite,
  toHex,
  type LinkResult,
  type LinkTask,
} from '@tessera/core';
import {
  createEcdsaPackage,
  encodeEcdsaSignRequest,
  keyView,
  openEcdsaPackage,
  type EcdsaKeyView,
} from '@tessera/ecdsa';
import { AuditLog } from '@tessera/store';
import { Device, decryptBackup, fetchTransport } from '@tessera/device';
import { cleanup, closers, deviceCluster, enrolled, tempDir, type Cluster } from './device-harness.js';

afterAll(cleanup);
const suite = getSuite('ecdsa-secp256k1');
const PASSWORD = 'correct horse battery staple';

async function phoneKey(c: Cluster, id: string) {
  const { device } = await enrolled(c, id);
  const info = await device.keygen(c.url, { suite: 'ecdsa-secp256k1', threshold: 2, with: ['signer-1', 'signer-2'] });
  const rec = decodeKeyRecord(await device.keyRecord(info.keyId));
  const view = keyView(rec);
  return { device, info, view };
}

/** The phone's identity, through its own encrypted backup (what a thief of both would hold). */
async function identityOf(device: Device): Promise<ParticipantIdentity> {
  const plain = JSON.parse(
    new TextDecoder().decode(await decryptBackup(await device.exportBackup(PASSWORD, { cost: 'test' }), PASSWORD)),
  ) as { identity: string };
  return decodeIdentityRecord(fromHex(plain.identity));
}

let taskId = 1_000_000;
/** A task sent to a signer engine straight, as a hostile coordinator would. */
async function toSigner(c: Cluster, i: number, task: Omit<LinkTask, 'taskId'>): Promise<LinkResult> {
  return (c.signers[i] as NonNullable<(typeof c.signers)[number]>).handle({ ...task, taskId: ++taskId } as LinkTask);
}

describe("a device's ECDSA presignatures and a hostile coordinator", () => {
  it('a reserve answer that repeats a presignature, or names one the phone did not draw, keeps none of its slots', async () => {
    const c = await deviceCluster(3);
    // The phone, with a transport that lets this test rewrite the cluster's reserve answer.
    let rewrite: ((b: Uint8Array) => Uint8Array) | undefined;
    const dir = tempDir();
    const device = await Device.open({
      location: dir,
      storageKey: new Uint8Array(randomBytes(32)),
      transport: async (r) => {
        const res = await fetchTransport(r);
        return r.url.endsWith('/reserve') && rewrite && res.status === 200 ? { ...res, body: rewrite(res.body) } : res;
      },
    });
    closers.push(() => device.close());
    await device.init('phone-h0');
    const { token } = await c.coordinator.issueEnrolmentToken();
    await device.enrol(c.url, token);
    const info = await device.keygen(c.url, { suite: 'ecdsa-secp256k1', threshold: 2, with: ['signer-1', 'signer-2'] });
    const allowance = async () => (await device.status()).keys[0]?.allowance;
    // (1) The same presignature twice: two slots would sign twice on one presignature.
    rewrite = (b) => {
      const r = decodeMessage('DeviceReserved', b);
      return encodeMessage('DeviceReserved', { ...r, slots: [r.slots[0]!, ...r.slots] });
    };
    await expect(device.reserve(c.url, { keyId: info.keyId, count: 2 })).rejects.toMatchObject({
      code: 'RESERVATION_INVALID',
    });
    expect(await allowance()).toBe(0);
    // (2) A slot without statements.
    rewrite = (b) => {
      const r = decodeMessage('DeviceReserved', b);
      return encodeMessage('DeviceReserved', { ...r, slots: [{ reservations: [] }] });
    };
    await expect(device.reserve(c.url, { keyId: info.keyId, count: 1 })).rejects.toMatchObject({
      code: 'RESERVATION_INVALID',
    });
    // (3) An honest answer: the slots are kept, each presignature once.
    rewrite = undefined;
    expect((await device.reserve(c.url, { keyId: info.keyId, count: 2 })).added).toBe(2);
    expect(await allowance()).toBe(2);
  }, 120_000);

  it("a phone's presignatures expire: it stops signing on them before its co-signer drops them, and the co-signer's cap frees up", async () => {
    let now = Date.now();
    const clock = () => now;
    const c = await deviceCluster(3, { clock, coordinatorClock: clock, gatewayClock: clock, maxReservations: 2 });
    const { device } = await enrolled(c, 'phone-x', { clock });
    const info = await device.keygen(c.url, { suite: 'ecdsa-secp256k1', threshold: 2, with: ['signer-1', 'signer-2'] });
    const reserve = (count: number) => device.reserve(c.url, { keyId: info.keyId, count, cosigners: ['signer-1'] });
    expect((await reserve(2)).added).toBe(2);
    // The co-signer's cap for this device: two presignatures held.
    await expect(reserve(1)).rejects.toMatchObject({ code: 'RESOURCE_EXHAUSTED' });
    const p = await device.signOffline({ keyId: info.keyId, message: new Uint8Array(randomBytes(32)) });
    // Eight days later (the co-signer keeps a device's presignature seven): the phone's last slot
    // is dropped, not signed on; the package signed in time is refused as expired, not completed.
    now += 8 * 24 * 3600_000;
    expect((await device.status()).keys[0]?.allowance).toBe(0);
    await expect(
      device.signOffline({ keyId: info.keyId, message: new Uint8Array(randomBytes(32)) }),
    ).rejects.toMatchObject({ code: 'NO_ALLOWANCE' });
    const s = await device.sync(c.url);
    expect(s.failed).toEqual([expect.objectContaining({ packageId: p.packageId, code: 'RESERVATION_EXPIRED' })]);
    // The expired ones no longer count: the device reserves again.
    expect((await reserve(2)).added).toBe(2);
  }, 120_000);

  // The next two share one cluster and one phone's key (a keygen's setup is seconds of base OTs);
  // the first leaves nothing behind (it checks so).
  describe('one phone', () => {
    let c: Cluster;
    let device: Device;
    let view: EcdsaKeyView;
    beforeAll(async () => {
      c = await deviceCluster(3);
      ({ device, view } = await phoneKey(c, 'phone-h1'));
    }, 120_000);

    it('the phone presigns only for its own reserve call, never replaces its pairs, and refuses steps out of order', async () => {
      await device.connect(c.url);
      try {
        const link = c.coordinator.participant('phone-h1');
        expect(link?.device).toBe(true);
        const ask = (ecdsa: NonNullable<LinkTask['ecdsa']>) =>
          (link as NonNullable<typeof link>).call({ body: 'ecdsa', ecdsa }, 30_000);
        const session = new Uint8Array(randomBytes(32));
        const presign1 = {
          kind: 'presign',
          keyId: view.keyId,
          step: 1,
          session,
          signers: ['phone-h1', 'signer-1'],
          messages: [],
        };
        // Unasked: no reserve call of the phone's runs.
        expect((await ask(presign1)).error?.code).toBe('POLICY_DENIED');
        // A second setup of the key's roster: its pairs are never replaced on the coordinator's word.
        const setup = await ask({ kind: 'setup', keyId: view.keyId, step: 1, session, signers: [], messages: [] });
        expect(setup.error?.code).toBe('KEY_EXISTS');
        // Step 2 of a session the phone never started.
        const step2 = await ask({ ...presign1, step: 2 });
        expect(step2.error?.code).toBe('INVALID_STATE');
        // Nothing of these became a reservation.
        expect((await device.status()).keys[0]?.allowance).toBe(0);
      } finally {
        await device.disconnect();
      }
    }, 120_000);

    it("a co-signer completes a device's presignature only on its signed package, once; refusals do not erase it", async () => {
      expect((await device.reserve(c.url, { keyId: view.keyId, count: 2, cosigners: ['signer-1'] })).added).toBe(2);
      const d1 = new Uint8Array(randomBytes(32));
      const p1 = await device.signOffline({ keyId: view.keyId, message: d1 });
      const pkg = openEcdsaPackage(view, p1.bytes);
      const request = (intent: Uint8Array, over: { session?: Uint8Array; requestId?: Uint8Array } = {}) =>
        encodeEcdsaSignRequest({
          keyId: view.keyId,
          epoch: view.epoch,
          intent,
          session: over.session ?? pkg.session,
          signers: pkg.signers,
          requestId: over.requestId ?? fromHex(pkg.packageId),
        });
      const sign = (req: Uint8Array) => toSigner(c, 0, { body: 'ecdsaSign', ecdsaSign: req });

      // (a) A package made up in the phone's name (signed by another key) for that presignature.
      const stranger = ParticipantIdentity.generate('phone-h1');
      const madeUp = createEcdsaPackage(stranger, view, { ...pkg, message: new Uint8Array(randomBytes(32)) });
      expect((await sign(request(madeUp.bytes))).error?.code).toBe('BAD_SIGNATURE');
      // (b) An online request (a requester's intent) naming the phone's presignature.
      const requester = ParticipantIdentity.generate('wallet-api');
      const intent = createSignIntent(requester, {
        suite,
        keyId: view.keyId,
        message: new Uint8Array(randomBytes(32)),
        requestId: new Uint8Array(randomBytes(16)),
        notAfter: Date.now() + 60_000,
      });
      const online = await sign(request(intent));
      expect(online.error?.code).toBe('POLICY_DENIED');
      expect(online.error?.message).toMatch(/a device's reservation/);
      // (c) The genuine package, the request naming another presignature.
      expect((await sign(request(p1.bytes, { session: new Uint8Array(randomBytes(32)) }))).error?.code).toBe(
        'INVALID_ARGUMENT',
      );
      // The reservation survived all three: the phone's package completes.
      const s = await device.sync(c.url);
      expect(s.failed).toEqual([]);
      expect(s.completed.map((x) => x.packageId)).toEqual([p1.packageId]);
      const sig = fromHex(s.completed[0]?.signature as string);
      expect(suite.verify(sig, d1, view.publicKey)).toBe(true);

      // (d) The same request again (a coordinator's retry): the same partial, nothing new spent.
      const first = await sign(request(p1.bytes));
      const second = await sign(request(p1.bytes));
      expect(first.body).toBe('envelope');
      expect(toHex(second.envelope as Uint8Array)).toBe(toHex(first.envelope as Uint8Array));
      // (e) Another request for the same package (another id): the presignature is spent.
      expect((await sign(request(p1.bytes, { requestId: new Uint8Array(randomBytes(16)) }))).error?.code).toBe(
        'RESERVATION_USED',
      );
      // (f) A second package on the same presignature, signed with the phone's own key (a phone
      // whose store was copied, or a thief with its identity): refused by the coordinator and by the
      // co-signer, and nothing is signed for it.
      const me = await identityOf(device);
      const twin = createEcdsaPackage(me, view, { ...pkg, message: new Uint8Array(randomBytes(32)) });
      await expect(c.coordinator.completePackage(twin.bytes)).rejects.toMatchObject({ code: 'RESERVATION_USED' });
      expect((await sign(request(twin.bytes, { requestId: fromHex(twin.packageId) }))).error?.code).toBe(
        'RESERVATION_USED',
      );

      // Two deliveries of one package at once (the phone and a merchant): one completion, one result.
      const d2 = new Uint8Array(randomBytes(32));
      const p2 = await device.signOffline({ keyId: view.keyId, message: d2 });
      const [x, y] = await Promise.all([
        c.coordinator.completePackage(p2.bytes),
        c.coordinator.completePackage(p2.bytes),
      ]);
      expect(toHex(x.signature)).toBe(toHex(y.signature));
      expect([x.alreadyCompleted, y.alreadyCompleted].sort()).toEqual([false, true]);
      expect(suite.verify(x.signature, d2, view.publicKey)).toBe(true);

      // The co-signer's audit: exactly the two packages completed, and each refusal recorded.
      const entries = [];
      for await (const e of new AuditLog(c.stores[0] as NonNullable<(typeof c.stores)[number]>).entries())
        entries.push(e);
      expect(entries.filter((e) => e.type === 'offline-complete').map((e) => e.data.package)).toEqual([
        p1.packageId,
        p2.packageId,
      ]);
      expect(entries.filter((e) => e.type === 'refusal').map((e) => e.data.code)).toEqual(
        expect.arrayContaining(['BAD_SIGNATURE', 'POLICY_DENIED', 'INVALID_ARGUMENT', 'RESERVATION_USED']),
      );
    }, 180_000);
  });
});

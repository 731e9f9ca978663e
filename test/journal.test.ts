/**
 * The device's event journal and reconciliation report, against the real device gateway and
 * signer engines (device-harness.ts): every allowance, offline payment, completion, refusal,
 * expiry and compensation is journaled in order, hash-chained, in the same write as the change;
 * the report settles each payment and names the refused one that needs compensation; a journal
 * edited or cut on disk stops the next sync before anything is delivered.
 */
import { cpSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Level } from 'level';
import { afterAll, describe, expect, it } from 'vitest';
import { Device, type DeviceError } from '@tessera/device';
import { cleanup, closers, deviceCluster, enrolled, tempDir } from './device-harness.js';

afterAll(cleanup);

const msg = () => new Uint8Array(randomBytes(32));

async function failure(f: () => Promise<unknown>): Promise<DeviceError> {
  try {
    await f();
  } catch (e) {
    return e as DeviceError;
  }
  throw new Error('expected a failure');
}

describe('device journal and reconciliation', () => {
  it('journals each step in order, chained; the report settles, refuses with why, releases expired allowance; compensation is recorded once', async () => {
    let signerSkew = 0;
    let deviceSkew = 0;
    const c = await deviceCluster(3, { clock: () => Date.now() + signerSkew });
    const { device } = await enrolled(c, 'phone-journal', { clock: () => Date.now() + deviceSkew });
    const key = await device.keygen(c.url, { suite: 'ed25519', threshold: 2, with: ['signer-1', 'signer-2'] });
    await device.reserve(c.url, { keyId: key.keyId, count: 3, ttlMs: 600_000 });
    const p1 = await device.signOffline({ keyId: key.keyId, message: msg() });
    expect((await device.sync(c.url)).completed.map((x) => x.packageId)).toEqual([p1.packageId]);
    // The co-signer's clock runs past the reservation's expiry: the next package is refused for good.
    const p2 = await device.signOffline({ keyId: key.keyId, message: msg() });
    signerSkew = 3_600_000;
    const s2 = await device.sync(c.url);
    expect(s2.failed).toEqual([expect.objectContaining({ packageId: p2.packageId, code: 'RESERVATION_EXPIRED' })]);
    // The phone's clock passes the expiry too: the last slot lapses unused.
    deviceSkew = 3_600_000;
    expect((await failure(() => device.signOffline({ keyId: key.keyId, message: msg() }))).code).toBe('NO_ALLOWANCE');

    const journal = await device.journal();
    expect(journal.map((e) => e.kind)).toEqual(['reserved', 'signed', 'completed', 'signed', 'refused', 'expired']);
    expect(journal.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const [i, e] of journal.entries()) if (i > 0) expect(e.prev).toBe(journal[i - 1]?.hash);
    expect(journal[0]).toMatchObject({ keyId: key.keyId, count: 3 });
    expect(journal[2]).toMatchObject({ packageId: p1.packageId });
    expect(journal[4]).toMatchObject({ packageId: p2.packageId, code: 'RESERVATION_EXPIRED' });
    expect(journal[5]).toMatchObject({ keyId: key.keyId, count: 1 });

    const report = await device.reconcile();
    expect(report.settled.map((x) => x.packageId)).toEqual([p1.packageId]);
    expect(report.settled[0]?.signature).toMatch(/^[0-9a-f]{128}$/);
    expect(report.refused).toEqual([
      expect.objectContaining({ packageId: p2.packageId, code: 'RESERVATION_EXPIRED', compensated: false }),
    ]);
    expect(report.needsCompensation.map((x) => x.packageId)).toEqual([p2.packageId]);
    expect(report.expired).toEqual([expect.objectContaining({ keyId: key.keyId, count: 1 })]);
    expect(report.pending).toEqual([]);
    expect(report.discrepancies).toEqual([]);
    expect(report.allowance[key.keyId]).toEqual({ reserved: 3, signed: 2, expired: 1 });
    expect(report.journal).toMatchObject({ entries: 6, head: journal[5]?.hash, verified: true });
    // The cluster's record of this device's packages agrees: one completed, one refused, same code.
    deviceSkew = 0;
    const compared = await device.reconcile(c.url);
    expect(compared.cluster).toEqual({ compared: true, records: 2, clusterAhead: [], mismatches: [] });
    expect(await c.coordinator.devicePackages('phone-journal')).toMatchObject({
      packages: [
        { packageId: p1.packageId, keyId: key.keyId, state: 'completed', code: '' },
        { packageId: p2.packageId, keyId: key.keyId, state: 'refused', code: 'RESERVATION_EXPIRED' },
      ],
      truncated: false,
    });

    expect(await device.compensate(p2.packageId, 'refunded to the card')).toMatchObject({ already: false });
    expect(await device.compensate(p2.packageId)).toMatchObject({ already: true });
    expect((await failure(() => device.compensate(p1.packageId))).code).toBe('INVALID_ARGUMENT');
    const after = await device.reconcile();
    expect(after.needsCompensation).toEqual([]);
    expect(after.refused[0]?.compensated).toBe(true);
    expect((await device.journal()).map((e) => e.kind).slice(-1)).toEqual(['compensated']);
  });

  it("compared with the cluster's record: a payment a merchant delivered is ahead there; a store rolled back to an older copy shows a mismatch", async () => {
    const c = await deviceCluster(3);
    const dir = tempDir();
    const storageKey = new Uint8Array(randomBytes(32));
    const device = await Device.open({ location: dir, storageKey });
    await device.init('phone-compare');
    const { token } = await c.coordinator.issueEnrolmentToken();
    await device.enrol(c.url, token);
    const key = await device.keygen(c.url, { suite: 'ed25519', threshold: 2, with: ['signer-1', 'signer-2'] });
    await device.reserve(c.url, { keyId: key.keyId, count: 2 });
    await device.close();
    const before = tempDir();
    cpSync(dir, before, { recursive: true }); // the store as it was before the payment
    const phone = await Device.open({ location: dir, storageKey });
    closers.push(() => phone.close());
    const pkg = await phone.signOffline({ keyId: key.keyId, message: msg() });
    // The merchant delivers the package before the phone is back online.
    await c.coordinator.completePackage(pkg.bytes);
    const ahead = await phone.reconcile(c.url);
    expect(ahead.pending.map((p) => p.packageId)).toEqual([pkg.packageId]);
    expect(ahead.cluster).toEqual({
      compared: true,
      records: 1,
      clusterAhead: [{ packageId: pkg.packageId, cluster: 'completed' }],
      mismatches: [],
    });
    await phone.sync(c.url);
    expect((await phone.reconcile(c.url)).cluster).toMatchObject({ clusterAhead: [], mismatches: [] });
    // The older copy of the store never saw that payment: the cluster's record shows it.
    const old = await Device.open({ location: before, storageKey });
    closers.push(() => old.close());
    expect((await old.reconcile(c.url)).cluster).toMatchObject({
      mismatches: [{ packageId: pkg.packageId, device: 'absent', cluster: 'completed' }],
    });
    // With the cluster out of reach the report still comes, saying it was not compared.
    expect((await phone.reconcile('http://127.0.0.1:1')).cluster).toMatchObject({ compared: false });
  });

  it('a journal cut or edited on disk: JOURNAL_TAMPERED, and the sync delivers nothing', async () => {
    const c = await deviceCluster(3);
    const dir = tempDir();
    const storageKey = new Uint8Array(randomBytes(32));
    const device = await Device.open({ location: dir, storageKey });
    await device.init('phone-tamper');
    const { token } = await c.coordinator.issueEnrolmentToken();
    await device.enrol(c.url, token);
    const key = await device.keygen(c.url, { suite: 'ed25519', threshold: 2, with: ['signer-1', 'signer-2'] });
    await device.reserve(c.url, { keyId: key.keyId, count: 2 });
    const pkg = await device.signOffline({ keyId: key.keyId, message: msg() });
    await device.close();

    const edits: [string, (db: Level<string, Uint8Array>) => Promise<void>][] = [
      ['an entry removed', (db) => db.del('journal/000000000001')],
      [
        'an entry replaced by another (sealed under its own key)',
        async (db) => db.put('journal/000000000001', (await db.get('journal/000000000002')) as Uint8Array),
      ],
      [
        'a sealed byte flipped',
        async (db) => {
          const v = (await db.get('journal/000000000002')) as Uint8Array;
          v[v.length - 1] = (v[v.length - 1] as number) ^ 1;
          await db.put('journal/000000000002', v);
        },
      ],
    ];
    for (const [what, edit] of edits) {
      const copy = tempDir();
      cpSync(dir, copy, { recursive: true });
      const db = new Level<string, Uint8Array>(copy, { keyEncoding: 'utf8', valueEncoding: 'view' });
      await db.open();
      await edit(db);
      await db.close();
      const d = await Device.open({ location: copy, storageKey });
      closers.push(() => d.close());
      const e = await failure(() => d.sync(c.url));
      expect(e.code, what).toBe('JOURNAL_TAMPERED');
      expect(
        (await d.queue()).map((q) => q.state),
        what,
      ).toEqual(['pending']);
      expect((await failure(() => d.reconcile())).code, what).toBe('JOURNAL_TAMPERED');
    }
    // The untouched store syncs: the package was never delivered by the refused syncs.
    const d = await Device.open({ location: dir, storageKey });
    closers.push(() => d.close());
    const s = await d.sync(c.url);
    expect(s.completed.map((x) => x.packageId)).toEqual([pkg.packageId]);
    expect((await d.journal()).map((e) => e.kind)).toEqual(['reserved', 'signed', 'completed']);
  });
});

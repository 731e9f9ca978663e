/** Devices: one-time enrolment tokens, admissions, revocation (on the operators' word to real signers). */
import { describe, expect, it } from 'vitest';
import { ParticipantIdentity, approveDevice, encodeAuthorisation, type Rng } from '@tessera/core';
import { randomBytes } from 'node:crypto';
import { AuditLog, type SealedStore } from '@tessera/store';
import { approved, operator } from '../../../test/authority.js';
import { DeviceService } from '../src/devices.js';
import { KeyRegistry } from '../src/key-registry.js';
import { layout } from '../src/layout.js';
import { Participants } from '../src/participants.js';
import type { ParticipantHandle } from '../src/types.js';
import { auditLog, signers } from './fixture.js';

async function service(linked: ParticipantHandle[] = [], existing?: SealedStore) {
  let now = 1_000_000;
  const { store, audit } = existing ? { store: existing, audit: new AuditLog(existing) } : await auditLog();
  const participants = new Participants(() => now);
  for (const h of linked) participants.link(h);
  const unlinked: string[] = [];
  const devices = new DeviceService({
    store,
    audit,
    clock: () => now,
    rng: ((k = 32) => new Uint8Array(randomBytes(k))) as Rng,
    timeout: 5_000,
    participants,
    registry: new KeyRegistry(store),
    unlink: (id, h) => {
      unlinked.push(id);
      participants.unlink(id, h);
    },
    onEvent: () => {},
  });
  return { store, audit, participants, devices, unlinked, advance: (ms: number) => (now += ms) };
}

/** The operator's approved revocation of `device`. */
function revocation(device: string): Uint8Array {
  return approved(
    encodeAuthorisation({
      keyId: '*',
      operation: 'revoke',
      fromEpoch: 0,
      anyEpoch: false,
      newThreshold: 0,
      newParticipants: [],
      allowThresholdDecrease: false,
      allowUnpinned: [],
      revoke: [device],
      notAfter: Date.now() + 60_000,
    }),
  );
}

const phone = (id = 'phone-1') => ParticipantIdentity.generate(id).public;

describe('DeviceService', () => {
  it('a token enrols once; unknown, used and expired tokens are UNAUTHENTICATED and change nothing', async () => {
    const c = await service();
    const { token } = await c.devices.issueToken(60_000, 'shop 1');
    await expect(c.devices.enrol('tet1_nope', phone())).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    const d = phone();
    await c.devices.enrol(token, d);
    expect(c.devices.list()).toEqual(['phone-1']);
    expect(c.participants.isKnown('phone-1')).toBe(true);
    await expect(c.devices.enrol(token, phone('phone-2'))).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    const late = await c.devices.issueToken(1_000);
    c.advance(1_001);
    await expect(c.devices.enrol(late.token, phone('phone-3'))).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(c.devices.list()).toEqual(['phone-1']);
    for (const ttl of [0, 999, 31 * 86_400_000, 1.5])
      await expect(c.devices.issueToken(ttl)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });

    // Loaded again from the store, the enrolment is still there.
    const reloaded = await service([], c.store);
    await reloaded.devices.load();
    expect(reloaded.devices.list()).toEqual(['phone-1']);
    expect(reloaded.participants.isKnown('phone-1')).toBe(true);
  });

  it('an id a signer node holds, or a device id with another key, cannot be enrolled', async () => {
    const s = await signers(1);
    const c = await service(s.handles);
    const t1 = await c.devices.issueToken();
    await expect(c.devices.enrol(t1.token, phone('signer-1'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const t2 = await c.devices.issueToken();
    await c.devices.enrol(t2.token, phone('phone-1'));
    const t3 = await c.devices.issueToken();
    await expect(c.devices.enrol(t3.token, phone('phone-1'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('admissions: only operator approvals of the device as enrolled are kept, without duplicates', async () => {
    const c = await service();
    const d = phone();
    await c.devices.enrol((await c.devices.issueToken()).token, d);
    const good = approveDevice(operator, d);
    const other = approveDevice(operator, phone('phone-2'));
    await expect(c.devices.admit('phone-1', [other])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(c.devices.admit('phone-1', [new Uint8Array([1, 2, 3])])).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(await c.devices.admissions('phone-1')).toEqual([]);
    await c.devices.admit('phone-1', [good]);
    const r = await c.devices.admit('phone-1', [good]);
    expect(r.approvals).toHaveLength(1);
    expect((await c.devices.admission('phone-1')).approvals).toEqual([good]);
    await expect(c.devices.admission('phone-9')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('revocation on the operators word reaches the linked signers, ends the link and the enrolment for good', async () => {
    const s = await signers(2);
    const c = await service(s.handles);
    const d = phone();
    await c.devices.enrol((await c.devices.issueToken()).token, d);
    c.participants.link({
      info: { ...d, device: true },
      device: true,
      connectedSince: 0,
      call: async () => ({ taskId: 0, body: 'ok' }),
    });
    const notRevoke = revocation('phone-2');
    await expect(c.devices.revokeWithOperators('phone-1', notRevoke)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(c.devices.revokeWithOperators('phone-1', new Uint8Array([9]))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(c.devices.has('phone-1')).toBe(true);
    const revoke = revocation('phone-1');
    const r = await c.devices.revokeWithOperators('phone-1', revoke);
    expect(r).toEqual({ signers: ['signer-1', 'signer-2'], refused: [] });
    expect(c.devices.has('phone-1')).toBe(false);
    expect(c.unlinked).toEqual(['phone-1']);
    expect(await c.store.get(layout.revocation(revoke))).toEqual(revoke);
    // The id is never enrolled again, even with a fresh token.
    await expect(c.devices.enrol((await c.devices.issueToken()).token, d)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    // A node that links later is handed the stored revocation.
    const later = await signers(1);
    await c.devices.sendRevocations(later.handles[0] as ParticipantHandle);
    expect(later.sent.get('signer-1')).toEqual(['revoke']);
  });
});

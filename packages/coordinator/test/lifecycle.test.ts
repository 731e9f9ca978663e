/**
 * Refresh, reshare, commit, retirement and catch-up against real signer engines: the public key
 * never changes, every new epoch signs (checked with the plain verifier), a contribution replayed
 * from an earlier session names its sender and changes nothing, a participant that was offline
 * catches up from the stored session, and authorisations are prepared only for what exists.
 */
import { LifecycleStep, getSuite, type LinkResult } from '@tessera/core';
import { describe, expect, it } from 'vitest';
import { approved } from '../../../test/authority.js';
import { layout } from '../src/layout.js';
import { intent, services, signers } from './fixture.js';

const msg = (s: string) => new TextEncoder().encode(s);

async function auditTypes(c: Awaited<ReturnType<typeof services>>): Promise<string[]> {
  const out: string[] = [];
  for await (const e of c.audit.entries()) out.push(e.type);
  return out;
}

describe('LifecycleService', () => {
  it('refresh: a new epoch, the same public key, and the new shares sign', async () => {
    const s = await signers(3);
    const c = await services(s);
    const k = await c.keygen.keygen({ suite: 'ed25519', threshold: 2 });
    const r = await c.lifecycle.refresh(k.keyId);
    expect(r.epoch).toBe(1);
    expect(r.publicKey).toEqual(k.publicKey);
    expect(c.registry.summary(k.keyId)?.epoch).toBe(1);
    // Every pair of the three signs in the new epoch.
    for (const pair of [
      ['signer-1', 'signer-2'],
      ['signer-2', 'signer-3'],
      ['signer-1', 'signer-3'],
    ]) {
      const m = msg(`after refresh ${pair.join('+')}`);
      const out = await c.signing.sign(intent(s, 'ed25519', k.keyId, m), pair);
      expect(out.signers.sort()).toEqual(pair);
      expect(getSuite('ed25519').verify(out.signature, m, k.publicKey)).toBe(true);
    }
    expect(await auditTypes(c)).toContain('refresh');
    expect((await c.audit.verify()).ok).toBe(true);
  });

  it('a contribution replayed from an earlier session names its sender; the epoch stays and everyone is told to abort', async () => {
    const s = await signers(3);
    const c = await services(s);
    const k = await c.keygen.keygen({ suite: 'secp256k1', threshold: 2 });
    let stash: LinkResult | undefined;
    s.tamper.set('signer-2', (r, task) => {
      if (task.body !== 'lifecycle' || task.lifecycle?.step !== LifecycleStep.CONTRIBUTE) return r;
      if (!stash) {
        stash = r;
        return r;
      }
      return { ...stash, taskId: r.taskId };
    });
    await c.lifecycle.refresh(k.keyId);
    const aborted = new Set<string>();
    for (const id of ['signer-1', 'signer-3'])
      s.tamper.set(id, (r, task) => {
        if (task.lifecycle?.step === LifecycleStep.ABORT) aborted.add(id);
        return r;
      });
    await expect(c.lifecycle.refresh(k.keyId)).rejects.toMatchObject({
      code: 'UNEXPECTED_MESSAGE',
      culprits: ['signer-2'],
    });
    expect(c.registry.summary(k.keyId)?.epoch).toBe(1);
    expect(c.events).toContainEqual(expect.objectContaining({ type: 'culprit', participant: 'signer-2' }));
    await new Promise((r) => setTimeout(r, 50)); // the aborts are sent without waiting for answers
    expect([...aborted].sort()).toEqual(['signer-1', 'signer-3']);
    // The epoch in force still signs.
    s.tamper.clear();
    const m = msg('epoch 1 still in force');
    const out = await c.signing.sign(intent(s, 'secp256k1', k.keyId, m));
    expect(getSuite('secp256k1').verify(out.signature, m, k.publicKey)).toBe(true);
  });

  it('a participant offline during a refresh catches up when it links again, and then signs', async () => {
    const s = await signers(3);
    const c = await services(s);
    const k = await c.keygen.keygen({ suite: 'ed25519', threshold: 2 });
    const third = s.handles[2];
    if (!third) throw new Error('three signers');
    c.participants.unlink('signer-3');
    expect((await c.lifecycle.refresh(k.keyId)).epoch).toBe(1);
    expect(await c.store.get(layout.lifecycle(k.keyId, 1))).toBeInstanceOf(Uint8Array);
    c.participants.link(third);
    await c.lifecycle.catchUp(third);
    expect(await auditTypes(c)).toContain('lifecycle-catch-up');
    const m = msg('signer-3 in epoch 1');
    s.down.add('signer-1');
    const out = await c.signing.sign(intent(s, 'ed25519', k.keyId, m), ['signer-2', 'signer-3']);
    expect(out.signers.sort()).toEqual(['signer-2', 'signer-3']);
    expect(getSuite('ed25519').verify(out.signature, m, k.publicKey)).toBe(true);
  });

  it('a refresh with fewer than t linked participants is refused before any task is sent', async () => {
    const s = await signers(2);
    const c = await services(s);
    const k = await c.keygen.keygen({ suite: 'ed25519', threshold: 2 });
    c.participants.unlink('signer-2');
    s.sent.clear();
    await expect(c.lifecycle.refresh(k.keyId)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect([...s.sent.values()].flat()).toEqual([]);
    expect(c.registry.summary(k.keyId)?.epoch).toBe(0);
  });

  it('reshare 2-of-3 → 3-of-3 with the operators’ approval: same public key, and two signers are no longer enough', async () => {
    const s = await signers(3);
    const c = await services(s);
    const k = await c.keygen.keygen({ suite: 'p256', threshold: 2 });
    const participants = ['signer-1', 'signer-2', 'signer-3'];
    const authorisation = approved(
      c.lifecycle.prepare({ keyId: k.keyId, operation: 'reshare', threshold: 3, participants }),
    );
    const r = await c.lifecycle.reshare(k.keyId, { threshold: 3, participants, authorisation });
    expect(r).toMatchObject({ epoch: 1, threshold: 3, publicKey: k.publicKey });
    const m = msg('three of three');
    const out = await c.signing.sign(intent(s, 'p256', k.keyId, m));
    expect(out.signers.sort()).toEqual(participants);
    expect(getSuite('p256').verify(out.signature, m, k.publicKey)).toBe(true);
    s.down.add('signer-3');
    await expect(c.signing.sign(intent(s, 'p256', k.keyId, msg('two are not enough')))).rejects.toBeDefined();
  });

  it('a reshare without the operators’ approval is refused by the signers and changes nothing', async () => {
    const s = await signers(3);
    const c = await services(s);
    const k = await c.keygen.keygen({ suite: 'ed25519', threshold: 2 });
    const err = await c.lifecycle.reshare(k.keyId, { threshold: 2, participants: ['signer-1', 'signer-2'] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: expect.stringMatching(/POLICY_DENIED|UNAUTHENTICATED/) });
    expect(c.registry.summary(k.keyId)).toMatchObject({ epoch: 0, threshold: 2 });
    const m = msg('still three holders');
    const out = await c.signing.sign(intent(s, 'ed25519', k.keyId, m), ['signer-3', 'signer-1']);
    expect(getSuite('ed25519').verify(out.signature, m, k.publicKey)).toBe(true);
  });

  it('refreshDue refreshes only keys older than the age given', async () => {
    const s = await signers(2);
    const c = await services(s);
    const k = await c.keygen.keygen({ suite: 'ed25519', threshold: 2 });
    expect(await c.lifecycle.refreshDue(3600_000)).toEqual([]);
    expect(await c.lifecycle.refreshDue(0)).toEqual([{ keyId: k.keyId, epoch: 1 }]);
  });

  it('prepare refuses what cannot be authorised: an unknown operation, a revocation of nobody, unseen participants', async () => {
    const s = await signers(2);
    const c = await services(s);
    const k = await c.keygen.keygen({ suite: 'ed25519', threshold: 2 });
    expect(() => c.lifecycle.prepare({ keyId: k.keyId, operation: 'delete' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => c.lifecycle.prepare({ keyId: '*', operation: 'revoke' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => c.lifecycle.prepare({ keyId: '*', operation: 'refresh' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() =>
      c.lifecycle.prepare({ keyId: k.keyId, operation: 'reshare', threshold: 2, participants: ['signer-1', 'ghost'] }),
    ).toThrow(expect.objectContaining({ code: 'UNAVAILABLE' }));
    expect(c.lifecycle.prepare({ keyId: k.keyId, operation: 'refresh' })).toBeInstanceOf(Uint8Array);
  });
});

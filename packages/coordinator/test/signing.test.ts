/** Online signing against real signer engines: quorums, retries without exceptions, blame, stored results. */
import { describe, expect, it } from 'vitest';
import { createSignIntent, getSuite, type LinkResult } from '@tessera/core';
import { intent, services, signers } from './fixture.js';

const msg = (s: string) => new TextEncoder().encode(s);

describe('SigningService', () => {
  it('signs; the plain verifier accepts; a retry of the same intent gets the stored result without a signer', async () => {
    const s = await signers(3);
    const c = await services(s);
    const k = await c.keygen.keygen({ suite: 'secp256k1-tr', threshold: 2 });
    const i = intent(s, 'secp256k1-tr', k.keyId, msg('pay 1'));
    const r = await c.signing.sign(i);
    expect(getSuite('secp256k1-tr').verify(r.signature, msg('pay 1'), k.publicKey)).toBe(true);
    expect(r.signers).toHaveLength(2);
    const before = [...s.sent.values()].flat().filter((b) => b === 'sign').length;
    const again = await c.signing.sign(i);
    expect(again).toEqual(r);
    expect([...s.sent.values()].flat().filter((b) => b === 'sign').length).toBe(before);
  });

  it('concurrent deliveries of one request: every caller gets the one stored signature (the result is an insert)', async () => {
    const s = await signers(3);
    const c = await services(s);
    const k = await c.keygen.keygen({ suite: 'ed25519', threshold: 2 });
    const i = intent(s, 'ed25519', k.keyId, msg('pay once'));
    const results = await Promise.all([1, 2, 3, 4].map(() => c.signing.sign(i)));
    const sigs = new Set(results.map((r) => Buffer.from(r.signature).toString('hex')));
    expect(sigs.size).toBe(1);
    expect(getSuite('ed25519').verify(results[0]!.signature, msg('pay once'), k.publicKey)).toBe(true);
    expect(await c.signing.sign(i)).toEqual(results[0]);
  });

  it('the same request id with another intent is refused and nothing is signed', async () => {
    const s = await signers(2);
    const c = await services(s);
    const k = await c.keygen.keygen({ suite: 'ed25519', threshold: 2 });
    const requestId = new Uint8Array(16).fill(7);
    const make = (m: string) =>
      createSignIntent(s.requester, {
        suite: getSuite('ed25519'),
        keyId: k.keyId,
        message: msg(m),
        requestId,
        notAfter: Date.now() + 60_000,
      });
    await c.signing.sign(make('first'));
    await expect(c.signing.sign(make('second'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('a signer that refuses is excluded and another quorum signs (attempts counted in the event)', async () => {
    const s = await signers(3);
    const c = await services(s);
    const k = await c.keygen.keygen({ suite: 'ed25519', threshold: 2 });
    s.tamper.set('signer-1', (r, task) =>
      task.body === 'sign'
        ? { taskId: r.taskId, body: 'error', error: { code: 'POLICY_DENIED', message: 'no', culprits: [] } }
        : r,
    );
    c.events.length = 0;
    const r = await c.signing.sign(intent(s, 'ed25519', k.keyId, msg('pay 2')), ['signer-1', 'signer-2']);
    expect(r.signers).not.toContain('signer-1');
    expect(getSuite('ed25519').verify(r.signature, msg('pay 2'), k.publicKey)).toBe(true);
    expect(c.events).toContainEqual(expect.objectContaining({ type: 'sign', ok: true, attempts: 2 }));
  });

  it('only refusals: POLICY_DENIED after maxAttempts quorums, no culprit', async () => {
    const s = await signers(3);
    const c = await services(s, { maxAttempts: 1 });
    const k = await c.keygen.keygen({ suite: 'ed25519', threshold: 2 });
    for (const id of ['signer-1', 'signer-2', 'signer-3'])
      s.tamper.set(id, (r, task) =>
        task.body === 'sign'
          ? { taskId: r.taskId, body: 'error', error: { code: 'POLICY_DENIED', message: 'no', culprits: [] } }
          : r,
      );
    c.events.length = 0;
    await expect(c.signing.sign(intent(s, 'ed25519', k.keyId, msg('pay 3')))).rejects.toMatchObject({
      code: 'POLICY_DENIED',
      culprits: [],
    });
    expect(c.events).toContainEqual(expect.objectContaining({ type: 'sign', ok: false, attempts: 1 }));
  });

  it('a share answering another request names its sender; with no other quorum, NO_QUORUM names it', async () => {
    const s = await signers(3);
    const c = await services(s);
    const k = await c.keygen.keygen({ suite: 'ed25519', threshold: 3 });
    let first: LinkResult | undefined;
    s.tamper.set('signer-2', (r, task) => {
      if (task.body !== 'sign') return r;
      first ??= r;
      return first;
    });
    await c.signing.sign(intent(s, 'ed25519', k.keyId, msg('honest')));
    await expect(c.signing.sign(intent(s, 'ed25519', k.keyId, msg('replayed share')))).rejects.toMatchObject({
      code: 'NO_QUORUM',
      culprits: ['signer-2'],
    });
    expect(c.events).toContainEqual({ type: 'culprit', participant: 'signer-2', code: 'BAD_SIGNATURE_SHARE' });
  });

  it('a signer whose link fails is tried last afterwards', async () => {
    const s = await signers(3);
    const c = await services(s);
    const k = await c.keygen.keygen({ suite: 'ed25519', threshold: 2 });
    await c.signing.sign(intent(s, 'ed25519', k.keyId, msg('warm up')));
    s.tamper.set('signer-1', (r, task) => {
      if (task.body === 'sign') throw new Error('link lost mid-request');
      return r;
    });
    const r = await c.signing.sign(intent(s, 'ed25519', k.keyId, msg('pay 4')), ['signer-1']);
    expect(r.signers).not.toContain('signer-1');
    expect(c.participants.fastFirst(['signer-1', 'signer-2', 'signer-3'])).toEqual([
      'signer-2',
      'signer-3',
      'signer-1',
    ]);
  });
});

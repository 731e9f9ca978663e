/**
 * Open ECDSA presigning sessions expire (signer/src/ecdsa-signer.ts): a session whose quorum
 * broke off elsewhere (a peer refused its step 1, the coordinator died between steps) used to
 * stay open on the signers that started it until their next link, counting against the key's
 * `maxFreshPerKey` — enough of them and the key could presign nothing more. In process (engines
 * with real LevelDB stores, a controlled clock): a signer at its bound refuses step 1
 * RESOURCE_EXHAUSTED; a minute later the abandoned sessions are gone, their ids stay spent
 * (NONCE_REUSED), a late step 2 of one is INVALID_STATE, and a new session of the same two
 * signers runs its three steps to a presignature in both ledgers.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { type LinkResult, PayloadKind, decodeMessage, openEnvelope } from '@tessera/core';
import { cleanup, deviceCluster } from './device-harness.js';

afterAll(cleanup);

describe('ECDSA presigning sessions expire', () => {
  it('abandoned sessions stop counting against maxFreshPerKey after a minute; their ids stay spent', async () => {
    let now = Date.now();
    const c = await deviceCluster(3, { clock: () => now, maxFreshPerKey: 3 });
    const key = await c.coordinator.keygen({ suite: 'ecdsa-secp256k1', threshold: 2 });
    const [s1, s2] = [c.signer('signer-1'), c.signer('signer-2')];
    const signers = ['signer-1', 'signer-2'];
    const step = async (s: typeof s1, session: Uint8Array, n: number, messages: Uint8Array[] = []) => {
      const r: LinkResult = await s.handle({
        taskId: 1,
        body: 'ecdsa',
        ecdsa: { kind: 'presign', keyId: key.keyId, step: n, session, signers, messages },
      });
      return r;
    };
    const code = (r: LinkResult) => r.error?.code ?? 'ok';
    // Three sessions signer-1 starts whose peer never answers: the bound is reached.
    const abandoned = [0, 1, 2].map(() => new Uint8Array(randomBytes(32)));
    for (const session of abandoned) expect(code(await step(s1, session, 1))).toBe('ok');
    expect(code(await step(s1, new Uint8Array(randomBytes(32)), 1))).toBe('RESOURCE_EXHAUSTED');
    // Within the minute they still count.
    now += 59_000;
    expect(code(await step(s1, new Uint8Array(randomBytes(32)), 1))).toBe('RESOURCE_EXHAUSTED');
    now += 2_000;
    // Gone: a late step 2 finds no session; the ids cannot be started again.
    const late = await step(s1, abandoned[0] as Uint8Array, 2);
    expect(code(late)).toBe('INVALID_STATE');
    expect(late.error?.message).toMatch(/expired/);
    expect(code(await step(s1, abandoned[1] as Uint8Array, 1))).toBe('NONCE_REUSED');
    // A new session of signer-1 and signer-2 runs to a presignature on both.
    const session = new Uint8Array(randomBytes(32));
    const a1 = await step(s1, session, 1);
    const b1 = await step(s2, session, 1);
    const a2 = await step(s1, session, 2, b1.ecdsa?.envelopes ?? []);
    const b2 = await step(s2, session, 2, a1.ecdsa?.envelopes ?? []);
    expect([code(a2), code(b2)]).toEqual(['ok', 'ok']);
    const a3 = await step(s1, session, 3, b2.ecdsa?.envelopes ?? []);
    const b3 = await step(s2, session, 3, a2.ecdsa?.envelopes ?? []);
    expect([code(a3), code(b3)]).toEqual(['ok', 'ok']);
    expect(a3.envelope?.length).toBeGreaterThan(0);
    // The statement to the coordinator keeps R's 33-byte form, which every release reads (the
    // signer's own ledger record keeps it uncompressed).
    const stated = decodeMessage(
      'EcdsaPresigned',
      openEnvelope(a3.envelope as Uint8Array, PayloadKind.ECDSA_PRESIGNATURE).payload,
    );
    expect(stated.r.length).toBe(33);
    expect(await s1.ledger.countFresh(`${key.keyId}.`)).toBe(1);
    expect(await s2.ledger.countFresh(`${key.keyId}.`)).toBe(1);
  }, 120_000);
});

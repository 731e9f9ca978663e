/**
 * The cluster as real processes: a coordinator and signer daemons on loopback over mTLS, each
 * signer with its own LevelDB. DKG and signing per suite, a kill -9 of a signer, its restart,
 * a coordinator restart, and the ledgers checked for nonce reuse.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getSuite, SUITE_IDS } from '@tessera/core';
import { SealedStore, NonceLedger, auditEntryKey, loadKek } from '@tessera/store';
import { join } from 'node:path';
import { startCluster, type TestCluster } from './harness.js';

let c: TestCluster;
beforeAll(async () => {
  c = await startCluster(3);
}, 60_000);
afterAll(async () => {
  await c?.stop();
});

describe('cluster of real processes (3 signers, mTLS)', () => {
  it.each(SUITE_IDS)('DKG 2-of-3 and signing for %s; the plain verifier accepts', async (suite) => {
    const key = await c.keygen(suite, 2);
    expect(key.participants).toEqual(['signer-1', 'signer-2', 'signer-3']);
    const msg = new TextEncoder().encode(`hello ${suite}`);
    const r = await c.sign(suite, key.keyId, msg);
    expect(getSuite(suite).verify(new Uint8Array(r.signature), msg, new Uint8Array(key.publicKey))).toBe(true);
  });

  it('kill -9 one signer: signing goes on with the remaining quorum; restarted, it rejoins and signs', async () => {
    const key = await c.keygen('ed25519', 2);
    await c.killSigner('signer-1', 'SIGKILL');
    await c.waitConnected(['signer-1'], false);
    const msg = new Uint8Array([1, 2, 3]);
    const r = await c.sign('ed25519', key.keyId, msg);
    expect([...r.signers].sort()).toEqual(['signer-2', 'signer-3']);
    expect(getSuite('ed25519').verify(new Uint8Array(r.signature), msg, new Uint8Array(key.publicKey))).toBe(true);
    await c.startSigner('signer-1');
    await c.waitConnected(['signer-1']);
    const r2 = await c.sign('ed25519', key.keyId, msg, { signers: ['signer-1', 'signer-2'] });
    expect([...r2.signers].sort()).toEqual(['signer-1', 'signer-2']);
    expect(getSuite('ed25519').verify(new Uint8Array(r2.signature), msg, new Uint8Array(key.publicKey))).toBe(true);
  });

  it('coordinator restart: keys and completed results survive; signers reconnect and sign', async () => {
    const key = await c.keygen('secp256k1-tr', 2);
    const requestId = new Uint8Array(16).fill(0x42);
    const msg = new Uint8Array(32).fill(7);
    const before = await c.sign('secp256k1-tr', key.keyId, msg, { requestId });
    await c.restartCoordinator();
    await c.waitConnected(['signer-1', 'signer-2', 'signer-3']);
    const keys = await c.call<{ keys: { keyId: string }[] }>('ListKeys', {});
    expect(keys.keys.map((k) => k.keyId)).toContain(key.keyId);
    const again = await c.sign('secp256k1-tr', key.keyId, msg, { requestId });
    expect(Buffer.from(again.signature).toString('hex')).toBe(Buffer.from(before.signature).toString('hex'));
    const fresh = await c.sign('secp256k1-tr', key.keyId, msg);
    expect(getSuite('secp256k1-tr').verify(new Uint8Array(fresh.signature), msg, new Uint8Array(key.publicKey))).toBe(
      true,
    );
  });

  it('bad input to the API gets a typed error', async () => {
    await expect(c.call('Keygen', { suite: 99, threshold: 2, participants: [] })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      status: 3,
    });
    await expect(c.call('Keygen', { suite: 1, threshold: 9, participants: [] })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(c.call('Sign', { signers: [] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    // An intent whose signature does not verify: refused as a protocol violation, nothing signed.
    await expect(
      c.call('Sign', {
        intent: {
          version: 1,
          kind: 10,
          sender: Buffer.alloc(32),
          payload: Buffer.alloc(3),
          signature: Buffer.alloc(64),
        },
      }),
    ).rejects.toMatchObject({ code: 'BAD_SIGNATURE' });
  });

  it('no nonce was ever used for two requests (checked from every signer ledger)', async () => {
    // Stop the signers so their LevelDB directories can be opened, then inspect every ledger.
    const ids = ['signer-1', 'signer-2', 'signer-3'];
    for (const id of ids) await c.killSigner(id, 'SIGTERM');
    let consumed = 0;
    for (const id of ids) {
      const store = await SealedStore.open(join(c.dir, id, 'data'), loadKek({ file: join(c.dir, `${id}.kek`) }));
      try {
        const list = await new NonceLedger(store).listConsumed();
        consumed += list.length;
        // Each consumed nonce records exactly one request digest; the ledger refuses any other.
        const ids2 = new Set(list.map((x) => x.nonceId));
        expect(ids2.size).toBe(list.length);
      } finally {
        await store.close();
      }
    }
    expect(consumed).toBeGreaterThan(0);
    for (const id of ids) await c.startSigner(id);
  });

  it('a signer whose audit log was edited on disk is reported by AuditVerify; the others verify', async () => {
    await c.killSigner('signer-3', 'SIGTERM');
    const store = await SealedStore.open(
      join(c.dir, 'signer-3', 'data'),
      loadKek({ file: join(c.dir, 'signer-3.kek') }),
    );
    try {
      const raw = await store.get(auditEntryKey(1));
      expect(raw).toBeDefined();
      const entry = JSON.parse(new TextDecoder().decode(raw)) as { data: Record<string, unknown> };
      entry.data.keyId = 'ffffffffffffffff';
      await store.put(auditEntryKey(1), new TextEncoder().encode(JSON.stringify(entry)));
    } finally {
      await store.close();
    }
    await c.startSigner('signer-3');
    await c.waitConnected(['signer-3']);
    const r = await c.call<{
      coordinator: { ok: boolean };
      participants: { id: string; report: { ok: boolean; reason: string; problemSeq: number } }[];
    }>('AuditVerify', {});
    expect(r.coordinator.ok).toBe(true);
    const byId = Object.fromEntries(r.participants.map((p) => [p.id, p.report]));
    expect(byId['signer-1']?.ok).toBe(true);
    expect(byId['signer-3']).toMatchObject({ ok: false, reason: 'edited' });
  });
});

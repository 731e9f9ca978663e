/**
 * A five-signer cluster of real processes: 3-of-5 DKG and signing for every suite, and the
 * coordinator killed with -9 in the middle of a DKG and of a signing session — each either
 * completes or fails cleanly, a retry with the same request id completes, and no nonce is ever
 * used twice.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUITE_IDS, getSuite } from '@tessera/core';
import { NonceLedger, SealedStore, loadKek } from '@tessera/store';
import { startCluster, type TestCluster } from './harness.js';

const IDS = ['signer-1', 'signer-2', 'signer-3', 'signer-4', 'signer-5'];
let c: TestCluster;
beforeAll(async () => {
  c = await startCluster(5);
}, 90_000);
afterAll(async () => {
  await c?.stop();
});

describe('five signer processes', () => {
  it.each(SUITE_IDS)('DKG 3-of-5 and signing by two different quorums for %s', async (suite) => {
    const key = await c.keygen(suite, 3);
    expect(key.participants).toEqual(IDS);
    const msg = new Uint8Array(32).fill(5);
    for (const signers of [
      ['signer-1', 'signer-2', 'signer-3'],
      ['signer-3', 'signer-4', 'signer-5'],
    ]) {
      const r = await c.sign(suite, key.keyId, msg, { signers });
      expect([...r.signers].sort()).toEqual(signers);
      expect(getSuite(suite).verify(new Uint8Array(r.signature), msg, new Uint8Array(key.publicKey))).toBe(true);
    }
  });

  it('coordinator killed mid-DKG: the keygen fails cleanly and a new one succeeds after restart', async () => {
    const pending = c.keygen('ed25519', 3).then(
      () => 'done',
      (e: { code?: string }) => e.code ?? 'error',
    );
    await new Promise((r) => setTimeout(r, 30));
    await c.restartCoordinator();
    const outcome = await pending;
    expect(['done', 'UNAVAILABLE', 'DEADLINE', 'CANCELLED', 'INTERNAL']).toContain(outcome);
    await c.waitConnected(IDS);
    const key = await c.keygen('ed25519', 3);
    const r = await c.sign('ed25519', key.keyId, new Uint8Array([1]));
    expect(
      getSuite('ed25519').verify(new Uint8Array(r.signature), new Uint8Array([1]), new Uint8Array(key.publicKey)),
    ).toBe(true);
  });

  it('coordinator killed mid-signing: the same request id completes after restart, once', async () => {
    const key = await c.keygen('secp256k1-tr', 3);
    const requestId = new Uint8Array(16).fill(0x7c);
    const msg = new Uint8Array(32).fill(0x11);
    const first = c.sign('secp256k1-tr', key.keyId, msg, { requestId }).then(
      (r) => r,
      (e: { code?: string }) => e.code ?? 'error',
    );
    await new Promise((r) => setTimeout(r, 5));
    await c.restartCoordinator();
    await first;
    await c.waitConnected(IDS);
    const r = await c.sign('secp256k1-tr', key.keyId, msg, { requestId });
    expect(getSuite('secp256k1-tr').verify(new Uint8Array(r.signature), msg, new Uint8Array(key.publicKey))).toBe(true);
    const again = await c.sign('secp256k1-tr', key.keyId, msg, { requestId });
    expect(Buffer.from(again.signature).equals(Buffer.from(r.signature))).toBe(true);
  });

  it('every signer ledger: each consumed nonce answered exactly one request', async () => {
    for (const id of IDS) await c.killSigner(id, 'SIGTERM');
    let total = 0;
    for (const id of IDS) {
      const store = await SealedStore.open(join(c.dir, id, 'data'), loadKek({ file: join(c.dir, `${id}.kek`) }));
      try {
        const consumed = await new NonceLedger(store).listConsumed();
        expect(new Set(consumed.map((x) => x.nonceId)).size).toBe(consumed.length);
        expect(consumed.every((x) => x.requestDigest.length === 32)).toBe(true);
        total += consumed.length;
      } finally {
        await store.close();
      }
    }
    // 4 suites × 2 signatures × 3 signers, plus the restart tests' signatures.
    expect(total).toBeGreaterThanOrEqual(24);
  });
});

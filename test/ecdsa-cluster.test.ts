/**
 * Threshold ECDSA (DKLs23) on the cluster of real processes: a coordinator and three signer
 * daemons over mTLS, each with its own LevelDB. Keygen runs Tessera's DKG and the pairwise setup;
 * every signature is presigned by the quorum (sealed messages relayed by the coordinator),
 * its presignature consumed in each signer's ledger, and checked by three independent verifiers:
 * noble (with the recovery id), tiny-secp256k1, and viem's address recovery. After the run, every
 * signer's ledger shows each presignature consumed once, for one request.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import * as ecc from 'tiny-secp256k1';
import { recoverAddress } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createSignIntent,
  decodeKeyRecord,
  decodeMessage,
  deriveKey,
  evmAddress,
  getSuite,
  groupPublicKey,
  toHex,
} from '@tessera/core';
import { AuditLog, NonceLedger, SealedStore, loadKek } from '@tessera/store';
import { approvedOverApi, standingRefresh } from './authority.js';
import { startCluster, type TestCluster } from './harness.js';

const suite = getSuite('ecdsa-secp256k1');
let c: TestCluster;
let key: { keyId: string; publicKey: Buffer; participants: string[] };

beforeAll(async () => {
  c = await startCluster(3);
  key = await c.keygen('ecdsa-secp256k1', 2);
}, 150_000);
afterAll(async () => {
  await c?.stop();
});

/** The key signs `digest` on the requester's intent (at an HD `path`), through the coordinator's Sign. */
async function signIntent(digest: Uint8Array, opts: { path?: string; deadlineMs?: number } = {}) {
  const intent = createSignIntent(c.requester, {
    suite,
    keyId: key.keyId,
    message: digest,
    requestId: new Uint8Array(randomBytes(16)),
    notAfter: Date.now() + 120_000,
    ...(opts.path ? { path: opts.path } : {}),
  });
  return c.call<{ signature: Buffer; signers: string[]; publicKey: Buffer }>(
    'Sign',
    { intent: decodeMessage('Envelope', intent), signers: [] },
    opts.deadlineMs ?? 20_000,
  );
}

/** Every independent check of a 65-byte r ‖ s ‖ v signature over `digest` by `publicKey`. */
async function checkEverywhere(sig: Uint8Array, digest: Uint8Array, publicKey: Uint8Array): Promise<void> {
  expect(sig.length).toBe(65);
  expect(suite.verify(sig, digest, publicKey)).toBe(true);
  expect(secp256k1.verify(sig.subarray(0, 64), digest, publicKey, { prehash: false, lowS: true })).toBe(true);
  expect(ecc.verify(digest, publicKey, sig.subarray(0, 64), true)).toBe(true);
  const v = sig[64] as number;
  const recovered = await recoverAddress({
    hash: `0x${toHex(digest)}`,
    signature: `0x${toHex(sig.subarray(0, 64))}${v ? '1c' : '1b'}`,
  });
  expect(recovered).toBe(evmAddress(publicKey));
}

describe('threshold ECDSA on the cluster (3 signer processes, 2-of-3)', () => {
  it('keygen gives an ECDSA key (suite 5, a 33-byte key); every quorum signs; three verifiers accept', async () => {
    expect(key.participants).toEqual(['signer-1', 'signer-2', 'signer-3']);
    expect(key.publicKey.length).toBe(33);
    const info = await c.call<{ keys: { keyId: string; suite: number; address: string }[] }>('ListKeys', {});
    const mine = info.keys.find((k) => k.keyId === key.keyId);
    expect(mine?.suite).toBe(5);
    for (const signers of [
      ['signer-1', 'signer-2'],
      ['signer-1', 'signer-3'],
      ['signer-2', 'signer-3'],
    ]) {
      const digest = keccak_256(randomBytes(40));
      const r = await c.sign('ecdsa-secp256k1', key.keyId, digest, { signers });
      expect([...r.signers].sort()).toEqual(signers);
      await checkEverywhere(new Uint8Array(r.signature), digest, new Uint8Array(key.publicKey));
    }
  });

  it('a retry of the same request gets the same signature; a message that is not a 32-byte digest is refused', async () => {
    const digest = keccak_256(new Uint8Array([1, 2, 3]));
    const requestId = new Uint8Array(16).fill(0x5e);
    const a = await c.sign('ecdsa-secp256k1', key.keyId, digest, { requestId });
    const b = await c.sign('ecdsa-secp256k1', key.keyId, digest, { requestId });
    expect(toHex(b.signature)).toBe(toHex(a.signature));
    await expect(c.sign('ecdsa-secp256k1', key.keyId, new Uint8Array(31))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  it('an HD child (BIP32 non-hardened) signs, re-randomised; the signature is for the child key', async () => {
    const rec = decodeKeyRecord(
      new Uint8Array((await c.call<{ keyRecord: Buffer }>('GetKey', { keyId: key.keyId })).keyRecord),
    );
    const child = deriveKey(rec.key, 'm/0/7');
    const digest = keccak_256(new Uint8Array([9]));
    const r = await signIntent(digest, { path: 'm/0/7' });
    expect(toHex(r.publicKey)).toBe(toHex(child.publicKey));
    expect(toHex(r.publicKey)).not.toBe(toHex(groupPublicKey(rec.key)));
    await checkEverywhere(new Uint8Array(r.signature), digest, child.publicKey);
  });

  it('refresh (operator-authorised) keeps the key and its pairs: it signs at the new epoch', async () => {
    const info = await c.call<{ epoch: number | string; publicKey: Buffer }>('Refresh', {
      keyId: key.keyId,
      authorisation: standingRefresh(),
    });
    expect(Number(info.epoch)).toBe(1);
    expect(toHex(info.publicKey)).toBe(toHex(key.publicKey));
    // The pool's presignatures were made at epoch 0: none is used for an epoch-1 signature.
    const digest = keccak_256(new Uint8Array([6]));
    const r = await c.sign('ecdsa-secp256k1', key.keyId, digest);
    await checkEverywhere(new Uint8Array(r.signature), digest, new Uint8Array(key.publicKey));
  });

  it('kill -9 of a signer: the other two sign; no presignature is ever consumed twice', async () => {
    await c.killSigner('signer-3', 'SIGKILL');
    await c.waitConnected(['signer-3'], false);
    const digest = keccak_256(new Uint8Array([4, 4]));
    const r = await c.sign('ecdsa-secp256k1', key.keyId, digest);
    expect([...r.signers].sort()).toEqual(['signer-1', 'signer-2']);
    await checkEverywhere(new Uint8Array(r.signature), digest, new Uint8Array(key.publicKey));
    await c.startSigner('signer-3');
    await c.waitConnected(['signer-3']);
    // signer-3's own ledger, opened while it is stopped: each presignature consumed for one request.
    await c.killSigner('signer-3', 'SIGTERM');
    const store = await SealedStore.open(
      join(c.dir, 'signer-3', 'data'),
      loadKek({ file: join(c.dir, 'signer-3.kek') }),
    );
    try {
      const consumed = await new NonceLedger(store).listConsumed(`${key.keyId}.`);
      expect(consumed.length).toBeGreaterThanOrEqual(2);
      expect(new Set(consumed.map((x) => x.nonceId)).size).toBe(consumed.length);
      expect(new Set(consumed.map((x) => toHex(x.requestDigest))).size).toBe(consumed.length);
    } finally {
      await store.close();
    }
    await c.startSigner('signer-3');
    await c.waitConnected(['signer-3']);
    // signer-3 discarded its unused presignatures when it relinked: the coordinator's pool for
    // {signer-1, signer-3} (topped up after the first test's signature) is stale. The signature
    // still comes: the stale pool is dropped and the pair presigns anew.
    const d2 = keccak_256(new Uint8Array([5, 5]));
    const again = await c.sign('ecdsa-secp256k1', key.keyId, d2, { signers: ['signer-1', 'signer-3'] });
    expect([...again.signers].sort()).toEqual(['signer-1', 'signer-3']);
    await checkEverywhere(new Uint8Array(again.signature), d2, new Uint8Array(key.publicKey));
  });

  it('reshare 2-of-3 → 2-of-2 of signer-2 and signer-3 (operator-approved): the new roster sets its pairs up under the new epoch (its protocol indices moved) and signs with the same key, also when the coordinator was killed during that setup; without approval it is refused', async () => {
    const to = { threshold: 2, participants: ['signer-2', 'signer-3'] };
    await expect(c.call('Reshare', { keyId: key.keyId, ...to })).rejects.toMatchObject({ code: 'POLICY_DENIED' });
    const authorisation = await approvedOverApi(c.call, { keyId: key.keyId, operation: 'reshare', ...to });
    const info = await c.call<{ epoch: number | string; publicKey: Buffer; participants: string[]; threshold: number }>(
      'Reshare',
      { keyId: key.keyId, ...to, revoke: [], authorisation },
      60_000,
    );
    expect(Number(info.epoch)).toBe(2);
    expect(info.participants).toEqual(to.participants);
    expect(toHex(info.publicKey)).toBe(toHex(key.publicKey));
    // The coordinator started the new roster's setup when the reshare committed (seconds of base
    // OTs): killed now, it forgets it; after its restart the first signature finds the roster not
    // set up and runs the setup first (the signers dropped the interrupted session on relinking).
    await c.restartCoordinator();
    await c.waitConnected(to.participants);
    for (const [i, m] of [[0x21], [0x22]].entries()) {
      const digest = keccak_256(new Uint8Array(m));
      const r = await signIntent(digest, { deadlineMs: i === 0 ? 90_000 : 20_000 });
      expect([...r.signers].sort()).toEqual(to.participants);
      await checkEverywhere(new Uint8Array(r.signature), digest, new Uint8Array(key.publicKey));
    }
    // signer-1 left the roster: a request that prefers it is signed by the new roster.
    const d3 = keccak_256(new Uint8Array([0x23]));
    const r3 = await c.sign('ecdsa-secp256k1', key.keyId, d3, { signers: ['signer-1', 'signer-2'] });
    expect([...r3.signers].sort()).toEqual(to.participants);
    await checkEverywhere(new Uint8Array(r3.signature), d3, new Uint8Array(key.publicKey));
    // signer-2's own store: the pairs of both rosters, the new setup audited at epoch 2.
    await c.killSigner('signer-2', 'SIGTERM');
    const store = await SealedStore.open(
      join(c.dir, 'signer-2', 'data'),
      loadKek({ file: join(c.dir, 'signer-2.kek') }),
    );
    try {
      const setups = [];
      for await (const e of new AuditLog(store).entries()) if (e.type === 'ecdsa-setup') setups.push(e);
      const peers = (x: unknown) => String(x).split(',').sort().join(',');
      expect(setups.map((e) => [e.data.keyId, Number(e.data.epoch ?? 0), peers(e.data.pairs)])).toEqual([
        [key.keyId, 0, 'signer-1,signer-3'],
        [key.keyId, 2, 'signer-3'],
      ]);
    } finally {
      await store.close();
    }
    await c.startSigner('signer-2');
    await c.waitConnected(['signer-2']);
  });
});

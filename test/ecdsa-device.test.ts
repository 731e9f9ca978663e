/**
 * A device in an ECDSA key (issue "Threshold ECDSA"): the device joins the DKG of an
 * ecdsa-secp256k1 key like a FROST one, then runs the DKLs23 pairwise setup with every signer
 * through its link — `@tessera/ecdsa`'s two-phase setup state machine, the one a node runs — on
 * its own sealed store. Real gateway (HTTP on loopback), real signer engines on LevelDB.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeIdentityRecord, decodeKeyRecord, fromHex, getSuite, toHex } from '@tessera/core';
import { libsecp256k1Ecdsa } from './verifiers.js';
import {
  checkEcdsaPackage,
  createEcdsaPackage,
  decodePairs,
  encodeEcdsaSignRequest,
  keyView,
  openEcdsaPackage,
} from '@tessera/ecdsa';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import * as ecc from 'tiny-secp256k1';
import { Device, decryptBackup } from '@tessera/device';
import { cleanup, deviceCluster, enrolled, tempDir, type Cluster } from './device-harness.js';

afterAll(cleanup);
const suite = getSuite('ecdsa-secp256k1');

describe('a device in an ECDSA key', () => {
  // One cluster and one key for both tests (a keygen's setup is seconds of base OTs).
  let c: Cluster;
  let device: Device;
  let key: Awaited<ReturnType<Device['keygen']>>;
  beforeAll(async () => {
    c = await deviceCluster(3);
    ({ device } = await enrolled(c, 'phone-e'));
    key = await device.keygen(c.url, { suite: 'ecdsa-secp256k1', threshold: 2, with: ['signer-1', 'signer-2'] });
  }, 120_000);

  it('keygen with the device: every member, the phone too, sets its pairs up', async () => {
    expect(key.participants).toEqual(['phone-e', 'signer-1', 'signer-2']);
    expect(fromHex(key.publicKey)).toHaveLength(33);
    // Each node holds pairs in use with both other members, the phone among them.
    for (const [i, s] of c.signers.slice(0, 2).entries()) {
      const found: string[] = [];
      for await (const [k, v] of c.stores[i]!.iterate(`ecdsa/pairs/${key.keyId}/`)) {
        found.push(k);
        expect([...decodePairs(v).pairs.keys()].sort()).toEqual(
          ['phone-e', 'signer-1', 'signer-2'].filter((x) => x !== s.id),
        );
      }
      expect(found).toHaveLength(1);
    }
    // The key is registered: the setup finished on every member (each put its pairs in use on
    // every member's signed word, the phone's among them).
    expect(c.coordinator.keys().map((k) => k.keyId)).toContain(key.keyId);

    // The phone's backup carries its pairs in use (a restored phone presigns without a new setup),
    // and a restore puts them back as they were.
    const password = 'correct horse battery staple';
    const pairsIn = async (d: Device) => {
      const plain = JSON.parse(
        new TextDecoder().decode(await decryptBackup(await d.exportBackup(password, { cost: 'test' }), password)),
      ) as { ecdsa?: Record<string, string> };
      return Object.entries(plain.ecdsa ?? {}).filter(([k]) => k.startsWith(`ecdsa/pairs/${key.keyId}/`));
    };
    const mine = await pairsIn(device);
    expect(mine).toHaveLength(1);
    const held = decodePairs(fromHex((mine[0] as [string, string])[1]));
    expect([...held.pairs.keys()].sort()).toEqual(['signer-1', 'signer-2']);
    expect(held.me).toBe(1);
    const restored = await Device.restore({
      location: tempDir(),
      storageKey: new Uint8Array(randomBytes(32)),
      backup: await device.exportBackup(password, { cost: 'test' }),
      password,
    });
    try {
      expect(await pairsIn(restored)).toEqual(mine);
    } finally {
      await restored.close();
    }
  }, 120_000);

  it('reserve presignatures with the phone, sign offline, sync: each package completes once, verified by noble and libsecp256k1', async () => {
    const pk = fromHex(key.publicKey);
    const r = await device.reserve(c.url, { keyId: key.keyId, count: 3, cosigners: ['signer-1'] });
    expect(r).toMatchObject({ added: 3, allowance: 3, errors: [] });
    // The co-signer keeps its part a week (devices.maxTtlMs); the phone's status says when.
    const next = (await device.status()).keys.find((k) => k.keyId === key.keyId)?.nextExpiry as number;
    expect(next - Date.now()).toBeGreaterThan(6 * 24 * 3600_000);
    expect(next - Date.now()).toBeLessThanOrEqual(7 * 24 * 3600_000);
    // Offline: two digests signed, each package queued before it is returned.
    const digests = [0, 1].map(() => new Uint8Array(randomBytes(32)));
    const pkgs = [];
    for (const d of digests) pkgs.push(await device.signOffline({ keyId: key.keyId, message: d }));
    expect(new Set(pkgs.map((p) => p.packageId)).size).toBe(2);
    expect((await device.status()).keys.find((k) => k.keyId === key.keyId)?.allowance).toBe(1);
    const s = await device.sync(c.url);
    expect(s.failed).toEqual([]);
    expect(s.pending).toEqual([]);
    expect(s.completed.map((x) => x.packageId)).toEqual(pkgs.map((p) => p.packageId));
    for (const [i, done] of s.completed.entries()) {
      const sig = fromHex(done.signature);
      expect(sig).toHaveLength(65);
      expect(suite.verify(sig, digests[i] as Uint8Array, pk)).toBe(true);
      expect(libsecp256k1Ecdsa(sig, digests[i] as Uint8Array, pk)).toBe(true);
    }
    // Delivered again (a merchant's copy, a retry): the stored result, nothing signed twice.
    const again = await c.coordinator.completePackage(pkgs[0]!.bytes);
    expect(again.alreadyCompleted).toBe(true);
    expect(toHex(again.signature)).toBe(s.completed[0]!.signature);

    // Two reserve calls at once (an app reserving from two places): one link shared, each call's
    // presignatures its own, none of the other's dropped as unconfirmed.
    const both = await Promise.all([0, 1].map(() => device.reserve(c.url, { keyId: key.keyId, count: 2 })));
    expect(both.map((x) => x.added)).toEqual([2, 2]);
    expect((await device.status()).keys.find((k) => k.keyId === key.keyId)?.allowance).toBe(5);
  }, 180_000);

  it('pays a Bitcoin SegWit v0 spend offline: the phone and the co-signer each read the BIP 143 sighash from the PSBT; the witness verifies', async () => {
    const btc = await import('@scure/btc-signer');
    const pk = fromHex(key.publicKey);
    const own = btc.p2wpkh(pk);
    const amount = 250_000n;
    const tx = new btc.Transaction();
    tx.addInput({ txid: new Uint8Array(randomBytes(32)), index: 0, witnessUtxo: { script: own.script, amount } });
    tx.addOutputAddress('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', 200_000n);
    tx.addOutput({ script: own.script, amount: 45_000n }); // change
    const payment = { chain: 'bitcoin', tx: tx.toPSBT(), input: 0 };
    const p = await device.signOffline({ keyId: key.keyId, payment });
    expect(p.payment).toMatchObject({ chain: 'bitcoin', asset: 'BTC', amount: '200000', fee: '5000' });
    // The merchant's check carries the transaction; the digest is what it signs.
    const checked = checkEcdsaPackage(await device.keyRecord(key.keyId), p.bytes);
    expect(checked.payment?.chain).toBe('bitcoin');
    const sighash = tx.preimageWitnessV0(0, btc.p2pkh(pk).script, btc.SigHash.ALL, amount);
    expect(checked.message).toBe(toHex(sighash));
    const s = await device.sync(c.url);
    const done = s.completed.find((x) => x.packageId === p.packageId);
    expect(done?.message).toBe(toHex(sighash));
    const sig = fromHex(done?.signature as string);
    expect(libsecp256k1Ecdsa(sig, sighash, pk)).toBe(true);
    // Into the transaction: btc-signer finalises the input and the witness verifies.
    const der = secp256k1.Signature.fromBytes(sig.subarray(0, 64), 'compact').toBytes('der');
    tx.updateInput(0, { partialSig: [[pk, new Uint8Array([...der, btc.SigHash.ALL])]] });
    tx.finalize();
    const signed = btc.Transaction.fromRaw(tx.extract());
    const witness = signed.getInput(0).finalScriptWitness as Uint8Array[];
    expect(toHex(witness[1] as Uint8Array)).toBe(key.publicKey);
    expect(ecc.verify(sighash, pk, sig.subarray(0, 64), true)).toBe(true);
    // A package signed with the phone's own key whose digest is not what its transaction signs:
    // the co-signer reads the transaction itself and refuses before anything is spent.
    const plain = JSON.parse(
      new TextDecoder().decode(
        await decryptBackup(
          await device.exportBackup('correct horse battery staple', { cost: 'test' }),
          'correct horse battery staple',
        ),
      ),
    ) as { identity: string };
    const view = keyView(decodeKeyRecord(await device.keyRecord(key.keyId)));
    const pkg = openEcdsaPackage(view, p.bytes);
    const lie = createEcdsaPackage(decodeIdentityRecord(fromHex(plain.identity)), view, {
      ...pkg,
      message: new Uint8Array(randomBytes(32)),
    });
    const r = await (c.signers[0] as NonNullable<(typeof c.signers)[number]>).handle({
      taskId: 1,
      body: 'ecdsaSign',
      ecdsaSign: encodeEcdsaSignRequest({
        keyId: key.keyId,
        epoch: view.epoch,
        intent: lie.bytes,
        session: pkg.session,
        signers: pkg.signers,
        requestId: fromHex(lie.packageId),
      }),
    });
    expect(r.error?.code).toBe('PAYMENT_MISMATCH');
  }, 120_000);
});

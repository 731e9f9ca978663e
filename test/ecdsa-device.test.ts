/**
 * A device in an ECDSA key (issue "Threshold ECDSA"): the device joins the DKG of an
 * ecdsa-secp256k1 key like a FROST one, then runs the DKLs23 pairwise setup with every signer
 * through its link — `@tessera/ecdsa`'s two-phase setup state machine, the one a node runs — on
 * its own sealed store. Real gateway (HTTP on loopback), real signer engines on LevelDB.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { fromHex } from '@tessera/core';
import { decodePairs } from '@tessera/ecdsa';
import { Device, decryptBackup } from '@tessera/device';
import { cleanup, deviceCluster, enrolled, tempDir } from './device-harness.js';

afterAll(cleanup);

describe('a device in an ECDSA key', () => {
  it('keygen with the device: every member, the phone too, sets its pairs up', async () => {
    const c = await deviceCluster(3);
    const { device } = await enrolled(c, 'phone-e');
    const key = await device.keygen(c.url, { suite: 'ecdsa-secp256k1', threshold: 2, with: ['signer-1', 'signer-2'] });
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
});

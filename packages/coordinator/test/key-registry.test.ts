/** The key registry over a real LevelDB store, with keys made by a real DKG. */
import { describe, expect, it } from 'vitest';
import { KeyRegistry } from '../src/key-registry.js';
import { layout } from '../src/layout.js';
import { services, signers } from './fixture.js';

describe('KeyRegistry', () => {
  it('registers, reloads from the store, indexes by participant, and bounds the decoded cache', async () => {
    const s = await signers(3);
    const c = await services(s, { cacheSize: 2 });
    const a = await c.keygen.keygen({ suite: 'ed25519', threshold: 2, participants: ['signer-1', 'signer-2'] });
    const b = await c.keygen.keygen({ suite: 'ed25519', threshold: 2 });
    const d = await c.keygen.keygen({ suite: 'secp256k1-tr', threshold: 3 });
    expect(c.registry.keys().map((k) => k.keyId)).toEqual([a.keyId, b.keyId, d.keyId]);
    expect(c.registry.keysOf('signer-3').map((k) => k.keyId)).toEqual([b.keyId, d.keyId]);
    expect(c.registry.rosterParticipants()).toEqual(['signer-1', 'signer-2', 'signer-3']);
    for (const k of [a, b, d]) expect(c.registry.key(k.keyId).keyId).toBe(k.keyId);
    expect(c.registry.cached).toBe(2);
    expect(() => c.registry.key('0000000000000000')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));

    // A second registry over the same store sees the same keys.
    const again = new KeyRegistry(c.store);
    const seen: string[] = [];
    await again.load((rec) => seen.push(rec.keyId));
    expect(seen.sort()).toEqual([a.keyId, b.keyId, d.keyId].sort());
    expect(again.keys()).toEqual(c.registry.keys());
    expect(again.summary(d.keyId)?.threshold).toBe(3);
  });

  it('a new epoch replaces the record in memory and in the participant index; earlier epochs stay readable', async () => {
    const s = await signers(3);
    const c = await services(s);
    const k = await c.keygen.keygen({ suite: 'ed25519', threshold: 2 });
    const rec = c.registry.key(k.keyId);
    const before = c.registry.generation(k.keyId);
    // The next epoch names fewer participants (as a reshare would); stored as the lifecycle does.
    const next = { ...rec, epoch: 1, key: { ...rec.key, roster: rec.key.roster.slice(0, 2) } };
    c.registry.set(next);
    expect(c.registry.generation(k.keyId)).not.toBe(before);
    expect(c.registry.key(k.keyId).epoch).toBe(1);
    expect(c.registry.keysOf('signer-3')).toEqual([]);
    expect(c.registry.rosterParticipants()).toEqual(['signer-1', 'signer-2']);
    // Epoch 0 was stored by keygen: still readable by epoch; an epoch never stored is refused.
    expect((await c.registry.keyAt(k.keyId, 0)).epoch).toBe(0);
    expect((await c.registry.keyAt(k.keyId, 1)).epoch).toBe(1);
    for (const e of [2, -1, 1.5, Number.NaN])
      await expect(c.registry.keyAt(k.keyId, e)).rejects.toMatchObject({ code: 'RESERVATION_INVALID' });
    expect(await c.store.get(layout.keyEpoch(k.keyId, 0))).toBeDefined();
  });
});

/** Commitment pools against real signer engines: validated on arrival, dropped on change, stale refills not pooled. */
import { describe, expect, it } from 'vitest';
import { services, signers } from './fixture.js';

type Services = Awaited<ReturnType<typeof services>>;

/** Lets the refills keygen started finish, so the test's own changes are not raced by them. */
async function settled(c: Services, keyId: string): Promise<void> {
  await Promise.all(c.participants.connected().map((id) => c.pools.refill(id, keyId)));
}

describe('CommitmentPools', () => {
  it('takes validated commitments of the asked signer, refilling in batches', async () => {
    const s = await signers(3);
    const c = await services(s, { batch: 4 });
    const k = await c.keygen.keygen({ suite: 'ed25519', threshold: 2 });
    const rec = c.registry.key(k.keyId);
    const id1 = rec.key.roster.find((r) => r.id === 'signer-1')?.identifier;
    const taken = await Promise.all(Array.from({ length: 10 }, () => c.pools.take('signer-1', rec)));
    expect(new Set(taken.map((t) => t.nonceId && Buffer.from(t.nonceId).toString('hex'))).size).toBe(10);
    for (const t of taken) expect(t.identifier).toBe(id1);
    await c.pools.refill('signer-1', k.keyId);
    expect(c.pools.size('signer-1')).toBeGreaterThan(0);
    c.pools.dropParticipant('signer-1');
    expect(c.pools.size('signer-1')).toBe(0);
    await c.pools.refill('signer-2', k.keyId);
    expect(c.pools.size('signer-2')).toBeGreaterThan(0);
    c.pools.dropKey(k.keyId);
    expect(c.pools.size('signer-2')).toBe(0);
  });

  it('drops commitments a signer sent for another participant or under another key, and says so', async () => {
    const s = await signers(3);
    const c = await services(s, { batch: 4 });
    const k = await c.keygen.keygen({ suite: 'ed25519', threshold: 2 });
    const rec = c.registry.key(k.keyId);
    await settled(c, k.keyId);
    c.pools.dropParticipant('signer-1');
    // signer-1's link hands out signer-2's commitments.
    const other = await s.handles[1]?.call({ body: 'commit', commit: { keyId: k.keyId, count: 4 } }, 5_000);
    s.tamper.set('signer-1', (r) => (r.body === 'commitments' ? (other ?? r) : r));
    c.events.length = 0;
    await expect(c.pools.take('signer-1', rec)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(c.pools.size('signer-1')).toBe(0);
    expect(
      c.events.some((e) => e.type === 'pool' && e.participant === 'signer-1' && e.cause === 'INVALID_ARGUMENT'),
    ).toBe(true);
  });

  it('a refill that raced a new epoch or a relink is not pooled', async () => {
    const s = await signers(3);
    const c = await services(s, { batch: 4 });
    const k = await c.keygen.keygen({ suite: 'ed25519', threshold: 2 });
    const rec = c.registry.key(k.keyId);
    await settled(c, k.keyId);
    c.pools.dropKey(k.keyId);
    // While signer-1 answers, the key moves to a new epoch (the registry's record is replaced).
    s.tamper.set('signer-1', (r) => {
      c.registry.set({ ...rec, epoch: rec.epoch + 1 });
      return r;
    });
    await c.pools.refill('signer-1', k.keyId);
    expect(c.pools.size('signer-1')).toBe(0);
    // While signer-2 answers, it relinks (a new handle): the old link's commitments may be gone.
    s.tamper.set('signer-2', (r) => {
      c.participants.link({ ...(s.handles[1] as (typeof s.handles)[number]) });
      return r;
    });
    await c.pools.refill('signer-2', k.keyId);
    expect(c.pools.size('signer-2')).toBe(0);
    // Undisturbed, the same refill pools.
    s.tamper.clear();
    await c.pools.refill('signer-2', k.keyId);
    expect(c.pools.size('signer-2')).toBeGreaterThan(0);
  });

  it('a signer that is not linked or gives nothing is UNAVAILABLE', async () => {
    const s = await signers(3);
    const c = await services(s, { batch: 4 });
    const k = await c.keygen.keygen({ suite: 'ed25519', threshold: 2 });
    const rec = c.registry.key(k.keyId);
    await settled(c, k.keyId);
    c.pools.dropParticipant('signer-3');
    c.participants.unlink('signer-3');
    await expect(c.pools.take('signer-3', rec)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    c.pools.dropParticipant('signer-2');
    s.down.add('signer-2');
    await expect(c.pools.take('signer-2', rec)).rejects.toThrow();
    expect(c.pools.size('signer-2')).toBe(0);
  });
});

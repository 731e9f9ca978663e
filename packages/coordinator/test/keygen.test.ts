/** Key generation against real signer engines: the roster checks, agreement, aborts and blame with proof. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { blame, type RoundFailure } from '../src/keygen.js';
import { services, signers } from './fixture.js';

describe('KeygenService', () => {
  it('a request that cannot run is refused before any participant hears of it', async () => {
    const s = await signers(3);
    const c = await services(s);
    c.participants.know('signer-9');
    const cases: [object, string][] = [
      [{ suite: 'ed25519', threshold: 2, participants: ['signer-1', 'ghost'] }, 'INVALID_ARGUMENT'],
      [{ suite: 'ed25519', threshold: 2, participants: ['signer-1', 'signer-9'] }, 'UNAVAILABLE'],
      [{ suite: 'ed25519', threshold: 2, participants: ['signer-1'] }, 'INVALID_ARGUMENT'],
      [{ suite: 'ed25519', threshold: 2, participants: ['signer-1', 'signer-1'] }, 'INVALID_ARGUMENT'],
      [{ suite: 'ed25519', threshold: 1 }, 'INVALID_ARGUMENT'],
      [{ suite: 'ed25519', threshold: 4 }, 'INVALID_ARGUMENT'],
      [{ suite: 'ed25519', threshold: 2.5 }, 'INVALID_ARGUMENT'],
      [{ suite: 'rsa', threshold: 2 }, 'INVALID_ARGUMENT'],
    ];
    for (const [req, code] of cases)
      await expect(c.keygen.keygen(req as never), JSON.stringify(req)).rejects.toMatchObject({ code });
    expect(s.sent.size).toBe(0);
    expect(c.registry.keys()).toEqual([]);
    expect(c.events.filter((e) => e.type === 'keygen' && !e.ok)).toHaveLength(cases.length);
  });

  it('default roster: every linked signer node; progress is reported; the key is stored and audited', async () => {
    const s = await signers(3);
    const c = await services(s);
    const stages: string[] = [];
    const k = await c.keygen.keygen({ suite: 'p256', threshold: 2 }, (x) => stages.push(x));
    expect(k.participants).toEqual(['signer-1', 'signer-2', 'signer-3']);
    expect(stages).toEqual(['round 1', 'round 2', 'confirmation', 'finalising']);
    for (const e of s.engines) expect(await e.keys()).toEqual([k.keyId]);
    expect((await c.audit.verify()).ok).toBe(true);
    expect(c.registry.summary(k.keyId)?.publicKey).toEqual(k.publicKey);
  });

  it('a participant answering out of turn is named with proof, and the DKG is aborted everywhere', async () => {
    const s = await signers(3);
    const c = await services(s);
    s.tamper.set('signer-2', (r, task) => (task.body === 'dkgBundle' ? { taskId: r.taskId, body: 'ok' } : r));
    await expect(c.keygen.keygen({ suite: 'ed25519', threshold: 2 })).rejects.toMatchObject({
      code: 'UNEXPECTED_MESSAGE',
      culprits: ['signer-2'],
    });
    await new Promise((r) => setTimeout(r, 50)); // the aborts go out without being awaited
    for (const id of ['signer-1', 'signer-2', 'signer-3']) expect(s.sent.get(id)).toContain('dkgAbort');
    expect(c.registry.keys()).toEqual([]);
  });

  it('an unreachable participant fails the DKG as UNAVAILABLE, naming nobody', async () => {
    const s = await signers(3);
    const c = await services(s);
    s.down.add('signer-3');
    await expect(c.keygen.keygen({ suite: 'ed25519', threshold: 2 })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      culprits: [],
    });
  });
});

describe('blame', () => {
  const failure = fc.record({
    id: fc.constantFrom('a', 'b', 'c', 'd'),
    code: fc.constant('X'),
    message: fc.constant(''),
    culprits: fc.subarray(['a', 'b', 'c', 'd']),
    proven: fc.boolean(),
  });

  it('names only what was seen or what enough distinct others report (one liar cannot frame)', () => {
    fc.assert(
      fc.property(fc.array(failure, { maxLength: 6 }), fc.integer({ min: 2, max: 5 }), (failures, n) => {
        const named = blame(failures as RoundFailure[], n);
        const needed = n > 2 ? 2 : 1;
        for (const x of named) {
          const proven = failures.some((f) => f.proven && f.id === x);
          const reporters = new Set(failures.filter((f) => f.id !== x && f.culprits.includes(x)).map((f) => f.id));
          expect(proven || reporters.size >= needed, x).toBe(true);
        }
        for (const f of failures) if (f.proven) expect(named).toContain(f.id);
      }),
    );
  });

  it('with three or more participants, one report is not enough; two are', () => {
    const one: RoundFailure[] = [{ id: 'a', code: 'X', message: '', culprits: ['b'] }];
    expect(blame(one, 3)).toEqual([]);
    expect(blame(one, 2)).toEqual(['b']);
    expect(blame([...one, { id: 'c', code: 'X', message: '', culprits: ['b'] }], 3)).toEqual(['b']);
    expect(blame([{ id: 'a', code: 'X', message: '', culprits: ['a', 'a'] }], 2)).toEqual([]);
  });
});

/** Participants: links, known ids and slow peers (pure logic, a clock the test moves). */
import { describe, expect, it } from 'vitest';
import { ParticipantIdentity } from '@tessera/core';
import { Participants, SLOW_FOR_MS } from '../src/participants.js';
import type { ParticipantHandle } from '../src/types.js';

function handle(id: string): ParticipantHandle {
  return {
    info: ParticipantIdentity.generate(id).public,
    connectedSince: 0,
    call: async () => ({ taskId: 0, body: 'ok' }),
  };
}

describe('Participants', () => {
  it('a stale link cannot unlink the newer one; the id stays known after it leaves', () => {
    const p = new Participants(() => 0);
    const old = handle('signer-1');
    const fresh = handle('signer-1');
    p.link(old);
    p.link(fresh);
    expect(p.get('signer-1')).toBe(fresh);
    expect(p.unlink('signer-1', old)).toBe(false);
    expect(p.linked('signer-1')).toBe(true);
    expect(p.unlink('signer-1', fresh)).toBe(true);
    expect(p.unlink('signer-1')).toBe(false);
    expect(p.linked('signer-1')).toBe(false);
    expect(p.isKnown('signer-1')).toBe(true);
    expect(p.isKnown('signer-2')).toBe(false);
    p.know('signer-2');
    expect(p.isKnown('signer-2')).toBe(true);
    expect(p.connected()).toEqual([]);
  });

  it('connected() is sorted; handles() are the current links', () => {
    const p = new Participants(() => 0);
    for (const id of ['c', 'a', 'b']) p.link(handle(id));
    expect(p.connected()).toEqual(['a', 'b', 'c']);
    expect(
      p
        .handles()
        .map((h) => h.info.id)
        .sort(),
    ).toEqual(['a', 'b', 'c']);
  });

  it('a peer that timed out goes last for SLOW_FOR_MS, order otherwise kept; relinking clears it', () => {
    let now = 1_000;
    const p = new Participants(() => now);
    const ids = ['s1', 's2', 's3', 's4'];
    for (const id of ids) p.link(handle(id));
    expect(p.fastFirst(ids)).toEqual(ids);
    p.markSlow('s1');
    p.markSlow('s3');
    expect(p.fastFirst(ids)).toEqual(['s2', 's4', 's1', 's3']);
    expect(ids).toEqual(['s1', 's2', 's3', 's4']); // the input is not reordered
    now += SLOW_FOR_MS - 1;
    expect(p.fastFirst(ids)).toEqual(['s2', 's4', 's1', 's3']);
    p.link(handle('s3'));
    expect(p.fastFirst(ids)).toEqual(['s2', 's3', 's4', 's1']);
    now += 1;
    expect(p.fastFirst(ids)).toEqual(ids);
  });
});

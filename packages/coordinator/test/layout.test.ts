/**
 * The store layout is the one place record keys are made: no prefix is a prefix of another,
 * every entry builds keys under a declared prefix, and no other coordinator source spells a
 * store key itself.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { layout, layoutPrefixes } from '../src/layout.js';

const src = fileURLToPath(new URL('../src', import.meta.url));

/** A key of every layout entry, with sample arguments (one per entry: a new entry must be added here). */
function sampleKeys(): string[] {
  const b = new Uint8Array([1, 2, 3]);
  const samples = [
    layout.clusterId,
    layout.keys,
    layout.key('k'),
    layout.keyEpoch('k', 1),
    layout.lifecycle('k', 1),
    layout.ack('p', 'k'),
    layout.devices,
    layout.device('d'),
    layout.deviceClass('d'),
    layout.deviceClasses,
    layout.revoked('d'),
    layout.admission('d'),
    layout.enrolToken('h'),
    layout.revocations,
    layout.revocation(b),
    layout.packages,
    layout.package('p'),
    layout.devicePackages('d'),
    layout.allDevicePackages,
    layout.devicePackage('d', 'p'),
    layout.reservationUse('s', b),
    layout.result(b, b),
  ];
  expect(samples).toHaveLength(Object.keys(layout).length);
  return samples;
}

describe('coordinator store layout', () => {
  it('no prefix is a prefix of another', () => {
    for (const a of layoutPrefixes)
      for (const b of layoutPrefixes) if (a !== b) expect(b.startsWith(a), `${a} is a prefix of ${b}`).toBe(false);
  });

  it('every entry makes keys under exactly one declared prefix, and every prefix is used', () => {
    const used = new Set<string>();
    for (const k of sampleKeys()) {
      const under = layoutPrefixes.filter((p) => k.startsWith(p));
      expect(under, k).toHaveLength(1);
      used.add(under[0] as string);
    }
    expect([...used].sort()).toEqual([...layoutPrefixes].sort());
  });

  it('keys of distinct records differ (hex-encoded byte ids, epochs in their own segment)', () => {
    expect(layout.keyEpoch('k', 1)).not.toBe(layout.keyEpoch('k', 11));
    expect(layout.result(new Uint8Array([1]), new Uint8Array([2, 3]))).not.toBe(
      layout.result(new Uint8Array([1, 2]), new Uint8Array([3])),
    );
    expect(layout.reservationUse('s', new Uint8Array([0xab]))).toBe('resv/s/ab');
  });

  it('no other coordinator source spells a store key', () => {
    const spelled = new RegExp(`['\`](${layoutPrefixes.map((p) => p.replace('/', '\\/')).join('|')})`);
    for (const f of readdirSync(src).filter((x) => x.endsWith('.ts') && x !== 'layout.ts')) {
      const text = readFileSync(join(src, f), 'utf8');
      const hits = text.split('\n').filter((l) => spelled.test(l) && !/^(\/\*|\*|\/\/)/.test(l.trim()));
      expect(hits, f).toEqual([]);
    }
  });
});

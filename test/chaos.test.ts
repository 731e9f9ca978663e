/**
 * Crash chaos, CI size: a `tessera dev` cluster (coordinator + 3 signer processes) and a device
 * process run ~80 sessions — online signatures in all four suites and offline device packages
 * (ed25519, secp256k1-tr) — while about eight SIGKILLs hit the coordinator, a signer, the device
 * or every daemon at once. Afterwards every acknowledged request has completed exactly once
 * with a verifying signature, no nonce or reservation was used twice (checked from every
 * signer's ledger, attempt records and audit log), and every audit chain verifies. See
 * test/chaos/chaos.ts for the checks; `npm run chaos` is the long run.
 */
import { describe, expect, it } from 'vitest';
import { runChaos } from './chaos/chaos.js';

const SEED = Number(process.env.TESSERA_CHAOS_SEED ?? 20240611);

describe('crash chaos (CI size)', () => {
  it('80 sessions under ~8 kill -9s: nothing lost, nothing completed twice, no nonce reused, audit chains intact', async () => {
    const lines: string[] = [];
    const r = await runChaos({
      sessions: 80,
      seed: SEED,
      killEvery: 9,
      maxKills: 8,
      durationLimitMs: 50_000,
      log: (l) => lines.push(`${new Date().toISOString().slice(11, 23)} ${l}`),
    });
    // eslint-disable-next-line no-console
    console.log(`chaos (seed ${SEED}): ${JSON.stringify({ sessions: r.sessions, online: r.online, offline: r.offline, kills: r.kills, retries: r.retries, lost: r.lost, duplicated: r.duplicated, reused: r.reused, durationMs: r.durationMs, phases: r.phases })}`);
    const context = `\n${r.problems.join('\n')}\n--- log\n${lines.join('\n')}`;
    expect(r.problems, context).toEqual([]);
    expect(r.lost).toBe(0);
    expect(r.duplicated).toBe(0);
    expect(r.reused).toBe(0);
    // The run did what it claims: every session acknowledged, kills of each kind of process.
    expect(r.online.unfinished + r.offline.unfinished, context).toBe(0);
    expect(r.online.acknowledged + r.offline.acknowledged).toBe(80);
    expect(r.offline.completed).toBe(r.offline.acknowledged);
    expect(r.kills.total, context).toBeGreaterThanOrEqual(6);
    expect(Object.keys(r.online.bySuite).sort()).toEqual(['ed25519', 'p256', 'secp256k1', 'secp256k1-tr']);
    expect(Object.keys(r.offline.bySuite).sort()).toEqual(['ed25519', 'secp256k1-tr']);
    expect(r.ledgers.reservationsConsumed).toBe(r.offline.completed);
  }, 110_000);
});

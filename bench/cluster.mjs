/**
 * A dev cluster (coordinator + n signer processes over mTLS, as `tessera dev` runs it) for the
 * cluster rows of the benchmark, and a closed-loop load generator with a given concurrency.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createSignIntent, decodeMessage, getSuite } from '@tessera/core';
import { keygen, openClient, startDev } from '@tessera/cli';

export async function startBenchCluster(n) {
  const dir = join(mkdtempSync(join(tmpdir(), 'tessera-bench-')), '.tessera');
  const dev = await startDev({ dir, signers: n, port: 0 });
  const client = openClient(dir);
  for (let i = 0; i < 200; i++) {
    const s = await client.call('Status', {}).catch(() => undefined);
    if (s && s.participants.filter((p) => p.connected).length >= n) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    keygen: (suite, t) => keygen(client, { suite, threshold: t }),
    /** Closed loop: `conc` requesters each sign back to back for `durationMs`. */
    async throughput(suiteId, keyId, conc, durationMs) {
      const suite = getSuite(suiteId);
      const msg = new Uint8Array(32).fill(9);
      const one = async () => {
        const intent = createSignIntent(client.requester, { suite, keyId, message: msg, requestId: new Uint8Array(randomBytes(16)), notAfter: Date.now() + 60_000 });
        await client.call('Sign', { intent: decodeMessage('Envelope', intent), signers: [] });
      };
      for (let i = 0; i < Math.min(conc, 4); i++) await one(); // warm pools and JITs
      const lat = [];
      const errors = {};
      const start = performance.now();
      const end = start + durationMs;
      await Promise.all(Array.from({ length: conc }, async () => {
        while (performance.now() < end) {
          const t = performance.now();
          try {
            await one();
            lat.push(performance.now() - t);
          } catch (e) {
            errors[e.code ?? 'ERROR'] = (errors[e.code ?? 'ERROR'] ?? 0) + 1;
            if (process.env.BENCH_DEBUG && !errors._first) errors._first = e.message;
          }
        }
      }));
      const total = performance.now() - start;
      const s = lat.sort((a, b) => a - b);
      const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
      return { opsPerSec: (lat.length / total) * 1000, p50Ms: q(0.5) ?? 0, p99Ms: q(0.99) ?? 0, n: lat.length, errors };
    },
    async stop() {
      client.close();
      await dev.stop();
      rmSync(join(dir, '..'), { recursive: true, force: true });
    },
  };
}

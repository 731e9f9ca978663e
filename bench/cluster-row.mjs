#!/usr/bin/env node
/**
 * Cluster rows on their own, for profiling and A/B runs: `npm run build && node
 * bench/cluster-row.mjs [suite] [concurrencies] [ms]` starts a 2-of-3 dev cluster, and for each
 * concurrency (comma-separated, default 8) warms it, signs closed-loop for `ms` and prints
 * throughput, p50, the CPU each process spent per signature, and the ratios of issue 7 against
 * tessera-flow measured in this process half before and half after the row (as `npm run bench`).
 * With TESSERA_CPU_PROF=<dir> every cluster process also writes a V8 CPU profile there.
 */
import * as core from '@tessera/core';
import { startBenchCluster } from './cluster.mjs';
import { tesseraFlow } from './flow-procs.mjs';

const [suite = 'ed25519', concs = '8', ms = '8000'] = process.argv.slice(2);
const f = (x) => Math.round(x * 100) / 100;

// The baseline: the same signing work through Tessera's protocol path in this process.
const people = Array.from({ length: 3 }, (_, i) => core.ParticipantIdentity.generate(`p${i + 1}`));
const out = core.runLocalDkg(core.getSuite(suite), 2, people);
const key = out.get('p1').key;
const shares = new Map([...out].map(([id, o]) => [id, o.share]));
const msg = new Uint8Array(32).fill(7);
const flowMsPerSig = (budgetMs) => {
  for (let i = 0; i < 5; i++) tesseraFlow(core, key, shares, ['p1', 'p2'], msg);
  let n = 0;
  const t = performance.now();
  while (performance.now() - t < budgetMs) {
    tesseraFlow(core, key, shares, ['p1', 'p2'], msg);
    n++;
  }
  return { n, ms: performance.now() - t };
};

const c = await startBenchCluster(3);
try {
  const k = await c.keygen(suite, 2);
  for (const conc of concs.split(',').map(Number)) {
    const a = flowMsPerSig(1000);
    const r = await c.throughput(suite, k.keyId, conc, Number(ms), 2000);
    const b = flowMsPerSig(1000);
    const flowMs = (a.ms + b.ms) / (a.n + b.n);
    console.log(JSON.stringify({
      suite, concurrency: conc, opsPerSec: f(r.opsPerSec), p50Ms: f(r.p50Ms), p99Ms: f(r.p99Ms), errors: r.errors,
      ...Object.fromEntries(Object.entries(r.cpu).map(([k, v]) => [k, f(v)])),
      flowMs: f(flowMs), throughputVsFlow: f(r.opsPerSec / (1000 / flowMs)), p50VsFlowTime: f(r.p50Ms / flowMs),
    }));
  }
} finally {
  await c.stop();
}

#!/usr/bin/env node
/**
 * One cluster row on its own, for profiling: `npm run build && node bench/cluster-row.mjs
 * [suite] [concurrency] [ms]` starts a 2-of-3 dev cluster, warms it, signs closed-loop for `ms`
 * and prints throughput, p50 and the CPU each process spent per signature. With
 * TESSERA_CPU_PROF=<dir> every cluster process also writes a V8 CPU profile there.
 */
import { startBenchCluster } from './cluster.mjs';

const [suite = 'ed25519', conc = '8', ms = '8000'] = process.argv.slice(2);
const c = await startBenchCluster(3);
try {
  const k = await c.keygen(suite, 2);
  const r = await c.throughput(suite, k.keyId, Number(conc), Number(ms), 2000);
  const f = (x) => Math.round(x * 100) / 100;
  console.log(JSON.stringify({ suite, concurrency: Number(conc), opsPerSec: f(r.opsPerSec), p50Ms: f(r.p50Ms), p99Ms: f(r.p99Ms), errors: r.errors, ...Object.fromEntries(Object.entries(r.cpu).map(([k, v]) => [k, f(v)])) }));
} finally {
  await c.stop();
}

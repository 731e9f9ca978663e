#!/usr/bin/env node
/**
 * Cluster rows on their own, for profiling and A/B runs: `npm run build && node
 * bench/cluster-row.mjs [suite] [concurrencies] [ms]` starts a 2-of-3 dev cluster, and for each
 * concurrency (comma-separated, default 8) warms it, signs closed-loop for `ms` and prints
 * throughput, p50, the CPU each process spent per signature, and the ratios of issue 7 against
 * tessera-flow measured half before and half after the row in a process of its own (as
 * `npm run bench` does). With TESSERA_CPU_PROF=<dir> every cluster process also writes a V8 CPU
 * profile there.
 */
import { startBenchCluster } from './cluster.mjs';
import { flowBaseline } from './flow-procs.mjs';

const [suite = 'ed25519', concs = '8', ms = '8000'] = process.argv.slice(2);
const f = (x) => Math.round(x * 100) / 100;

const c = await startBenchCluster(3);
const baseline = await flowBaseline(suite);
try {
  const k = await c.keygen(suite, 2);
  for (const conc of concs.split(',').map(Number)) {
    const a = await baseline.measure(1000);
    const r = await c.throughput(suite, k.keyId, conc, Number(ms), 2000);
    const b = await baseline.measure(1000);
    const flowMs = (a.ms + b.ms) / (a.lat.length + b.lat.length);
    console.log(
      JSON.stringify({
        suite,
        concurrency: conc,
        opsPerSec: f(r.opsPerSec),
        p50Ms: f(r.p50Ms),
        p99Ms: f(r.p99Ms),
        errors: r.errors,
        ...Object.fromEntries(Object.entries(r.cpu).map(([k, v]) => [k, f(v)])),
        flowMs: f(flowMs),
        flowBeforeMs: f(a.ms / a.lat.length),
        flowAfterMs: f(b.ms / b.lat.length),
        throughputVsFlow: f(r.opsPerSec / (1000 / flowMs)),
        p50VsFlowTime: f(r.p50Ms / flowMs),
      }),
    );
  }
} finally {
  baseline.stop();
  await c.stop();
}

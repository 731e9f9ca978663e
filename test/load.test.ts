/**
 * Load: 64 concurrent requesters signing back-to-back for a sustained period against a real
 * cluster (a coordinator process and 3 signer processes, mTLS, each signer on its own LevelDB),
 * with the coordinator's admission bound set LOW (maxInFlight = 16, through the
 * TESSERA_COORDINATOR_MAX_IN_FLIGHT environment override that loadConfig reads), so most of the
 * time the offered load is four times what the coordinator admits.
 *
 * What must hold:
 * - beyond capacity, the only failure is the typed back-pressure error: gRPC RESOURCE_EXHAUSTED
 *   carrying the Tessera code RESOURCE_EXHAUSTED; nothing else fails;
 * - many requests succeed and every returned signature passes the plain single-party verifier
 *   for the message that was asked for;
 * - nothing hangs: every call has a deadline and none hits it;
 * - memory stays bounded: the resident set of the coordinator and of every signer (their own
 *   `tessera_process_resident_memory_bytes` metric) grows by less than 150 MB from the warmed-up
 *   start to the end;
 * - nothing is stuck afterwards: the coordinator reports 0 requests in flight and a normal sign
 *   succeeds at once.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSignIntent, decodeMessage, getSuite, type SuiteId } from '@tessera/core';
import { grpc } from '@tessera/runtime';
import { startCluster, type TestCluster } from './harness.js';

const REQUESTERS = 64;
const MAX_IN_FLIGHT = 16;
const LOAD_MS = 15_000;
const CALL_DEADLINE_MS = 10_000;
const RSS_BOUND = 150 * 1024 * 1024;
const SUITE: SuiteId = 'ed25519';

let cluster: TestCluster;
let keyId: string;
let publicKey: Uint8Array;

/** The value of an unlabelled-or-labelled sample `name` on a Prometheus text page. */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(url)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  if (!line) throw new Error(`${name} not found at ${url}`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Every daemon's metrics page: the coordinator and the three signers. */
async function metricsUrls(): Promise<Record<string, string>> {
  const out: Record<string, string> = { coordinator: (await cluster.coordinator.ready).metricsUrl as string };
  for (const [id, p] of cluster.signers) out[id] = (await p.ready).metricsUrl as string;
  return out;
}

async function rss(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [who, url] of Object.entries(await metricsUrls()))
    out[who] = await metric(url, 'tessera_process_resident_memory_bytes');
  return out;
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

/** One Sign call with its own deadline, the intent signed by the cluster's requester. */
function signOnce(message: Uint8Array): Promise<{ signature: Uint8Array; signers: string[] }> {
  const intent = createSignIntent(cluster.requester, {
    suite: getSuite(SUITE),
    keyId,
    message,
    requestId: new Uint8Array(randomBytes(16)),
    notAfter: Date.now() + 60_000,
  });
  return cluster.call('Sign', { intent: decodeMessage('Envelope', intent), signers: [] }, CALL_DEADLINE_MS);
}

beforeAll(async () => {
  // The coordinator process reads TESSERA_COORDINATOR_* overrides on top of its config file;
  // vitest runs each file in its own process, so this reaches only this file's daemons.
  process.env.TESSERA_COORDINATOR_MAX_IN_FLIGHT = String(MAX_IN_FLIGHT);
  cluster = await startCluster(3);
  const key = await cluster.keygen(SUITE, 2);
  keyId = key.keyId;
  publicKey = new Uint8Array(key.publicKey);
}, 60_000);

afterAll(async () => {
  delete process.env.TESSERA_COORDINATOR_MAX_IN_FLIGHT;
  await cluster?.stop();
});

describe(`load: ${REQUESTERS} concurrent requesters, maxInFlight ${MAX_IN_FLIGHT}, ${LOAD_MS / 1000} s`, () => {
  it('beyond capacity only RESOURCE_EXHAUSTED; every signature verifies; no call hangs; RSS bounded; nothing stuck', async () => {
    // Warm-up (JIT, pools, LevelDB caches) before the baseline is taken.
    for (let i = 0; i < 20; i++) await signOnce(new Uint8Array(randomBytes(32)));
    const before = await rss();

    let ok = 0;
    let exhausted = 0;
    let deadlines = 0;
    let badSignatures = 0;
    let maxLatency = 0;
    const other = new Map<string, number>();
    const peak: Record<string, number> = { ...before };
    const stopAt = Date.now() + LOAD_MS;

    const coordinatorMetrics = (await metricsUrls()).coordinator as string;
    let peakInFlight = 0;
    const sampler = setInterval(() => {
      rss().then(
        (r) => {
          for (const [k, v] of Object.entries(r)) peak[k] = Math.max(peak[k] ?? 0, v);
        },
        () => {},
      );
      metric(coordinatorMetrics, 'tessera_requests_in_flight').then(
        (n) => (peakInFlight = Math.max(peakInFlight, n)),
        () => {},
      );
    }, 500);

    const requester = async (n: number) => {
      let i = 0;
      while (Date.now() < stopAt) {
        const message = new TextEncoder().encode(`requester ${n} request ${i++} ${Date.now()}`);
        const t0 = Date.now();
        try {
          const r = await signOnce(message);
          maxLatency = Math.max(maxLatency, Date.now() - t0);
          if (getSuite(SUITE).verify(new Uint8Array(r.signature), message, publicKey)) ok++;
          else badSignatures++;
        } catch (e) {
          const err = e as { code?: string; status?: number };
          if (err.code === 'RESOURCE_EXHAUSTED' && err.status === grpc.status.RESOURCE_EXHAUSTED) {
            exhausted++;
            // A well-behaved client backs off briefly (jittered) before it retries.
            await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
          } else if (err.code === 'DEADLINE' || err.status === grpc.status.DEADLINE_EXCEEDED) deadlines++;
          else {
            const what = `${err.code}/${err.status}: ${(e as Error).message.slice(0, 120)}`;
            other.set(what, (other.get(what) ?? 0) + 1);
          }
        }
      }
    };
    const t0 = Date.now();
    await Promise.all(Array.from({ length: REQUESTERS }, (_, n) => requester(n)));
    const elapsed = (Date.now() - t0) / 1000;
    clearInterval(sampler);
    const after = await rss();

    const urls = await metricsUrls();
    const inFlight = await metric(urls.coordinator as string, 'tessera_requests_in_flight');
    const rejectedByMetric = await metricText(
      urls.coordinator as string,
      'tessera_signatures_total',
      'cause="RESOURCE_EXHAUSTED"',
    );

    // After the load: a normal sign goes through at once.
    const t1 = Date.now();
    const final = new TextEncoder().encode('after the storm');
    const r = await signOnce(final);
    const finalMs = Date.now() - t1;

    const lines = [
      `load: ${REQUESTERS} requesters x ${elapsed.toFixed(1)} s, maxInFlight ${MAX_IN_FLIGHT}`,
      `  signed ${ok} (${(ok / elapsed).toFixed(0)}/s, slowest ${maxLatency} ms), RESOURCE_EXHAUSTED ${exhausted} (metric ${rejectedByMetric}), deadline ${deadlines}, bad signatures ${badSignatures}, other ${JSON.stringify([...other])}`,
      ...Object.keys(before).map(
        (k) =>
          `  RSS ${k}: ${mb(before[k] as number)} -> peak ${mb(peak[k] as number)} -> end ${mb(after[k] as number)}`,
      ),
      `  coordinator in flight: peak ${peakInFlight} (bound ${MAX_IN_FLIGHT}), after the load ${inFlight}; a normal sign then took ${finalMs} ms`,
    ];
    console.log(lines.join('\n'));

    expect([...other]).toEqual([]);
    expect(deadlines).toBe(0);
    expect(badSignatures).toBe(0);
    // "Many": the machine is shared (2 cores, other suites alongside), so the floor is modest; the
    // figures printed above are what was measured.
    expect(ok).toBeGreaterThan(50);
    expect(peakInFlight).toBeGreaterThan(0);
    expect(peakInFlight).toBeLessThanOrEqual(MAX_IN_FLIGHT);
    // The offered load (64) is four times the admission bound (16): back-pressure must have occurred.
    expect(exhausted).toBeGreaterThan(0);
    expect(rejectedByMetric).toBe(exhausted);
    for (const k of Object.keys(before))
      expect((after[k] as number) - (before[k] as number), `RSS growth of ${k}`).toBeLessThan(RSS_BOUND);
    expect(inFlight).toBe(0);
    expect(getSuite(SUITE).verify(new Uint8Array(r.signature), final, publicKey)).toBe(true);
    expect(finalMs).toBeLessThan(5_000);
  }, 90_000);
});

/** The value of the sample of `name` whose labels contain `labels`. */
async function metricText(url: string, name: string, labels: string): Promise<number> {
  const text = await (await fetch(url)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

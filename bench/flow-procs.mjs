/**
 * `tessera-flow` in processes of its own. In several at once: how much throughput this machine's
 * cores give the flow (the capacity a cluster on the same cores competes for). In one warmed
 * process kept for a suite: the baseline of the cluster rows ({@link flowBaseline}).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The 2-of-3 signing work through Tessera's protocol path (core's commit/signShare/SigningSession). */
export function tesseraFlow(core, key, shares, quorum, msg) {
  const nonces = new Map();
  const list = [];
  for (const id of quorum) {
    const c = core.commit(shares.get(id));
    nonces.set(id, c.nonces);
    list.push(c.commitment);
  }
  const session = new core.SigningSession(key, msg, list);
  return session.aggregate(
    new Map(quorum.map((id) => [id, core.signShare(shares.get(id), key, nonces.get(id), list, msg)])),
  );
}

if (process.argv[2] === 'child') {
  const core = await import('@tessera/core');
  const [suiteId, warm, t = '2', n = '3'] = process.argv.slice(3);
  const suite = core.getSuite(suiteId);
  let flow;
  if (suite.scheme === 'ecdsa') {
    // Threshold ECDSA: the whole DKLs23 flow, 2-of-3 (bench/ecdsa.mjs).
    flow = (await import('./ecdsa.mjs')).ecdsaFlow();
  } else {
    const people = Array.from({ length: Number(n) }, (_, i) => core.ParticipantIdentity.generate(`p${i + 1}`));
    const out = core.runLocalDkg(suite, Number(t), people);
    const key = out.get('p1').key;
    const shares = new Map([...out].map(([id, o]) => [id, o.share]));
    const msg = new Uint8Array(32).fill(7);
    const quorum = people.slice(0, Number(t)).map((p) => p.id);
    flow = () => tesseraFlow(core, key, shares, quorum, msg);
  }
  // Warm until the JIT has settled (a fixed count left the first measured second slower).
  const warmEnd = performance.now() + Number(warm);
  do flow();
  while (performance.now() < warmEnd);
  process.send('ready');
  // Each message asks for one measurement of `ms`; the answer is its per-flow latencies.
  process.on('message', (ms) => {
    const lat = [];
    const t = performance.now();
    while (performance.now() - t < ms) {
      const s = performance.now();
      flow();
      lat.push(performance.now() - s);
    }
    process.send({ lat, ms: performance.now() - t });
  });
}

function start(suiteId, warmMs, t = 2, n = 3) {
  const kid = fork(fileURLToPath(import.meta.url), ['child', suiteId, String(warmMs), String(t), String(n)]);
  const ready = new Promise((resolve, reject) => {
    kid.once('message', resolve);
    kid.once('exit', (code) => reject(new Error(`flow baseline process exited (${code})`)));
  });
  const measure = async (ms) => {
    await ready;
    return new Promise((resolve) => {
      kid.once('message', resolve);
      kid.send(ms);
    });
  };
  return { ready, measure, stop: () => kid.kill() };
}

/** Total flows/s of `procs` processes running the suite's 2-of-3 flow concurrently. */
export async function flowInProcesses(suiteId, procs, ms) {
  const kids = Array.from({ length: procs }, () => start(suiteId, 1000));
  try {
    await Promise.all(kids.map((k) => k.ready));
    const runs = await Promise.all(kids.map((k) => k.measure(ms)));
    return runs.reduce((a, r) => a + (r.lat.length / r.ms) * 1000, 0);
  } finally {
    for (const k of kids) k.stop();
  }
}

/**
 * A warmed process that runs the suite's t-of-n flow on request: the cluster rows' baseline. Its
 * heap and JIT see only the flow, so the load generator's garbage and type feedback (this
 * process's) cannot slow the baseline (the first second after a c8 row ran ~50% slower here).
 * Idle between measurements. `measure(ms)` gives `{lat: per-flow ms[], ms}`.
 */
export async function flowBaseline(suiteId, t = 2, n = 3) {
  const k = start(suiteId, 2000, t, n);
  await k.ready;
  return { measure: k.measure, stop: k.stop };
}

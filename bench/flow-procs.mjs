/**
 * `tessera-flow` in several processes at once: how much throughput this machine's cores give the
 * in-process flow (the capacity a cluster on the same cores competes for). Each child runs the
 * same 2-of-3 flow as bench.mjs for `ms` milliseconds, all children starting together.
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
  return session.aggregate(new Map(quorum.map((id) => [id, core.signShare(shares.get(id), key, nonces.get(id), list, msg)])));
}

if (process.argv[2] === 'child') {
  const core = await import('@tessera/core');
  const suite = core.getSuite(process.argv[3]);
  const people = Array.from({ length: 3 }, (_, i) => core.ParticipantIdentity.generate(`p${i + 1}`));
  const out = core.runLocalDkg(suite, 2, people);
  const key = out.get('p1').key;
  const shares = new Map([...out].map(([id, o]) => [id, o.share]));
  const msg = new Uint8Array(32).fill(7);
  const flow = () => tesseraFlow(core, key, shares, ['p1', 'p2'], msg);
  for (let i = 0; i < 30; i++) flow();
  process.send('ready');
  process.once('message', (ms) => {
    let n = 0;
    const t = performance.now();
    while (performance.now() - t < ms) {
      flow();
      n++;
    }
    process.send((n / (performance.now() - t)) * 1000);
  });
}

/** Total flows/s of `procs` processes running the suite's 2-of-3 flow concurrently. */
export async function flowInProcesses(suiteId, procs, ms) {
  const kids = Array.from({ length: procs }, () => fork(fileURLToPath(import.meta.url), ['child', suiteId]));
  try {
    await Promise.all(kids.map((k) => new Promise((r) => k.once('message', r))));
    const rates = await Promise.all(kids.map((k) => new Promise((r) => {
      k.once('message', r);
      k.send(ms);
    })));
    return rates.reduce((a, b) => a + b, 0);
  } finally {
    for (const k of kids) k.kill();
  }
}

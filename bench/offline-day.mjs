/**
 * offline-day: a day of offline payments, compressed. `devices` phones (each its own 2-of-3 key
 * with two signer nodes, through the real gateway) pay `payments` times in total while offline;
 * at random moments a random phone comes back and syncs, and a merchant delivers some of the same
 * packages again on its own; at the end every phone syncs, in random order. Then the day is
 * reconciled: every payment completed exactly once (zero double charges: one signature per
 * package, every re-delivery answered with the same one; zero lost: nothing pending or failed),
 * every signature verifies, every phone's journal agrees with its queue and with the cluster's
 * record of it, and the coordinator's offline KPIs for the run are reported.
 *
 * Alone: node bench/offline-day.mjs [devices] [payments]  (default 20 1000)
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromHex, getSuite, toHex } from '@tessera/core';
import { admitDevice, devOperatorFiles, openClient, status } from '@tessera/cli';
import { Device } from '@tessera/device';

/** A small deterministic generator (mulberry32): the same day for the same seed. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function offlineDay(
  cluster,
  { suiteId = 'ed25519', devices = 20, payments = 1000, seed = 20261206 } = {},
) {
  const random = rng(seed);
  const pick = (n) => Math.floor(random() * n);
  const client = openClient(cluster.dir);
  const gateway = JSON.parse(readFileSync(join(cluster.dir, 'client.json'), 'utf8')).deviceUrl;
  const suite = getSuite(suiteId);
  const phones = [];
  try {
    const perPhone = Math.ceil(payments / devices);
    for (let i = 0; i < devices; i++) {
      const id = `day-phone-${String(i).padStart(2, '0')}`;
      const location = join(cluster.dir, '..', id);
      const d = await Device.open({ location, storageKey: new Uint8Array(32).fill(i + 1) });
      await d.init(id);
      const { token } = await client.call('IssueEnrolmentToken', { ttlMs: 600_000, label: 'offline-day' });
      await d.enrol(gateway, token, { deviceClass: i % 2 ? 'android' : 'ios' });
      await admitDevice(client, id, devOperatorFiles(cluster.dir));
      const key = await d.keygen(gateway, { suite: suiteId, threshold: 2, with: ['signer-1', 'signer-2'] });
      // Each phone's allowance covers its share of the day and a little more (left unused).
      await d.reserve(gateway, { keyId: key.keyId, count: perPhone + 10 });
      phones.push({ id, d, key, location, paid: [] });
    }

    const merchantCopies = [];
    let syncs = 0;
    let syncMs = 0;
    const sync = async (p) => {
      const t0 = performance.now();
      const r = await p.d.sync(gateway);
      syncMs += performance.now() - t0;
      syncs++;
      if (r.failed.length) throw new Error(`offline-day: ${p.id} sync failed: ${JSON.stringify(r.failed[0])}`);
      return r;
    };
    const payStart = performance.now();
    for (let n = 0; n < payments; n++) {
      // A phone with allowance left pays; its package is what a merchant's terminal received.
      const candidates = phones.filter((p) => p.paid.length < perPhone);
      const p = candidates[pick(candidates.length)];
      const message = new Uint8Array(32);
      new DataView(message.buffer).setUint32(0, n);
      message.set(new TextEncoder().encode(p.id).subarray(0, 16), 8);
      const pkg = await p.d.signOffline({ keyId: p.key.keyId, message });
      p.paid.push({ packageId: pkg.packageId, message: toHex(message) });
      // One package in ten also reaches the cluster from the merchant, before or after the phone's own sync.
      if (random() < 0.1) merchantCopies.push(pkg.bytes);
      // About forty reconnects over the day, of random phones.
      if (random() < 40 / payments) await sync(phones[pick(phones.length)]);
      if (merchantCopies.length && random() < 0.05) {
        const bytes = merchantCopies.splice(pick(merchantCopies.length), 1)[0];
        await client.call('SubmitPackage', { package: bytes });
      }
    }
    const payMs = performance.now() - payStart;
    // The end of the day: every phone syncs, in random order; the merchant's last copies go in too.
    const order = [...phones];
    for (let i = order.length - 1; i > 0; i--) {
      const j = pick(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    const endStart = performance.now();
    let endCompleted = 0;
    await Promise.all([
      (async () => {
        for (const p of order) endCompleted += (await sync(p)).completed.length;
      })(),
      (async () => {
        for (const bytes of merchantCopies) await client.call('SubmitPackage', { package: bytes });
      })(),
    ]);
    const endMs = performance.now() - endStart;
    // A second pass finds nothing left to do.
    let again = 0;
    for (const p of phones) again += (await sync(p)).completed.length;

    // Reconcile: every payment once, nothing lost, every signature valid, journal = queue = cluster.
    let completed = 0;
    let lost = 0;
    let doubleCharges = 0;
    let discrepancies = 0;
    let mismatches = 0;
    for (const p of phones) {
      const queue = await p.d.queue();
      const byId = new Map(queue.map((q) => [q.packageId, q]));
      for (const paid of p.paid) {
        const q = byId.get(paid.packageId);
        if (q?.state !== 'completed') {
          lost++;
          continue;
        }
        completed++;
        if (!suite.verify(fromHex(q.signature), fromHex(paid.message), fromHex(p.key.publicKey)))
          throw new Error(`offline-day: ${paid.packageId} has a signature that does not verify`);
        // Delivered again by anyone: the same signature, never a second completion.
        const r = await client.call('SubmitPackage', { package: fromHex(q.bytes) });
        if (!r.alreadyCompleted || toHex(r.signature) !== q.signature) doubleCharges++;
      }
      if (queue.length !== p.paid.length) doubleCharges += Math.abs(queue.length - p.paid.length);
      const report = await p.d.reconcile(gateway);
      discrepancies += report.discrepancies.length;
      mismatches += report.cluster?.compared ? report.cluster.mismatches.length : 1;
    }
    const st = await status(client);
    return {
      devices,
      payments,
      completed,
      lost,
      doubleCharges,
      discrepancies,
      clusterMismatches: mismatches,
      secondPassCompleted: again,
      syncs,
      signMsPerPayment: payMs / payments,
      /** The end-of-day syncs (all phones, one after another, with the merchant's copies racing them). */
      endOfDay: { packages: endCompleted, ms: endMs, perSecond: (endCompleted / endMs) * 1000 },
      syncMsTotal: syncMs,
      kpis: st.offline,
    };
  } finally {
    for (const p of phones) {
      await p.d.close().catch(() => {});
      rmSync(p.location, { recursive: true, force: true });
    }
    client.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { startBenchCluster } = await import('./cluster.mjs');
  const cluster = await startBenchCluster(3);
  try {
    const r = await offlineDay(cluster, {
      devices: Number(process.argv[2] ?? 20),
      payments: Number(process.argv[3] ?? 1000),
    });
    console.log(JSON.stringify(r, null, 2));
    if (r.lost || r.doubleCharges || r.discrepancies || r.clusterMismatches) process.exitCode = 1;
  } finally {
    await cluster.stop();
  }
}

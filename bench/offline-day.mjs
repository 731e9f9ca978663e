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
 * With `caps` (an Ed25519 day; the default), the phones pay real Solana transfers built with the
 * Solana libraries, to one of a few merchants, against allowances capped in SOL: each phone's cap
 * is smaller than what its share of the day would spend, so heavy phones reach it and their
 * device refuses the rest before signing (`refusedByDevice`); each merchant checks the copies it
 * holds offline (`checkPackage`: the payment read from the transaction, within the reservation's
 * caps). The reconciliation then counts money as well: for every phone, what completed equals what
 * it signed and stays within its cap, and no co-signer refused a package (a co-signer that counted
 * a payment twice would refuse a later one past the cap).
 *
 * Alone: node bench/offline-day.mjs [devices] [payments] [--no-caps]  (default 20 1000)
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  appendTransactionMessageInstructions,
  blockhash,
  compileTransaction,
  createNoopSigner,
  createTransactionMessage,
  getAddressDecoder,
  getTransactionEncoder,
  pipe,
  setTransactionMessageFeePayer,
  setTransactionMessageLifetimeUsingBlockhash,
} from '@solana/kit';
import { getTransferSolInstruction } from '@solana-program/system';
import { fromHex, getSuite, readPayment, toHex } from '@tessera/core';
import { checkPackage } from '@tessera/core/merchant';
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

/** A Solana transfer of `lamports` from the key `payer` to `to` (wire form), as a wallet builds it. */
function solanaTransfer(payer, to, lamports) {
  const address = (k) => getAddressDecoder().decode(k);
  const me = address(payer);
  const tx = compileTransaction(
    pipe(
      createTransactionMessage({ version: 0 }),
      (x) => setTransactionMessageFeePayer(me, x),
      (x) =>
        setTransactionMessageLifetimeUsingBlockhash(
          { blockhash: blockhash('11111111111111111111111111111111'), lastValidBlockHeight: 9n },
          x,
        ),
      (x) =>
        appendTransactionMessageInstructions(
          [getTransferSolInstruction({ source: createNoopSigner(me), destination: address(to), amount: lamports })],
          x,
        ),
    ),
  );
  return { chain: 'solana', tx: new Uint8Array(getTransactionEncoder().encode(tx)), input: 0 };
}

/** A payment's lamports: 0.0001 to 0.001 SOL; the cap of a phone that pays `n` times (about 80% of what they would spend). */
const LAMPORTS = { min: 100_000, max: 1_000_000 };
const capFor = (n) => BigInt(Math.round(n * 0.8 * ((LAMPORTS.min + LAMPORTS.max) / 2 + 5_000)));

export async function offlineDay(
  cluster,
  { suiteId = 'ed25519', devices = 20, payments = 1000, seed = 20261206, caps = suiteId === 'ed25519' } = {},
) {
  if (caps && suiteId !== 'ed25519') throw new Error('offline-day: a capped day pays Solana transfers (ed25519)');
  const merchants = [11, 12, 13].map((b) => new Uint8Array(32).fill(b));
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
      // Each phone's allowance covers its share of the day and a little more (left unused); a
      // capped day caps it in SOL too, below what its share would spend.
      const cap = caps ? capFor(perPhone) : undefined;
      await d.reserve(gateway, {
        keyId: key.keyId,
        count: perPhone + 10,
        ...(cap ? { caps: { caps: { SOL: cap } } } : {}),
      });
      phones.push({
        id,
        d,
        key,
        location,
        paid: [],
        cap,
        refused: 0,
        record: caps ? await d.keyRecord(key.keyId) : undefined,
      });
    }

    const merchantCopies = [];
    const merchant = { checked: 0, ms: 0 };
    let refusedByDevice = 0;
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
      const candidates = phones.filter((p) => p.paid.length + p.refused < perPhone);
      const p = candidates[pick(candidates.length)];
      let pkg;
      if (caps) {
        const lamports = BigInt(LAMPORTS.min + pick(LAMPORTS.max - LAMPORTS.min + 1));
        const payment = solanaTransfer(fromHex(p.key.publicKey), merchants[pick(merchants.length)], lamports);
        try {
          pkg = await p.d.signOffline({ keyId: p.key.keyId, payment });
        } catch (e) {
          // Past its cap: the phone refuses before it signs (nothing queued, nothing owed).
          if (e.code !== 'OVER_ALLOWANCE') throw e;
          p.refused++;
          refusedByDevice++;
          continue;
        }
        p.paid.push({
          packageId: pkg.packageId,
          message: toHex(readPayment(payment).message),
          spent: BigInt(pkg.payment.amount) + BigInt(pkg.payment.fee),
        });
      } else {
        const message = new Uint8Array(32);
        new DataView(message.buffer).setUint32(0, n);
        message.set(new TextEncoder().encode(p.id).subarray(0, 16), 8);
        pkg = await p.d.signOffline({ keyId: p.key.keyId, message });
        p.paid.push({ packageId: pkg.packageId, message: toHex(message) });
      }
      // One package in ten also reaches the cluster from the merchant, before or after the phone's
      // own sync; with caps, the merchant's terminal checked it offline first.
      if (random() < 0.1) {
        if (caps) {
          const t0 = performance.now();
          const checked = await checkPackage(p.record, pkg.bytes);
          merchant.ms += performance.now() - t0;
          merchant.checked++;
          if (checked.payment?.amount !== pkg.payment.amount)
            throw new Error(`offline-day: the merchant read ${JSON.stringify(checked.payment)} for ${pkg.packageId}`);
        }
        merchantCopies.push(pkg.bytes);
      }
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
    /** Phones whose completed payments do not add up to what they signed, or pass their cap. */
    let overCap = 0;
    let spent = 0n;
    let capped = 0n;
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
      if (p.cap !== undefined) {
        const done = p.paid.filter((x) => byId.get(x.packageId)?.state === 'completed');
        const total = done.reduce((sum, x) => sum + x.spent, 0n);
        if (done.length !== p.paid.length || total > p.cap) overCap++;
        spent += total;
        capped += p.cap;
      }
      const report = await p.d.reconcile(gateway);
      discrepancies += report.discrepancies.length;
      mismatches += report.cluster?.compared ? report.cluster.mismatches.length : 1;
    }
    const st = await status(client);
    return {
      devices,
      payments,
      ...(caps
        ? {
            caps: {
              refusedByDevice,
              phonesOverCap: overCap,
              phonesAtCap: phones.filter((p) => p.refused > 0).length,
              spentOfCaps: Number(spent) / Number(capped),
              merchantChecks: merchant.checked,
              merchantCheckMs: merchant.checked ? merchant.ms / merchant.checked : 0,
            },
          }
        : {}),
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

/** Whether a day did not reconcile: something lost, charged twice, disagreeing, refused by a co-signer or past a cap. */
export function dayFailed(r) {
  return Boolean(
    r.lost || r.doubleCharges || r.discrepancies || r.clusterMismatches || r.caps?.phonesOverCap || r.kpis?.refused,
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { startBenchCluster } = await import('./cluster.mjs');
  const cluster = await startBenchCluster(3);
  try {
    const args = process.argv.slice(2).filter((x) => !x.startsWith('--'));
    const r = await offlineDay(cluster, {
      devices: Number(args[0] ?? 20),
      payments: Number(args[1] ?? 1000),
      caps: !process.argv.includes('--no-caps'),
    });
    console.log(JSON.stringify(r, null, 2));
    if (dayFailed(r)) process.exitCode = 1;
  } finally {
    await cluster.stop();
  }
}

#!/usr/bin/env node
/**
 * `npm run bench`: Tessera's benchmarks. Prints a table and writes bench/results/latest.json,
 * a list of rows {suite, t, n, name, opsPerSec, p50Ms, p99Ms, baselineName, ratio}. Every
 * figure stands next to a baseline measured in the same run, because these machines are noisy.
 *
 * Options: --quick (fewer iterations), --suites ed25519,secp256k1-tr,ecdsa-secp256k1, --no-cluster.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { OutScript, Transaction } from '@scure/btc-signer';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  EncKem,
  ParticipantIdentity,
  PayloadKind,
  applyRefresh,
  applyReshare,
  commit,
  createSignIntent,
  encodeCommitment,
  encodeSignRequest,
  encodeSignatureShare,
  getSuite,
  groupPublicKey,
  refreshRound1,
  reshareRound1,
  runLocalDkg,
  signEnvelope,
} from '@tessera/core';
import { dayFailed, offlineDay } from './offline-day.mjs';
import { startBenchCluster } from './cluster.mjs';
import { ecdsaRows, ecdsaTargets } from './ecdsa.mjs';
import { bundleRows, bundleTargets, printBundles } from './bundles.mjs';
import { fillKeys } from './many-keys.mjs';
import { flowBaseline, flowInProcesses, tesseraFlow as tesseraFlowOf } from './flow-procs.mjs';
import * as core from '@tessera/core';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const suites = (
  args.includes('--suites') ? args[args.indexOf('--suites') + 1] : 'ed25519,secp256k1-tr,ecdsa-secp256k1'
).split(',');
const withCluster = !args.includes('--no-cluster');
// --configs 2-3,3-5 runs only those t-of-n (default: all three).
const CONFIGS = (args.includes('--configs') ? args[args.indexOf('--configs') + 1] : '2-3,3-5,7-10')
  .split(',')
  .map((c) => c.split('-').map(Number));

/** Runs fn repeatedly for ~budgetMs (at least minIter times); returns per-op latencies in ms. */
async function measure(fn, { budgetMs = quick ? 400 : 1500, minIter = 5, warmup = 3 } = {}) {
  for (let i = 0; i < warmup; i++) await fn();
  const lat = [];
  const start = performance.now();
  while (lat.length < minIter || performance.now() - start < budgetMs) {
    const t = performance.now();
    await fn();
    lat.push(performance.now() - t);
  }
  return stats(lat, performance.now() - start);
}

/**
 * Measures `fn` and `baseline` in alternating short slices (~25 ms each) for ~budgetMs in all, so
 * both see the same machine noise; the ratio of the two is then robust where two measurements
 * taken seconds apart are not. Returns [stats of fn, stats of baseline].
 */
async function measureInterleaved(fn, baseline, { budgetMs = quick ? 800 : 3000, slice = 25, warmup = 3 } = {}) {
  for (let i = 0; i < warmup; i++) {
    await fn();
    await baseline();
  }
  const lat = [[], []];
  const busy = [0, 0];
  const start = performance.now();
  while (performance.now() - start < budgetMs || lat[0].length < 5) {
    for (const [i, f] of [
      [0, fn],
      [1, baseline],
    ]) {
      const s0 = performance.now();
      do {
        const t = performance.now();
        await f();
        lat[i].push(performance.now() - t);
      } while (performance.now() - s0 < slice);
      busy[i] += performance.now() - s0;
    }
  }
  return [stats(lat[0], busy[0]), stats(lat[1], busy[1])];
}

function stats(lat, totalMs) {
  const s = [...lat].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return {
    opsPerSec: (lat.length / totalMs) * 1000,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    n: lat.length,
    latencies: lat,
    ms: totalMs,
  };
}

/** A PSBT spending one Taproot output of x-only key `pk` to a payee, with change back. */
function paymentPsbt(pk) {
  const t = new Transaction();
  t.addInput({
    txid: randomBytes(32),
    index: 0,
    witnessUtxo: { script: OutScript.encode({ type: 'tr', pubkey: pk }), amount: 100_000n },
  });
  t.addOutput({
    script: OutScript.encode({ type: 'tr', pubkey: schnorr.getPublicKey(new Uint8Array(32).fill(7)) }),
    amount: 60_000n,
  });
  t.addOutput({ script: OutScript.encode({ type: 'tr', pubkey: pk }), amount: 39_000n });
  return { psbt: t.toPSBT() };
}

const rows = [];
function row(suite, t, n, name, m, baselineName, baseline, extra = {}) {
  const r = {
    suite,
    t,
    n,
    name,
    opsPerSec: round(m.opsPerSec),
    p50Ms: round(m.p50Ms),
    p99Ms: round(m.p99Ms),
    baselineName: baselineName ?? null,
    // ratio: how many baseline operations one of this operation costs (time per op / baseline time per op).
    ratio: baseline ? round(baseline.opsPerSec / m.opsPerSec) : null,
    ...(m.errors && Object.keys(m.errors).length ? { errors: m.errors } : {}),
    ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, typeof v === 'number' ? round(v) : v])),
  };
  rows.push(r);
  print(r);
  return m;
}
const round = (x) => Math.round(x * 1000) / 1000;

let printedHeader = false;
function print(r) {
  if (!printedHeader) {
    console.log(
      [
        'suite'.padEnd(13),
        't-of-n'.padEnd(7),
        'name'.padEnd(14),
        'ops/s'.padStart(10),
        'p50 ms'.padStart(9),
        'p99 ms'.padStart(9),
        'baseline'.padEnd(14),
        'ratio'.padStart(8),
      ].join(' '),
    );
    printedHeader = true;
  }
  console.log(
    [
      r.suite.padEnd(13),
      `${r.t}-of-${r.n}`.padEnd(7),
      r.name.padEnd(14),
      r.opsPerSec.toFixed(1).padStart(10),
      r.p50Ms.toFixed(2).padStart(9),
      r.p99Ms.toFixed(2).padStart(9),
      (r.baselineName ?? '-').padEnd(14),
      (r.ratio === null ? '-' : `${r.ratio.toFixed(2)}×`).padStart(8),
      r.errors ? `errors ${JSON.stringify(r.errors)}` : '',
      r.bytesPerPackage ? `${r.bytesPerPackage} B/package` : '',
      r.bytesOnWirePerSignature ? `${r.bytesOnWirePerSignature} B on the wire/signature` : '',
      r.cpuCoordinatorMs !== undefined
        ? `CPU ms/signature: client ${r.cpuClientMs.toFixed(1)}, coordinator ${r.cpuCoordinatorMs.toFixed(1)}, signers ${r.cpuSignersMs.toFixed(1)} (flow ${r.baselineCpuMs.toFixed(1)}), ${r.coresUsed.toFixed(2)} cores busy`
        : '',
      r.signerRssMb ? `signer RSS ${r.signerRssMb} MB, coordinator ${r.coordinatorRssMb} MB` : '',
      r.lastCompletionMs ? `${r.packages} packages, reconnect→last ${Math.round(r.lastCompletionMs)} ms` : '',
    ]
      .join(' ')
      .trimEnd(),
  );
}

/** noble's own FROST flow in one process: t commits, t shares, each share verified, aggregate. */
function nobleFlow(suite, pub, secrets, quorum, msg) {
  const f = suite.frost;
  const round1 = quorum.map((id) => f.commit(secrets[id]));
  const list = round1.map((r) => r.commitments);
  const shares = {};
  quorum.forEach((id, i) => {
    shares[id] = f.signShare(secrets[id], pub, round1[i].nonces, list, msg);
  });
  for (const id of quorum) if (!f.verifyShare(pub, list, msg, id, shares[id])) throw new Error('bad share');
  return f.aggregate(pub, list, msg, shares);
}

/** A whole refresh in one process: every participant contributes and applies. */
function refreshFlow(key, shares, people) {
  const cfg = {
    suite: key.suite,
    sessionId: randomBytes(32),
    keyId: '0123456789abcdef',
    fromEpoch: 0,
    key,
    contributors: people.map((p) => p.id),
  };
  const round1 = people.map((p) => refreshRound1(cfg, p));
  return people.map((p) => applyRefresh(cfg, p, shares.get(p.id), round1));
}

/** A whole reshare in one process: an old quorum of t contributes, all n (same roster) apply. */
function reshareFlow(key, shares, people) {
  const quorum = people.slice(0, key.threshold);
  const cfg = {
    suite: key.suite,
    sessionId: randomBytes(32),
    keyId: '0123456789abcdef',
    fromEpoch: 0,
    oldKey: key,
    contributors: quorum.map((p) => p.id),
    newThreshold: key.threshold,
    newParticipants: people.map((p) => p.public),
  };
  const round1 = quorum.map((p) => reshareRound1(cfg, p, shares.get(p.id)));
  return people.map((p) => applyReshare(cfg, p, round1));
}

/**
 * Protocol bytes one online signature puts on the wire (payloads, without gRPC/TLS framing):
 * per signer a pooled commitment envelope, the sign request (intent + commitment list) and the
 * signature-share envelope.
 */
function wireBytesPerSignature(key, shares, quorum, msg) {
  const requester = ParticipantIdentity.generate('bench-requester');
  const signer = ParticipantIdentity.generate('bench-signer');
  const commitments = quorum.map((id) => ({
    ...commit(shares.get(id)).commitment,
    nonceId: new TextEncoder().encode(`0123456789abcdef.${'ab'.repeat(12)}`),
  }));
  const intent = createSignIntent(requester, {
    suite: key.suite,
    keyId: '0123456789abcdef',
    message: msg,
    requestId: randomBytes(16),
    notAfter: Date.now() + 60_000,
  });
  const request = encodeSignRequest({
    suite: key.suite,
    sessionId: randomBytes(16),
    keyId: '0123456789abcdef',
    epoch: 0,
    intent,
    commitments,
  });
  const commitEnv = signEnvelope(
    signer,
    PayloadKind.SIGNING_COMMITMENT,
    encodeCommitment(key.suite, commitments[0], commitments[0].nonceId),
  );
  const shareEnv = signEnvelope(
    signer,
    PayloadKind.SIGNATURE_SHARE,
    encodeSignatureShare(key.suite, {
      sessionId: randomBytes(16),
      identifier: commitments[0].identifier,
      share: new Uint8Array(key.suite.scalarBytes),
      requestDigest: new Uint8Array(32),
    }),
  );
  return quorum.length * (commitEnv.length + request.length + shareEnv.length);
}

/**
 * A cluster row at concurrency `conc` and its baseline: the same flow in a warmed process of its
 * own (`baseline`, see flowBaseline), idle while the cluster signs. In this process the baseline
 * was flattered: the load generator's garbage made the first second after a c8 row ~50% slower.
 *
 * The full run takes c1 and c8 (the issue-7 targets) in three slices: baseline, cluster (warm-up,
 * then a window), baseline, three times over, and pools the slices. This machine's speed swings
 * by up to 2x over minutes, and three pairs averaged across the row's ~20 s follow the swing
 * better than one pair around it. A slice's warm-up (1 s) covers the closed loop's pipeline
 * refill, which would otherwise be charged to the cluster. c64 (pipeline ~1 s deep) and --quick
 * keep one slice: baseline half before and half after one window.
 */
async function clusterRow(cluster, suiteId, keyId, conc, baseline) {
  const slices = quick || conc > 8 ? 1 : 3;
  const windowMs = (quick ? 2000 : 5000) / slices;
  const warmMs = quick ? 500 : slices > 1 ? 1000 : 1500;
  const half = (quick ? 250 : 750) / slices;
  const lat = [];
  let baseMs = 0;
  const base = async () => {
    const b = await baseline.measure(half);
    lat.push(...b.lat);
    baseMs += b.ms;
  };
  const parts = [];
  for (let i = 0; i < slices; i++) {
    await base();
    // A c64 window runs until 3 x 64 signatures completed in it (at most 30 s): at 7-of-10 a
    // request takes seconds, and 5 s held too few of them to count.
    const longer = conc > 8 ? { minCompleted: 3 * conc, maxMs: quick ? 10_000 : 30_000 } : {};
    parts.push(await cluster.throughput(suiteId, keyId, conc, windowMs, warmMs, longer));
    await base();
  }
  return { m: pool(parts), base: stats(lat, baseMs) };
}

/**
 * keys-1 vs keys-<count>: c1 on `one` (a cluster holding one key) and on `many` (one holding
 * `count` + 1), each warmed for 3 s, then measured in alternating slices (one, many, many's first
 * key as a control) and pooled; `flowMs` is the baseline flow's time measured between slices.
 */
async function keysRows(one, oneKey, many, sample, manyFirstKey, suiteId, baseline) {
  const slices = quick ? 2 : 5;
  const windowMs = (quick ? 2000 : 5000) / slices;
  await one.throughput(suiteId, oneKey, 1, 200, 3000);
  await many.throughput(suiteId, sample, 1, 200, 3000);
  const parts = { one: [], many: [], control: [] };
  let flowMs = 0;
  for (let i = 0; i < slices; i++) {
    parts.one.push(await one.throughput(suiteId, oneKey, 1, windowMs, 300));
    parts.many.push(await many.throughput(suiteId, sample, 1, windowMs, 300));
    parts.control.push(await many.throughput(suiteId, manyFirstKey, 1, windowMs / 2, 300));
    const b = await baseline.measure(quick ? 100 : 200);
    flowMs += b.ms / b.lat.length / slices;
  }
  return { one: pool(parts.one), many: pool(parts.many), control: pool(parts.control), flowMs };
}

/** Several cluster windows as one: completions over total window time, pooled latencies, CPU per signature weighted by the signatures completed in each window. */
function pool(parts) {
  if (parts.length === 1) return parts[0];
  const n = parts.reduce((a, p) => a + p.n, 0);
  const ms = parts.reduce((a, p) => a + p.ms, 0);
  const lat = parts.flatMap((p) => p.latencies).sort((a, b) => a - b);
  const q = (x) => lat[Math.min(lat.length - 1, Math.floor(x * lat.length))] ?? 0;
  const errors = {};
  for (const p of parts) for (const [k, v] of Object.entries(p.errors)) errors[k] = (errors[k] ?? 0) + v;
  const cpu = {};
  const done = parts.reduce((a, p) => a + p.inWindow, 0);
  for (const k of Object.keys(parts[0].cpu))
    cpu[k] =
      parts.reduce((a, p) => a + p.cpu[k] * (k === 'coresUsed' ? p.ms : p.inWindow), 0) /
      (k === 'coresUsed' ? ms : Math.max(1, done));
  return {
    opsPerSec: (done / ms) * 1000,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    n,
    inWindow: done,
    errors,
    cpu,
    latencies: lat,
    ms,
  };
}

/** The same work through Tessera's protocol path (see flow-procs.mjs). */
const tesseraFlow = (key, shares, quorum, msg) => tesseraFlowOf(core, key, shares, quorum, msg);

async function main() {
  const msg = new Uint8Array(32).fill(7);
  for (const suiteId of suites) {
    if (suiteId === 'ecdsa-secp256k1') {
      // Threshold ECDSA (DKLs23): the in-process rows, then the cluster's c1 and c8 against the
      // same flow in one warmed process (presign and online, both signers: what a signature costs
      // the cluster's cores, pools or not).
      const { floor } = await ecdsaRows({ measure, measureInterleaved, row, quick });
      if (withCluster) {
        const cluster = await startBenchCluster(3);
        const baseline = await flowBaseline(suiteId, 2, 3);
        try {
          const info = await cluster.keygen(suiteId, 2);
          const c = {};
          for (const conc of [1, 8]) {
            const { m, base } = await clusterRow(cluster, suiteId, info.keyId, conc, baseline);
            c[conc] = m;
            row(suiteId, 2, 3, `cluster-c${conc}`, m, 'ecdsa-flow', base, {
              baselineOpsPerSec: base.opsPerSec,
              baselineP50Ms: base.p50Ms,
              baselineCpuMs: 1000 / base.opsPerSec,
              ...m.cpu,
            });
          }
          // A phone in the key (device + 1 co-signer of 3): presignatures reserved with it through
          // the gateway, digests signed offline, the queue completed after it reconnects. At most
          // 64 (a co-signer's devices.maxReservations by default).
          const off = await cluster.offlineSync(suiteId, quick ? 20 : 60);
          row(suiteId, 2, 3, 'offline-reserve', off.reserve, 'cluster-c1', c[1]);
          row(suiteId, 2, 3, 'offline-sign', off.sign, 'floor-sign', floor, {
            bytesPerPackage: off.sign.bytesPerPackage,
          });
          row(suiteId, 2, 3, 'offline-sync', off.sync, 'cluster-c8', c[8], {
            packages: off.sync.packages,
            lastCompletionMs: off.sync.lastCompletionMs,
            bytesPerPackage: off.sync.bytesPerPackage,
          });
        } finally {
          baseline.stop();
          await cluster.stop();
        }
      }
      continue;
    }
    const suite = getSuite(suiteId);
    // Floors: single-party sign and verify on the suite's curve.
    let floorSign, floorVerify, floorKey;
    if (suiteId === 'ed25519') {
      const sk = (floorKey = ed25519.utils.randomSecretKey());
      const pk = ed25519.getPublicKey(sk);
      const sig = ed25519.sign(msg, sk);
      floorSign = row(suiteId, 1, 1, 'floor-sign', await measure(() => ed25519.sign(msg, sk)));
      floorVerify = row(suiteId, 1, 1, 'floor-verify', await measure(() => ed25519.verify(sig, msg, pk)));
    } else {
      const sk = (floorKey = schnorr.utils.randomSecretKey());
      const pk = schnorr.getPublicKey(sk);
      const sig = schnorr.sign(msg, sk);
      floorSign = row(suiteId, 1, 1, 'floor-sign', await measure(() => schnorr.sign(msg, sk)));
      floorVerify = row(suiteId, 1, 1, 'floor-verify', await measure(() => schnorr.verify(sig, msg, pk)));
      if (suiteId === 'secp256k1-tr') {
        // What a payment adds to a completion (issue 19): reading a PSBT (one Taproot input of the
        // key, a payee and change) and deriving its signature hash, beside one BIP 340 verify.
        const { psbt: tx } = paymentPsbt(pk);
        const [pay, verify] = await measureInterleaved(
          () => core.readPayment({ chain: 'bitcoin', tx, input: 0 }, pk),
          () => schnorr.verify(sig, msg, pk),
        );
        row(suiteId, 1, 1, 'payment-read', pay, 'floor-verify', verify);
      }
    }
    void floorVerify;
    for (const [t, n] of CONFIGS) {
      const people = Array.from({ length: n }, (_, i) => ParticipantIdentity.generate(`p${i + 1}`));
      const measureDkg = (ids) =>
        measure(() => runLocalDkg(suite, t, ids), { budgetMs: quick ? 300 : 1500, minIter: quick ? 1 : 2, warmup: 1 });
      const dkg = row(suiteId, t, n, 'dkg', await measureDkg(people), 'floor-sign', floorSign);
      // The same DKG with X25519 identities (the classic HPKE suite): what X-Wing costs.
      const classic = Array.from({ length: n }, (_, i) =>
        ParticipantIdentity.generate(`p${i + 1}`, undefined, EncKem.X25519),
      );
      row(suiteId, t, n, 'dkg-x25519', await measureDkg(classic), 'dkg', dkg);
      const out = runLocalDkg(suite, t, people);
      const key = out.get('p1').key;
      const shares = new Map([...out].map(([id, o]) => [id, o.share]));
      const secrets = Object.fromEntries([...out.values()].map((o) => [o.share.identifier, o.share.frostSecret()]));
      const quorumIds = people.slice(0, t).map((p) => p.id);
      const quorumIdentifiers = key.roster.filter((r) => quorumIds.includes(r.id)).map((r) => r.identifier);
      // The flows are measured interleaved with floor-sign (their baseline), so the ratio the
      // issue's targets are stated in sees one machine state, not two taken seconds apart.
      const floorOnce = suiteId === 'ed25519' ? () => ed25519.sign(msg, floorKey) : () => schnorr.sign(msg, floorKey);
      const [nobleM, nobleFloor] = await measureInterleaved(
        () => nobleFlow(suite, key.public, secrets, quorumIdentifiers, msg),
        floorOnce,
      );
      row(suiteId, t, n, 'noble-flow', nobleM, 'floor-sign', nobleFloor, { floorSignOpsPerSec: nobleFloor.opsPerSec });
      const [tesseraM, tesseraFloor] = await measureInterleaved(
        () => tesseraFlow(key, shares, quorumIds, msg),
        floorOnce,
      );
      const tessera = row(suiteId, t, n, 'tessera-flow', tesseraM, 'floor-sign', tesseraFloor, {
        floorSignOpsPerSec: tesseraFloor.opsPerSec,
        bytesOnWirePerSignature: wireBytesPerSignature(key, shares, quorumIds, msg),
      });
      if (t === 2) {
        // What the cores give the flow: two processes at once vs one, in the same moment. The
        // cluster rows compete for exactly this capacity (coordinator, signers and load
        // generator share the machine).
        const one = await flowInProcesses(suiteId, 1, quick ? 1500 : 4000);
        const two = await flowInProcesses(suiteId, 2, quick ? 1500 : 4000);
        const m = { opsPerSec: two, p50Ms: 2000 / two, p99Ms: 2000 / two };
        row(
          suiteId,
          t,
          n,
          'tessera-flow-2p',
          m,
          'tessera-flow',
          { opsPerSec: one },
          { oneProcessOpsPerSec: one, scaling: two / one },
        );
      }
      const lifecycleBudget = { budgetMs: quick ? 300 : 1500, minIter: quick ? 1 : 2, warmup: 1 };
      row(suiteId, t, n, 'refresh', await measure(() => refreshFlow(key, shares, people), lifecycleBudget), 'dkg', dkg);
      row(suiteId, t, n, 'reshare', await measure(() => reshareFlow(key, shares, people), lifecycleBudget), 'dkg', dkg);
      if (withCluster) {
        const cluster = await startBenchCluster(n);
        const baseline = await flowBaseline(suiteId, t, n);
        try {
          const info = await cluster.keygen(suiteId, t);
          for (const conc of [1, 8, 64]) {
            // The baseline half before and half after the row (the cluster idle meanwhile).
            const { m, base } = await clusterRow(cluster, suiteId, info.keyId, conc, baseline);
            const rss = conc === 64 ? await cluster.signerRss() : undefined;
            row(suiteId, t, n, `cluster-c${conc}`, m, 'tessera-flow', base, {
              baselineOpsPerSec: base.opsPerSec,
              baselineP50Ms: base.p50Ms,
              p50VsBaselineTime: m.p50Ms / (1000 / base.opsPerSec),
              baselineCpuMs: 1000 / base.opsPerSec,
              ...m.cpu,
              ...(rss ? { signerRssMb: rss.maxMb, coordinatorRssMb: rss.coordinatorMb } : {}),
            });
          }
          if (t === 2 && suiteId === suites[0]) {
            // Signing latency with many keys stored per signer: c1 on two fresh clusters started
            // together, one holding 1 key and one whose vaults and registry hold `count` more,
            // in alternating slices (same age, same warm-up, the machine's drift hits both alike;
            // against the long-running cluster above, process age alone read as 10-15%).
            const count = quick ? 20_000 : 100_000;
            const single = await startBenchCluster(n);
            const filled = await startBenchCluster(n);
            try {
              const one = await single.keygen(suiteId, t);
              const k = await filled.keygen(suiteId, t);
              const f = await filled.whileStopped((dir) => fillKeys(dir, n, k.keyId, count));
              await single.whileStopped(async () => {}); // restarted too, as the filled one was
              const r = await keysRows(single, one.keyId, filled, f.sample, k.keyId, suiteId, baseline);
              row(suiteId, t, n, 'keys-1', r.one, 'tessera-flow', tessera, { keysStored: 1, flowMs: r.flowMs });
              const rss = await filled.signerRss();
              row(suiteId, t, n, `keys-${count >= 100_000 ? '100k' : `${count / 1000}k`}`, r.many, 'keys-1', r.one, {
                keysStored: count + 1,
                firstKeyP50Ms: r.control.p50Ms,
                flowMs: r.flowMs,
                coordinatorRssMb: rss.coordinatorMb,
                signerRssMb: rss.maxMb,
              });
            } finally {
              await filled.stop();
              await single.stop();
            }
          }
          if (t === 2) {
            // A device reconnects with a queue of offline packages (device + 1 co-signer of 3).
            const off = await cluster.offlineSync(suiteId, quick ? 200 : 1000);
            row(suiteId, t, n, 'offline-sign', off.sign, 'floor-sign', floorSign, {
              bytesPerPackage: off.sign.bytesPerPackage,
            });
            row(suiteId, t, n, 'offline-sync', off.sync, 'tessera-flow', tessera, {
              packages: off.sync.packages,
              lastCompletionMs: off.sync.lastCompletionMs,
              bytesPerPackage: off.sync.bytesPerPackage,
            });
            if (suiteId === suites[0]) {
              // A day of offline payments across many phones, reconciled (bench/offline-day.mjs).
              const day = await offlineDay(cluster, { suiteId, devices: quick ? 5 : 20, payments: quick ? 200 : 1000 });
              if (dayFailed(day)) throw new Error(`offline-day did not reconcile: ${JSON.stringify(day)}`);
              const e = day.endOfDay;
              row(
                suiteId,
                t,
                n,
                'offline-day',
                { opsPerSec: e.perSecond, p50Ms: e.ms / e.packages, p99Ms: e.ms / e.packages },
                'offline-sync',
                off.sync,
                {
                  devices: day.devices,
                  payments: day.payments,
                  completed: day.completed,
                  lost: day.lost,
                  doubleCharges: day.doubleCharges,
                  ...(day.caps ? { caps: day.caps } : {}),
                  syncs: day.syncs,
                  kpis: day.kpis,
                },
              );
            }
          }
        } finally {
          baseline.stop();
          await cluster.stop();
        }
      }
      if (!suite.verify(tesseraFlow(key, shares, quorumIds, msg), msg, groupPublicKey(key)))
        throw new Error('benchmark produced an invalid signature');
    }
  }
  const bundles = await bundleRows();
  printBundles(bundles);
  const targets = [...checkTargets(rows), ...ecdsaTargets(rows), ...bundleTargets(bundles)];
  if (targets.length) {
    console.log('\ntargets (ratios measured in this run):');
    for (const x of targets)
      console.log(`  ${x.met ? 'met    ' : 'NOT met'} ${x.what}: ${x.measured} (target ${x.target})`);
  }
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    `${dir}latest.json`,
    JSON.stringify({ at: new Date().toISOString(), node: process.version, quick, rows, bundles, targets }, null, 2) +
      '\n',
  );
  console.log(`\nwrote bench/results/latest.json (${rows.length} rows)`);
}

/** The fast-path targets of issue 7, evaluated on this run's rows. */
function checkTargets(all) {
  const get = (suite, name) => all.find((r) => r.suite === suite && r.t === 2 && r.n === 3 && r.name === name);
  const out = [];
  for (const [suite, max] of [
    ['ed25519', 30],
    ['secp256k1-tr', 6],
  ]) {
    const f = get(suite, 'tessera-flow');
    if (f)
      out.push({
        what: `${suite} 2-of-3 tessera-flow / floor-sign`,
        measured: `${f.ratio}×`,
        target: `<= ${max}×`,
        met: f.ratio <= max,
      });
    const c8 = get(suite, 'cluster-c8');
    if (c8)
      out.push({
        what: `${suite} 2-of-3 cluster-c8 throughput / tessera-flow`,
        measured: `${round(1 / c8.ratio)}×`,
        target: '>= 0.8×',
        met: 1 / c8.ratio >= 0.8,
      });
    const c1 = get(suite, 'cluster-c1');
    if (c1)
      out.push({
        what: `${suite} 2-of-3 cluster-c1 p50 / tessera-flow time`,
        measured: `${round(c1.p50VsBaselineTime)}×`,
        target: '<= 1.5×',
        met: c1.p50VsBaselineTime <= 1.5,
      });
    const k1 = get(suite, 'keys-1');
    const kn = all.find((r) => r.suite === suite && /^keys-\d+k$/.test(r.name));
    if (k1 && kn)
      out.push({
        what: `${suite} 2-of-3 c1 p50 with ${kn.name.slice(5)} keys / with 1 key`,
        measured: `${round(kn.p50Ms / k1.p50Ms)}×`,
        target: '<= 1.2×',
        met: kn.p50Ms / k1.p50Ms <= 1.2,
      });
  }
  return out;
}

void randomBytes;
main().catch((e) => {
  console.error(`bench: ${e.stack ?? e}`);
  process.exit(1);
});

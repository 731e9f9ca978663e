/**
 * Threshold ECDSA (DKLs23, `@tessera/ecdsa`) rows of `npm run bench`, 2-of-3, in one process:
 *  - `floor-sign`: noble `secp256k1.sign` of a 32-byte digest (the baseline of every row here);
 *  - `ecdsa-dkg`: Tessera's DKG on secp256k1 for 3 participants plus the pairwise setup (base
 *    OTs and zero-sharing seeds of the three pairs);
 *  - `ecdsa-flow`: a whole signature, all three presigning rounds and the online part, both
 *    signers (measured interleaved with floor-sign);
 *  - `ecdsa-online`: the message-dependent part on pooled presignatures, as the cluster runs it:
 *    each signer reads its presignature back from its ledger record (statement and scalars) and
 *    signs its partial, the coordinator combines them on the statement it pooled and verifies
 *    (interleaved with floor-sign);
 *  - bytes on the wire per signature (every message of the flow, both directions).
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { randomBytes } from 'node:crypto';
import { ParticipantIdentity, getSuite, groupPublicKey, runLocalDkg } from '@tessera/core';
import {
  EcdsaPairSetup,
  EcdsaPresign,
  OTE_MESSAGE_BYTES,
  RVOLE_MESSAGE_BYTES,
  combine,
  decodePresigned,
  partialSign,
  presignatureFromRecord,
  presignatureRecord,
} from '@tessera/ecdsa';

const rng = (n = 32) => new Uint8Array(randomBytes(n));
const inbox = (sent, to) => {
  const out = new Map();
  for (const [from, m] of sent) if (from !== to) out.set(from, m.get(to));
  return out;
};

/** Tessera's DKG on secp256k1 and the pairwise setup: what one ECDSA key costs to make. */
function makeKey() {
  const people = ['p1', 'p2', 'p3'].map((id) => ParticipantIdentity.generate(id));
  const out = runLocalDkg(getSuite('secp256k1'), 2, people);
  const key = out.get('p1').key;
  const keyId = rng(32);
  const parties = [1, 2, 3];
  const sessions = new Map(
    parties.map((i) => [i, new EcdsaPairSetup({ keyId, me: i, peers: parties.filter((j) => j !== i), rng })]),
  );
  const m1 = new Map([...sessions].map(([i, s]) => [i, s.round1()]));
  const m2 = new Map([...sessions].map(([i, s]) => [i, s.round2(inbox(m1, i))]));
  const pairs = new Map([...sessions].map(([i, s]) => [i, s.finish(inbox(m2, i))]));
  const hex = (b) => Buffer.from(b).toString('hex');
  return {
    keyId,
    pairs,
    publicKey: groupPublicKey(key),
    shares: new Map(key.roster.map((r, k) => [k + 1, BigInt(`0x${hex(out.get(r.id).share.signingShare())}`)])),
    points: new Map(key.roster.map((r, k) => [k + 1, BigInt(`0x${r.identifier}`)])),
  };
}

function presignAll(key, signers) {
  const sigid = rng(32);
  const s = new Map(
    signers.map((i) => [
      i,
      new EcdsaPresign({
        keyId: key.keyId,
        sigid,
        me: i,
        signers,
        share: key.shares.get(i),
        points: key.points,
        publicKey: key.publicKey,
        pairs: key.pairs.get(i),
        rng,
      }),
    ]),
  );
  const r1 = new Map([...s].map(([i, x]) => [i, x.round1()]));
  const r2 = new Map([...s].map(([i, x]) => [i, x.round2(inbox(r1, i))]));
  return [...s].map(([i, x]) => x.round3(inbox(r2, i)));
}

const SUITE = getSuite('ecdsa-secp256k1');

/**
 * A presignature as the cluster holds it between presigning and its use: each signer's ledger
 * record (its secret scalars, the public statement as meta, R uncompressed) and the statement the
 * coordinator decoded when it arrived (in its pool).
 */
function stored(presigs) {
  const statement = (ps) => ({
    keyId: '00ecd5a0000000f2',
    epoch: 0,
    session: ps.sigid,
    signers: ['p1', 'p2'],
    R: ps.R,
    Rpoint: ps.Rpoint,
  });
  const records = presigs.map((ps) => ({ ps, record: presignatureRecord(SUITE, ps, statement(ps)) }));
  const pooled = decodePresigned(SUITE, records[0].record.meta);
  return { records, coordinator: { ...presigs[0], R: pooled.R, Rpoint: pooled.Rpoint } };
}

/**
 * The online part as the cluster runs it: each signer reads its presignature back from its ledger
 * record and signs its partial; the coordinator combines them on its pooled statement and checks
 * the signature with the plain verifier.
 */
const online = ({ records, coordinator }, digest) =>
  combine(
    coordinator,
    digest,
    records.map(({ ps, record }) =>
      partialSign(
        presignatureFromRecord(record.secret, decodePresigned(SUITE, record.meta), {
          me: ps.me,
          signers: ps.signers,
          publicKey: ps.publicKey,
          keyIdBytes: ps.keyId,
        }),
        digest,
      ),
    ),
  );

/** Bytes of every message of one 2-signer flow (both directions), by the message layouts. */
function wireBytes(signers) {
  const pairs = signers * (signers - 1); // directed
  const round1 = 32 + OTE_MESSAGE_BYTES;
  const round2 = 33 + 32 + RVOLE_MESSAGE_BYTES + 33 + 33 + 32 + 33;
  const partial = 64;
  return pairs * (round1 + round2) + signers * partial;
}

export async function ecdsaRows({ measure, measureInterleaved, row, quick }) {
  const suite = 'ecdsa-secp256k1';
  const sk = secp256k1.utils.randomSecretKey();
  const digest = rng(32);
  const floorOnce = () => secp256k1.sign(digest, sk, { prehash: false });
  const floor = row(suite, 1, 1, 'floor-sign', await measure(floorOnce));
  row(
    suite,
    2,
    3,
    'ecdsa-dkg',
    await measure(makeKey, { budgetMs: quick ? 1 : 4000, minIter: quick ? 1 : 2, warmup: quick ? 0 : 1 }),
    'floor-sign',
    floor,
  );
  const key = makeKey();
  const [flowM, flowFloor] = await measureInterleaved(
    () => online(stored(presignAll(key, [1, 2])), rng(32)),
    floorOnce,
    {
      budgetMs: quick ? 1500 : 5000,
    },
  );
  row(suite, 2, 3, 'ecdsa-flow', flowM, 'floor-sign', flowFloor, {
    floorSignOpsPerSec: flowFloor.opsPerSec,
    bytesOnWirePerSignature: wireBytes(2),
  });
  // A pool of presignatures for the online part, cycled (only a benchmark may reuse one: the
  // product deletes each after its one signature).
  const pool = Array.from({ length: quick ? 40 : 120 }, () => stored(presignAll(key, [1, 2])));
  let next = 0;
  const [onM, onFloor] = await measureInterleaved(() => online(pool[next++ % pool.length], rng(32)), floorOnce, {
    budgetMs: quick ? 800 : 3000,
  });
  row(suite, 2, 3, 'ecdsa-online', onM, 'floor-sign', onFloor, { floorSignOpsPerSec: onFloor.opsPerSec });
  return { floor };
}

/** The whole 2-of-3 flow (presign and online, both signers) on one key: the cluster rows' baseline. */
export function ecdsaFlow() {
  const key = makeKey();
  return () => online(stored(presignAll(key, [1, 2])), rng(32));
}

/** The ECDSA targets, evaluated on this run's rows. */
export function ecdsaTargets(all) {
  const get = (name) => all.find((r) => r.suite === 'ecdsa-secp256k1' && r.name === name);
  const out = [];
  for (const [name, max] of [
    ['ecdsa-flow', 60],
    ['ecdsa-online', 5],
  ]) {
    const r = get(name);
    if (r)
      out.push({
        what: `ecdsa-secp256k1 2-of-3 ${name} / floor-sign`,
        measured: `${r.ratio}×`,
        target: `<= ${max}×`,
        met: r.ratio <= max,
      });
  }
  const c8 = get('cluster-c8');
  if (c8)
    out.push({
      what: 'ecdsa-secp256k1 2-of-3 cluster-c8 throughput / ecdsa-flow',
      measured: `${round2(1 / c8.ratio)}×`,
      target: '>= 0.8×',
      met: 1 / c8.ratio >= 0.8,
    });
  return out;
}

const round2 = (x) => Math.round(x * 100) / 100;

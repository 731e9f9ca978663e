/**
 * Every ECDSA decoder under fuzzed input: random bytes, and one-byte changes and truncations of
 * genuine encodings (a pair record, a presignature's statement and secret, a partial, a sign
 * request, each round's message of the setup and of presigning) give a value or a typed error
 * (TesseraError with its code), never anything else — these bytes come from the coordinator, from
 * peers through it, and from a node's own disk.
 */
import fc from 'fast-check';
import { bytesToNumberBE } from '@noble/curves/utils.js';
import { describe, expect, it } from 'vitest';
import { ParticipantIdentity, TesseraError, getSuite, groupPublicKey, runLocalDkg, utf8ToBytes } from '@tessera/core';
import { EcdsaPairSetup, EcdsaPresign, evaluationPoints, partialSign } from '../src/index.js';
import {
  decodeEcdsaSignRequest,
  decodePartial,
  decodePresigned,
  encodeEcdsaSignRequest,
  encodePartial,
  presignatureRecord,
} from '../src/presigned.js';
import {
  decodePairs,
  decodePresign1,
  decodePresign2,
  decodePresignatureSecret,
  decodeSetup1,
  decodeSetup2,
  encodePairs,
  encodePresign1,
  encodePresign2,
  encodeSetup1,
  encodeSetup2,
} from '../src/wire.js';
import { rng } from './harness.js';

const suite = getSuite('ecdsa-secp256k1');

/** A 2-of-2 key, its pairwise setup, one presignature and its partials: genuine bytes of every kind. */
function genuine(): Record<string, [Uint8Array, (b: Uint8Array) => unknown]> {
  const people = [1, 2].map((i) => ParticipantIdentity.generate(`s${i}`));
  const dkg = runLocalDkg(suite, 2, people);
  const key = (dkg.get('s1') as NonNullable<ReturnType<typeof dkg.get>>).key;
  const keyId = utf8ToBytes('00ecd5a0000000f2');
  const setup = [1, 2].map((me) => new EcdsaPairSetup({ keyId, me, peers: [3 - me], rng }));
  const r1 = setup.map((s) => s.round1());
  const r2 = setup.map((s, i) => s.round2(new Map([[2 - i, r1[1 - i]?.get(i + 1) as never]])));
  const states = setup.map((s, i) => s.finish(new Map([[2 - i, r2[1 - i]?.get(i + 1) as never]])));
  const sigid = rng(32);
  const publicKey = groupPublicKey(key);
  const share = (id: string) => bytesToNumberBE(dkg.get(id)?.share.signingShare() as Uint8Array);
  const presign = [1, 2].map(
    (me) =>
      new EcdsaPresign({
        keyId,
        sigid,
        me,
        signers: [1, 2],
        share: share(`s${me}`),
        points: evaluationPoints({ roster: key.roster }),
        publicKey,
        pairs: states[me - 1] as never,
        rng,
      }),
  );
  const p1 = presign.map((p) => p.round1());
  const p2 = presign.map((p, i) => p.round2(new Map([[2 - i, p1[1 - i]?.get(i + 1) as never]])));
  const ps = presign.map((p, i) => p.round3(new Map([[2 - i, p2[1 - i]?.get(i + 1) as never]])));
  const first = ps[0] as (typeof ps)[number];
  const statement = { keyId: '00ecd5a0000000f2', epoch: 0, session: sigid, signers: ['s1', 's2'], R: first.R };
  const record = presignatureRecord(suite, first, statement);
  const partial = partialSign(first, rng(32));
  const pairRecords = {
    keyId: '00ecd5a0000000f2',
    me: 1,
    pairs: new Map([['s2', (states[0] as Map<number, never>).get(2) as never]]),
  };
  return {
    pairs: [encodePairs(pairRecords), decodePairs],
    presigned: [record.meta, (b) => decodePresigned(suite, b)],
    secret: [record.secret, decodePresignatureSecret],
    partial: [
      encodePartial(suite, { session: sigid, requestDigest: rng(32), u: partial.u, w: partial.w }),
      (b) => decodePartial(suite, b, 1),
    ],
    request: [
      encodeEcdsaSignRequest({
        keyId: '00ecd5a0000000f2',
        epoch: 3,
        intent: rng(120),
        session: sigid,
        signers: ['s1', 's2'],
        requestId: rng(16),
      }),
      decodeEcdsaSignRequest,
    ],
    setup1: [encodeSetup1(r1[0]?.get(2) as never), decodeSetup1],
    setup2: [encodeSetup2(r2[0]?.get(2) as never), decodeSetup2],
    presign1: [encodePresign1(p1[0]?.get(2) as never), decodePresign1],
    presign2: [encodePresign2(p2[0]?.get(2) as never), decodePresign2],
  };
}

/** `ok`, or the code of a typed error; anything else fails the test with what was thrown. */
function verdict(decode: (b: Uint8Array) => unknown, b: Uint8Array): string {
  try {
    decode(b);
    return 'ok';
  } catch (e) {
    if (e instanceof TesseraError) return e.code;
    throw e;
  }
}

describe('ECDSA decoders under fuzzed input', () => {
  const samples = genuine();

  it.each(Object.keys(samples))(
    '%s: the genuine bytes decode; random bytes, changed bytes and truncations give a typed error or a value',
    (name) => {
      const [bytes, decode] = samples[name] as [Uint8Array, (b: Uint8Array) => unknown];
      expect(verdict(decode, bytes)).toBe('ok');
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: Math.min(4096, bytes.length * 2) }), (b) => {
          verdict(decode, b);
        }),
        { numRuns: 300 },
      );
      const seen = new Set<string>();
      fc.assert(
        fc.property(fc.nat(bytes.length - 1), fc.integer({ min: 0, max: 255 }), fc.boolean(), (i, v, cut) => {
          const b = cut ? bytes.slice(0, i) : bytes.slice();
          if (!cut) b[i] = v;
          seen.add(verdict(decode, b));
        }),
        { numRuns: 400 },
      );
      // Truncations at least are refused, typed.
      expect([...seen].filter((v) => v !== 'ok').length).toBeGreaterThan(0);
    },
  );
});

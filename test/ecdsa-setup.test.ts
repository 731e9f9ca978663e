/**
 * The pairwise setup of an ECDSA roster in two phases (signer/src/ecdsa-setup.ts,
 * coordinator/src/ecdsa-setup.ts): members store their pairs as pending and sign their word that
 * they did; each puts them in use only with every member's word, and drops a session it gave its
 * word for only on another member's signed abort of it. In process (the coordinator and
 * signer engines on real LevelDB stores), a reshare's new roster is set up while the test cuts
 * one member's link at a chosen step, as a crash or a network cut would:
 *
 * - cut before its step 3 (the other member stored its pairs, it did not): before, the other
 *   member's pairs were in use and the roster could never be set up again (every later setup was
 *   refused KEY_EXISTS by one member); now nobody uses them: the next signature finds signer-2
 *   holding a session signer-3 never gave its word for, has signer-3 sign its abort, sets the
 *   roster up anew with it, and signs;
 * - cut before its step 4 (both stored, only the other put them in use): the next signature finds
 *   one member set up and one not, collects both members' words for the session they hold (step
 *   5), finishes the setup (step 4) and signs.
 *
 * Every signature is checked with the plain verifier; each member's audit shows the new roster's
 * setup once.
 */
import { randomBytes } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { afterAll, describe, expect, it } from 'vitest';
import { ParticipantIdentity, createSignIntent, getSuite, toHex } from '@tessera/core';
import type { CoordinatorEvent } from '@tessera/coordinator';
import { operators, reshareAuthorisation } from './authority.js';
import { cleanup, deviceCluster } from './device-harness.js';

afterAll(cleanup);

const suite = getSuite('ecdsa-secp256k1');
const requester = ParticipantIdentity.generate('wallet-api');
const POLICY = {
  allowKeygen: true,
  allowUnpinnedPeers: true,
  operators,
  requesters: [{ id: 'wallet-api', publicKey: toHex(requester.public.signKey), keys: ['*'] }],
};

async function setupCutAt(step: 3 | 4) {
  const events: CoordinatorEvent[] = [];
  const c = await deviceCluster(3, { onEvent: (e) => events.push(e) });
  for (const s of c.signers) s.setPolicy(POLICY);
  const key = await c.coordinator.keygen({ suite: 'ecdsa-secp256k1', threshold: 2 });
  // signer-3's link goes down right after it answered the step before `step` of the new roster's
  // setup: that step and the rest never reach it.
  c.tamper.set('signer-3', (r, t) => {
    if (t.body === 'ecdsa' && t.ecdsa?.kind === 'setup' && t.ecdsa.step === step - 1) c.down.add('signer-3');
    return r;
  });
  const to = { threshold: 2, participants: ['signer-2', 'signer-3'] };
  const info = await c.coordinator.reshare(key.keyId, {
    ...to,
    authorisation: reshareAuthorisation(c.coordinator, key.keyId, to),
  });
  for (let i = 0; i < 200 && !events.some((e) => e.type === 'ecdsa-setup'); i++)
    await new Promise((r) => setTimeout(r, 50));
  expect(events.filter((e) => e.type === 'ecdsa-setup')).toEqual([
    { type: 'ecdsa-setup', keyId: key.keyId, ok: false, cause: 'UNAVAILABLE' },
  ]);
  // The link is back.
  c.tamper.delete('signer-3');
  c.down.delete('signer-3');
  return { c, key, epoch: Number(info.epoch) };
}

async function signs(c: Awaited<ReturnType<typeof setupCutAt>>['c'], keyId: string, publicKey: Uint8Array) {
  const digest = keccak_256(new Uint8Array(randomBytes(32)));
  const intent = createSignIntent(requester, {
    suite,
    keyId,
    message: digest,
    requestId: new Uint8Array(randomBytes(16)),
    notAfter: Date.now() + 120_000,
  });
  const r = await c.coordinator.sign(intent);
  expect([...r.signers].sort()).toEqual(['signer-2', 'signer-3']);
  expect(secp256k1.verify(r.signature.subarray(0, 64), digest, publicKey, { prehash: false })).toBe(true);
}

async function setupsAudited(c: Awaited<ReturnType<typeof setupCutAt>>['c'], id: string, keyId: string) {
  const epochs: number[] = [];
  for await (const e of c.signer(id).audit.entries())
    if (e.type === 'ecdsa-setup' && e.data.keyId === keyId) epochs.push(Number(e.data.epoch ?? 0));
  return epochs;
}

describe('ECDSA setup in two phases: a setup cut short is run again or finished', () => {
  it("cut before one member's step 3: the other's pairs were never put in use; the next signature sets the roster up anew and signs", async () => {
    const { c, key, epoch } = await setupCutAt(3);
    await signs(c, key.keyId, new Uint8Array(key.publicKey));
    for (const id of ['signer-2', 'signer-3']) expect(await setupsAudited(c, id, key.keyId)).toEqual([0, epoch]);
  });

  it("cut before one member's step 4: the next signature collects both members' words for the session they hold, finishes the setup there and signs", async () => {
    const { c, key, epoch } = await setupCutAt(4);
    // signer-2 put its pairs in use, signer-3 holds them pending.
    expect(await setupsAudited(c, 'signer-2', key.keyId)).toEqual([0, epoch]);
    expect(await setupsAudited(c, 'signer-3', key.keyId)).toEqual([0]);
    await signs(c, key.keyId, new Uint8Array(key.publicKey));
    expect(await setupsAudited(c, 'signer-3', key.keyId)).toEqual([0, epoch]);
    await signs(c, key.keyId, new Uint8Array(key.publicKey));
  });
});

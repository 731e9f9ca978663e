/**
 * Offline co-signing against real signer engines: reservations checked before they are handed
 * out, a package completed exactly once (a retry, or a concurrent delivery, gets the stored
 * result and asks no co-signer again), and refusals with typed codes that store and consume
 * nothing. The device is an identity and core's DKG state machine behind a direct link.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DkgParticipant,
  ParticipantIdentity,
  PayloadKind,
  RESERVATION_NONCE_ID_BYTES,
  approveDevice,
  createOfflinePackage,
  decodeMessage,
  decodeSignatureShare,
  encodeKeyRecord,
  encodeSignatureShare,
  getSuite,
  keyDigest,
  openEnvelope,
  openReservation,
  signEnvelope,
  signReservation,
  toHex,
  type DecodedPackage,
  type DkgFinished,
  type LinkResult,
  type LinkTask,
  type ParticipantPublic,
  type Rng,
  type SignedReservation,
  type SuiteId,
} from '@tessera/core';
import type { SignerEngine } from '@tessera/signer';
import { operator } from '../../../test/authority.js';
import { layout } from '../src/layout.js';
import type { OfflineService } from '../src/offline.js';
import type { ParticipantHandle } from '../src/types.js';
import { services, signers } from './fixture.js';

const rng = ((k = 32) => new Uint8Array(randomBytes(k))) as Rng;
const msg = (s: string) => new TextEncoder().encode(s);

/** A device in this process: its identity and DKG state machine behind a link; its shares kept in memory. */
function phone(id: string) {
  const identity = ParticipantIdentity.generate(id);
  const info: ParticipantPublic = { ...identity.public, device: true };
  const dkg = new DkgParticipant(identity, rng);
  const shares = new Map<string, DkgFinished>();
  const handle: ParticipantHandle = {
    info,
    device: true,
    connectedSince: Date.now(),
    async call(task: Omit<LinkTask, 'taskId'>): Promise<LinkResult> {
      const taskId = 0;
      if (task.body === 'dkgStart') return { taskId, body: 'envelope', envelope: dkg.start(task.dkgStart?.params) };
      if (task.body === 'dkgAbort') {
        dkg.abort(task.dkgAbort?.sessionHash);
        return { taskId, body: 'ok', ok: true };
      }
      if (task.body !== 'dkgBundle') throw new Error(`a device takes no ${task.body} task`);
      const step = dkg.bundle(task.dkgBundle);
      if ('envelope' in step) return { taskId, body: 'envelope', envelope: step.envelope };
      const out = step.done;
      shares.set(out.keyId, out);
      const keyRecord = encodeKeyRecord({ keyId: out.keyId, epoch: 0, key: out.key, createdAt: Date.now() });
      return { taskId, body: 'dkgDone', dkgDone: { keyId: out.keyId, keyDigest: keyDigest(out.key), keyRecord } };
    },
  };
  return { id, identity, info, handle, shares };
}

type Phone = ReturnType<typeof phone>;

/**
 * `n` signer engines and a phone, linked, with the offline service built from its components as
 * the coordinator's facade builds it (and key generation, to make a key of the phone and nodes).
 */
async function cluster(n = 3) {
  const s = await signers(n);
  const p = phone('phone-1');
  const { store, audit, events, participants, registry, keygen, offline } = await services(s, {
    isDevice: (id) => id === p.id,
    // The operators admitted the phone: every signer checks this before it takes part.
    admissions: async (id) => (id === p.id ? [approveDevice(operator, p.identity.public)] : []),
    link: [p.handle],
  });
  const engine = (id: string) => s.engines.find((e) => e.id === id) as SignerEngine;
  /** Tasks of `body` sent to the signers so far. */
  const sentCount = (body: string) => [...s.sent.values()].flat().filter((b) => b === body).length;
  return { s, p, store, audit, events, participants, registry, keygen, offline, engine, sentCount };
}

type Cluster = Awaited<ReturnType<typeof cluster>>;

/** A key of the phone and `nodes`, threshold `t`. */
async function phoneKey(c: Cluster, suite: SuiteId, t: number, nodes: string[]) {
  const k = await c.keygen.keygen({ suite, threshold: t, participants: [c.p.id, ...nodes] });
  expect(c.registry.key(k.keyId).key.roster.find((r) => r.id === c.p.id)?.device).toBe(true);
  return k;
}

/** The phone's offline package of `message` over the reservations of one slot. */
function signOffline(p: Phone, keyId: string, slot: readonly Uint8Array[], message: Uint8Array): DecodedPackage {
  const out = p.shares.get(keyId);
  if (!out) throw new Error(`${p.id} holds no share of ${keyId}`);
  return createOfflinePackage({
    key: out.key,
    share: out.share,
    keyId,
    epoch: 0,
    device: p.id,
    message,
    reservations: slot.map((env) => openReservation(out.key, env)),
    createdAt: Date.now(),
  });
}

/** `bytes` with one bit flipped at `at`. */
function flip(bytes: Uint8Array, at: number): Uint8Array {
  const x = bytes.slice();
  x[at] = (x[at] as number) ^ 1;
  return x;
}

/** Where `part` starts inside `bytes` (it must occur). */
function offsetOf(bytes: Uint8Array, part: Uint8Array): number {
  const at = Buffer.from(bytes).indexOf(Buffer.from(part));
  expect(at).toBeGreaterThan(0);
  return at;
}

/** The co-signer's consumed ledger records for reservation `r`. */
async function consumed(c: Cluster, r: SignedReservation) {
  return (await c.engine(r.signer).ledger.listConsumed('r.')).filter((x) => x.nonceId.endsWith(`.${toHex(r.nonceId)}`));
}

/** Nothing of package `p` is stored: no result, no reservation marked used by it. */
async function expectNothingStored(c: Cluster, p: DecodedPackage) {
  expect(await c.store.get(layout.package(p.packageId))).toBeUndefined();
  for (const r of p.cosigners) expect(await c.store.get(layout.reservationUse(r.signer, r.nonceId))).toBeUndefined();
}

describe('OfflineService', () => {
  for (const suite of ['ed25519', 'secp256k1-tr'] as SuiteId[]) {
    it(`${suite}: reserves verified slots; a package completes once, the plain verifier accepts it, a retry gets the stored result without a co-signer`, async () => {
      const c = await cluster(3);
      const k = await phoneKey(c, suite, 2, ['signer-1', 'signer-2']);
      const key = c.registry.key(k.keyId).key;
      expect(c.sentCount('reserve')).toBe(0);

      const r = await c.offline.reserve(c.p.id, { keyId: k.keyId, count: 3 });
      expect(r.errors).toEqual([]);
      expect(r.slots).toHaveLength(3);
      const cosigner = openReservation(key, r.slots[0]?.[0] as Uint8Array).signer;
      expect(['signer-1', 'signer-2']).toContain(cosigner);
      for (const slot of r.slots) {
        expect(slot).toHaveLength(1); // t − 1 co-signers
        const res = openReservation(key, slot[0] as Uint8Array);
        expect(res).toMatchObject({ keyId: k.keyId, epoch: 0, device: c.p.id, signer: cosigner });
      }
      expect(new Set(r.slots.map((x) => toHex(openReservation(key, x[0] as Uint8Array).nonceId))).size).toBe(3);
      expect(c.sentCount('reserve')).toBe(1);
      expect(c.events).toContainEqual({ type: 'reserve', device: c.p.id, keyId: k.keyId, slots: 3 });

      const m = msg(`pay 10 (${suite})`);
      const pkg = signOffline(c.p, k.keyId, r.slots[0] as Uint8Array[], m);
      const done = await c.offline.complete(pkg.bytes);
      expect(done).toMatchObject({ packageId: pkg.packageId, keyId: k.keyId, alreadyCompleted: false });
      expect(done.message).toEqual(m);
      expect(done.publicKey).toEqual(k.publicKey);
      expect(done.signers).toEqual([c.p.id, cosigner]);
      expect(getSuite(suite).verify(done.signature, m, k.publicKey)).toBe(true);
      expect(getSuite(suite).verify(done.signature, msg('another message'), k.publicKey)).toBe(false);
      expect(c.sentCount('complete')).toBe(1);

      // Stored under the package id, the reservation marked used by it, the nonce consumed once.
      const stored = await c.store.get(layout.package(pkg.packageId));
      expect(decodeMessage('SubmitPackageResponse', stored as Uint8Array).signature).toEqual(done.signature);
      const res = pkg.cosigners[0] as SignedReservation;
      const used = await c.store.get(layout.reservationUse(res.signer, res.nonceId));
      expect(new TextDecoder().decode(used)).toBe(pkg.packageId);
      expect(await consumed(c, res)).toHaveLength(1);

      // Delivered again: the stored result, and no co-signer is asked.
      const again = await c.offline.complete(pkg.bytes);
      expect(again).toEqual({ ...done, alreadyCompleted: true });
      expect(c.sentCount('complete')).toBe(1);
      expect(await c.offline.completed()).toBe(1);
      expect(c.events.filter((e) => e.type === 'package')).toEqual([
        expect.objectContaining({ keyId: k.keyId, ok: true, cached: false, createdAt: pkg.createdAt }),
        expect.objectContaining({ keyId: k.keyId, ok: true, cached: true }),
      ]);

      const audited: string[] = [];
      for await (const e of c.audit.entries()) audited.push(e.type);
      expect(audited.filter((t) => t === 'reserve')).toHaveLength(1);
      expect(audited.filter((t) => t === 'offline-complete')).toHaveLength(1);
      expect((await c.audit.verify()).ok).toBe(true);
    });
  }

  it('concurrent deliveries of one package: one completion, one co-signer call, the same signature for all', async () => {
    const c = await cluster(2);
    const k = await phoneKey(c, 'ed25519', 2, ['signer-1', 'signer-2']);
    const { slots } = await c.offline.reserve(c.p.id, { keyId: k.keyId, count: 1 });
    const pkg = signOffline(c.p, k.keyId, slots[0] as Uint8Array[], msg('delivered five times'));
    const all = await Promise.all(Array.from({ length: 5 }, () => c.offline.complete(pkg.bytes)));
    expect(all.filter((x) => !x.alreadyCompleted)).toHaveLength(1);
    for (const x of all) expect(x.signature).toEqual((all[0] as (typeof all)[number]).signature);
    expect(c.sentCount('complete')).toBe(1);
    expect(await c.offline.completed()).toBe(1);
  });

  it('a tampered byte is refused with a typed code naming the device; nothing is stored or consumed; the genuine package then completes', async () => {
    const c = await cluster(3);
    const k = await phoneKey(c, 'ed25519', 2, ['signer-1', 'signer-2']);
    const { slots } = await c.offline.reserve(c.p.id, { keyId: k.keyId, count: 1 });
    const m = msg('pay 20 to bob');
    const pkg = signOffline(c.p, k.keyId, slots[0] as Uint8Array[], m);
    const res = pkg.cosigners[0] as SignedReservation;
    const variants: [string, Uint8Array, string, string[]][] = [
      ['a byte of the message', flip(pkg.bytes, offsetOf(pkg.bytes, m) + 4), 'BAD_SIGNATURE_SHARE', [c.p.id]],
      // ed25519 scalars are little-endian: the lowest bit of the first byte keeps it in range.
      ['a byte of the device share', flip(pkg.bytes, offsetOf(pkg.bytes, pkg.share)), 'BAD_SIGNATURE_SHARE', [c.p.id]],
      [
        "a byte of the co-signer's reservation signature",
        flip(pkg.bytes, offsetOf(pkg.bytes, res.signature) + 10),
        'RESERVATION_INVALID',
        [c.p.id],
      ],
      // (Cut short by only its last field, created_at, it would be the same package: no signature covers it.)
      ['a package cut in half', pkg.bytes.subarray(0, pkg.bytes.length >> 1), 'DECODE', []],
    ];
    for (const [what, bytes, code, culprits] of variants) {
      c.events.length = 0;
      await expect(c.offline.complete(bytes), what).rejects.toMatchObject({ code, culprits });
      expect(c.events, what).toEqual([expect.objectContaining({ type: 'package', ok: false, cause: code })]);
    }
    // No co-signer was asked, nothing is stored, the reservation is still fresh.
    expect(c.sentCount('complete')).toBe(0);
    expect(await c.offline.completed()).toBe(0);
    await expectNothingStored(c, pkg);
    expect(await consumed(c, res)).toEqual([]);

    const done = await c.offline.complete(pkg.bytes);
    expect(done.alreadyCompleted).toBe(false);
    expect(getSuite('ed25519').verify(done.signature, m, k.publicKey)).toBe(true);
  });

  it('the device delivering its own tampered package: the share is left to its co-signers, who refuse without spending; the same code naming the device; nothing stored', async () => {
    const c = await cluster(3);
    const k = await phoneKey(c, 'ed25519', 2, ['signer-1', 'signer-2']);
    const { slots } = await c.offline.reserve(c.p.id, { keyId: k.keyId, count: 1 });
    const m = msg('pay 20 to bob');
    const pkg = signOffline(c.p, k.keyId, slots[0] as Uint8Array[], m);
    const res = pkg.cosigners[0] as SignedReservation;
    const fromDevice = { submitter: c.p.id };
    const tampered: [string, Uint8Array][] = [
      ['a byte of the message', flip(pkg.bytes, offsetOf(pkg.bytes, m) + 4)],
      ['a byte of the device share', flip(pkg.bytes, offsetOf(pkg.bytes, pkg.share))],
    ];
    for (const [what, bytes] of tampered)
      await expect(c.offline.complete(bytes, fromDevice), what).rejects.toMatchObject({
        code: 'BAD_SIGNATURE_SHARE',
        culprits: [c.p.id],
      });
    // Its co-signer verified each, refused each and spent nothing.
    expect(c.sentCount('complete')).toBe(2);
    expect(await c.offline.completed()).toBe(0);
    await expectNothingStored(c, pkg);
    expect(await consumed(c, res)).toEqual([]);
    const done = await c.offline.complete(pkg.bytes, fromDevice);
    expect(getSuite('ed25519').verify(done.signature, m, k.publicKey)).toBe(true);
    // Once the reservation is used, a tampered package on it is still named for its bad share,
    // here, without asking the co-signer again.
    await expect(c.offline.complete(tampered[0]?.[1] as Uint8Array, fromDevice)).rejects.toMatchObject({
      code: 'BAD_SIGNATURE_SHARE',
      culprits: [c.p.id],
    });
    expect(c.sentCount('complete')).toBe(3);
  });

  it('a package on a reservation its co-signer never issued is refused RESERVATION_UNKNOWN naming the device; nothing is stored', async () => {
    const c = await cluster(2);
    const k = await phoneKey(c, 'ed25519', 2, ['signer-1', 'signer-2']);
    const key = c.registry.key(k.keyId).key;
    const { slots } = await c.offline.reserve(c.p.id, { keyId: k.keyId, count: 1 });
    const real = openReservation(key, slots[0]?.[0] as Uint8Array);
    // Signed by the co-signer's own key (so it verifies), but for a nonce its ledger does not hold.
    const unknown = signReservation(c.engine(real.signer).identity, {
      ...real,
      nonceId: rng(RESERVATION_NONCE_ID_BYTES),
    });
    const pkg = signOffline(c.p, k.keyId, [unknown], msg('on a phantom reservation'));
    await expect(c.offline.complete(pkg.bytes)).rejects.toMatchObject({
      code: 'RESERVATION_UNKNOWN',
      culprits: [c.p.id],
    });
    expect(c.sentCount('complete')).toBe(1); // the co-signer was asked: its ledger is the authority
    await expectNothingStored(c, pkg);
    expect(await c.offline.completed()).toBe(0);
    expect(await c.engine(real.signer).ledger.listConsumed('r.')).toEqual([]);
    // Asked again, the same refusal: it is not remembered as completed.
    await expect(c.offline.complete(pkg.bytes)).rejects.toMatchObject({ code: 'RESERVATION_UNKNOWN' });
  });

  it('a second package on a used reservation is refused RESERVATION_USED before any co-signer is asked', async () => {
    const c = await cluster(2);
    const k = await phoneKey(c, 'ed25519', 2, ['signer-1', 'signer-2']);
    const { slots } = await c.offline.reserve(c.p.id, { keyId: k.keyId, count: 1 });
    const first = signOffline(c.p, k.keyId, slots[0] as Uint8Array[], msg('pay 1 to carol'));
    const second = signOffline(c.p, k.keyId, slots[0] as Uint8Array[], msg('pay 1000 to mallory'));
    expect(second.packageId).not.toBe(first.packageId);
    await c.offline.complete(first.bytes);
    expect(c.sentCount('complete')).toBe(1);
    await expect(c.offline.complete(second.bytes)).rejects.toMatchObject({
      code: 'RESERVATION_USED',
      culprits: [c.p.id],
    });
    expect(c.sentCount('complete')).toBe(1);
    expect(await c.store.get(layout.package(second.packageId))).toBeUndefined();
    expect(await c.offline.completed()).toBe(1);
  });

  it('a co-signer offline at completion: UNAVAILABLE, the package stays pending, and completes once it is back', async () => {
    const c = await cluster(2);
    const k = await phoneKey(c, 'ed25519', 2, ['signer-1', 'signer-2']);
    const { slots } = await c.offline.reserve(c.p.id, { keyId: k.keyId, count: 1 });
    const pkg = signOffline(c.p, k.keyId, slots[0] as Uint8Array[], msg('queued while the node is down'));
    const cosigner = (pkg.cosigners[0] as SignedReservation).signer;
    const handle = c.participants.get(cosigner) as ParticipantHandle;
    c.participants.unlink(cosigner);
    await expect(c.offline.complete(pkg.bytes)).rejects.toMatchObject({ code: 'UNAVAILABLE', culprits: [] });
    expect(c.sentCount('complete')).toBe(0);
    await expectNothingStored(c, pkg);
    // Linked but its link fails: still UNAVAILABLE, still nothing stored.
    c.participants.link(handle);
    c.s.down.add(cosigner);
    await expect(c.offline.complete(pkg.bytes)).rejects.toMatchObject({ code: 'UNAVAILABLE', culprits: [] });
    await expectNothingStored(c, pkg);
    c.s.down.delete(cosigner);
    expect((await c.offline.complete(pkg.bytes)).alreadyCompleted).toBe(false);
  });

  it("a co-signer's bad share (for another package, altered, or signed by another key) is refused BAD_SIGNATURE_SHARE naming it; nothing is stored; the retry completes", async () => {
    const c = await cluster(2);
    const k = await phoneKey(c, 'ed25519', 2, ['signer-1', 'signer-2']);
    const suite = getSuite('ed25519');
    const { slots } = await c.offline.reserve(c.p.id, { keyId: k.keyId, count: 2 });
    const a = signOffline(c.p, k.keyId, slots[0] as Uint8Array[], msg('package a'));
    const b = signOffline(c.p, k.keyId, slots[1] as Uint8Array[], msg('package b'));
    const cosigner = (a.cosigners[0] as SignedReservation).signer;
    const answerOfA = await (async () => {
      let first: LinkResult | undefined;
      c.s.tamper.set(cosigner, (r, task) => (task.body === 'complete' ? (first ??= r) : r));
      await c.offline.complete(a.bytes);
      return first as LinkResult;
    })();
    /** The co-signer's share envelope, its share changed by `change` (and bound to `digest`), signed by `by`. */
    const reshare = (
      r: LinkResult,
      change: (share: Uint8Array) => Uint8Array,
      by: ParticipantIdentity,
      digest?: Uint8Array,
    ) => {
      const s = decodeSignatureShare(
        suite,
        openEnvelope(r.envelope as Uint8Array, PayloadKind.SIGNATURE_SHARE).payload,
      );
      const payload = encodeSignatureShare(suite, {
        ...s,
        share: change(s.share),
        requestDigest: digest ?? s.requestDigest,
      });
      return { ...r, envelope: signEnvelope(by, PayloadKind.SIGNATURE_SHARE, payload) };
    };
    const own = c.engine(cosigner).identity;
    const answers: [string, (r: LinkResult) => LinkResult][] = [
      ['its answer for package a', () => answerOfA],
      ['its valid share for b, bound to package a', (r) => reshare(r, (x) => x, own, a.digest)],
      ['its share for b, altered and signed by it', (r) => reshare(r, (x) => flip(x, 0), own)],
      ['its share for b, signed by another key', (r) => reshare(r, (x) => x, ParticipantIdentity.generate(cosigner))],
    ];
    for (const [what, answer] of answers) {
      c.s.tamper.set(cosigner, (r, task) => (task.body === 'complete' ? answer(r) : r));
      c.events.length = 0;
      await expect(c.offline.complete(b.bytes), what).rejects.toMatchObject({
        code: 'BAD_SIGNATURE_SHARE',
        culprits: [cosigner],
      });
      expect(c.events, what).toContainEqual({ type: 'culprit', participant: cosigner, code: 'BAD_SIGNATURE_SHARE' });
      await expectNothingStored(c, b);
    }
    // The co-signer answers b with the share it computed the first time (its nonce is spent once).
    c.s.tamper.delete(cosigner);
    const done = await c.offline.complete(b.bytes);
    expect(done.alreadyCompleted).toBe(false);
    expect(suite.verify(done.signature, msg('package b'), k.publicKey)).toBe(true);
    expect(await consumed(c, b.cosigners[0] as SignedReservation)).toHaveLength(1);
    expect(await c.offline.completed()).toBe(2);
  });

  it('reservations: refused before any co-signer hears of it when the request cannot be met', async () => {
    const c = await cluster(3);
    const k = await phoneKey(c, 'ed25519', 2, ['signer-1', 'signer-2']);
    const nodesOnly = await c.keygen.keygen({ suite: 'ed25519', threshold: 2, participants: ['signer-1', 'signer-2'] });
    const cases: [string, Parameters<OfflineService['reserve']>, string][] = [
      ['a key the device is not in', [c.p.id, { keyId: nodesOnly.keyId, count: 1 }], 'POLICY_DENIED'],
      ['an unknown key', [c.p.id, { keyId: '00112233445566ff', count: 1 }], 'NOT_FOUND'],
      ['no slots', [c.p.id, { keyId: k.keyId, count: 0 }], 'INVALID_ARGUMENT'],
      ['too many slots', [c.p.id, { keyId: k.keyId, count: 257 }], 'INVALID_ARGUMENT'],
      ['a fraction of a slot', [c.p.id, { keyId: k.keyId, count: 1.5 }], 'INVALID_ARGUMENT'],
      [
        'the device as its own co-signer',
        [c.p.id, { keyId: k.keyId, count: 1, cosigners: [c.p.id] }],
        'INVALID_ARGUMENT',
      ],
      ['a node not in the key', [c.p.id, { keyId: k.keyId, count: 1, cosigners: ['signer-3'] }], 'INVALID_ARGUMENT'],
      [
        'more co-signers than t − 1',
        [c.p.id, { keyId: k.keyId, count: 1, cosigners: ['signer-1', 'signer-2'] }],
        'INVALID_ARGUMENT',
      ],
    ];
    for (const [what, args, code] of cases)
      await expect(c.offline.reserve(...args), what).rejects.toMatchObject({ code });
    c.participants.unlink('signer-1');
    await expect(
      c.offline.reserve(c.p.id, { keyId: k.keyId, count: 1, cosigners: ['signer-1'] }),
    ).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    c.participants.unlink('signer-2');
    await expect(c.offline.reserve(c.p.id, { keyId: k.keyId, count: 1 })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    expect(c.sentCount('reserve')).toBe(0);
  });

  it("a co-signer's reservation that does not verify is dropped and the co-signer named; with none left, no slot", async () => {
    const c = await cluster(2);
    const k = await phoneKey(c, 'ed25519', 2, ['signer-1', 'signer-2']);
    const alter = (env: Uint8Array) => flip(env, env.length - 1); // the envelope's signature
    c.s.tamper.set('signer-1', (r, task) =>
      task.body === 'reserve' && r.reservations
        ? { ...r, reservations: { envelopes: r.reservations.envelopes.map((e, i) => (i === 0 ? alter(e) : e)) } }
        : r,
    );
    const r = await c.offline.reserve(c.p.id, { keyId: k.keyId, count: 2, cosigners: ['signer-1'] });
    expect(r.slots).toHaveLength(1);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatch(/^signer-1: [A-Z_]+$/);
    expect(c.events).toContainEqual(expect.objectContaining({ type: 'culprit', participant: 'signer-1' }));
    expect(c.events).toContainEqual({ type: 'reserve', device: c.p.id, keyId: k.keyId, slots: 1 });

    // A reservation its co-signer signed, whose commitment is not a valid element (the identity):
    // dropped when it is made, not when a payment arrives with it; the co-signer named.
    const identityPoint = Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0));
    const key = c.registry.key(k.keyId).key;
    const signer1 = c.engine('signer-1').identity;
    c.s.tamper.set('signer-1', (r, task) =>
      task.body === 'reserve' && r.reservations
        ? {
            ...r,
            reservations: {
              envelopes: r.reservations.envelopes.map((e) =>
                signReservation(signer1, { ...openReservation(key, e), hiding: identityPoint }),
              ),
            },
          }
        : r,
    );
    c.events.length = 0;
    await expect(
      c.offline.reserve(c.p.id, { keyId: k.keyId, count: 1, cosigners: ['signer-1'] }),
    ).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(c.events).toContainEqual({ type: 'culprit', participant: 'signer-1', code: 'RESERVATION_INVALID' });

    // Every reservation altered: nothing to hand out.
    c.s.tamper.set('signer-1', (r, task) =>
      task.body === 'reserve' && r.reservations
        ? { ...r, reservations: { envelopes: r.reservations.envelopes.map(alter) } }
        : r,
    );
    await expect(
      c.offline.reserve(c.p.id, { keyId: k.keyId, count: 1, cosigners: ['signer-1'] }),
    ).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    // A co-signer that refuses for its cap: RESOURCE_EXHAUSTED.
    c.s.tamper.set('signer-2', (r, task) =>
      task.body === 'reserve'
        ? { taskId: r.taskId, body: 'error', error: { code: 'RESOURCE_EXHAUSTED', message: 'cap', culprits: [] } }
        : r,
    );
    await expect(
      c.offline.reserve(c.p.id, { keyId: k.keyId, count: 1, cosigners: ['signer-2'] }),
    ).rejects.toMatchObject({ code: 'RESOURCE_EXHAUSTED' });
  });
});

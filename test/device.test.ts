import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ParticipantIdentity,
  PayloadKind,
  commit,
  createOfflinePackage,
  decodeIdentityRecord,
  decodeKeyShareRecord,
  decodeMessage,
  decodeOfflinePackage,
  encodeMessage,
  encodeOfflinePackage,
  equalBytes,
  fromHex,
  getSuite,
  participantToWire,
  signEnvelope,
  signShare,
  toHex,
  type DecodedPackage,
  type GroupKey,
  type KeyShare,
  type KeyShareRecord,
  type OfflinePackage,
  type SignedReservation,
  type SuiteId,
  type WireDeviceCall,
  type WireTypes,
} from '@tessera/core';
import type { SignerEngine } from '@tessera/signer';
import { checkPackage } from '@tessera/core/merchant';
import { Device, DeviceError, GatewayClient, decryptBackup } from '@tessera/device';
import { TEST_CLUSTER, cleanup, deviceCluster, enrolled, newDevice, tempDir, type Cluster } from './device-harness.js';

afterAll(cleanup);

describe('device SDK with the gateway', () => {
  for (const suite of ['ed25519', 'secp256k1-tr'] as SuiteId[]) {
    it(`${suite}: enrol, keygen with the device, reserve, sign offline, sync exactly once`, async () => {
      const c = await deviceCluster(3);
      const { device } = await enrolled(c, `phone-${suite}`);
      const key = await device.keygen(c.url, { suite, threshold: 2, with: ['signer-1', 'signer-2'] });
      expect(key.participants).toEqual([`phone-${suite}`, 'signer-1', 'signer-2'].sort());
      const r = await device.reserve(c.url, { keyId: key.keyId, count: 3 });
      expect(r.added).toBe(3);
      expect(r.allowance).toBe(3);
      const msg = new Uint8Array(randomBytes(32));
      const p = await device.signOffline({ keyId: key.keyId, message: msg });
      expect(p.bytes.length).toBeLessThan(400);
      // The merchant's offline check with the key's public record.
      const checked = await checkPackage(await device.keyRecord(key.keyId), p.text);
      expect(checked.packageId).toBe(p.packageId);
      expect(checked.device).toBe(`phone-${suite}`);
      const s = await device.sync(c.url);
      expect(s.pending).toEqual([]);
      expect(s.completed).toHaveLength(1);
      const sig = fromHex((s.completed[0] as { signature: string }).signature);
      expect(getSuite(suite).verify(sig, msg, fromHex(key.publicKey))).toBe(true);
      // Delivered again (the merchant): same signature, one completion.
      const again = await c.coordinator.completePackage(p.bytes);
      expect(again.alreadyCompleted).toBe(true);
      expect(toHex(again.signature)).toBe(toHex(sig));
      expect((await device.status()).keys[0]?.allowance).toBe(2);
    });
  }
});

// ---- helpers for refusals, forged packages and raw gateway calls --------------------------------

/** An absent allowance (the wire types call a sub-message present; the codec takes null). */
const NO_ALLOWANCE = null as unknown as WireTypes['Allowance'];
const PASSWORD = 'correct horse battery staple 42';
const msg = (s: string) => new TextEncoder().encode(s);

interface Refusal {
  code: string;
  message: string;
  culprits: readonly string[];
  error: unknown;
}

/** Runs `f` and returns the error it throws (fails the test if it succeeds). */
async function refusal(f: () => unknown): Promise<Refusal> {
  let out: unknown;
  try {
    out = await f();
  } catch (e) {
    const x = e as { code?: unknown; message?: unknown; culprits?: unknown };
    return {
      code: String(x.code),
      message: String(x.message),
      culprits: Array.isArray(x.culprits) ? x.culprits.map(String) : [],
      error: e,
    };
  }
  throw new Error(
    `expected a refusal, the call succeeded (${JSON.stringify(out, (_, v: unknown) => (v instanceof Uint8Array ? toHex(v) : v)).slice(0, 200)})`,
  );
}

/** The device's secrets, through its own encrypted backup (the Device API hides them otherwise). */
async function secretsOf(
  device: Device,
  password = PASSWORD,
): Promise<{ identity: ParticipantIdentity; keys: Map<string, KeyShareRecord>; backup: Uint8Array }> {
  const backup = await device.exportBackup(password, { cost: 'test' });
  const plain = JSON.parse(new TextDecoder().decode(await decryptBackup(backup, password))) as {
    identity: string;
    keys: string[];
  };
  const keys = new Map<string, KeyShareRecord>();
  for (const k of plain.keys) {
    const rec = decodeKeyShareRecord(fromHex(k));
    keys.set(rec.keyId, rec);
  }
  return { identity: decodeIdentityRecord(fromHex(plain.identity)), keys, backup };
}

/** A package built like createOfflinePackage but without its checks (a forger's tool). */
function forgePackage(a: {
  key: GroupKey;
  share: KeyShare;
  keyId: string;
  epoch: number;
  device: string;
  message: Uint8Array;
  reservations: readonly SignedReservation[];
  createdAt?: number;
}): Uint8Array {
  const { nonces, commitment } = commit(a.share);
  const commitments = [
    commitment,
    ...a.reservations.map((r) => ({
      identifier: (a.key.roster.find((x) => x.id === r.signer) as { identifier: string }).identifier,
      hiding: r.hiding,
      binding: r.binding,
    })),
  ];
  const share = signShare(a.share, a.key, nonces, commitments, a.message);
  return encodeOfflinePackage({
    suite: a.key.suite,
    keyId: a.keyId,
    epoch: a.epoch,
    device: a.device,
    message: a.message,
    commitment: { hiding: commitment.hiding, binding: commitment.binding },
    share,
    cosigners: a.reservations,
    createdAt: a.createdAt ?? Date.now(),
  });
}

/** Re-encodes a package (canonically) with some fields changed. */
function repackage(bytes: Uint8Array, change: (p: DecodedPackage) => Partial<OfflinePackage>): Uint8Array {
  const p = decodeOfflinePackage(bytes);
  return encodeOfflinePackage({ ...p, ...change(p) });
}

/** The co-signer node named by a package (these tests use t = 2: exactly one). */
function cosignerOf(c: Cluster, bytes: Uint8Array): SignerEngine {
  const p = decodeOfflinePackage(bytes);
  expect(p.cosigners).toHaveLength(1);
  return c.signer((p.cosigners[0] as SignedReservation).signer);
}

/** The co-signer's consumed ledger records for the reservation a package uses. */
async function consumedFor(c: Cluster, bytes: Uint8Array) {
  const p = decodeOfflinePackage(bytes);
  const r = p.cosigners[0] as SignedReservation;
  return (await c.signer(r.signer).ledger.listConsumed('r.')).filter((x) => x.nonceId.endsWith(`.${toHex(r.nonceId)}`));
}

/** The co-signer's audited offline completions of a package. */
async function completionsAudited(s: SignerEngine, packageId: string): Promise<{ cached: unknown }[]> {
  const out: { cached: unknown }[] = [];
  for await (const e of s.audit.entries())
    if (e.type === 'offline-complete' && e.data.package === packageId) out.push({ cached: e.data.cached });
  return out;
}

/** A signed DEVICE_CALL envelope, as the SDK's GatewayClient builds it, with fields overridable. */
function deviceCall(
  identity: ParticipantIdentity,
  op: string,
  body: Uint8Array,
  over: Partial<WireDeviceCall> = {},
): Uint8Array {
  const payload = encodeMessage('DeviceCall', {
    version: 1,
    device: identity.id,
    op,
    issuedAt: Date.now(),
    nonce: new Uint8Array(randomBytes(16)),
    body,
    clusterId: TEST_CLUSTER,
    ...over,
  });
  return signEnvelope(identity, PayloadKind.DEVICE_CALL, payload);
}

interface Answer {
  status: number;
  body: Uint8Array;
  json?: { code: string; message: string; culprits: string[] };
}

async function post(url: string, path: string, body: Uint8Array, method = 'POST'): Promise<Answer> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { 'content-type': 'application/x-protobuf' },
    ...(method === 'POST' ? { body: body as Uint8Array<ArrayBuffer> } : {}),
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  let json: Answer['json'];
  if (res.headers.get('content-type')?.includes('json'))
    json = JSON.parse(new TextDecoder().decode(bytes)) as Answer['json'];
  return { status: res.status, body: bytes, ...(json ? { json } : {}) };
}

/** A gateway refusal: 4xx with exactly {code, message, culprits}, code a stable upper-case name. */
function expectRefusalAnswer(a: Answer, status?: number): void {
  if (status !== undefined) expect(a.status).toBe(status);
  expect(a.status).toBeGreaterThanOrEqual(400);
  expect(a.status).toBeLessThan(500);
  expect(a.json).toBeDefined();
  const j = a.json as NonNullable<Answer['json']>;
  expect(Object.keys(j).sort()).toEqual(['code', 'culprits', 'message']);
  expect(j.code).toMatch(/^[A-Z][A-Z_]+$/);
  expect(typeof j.message).toBe('string');
  expect(Array.isArray(j.culprits) && j.culprits.every((x) => typeof x === 'string')).toBe(true);
}

/** Submits a package through the gateway as `identity` (any enrolled device may deliver a package). */
function submitRaw(c: Cluster, identity: ParticipantIdentity, pkg: Uint8Array): Promise<Answer> {
  return post(
    c.url,
    '/v1/device/submit',
    deviceCall(identity, 'submit', encodeMessage('SubmitPackageRequest', { package: pkg })),
  );
}

/** An enrolled device holding a 2-of-3 key with signer-1 and signer-2. */
async function deviceWithKey(c: Cluster, id: string, suite: SuiteId = 'ed25519', opts: { clock?: () => number } = {}) {
  const d = await enrolled(c, id, opts);
  const key = await d.device.keygen(c.url, { suite, threshold: 2, with: ['signer-1', 'signer-2'] });
  return { ...d, keyInfo: key, keyId: key.keyId };
}

let sharedCluster: Promise<Cluster> | undefined;
/** One cluster for the tests that only add their own devices and keys to it. */
const shared = () => (sharedCluster ??= deviceCluster(3));

// ---- refusals ---------------------------------------------------------------------------------

describe('refusals: expired reservations', () => {
  it('a package on a reservation the co-signer sees expired is refused RESERVATION_EXPIRED; sync marks it failed; the other slot still completes', async () => {
    let signerSkew = 0;
    const c = await deviceCluster(3, { clock: () => Date.now() + signerSkew });
    const { device, keyId } = await deviceWithKey(c, 'phone-exp');
    const r = await device.reserve(c.url, { keyId, count: 2, ttlMs: 120_000 });
    expect(r.added).toBe(2);
    const p = await device.signOffline({ keyId, message: msg('paid before the deadline') });
    const cos = cosignerOf(c, p.bytes);
    expect(decodeOfflinePackage(p.bytes).cosigners[0]?.expiresAt).toBeLessThanOrEqual(Date.now() + 120_000);

    signerSkew = 10 * 60_000; // the co-signer's clock is now past the reservation's expiry
    const s = await device.sync(c.url);
    expect(s.completed).toEqual([]);
    expect(s.pending).toEqual([]);
    expect(s.failed).toEqual([
      { packageId: p.packageId, keyId, code: 'RESERVATION_EXPIRED', reason: expect.stringContaining('expired') },
    ]);
    const q = await device.queue();
    expect(q).toHaveLength(1);
    expect(q[0]?.state).toBe('failed');
    expect(q[0]?.lastError?.code).toBe('RESERVATION_EXPIRED');
    // Final: a second sync does not resubmit it.
    expect(await device.sync(c.url)).toEqual({ completed: [], pending: [], failed: [] });
    // Nothing was completed or consumed.
    expect(await c.coordinator.completedPackages()).toBe(0);
    expect(await cos.ledger.listConsumed('r.')).toEqual([]);
    // Delivered again (a merchant): still refused. The co-signer discarded the expired
    // reservation on the first refusal, so it now answers RESERVATION_UNKNOWN.
    const again = await refusal(() => c.coordinator.completePackage(p.bytes));
    expect(again.code).toBe('RESERVATION_UNKNOWN');
    expect(again.culprits).toEqual(['phone-exp']);
    expect(await c.coordinator.completedPackages()).toBe(0);

    // The device's other reservation was not touched: with the co-signer's clock back, it completes.
    signerSkew = 0;
    const p2 = await device.signOffline({ keyId, message: msg('second slot') });
    const s2 = await device.sync(c.url);
    expect(s2.failed).toEqual([]);
    expect(s2.completed.map((x) => x.packageId)).toEqual([p2.packageId]);
    expect(await cos.ledger.listConsumed('r.')).toHaveLength(1);
  });

  it('signOffline refuses NO_ALLOWANCE when every reservation is within 60 s of expiry by the device clock', async () => {
    let deviceSkew = 0;
    const c = await deviceCluster(3);
    const { device, keyId } = await deviceWithKey(c, 'phone-margin', 'ed25519', {
      clock: () => Date.now() + deviceSkew,
    });
    expect((await device.reserve(c.url, { keyId, count: 2, ttlMs: 120_000 })).allowance).toBe(2);
    deviceSkew = 45_000; // 75 s left: still usable
    expect((await device.status()).keys[0]?.allowance).toBe(2);
    deviceSkew = 61_000; // 59 s left: too close to expiry to be delivered in time
    expect((await device.status()).keys[0]?.allowance).toBe(0);
    const e = await refusal(() => device.signOffline({ keyId, message: msg('too late') }));
    expect(e.error).toBeInstanceOf(DeviceError);
    expect(e.code).toBe('NO_ALLOWANCE');
    expect(await device.queue()).toEqual([]);
    expect(await c.coordinator.completedPackages()).toBe(0);
    // Reserving afresh (default lifetime) restores the allowance at the same device clock.
    expect((await device.reserve(c.url, { keyId, count: 1 })).allowance).toBe(1);
    const p = await device.signOffline({ keyId, message: msg('in time') });
    expect((await device.sync(c.url)).completed.map((x) => x.packageId)).toEqual([p.packageId]);
  });
});

describe('refusals: foreign packages', () => {
  it("another key, another device named, another device's reservation: refused with typed codes, the genuine package completes", async () => {
    const c = await deviceCluster(3);
    const a = await enrolled(c, 'phone-a');
    const b = await enrolled(c, 'phone-b');
    // One 2-of-4 key of both devices and two signer nodes; and a key of the signer nodes only.
    await b.device.connect(c.url, { acceptKeygen: true });
    const shared4 = await a.device.keygen(c.url, {
      suite: 'ed25519',
      threshold: 2,
      with: ['phone-b', 'signer-1', 'signer-2'],
    });
    await b.device.disconnect();
    expect(shared4.participants).toEqual(['phone-a', 'phone-b', 'signer-1', 'signer-2']);
    expect((await b.device.keys()).map((k) => k.keyId)).toEqual([shared4.keyId]);
    const nodesOnly = await c.coordinator.keygen({
      suite: 'ed25519',
      threshold: 2,
      participants: ['signer-1', 'signer-2', 'signer-3'],
    });
    const keyId = shared4.keyId;
    expect((await a.device.reserve(c.url, { keyId, count: 1, cosigners: ['signer-1'] })).added).toBe(1);
    expect((await b.device.reserve(c.url, { keyId, count: 1, cosigners: ['signer-1'] })).added).toBe(1);
    const pa = await a.device.signOffline({ keyId, message: msg('from a') });
    const cos = c.signer('signer-1');
    const aRes = decodeOfflinePackage(pa.bytes).cosigners;

    // 1. A's package presented for a key A is not part of.
    const rekeyed = repackage(pa.bytes, () => ({ keyId: nodesOnly.keyId }));
    const e1 = await refusal(() => c.coordinator.completePackage(rekeyed));
    expect(e1.code).toBe('INVALID_ARGUMENT'); // "phone-a is not a participant of key …"
    expect(e1.message).toContain('phone-a');
    expect((await refusal(() => cos.complete(rekeyed))).code).toBe('RESERVATION_UNKNOWN');

    // 2. A's package re-labelled as B's (B is a participant of the key).
    const relabelled = repackage(pa.bytes, () => ({ device: 'phone-b' }));
    const e2 = await refusal(() => c.coordinator.completePackage(relabelled));
    expect(e2.code).toBe('RESERVATION_INVALID');
    expect(['BAD_SIGNATURE_SHARE', 'RESERVATION_INVALID']).toContain(e2.code);
    expect((await refusal(() => cos.complete(relabelled))).code).toBe('RESERVATION_UNKNOWN');

    // 3. B signs with A's reservation: core refuses to build it ...
    const bSecrets = await secretsOf(b.device);
    const bRec = bSecrets.keys.get(keyId) as KeyShareRecord;
    const built = await refusal(() =>
      createOfflinePackage({
        key: bRec.key,
        share: bRec.share,
        keyId,
        epoch: bRec.epoch,
        device: 'phone-b',
        message: msg('b steals a slot'),
        reservations: aRes,
        createdAt: Date.now(),
      }),
    );
    expect(built.code).toBe('RESERVATION_INVALID');
    // ... and a forger's hand-built package (B's valid share over A's reservation) is refused by the coordinator and by the co-signer.
    const stolen = forgePackage({
      key: bRec.key,
      share: bRec.share,
      keyId,
      epoch: bRec.epoch,
      device: 'phone-b',
      message: msg('b steals a slot'),
      reservations: aRes,
    });
    const e3 = await refusal(() => c.coordinator.completePackage(stolen));
    expect(e3.code).toBe('RESERVATION_INVALID');
    expect(e3.culprits).toEqual(['phone-b']);
    expect((await refusal(() => cos.complete(stolen))).code).toBe('RESERVATION_UNKNOWN');
    // The same over the gateway, delivered by B: HTTP 409 with the code.
    expectRefusalAnswer(await submitRaw(c, bSecrets.identity, stolen), 409);

    // Nothing changed: no completion, no consumed nonce; A's genuine package and B's own complete.
    expect(await c.coordinator.completedPackages()).toBe(0);
    expect(await cos.ledger.listConsumed('r.')).toEqual([]);
    const sa = await a.device.sync(c.url);
    expect(sa.failed).toEqual([]);
    expect(sa.completed.map((x) => x.packageId)).toEqual([pa.packageId]);
    const pb = await b.device.signOffline({ keyId, message: msg('from b') });
    expect((await b.device.sync(c.url)).completed.map((x) => x.packageId)).toEqual([pb.packageId]);
    expect(await cos.ledger.listConsumed('r.')).toHaveLength(2);
  });
});

describe('refusals: tampered packages', () => {
  for (const suite of ['ed25519', 'secp256k1-tr'] as SuiteId[]) {
    it(`${suite}: altered message, share, commitment or reservation expiry are refused; the genuine package still completes`, async () => {
      const c = await shared();
      const { device, keyId, keyInfo } = await deviceWithKey(c, `phone-tamper-${suite}`, suite);
      await device.reserve(c.url, { keyId, count: 1 });
      const p = await device.signOffline({ keyId, message: msg(`genuine ${suite}`) });
      const cos = cosignerOf(c, p.bytes);
      const low = suite === 'ed25519' ? 0 : getSuite(suite).scalarBytes - 1; // the scalar's least significant byte
      const flip = (b: Uint8Array, at: number) => {
        const x = b.slice();
        x[at] = (x[at] as number) ^ 1;
        return x;
      };
      const variants: [string, Uint8Array, string, string][] = [
        // [what, bytes, coordinator code, co-signer code]
        [
          'message',
          repackage(p.bytes, (x) => ({ message: flip(x.message, 0) })),
          'BAD_SIGNATURE_SHARE',
          'BAD_SIGNATURE_SHARE',
        ],
        [
          'share',
          repackage(p.bytes, (x) => ({ share: flip(x.share, low) })),
          'BAD_SIGNATURE_SHARE',
          'BAD_SIGNATURE_SHARE',
        ],
        [
          'device commitment',
          repackage(p.bytes, (x) => ({ commitment: { hiding: x.commitment.binding, binding: x.commitment.hiding } })),
          'BAD_SIGNATURE_SHARE',
          'BAD_SIGNATURE_SHARE',
        ],
        [
          'reservation expiry',
          repackage(p.bytes, (x) => ({
            cosigners: x.cosigners.map((r) => ({ ...r, expiresAt: r.expiresAt + 86_400_000 })),
          })),
          'RESERVATION_INVALID',
          'RESERVATION_INVALID',
        ],
        [
          'reserved commitment',
          repackage(p.bytes, (x) => ({
            cosigners: x.cosigners.map((r) => ({ ...r, hiding: r.binding, binding: r.hiding })),
          })),
          'RESERVATION_INVALID',
          'RESERVATION_INVALID',
        ],
        [
          'raw bit in the message',
          (() => {
            const m = decodeOfflinePackage(p.bytes).message;
            const at = Buffer.from(p.bytes).indexOf(Buffer.from(m));
            expect(at).toBeGreaterThan(0);
            return flip(p.bytes, at + 3);
          })(),
          'BAD_SIGNATURE_SHARE',
          'BAD_SIGNATURE_SHARE',
        ],
      ];
      const me = (await secretsOf(device)).identity;
      const keyRecord = await device.keyRecord(keyId);
      for (const [what, bytes, coordCode, signerCode] of variants) {
        expect(equalBytes(bytes, p.bytes), what).toBe(false);
        const e = await refusal(() => c.coordinator.completePackage(bytes));
        expect(e.code, what).toBe(coordCode);
        expect(e.culprits, what).toEqual(['phone-tamper-' + suite]);
        expect((await refusal(() => cos.complete(bytes))).code, what).toBe(signerCode);
        const viaGateway = await submitRaw(c, me, bytes);
        expectRefusalAnswer(viaGateway, coordCode === 'BAD_SIGNATURE_SHARE' ? 422 : 409);
        expect(viaGateway.json?.code, what).toBe(coordCode);
        // The merchant's offline check refuses it too.
        expect((await refusal(() => checkPackage(keyRecord, bytes))).code, what).toBe(coordCode);
      }
      // Nothing was consumed: the genuine package completes, once.
      expect(await consumedFor(c, p.bytes)).toEqual([]);
      const s = await device.sync(c.url);
      expect(s.failed).toEqual([]);
      expect(s.completed.map((x) => x.packageId)).toEqual([p.packageId]);
      expect(
        getSuite(suite).verify(
          fromHex(s.completed[0]?.signature as string),
          msg(`genuine ${suite}`),
          fromHex(keyInfo.publicKey),
        ),
      ).toBe(true);
      expect(await consumedFor(c, p.bytes)).toHaveLength(1);
    });
  }

  it('every single-bit flip of a package is refused, except in created_at where it names the same package; the genuine package completes once', async () => {
    const c = await shared();
    const { device, keyId } = await deviceWithKey(c, 'phone-bitflip');
    await device.reserve(c.url, { keyId, count: 1 });
    const p = await device.signOffline({ keyId, message: msg('flip me') });
    const genuine = decodeOfflinePackage(p.bytes);
    const cos = cosignerOf(c, p.bytes);
    const allowed = new Set([
      'DECODE',
      'UNSUPPORTED_VERSION',
      'WRONG_SUITE',
      'INVALID_ARGUMENT',
      'NOT_FOUND',
      'BAD_SIGNATURE_SHARE',
      'RESERVATION_INVALID',
      'RESERVATION_UNKNOWN',
    ]);
    const seen = new Map<string, number>();
    const sameId: Uint8Array[] = [];
    // One flipped bit per byte, the bit position cycling, so every bit position occurs across the package.
    for (let at = 0; at < p.bytes.length; at++) {
      const bit = 1 << (at % 8);
      const bytes = p.bytes.slice();
      bytes[at] = (bytes[at] as number) ^ bit;
      let onlyCreatedAt = false;
      try {
        const d = decodeOfflinePackage(bytes);
        onlyCreatedAt = equalBytes(encodeOfflinePackage({ ...d, createdAt: genuine.createdAt }), p.bytes);
      } catch {
        /* undecodable: must be refused */
      }
      if (onlyCreatedAt) {
        sameId.push(bytes); // checked below, once the genuine package has completed
        continue;
      }
      const e = await refusal(() => c.coordinator.completePackage(bytes));
      expect(allowed.has(e.code), `byte ${at} ^ ${bit}: ${e.code} ${e.message}`).toBe(true);
      seen.set(e.code, (seen.get(e.code) ?? 0) + 1);
      const se = await refusal(() => cos.complete(bytes));
      expect(allowed.has(se.code), `co-signer, byte ${at} ^ ${bit}: ${se.code}`).toBe(true);
    }
    expect(seen.get('BAD_SIGNATURE_SHARE')).toBeGreaterThan(0);
    expect(seen.get('RESERVATION_INVALID')).toBeGreaterThan(0);
    expect(seen.get('DECODE')).toBeGreaterThan(0);
    expect(await consumedFor(c, p.bytes)).toEqual([]);
    const s = await device.sync(c.url);
    expect(s.completed.map((x) => x.packageId)).toEqual([p.packageId]);
    // Flips that only re-date the package (created_at is covered by no signature) name the same package: the stored result.
    expect(sameId.length).toBeGreaterThan(0);
    expect(sameId.length).toBeLessThanOrEqual(16);
    for (const b of sameId) {
      const r = await c.coordinator.completePackage(b);
      expect(r.alreadyCompleted).toBe(true);
      expect(toHex(r.signature)).toBe(s.completed[0]?.signature);
    }
    expect(await consumedFor(c, p.bytes)).toHaveLength(1);
  });

  it('a copy with only created_at changed (unsigned, informational) is the same package: it completes once, and the genuine gets that result', async () => {
    const c = await shared();
    const { device, keyId } = await deviceWithKey(c, 'phone-redated');
    await device.reserve(c.url, { keyId, count: 1 });
    const p = await device.signOffline({ keyId, message: msg('re-dated by a relay') });
    const redated = repackage(p.bytes, (x) => ({ createdAt: x.createdAt + 3_600_000 }));
    expect(equalBytes(redated, p.bytes)).toBe(false);
    // A relay delivers the re-dated copy first: it cannot become a second package racing for the reservation.
    expect(decodeOfflinePackage(redated).packageId).toBe(p.packageId);
    const first = await c.coordinator.completePackage(redated);
    expect(first.alreadyCompleted).toBe(false);
    expect(first.packageId).toBe(p.packageId);
    const s = await device.sync(c.url);
    expect(s.failed).toEqual([]);
    expect(s.completed).toEqual([
      expect.objectContaining({ packageId: p.packageId, signature: toHex(first.signature) }),
    ]);
    expect(await consumedFor(c, p.bytes)).toHaveLength(1);
  });

  it('3-of-4: a relay that reorders the two co-signers gets DECODE from the coordinator, both co-signers, the gateway and checkPackage; nothing is consumed and the genuine package completes once', async () => {
    const c = await shared();
    const d = await enrolled(c, 'phone-reorder');
    const key = await d.device.keygen(c.url, {
      suite: 'ed25519',
      threshold: 3,
      with: ['signer-1', 'signer-2', 'signer-3'],
    });
    const keyId = key.keyId;
    expect((await d.device.reserve(c.url, { keyId, count: 1 })).added).toBe(1);
    const m = msg('pay 40 to dave, reordered by a relay');
    const p = await d.device.signOffline({ keyId, message: m });
    const genuine = decodeOfflinePackage(p.bytes);
    expect(genuine.cosigners).toHaveLength(2);
    const reordered = encodeOfflinePackage({ ...genuine, cosigners: [...genuine.cosigners].reverse() });
    expect(equalBytes(reordered, p.bytes)).toBe(false);
    const consumed = async () => {
      let n = 0;
      for (const r of genuine.cosigners)
        n += (await c.signer(r.signer).ledger.listConsumed('r.')).filter((x) =>
          x.nonceId.endsWith(`.${toHex(r.nonceId)}`),
        ).length;
      return n;
    };

    // The relay delivers the reordered copy first, every way it can.
    const e = await refusal(() => c.coordinator.completePackage(reordered));
    expect(e.code).toBe('DECODE');
    expect(e.message).toContain('canonical order');
    for (const r of genuine.cosigners)
      expect((await refusal(() => c.signer(r.signer).complete(reordered))).code, r.signer).toBe('DECODE');
    const a = await submitRaw(c, (await secretsOf(d.device)).identity, reordered);
    expectRefusalAnswer(a, 400);
    expect(a.json?.code).toBe('DECODE');
    const keyRecord = await d.device.keyRecord(keyId);
    expect((await checkPackage(keyRecord, p.bytes)).packageId).toBe(p.packageId);
    expect((await refusal(() => checkPackage(keyRecord, reordered))).code).toBe('DECODE');
    expect(await consumed()).toBe(0);

    // The device's own package is unaffected: it completes, exactly once.
    const s = await d.device.sync(c.url);
    expect(s.failed).toEqual([]);
    expect(s.completed.map((x) => x.packageId)).toEqual([p.packageId]);
    expect(getSuite('ed25519').verify(fromHex(s.completed[0]?.signature as string), m, fromHex(key.publicKey))).toBe(
      true,
    );
    expect(await consumed()).toBe(2);
    expect((await c.coordinator.completePackage(p.bytes)).alreadyCompleted).toBe(true);
    expect((await refusal(() => c.coordinator.completePackage(reordered))).code).toBe('DECODE');
    expect(await consumed()).toBe(2);
  });
});

describe('refusals: over-allowance', () => {
  it('a co-signer caps a device at maxReservations; beyond it RESOURCE_EXHAUSTED, and the 4th offline signature NO_ALLOWANCE', async () => {
    const c = await deviceCluster(3, { maxReservations: 3 });
    const { device, keyId } = await deviceWithKey(c, 'phone-cap');
    const r = await device.reserve(c.url, { keyId, count: 5, cosigners: ['signer-1'] });
    expect(r.added).toBe(3);
    expect(r.allowance).toBe(3);
    expect(await c.signer('signer-1').ledger.countFresh('r.')).toBe(3);
    // None left on this co-signer: the reserve is refused and nothing is added.
    const e = await refusal(() => device.reserve(c.url, { keyId, count: 1, cosigners: ['signer-1'] }));
    expect(e.error).toBeInstanceOf(DeviceError);
    expect(e.code).toBe('RESOURCE_EXHAUSTED');
    expect((await device.status()).keys[0]?.allowance).toBe(3);
    expect(await c.signer('signer-1').ledger.countFresh('r.')).toBe(3);

    const ps = [];
    for (let i = 0; i < 3; i++) ps.push(await device.signOffline({ keyId, message: msg(`capped ${i}`) }));
    const four = await refusal(() => device.signOffline({ keyId, message: msg('capped 3') }));
    expect(four.code).toBe('NO_ALLOWANCE');
    expect((await device.queue()).map((q) => q.packageId)).toEqual(ps.map((p) => p.packageId));
    const s = await device.sync(c.url);
    expect(s.completed.map((x) => x.packageId)).toEqual(ps.map((p) => p.packageId));
    // Used reservations no longer count against the cap.
    expect((await device.reserve(c.url, { keyId, count: 5, cosigners: ['signer-1'] })).added).toBe(3);
  });
});

describe('refusals: replayed packages', () => {
  it('the same package delivered twice and 5x concurrently completes once, with one signature and one consumed nonce', async () => {
    const c = await shared();
    const { device, keyId, keyInfo } = await deviceWithKey(c, 'phone-replay');
    await device.reserve(c.url, { keyId, count: 2 });
    const m1 = msg('pay 10 to bob, once');
    const p = await device.signOffline({ keyId, message: m1 });
    const cos = cosignerOf(c, p.bytes);
    const before = await c.coordinator.completedPackages();

    const results = await Promise.all(Array.from({ length: 5 }, () => c.coordinator.completePackage(p.bytes)));
    expect(results.filter((r) => !r.alreadyCompleted)).toHaveLength(1);
    expect(results.filter((r) => r.alreadyCompleted)).toHaveLength(4);
    const sig = toHex((results[0] as { signature: Uint8Array }).signature);
    expect(new Set(results.map((r) => toHex(r.signature)))).toEqual(new Set([sig]));
    expect(getSuite('ed25519').verify(fromHex(sig), m1, fromHex(keyInfo.publicKey))).toBe(true);
    const again = await c.coordinator.completePackage(p.bytes);
    expect(again.alreadyCompleted).toBe(true);
    expect(toHex(again.signature)).toBe(sig);
    // Over the gateway, concurrently, by the device itself and as its sync.
    const me = (await secretsOf(device)).identity;
    const answers = await Promise.all(Array.from({ length: 3 }, () => submitRaw(c, me, p.bytes)));
    for (const a of answers) {
      expect(a.status).toBe(200);
      const r = decodeMessage('SubmitPackageResponse', a.body);
      expect(r.alreadyCompleted).toBe(true);
      expect(toHex(r.signature)).toBe(sig);
    }
    const s = await device.sync(c.url);
    expect(s.completed).toEqual([expect.objectContaining({ packageId: p.packageId, signature: sig })]);

    expect(await c.coordinator.completedPackages()).toBe(before + 1);
    const consumed = await consumedFor(c, p.bytes);
    expect(consumed).toHaveLength(1);
    expect(toHex(consumed[0]?.requestDigest as Uint8Array)).toBe(toHex(decodeOfflinePackage(p.bytes).digest));
    // The co-signer computed a share once; every other delivery was answered from the ledger or the coordinator's record.
    expect((await completionsAudited(cos, p.packageId)).filter((x) => x.cached === false)).toHaveLength(1);
    // The co-signer itself, asked directly again, answers with the identical share envelope and computes nothing new.
    expect(equalBytes(await cos.complete(p.bytes), await cos.complete(p.bytes))).toBe(true);
    expect((await completionsAudited(cos, p.packageId)).filter((x) => x.cached === false)).toHaveLength(1);
    expect(await consumedFor(c, p.bytes)).toHaveLength(1);
  });

  it('five concurrent deliveries straight to the co-signer: one share, one consumed nonce, one fresh completion in its audit', async () => {
    const c = await shared();
    const { device, keyId, keyInfo } = await deviceWithKey(c, 'phone-replay-signer');
    await device.reserve(c.url, { keyId, count: 1 });
    const m = msg('pay 20 to carol, once');
    const p = await device.signOffline({ keyId, message: m });
    const cos = cosignerOf(c, p.bytes);
    const envs = await Promise.all(Array.from({ length: 5 }, () => cos.complete(p.bytes)));
    for (const e of envs) expect(equalBytes(e, envs[0] as Uint8Array)).toBe(true);
    expect(await consumedFor(c, p.bytes)).toHaveLength(1);
    // The coordinator (no record of its own yet) completes it from the co-signer's ledger answer.
    const r = await c.coordinator.completePackage(p.bytes);
    expect(r.alreadyCompleted).toBe(false);
    expect(getSuite('ed25519').verify(r.signature, m, fromHex(keyInfo.publicKey))).toBe(true);
    expect(await consumedFor(c, p.bytes)).toHaveLength(1);
    // Regression (found by this test): `cached` was read before the ledger's per-nonce lock, so
    // the concurrent losers were audited as fresh completions. One fresh entry per nonce use.
    expect((await completionsAudited(cos, p.packageId)).map((x) => x.cached).sort()).toEqual([
      false,
      true,
      true,
      true,
      true,
      true,
    ]);
  });

  it('a different, validly signed package on a used reservation is refused RESERVATION_USED by the coordinator and the co-signer; the first result is unchanged', async () => {
    const c = await shared();
    const { device, keyId } = await deviceWithKey(c, 'phone-double');
    await device.reserve(c.url, { keyId, count: 1 });
    const p1 = await device.signOffline({ keyId, message: msg('first use') });
    const s1 = await device.sync(c.url);
    expect(s1.completed).toHaveLength(1);
    const sig1 = s1.completed[0]?.signature as string;

    // A second package on the same reservation, signed with the device's real share (taken from its backup).
    const rec = (await secretsOf(device)).keys.get(keyId) as KeyShareRecord;
    const d1 = decodeOfflinePackage(p1.bytes);
    const p2 = createOfflinePackage({
      key: rec.key,
      share: rec.share,
      keyId,
      epoch: rec.epoch,
      device: 'phone-double',
      message: msg('second use'),
      reservations: d1.cosigners,
      createdAt: Date.now(),
    });
    expect(p2.packageId).not.toBe(p1.packageId);
    expect((await checkPackage(await device.keyRecord(keyId), p2.bytes)).packageId).toBe(p2.packageId); // a valid package in itself

    const e = await refusal(() => c.coordinator.completePackage(p2.bytes));
    expect(e.code).toBe('RESERVATION_USED');
    expect(e.message).toContain(p1.packageId);
    expect(e.culprits).toEqual(['phone-double']);
    const cos = cosignerOf(c, p1.bytes);
    const se = await refusal(() => cos.complete(p2.bytes));
    expect(se.code).toBe('RESERVATION_USED');
    // Through the gateway: HTTP 409.
    const a = await submitRaw(c, (await secretsOf(device)).identity, p2.bytes);
    expectRefusalAnswer(a, 409);
    expect(a.json?.code).toBe('RESERVATION_USED');

    const r1 = await c.coordinator.completePackage(p1.bytes);
    expect(r1.alreadyCompleted).toBe(true);
    expect(toHex(r1.signature)).toBe(sig1);
    const consumed = await consumedFor(c, p1.bytes);
    expect(consumed).toHaveLength(1);
    expect(toHex(consumed[0]?.requestDigest as Uint8Array)).toBe(toHex(d1.digest));
  });
});

// ---- the device gateway: authentication ----------------------------------------------------------

const rng = ((n = 32) => new Uint8Array(randomBytes(n))) as never;
const EMPTY = new Uint8Array(0);

describe('gateway authentication', () => {
  it('a call signed by an identity that is not the enrolled device is refused UNAUTHENTICATED (401); the device is unaffected', async () => {
    const c = await shared();
    const { device } = await enrolled(c, 'phone-auth');
    const me = (await secretsOf(device)).identity;
    // An identity never enrolled, through the SDK's client and raw.
    const stranger = ParticipantIdentity.generate('stranger');
    const e = await refusal(() => new GatewayClient(c.url, stranger, rng, Date.now).call('keys', EMPTY));
    expect(e.error).toBeInstanceOf(DeviceError);
    expect(e.code).toBe('UNAUTHENTICATED');
    expect(e.message).toContain('not enrolled');
    const raw = await post(c.url, '/v1/device/keys', deviceCall(stranger, 'keys', EMPTY));
    expectRefusalAnswer(raw, 401);
    expect(raw.json?.code).toBe('UNAUTHENTICATED');
    // The enrolled device's id with another key, and a signer node's own identity.
    for (const impostor of [ParticipantIdentity.generate('phone-auth'), c.signer('signer-1').identity]) {
      const a = await post(c.url, '/v1/device/keys', deviceCall(impostor, 'keys', EMPTY));
      expectRefusalAnswer(a, 401);
      expect(a.json?.code).toBe('UNAUTHENTICATED');
    }
    // The device's own call with the signature of another key: the envelope does not verify.
    const forged = decodeMessage('Envelope', deviceCall(stranger, 'keys', EMPTY));
    const badSig = await post(
      c.url,
      '/v1/device/keys',
      encodeMessage('Envelope', { ...forged, sender: me.public.signKey }),
    );
    expectRefusalAnswer(badSig, 401);
    expect(badSig.json?.code).toBe('BAD_SIGNATURE');
    // The genuine device still gets through.
    const ok = await post(c.url, '/v1/device/keys', deviceCall(me, 'keys', EMPTY));
    expect(ok.status).toBe(200);
    expect(decodeMessage('DeviceKeys', ok.body).keys).toEqual([]);
  });

  it('a replayed call (the same envelope bytes) is refused UNAUTHENTICATED "replayed", also under concurrency and with a new timestamp', async () => {
    const c = await shared();
    const { device } = await enrolled(c, 'phone-replay-call');
    const me = (await secretsOf(device)).identity;
    const env = deviceCall(me, 'keys', EMPTY);
    expect((await post(c.url, '/v1/device/keys', env)).status).toBe(200);
    const second = await post(c.url, '/v1/device/keys', env);
    expectRefusalAnswer(second, 401);
    expect(second.json?.code).toBe('UNAUTHENTICATED');
    expect(second.json?.message).toMatch(/replayed/);
    // Five at once: exactly one is served.
    const env5 = deviceCall(me, 'keys', EMPTY);
    const five = await Promise.all(Array.from({ length: 5 }, () => post(c.url, '/v1/device/keys', env5)));
    expect(five.filter((a) => a.status === 200)).toHaveLength(1);
    for (const a of five.filter((x) => x.status !== 200)) {
      expectRefusalAnswer(a, 401);
      expect(a.json?.message).toMatch(/replayed/);
    }
    // The same nonce in a freshly signed call (new timestamp) is a replay too.
    const nonce = new Uint8Array(randomBytes(16));
    expect((await post(c.url, '/v1/device/keys', deviceCall(me, 'keys', EMPTY, { nonce }))).status).toBe(200);
    const renewed = await post(
      c.url,
      '/v1/device/keys',
      deviceCall(me, 'keys', EMPTY, { nonce, issuedAt: Date.now() + 1000 }),
    );
    expectRefusalAnswer(renewed, 401);
    expect(renewed.json?.message).toMatch(/replayed/);
  });

  it('a call issued 10 minutes behind or ahead is refused UNAUTHENTICATED; 4 minutes off is accepted; a late enrolment spends no token', async () => {
    const c = await shared();
    let skew = 0;
    const { device } = await enrolled(c, 'phone-clock', { clock: () => Date.now() + skew });
    const me = (await secretsOf(device)).identity;
    const client = new GatewayClient(c.url, me, rng, () => Date.now() + skew, TEST_CLUSTER);
    for (const off of [-10 * 60_000, 10 * 60_000]) {
      skew = off;
      const e = await refusal(() => client.call('keys', EMPTY));
      expect(e.code).toBe('UNAUTHENTICATED');
      expect(e.message).toMatch(/stale|future/);
      expectRefusalAnswer(
        await post(c.url, '/v1/device/keys', deviceCall(me, 'keys', EMPTY, { issuedAt: Date.now() + off })),
        401,
      );
    }
    skew = -4 * 60_000;
    expect(decodeMessage('DeviceKeys', await client.call('keys', EMPTY)).keys).toEqual([]);
    // A device whose clock is 10 minutes behind cannot enrol, and its token is not spent.
    let lateSkew = -10 * 60_000;
    const late = await newDevice('phone-late', { clock: () => Date.now() + lateSkew });
    const { token } = await c.coordinator.issueEnrolmentToken();
    const e = await refusal(() => late.device.enrol(c.url, token));
    expect(e.code).toBe('UNAUTHENTICATED');
    expect(c.coordinator.device('phone-late')).toBeUndefined();
    expect((await late.device.status()).enrolled).toBe(false);
    lateSkew = 0;
    expect(await late.device.enrol(c.url, token)).toEqual({ device: 'phone-late' });
  });

  it('enrolment tokens are single-use, expire and must exist; a signer id or an enrolled id cannot be taken', async () => {
    let coordSkew = 0;
    const c = await deviceCluster(3, { coordinatorClock: () => Date.now() + coordSkew });
    const { token } = await c.coordinator.issueEnrolmentToken();
    const a = await newDevice('phone-t1');
    expect(await a.device.enrol(c.url, token)).toEqual({ device: 'phone-t1' });
    // Used twice: by another device, and by the same device again.
    const b = await newDevice('phone-t2');
    const twice = await refusal(() => b.device.enrol(c.url, token));
    expect(twice.code).toBe('UNAUTHENTICATED');
    expect(twice.message).toMatch(/already used/);
    expect((await refusal(() => a.device.enrol(c.url, token))).code).toBe('UNAUTHENTICATED');
    expect(c.coordinator.device('phone-t2')).toBeUndefined();
    expect((await b.device.status()).enrolled).toBe(false);
    // Expired.
    const short = await c.coordinator.issueEnrolmentToken(1000);
    coordSkew = 2000;
    const expired = await refusal(() => b.device.enrol(c.url, short.token));
    expect(expired.code).toBe('UNAUTHENTICATED');
    expect(expired.message).toMatch(/expired/);
    coordSkew = 0;
    // Unknown (well-formed, empty, and raw over HTTP: 401).
    for (const t of [`tet1_${'00'.repeat(20)}`, '', 'x'.repeat(10_000)]) {
      const u = await refusal(() => b.device.enrol(c.url, t));
      expect(u.code).toBe('UNAUTHENTICATED');
      expect(u.message).toMatch(/unknown/);
    }
    const bId = (await secretsOf(b.device)).identity;
    const raw = await post(
      c.url,
      '/v1/device/enrol',
      deviceCall(
        bId,
        'enrol',
        encodeMessage('DeviceEnrol', { token: 'nope', participant: participantToWire(bId.public), deviceClass: '' }),
      ),
    );
    expectRefusalAnswer(raw, 401);
    expect(c.coordinator.device('phone-t2')).toBeUndefined();
    // A signer node's id.
    const s = await newDevice('signer-1');
    const t3 = await c.coordinator.issueEnrolmentToken();
    const taken = await refusal(() => s.device.enrol(c.url, t3.token));
    expect(taken.code).toBe('INVALID_ARGUMENT');
    expect(taken.message).toMatch(/signer node/);
    expect(c.coordinator.device('signer-1')).toBeUndefined();
    const asSigner = await post(
      c.url,
      '/v1/device/keys',
      deviceCall((await secretsOf(s.device)).identity, 'keys', EMPTY),
    );
    expectRefusalAnswer(asSigner, 401);
    // An enrolled device's id, with another key.
    const imp = await newDevice('phone-t1');
    const t4 = await c.coordinator.issueEnrolmentToken();
    const dup = await refusal(() => imp.device.enrol(c.url, t4.token));
    expect(dup.code).toBe('INVALID_ARGUMENT');
    expect(toHex(c.coordinator.device('phone-t1')?.signKey as Uint8Array)).toBe(toHex(a.device.info.signKey));
    // The refused attempts spent nothing: t3 and t4 still enrol genuine devices; b enrols with a fresh token.
    expect(await (await newDevice('phone-t3')).device.enrol(c.url, t3.token)).toEqual({ device: 'phone-t3' });
    expect(await (await newDevice('phone-t4')).device.enrol(c.url, t4.token)).toEqual({ device: 'phone-t4' });
    expect(await b.device.enrol(c.url, (await c.coordinator.issueEnrolmentToken()).token)).toEqual({
      device: 'phone-t2',
    });
    expect(c.coordinator.devices()).toEqual(['phone-t1', 'phone-t2', 'phone-t3', 'phone-t4']);
  });
});

// ---- the device gateway: malformed input --------------------------------------------------------

const OPS = ['enrol', 'poll', 'keygen', 'reserve', 'submit', 'keys', 'packages'] as const;

type Mutation =
  | { t: 'flip'; at: number; x: number }
  | { t: 'cut'; at: number }
  | { t: 'insert'; at: number; b: Uint8Array }
  | { t: 'drop'; at: number; n: number };
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ t: fc.constant('flip' as const), at: fc.nat(), x: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ t: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ t: fc.constant('insert' as const), at: fc.nat(), b: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ t: fc.constant('drop' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 16 }) }),
);
function mutate(base: Uint8Array, ms: Mutation[]): Uint8Array {
  let b = base.slice();
  for (const m of ms) {
    const at = b.length ? m.at % (b.length + (m.t === 'insert' ? 1 : 0)) : 0;
    if (m.t === 'flip' && b.length) b[at] = (b[at] as number) ^ m.x;
    else if (m.t === 'cut') b = b.slice(0, at);
    else if (m.t === 'insert') b = new Uint8Array([...b.subarray(0, at), ...m.b, ...b.subarray(at)]);
    else if (m.t === 'drop') b = new Uint8Array([...b.subarray(0, at), ...b.subarray(at + m.n)]);
  }
  return b;
}

describe('gateway decoder fuzz', () => {
  it('fixed malformed requests get typed 4xx answers', async () => {
    const c = await shared();
    const { device } = await enrolled(c, 'phone-malformed');
    const me = (await secretsOf(device)).identity;
    const cases: [string, Promise<Answer>, number, string][] = [
      ['GET', post(c.url, '/v1/device/keys', EMPTY, 'GET'), 404, 'NOT_FOUND'],
      ['unknown op', post(c.url, '/v1/device/sign', deviceCall(me, 'sign', EMPTY)), 404, 'NOT_FOUND'],
      ['upper-case op', post(c.url, '/v1/device/KEYS', deviceCall(me, 'keys', EMPTY)), 404, 'NOT_FOUND'],
      ['query string', post(c.url, '/v1/device/keys?x=1', deviceCall(me, 'keys', EMPTY)), 404, 'NOT_FOUND'],
      ['empty body', post(c.url, '/v1/device/keys', EMPTY), 400, 'DECODE'],
      ['op mismatch', post(c.url, '/v1/device/reserve', deviceCall(me, 'keys', EMPTY)), 400, 'INVALID_ARGUMENT'],
      [
        'version 2',
        post(c.url, '/v1/device/keys', deviceCall(me, 'keys', EMPTY, { version: 2 })),
        400,
        'UNSUPPORTED_VERSION',
      ],
      [
        '15-byte nonce',
        post(c.url, '/v1/device/keys', deviceCall(me, 'keys', EMPTY, { nonce: new Uint8Array(15) })),
        400,
        'INVALID_ARGUMENT',
      ],
      [
        'garbage body',
        post(c.url, '/v1/device/reserve', deviceCall(me, 'reserve', new Uint8Array([0xff, 0xff, 0xff]))),
        400,
        'DECODE',
      ],
      [
        'unknown key',
        post(
          c.url,
          '/v1/device/reserve',
          deviceCall(
            me,
            'reserve',
            encodeMessage('DeviceReserve', {
              keyId: 'k-none',
              count: 1,
              cosigners: [],
              ttlMs: 0,
              allowance: NO_ALLOWANCE,
              takesIntegrityRule: false,
              presignSeed: new Uint8Array(0),
            }),
          ),
        ),
        404,
        'NOT_FOUND',
      ],
      [
        'not a package',
        post(
          c.url,
          '/v1/device/submit',
          deviceCall(me, 'submit', encodeMessage('SubmitPackageRequest', { package: new Uint8Array([1, 2, 3]) })),
        ),
        400,
        'DECODE',
      ],
    ];
    for (const [what, p, status, code] of cases) {
      const a = await p;
      expect(a.status, what).toBe(status);
      expectRefusalAnswer(a, status);
      expect(a.json?.code, what).toBe(code);
    }
  });

  it('a body over 1 MiB is refused PAYLOAD_TOO_LARGE (413)', async () => {
    const c = await shared();
    const a = await post(c.url, '/v1/device/submit', new Uint8Array((1 << 20) + 1));
    expectRefusalAnswer(a, 413);
    expect(a.json?.code).toBe('PAYLOAD_TOO_LARGE');
    expect((await post(c.url, '/v1/device/keys', EMPTY)).status).toBe(400); // the gateway still answers
  });

  it('an envelope of another payload kind, or one cut before its kind field, is refused with a 4xx', async () => {
    const c = await shared();
    const { device } = await enrolled(c, 'phone-kind');
    const me = (await secretsOf(device)).identity;
    const genuine = deviceCall(me, 'keys', EMPTY);
    const payload = decodeMessage('Envelope', genuine).payload;
    const answers: [string, Answer][] = [
      ['kind SIGN_INTENT', await post(c.url, '/v1/device/keys', signEnvelope(me, PayloadKind.SIGN_INTENT, payload))],
    ];
    for (let n = 1; n < genuine.length; n++)
      answers.push([`first ${n} bytes`, await post(c.url, '/v1/device/keys', genuine.subarray(0, n))]);
    const notRefused = answers
      .filter(([, a]) => !(a.status >= 400 && a.status < 500 && /^[A-Z][A-Z_]+$/.test(a.json?.code ?? '')))
      .map(([what, a]) => `${what}: HTTP ${a.status} ${a.json?.code}`);
    // Regression (found by this test): UNEXPECTED_MESSAGE was missing from the gateway's status
    // table and came back as HTTP 500; every typed refusal is now a 4xx.
    expect(notRefused).toEqual([]);
    // The genuine call itself is still served.
    expect((await post(c.url, '/v1/device/keys', genuine)).status).toBe(200);
  });

  it('arbitrary bytes, mutated genuine calls and signed garbage on every op: typed 4xx (or 200 for well-formed calls), never 5xx; the cluster still works', async () => {
    const c = await deviceCluster(3);
    const { device, keyId } = await deviceWithKey(c, 'phone-fuzz');
    const me = (await secretsOf(device)).identity;
    await device.reserve(c.url, { keyId, count: 2 });
    const p0 = await device.signOffline({ keyId, message: msg('before the fuzz') });
    const bad: string[] = [];
    const codes = new Map<string, number>();
    const judge = (what: string, a: Answer, okAllowed: boolean) => {
      if (a.status === 200 && okAllowed) return;
      const j = a.json;
      const fine =
        a.status >= 400 &&
        a.status < 500 &&
        !!j &&
        Object.keys(j).sort().join() === 'code,culprits,message' &&
        /^[A-Z][A-Z_]+$/.test(j.code) &&
        typeof j.message === 'string' &&
        Array.isArray(j.culprits);
      if (!fine) bad.push(`${what}: HTTP ${a.status} ${new TextDecoder().decode(a.body).slice(0, 160)}`);
      if (j) codes.set(`${a.status} ${j.code}`, (codes.get(`${a.status} ${j.code}`) ?? 0) + 1);
    };
    const bases: Record<(typeof OPS)[number], Uint8Array> = {
      enrol: encodeMessage('DeviceEnrol', {
        token: `tet1_${'11'.repeat(20)}`,
        participant: participantToWire(me.public),
        deviceClass: 'ios',
      }),
      poll: encodeMessage('DevicePoll', { results: [], waitMs: 0, keys: [keyId], pending: 1, bye: false }),
      keygen: encodeMessage('KeygenRequest', {
        suite: getSuite('ed25519').wireId,
        threshold: 2,
        participants: ['nobody-here'],
      }),
      reserve: encodeMessage('DeviceReserve', {
        keyId,
        count: 1,
        cosigners: [],
        ttlMs: 0,
        allowance: NO_ALLOWANCE,
        takesIntegrityRule: false,
        presignSeed: new Uint8Array(0),
      }),
      submit: encodeMessage('SubmitPackageRequest', { package: p0.bytes }),
      keys: EMPTY,
      packages: encodeMessage('DevicePackages', { since: 0 }),
    };
    const lengthDelimited = (field: number, b: Uint8Array) => {
      const len: number[] = [];
      let n = b.length;
      do {
        len.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
        n >>>= 7;
      } while (n);
      return new Uint8Array([(field << 3) | 2, ...len, ...b]);
    };
    const RUNS = 50;
    for (const op of OPS) {
      const path = `/v1/device/${op}`;
      // 1. Arbitrary bytes.
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), async (b) =>
          judge(`${op} raw`, await post(c.url, path, b), false),
        ),
        { numRuns: RUNS },
      );
      // 2. Mutations of a genuine, signed, never-sent call (any change breaks the signature or the canonical encoding).
      const base = deviceCall(me, op, bases[op]);
      await fc.assert(
        fc.asyncProperty(fc.array(mutationArb, { minLength: 1, maxLength: 4 }), async (ms) => {
          const b = mutate(base, ms);
          if (equalBytes(b, base)) return;
          judge(
            `${op} mutated ${JSON.stringify(ms, (_, v: unknown) => (v instanceof Uint8Array ? toHex(v) : v))}`,
            await post(c.url, path, b),
            false,
          );
        }),
        { numRuns: RUNS },
      );
      // 3. Validly signed by the enrolled device: an arbitrary payload, then a well-formed call with an arbitrary body.
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), async (payload) => {
          judge(
            `${op} signed payload ${toHex(payload)}`,
            await post(c.url, path, signEnvelope(me, PayloadKind.DEVICE_CALL, payload)),
            false,
          );
        }),
        { numRuns: RUNS },
      );
      const bodyArb =
        op === 'poll'
          ? fc.oneof(
              fc.uint8Array({ maxLength: 200 }).filter((b) => {
                try {
                  return decodeMessage('DevicePoll', b).waitMs === 0; // never hold the fuzz in a long poll
                } catch {
                  return true;
                }
              }),
              fc
                .array(fc.uint8Array({ maxLength: 120 }), { maxLength: 3 })
                .map((rs) => new Uint8Array(rs.flatMap((r) => [...lengthDelimited(1, r)]))),
            )
          : fc.uint8Array({ maxLength: 200 });
      await fc.assert(
        fc.asyncProperty(bodyArb, async (body) => {
          judge(`${op} signed body ${toHex(body)}`, await post(c.url, path, deviceCall(me, op, body)), true);
        }),
        { numRuns: RUNS },
      );
    }
    // 4. Fields of the call itself (version, device, op, time, nonce), validly signed.
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          version: fc.nat({ max: 3 }),
          device: fc.constantFrom(me.id, 'someone-else', '', 'signer-1'),
          op: fc.constantFrom(...OPS, 'other', ''),
          issuedAt: fc.oneof(fc.constant(-1), fc.nat({ max: 2 ** 40 })),
          nonce: fc.uint8Array({ maxLength: 20 }),
        }),
        fc.constantFrom(...OPS),
        async (f, op) => {
          const over = { ...f, issuedAt: f.issuedAt < 0 ? Date.now() : f.issuedAt };
          judge(
            `${op} call ${JSON.stringify({ ...over, nonce: toHex(f.nonce) })}`,
            await post(c.url, `/v1/device/${op}`, deviceCall(me, op, op === 'poll' ? bases.poll : EMPTY, over)),
            true,
          );
        },
      ),
      { numRuns: 100 },
    );

    // The cluster still works: the package signed before the fuzz completes, and a new one too.
    const s = await device.sync(c.url);
    expect(s.failed).toEqual([]);
    expect(s.completed.map((x) => x.packageId)).toEqual([p0.packageId]);
    const p1 = await device.signOffline({ keyId, message: msg('after the fuzz') });
    expect((await device.sync(c.url)).completed.map((x) => x.packageId)).toEqual([p1.packageId]);
    expect(codes.size).toBeGreaterThan(3);
    expect(bad).toEqual([]);
  });
});

// ---- secrets ------------------------------------------------------------------------------------

describe('nothing secret in errors', () => {
  it('refused packages, refused calls and failed device operations never carry the storage key, the backup password, the identity secrets or the share', async () => {
    const c = await shared();
    const { device, keyId, key: storageKey, dir } = await deviceWithKey(c, 'phone-secret');
    const { identity, keys, backup } = await secretsOf(device);
    const rec = keys.get(keyId) as KeyShareRecord;
    const ids = identity.exportSecrets();
    const secrets: [string, Uint8Array | string][] = [
      ['storage key', storageKey],
      ['backup password', PASSWORD],
      ['identity signing secret', ids.signSecret],
      ['identity encryption secret', ids.encSecret],
      ['signing share', rec.share.signingShare()],
    ];
    const forms = (v: Uint8Array | string) =>
      typeof v === 'string'
        ? [v]
        : [
            toHex(v),
            toHex(v).toUpperCase(),
            Buffer.from(v).toString('base64'),
            Buffer.from(v).toString('base64url'),
            Buffer.from(v).toString('latin1'),
          ];
    const leaks = (text: string) =>
      secrets.filter(([, v]) => forms(v).some((f) => text.includes(f))).map(([name]) => name);
    // The check itself can fail.
    expect(leaks(`oops ${toHex(storageKey)}`)).toEqual(['storage key']);
    expect(leaks(`pw=${PASSWORD}`)).toEqual(['backup password']);

    const texts: { what: string; code: string; text: string }[] = [];
    const note = (what: string, e: Refusal) =>
      texts.push({
        what,
        code: e.code,
        text: [e.message, e.culprits.join(','), JSON.stringify(e.error), String(e.error)].join('\n'),
      });
    const noteAnswer = (what: string, a: Answer) =>
      texts.push({ what, code: a.json?.code ?? `HTTP ${a.status}`, text: new TextDecoder().decode(a.body) });

    // Package refusals: at the coordinator, at the co-signer, over the gateway.
    await device.reserve(c.url, { keyId, count: 2 });
    const p = await device.signOffline({ keyId, message: msg('secret-free errors') });
    const cos = cosignerOf(c, p.bytes);
    const bad: [string, Uint8Array][] = [
      ['message', repackage(p.bytes, (_x) => ({ message: msg('other') }))],
      ['share', repackage(p.bytes, (x) => ({ share: x.commitment.hiding.subarray(1, 33) }))],
      [
        'expiry',
        repackage(p.bytes, (x) => ({ cosigners: x.cosigners.map((r) => ({ ...r, expiresAt: r.expiresAt - 1 })) })),
      ],
      ['garbage', new Uint8Array([8, 1, 18, 3, 97, 98, 99])],
      ['truncated', p.bytes.subarray(0, p.bytes.length - 20)],
    ];
    for (const [what, b] of bad) {
      note(`coordinator ${what}`, await refusal(() => c.coordinator.completePackage(b)));
      note(`co-signer ${what}`, await refusal(() => cos.complete(b)));
      noteAnswer(`gateway ${what}`, await submitRaw(c, identity, b));
    }
    // A second package on the reservation, then the device's own: RESERVATION_USED reaches its queue.
    const p2 = createOfflinePackage({
      key: rec.key,
      share: rec.share,
      keyId,
      epoch: rec.epoch,
      device: 'phone-secret',
      message: msg('first'),
      reservations: decodeOfflinePackage(p.bytes).cosigners,
      createdAt: Date.now(),
    });
    await c.coordinator.completePackage(p2.bytes);
    const s = await device.sync(c.url);
    expect(s.failed.map((f) => f.code)).toEqual(['RESERVATION_USED']);
    texts.push({ what: 'sync', code: 'RESERVATION_USED', text: JSON.stringify(s) });
    texts.push({ what: 'queue', code: 'RESERVATION_USED', text: JSON.stringify(await device.queue()) });
    note('co-signer used', await refusal(() => cos.complete(p.bytes)));
    // Refused calls.
    noteAnswer(
      'replay',
      await (async () => {
        const env = deviceCall(identity, 'keys', EMPTY);
        await post(c.url, '/v1/device/keys', env);
        return post(c.url, '/v1/device/keys', env);
      })(),
    );
    noteAnswer(
      'stale',
      await post(c.url, '/v1/device/keys', deviceCall(identity, 'keys', EMPTY, { issuedAt: Date.now() - 3_600_000 })),
    );
    noteAnswer(
      'unknown token',
      await post(
        c.url,
        '/v1/device/enrol',
        deviceCall(
          identity,
          'enrol',
          encodeMessage('DeviceEnrol', {
            token: PASSWORD,
            participant: participantToWire(identity.public),
            deviceClass: '',
          }),
        ),
      ),
    );
    noteAnswer(
      'bad nonce',
      await post(c.url, '/v1/device/keys', deviceCall(identity, 'keys', EMPTY, { nonce: ids.signSecret })),
    );
    note(
      'stale client',
      await refusal(() => new GatewayClient(c.url, identity, rng, () => Date.now() - 3_600_000).call('keys', EMPTY)),
    );
    note('sign unknown key', await refusal(() => device.signOffline({ keyId: 'k-none', message: msg('x') })));
    note(
      'no allowance',
      await refusal(async () => {
        await device.signOffline({ keyId, message: msg('uses the last slot') });
        return device.signOffline({ keyId, message: msg('none left') });
      }),
    );
    // Device-side failures: wrong backup password, restore into a used store, the store under a wrong key.
    note('decrypt wrong password', await refusal(() => decryptBackup(backup, `${PASSWORD}!`)));
    note(
      'restore wrong password',
      await refusal(() =>
        Device.restore({ location: tempDir(), storageKey, backup, password: PASSWORD.toUpperCase() }),
      ),
    );
    note(
      'restore into used store',
      await refusal(async () => {
        await device.close();
        return Device.restore({ location: dir, storageKey, backup, password: PASSWORD });
      }),
    );
    note(
      'open with wrong key',
      await refusal(() => Device.open({ location: dir, storageKey: storageKey.map((x) => x ^ 0x5a) })),
    );

    const codes = new Set(texts.map((t) => t.code));
    for (const want of [
      'BAD_SIGNATURE_SHARE',
      'RESERVATION_INVALID',
      'RESERVATION_USED',
      'DECODE',
      'UNAUTHENTICATED',
      'INVALID_ARGUMENT',
      'NOT_FOUND',
      'NO_ALLOWANCE',
      'BACKUP_PASSWORD',
      'STORE_KEY',
    ])
      expect(codes, want).toContain(want);
    const found = texts.flatMap((t) => leaks(t.text).map((name) => `${t.what} (${t.code}): ${name}`));
    expect(found).toEqual([]);
  });
});

/**
 * The device gateway's own defences, on a real gateway (HTTP on 127.0.0.1, port 0) in front of
 * a real coordinator on a real LevelDB store:
 *
 * - memory growth before authentication: refused calls (bad enrolment tokens, strangers) leave
 *   no replay nonce behind, and every per-client map is rate limited and capped;
 * - cross-cluster replay: a call names its cluster, so a call captured at one cluster is refused
 *   by another where the same device is enrolled, and changes nothing there;
 * - replay protection of authenticated calls is intact.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ParticipantIdentity,
  PayloadKind,
  encodeMessage,
  participantToWire,
  signEnvelope,
  type Rng,
  type WireDeviceCall,
} from '@tessera/core';
import { SealedStore, kekFromBytes } from '@tessera/store';
import { Coordinator, startDeviceGateway, type GatewayOptions, type StartedGateway } from '@tessera/coordinator';
import { Device, DeviceError, GatewayClient } from '@tessera/device';

const dirs: string[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tessera-gateway-'));
  dirs.push(d);
  return d;
}

const rng = ((n = 32) => new Uint8Array(randomBytes(n))) as Rng;
const EMPTY = new Uint8Array(0);

/** A coordinator on its own LevelDB store with a gateway in front (no signers: these calls need none). */
async function gateway(opts: Omit<GatewayOptions, 'coordinator' | 'port'> = {}) {
  const dir = tempDir();
  const kek = kekFromBytes(new Uint8Array(randomBytes(32)));
  const store = await SealedStore.open(dir, kek);
  closers.push(() => store.close());
  const coordinator = new Coordinator({ store });
  await coordinator.load();
  const g: StartedGateway = await startDeviceGateway({ coordinator, port: 0, ...opts });
  closers.push(() => g.close());
  return { coordinator, gateway: g, url: g.url, dir, kek, store };
}

interface Answer {
  status: number;
  retryAfter: string | null;
  json?: { code: string; message: string; culprits: string[] };
}

async function post(url: string, op: string, body: Uint8Array): Promise<Answer> {
  const res = await fetch(`${url}/v1/device/${op}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf' },
    body: body as Uint8Array<ArrayBuffer>,
  });
  const text = await res.text();
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    ...(res.headers.get('content-type')?.includes('json') ? { json: JSON.parse(text) as Answer['json'] } : {}),
  };
}

/** A signed DEVICE_CALL envelope, as GatewayClient builds it, with fields overridable. */
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
    nonce: rng(16),
    body,
    clusterId: '',
    ...over,
  });
  return signEnvelope(identity, PayloadKind.DEVICE_CALL, payload);
}

const enrolBody = (identity: ParticipantIdentity, token: string) =>
  encodeMessage('DeviceEnrol', { token, participant: participantToWire(identity.public), deviceClass: '' });

/** Runs `n` tasks, `width` at a time. */
async function pool<T>(n: number, width: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await task(i);
      }
    }),
  );
  return out;
}

/** Records the raw bodies the device SDK POSTs (by op) while `f` runs: what a network observer captures. */
async function captured(f: () => Promise<unknown>): Promise<{ op: string; body: Uint8Array }[]> {
  const seen: { op: string; body: Uint8Array }[] = [];
  const real = globalThis.fetch;
  globalThis.fetch = ((input: string | URL | Request, init?: RequestInit) => {
    const op = /\/v1\/device\/([a-z]+)$/.exec(String(input))?.[1];
    if (op && init?.body instanceof Uint8Array) seen.push({ op, body: new Uint8Array(init.body) });
    return real(input, init);
  }) as typeof fetch;
  try {
    await f();
  } finally {
    globalThis.fetch = real;
  }
  return seen;
}

async function newDevice(id: string, dir = tempDir(), key = new Uint8Array(randomBytes(32))) {
  const device = await Device.open({ location: dir, storageKey: key });
  closers.push(() => device.close());
  await device.init(id);
  return { device, dir, key };
}

describe('gateway: no state before authentication', () => {
  it('2,000 enrolments with random bad tokens and random nonces: each refused UNAUTHENTICATED, the replay ledger stays empty; a genuine enrolment is remembered', async () => {
    const g = await gateway({ addressRate: { perSecond: 1e6, burst: 1e6 } });
    const N = 2_000; // 5,000 until 2026-12-07: the suite's 10-minute budget; 100 intruder keys either way
    const intruders = Array.from({ length: 100 }, (_, i) => ParticipantIdentity.generate(`intruder-${i}`));
    const answers = await pool(N, 32, async (i) => {
      const who = intruders[i % intruders.length]!;
      const token = i % 2 ? `tet1_${randomBytes(20).toString('hex')}` : randomBytes(1 + (i % 64)).toString('base64');
      return post(g.url, 'enrol', deviceCall(who, 'enrol', enrolBody(who, token)));
    });
    const byCode = new Map<string, number>();
    for (const a of answers)
      byCode.set(`${a.status} ${a.json?.code}`, (byCode.get(`${a.status} ${a.json?.code}`) ?? 0) + 1);
    expect(Object.fromEntries(byCode)).toEqual({ '401 UNAUTHENTICATED': N });
    expect(answers.every((a) => /unknown enrolment token/.test(a.json?.message ?? ''))).toBe(true);
    expect(g.gateway.stats().replayNonces).toBe(0);
    expect(g.coordinator.devices()).toEqual([]);

    // Strangers' signed calls on the other ops are refused and leave nothing either.
    const strangers = await pool(500, 32, async (i) => {
      const who = ParticipantIdentity.generate(`stranger-${i}`);
      return post(
        g.url,
        ['keys', 'poll', 'reserve', 'submit', 'keygen'][i % 5] as string,
        deviceCall(who, ['keys', 'poll', 'reserve', 'submit', 'keygen'][i % 5] as string, EMPTY),
      );
    });
    expect(strangers.every((a) => a.status === 401 && a.json?.code === 'UNAUTHENTICATED')).toBe(true);
    expect(g.gateway.stats()).toMatchObject({ replayNonces: 0, devices: 0, linked: 0 });

    // The ledger does record authenticated calls: one enrolment, one call.
    const phone = ParticipantIdentity.generate('phone-1');
    const { token } = await g.coordinator.issueEnrolmentToken();
    expect((await post(g.url, 'enrol', deviceCall(phone, 'enrol', enrolBody(phone, token)))).status).toBe(200);
    expect(g.gateway.stats().replayNonces).toBe(1);
    expect(
      (await post(g.url, 'keys', deviceCall(phone, 'keys', EMPTY, { clusterId: g.coordinator.clusterId }))).status,
    ).toBe(200);
    expect(g.gateway.stats().replayNonces).toBe(2);
  });

  it('a refused enrolment can be sent again once its token is valid: its nonce was not spent (nor was the token of a refused one)', async () => {
    const g = await gateway();
    const phone = ParticipantIdentity.generate('phone-2');
    const { token } = await g.coordinator.issueEnrolmentToken();
    const nonce = rng(16);
    const wrong = await post(g.url, 'enrol', deviceCall(phone, 'enrol', enrolBody(phone, 'tet1_nope'), { nonce }));
    expect(wrong.json?.code).toBe('UNAUTHENTICATED');
    expect(g.gateway.stats().replayNonces).toBe(0);
    const right = deviceCall(phone, 'enrol', enrolBody(phone, token), { nonce });
    expect((await post(g.url, 'enrol', right)).status).toBe(200);
    expect(g.coordinator.devices()).toEqual(['phone-2']);
    // Now it is remembered: the same bytes again are a replay.
    const again = await post(g.url, 'enrol', right);
    expect(again.status).toBe(401);
    expect(again.json?.message).toMatch(/replayed/);
  });
});

describe('gateway: rate limits', () => {
  it('per address: enrolments and refused calls beyond the burst get 429 RATE_LIMITED with Retry-After, before any work; nothing is remembered', async () => {
    const g = await gateway({ addressRate: { perSecond: 0.5, burst: 20 } });
    const answers: Answer[] = [];
    for (let i = 0; i < 30; i++) {
      const who = ParticipantIdentity.generate(`intruder-${i}`);
      answers.push(
        await post(g.url, 'enrol', deviceCall(who, 'enrol', enrolBody(who, `tet1_${randomBytes(20).toString('hex')}`))),
      );
    }
    expect(answers.slice(0, 20).every((a) => a.status === 401 && a.json?.code === 'UNAUTHENTICATED')).toBe(true);
    for (const a of answers.slice(20)) {
      expect(a.status).toBe(429);
      expect(a.json?.code).toBe('RATE_LIMITED');
      expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(1);
    }
    // Any call from that address is now refused at once, even a valid enrolment (its token is not spent).
    const phone = ParticipantIdentity.generate('phone-3');
    const { token } = await g.coordinator.issueEnrolmentToken();
    const limited = await post(g.url, 'enrol', deviceCall(phone, 'enrol', enrolBody(phone, token)));
    expect(limited.status).toBe(429);
    expect(limited.json?.code).toBe('RATE_LIMITED');
    expect((await post(g.url, 'keys', new Uint8Array([1, 2, 3]))).json?.code).toBe('RATE_LIMITED');
    expect(g.gateway.stats()).toMatchObject({ replayNonces: 0, addresses: 1 });
    expect(g.coordinator.devices()).toEqual([]);
    // The SDK surfaces it as a typed DeviceError.
    const e = await new GatewayClient(g.url, phone, rng, Date.now).call('enrol', enrolBody(phone, token)).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(DeviceError);
    expect((e as DeviceError).code).toBe('RATE_LIMITED');
    // Tokens come back with time: two seconds later one enrolment gets through, with the unspent token.
    await new Promise((r) => setTimeout(r, 2_100));
    expect((await post(g.url, 'enrol', deviceCall(phone, 'enrol', enrolBody(phone, token)))).status).toBe(200);
    expect(g.coordinator.devices()).toEqual(['phone-3']);
  });

  it('per device: an enrolled device beyond its burst gets 429 RATE_LIMITED; another device is unaffected; refused calls are not remembered', async () => {
    const g = await gateway({ deviceRate: { perSecond: 0.1, burst: 5 } });
    const enrol = async (id: string) => {
      const who = ParticipantIdentity.generate(id);
      const { token } = await g.coordinator.issueEnrolmentToken();
      expect((await post(g.url, 'enrol', deviceCall(who, 'enrol', enrolBody(who, token)))).status).toBe(200);
      return who;
    };
    const [a, b] = [await enrol('phone-a'), await enrol('phone-b')];
    const clusterId = g.coordinator.clusterId;
    const burst = await Promise.all(
      Array.from({ length: 8 }, () => post(g.url, 'keys', deviceCall(a, 'keys', EMPTY, { clusterId }))),
    );
    expect(burst.filter((x) => x.status === 200)).toHaveLength(5);
    for (const x of burst.filter((y) => y.status !== 200)) {
      expect(x.status).toBe(429);
      expect(x.json?.code).toBe('RATE_LIMITED');
      expect(x.json?.message).toMatch(/device/);
    }
    expect((await post(g.url, 'keys', deviceCall(b, 'keys', EMPTY, { clusterId }))).status).toBe(200);
    // 2 enrolments + 5 served calls of a + 1 of b.
    expect(g.gateway.stats().replayNonces).toBe(8);
  });

  it('key generations per device are budgeted: beyond the burst 429 RATE_LIMITED before any DKG work; another device is unaffected', async () => {
    const g = await gateway({ keygenRate: { perSecond: 0.001, burst: 2 } });
    const enrol = async (id: string) => {
      const who = ParticipantIdentity.generate(id);
      const { token } = await g.coordinator.issueEnrolmentToken();
      expect((await post(g.url, 'enrol', deviceCall(who, 'enrol', enrolBody(who, token)))).status).toBe(200);
      return who;
    };
    const [a, b] = [await enrol('phone-kg-a'), await enrol('phone-kg-b')];
    const clusterId = g.coordinator.clusterId;
    const keygen = encodeMessage('KeygenRequest', { suite: 1, threshold: 2, participants: [] });
    const answers = [];
    for (let i = 0; i < 4; i++)
      answers.push(await post(g.url, 'keygen', deviceCall(a, 'keygen', keygen, { clusterId })));
    // The first two reach the coordinator (no signer is linked here, so they fail there, typed); the rest do not.
    expect(answers.slice(0, 2).every((x) => x.status !== 429)).toBe(true);
    for (const x of answers.slice(2))
      expect(x.json).toMatchObject({ code: 'RATE_LIMITED', message: expect.stringMatching(/key generations/) });
    expect((await post(g.url, 'keygen', deviceCall(b, 'keygen', keygen, { clusterId }))).status).not.toBe(429);
  });

  it('the replay ledger has a hard cap: beyond it RESOURCE_EXHAUSTED (429), not growth; a refused call is not served', async () => {
    const g = await gateway({ maxReplayNonces: 4 });
    const phone = ParticipantIdentity.generate('phone-cap');
    const { token } = await g.coordinator.issueEnrolmentToken();
    expect((await post(g.url, 'enrol', deviceCall(phone, 'enrol', enrolBody(phone, token)))).status).toBe(200);
    const clusterId = g.coordinator.clusterId;
    const answers: Answer[] = [];
    for (let i = 0; i < 6; i++)
      answers.push(await post(g.url, 'keys', deviceCall(phone, 'keys', EMPTY, { clusterId })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 429, 429, 429]);
    expect(answers.slice(3).every((a) => a.json?.code === 'RESOURCE_EXHAUSTED')).toBe(true);
    expect(g.gateway.stats().replayNonces).toBe(4);
  });
});

describe('gateway: replay protection', () => {
  it('an authenticated call replayed (same bytes, alone or 10x at once) is refused UNAUTHENTICATED "replayed"; an enrolment captured from the SDK too', async () => {
    const g = await gateway();
    const { device } = await newDevice('phone-replay');
    const { token } = await g.coordinator.issueEnrolmentToken();
    const enrolCall = await captured(() => device.enrol(g.url, token));
    expect(enrolCall.map((c) => c.op)).toEqual(['enrol']);
    const e = await post(g.url, 'enrol', enrolCall[0]!.body);
    expect(e.status).toBe(401);
    expect(e.json?.message).toMatch(/replayed/);

    const poll = await captured(async () => {
      await device.connect(g.url);
      await device.disconnect();
    });
    const first = poll[0]!.body;
    const before = g.gateway.stats().replayNonces;
    const again = await Promise.all(Array.from({ length: 10 }, () => post(g.url, 'poll', first)));
    for (const a of again) {
      expect(a.status).toBe(401);
      expect(a.json?.code).toBe('UNAUTHENTICATED');
      expect(a.json?.message).toMatch(/replayed/);
    }
    expect(g.gateway.stats().replayNonces).toBe(before);
    expect(g.gateway.linked()).toEqual([]);
  });
});

describe('gateway: calls name their cluster', () => {
  it('each coordinator has its own cluster id, stable across restarts of its store', async () => {
    const a = await gateway();
    const b = await gateway();
    expect(a.coordinator.clusterId).toMatch(/^tc-[0-9a-f]{32}$/);
    expect(b.coordinator.clusterId).not.toBe(a.coordinator.clusterId);
    // The same LevelDB, reopened by a new coordinator, gives the same id.
    const id = a.coordinator.clusterId;
    await a.gateway.close();
    await a.store.close();
    const store = await SealedStore.open(a.dir, a.kek);
    closers.push(() => store.close());
    const again = new Coordinator({ store });
    await again.load();
    expect(again.clusterId).toBe(id);
    // A configured id wins.
    expect(new Coordinator({ store, clusterId: 'prod-eu-1' }).clusterId).toBe('prod-eu-1');
    expect(() => new Coordinator({ store, clusterId: 'bad id/x' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it('a call captured at cluster A and sent to cluster B, where the device is also enrolled, is refused WRONG_CLUSTER and changes nothing at B', async () => {
    const A = await gateway();
    const B = await gateway();
    const { device, dir, key } = await newDevice('phone-two');
    expect(await device.enrol(A.url, (await A.coordinator.issueEnrolmentToken()).token)).toEqual({
      device: 'phone-two',
    });
    // The enrolment at B names no cluster (the device knows none for B's URL), so it is accepted.
    const tokenB = (await B.coordinator.issueEnrolmentToken()).token;
    const enrolAtB = await captured(() => device.enrol(B.url, tokenB));
    expect(enrolAtB.map((c) => c.op)).toEqual(['enrol']);
    expect(B.coordinator.devices()).toEqual(['phone-two']);

    // What an observer of A's traffic captures: the device's first poll (it links the device).
    const atA = await captured(async () => {
      await device.connect(A.url);
      await device.disconnect();
    });
    const poll = atA.find((c) => c.op === 'poll')!.body;
    const bBefore = {
      stats: B.gateway.stats(),
      linked: B.gateway.linked(),
      pending: [...B.gateway.pendingByDevice()],
      devices: B.coordinator.devices(),
      participant: B.coordinator.participant('phone-two'),
    };
    const r = await post(B.url, 'poll', poll);
    expect(r.status).toBe(403);
    expect(r.json?.code).toBe('WRONG_CLUSTER');
    expect(r.json?.message).toContain(A.coordinator.clusterId);
    expect({
      stats: B.gateway.stats(),
      linked: B.gateway.linked(),
      pending: [...B.gateway.pendingByDevice()],
      devices: B.coordinator.devices(),
      participant: B.coordinator.participant('phone-two'),
    }).toEqual(bBefore);

    // A raw enrolment naming A's cluster is refused by B, and spends no token.
    const other = ParticipantIdentity.generate('phone-other');
    const t = await B.coordinator.issueEnrolmentToken();
    const wrong = await post(
      B.url,
      'enrol',
      deviceCall(other, 'enrol', enrolBody(other, t.token), { clusterId: A.coordinator.clusterId }),
    );
    expect(wrong.status).toBe(403);
    expect(wrong.json?.code).toBe('WRONG_CLUSTER');
    expect(B.coordinator.devices()).toEqual(['phone-two']);
    expect(
      (
        await post(
          B.url,
          'enrol',
          deviceCall(other, 'enrol', enrolBody(other, t.token), { clusterId: B.coordinator.clusterId }),
        )
      ).status,
    ).toBe(200);

    // The device itself names the right cluster at each gateway, also after a restart of its store.
    await device.close();
    const reopened = await Device.open({ location: dir, storageKey: key });
    closers.push(() => reopened.close());
    const atB = await captured(async () => {
      await reopened.connect(B.url);
      expect(B.gateway.linked()).toEqual(['phone-two']);
      await reopened.disconnect();
    });
    expect(atB.length).toBeGreaterThanOrEqual(2);
    await reopened.connect(A.url);
    expect(A.gateway.linked()).toEqual(['phone-two']);
    await reopened.disconnect();
    // And B's genuine calls are refused by A just the same.
    const back = await post(A.url, 'poll', atB[0]!.body);
    expect(back.status).toBe(403);
    expect(back.json?.code).toBe('WRONG_CLUSTER');
  });
});

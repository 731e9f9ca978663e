/**
 * Coordinator high availability on PostgreSQL, with real processes: a PostgreSQL server, two
 * coordinator replicas sharing it (one leads by the advisory-lock lease, the other waits), three
 * signers configured with both addresses. The leader is killed with SIGKILL while signing and
 * while a DKG runs: the standby takes over, every acknowledged signature comes back identical for
 * its request id (stored once, not signed again), a request in flight at the kill completes once
 * on retry, and signing resumes. A phone configured with both replicas' gateways syncs its
 * offline packages while the leader is killed: each completes exactly once, through whichever
 * replica leads. The take-over time is printed (docs/RELIABILITY.md records it).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync, mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSignIntent, decodeMessage, getSuite, ParticipantIdentity, toHex } from '@tessera/core';
import { channelCredentials, createDevPki, loadTessera, unary, type grpc } from '@tessera/runtime';
import { Device } from '@tessera/device';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type TestPostgres } from '../packages/store/test/postgres.js';
import { admitDevice, operators } from './authority.js';
import { COORDINATOR_BIN, SIGNER_BIN, startProcess, type Proc } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-failover-'));
const requester = ParticipantIdentity.generate('failover-client');
let pgServer: TestPostgres;
let ports: number[];
/** The device gateway port of each replica (it serves only while its replica leads). */
let gatewayPorts: number[];
const coordinators: (Proc | undefined)[] = [undefined, undefined];
const signers: Proc[] = [];
let clients: grpc.Client[];
let pki: Awaited<ReturnType<typeof createDevPki>>;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** Starts replica `i` (0 or 1); resolves when it logs that it leads or waits. */
async function startReplica(i: number): Promise<Proc> {
  const cfg = join(dir, `coordinator-${i}.json`);
  writeFileSync(
    cfg,
    JSON.stringify({
      postgres: { urlFile: join(dir, 'pg-url') },
      port: ports[i],
      kekFile: join(dir, 'coordinator.kek'),
      tls: pki.certs.coordinator,
      taskTimeoutMs: 4000,
      gateway: { port: gatewayPorts[i] },
    }),
  );
  const p = startProcess(COORDINATOR_BIN, cfg, { TESSERA_LOG_LEVEL: 'info' });
  coordinators[i] = p;
  p.ready.catch(() => {}); // a standby killed before it leads never prints its ready line
  for (const until = Date.now() + 20_000; Date.now() < until; ) {
    if (p.stderr.join('').includes('standby: another coordinator leads')) return p;
    if (p.child.exitCode !== null) throw new Error(`replica ${i} exited: ${p.stderr.join('')}`);
    const ready = await Promise.race([p.ready.then(() => true), new Promise((r) => setTimeout(() => r(false), 100))]);
    if (ready) return p;
  }
  throw new Error(`replica ${i} neither leads nor waits: ${p.stderr.join('')}`);
}

/** Calls the leader: tries each replica's address until one answers (a standby does not listen). */
async function call<R = Record<string, unknown>>(method: string, req: unknown, deadlineMs = 15_000): Promise<R> {
  let last: unknown;
  for (const c of clients) {
    try {
      return await unary<unknown, R>(c, method, req, { deadlineMs });
    } catch (e) {
      last = e;
      const code = (e as { code?: unknown }).code;
      if (code !== 'UNAVAILABLE' && code !== 14) throw e; // only UNAVAILABLE moves on
    }
  }
  throw last;
}

async function waitLinked(): Promise<void> {
  for (const until = Date.now() + 30_000; Date.now() < until; ) {
    try {
      const s = await call<{ participants: { id: string; connected: boolean }[] }>('Status', {}, 2000);
      if (s.participants.filter((p) => p.connected && p.id.startsWith('signer-')).length === 3) return;
    } catch {
      // no leader yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('signers did not link to the new leader');
}

const intents = new Map<string, Uint8Array>();
function sign(keyId: string, message: Uint8Array, requestId: Uint8Array) {
  const id = toHex(requestId);
  const intent =
    intents.get(id) ??
    createSignIntent(requester, {
      suite: getSuite('ed25519'),
      keyId,
      message,
      requestId,
      notAfter: Date.now() + 600_000,
    });
  intents.set(id, intent);
  return call<{ signature: Buffer }>('Sign', { intent: decodeMessage('Envelope', intent), signers: [] });
}

let keyId: string;
let publicKey: Uint8Array;

beforeAll(async () => {
  pgServer = await startPostgres();
  writeFileSync(join(dir, 'pg-url'), await pgServer.database(), { mode: 0o600 });
  writeFileSync(join(dir, 'coordinator.kek'), randomBytes(32).toString('hex'), { mode: 0o600 });
  ports = [await freePort(), await freePort()];
  gatewayPorts = [await freePort(), await freePort()];
  pki = await createDevPki(join(dir, 'pki'), ['coordinator', 'client', 'signer-1', 'signer-2', 'signer-3']);
  const leader = await startReplica(0);
  await leader.ready;
  const standby = await startReplica(1);
  expect(standby.stderr.join('')).toContain('standby: another coordinator leads');
  const addresses = ports.map((p) => `127.0.0.1:${p}`).join(',');
  for (const id of ['signer-1', 'signer-2', 'signer-3']) {
    mkdirSync(join(dir, id));
    writeFileSync(join(dir, `${id}.kek`), randomBytes(32).toString('hex'), { mode: 0o600 });
    writeFileSync(
      join(dir, `${id}.json`),
      JSON.stringify({
        id,
        dataDir: join(dir, id, 'data'),
        coordinator: addresses,
        kekFile: join(dir, `${id}.kek`),
        tls: pki.certs[id],
        policy: {
          allowUnpinnedPeers: true,
          operators,
          requesters: [{ id: 'failover-client', publicKey: toHex(requester.public.signKey), keys: ['*'] }],
        },
      }),
    );
    const s = startProcess(SIGNER_BIN, join(dir, `${id}.json`));
    signers.push(s);
    await s.ready;
  }
  const { Coordinator } = loadTessera();
  clients = ports.map((p) => new Coordinator(`127.0.0.1:${p}`, channelCredentials(pki.certs.client)));
  await waitLinked();
  const k = await call<{ keyId: string; publicKey: Buffer }>('Keygen', {
    suite: getSuite('ed25519').wireId,
    threshold: 2,
    participants: [],
  });
  keyId = k.keyId;
  publicKey = new Uint8Array(k.publicKey);
}, 120_000);

afterAll(async () => {
  for (const c of clients ?? []) c.close();
  for (const p of [...signers, ...coordinators]) if (p && p.child.exitCode === null) p.child.kill('SIGKILL');
  await pgServer?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('coordinator failover on PostgreSQL (kill -9 the leader)', () => {
  it('during signing: acknowledged signatures come back identical, the one in flight completes once, signing resumes', async () => {
    const acknowledged: { rid: Uint8Array; msg: Uint8Array; sig: string }[] = [];
    for (let i = 0; i < 5; i++) {
      const rid = new Uint8Array(randomBytes(16));
      const msg = new Uint8Array(randomBytes(32));
      acknowledged.push({ rid, msg, sig: toHex((await sign(keyId, msg, rid)).signature) });
    }
    // A burst in flight, and the leader killed under it.
    const inFlight = Array.from({ length: 6 }, () => ({
      rid: new Uint8Array(randomBytes(16)),
      msg: new Uint8Array(randomBytes(32)),
    }));
    const pending = inFlight.map((x) =>
      sign(keyId, x.msg, x.rid).then(
        (r) => toHex(r.signature),
        () => undefined,
      ),
    );
    await new Promise((r) => setTimeout(r, 30));
    const killedAt = Date.now();
    coordinators[0]!.child.kill('SIGKILL');
    const first = await Promise.all(pending);
    // The standby leads: its ready line, then the signers link to it.
    await coordinators[1]!.ready;
    const tookOver = Date.now() - killedAt;
    await waitLinked();
    const probe = new Uint8Array(randomBytes(16));
    await sign(keyId, new Uint8Array(32), probe);
    const resumed = Date.now() - killedAt;
    process.stdout.write(`failover: standby leading ${tookOver} ms after kill -9, signing again after ${resumed} ms\n`);
    // Every acknowledged signature: the same bytes for its request id (stored, not signed again).
    for (const a of acknowledged) expect(toHex((await sign(keyId, a.msg, a.rid)).signature)).toBe(a.sig);
    // Every request of the burst: completes on retry; one answered before the kill answers the same.
    for (const [i, x] of inFlight.entries()) {
      const again = toHex((await sign(keyId, x.msg, x.rid)).signature);
      if (first[i] !== undefined) expect(again).toBe(first[i]);
      expect(getSuite('ed25519').verify(Buffer.from(again, 'hex'), x.msg, publicKey)).toBe(true);
      expect(toHex((await sign(keyId, x.msg, x.rid)).signature)).toBe(again);
    }
    // The killed replica comes back as the standby.
    const back = await startReplica(0);
    expect(back.stderr.join('')).toContain('standby: another coordinator leads');
  }, 120_000);

  it('during a DKG: the key is made whole or not at all; a new DKG works on the new leader', async () => {
    const before = (await call<{ keys: { keyId: string }[] }>('ListKeys', {})).keys.length;
    const attempt = call('Keygen', { suite: getSuite('ed25519').wireId, threshold: 2, participants: [] }).catch(
      () => undefined,
    );
    await new Promise((r) => setTimeout(r, 40));
    coordinators[1]!.child.kill('SIGKILL');
    await attempt;
    await coordinators[0]!.ready;
    await waitLinked();
    const keys = (await call<{ keys: { keyId: string; publicKey: Buffer }[] }>('ListKeys', {})).keys;
    expect(keys.length - before).toBeLessThanOrEqual(1);
    // Every key the new leader lists signs (no half-made key was recorded).
    for (const k of keys) {
      const msg = new Uint8Array(randomBytes(32));
      const r = await sign(k.keyId, msg, new Uint8Array(randomBytes(16)));
      expect(getSuite('ed25519').verify(new Uint8Array(r.signature), msg, new Uint8Array(k.publicKey))).toBe(true);
    }
    const fresh = await call<{ keyId: string }>('Keygen', {
      suite: getSuite('ed25519').wireId,
      threshold: 2,
      participants: [],
    });
    expect(fresh.keyId).toMatch(/^[0-9a-f]+$/);
  }, 120_000);

  it('during offline completion: a phone given both gateways completes each package exactly once', async () => {
    // Replica 0 leads since the DKG test; replica 1 comes back as the standby.
    const standby = await startReplica(1);
    expect(standby.stderr.join('')).toContain('standby: another coordinator leads');
    // The standby's gateway first: calls find the leading replica by themselves.
    const urls = [gatewayPorts[1], gatewayPorts[0]].map((p) => `http://127.0.0.1:${p}`);
    const phone = await Device.open({ location: join(dir, 'phone'), storageKey: new Uint8Array(randomBytes(32)) });
    await phone.init('failover-phone');
    const { token } = await call<{ token: string }>('IssueEnrolmentToken', { ttlMs: 600_000, label: 'failover' });
    const { device } = await phone.enrol(urls, token);
    await admitDevice(call, device);
    const key = await phone.keygen(urls, { suite: 'ed25519', threshold: 2, with: ['signer-1', 'signer-2'] });
    expect((await phone.reserve(urls, { keyId: key.keyId, count: 16 })).added).toBe(16);
    const signed = new Map<string, Uint8Array>();
    for (let i = 0; i < 16; i++) {
      const message = new Uint8Array(randomBytes(32));
      signed.set((await phone.signOffline({ keyId: key.keyId, message })).packageId, message);
    }
    // The sync under way, and the leader killed once the first package has completed.
    const syncing = phone.sync(urls, { concurrency: 2 });
    for (const until = Date.now() + 30_000; Date.now() < until; ) {
      if ((await phone.queue()).some((q) => q.state === 'completed')) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    coordinators[0]!.child.kill('SIGKILL');
    const first = await syncing;
    expect(first.failed).toEqual([]);
    expect(first.pending.length).toBeGreaterThan(0); // the kill did cut the sync
    // The standby leads; the next syncs go to it and deliver the rest.
    await coordinators[1]!.ready;
    await waitLinked();
    for (const until = Date.now() + 30_000; Date.now() < until; ) {
      const r = await phone.sync(urls);
      expect(r.failed).toEqual([]);
      if (r.pending.length === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const queue = await phone.queue();
    expect(queue.map((q) => q.state)).toEqual(new Array(16).fill('completed'));
    for (const q of queue) {
      const message = signed.get(q.packageId) as Uint8Array;
      expect(
        getSuite('ed25519').verify(
          Buffer.from(q.signature as string, 'hex'),
          message,
          Buffer.from(key.publicKey, 'hex'),
        ),
      ).toBe(true);
      // Delivered again (a merchant's copy of the package): the stored result, not a second signature.
      const again = await call<{ signature: Buffer }>('SubmitPackage', { package: Buffer.from(q.bytes, 'hex') });
      expect(toHex(again.signature)).toBe(q.signature);
    }
    // The ones completed before the kill were answered from the store, identical.
    for (const c of first.completed)
      expect(queue.find((q) => q.packageId === c.packageId)?.signature).toBe(c.signature);
    await phone.close();
  }, 120_000);
});

/**
 * "Run it for real": the coordinator, three signers and the API client each on their OWN network
 * namespace (their own host, as far as the kernel is concerned), joined by veth pairs to a Linux
 * bridge that lives in a further namespace. mTLS over 10.213.0.0/24, an address range that exists
 * only inside the test's namespaces (nothing is added to the root namespace, no route anywhere).
 *
 *   tsr-<id>-br:    br0 ── v-coord ── eth0 10.213.0.1  tsr-<id>-coord  coordinator :7400
 *                      ├── v-s1    ── eth0 10.213.0.2  tsr-<id>-s1     signer-1
 *                      ├── v-s2    ── eth0 10.213.0.3  tsr-<id>-s2     signer-2
 *                      ├── v-s3    ── eth0 10.213.0.4  tsr-<id>-s3     signer-3
 *                      └── v-cli   ── eth0 10.213.0.5  tsr-<id>-cli    API client (JSON-lines child)
 *
 * Scenario: DKG 2-of-3 (ed25519) and a signature; signer-1's cable is pulled (its bridge port goes
 * down, frames are silently dropped: no FIN, no RST) and signing goes on with signer-2 + signer-3;
 * the cable is put back, signer-1 answers again and signs with signer-2.
 *
 * Needs root and iproute2; it FAILS (never skips) where it cannot build the namespaces.
 * Time bound: hooks 20 s + 8 s, tests 10 s + 12 s + 28 s (typically ~13 s in all).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ParticipantIdentity, createSignIntent, getSuite, toHex } from '@tessera/core';
import { createDevPki } from '@tessera/runtime';
import { createLab, dist, type Lab, type LabClient, startClient } from './netns.js';
import { operators } from './authority.js';

const SIGNERS = ['signer-1', 'signer-2', 'signer-3'] as const;
const NODE: Record<string, string> = { 'signer-1': 's1', 'signer-2': 's2', 'signer-3': 's3' };
const PORT = 7400;
/** The coordinator's per-task deadline: how long a silent (cut-off) signer can stall an attempt. */
const TASK_TIMEOUT_MS = 2000;

interface Status {
  participants: { id: string; connected: boolean; connectedSince: number }[];
}
interface KeyInfo {
  keyId: string;
  publicKey: Buffer;
  participants: string[];
}
interface SignResult {
  signature: Buffer;
  signers: string[];
  publicKey: Buffer;
}
interface Audit {
  participants: { id: string; reachable: boolean; error?: string }[];
}

let lab: Lab | undefined;
let client: LabClient;
let requester: ParticipantIdentity;
let key: KeyInfo;
const timings: Record<string, number | string> = {};
/**
 * A setup failure (not root, no `ip`, namespaces refused, a daemon that does not start) is
 * kept and thrown by every test, so each one FAILS with the cause instead of being reported as
 * skipped, as vitest does for the tests of a throwing beforeAll.
 */
let setupError: Error | undefined;
function requireSetup(): void {
  if (setupError) throw setupError;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`,
      );
    await sleep(everyMs);
  }
}

const status = () => client.call<Status>('Status', {}, { deadlineMs: 2000 });
const connectedIn = (s: Status, id: string) => s.participants.find((p) => p.id === id)?.connected ?? false;

async function sign(message: Uint8Array, signers: string[] = []): Promise<SignResult> {
  const intent = createSignIntent(requester, {
    suite: getSuite('ed25519'),
    keyId: key.keyId,
    message,
    requestId: new Uint8Array(randomBytes(16)),
    notAfter: Date.now() + 60_000,
  });
  return client.call<SignResult>('Sign', { signers }, { intent, deadlineMs: 10_000 });
}

function verifies(r: SignResult, message: Uint8Array): boolean {
  return getSuite('ed25519').verify(new Uint8Array(r.signature), message, new Uint8Array(key.publicKey));
}

/** What the daemons said on stderr, for a failure message. */
function daemonLogs(): string {
  return (lab?.procs ?? [])
    .map(
      (p) =>
        `--- ${p.name} (exit ${p.child.exitCode ?? p.child.signalCode ?? 'running'})\n${p.stderr.join('').slice(-2000)}`,
    )
    .join('\n');
}

beforeAll(async () => {
  let timer: NodeJS.Timeout | undefined;
  try {
    // Bounded here, below the hook timeout, so a hang also ends up as failed tests, not skipped ones.
    await Promise.race([
      setup(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`setup took over 18 s\n${daemonLogs()}`)), 18_000);
      }),
    ]);
  } catch (e) {
    setupError = new Error(`netns cluster setup failed: ${(e as Error).message}`, { cause: e });
  } finally {
    clearTimeout(timer);
  }
}, 20_000);

async function setup(): Promise<void> {
  const t0 = Date.now();
  lab = createLab(['coord', 's1', 's2', 's3', 'cli']);
  const dir = lab.dir;
  const coordAddr = lab.addr('coord');
  // The signers and the client dial 10.213.0.1: the coordinator's certificate must name that IP.
  const pki = await createDevPki(join(dir, 'pki'), ['coordinator', 'client', ...SIGNERS], { hosts: [coordAddr] });
  requester = ParticipantIdentity.generate('test-client');
  const kekFile = (name: string) => {
    const f = join(dir, `${name}.kek`);
    writeFileSync(f, randomBytes(32).toString('hex'), { mode: 0o600 });
    return f;
  };
  const coordCfg = join(dir, 'coordinator.json');
  writeFileSync(
    coordCfg,
    JSON.stringify({
      dataDir: join(dir, 'coordinator'),
      host: coordAddr,
      port: PORT,
      kekFile: kekFile('coordinator'),
      tls: pki.certs.coordinator,
      participants: [...SIGNERS],
      taskTimeoutMs: TASK_TIMEOUT_MS,
    }),
  );
  const coordinator = lab.spawnNode('coord', 'coordinator', [dist('coordinator', 'main.js'), '--config', coordCfg]);
  const port = (await coordinator.ready).port;
  if (port !== PORT) throw new Error(`coordinator serves on ${String(port)}, expected ${PORT}`);
  const signers = SIGNERS.map((id) => {
    const cfg = join(dir, `${id}.json`);
    mkdirSync(join(dir, id), { recursive: true });
    writeFileSync(
      cfg,
      JSON.stringify({
        id,
        dataDir: join(dir, id, 'data'),
        coordinator: `${coordAddr}:${PORT}`,
        kekFile: kekFile(id),
        tls: pki.certs[id],
        policy: {
          allowKeygen: true,
          allowUnpinnedPeers: true,
          operators,
          requesters: [{ id: 'test-client', publicKey: toHex(requester.public.signKey), keys: ['*'] }],
        },
      }),
    );
    return lab!.spawnNode(NODE[id]!, id, [dist('signer', 'main.js'), '--config', cfg]);
  });
  await Promise.all(signers.map((s) => s.ready));
  client = await startClient(lab, 'cli', { address: `${coordAddr}:${PORT}`, tls: pki.certs.client! });
  await waitFor('all three signers linked to the coordinator', 12_000, async () => {
    const s = await status();
    return SIGNERS.every((id) => connectedIn(s, id)) ? s : undefined;
  }).catch((e: Error) => {
    throw new Error(`${e.message}\n${daemonLogs()}`);
  });
  timings.setupMs = Date.now() - t0;
}

afterAll(async () => {
  // Kills every process and deletes every namespace and the scratch directory, pass or fail.
  try {
    await lab?.destroy();
  } finally {
    // eslint-disable-next-line no-console
    console.log(`netns timings: ${JSON.stringify(timings)}`);
  }
}, 8_000);

describe('multi-host cluster on network namespaces (bridge + veth, mTLS over 10.213.0.0/24)', () => {
  it('DKG 2-of-3 (ed25519) and a signature with all three hosts up', async () => {
    requireSetup();
    const t0 = Date.now();
    key = await client.call<KeyInfo>('Keygen', { suite: getSuite('ed25519').wireId, threshold: 2, participants: [] });
    expect([...key.participants].sort()).toEqual([...SIGNERS]);
    const msg = new TextEncoder().encode('over the wire');
    const r = await sign(msg);
    expect(r.signers).toHaveLength(2);
    expect(verifies(r, msg)).toBe(true);
    timings.dkgAndSignMs = Date.now() - t0;
  }, 10_000);

  it("signer-1's cable is pulled: the next signature is made by signer-2 + signer-3", async () => {
    requireSetup();
    expect(key, 'DKG step failed').toBeDefined();
    const before = await status();
    expect(connectedIn(before, 'signer-1')).toBe(true);
    lab!.cut('s1');
    const cutAt = Date.now();
    // The coordinator learns of a silently dead peer through its keepalive; until then the sign
    // attempt's per-task deadline is what excludes signer-1 (and marks it to be tried last).
    let detectedMs: number | undefined;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        try {
          if (!connectedIn(await status(), 'signer-1')) {
            detectedMs = Date.now() - cutAt;
            return;
          }
        } catch {
          // a slow Status is not the point here
        }
        await sleep(250);
      }
    })();
    const msg = new TextEncoder().encode('signer-1 is gone');
    const r = await sign(msg);
    timings.signWithoutSigner1Ms = Date.now() - cutAt;
    expect([...r.signers].sort()).toEqual(['signer-2', 'signer-3']);
    expect(verifies(r, msg)).toBe(true);
    // A second signature while cut: signer-1 timed out once, so it is tried last now.
    const t1 = Date.now();
    const r2 = await sign(msg);
    timings.secondSignWhileCutMs = Date.now() - t1;
    expect(r2.signers).not.toContain('signer-1');
    expect(verifies(r2, msg)).toBe(true);
    // The coordinator's keepalive must notice the dead peer on its own (about 15 s).
    const deadline = Date.now() + 25_000;
    while (detectedMs === undefined && Date.now() < deadline) await sleep(250);
    watching = false;
    await watcher;
    timings.statusShowsSigner1DownAfterMs = detectedMs ?? `not within ${Date.now() - cutAt} ms`;
    expect(detectedMs, 'the coordinator never noticed the silently dead signer').toBeDefined();
  }, 35_000);

  it('the cable is put back: signer-1 answers again and signs with signer-2', async () => {
    requireSetup();
    expect(key, 'DKG step failed').toBeDefined();
    const before = (await status()).participants.find((p) => p.id === 'signer-1');
    lab!.restore('s1');
    const restoredAt = Date.now();
    // "Back" means the coordinator reaches signer-1 with a task and gets an answer (AuditVerify
    // sends every linked participant a task), not merely that Status lists it.
    await waitFor(
      'signer-1 to answer the coordinator again',
      22_000,
      async () => {
        const s = await status();
        if (!connectedIn(s, 'signer-1')) return undefined;
        const a = await client.call<Audit>('AuditVerify', {}, { deadlineMs: 5_000 });
        return a.participants.find((p) => p.id === 'signer-1')?.reachable ? a : undefined;
      },
      250,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${daemonLogs()}`);
    });
    timings.signer1BackAfterMs = Date.now() - restoredAt;
    const after = (await status()).participants.find((p) => p.id === 'signer-1');
    timings.signer1Link =
      after?.connectedSince === before?.connectedSince ? 'same HTTP/2 connection resumed' : 'new connection';
    const msg = new TextEncoder().encode('signer-1 is back');
    const t0 = Date.now();
    const r = await sign(msg, ['signer-1', 'signer-2']);
    timings.signWithSigner1And2Ms = Date.now() - t0;
    expect([...r.signers].sort()).toEqual(['signer-1', 'signer-2']);
    expect(verifies(r, msg)).toBe(true);
  }, 28_000);
});

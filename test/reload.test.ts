/**
 * Reload without restart, on real daemons: a coordinator and three signers (real processes,
 * mTLS, LevelDB). Policies, the participant allowlist and TLS certificates change on SIGHUP (and
 * on a file change); an invalid file is refused with one line and the old configuration stays
 * in force.
 */
import { readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { servedSerial } from '../packages/runtime/test/served-serial.js';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { createDevPki } from '@tessera/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNER_BIN, startCluster, startProcess, type Proc, type TestCluster } from './harness.js';

let c: TestCluster;
let keyId: string;
let publicKey: Uint8Array;
const coordCfg = () => join(c.dir, 'coordinator.json');
const signerCfg = (id: string) => join(c.dir, `${id}.json`);

type Json = Record<string, unknown>;
const readJson = (f: string) => JSON.parse(readFileSync(f, 'utf8')) as Json;
const edit = (f: string, change: (j: Json) => void) => {
  const j = readJson(f);
  change(j);
  writeFileSync(f, JSON.stringify(j));
};

async function metricsOf(url: string): Promise<string> {
  return (await fetch(url)).text();
}
/** Polls `url` until `test` holds for its text (or fails after 15 s with the last text). */
async function waitMetrics(url: string, test: (text: string) => boolean): Promise<string> {
  let text = '';
  for (const until = Date.now() + 15_000; Date.now() < until; ) {
    text = await metricsOf(url);
    if (test(text)) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `metrics never matched; last:\n${text
      .split('\n')
      .filter((l) => l.includes('config'))
      .join('\n')}`,
  );
}
const configSha = (text: string) => /^tessera_config_info\{sha256="([0-9a-f]{16})"/m.exec(text)?.[1];
const lastReloadOk = (text: string) => /^tessera_config_last_reload_successful(?:\{[^}]*\})? (\d)/m.exec(text)?.[1];

const refusals = (p: Proc) =>
  p.stderr
    .join('')
    .split('\n')
    .filter((l) => l.includes('reload refused')).length;

/**
 * Sends SIGHUP and waits for its outcome: `changed` = a new configuration in force (its hash
 * changed), `ok` = the reload succeeded (perhaps to the same hash), `refused` = one more refusal
 * line on stderr and the reload metric at 0.
 */
async function hup(p: Proc, outcome: 'changed' | 'ok' | 'refused'): Promise<string> {
  const url = (await p.ready).metricsUrl as string;
  const before = await metricsOf(url);
  const refused = refusals(p);
  p.child.kill('SIGHUP');
  if (outcome === 'refused') {
    for (const until = Date.now() + 15_000; refusals(p) === refused && Date.now() < until; )
      await new Promise((r) => setTimeout(r, 50));
    expect(refusals(p)).toBe(refused + 1);
    return waitMetrics(url, (t) => lastReloadOk(t) === '0');
  }
  if (outcome === 'ok') {
    // Wait until the daemon has logged nothing new for a moment and the metric says 1.
    await new Promise((r) => setTimeout(r, 300));
    return waitMetrics(url, (t) => lastReloadOk(t) === '1');
  }
  return waitMetrics(url, (t) => lastReloadOk(t) === '1' && configSha(t) !== configSha(before));
}

/** Signs with the test requester; resolves with the error code instead of throwing. */
async function trySign(): Promise<string> {
  const msg = new TextEncoder().encode(`reload ${Math.random()}`);
  try {
    const r = await c.sign('ed25519', keyId, msg);
    expect(ed25519.verify(r.signature, msg, publicKey)).toBe(true);
    return 'OK';
  } catch (e) {
    return String((e as { code?: unknown; message?: string }).message ?? e);
  }
}

/** The serial number of the certificate a new TLS connection to the coordinator is served. */
function servedCoordinatorSerial(): Promise<string> {
  const [host, port] = c.address.split(':') as [string, string];
  return servedSerial(host, Number(port), c.tls.client!);
}

beforeAll(async () => {
  c = await startCluster(3);
  const k = await c.keygen('ed25519', 2);
  keyId = k.keyId;
  publicKey = new Uint8Array(k.publicKey);
  expect(await trySign()).toBe('OK');
}, 60_000);
afterAll(async () => {
  await c?.stop();
});

describe('reload without restart (SIGHUP, file change)', () => {
  it('a signer policy reloads: a requester taken off two signers cannot sign, put back it signs again', async () => {
    const saved = new Map(['signer-1', 'signer-2'].map((id) => [id, readFileSync(signerCfg(id))]));
    for (const id of saved.keys()) {
      edit(signerCfg(id), (j) => {
        (j.policy as Json).requesters = [];
      });
      await hup(c.signers.get(id)!, 'changed');
    }
    expect(await trySign()).toMatch(/POLICY_DENIED|not in this signer's policy|quorum/i);
    for (const [id, bytes] of saved) {
      writeFileSync(signerCfg(id), bytes);
      await hup(c.signers.get(id)!, 'changed');
    }
    expect(await trySign()).toBe('OK');
    for (const p of c.signers.values()) expect(p.child.exitCode).toBeNull();
  }, 60_000);

  it('an invalid file is refused with one line naming the fault, and the old policy stays in force', async () => {
    const p = c.signers.get('signer-1')!;
    const original = readFileSync(signerCfg('signer-1'));
    const cases: [string, (j: Json) => void, RegExp][] = [
      ['not JSON', () => {}, /JSON|parse/i],
      [
        'a requester key that is not hex',
        (j) => ((j.policy as Json).requesters = [{ id: 'x', publicKey: 'zz' }]),
        /publicKey|hex/,
      ],
      [
        'a TLS certificate that is missing',
        (j) => ((j.tls as Json).cert = join(c.dir, 'nope.pem')),
        /tls\.cert: cannot read/,
      ],
      [
        'a TLS key that is not the certificate key',
        (j) => ((j.tls as Json).key = c.tls['signer-2']!.key),
        /tls\.key: .* is not the key of/,
      ],
    ];
    for (const [what, change, why] of cases) {
      const lines = p.stderr.length;
      if (what === 'not JSON') writeFileSync(signerCfg('signer-1'), '{"id": "signer-1", ');
      else {
        writeFileSync(signerCfg('signer-1'), original);
        edit(signerCfg('signer-1'), (j) => {
          (j.policy as Json).requesters = []; // would lock the test client out, were it applied
          change(j);
        });
      }
      await hup(p, 'refused');
      const said = p.stderr
        .slice(lines)
        .join('')
        .split('\n')
        .filter((l) => l.includes('reload refused'));
      expect(said, what).toHaveLength(1);
      expect(said[0], what).toMatch(why);
      expect(said[0], what).not.toMatch(/PRIVATE KEY/);
      // Still the old policy, on both halves of the quorum.
      expect(await trySign(), what).toBe('OK');
    }
    writeFileSync(signerCfg('signer-1'), original);
    await hup(p, 'ok'); // the start's configuration again: same hash, reload successful
  }, 90_000);

  it('a rotated coordinator certificate is served to new connections; one from another CA is refused', async () => {
    const before = await servedCoordinatorSerial();
    const pkiDir = join(c.dir, 'pki');
    await createDevPki(pkiDir, ['coordinator'], { force: true });
    c.coordinator.child.kill('SIGHUP');
    let now = before;
    for (const until = Date.now() + 15_000; now === before && Date.now() < until; ) {
      await new Promise((r) => setTimeout(r, 100));
      now = await servedCoordinatorSerial();
    }
    expect(now).not.toBe(before);
    // Signers reconnecting now get the new certificate and still link; signing goes on.
    await c.killSigner('signer-3');
    await c.startSigner('signer-3');
    await c.waitConnected(['signer-3']);
    expect(await trySign()).toBe('OK');

    // A certificate of another CA: refused, the rotated one stays.
    const other = await createDevPki(join(c.dir, 'other-pki'), ['coordinator']);
    const saved = [readFileSync(c.tls.coordinator!.cert), readFileSync(c.tls.coordinator!.key)] as const;
    copyFileSync(other.certs.coordinator!.cert, c.tls.coordinator!.cert);
    copyFileSync(other.certs.coordinator!.key, c.tls.coordinator!.key);
    const lines = c.coordinator.stderr.length;
    await hup(c.coordinator, 'refused');
    expect(c.coordinator.stderr.slice(lines).join('')).toMatch(/tls\.cert: .* is not issued by the CA/);
    expect(await servedCoordinatorSerial()).toBe(now);
    writeFileSync(c.tls.coordinator!.cert, saved[0]);
    writeFileSync(c.tls.coordinator!.key, saved[1]);
    await hup(c.coordinator, 'ok');
    expect(await trySign()).toBe('OK');
  }, 90_000);

  it('the participant allowlist reloads: a signer taken off is disconnected and stays out; put back, it links', async () => {
    const original = readFileSync(coordCfg());
    edit(coordCfg(), (j) => {
      j.participants = ['signer-1', 'signer-2'];
    });
    await hup(c.coordinator, 'changed');
    await c.waitConnected(['signer-3'], false);
    // Its retries are refused: still out a moment later, and the key signs with the other two.
    await new Promise((r) => setTimeout(r, 2000));
    await c.waitConnected(['signer-3'], false);
    expect(await trySign()).toBe('OK');
    writeFileSync(coordCfg(), original);
    await hup(c.coordinator, 'changed');
    await c.waitConnected(['signer-3']);
  }, 60_000);

  it('a changed file is picked up without a signal (the poll, as a Kubernetes ConfigMap update)', async () => {
    // signer-3 restarted with a short poll.
    await c.killSigner('signer-3', 'SIGTERM');
    edit(signerCfg('signer-3'), (j) => {
      j.reloadPollSeconds = 0.2;
    });
    const p = startProcess(SIGNER_BIN, signerCfg('signer-3'));
    c.signers.set('signer-3', p);
    const url = (await p.ready).metricsUrl as string;
    const before = configSha(await metricsOf(url));
    edit(signerCfg('signer-3'), (j) => {
      (j.policy as Json).epochRetentionMs = 3_600_000;
    });
    const after = await waitMetrics(url, (t) => configSha(t) !== before && lastReloadOk(t) === '1');
    expect(configSha(after)).toMatch(/^[0-9a-f]{16}$/);
    // A broken file is reported once, not at every poll.
    const lines = p.stderr.length;
    writeFileSync(signerCfg('signer-3'), '{');
    await waitMetrics(url, (t) => lastReloadOk(t) === '0');
    await new Promise((r) => setTimeout(r, 1500));
    expect(
      p.stderr
        .slice(lines)
        .join('')
        .split('\n')
        .filter((l) => l.includes('reload refused')),
    ).toHaveLength(1);
  }, 60_000);
});

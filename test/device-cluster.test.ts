/**
 * Offline co-signing end to end with real processes: a `tessera dev` cluster (coordinator +
 * 3 signer processes, each its own LevelDB) and the `tessera device …` CLI on a device
 * directory. The cluster is stopped while the device signs (and while two devices co-sign by
 * exchanging files) and restarted for the sync; then
 * the device, the coordinator and a co-signer are killed with SIGKILL in the middle of work,
 * and afterwards every package has completed exactly once (checked from the coordinator's
 * results and from every signer's nonce ledger), every signature verifies, every audit chain
 * is intact.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeOfflinePackage, fromHex, getSuite, toHex } from '@tessera/core';
import { SealedStore, NonceLedger, loadKek } from '@tessera/store';
import { qrSvg, qrTerminal } from '../packages/cli/src/qr.js';
import { submitPackage, type Client } from '@tessera/cli';
import { BIN, DevCluster, cli, exited, ok } from './dev-cli.js';

const root = mkdtempSync(join(tmpdir(), 'tessera-devcluster-'));
const dir = join(root, '.tessera');
const phone = join(root, 'phone');
const cluster = new DevCluster(dir);
const startDev = () => cluster.start();
const stopDev = () => cluster.stop();
const waitHealthy = (exceptPid?: number) => cluster.healthy(exceptPid);
const withCluster = <T>(fn: (c: Client) => Promise<T>) => cluster.with(fn);

afterAll(async () => {
  await stopDev();
  rmSync(root, { recursive: true, force: true });
});

let keyId = '';
let publicKey = '';
/** The key the phone shares with the tablet (made in beforeAll). */
let shared = { keyId: '', publicKey: '', participants: [] as string[] };
const tablet = join(root, 'tablet');
const suite = getSuite('ed25519');

/** The package the phone signed while the cluster was stopped (first test), completed after the restart (third). */
let offline = { packageId: '', message: '', text: '' };

/** `device sign` of a fresh random message, offline, on the phone's key, with `extra` flags. */
const offlineSign = (...extra: string[]) => [
  ...['device', 'sign', '--device-dir', phone, '--key', keyId],
  ...['--message', toHex(randomBytes(32)), '--offline', ...extra],
];

interface SyncOut {
  completed: { packageId: string; message: string; signature: string }[];
  pending: { packageId: string; code: string }[];
  failed: { packageId: string; code: string }[];
}

describe('offline co-signing with a real dev cluster', () => {
  beforeAll(async () => {
    await startDev();
    const { token } = ok<{ token: string }>('device', 'token', '--dir', dir);
    expect(ok('device', 'init', '--device-dir', phone, '--id', 'phone-1')).toMatchObject({
      device: 'phone-1',
      created: true,
    });
    expect(ok('device', 'enrol', '--device-dir', phone, '--dir', dir, '--token', token)).toEqual({ device: 'phone-1' });
    const k = ok<{ keyId: string; publicKey: string; participants: string[]; threshold: number }>(
      'device',
      'keygen',
      '--device-dir',
      phone,
      '--dir',
      dir,
      '--suite',
      'ed25519',
      '--threshold',
      '2',
      '--with',
      'signer-1,signer-2',
    );
    expect(k.participants).toEqual(['phone-1', 'signer-1', 'signer-2']);
    keyId = k.keyId;
    publicKey = k.publicKey;
    // An enrolment token is one-time.
    const again = cli('device', 'enrol', '--device-dir', phone, '--dir', dir, '--token', token);
    expect(again.code).not.toBe(0);
    expect(again.err).toMatch(/already used \[UNAUTHENTICATED\]/);
    // A second device, a tablet, and a key the phone and the tablet share (2-of-3 with signer-3),
    // made while the cluster runs: the tablet stays linked and accepts the DKG the phone starts.
    const t = ok<{ token: string }>('device', 'token', '--dir', dir);
    ok('device', 'init', '--device-dir', tablet, '--id', 'tablet-1');
    ok('device', 'enrol', '--device-dir', tablet, '--dir', dir, '--token', t.token);
    const link = spawn(
      process.execPath,
      [BIN, 'device', 'connect', '--device-dir', tablet, '--dir', dir, '--accept-keygen', '--seconds', '20', '--json'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((r) => createInterface({ input: link.stdout! }).once('line', () => r()));
    shared = ok<{ keyId: string; publicKey: string; participants: string[] }>(
      'device',
      'keygen',
      '--device-dir',
      phone,
      '--dir',
      dir,
      '--suite',
      'secp256k1-tr',
      '--threshold',
      '2',
      '--with',
      'tablet-1,signer-3',
    );
    link.kill('SIGTERM'); // a no-op if it already ended
    await exited(link);
    expect(shared.participants).toEqual(['phone-1', 'signer-3', 'tablet-1']);
  }, 120_000);

  it('signs offline while the cluster is stopped: the package is queued, given as text, file and QR, checked by the merchant, and a sync keeps it pending', async () => {
    expect(
      ok<{ added: number; allowance: number }>(
        'device',
        'reserve',
        '--device-dir',
        phone,
        '--dir',
        dir,
        '--key',
        keyId,
        '--count',
        '40',
      ),
    ).toMatchObject({ added: 40, allowance: 40 });
    await stopDev();
    const msg = toHex(randomBytes(32));
    const file = join(root, 'p1.bin');
    const svg = join(root, 'p1.svg');
    const p = ok<{ packageId: string; text: string; bytes: number; qr: string; qrSvg: string }>(
      'device',
      'sign',
      '--device-dir',
      phone,
      '--key',
      keyId,
      '--message',
      msg,
      '--offline',
      '--out',
      file,
      '--qr',
      '--qr-svg',
      svg,
    );
    expect(p.bytes).toBeLessThan(400);
    expect(p.text.startsWith('TSP1:')).toBe(true);
    expect(readFileSync(file).length).toBe(p.bytes);
    // The QR forms for a merchant's terminal: the same package text, in a terminal and in an SVG.
    expect(p.qr).toBe(qrTerminal(p.text));
    expect(p.qrSvg).toBe(svg);
    expect(readFileSync(svg, 'utf8')).toBe(qrSvg(p.text));
    // The merchant's offline check needs only the key's public record.
    ok('device', 'key-record', '--device-dir', phone, '--key', keyId, '--out', join(root, 'key.rec'));
    writeFileSync(join(root, 'p1.txt'), p.text);
    expect(ok('check-package', '--key-record', join(root, 'key.rec'), '--package', join(root, 'p1.txt'))).toMatchObject(
      { ok: true, packageId: p.packageId, device: 'phone-1' },
    );
    // With the cluster down, sync keeps the package pending.
    const down = ok<SyncOut>('device', 'sync', '--device-dir', phone, '--dir', dir);
    expect(down.completed).toEqual([]);
    expect(down.pending).toEqual([expect.objectContaining({ packageId: p.packageId, code: 'UNAVAILABLE' })]);
    expect(ok<{ queue: { pending: number } }>('device', 'status', '--device-dir', phone).queue.pending).toBe(1);
    offline = { packageId: p.packageId, message: msg, text: join(root, 'p1.txt') };
  }, 120_000);

  it('two devices of one key sign together with no cluster (still stopped), exchanging files', async () => {
    expect(cluster.running).toBe(false);
    const k = shared;
    const msg = toHex(randomBytes(32));
    const req = join(root, 'cosign.req');
    const ans = join(root, 'cosign.ans');
    // The request travels as QR text, the answer as a file.
    const proposed = ok<{ text: string; bytes: number }>(
      'device',
      'propose',
      '--device-dir',
      phone,
      '--key',
      k.keyId,
      '--message',
      msg,
      '--out',
      req,
    );
    expect(proposed.text).toMatch(/^TSC1:[0-9A-Z $%*+\-./:]+$/);
    const reqText = join(root, 'cosign.req.txt');
    writeFileSync(reqText, proposed.text);
    expect(ok('device', 'cosign', '--device-dir', tablet, '--in', reqText, '--out', ans)).toMatchObject({
      from: 'phone-1',
      message: msg,
    });
    const r = ok<{ signature: string; signers: string[] }>('device', 'complete', '--device-dir', phone, '--in', ans);
    expect(r.signers.sort()).toEqual(['phone-1', 'tablet-1']);
    expect(getSuite('secp256k1-tr').verify(fromHex(r.signature), fromHex(msg), fromHex(k.publicKey))).toBe(true);
    // The proposer's nonce is spent (a durable marker says so): the same answer cannot complete a second time.
    const again = cli('device', 'complete', '--device-dir', phone, '--in', ans);
    expect(again.code).not.toBe(0);
    expect(again.err).toMatch(/\[INVALID_STATE\]/);
  }, 120_000);

  it('the sync after the restart completes the offline package once; the merchant delivering it again gets the same signature', async () => {
    const { packageId, message: msg, text } = offline;
    expect(packageId).not.toBe('');
    await startDev();
    await waitHealthy();
    const up = ok<SyncOut>('device', 'sync', '--device-dir', phone, '--dir', dir);
    expect(up.pending).toEqual([]);
    expect(up.completed).toHaveLength(1);
    const sig = up.completed[0] as { packageId: string; message: string; signature: string };
    expect(sig).toMatchObject({ packageId, message: msg });
    expect(suite.verify(fromHex(sig.signature), fromHex(msg), fromHex(publicKey))).toBe(true);
    // The merchant delivers the same package (text form): same signature, no second completion.
    const m = ok<{ packageId: string; signature: string; alreadyCompleted: boolean }>(
      'submit',
      '--dir',
      dir,
      '--package',
      text,
    );
    expect(m).toMatchObject({ packageId, signature: sig.signature, alreadyCompleted: true });
    expect(ok<SyncOut>('device', 'sync', '--device-dir', phone, '--dir', dir).completed).toEqual([]);
  }, 120_000);

  it('SIGKILL of the device while it signs: every reservation is either unused or behind exactly one queued package', async () => {
    const before = ok<{ keys: { allowance: number }[]; queue: { pending: number; completed: number } }>(
      'device',
      'status',
      '--device-dir',
      phone,
    );
    const total = (before.keys[0]?.allowance ?? 0) + before.queue.pending + before.queue.completed;
    const files: string[] = [];
    for (let i = 0; i < 8; i++) {
      const file = join(root, `kill-${i}.bin`);
      files.push(file);
      const child = spawn(process.execPath, [BIN, ...offlineSign(), '--out', file, '--json'], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 150 + Math.floor(Math.random() * 350)));
      child.kill('SIGKILL');
      await exited(child); // it may have finished before the kill
    }
    const after = ok<{ keys: { allowance: number }[]; queue: { pending: number; completed: number; failed: number } }>(
      'device',
      'status',
      '--device-dir',
      phone,
    );
    expect(after.queue.failed).toBe(0);
    expect((after.keys[0]?.allowance ?? 0) + after.queue.pending + after.queue.completed).toBe(total);
    // A package that reached its file was queued before it was handed out.
    const sync = ok<SyncOut>('device', 'sync', '--device-dir', phone, '--dir', dir);
    const done = new Set(sync.completed.map((c) => c.packageId));
    expect(done.size).toBe(after.queue.pending);
    for (const f of files.filter((x) => existsSync(x) && readFileSync(x).length > 0))
      expect(done.has(decodeOfflinePackage(new Uint8Array(readFileSync(f))).packageId)).toBe(true);
    // The journal was written in the same synced batch as the queue: after the kills its chain
    // verifies and it agrees with the queue, package for package.
    const report = ok<{ settled: { packageId: string }[]; pending: unknown[]; discrepancies: unknown[] }>(
      'device',
      'reconcile',
      '--device-dir',
      phone,
    );
    expect(report.discrepancies).toEqual([]);
    expect(report.pending).toEqual([]);
    for (const id of done) expect(report.settled.map((x) => x.packageId)).toContain(id);
    const journal = ok<{ entries: { kind: string; packageId?: string }[] }>('device', 'journal', '--device-dir', phone);
    expect(journal.entries.filter((e) => e.kind === 'completed' && done.has(e.packageId ?? ''))).toHaveLength(
      done.size,
    );
  }, 120_000);

  for (const victim of ['coordinator', 'co-signer'] as const) {
    it(`SIGKILL of the ${victim} during a sync loses nothing and completes nothing twice`, async () => {
      const msgs = Array.from({ length: 4 }, () => toHex(randomBytes(32)));
      const ids: string[] = [];
      for (const m of msgs)
        ids.push(
          ok<{ packageId: string }>(
            'device',
            'sign',
            '--device-dir',
            phone,
            '--key',
            keyId,
            '--message',
            m,
            '--offline',
          ).packageId,
        );
      const st = await waitHealthy();
      // The co-signer is whichever node holds this device's reservations: kill both nodes of the key if unsure.
      const pids =
        victim === 'coordinator'
          ? [st.coordinator.pid]
          : st.signers.filter((s) => s.id === 'signer-1' || s.id === 'signer-2').map((s) => s.pid as number);
      const sync = spawn(process.execPath, [BIN, 'device', 'sync', '--device-dir', phone, '--dir', dir, '--json'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      await new Promise((r) => setTimeout(r, 250 + Math.floor(Math.random() * 200)));
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      await exited(sync);
      // The dev supervisor restarts the killed process; sync until everything is through.
      await waitHealthy(pids[0]);
      const completed = new Map<string, string>();
      for (let round = 0; round < 20 && completed.size < ids.length; round++) {
        const r = ok<SyncOut>('device', 'sync', '--device-dir', phone, '--dir', dir);
        expect(r.failed).toEqual([]);
        for (const c of r.completed) completed.set(c.packageId, c.signature);
        if (completed.size < ids.length) await new Promise((res) => setTimeout(res, 500));
      }
      const queue = ok<{ queue: { pending: number } }>('device', 'status', '--device-dir', phone).queue;
      expect(queue.pending).toBe(0);
      // Every package of this round completed exactly once with a valid signature, whichever
      // sync did it; delivering it again returns that same signature.
      const queued = await deviceQueue();
      for (const [i, id] of ids.entries()) {
        const q = queued.find((x) => x.packageId === id) as Queued;
        expect(q.state, `package ${i}`).toBe('completed');
        if (completed.has(id)) expect(completed.get(id)).toBe(q.signature);
        expect(suite.verify(fromHex(q.signature as string), fromHex(msgs[i] as string), fromHex(publicKey))).toBe(true);
        // (`tessera submit`'s own call, in this process: the CLI path is checked in the first test.)
        expect(await withCluster((c) => submitPackage(c, fromHex(q.bytes)))).toMatchObject({
          packageId: id,
          signature: q.signature,
          alreadyCompleted: true,
        });
      }
    }, 180_000);
  }

  it('the coordinator exports offline-package metrics: completions, re-deliveries, pending on devices (a total, no device label), sync latency', async () => {
    const st = ok<{ coordinator: { metrics: string } }>('status', '--dir', dir);
    // Counters restart with the process (the coordinator was killed above): make fresh events.
    ok('device', 'reserve', '--device-dir', phone, '--dir', dir, '--key', keyId, '--count', '1');
    // One package left pending on the device while it is linked: the gauge shows it. Signed with
    // the app's verdict (as a wallet passes it): into the package, and kept in the journal.
    const signed = ok<{ packageId: string }>(...offlineSign('--integrity', 'pass:cli-test'));
    const entries = ok<{ entries: { kind: string; packageId?: string; integrity?: string }[] }>(
      'device',
      'journal',
      '--device-dir',
      phone,
    ).entries;
    expect(entries.find((e) => e.kind === 'signed' && e.packageId === signed.packageId)?.integrity).toBe(
      'pass:cli-test',
    );
    const bad = cli('device', 'sign', '--device-dir', phone, '--key', keyId, '--message', '00', '--integrity', 'ok');
    expect([bad.code, bad.err]).toEqual([
      1,
      expect.stringMatching(/--integrity is pass, fail or unknown.*\[INVALID_ARGUMENT\]$/),
    ]);
    const link = spawn(
      process.execPath,
      [BIN, 'device', 'connect', '--device-dir', phone, '--dir', dir, '--seconds', '4', '--json'],
      { stdio: 'ignore' },
    );
    let text = '';
    const pending = /tessera_offline_packages_pending(\{[^}]*\})? 1$/m;
    for (let i = 0; i < 30 && !pending.test(text); i++) {
      await new Promise((r) => setTimeout(r, 200));
      text = await (await fetch(st.coordinator.metrics)).text();
    }
    if (link.exitCode === null) await new Promise((r) => link.once('exit', r));
    expect(text).toMatch(pending);
    // A total, not a series per device (cardinality): no metric names the phone.
    expect(text).not.toContain('phone-1');
    expect(text).toMatch(/tessera_offline_packages_total\{result="already_completed",cause=""[^}]*\} [1-9]/);
    expect(text).toMatch(/tessera_offline_sync_seconds_count(\{[^}]*\})? [1-9]/);
    expect(text).toMatch(/tessera_reservations_total(\{[^}]*\})? [1-9]/);
    expect(ok<SyncOut>('device', 'sync', '--device-dir', phone, '--dir', dir).completed).toHaveLength(1);
    const after = await (await fetch(st.coordinator.metrics)).text();
    const completed = Number(
      /tessera_offline_packages_total\{result="completed",cause=""[^}]*\} (\d+)/.exec(after)?.[1] ?? 0,
    );
    expect(completed).toBeGreaterThan(0);
  }, 60_000);

  it('backup with 2-of-3 recovery pieces restores the device on a new directory, which reserves and signs afresh', async () => {
    const pw = join(root, 'pw.txt');
    writeFileSync(pw, 'correct horse battery staple\n');
    const b = ok<{ file: string; pieces: string[] }>(
      'device',
      'backup',
      '--device-dir',
      phone,
      '--out',
      join(root, 'phone.backup'),
      '--password-file',
      pw,
      '--pieces',
      '2/3',
    );
    expect(b.pieces).toHaveLength(3);
    const bad = join(root, 'bad.txt');
    writeFileSync(bad, 'wrong\n');
    // The password floor: a weak password is refused unless --allow-weak-password says so.
    const weak = cli(
      'device',
      'backup',
      '--device-dir',
      phone,
      '--out',
      join(root, 'weak.backup'),
      '--password-file',
      bad,
    );
    expect(weak.code).not.toBe(0);
    expect(weak.err).toMatch(/\[WEAK_PASSWORD\]/);
    expect(weak.err).not.toMatch(/wrong/);
    const forced = ok<{ file: string }>(
      'device',
      'backup',
      '--device-dir',
      phone,
      '--out',
      join(root, 'weak.backup'),
      '--password-file',
      bad,
      '--allow-weak-password',
    );
    expect(
      ok<{ device: string }>(
        'device',
        'restore',
        '--device-dir',
        join(root, 'weak-phone'),
        '--in',
        forced.file,
        '--password-file',
        bad,
      ).device,
    ).toBe('phone-1');
    const wrong = cli('device', 'restore', '--device-dir', join(root, 'nope'), '--in', b.file, '--password-file', bad);
    expect(wrong.code).not.toBe(0);
    expect(wrong.err).toMatch(/\[BACKUP_PASSWORD\]/);
    expect(wrong.err).not.toMatch(/correct horse/);
    const newPhone = join(root, 'new-phone');
    const r = ok<{ device: string; keys: string[] }>(
      'device',
      'restore',
      '--device-dir',
      newPhone,
      '--pieces',
      `${b.pieces[2]},${b.pieces[0]}`,
      '--password-file',
      pw,
    );
    expect(r.device).toBe('phone-1');
    expect(r.keys).toContain(keyId);
    const st = ok<{ keys: { keyId: string; allowance: number }[]; queue: { pending: number } }>(
      'device',
      'status',
      '--device-dir',
      newPhone,
    );
    expect(st.keys.find((x) => x.keyId === keyId)?.allowance).toBe(0);
    expect(st.queue.pending).toBe(0);
    ok('device', 'reserve', '--device-dir', newPhone, '--dir', dir, '--key', keyId, '--count', '1');
    const msg = toHex(randomBytes(32));
    const s = ok<{ signature: string }>(
      'device',
      'sign',
      '--device-dir',
      newPhone,
      '--dir',
      dir,
      '--key',
      keyId,
      '--message',
      msg,
    );
    expect(suite.verify(fromHex(s.signature), fromHex(msg), fromHex(publicKey))).toBe(true);
  }, 120_000);

  it('afterwards: every audit chain is intact, and each reservation nonce was consumed for exactly one package', async () => {
    const a = ok<{ ok: boolean; processes: { id: string; ok: boolean }[] }>('audit', 'verify', '--dir', dir);
    expect(a.ok).toBe(true);
    const queue = [...(await deviceQueue(phone)), ...(await deviceQueue(join(root, 'new-phone')))];
    const completed = queue.filter((q) => q.state === 'completed');
    expect(queue.filter((q) => q.state !== 'completed')).toEqual([]);
    expect(completed.length).toBeGreaterThan(10);
    await stopDev();
    const digests = new Map<string, string>();
    for (const id of ['signer-1', 'signer-2', 'signer-3']) {
      const store = await SealedStore.open(join(dir, id), loadKek({ file: join(dir, 'keks', `${id}.kek`) }));
      try {
        for (const c of await new NonceLedger(store).listConsumed('r.')) {
          const d = toHex(c.requestDigest);
          expect(digests.has(d), `package ${d} completed by two nonces`).toBe(false);
          digests.set(d, `${id}/${c.nonceId}`);
        }
      } finally {
        await store.close();
      }
    }
    // One consumed reservation per completed package (a 2-of-3 key: one co-signer each), none extra.
    expect(digests.size).toBe(completed.length);
    for (const q of completed) {
      const pkg = decodeOfflinePackage(fromHex(q.bytes));
      expect(digests.has(toHex(pkg.digest))).toBe(true);
      expect(suite.verify(fromHex(q.signature as string), fromHex(q.message), fromHex(publicKey))).toBe(true);
    }
  }, 120_000);
});

interface Queued {
  packageId: string;
  message: string;
  bytes: string;
  state: string;
  signature?: string;
}

async function deviceQueue(deviceDir = phone): Promise<Queued[]> {
  const { Device } = await import('@tessera/device');
  const key = fromHex(readFileSync(join(deviceDir, 'storage.key'), 'utf8').trim());
  const d = await Device.open({ location: join(deviceDir, 'store'), storageKey: key });
  try {
    return (await d.queue()) as Queued[];
  } finally {
    await d.close();
  }
}

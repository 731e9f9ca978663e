/**
 * A phone's share of an ECDSA key, offline, with real processes (issue "Threshold ECDSA"): a
 * `tessera dev` cluster (coordinator + 3 signer processes) and the `tessera device …` CLI. The
 * phone joins an ecdsa-secp256k1 keygen, reserves presignatures with a co-signer, signs while
 * the cluster is stopped, the merchant checks the package offline, and after the restart each
 * package completes once — also when the co-signers are killed with SIGKILL during the sync.
 * Signatures are checked by noble and by libsecp256k1 (with the recovery id).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromHex, getSuite, toHex } from '@tessera/core';
import { submitPackage } from '@tessera/cli';
import { BIN, DevCluster, cli, exited, ok } from './dev-cli.js';
import { libsecp256k1Ecdsa } from './verifiers.js';

const root = mkdtempSync(join(tmpdir(), 'tessera-ecdsa-phone-'));
const dir = join(root, '.tessera');
const phone = join(root, 'phone');
const cluster = new DevCluster(dir);
const suite = getSuite('ecdsa-secp256k1');

afterAll(async () => {
  await cluster.stop();
  rmSync(root, { recursive: true, force: true });
});

let keyId = '';
let publicKey = '';

interface SyncOut {
  completed: { packageId: string; message: string; signature: string }[];
  pending: { packageId: string; code: string }[];
  failed: { packageId: string; code: string }[];
}

const verifies = (sig: string, msg: string) =>
  suite.verify(fromHex(sig), fromHex(msg), fromHex(publicKey)) &&
  libsecp256k1Ecdsa(fromHex(sig), fromHex(msg), fromHex(publicKey));

const signOffline = (msg: string, ...extra: string[]) =>
  ok<{ packageId: string; text: string; bytes: number }>(
    ...['device', 'sign', '--device-dir', phone, '--key', keyId, '--message', msg, '--offline', ...extra],
  );

/** The phone's queue, read from its store (the phone's process is not running). */
async function deviceQueue(): Promise<{ packageId: string; state: string; signature?: string; bytes: string }[]> {
  const { Device } = await import('@tessera/device');
  const key = fromHex(readFileSync(join(phone, 'storage.key'), 'utf8').trim());
  const d = await Device.open({ location: join(phone, 'store'), storageKey: key });
  try {
    return await d.queue();
  } finally {
    await d.close();
  }
}

describe('a phone in an ECDSA key, offline, with a real dev cluster', () => {
  beforeAll(async () => {
    await cluster.start();
    const { token } = ok<{ token: string }>('device', 'token', '--dir', dir);
    ok('device', 'init', '--device-dir', phone, '--id', 'phone-e');
    ok('device', 'enrol', '--device-dir', phone, '--dir', dir, '--token', token);
    const k = ok<{ keyId: string; publicKey: string; participants: string[]; suite: string }>(
      ...['device', 'keygen', '--device-dir', phone, '--dir', dir, '--suite', 'ecdsa-secp256k1'],
      ...['--threshold', '2', '--with', 'signer-1,signer-2'],
    );
    expect(k.participants).toEqual(['phone-e', 'signer-1', 'signer-2']);
    keyId = k.keyId;
    publicKey = k.publicKey;
  }, 120_000);

  it('reserve, sign with the cluster stopped, the merchant checks the package, sync completes each once', async () => {
    expect(
      ok<{ added: number; allowance: number }>(
        ...['device', 'reserve', '--device-dir', phone, '--dir', dir, '--key', keyId, '--count', '6'],
        ...['--cosigners', 'signer-1'],
      ),
    ).toMatchObject({ added: 6, allowance: 6 });
    await cluster.stop();
    const msgs = [toHex(randomBytes(32)), toHex(randomBytes(32))];
    const file = join(root, 'p1.bin');
    const p1 = signOffline(msgs[0] as string, '--out', file);
    const p2 = signOffline(msgs[1] as string);
    expect(p1.text.startsWith('TSP1:')).toBe(true);
    // The merchant's offline check: the key's public record and the package (file or text).
    ok('device', 'key-record', '--device-dir', phone, '--key', keyId, '--out', join(root, 'key.rec'));
    writeFileSync(join(root, 'p2.txt'), p2.text);
    expect(ok('check-package', '--key-record', join(root, 'key.rec'), '--package', file)).toMatchObject({
      ok: true,
      packageId: p1.packageId,
      device: 'phone-e',
      keyId,
      message: msgs[0],
      cosigners: ['signer-1'],
      expiresAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(ok('check-package', '--key-record', join(root, 'key.rec'), '--package', join(root, 'p2.txt'))).toMatchObject(
      { ok: true, packageId: p2.packageId },
    );
    // A SegWit v0 spend of the key's own output, paid offline: the CLI reads the PSBT, and the
    // merchant's check reads it again and shows what it pays.
    const btc = await import('@scure/btc-signer');
    const own = btc.p2wpkh(fromHex(publicKey));
    const tx = new btc.Transaction();
    tx.addInput({ txid: randomBytes(32), index: 0, witnessUtxo: { script: own.script, amount: 120_000n } });
    tx.addOutputAddress('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', 100_000n);
    writeFileSync(join(root, 'spend.psbt'), Buffer.from(tx.toPSBT()).toString('base64'));
    const paid = ok<{ packageId: string; payment: { amount: string; fee: string } }>(
      ...['device', 'sign', '--device-dir', phone, '--key', keyId, '--psbt', join(root, 'spend.psbt')],
      ...['--offline', '--out', join(root, 'p3.bin')],
    );
    expect(paid.payment).toMatchObject({ amount: '100000', fee: '20000' });
    expect(ok('check-package', '--key-record', join(root, 'key.rec'), '--package', join(root, 'p3.bin'))).toMatchObject(
      {
        ok: true,
        packageId: paid.packageId,
        payment: { chain: 'bitcoin', amount: '100000', fee: '20000' },
      },
    );
    msgs.push(toHex(tx.preimageWitnessV0(0, btc.p2pkh(fromHex(publicKey)).script, btc.SigHash.ALL, 120_000n)));
    // One byte changed anywhere: the device's signature over it fails.
    const bytes = new Uint8Array(readFileSync(file));
    bytes[bytes.length - 10] = (bytes[bytes.length - 10] as number) ^ 1;
    writeFileSync(join(root, 'bad.bin'), bytes);
    const bad = cli('check-package', '--key-record', join(root, 'key.rec'), '--package', join(root, 'bad.bin'));
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/\[(BAD_SIGNATURE|DECODE)\]/);
    // Cluster down: both stay pending.
    const down = ok<SyncOut>('device', 'sync', '--device-dir', phone, '--dir', dir);
    expect(down.pending.map((x) => x.code)).toEqual(['UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE']);
    await cluster.start();
    await cluster.healthy();
    const up = ok<SyncOut>('device', 'sync', '--device-dir', phone, '--dir', dir);
    expect(up.failed).toEqual([]);
    expect(up.completed.map((x) => x.packageId)).toEqual([p1.packageId, p2.packageId, paid.packageId]);
    for (const [i, c] of up.completed.entries()) expect(verifies(c.signature, msgs[i] as string)).toBe(true);
    // The merchant's copy delivered again: the same signature, nothing signed twice.
    const again = ok<{ packageId: string; signature: string; alreadyCompleted: boolean }>(
      ...['submit', '--dir', dir, '--package', file],
    );
    expect(again).toMatchObject({ packageId: p1.packageId, alreadyCompleted: true });
    expect(again.signature).toBe(up.completed[0]?.signature);
  }, 180_000);

  it('SIGKILL of the co-signers during a sync loses nothing and completes nothing twice', async () => {
    const msgs = Array.from({ length: 3 }, () => toHex(randomBytes(32)));
    const ids = msgs.map((m) => signOffline(m).packageId);
    const st = await cluster.healthy();
    const pids = st.signers.filter((s) => s.id === 'signer-1' || s.id === 'signer-2').map((s) => s.pid as number);
    const sync = spawn(process.execPath, [BIN, 'device', 'sync', '--device-dir', phone, '--dir', dir, '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise((r) => setTimeout(r, 150 + Math.floor(Math.random() * 200)));
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await exited(sync);
    // The dev supervisor restarts them; sync until everything is through.
    await cluster.healthy(pids[0]);
    const completed = new Map<string, string>();
    for (let round = 0; round < 20 && completed.size < ids.length; round++) {
      const r = ok<SyncOut>('device', 'sync', '--device-dir', phone, '--dir', dir);
      expect(r.failed).toEqual([]);
      for (const c of r.completed) completed.set(c.packageId, c.signature);
      if (completed.size < ids.length) await new Promise((res) => setTimeout(res, 500));
    }
    const queue = ok<{ queue: { pending: number; failed: number } }>('device', 'status', '--device-dir', phone).queue;
    expect(queue).toMatchObject({ pending: 0, failed: 0 });
    const q = await deviceQueue();
    for (const [i, id] of ids.entries()) {
      const item = q.find((x) => x.packageId === id);
      expect(item?.state, `package ${i}`).toBe('completed');
      if (completed.has(id)) expect(completed.get(id)).toBe(item?.signature);
      expect(verifies(item?.signature as string, msgs[i] as string)).toBe(true);
      expect(await cluster.with((c) => submitPackage(c, fromHex(item?.bytes as string)))).toMatchObject({
        packageId: id,
        signature: item?.signature,
        alreadyCompleted: true,
      });
    }
  }, 180_000);
});

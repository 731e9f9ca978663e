/**
 * Two devices, no cluster (Device.proposeCosign / cosign / completeCosign): the proposer's
 * nonce is used at most once per store. Once an answer checks out, the pending nonce is replaced
 * by a durable spent marker before the share is computed, so neither a second answer nor a crash
 * after that write can use it again. Devices get their key by restoring a backup made from a
 * local DKG, so no cluster is needed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Level } from 'level';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ParticipantIdentity,
  decodeMessage,
  encodeIdentityRecord,
  encodeMessage,
  encodeKeyShareRecord,
  fromHex,
  getSuite,
  groupPublicKey,
  runLocalDkg,
  toHex,
  type GroupKey,
} from '@tessera/core';
import { Device, DeviceError, encryptBackup } from '../src/index.js';

const PASSWORD = 'correct horse battery staple 42';
const KEY_ID = '0123456789abcdef';
const enc = (s: string) => new TextEncoder().encode(s);

const dirs: string[] = [];
const open: Device[] = [];
afterAll(async () => {
  for (const d of open) await d.close().catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tessera-cosign-'));
  dirs.push(d);
  return d;
}

/** A 2-of-3 key of three devices, each restored from a backup into its own store. */
async function threeDevices(): Promise<{
  key: GroupKey;
  devices: Map<string, { device: Device; dir: string; storageKey: Uint8Array }>;
}> {
  const ids = ['phone-a', 'phone-b', 'phone-c'].map((id) => ParticipantIdentity.generate(id));
  const out = runLocalDkg(getSuite('ed25519'), 2, ids);
  const devices = new Map<string, { device: Device; dir: string; storageKey: Uint8Array }>();
  let key: GroupKey | undefined;
  for (const identity of ids) {
    const o = out.get(identity.id);
    if (!o) throw new Error(`no DKG output for ${identity.id}`);
    key = o.key;
    const rec = encodeKeyShareRecord({
      keyId: KEY_ID,
      epoch: 0,
      key: o.key,
      share: o.share,
      transcriptHash: o.transcriptHash,
      createdAt: 1,
    });
    const plain = enc(
      JSON.stringify({ v: 1, identity: toHex(encodeIdentityRecord(identity)), keys: [toHex(rec)], enrolment: null }),
    );
    const backup = await encryptBackup(plain, PASSWORD, { cost: 'test' });
    const dir = tempDir();
    const storageKey = new Uint8Array(randomBytes(32));
    const device = await Device.restore({ location: dir, storageKey, backup, password: PASSWORD });
    open.push(device);
    devices.set(identity.id, { device, dir, storageKey });
  }
  return { key: key as GroupKey, devices };
}

async function refused(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const e = await p.then(
    () => {
      throw new Error('expected a refusal, the call succeeded');
    },
    (err: unknown) => err,
  );
  expect((e as { code?: unknown }).code, String(e)).toBeTypeOf('string');
  return e as { code: string; message: string };
}

/** The raw (unsealed-key) record names under `prefix` in a closed device store. */
async function rawKeys(dir: string, prefix: string): Promise<string[]> {
  const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.open();
  try {
    const out: string[] = [];
    for await (const k of db.keys({ gte: prefix, lt: `${prefix}\xff` })) out.push(k);
    return out;
  } finally {
    await db.close();
  }
}

describe('two-device co-signing: the proposer nonce is spent durably, once', () => {
  it('a second, different answer to the same request (and the same answer again) is refused INVALID_STATE; a bad answer leaves the request pending', async () => {
    const { key, devices } = await threeDevices();
    const a = devices.get('phone-a')?.device as Device;
    const b = devices.get('phone-b')?.device as Device;
    const c = devices.get('phone-c')?.device as Device;
    const message = enc('split the bill: 18 EUR');
    const { request } = await a.proposeCosign({ keyId: KEY_ID, message });
    const first = await b.cosign(request);
    const second = await b.cosign(request); // a fresh nonce of b: a different answer
    const third = await c.cosign(request);
    expect(toHex(second.response)).not.toBe(toHex(first.response));

    // A tampered answer is refused before the nonce is touched: the request stays pending.
    const w = decodeMessage('CosignResponse', first.response);
    const share = w.share.slice();
    share[0] = (share[0] as number) ^ 1;
    const bad = encodeMessage('CosignResponse', { ...w, share });
    expect((await refused(a.completeCosign(bad))).code).toBe('BAD_SIGNATURE_SHARE');

    const done = await a.completeCosign(first.response);
    expect(done.signers).toEqual(['phone-a', 'phone-b']);
    expect(getSuite('ed25519').verify(fromHex(done.signature), message, groupPublicKey(key))).toBe(true);

    for (const r of [second.response, third.response, first.response]) {
      const e = await refused(a.completeCosign(r));
      expect(e).toBeInstanceOf(DeviceError);
      expect(e.code).toBe('INVALID_STATE');
      expect(e.message).toContain('spent');
    }
    // An answer to a request this device never made is still NOT_FOUND.
    const { request: other } = await b.proposeCosign({ keyId: KEY_ID, message });
    expect((await refused(a.completeCosign((await c.cosign(other)).response))).code).toBe('NOT_FOUND');
  });

  it('a crash right after the spent marker is written (before the share is computed) leaves no usable nonce: after reopening, every answer is refused', async () => {
    const { devices } = await threeDevices();
    const pa = devices.get('phone-a') as { device: Device; dir: string; storageKey: Uint8Array };
    const b = devices.get('phone-b')?.device as Device;
    const message = enc('interrupted');
    const { request } = await pa.device.proposeCosign({ keyId: KEY_ID, message });
    const first = await b.cosign(request);
    const second = await b.cosign(request);
    await pa.device.close();
    expect(await rawKeys(pa.dir, 'cosign/')).toHaveLength(1); // the pending (sealed) nonce

    // Reopen on a database that "crashes" (the call never returns) right after the synced write
    // that removes the pending nonce: no signature or share can have left the device.
    const db = new Level<string, Uint8Array>(pa.dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
    const batch = db.batch.bind(db) as (ops: { type: string; key: string }[], opts: unknown) => Promise<void>;
    let crashed = false;
    (db as unknown as { batch: typeof batch }).batch = async (ops, opts) => {
      await batch(ops, opts);
      if (ops.some((o) => o.type === 'del' && o.key.startsWith('cosign/'))) {
        crashed = true;
        throw new Error('simulated crash after the synced write');
      }
    };
    const crashing = await Device.open({ location: db, storageKey: pa.storageKey });
    await expect(crashing.completeCosign(first.response)).rejects.toThrow('simulated crash after the synced write');
    expect(crashed).toBe(true);
    await crashing.close();

    // What the crash left: no nonce, a spent marker.
    expect(await rawKeys(pa.dir, 'cosign/')).toEqual([]);
    expect(await rawKeys(pa.dir, 'cosign-spent/')).toHaveLength(1);
    const reopened = await Device.open({ location: pa.dir, storageKey: pa.storageKey });
    open.push(reopened);
    for (const r of [first.response, second.response])
      expect((await refused(reopened.completeCosign(r))).code).toBe('INVALID_STATE');
  });
});

/**
 * Offline payments with caps through the CLI and real processes (issue 19): a `tessera dev`
 * cluster (coordinator + 3 signer processes), a phone's device directory driven by `tessera device
 * …`, and a copy of that directory (a cloned phone: the same reservations, the same running
 * totals). Each signs a Bitcoin payment within the cap whose sum passes it; whichever is delivered
 * first (here the clone's) completes, and after a kill -9 of the co-signer (the supervisor
 * restarts it) the other is refused OVER_ALLOWANCE: the co-signer's total was written with its
 * consumed nonce. Also: `device reserve --cap`, `device sign --psbt` (a base64 PSBT file), the
 * merchant's `check-package` printing the payment, and a bare message refused on capped
 * reservations. A fiat cap: `tessera prices sign` by the dev operator, `device reserve --fiat-cap
 * --prices`, the merchant's check, and a clone's payment past the dollar cap refused.
 * Afterwards every audit chain verifies.
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { schnorr } from '@noble/curves/secp256k1.js';
import { OutScript, SigHash, Transaction } from '@scure/btc-signer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromHex, toHex } from '@tessera/core';
import { DevCluster, cli, ok } from './dev-cli.js';

const root = mkdtempSync(join(tmpdir(), 'tessera-payments-'));
const dir = join(root, '.tessera');
const phone = join(root, 'phone');
const cluster = new DevCluster(dir);
const PAYEE = OutScript.encode({ type: 'tr', pubkey: schnorr.getPublicKey(new Uint8Array(32).fill(7)) });

let keyId = '';
let xonly: Uint8Array = new Uint8Array(0);
let own: Uint8Array = new Uint8Array(0);

afterAll(async () => {
  await cluster.stop();
  rmSync(root, { recursive: true, force: true });
});

/** A PSBT file (base64, as wallets export it) paying `amount` to the payee from one UTXO of the key. */
function psbtFile(name: string, amount: bigint, fee: bigint): { file: string; hash: Uint8Array; tx: Uint8Array } {
  const t = new Transaction();
  t.addInput({ txid: randomBytes(32), index: 0, witnessUtxo: { script: own, amount: amount + fee } });
  t.addOutput({ script: PAYEE, amount });
  const tx = t.toPSBT();
  const file = join(root, `${name}.psbt`);
  writeFileSync(file, Buffer.from(tx).toString('base64'));
  return { file, tx, hash: Transaction.fromPSBT(tx).preimageWitnessV1(0, [own], SigHash.DEFAULT, [amount + fee]) };
}

interface Signed {
  packageId: string;
  payment: { amount: string; fee: string; asset: string };
}

describe('offline payments with caps, with real processes', () => {
  beforeAll(async () => {
    await cluster.start();
    const { token } = ok<{ token: string }>('device', 'token', '--dir', dir);
    ok('device', 'init', '--device-dir', phone, '--id', 'phone-1');
    ok('device', 'enrol', '--device-dir', phone, '--dir', dir, '--token', token);
    const k = ok<{ keyId: string; publicKey: string }>(
      ...['device', 'keygen', '--device-dir', phone, '--dir', dir, '--suite', 'secp256k1-tr'],
      ...['--threshold', '2', '--with', 'signer-1,signer-2'],
    );
    keyId = k.keyId;
    xonly = fromHex(k.publicKey);
    own = OutScript.encode({ type: 'tr', pubkey: xonly });
  }, 120_000);

  it('device reserve --cap, device sign --psbt, check-package shows the payment; the signature spends the input', () => {
    const r = ok<{ added: number }>(
      ...['device', 'reserve', '--device-dir', phone, '--dir', dir, '--key', keyId, '--count', '1'],
      ...['--cosigners', 'signer-1', '--cap', 'BTC=50000', '--per-payment', 'BTC=40000'],
    );
    expect(r.added).toBe(1);
    const bare = cli(
      'device',
      'sign',
      '--device-dir',
      phone,
      '--key',
      keyId,
      '--message',
      toHex(randomBytes(32)),
      '--offline',
    );
    expect(bare.code).not.toBe(0);
    expect(bare.err).toMatch(/\[OVER_ALLOWANCE\]/);
    const big = psbtFile('big', 40_000n, 1n);
    const over = cli('device', 'sign', '--device-dir', phone, '--key', keyId, '--psbt', big.file, '--offline');
    expect(over.err).toMatch(/above the allowance's 40000 per payment \[OVER_ALLOWANCE\]/);
    const p = psbtFile('p', 12_000n, 300n);
    const out = join(root, 'p.bin');
    const s = ok<Signed>(
      'device',
      'sign',
      '--device-dir',
      phone,
      '--key',
      keyId,
      '--psbt',
      p.file,
      '--offline',
      '--out',
      out,
    );
    expect(s.payment).toMatchObject({ asset: 'BTC', amount: '12000', fee: '300' });
    ok('device', 'key-record', '--device-dir', phone, '--key', keyId, '--out', join(root, 'key.rec'));
    expect(ok('check-package', '--key-record', join(root, 'key.rec'), '--package', out)).toMatchObject({
      ok: true,
      packageId: s.packageId,
      payment: { chain: 'bitcoin', asset: 'BTC', amount: '12000', fee: '300' },
    });
    const done = ok<{ completed: { packageId: string; signature: string; message: string }[] }>(
      ...['device', 'sync', '--device-dir', phone, '--dir', dir],
    );
    const c = done.completed.find((x) => x.packageId === s.packageId) as { signature: string; message: string };
    expect(c.message).toBe(toHex(p.hash));
    const t = Transaction.fromPSBT(p.tx);
    t.updateInput(0, { finalScriptWitness: [fromHex(c.signature)] });
    const raw = Transaction.fromRaw(t.extract(), { allowUnknownOutputs: true });
    const witness = (raw.getInput(0).finalScriptWitness as Uint8Array[])[0] as Uint8Array;
    expect(schnorr.verify(witness, raw.preimageWitnessV1(0, [own], SigHash.DEFAULT, [12_300n]), xonly)).toBe(true);
  }, 120_000);

  // Both delivery orders without a kill: test/payments.test.ts; here the one where the package
  // signed later wins.
  it('a cloned phone: two payments that together pass the cap, kill -9 of the co-signer between them: only the first delivered (the clone’s) completes', async () => {
    const order = 'clone';
    ok(
      ...['device', 'reserve', '--device-dir', phone, '--dir', dir, '--key', keyId, '--count', '2'],
      ...['--cosigners', 'signer-1', '--cap', 'BTC=50000'],
    );
    const clone = join(root, 'clone');
    cpSync(phone, clone, { recursive: true });
    const sign = (deviceDir: string, name: string, amount: bigint) => {
      const out = join(root, `${name}.bin`);
      const f = psbtFile(name, amount, 0n);
      ok('device', 'sign', '--device-dir', deviceDir, '--key', keyId, '--psbt', f.file, '--offline', '--out', out);
      return out;
    };
    // Two slots of one allowance in both directories: the phone pays on the first (and spends the
    // second on a payment it never delivers), the clone on the second.
    const fromPhone = sign(phone, `a-${order}`, 30_000n);
    sign(phone, `spent-a-${order}`, 100n);
    sign(clone, `spent-b-${order}`, 100n);
    const fromClone = sign(clone, `b-${order}`, 25_000n);
    const [first, second] = [fromClone, fromPhone];
    const done = ok<{ signature: string; alreadyCompleted: boolean }>('submit', '--dir', dir, '--package', first);
    expect(done.alreadyCompleted).toBe(false);
    const st = await cluster.healthy();
    const pid = st.signers.find((x) => x.id === 'signer-1')?.pid as number;
    process.kill(pid, 'SIGKILL');
    await cluster.healthy(pid);
    const refused = cli('submit', '--dir', dir, '--package', second);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toMatch(/pass the allowance's cap of 50000 .*\[OVER_ALLOWANCE\]/);
    // The first is still the one: delivered again, the same signature, nothing counted twice.
    expect(ok('submit', '--dir', dir, '--package', first)).toMatchObject({
      signature: done.signature,
      alreadyCompleted: true,
    });
  }, 120_000);

  it('a fiat cap: operators sign prices (`prices sign`), `device reserve --fiat-cap`; the merchant reads dollars; the clone’s payment that would pass $300.00 is refused', () => {
    const table = join(root, 'prices.json');
    writeFileSync(table, JSON.stringify({ currency: 'USD', prices: { BTC: { per: '100000000', fiat: '9700000' } } }));
    const usd = join(root, 'usd.json');
    const signed = ok<{ signers: string[]; assets: string[] }>(
      ...['prices', 'sign', '--in', table, '--approve-with', join(dir, 'operator.json'), '--out', usd],
    );
    expect(signed).toMatchObject({ assets: ['BTC'] });
    expect(signed.signers).toHaveLength(1);
    const reserve = [
      'device',
      'reserve',
      '--device-dir',
      phone,
      '--dir',
      dir,
      '--key',
      keyId,
      '--cosigners',
      'signer-1',
    ];
    // The unsigned table is not a signed snapshot; a cap in another currency than the snapshot's is refused by the co-signer.
    expect(cli(...reserve, '--fiat-cap', 'USD=30000', '--prices', table).err).toMatch(/not a signed price snapshot/);
    expect(cli(...reserve, '--fiat-cap', 'EUR=30000', '--prices', usd).err).toMatch(/\[POLICY_DENIED\]/);
    ok(...reserve, '--count', '2', '--fiat-cap', 'USD=30000', '--fiat-per-payment', 'USD=20000', '--prices', usd);
    const clone = join(root, 'clone-fiat');
    cpSync(phone, clone, { recursive: true });
    const sign = (deviceDir: string, name: string, amount: bigint) => {
      const out = join(root, `${name}.bin`);
      const f = psbtFile(name, amount, 0n);
      return {
        out,
        r: cli(
          'device',
          'sign',
          '--device-dir',
          deviceDir,
          '--key',
          keyId,
          '--psbt',
          f.file,
          '--offline',
          '--out',
          out,
        ),
      };
    };
    // 206,186 sat is $200.01 (a cent up): past the per-payment limit.
    expect(sign(phone, 'fiat-big', 206_186n).r.err).toMatch(
      /above the allowance's 20000 per payment \[OVER_ALLOWANCE\]/,
    );
    const fromPhone = sign(phone, 'fiat-a', 200_000n); // $194.00
    expect(fromPhone.r.code).toBe(0);
    ok('device', 'key-record', '--device-dir', phone, '--key', keyId, '--out', join(root, 'key.rec'));
    expect(ok('check-package', '--key-record', join(root, 'key.rec'), '--package', fromPhone.out)).toMatchObject({
      ok: true,
      payment: { asset: 'BTC', amount: '200000' },
    });
    // The clone spends the first slot's copy on a payment it never delivers, then pays $106.70.
    sign(clone, 'fiat-spent', 100n);
    const fromClone = sign(clone, 'fiat-b', 110_000n);
    expect(fromClone.r.code).toBe(0);
    expect(ok<{ alreadyCompleted: boolean }>('submit', '--dir', dir, '--package', fromPhone.out).alreadyCompleted).toBe(
      false,
    );
    // (The kill -9 between the two is the test above's; the fiat total is written in the same batch.)
    const refused = cli('submit', '--dir', dir, '--package', fromClone.out);
    expect(refused.err).toMatch(/would pass the allowance's cap of 30000 \(19400 used\) \[OVER_ALLOWANCE\]/);
  }, 120_000);

  it('afterwards every audit chain verifies', () => {
    expect(ok<{ ok: boolean }>('audit', 'verify', '--dir', dir).ok).toBe(true);
  });
});

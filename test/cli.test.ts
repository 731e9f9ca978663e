/**
 * The `tessera` CLI against a real `tessera dev` cluster (coordinator + 3 signer processes):
 * keygen, sign, keys and status with --json, signatures checked by the plain verifier, a clean
 * stop on SIGTERM, and one-line errors with a non-zero exit.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { X509Certificate, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  approveAuthorisation,
  approveDevice,
  decodeAdmission,
  decodeAuthorisation,
  evmAddress,
  fromHex,
  getSuite,
  operatorKeySigner,
  p2wpkhAddress,
  signOperatorLogin,
  toHex,
  tronAddress,
} from '@tessera/core';
import { admitDevice, consoleRequests, devOperatorFiles, openClient } from '@tessera/cli';
import { Device } from '@tessera/device';
import { externalVerifiers } from './verifiers.js';

const MSG = 'de'.repeat(32); // a 32-byte message, e.g. a sighash
const BIN = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
const dir = join(mkdtempSync(join(tmpdir(), 'tessera-cli-')), '.tessera');
let dev: ChildProcess;
const events: string[] = [];

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args, '--dir', dir], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: errorLine(r.stderr) };
}

/** With --json an error is `{"error":{code,message,culprits}}` on stderr (checked below): as "message [CODE]" here. */
function errorLine(stderr: string): string {
  if (!stderr.startsWith('{')) return stderr;
  const e = (JSON.parse(stderr) as { error: { code: string; message: string; culprits: string[] } }).error;
  expect(Object.keys(e).sort()).toEqual(['code', 'culprits', 'message']);
  return `${e.message} [${e.code}]`;
}

beforeAll(async () => {
  dev = spawn(
    process.execPath,
    [BIN, 'dev', '--dir', dir, '--port', '0', '--gateway-port', '0', '--wallet-port', '0', '--json'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: dev.stdout! }).on('line', (l) => {
      const e = (JSON.parse(l) as { event: string }).event;
      events.push(e);
      if (e.startsWith('serving')) resolve();
    });
    dev.once('exit', (c) => reject(new Error(`tessera dev exited ${c}`)));
  });
}, 90_000);

afterAll(() => {
  rmSync(join(dir, '..'), { recursive: true, force: true });
});

interface KpiSample {
  at: number;
  completed: number;
}
let firstKpiSample = 0;

/** Starts `tessera console` on this cluster (port 0, --json) and reads the URLs it prints. */
async function startConsole(...args: string[]): Promise<{ con: ChildProcess; url: string; login: string }> {
  const con = spawn(process.execPath, [BIN, 'console', '--dir', dir, '--port', '0', ...args, '--json'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: con.stdout! }).once('line', resolve);
    con.once('exit', (c) => reject(new Error(`tessera console exited ${c}`)));
  });
  return { con, ...(JSON.parse(first) as { url: string; login: string }) };
}

async function stopProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await exited;
}

describe('tessera CLI on a dev cluster', () => {
  it('dev proves itself with a keygen/sign/verify before serving', () => {
    expect(events.some((e) => /signature verifies/.test(e))).toBe(true);
  });

  /** The keys the keygen tests made, by suite (the HD tests derive from them). */
  const made = new Map<string, { keyId: string; publicKey: string }>();
  it.each(['ed25519', 'secp256k1-tr', 'ecdsa-secp256k1'] as const)(
    'keygen and sign (%s) with --json; the signature verifies',
    (suite) => {
      const k = cli('keygen', '--suite', suite, '--threshold', '2', '--json');
      expect(k.code, k.err).toBe(0);
      const key = JSON.parse(k.out) as {
        keyId: string;
        suite: string;
        threshold: number;
        participants: string[];
        publicKey: string;
      };
      expect(key).toMatchObject({ suite, threshold: 2, participants: ['signer-1', 'signer-2', 'signer-3'] });
      made.set(suite, key);
      expect(fromHex(key.publicKey)).toHaveLength(suite === 'ecdsa-secp256k1' ? 33 : 32);
      const s = cli('sign', '--key', key.keyId, '--message', MSG, '--signers', 'signer-2,signer-3', '--json');
      expect(s.code, s.err).toBe(0);
      const sig = JSON.parse(s.out) as { keyId: string; signature: string; signers: string[]; publicKey: string };
      expect(sig.keyId).toBe(key.keyId);
      expect([...sig.signers].sort()).toEqual(['signer-2', 'signer-3']);
      expect(getSuite(suite).verify(fromHex(sig.signature), fromHex(MSG), fromHex(key.publicKey))).toBe(true);
      // libsodium and OpenSSL (Ed25519), libsecp256k1 (BIP340) accept the cluster's signature too.
      for (const [name, verify] of Object.entries(externalVerifiers(suite)))
        expect(verify(fromHex(sig.signature), fromHex(MSG), fromHex(key.publicKey)), name).toBe(true);
    },
  );

  it.each(['secp256k1-tr', 'ed25519', 'ecdsa-secp256k1'] as const)(
    'HD (%s): derive a child key and its address; sign --path with the child key; the plain verifier accepts it under the child key only',
    (suite) => {
      const k = made.get(suite) as { keyId: string; publicKey: string };
      expect(k).toBeDefined();
      const d = cli('derive', '--key', k.keyId, '--path', 'm/0/5', '--json');
      expect(d.code, d.err).toBe(0);
      const child = JSON.parse(d.out) as {
        path: string;
        publicKey: string;
        address: string;
        addresses?: Record<string, string>;
      };
      expect(child.path).toBe('m/0/5');
      expect(child.publicKey).not.toBe(k.publicKey);
      expect(child.address).toMatch(
        {
          'secp256k1-tr': /^bc1p[02-9ac-hj-np-z]{58}$/,
          ed25519: /^[1-9A-HJ-NP-Za-km-z]{32,44}$/,
          'ecdsa-secp256k1': /^0x[0-9a-fA-F]{40}$/,
        }[suite],
      );
      // An ECDSA key's child pays on EVM chains, TRON and Bitcoin SegWit v0: its three addresses.
      if (suite === 'ecdsa-secp256k1')
        expect(child.addresses).toEqual({
          evm: evmAddress(fromHex(child.publicKey)),
          tron: tronAddress(fromHex(child.publicKey)),
          p2wpkh: p2wpkhAddress(fromHex(child.publicKey)),
        });
      // Another path, another key (the same path gives the same key: `sign --path` below signs under it).
      expect(
        (JSON.parse(cli('derive', '--key', k.keyId, '--path', 'm/0/6', '--json').out) as { publicKey: string })
          .publicKey,
      ).not.toBe(child.publicKey);
      const s = cli('sign', '--key', k.keyId, '--path', 'm/0/5', '--message', MSG, '--json');
      expect(s.code, s.err).toBe(0);
      const sig = JSON.parse(s.out) as { signature: string; publicKey: string };
      expect(sig.publicKey).toBe(child.publicKey);
      expect(getSuite(suite).verify(fromHex(sig.signature), fromHex(MSG), fromHex(child.publicKey))).toBe(true);
      expect(getSuite(suite).verify(fromHex(sig.signature), fromHex(MSG), fromHex(k.publicKey))).toBe(false);
      for (const [name, verify] of Object.entries(externalVerifiers(suite)))
        expect(verify(fromHex(sig.signature), fromHex(MSG), fromHex(child.publicKey)), name).toBe(true);
      // Hardened or malformed paths are refused before anything is signed.
      const bad = cli('sign', '--key', k.keyId, '--path', "m/0'/5", '--message', MSG, '--json');
      expect(bad.code).not.toBe(0);
      expect(bad.err).toMatch(/\[INVALID_ARGUMENT\]/);
    },
  );

  it('sign --eth-tx: an EIP-1559 transaction signed by the ECDSA key (at an HD path); viem recovers the sender from the raw transaction', async () => {
    const k = made.get('ecdsa-secp256k1') as { keyId: string; publicKey: string };
    const file = join(dir, '..', 'tx.json');
    const tx = {
      chainId: 56,
      nonce: 7,
      to: '0x55d398326f99059fF775485246999027B3197955',
      value: '1000000000000000',
      gas: 21000,
      maxFeePerGas: '3000000000',
      maxPriorityFeePerGas: '1000000000',
    };
    writeFileSync(file, JSON.stringify(tx));
    const s = cli('sign', '--key', k.keyId, '--eth-tx', file, '--path', 'm/0/9', '--json');
    expect(s.code, s.err).toBe(0);
    const r = JSON.parse(s.out) as { from: string; rawTransaction: `0x${string}`; hash: string; publicKey: string };
    const child = JSON.parse(cli('derive', '--key', k.keyId, '--path', 'm/0/9', '--json').out) as {
      publicKey: string;
      address: string;
    };
    expect(r.publicKey).toBe(child.publicKey);
    expect(r.from).toBe(child.address);
    const { keccak256, parseTransaction, recoverTransactionAddress } = await import('viem');
    expect(await recoverTransactionAddress({ serializedTransaction: r.rawTransaction as never })).toBe(child.address);
    expect(parseTransaction(r.rawTransaction)).toMatchObject({
      type: 'eip1559',
      chainId: 56,
      nonce: 7,
      to: tx.to.toLowerCase(),
      value: 1000000000000000n,
      gas: 21000n,
    });
    expect(r.hash).toBe(keccak256(r.rawTransaction));
    expect((JSON.parse(s.out) as { payment: unknown }).payment).toEqual({
      asset: 'native',
      amount: '1000000000000000',
      to: tx.to,
      maxFee: String(21000 * 3_000_000_000),
    });
    // A FROST key cannot sign an EVM transaction; a malformed transaction is refused before signing.
    const frost = cli('sign', '--key', (made.get('ed25519') as { keyId: string }).keyId, '--eth-tx', file, '--json');
    expect(frost.err).toMatch(/\[WRONG_SUITE\]/);
    writeFileSync(file, JSON.stringify({ ...tx, to: '0x12' }));
    expect(cli('sign', '--key', k.keyId, '--eth-tx', file, '--json').err).toMatch(/to must be .*\[INVALID_ARGUMENT\]/);
  });

  it('sign --tron-tx: a USDT (TRC-20) transfer built by TronWeb, signed by the ECDSA key at an HD path; TronWeb recovers the payer from the signed transaction', async () => {
    const k = made.get('ecdsa-secp256k1') as { keyId: string; publicKey: string };
    const child = JSON.parse(cli('derive', '--key', k.keyId, '--path', 'm/0/9', '--json').out) as {
      addresses: { tron: string };
    };
    const { TronWeb, Trx, utils } = await import('tronweb');
    const payee = 'TLa2f6VPqDgRE67v1736s7bJ8Ray5wYjU7';
    const tx = {
      visible: false,
      txID: '',
      raw_data_hex: '',
      raw_data: {
        contract: [
          {
            type: 'TriggerSmartContract',
            parameter: {
              type_url: 'type.googleapis.com/protocol.TriggerSmartContract',
              value: {
                owner_address: TronWeb.address.toHex(child.addresses.tron),
                contract_address: TronWeb.address.toHex('TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t'),
                data: `a9059cbb${'0'.repeat(24)}${TronWeb.address.toHex(payee).slice(2)}${25_000_000n.toString(16).padStart(64, '0')}`,
              },
            },
          },
        ],
        ref_block_bytes: 'abcd',
        ref_block_hash: '0123456789abcdef',
        expiration: Date.now() + 60_000,
        timestamp: Date.now(),
        fee_limit: 30_000_000,
      },
    };
    const pb = utils.transaction.txJsonToPb(tx);
    tx.raw_data_hex = utils.transaction.txPbToRawDataHex(pb);
    tx.txID = utils.transaction.txPbToTxID(pb).replace(/^0x/, '');
    const file = join(dir, '..', 'tron-tx.json');
    writeFileSync(file, JSON.stringify(tx));
    const s = cli('sign', '--key', k.keyId, '--tron-tx', file, '--path', 'm/0/9', '--json');
    expect(s.code, s.err).toBe(0);
    const r = JSON.parse(s.out) as {
      txID: string;
      from: string;
      payment: Record<string, unknown>;
      transaction: typeof tx & { signature: string[] };
    };
    expect(r.txID).toBe(tx.txID);
    expect(r.payment).toMatchObject({
      from: child.addresses.tron,
      asset: 'TRC20:TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t',
      amount: '25000000',
      to: payee,
      feeLimit: '30000000',
    });
    expect(utils.transaction.txCheck(r.transaction as never)).toBe(true);
    expect(Trx.ecRecover(r.transaction as never)).toBe(child.addresses.tron);
    // The same transaction under the root key (another address) is refused before anything is signed.
    const other = cli('sign', '--key', k.keyId, '--tron-tx', file, '--json');
    expect(other.err).toMatch(/pays from T\w+; this key's address is T\w+ \[INVALID_ARGUMENT\]/);
  });

  it.each(['ecdsa-secp256k1', 'secp256k1-tr'] as const)(
    'sign --psbt (%s): the input the key spends (at an HD path) is signed and finalised; the witness verifies (libsecp256k1) over an independently computed sighash',
    async (suite) => {
      const btc = await import('@scure/btc-signer');
      const ecc = await import('tiny-secp256k1');
      const k = made.get(suite) as { keyId: string };
      const child = JSON.parse(cli('derive', '--key', k.keyId, '--path', 'm/1/3', '--json').out) as {
        publicKey: string;
      };
      const pk = fromHex(child.publicKey);
      // A secp256k1-tr child key is already its Taproot output key: the output pays to it as is.
      const spend =
        suite === 'ecdsa-secp256k1' ? btc.p2wpkh(pk) : { script: btc.OutScript.encode({ type: 'tr', pubkey: pk }) };
      const amount = 250_000n;
      const tx = new btc.Transaction();
      tx.addInput({ txid: new Uint8Array(randomBytes(32)), index: 0, witnessUtxo: { script: spend.script, amount } });
      tx.addOutputAddress('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', 200_000n);
      tx.addOutput({ script: spend.script, amount: 45_000n }); // change
      const file = join(dir, '..', `spend-${suite}.psbt`);
      writeFileSync(file, Buffer.from(tx.toPSBT()).toString('base64'));
      const s = cli('sign', '--key', k.keyId, '--path', 'm/1/3', '--psbt', file, '--json');
      expect(s.code, s.err).toBe(0);
      const r = JSON.parse(s.out) as { transaction: string; txid: string; payment: { amount: string; fee: string } };
      expect(r.payment).toMatchObject({ amount: '200000', fee: '5000' });
      const signed = btc.Transaction.fromRaw(fromHex(r.transaction));
      expect(signed.id).toBe(r.txid);
      const witness = signed.getInput(0).finalScriptWitness as Uint8Array[];
      if (suite === 'ecdsa-secp256k1') {
        // BIP 143 sighash from btc-signer's own preimage of the unsigned transaction.
        const sighash = tx.preimageWitnessV0(0, btc.p2pkh(pk).script, btc.SigHash.ALL, amount);
        expect(witness).toHaveLength(2);
        expect(toHex(witness[1] as Uint8Array)).toBe(child.publicKey);
        const der = witness[0] as Uint8Array;
        expect(der[der.length - 1]).toBe(btc.SigHash.ALL);
        const compact = secp256k1.Signature.fromBytes(der.subarray(0, -1), 'der').toBytes('compact');
        expect(ecc.verify(sighash, pk, compact, true)).toBe(true);
      } else {
        const sighash = tx.preimageWitnessV1(0, [spend.script], btc.SigHash.DEFAULT, [amount]);
        expect(witness).toHaveLength(1);
        expect(ecc.verifySchnorr(sighash, pk, witness[0] as Uint8Array)).toBe(true);
      }
      // An input that is not this key's output is refused before anything is signed.
      const other = new btc.Transaction();
      other.addInput({
        txid: new Uint8Array(32).fill(1),
        index: 0,
        witnessUtxo: { script: btc.p2wpkh(secp256k1.getPublicKey(secp256k1.utils.randomSecretKey())).script, amount },
      });
      other.addOutputAddress('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', 1000n);
      writeFileSync(file, other.toPSBT());
      expect(cli('sign', '--key', k.keyId, '--path', 'm/1/3', '--psbt', file, '--json').err).toMatch(
        /\[PAYMENT_MISMATCH\]/,
      );
    },
  );

  it('refresh and reshare keep the public key; signatures verify before and after; --json fields as documented', () => {
    const k = JSON.parse(
      cli('keygen', '--suite', 'ed25519', '--threshold', '2', '--participants', 'signer-1,signer-2', '--json').out,
    ) as { keyId: string; publicKey: string };
    const r = cli('refresh', '--key', k.keyId, '--json');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ keyId: k.keyId, epoch: 1, publicKey: k.publicKey });
    const sh = cli(
      'reshare',
      '--key',
      k.keyId,
      '--threshold',
      '3',
      '--participants',
      'signer-1,signer-2,signer-3',
      '--json',
    );
    expect(sh.code, sh.err).toBe(0);
    expect(JSON.parse(sh.out)).toMatchObject({
      keyId: k.keyId,
      epoch: 2,
      threshold: 3,
      participants: ['signer-1', 'signer-2', 'signer-3'],
      publicKey: k.publicKey,
    });
    const s = cli('sign', '--key', k.keyId, '--message', MSG, '--json');
    expect(s.code, s.err).toBe(0);
    const sig = JSON.parse(s.out) as { signature: string; signers: string[] };
    expect(sig.signers).toHaveLength(3);
    expect(getSuite('ed25519').verify(fromHex(sig.signature), fromHex(MSG), fromHex(k.publicKey))).toBe(true);
    const bad = cli(
      'reshare',
      '--key',
      k.keyId,
      '--threshold',
      '4',
      '--participants',
      'signer-1,signer-2,signer-3',
      '--json',
    );
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/threshold must be 2\.\.3.*\[INVALID_ARGUMENT\]/);
  });

  it('operator approval: an unapproved or foreign-approved request is refused POLICY_DENIED by the signers; `tessera approve` with the pinned operator makes it pass', () => {
    const k = JSON.parse(
      cli('keygen', '--suite', 'ed25519', '--threshold', '2', '--participants', 'signer-1,signer-2', '--json').out,
    ) as { keyId: string; publicKey: string };
    const req = join(dir, '..', 'reshare-request.json');
    const a = cli(
      'authorise',
      'reshare',
      '--key',
      k.keyId,
      '--threshold',
      '2',
      '--participants',
      'signer-1,signer-2,signer-3',
      '--out',
      req,
      '--json',
    );
    expect(a.code, a.err).toBe(0);
    expect(JSON.parse(a.out)).toMatchObject({
      approvals: 0,
      operation: 'reshare',
      keyId: k.keyId,
      fromEpoch: 0,
      newThreshold: 2,
    });
    const unapproved = cli(
      'reshare',
      '--key',
      k.keyId,
      '--threshold',
      '2',
      '--participants',
      'signer-1,signer-2,signer-3',
      '--authorisation',
      req,
      '--json',
    );
    expect(unapproved.code).not.toBe(0);
    expect(unapproved.err).toMatch(/needs 1 operator approval\(s\), has 0.*\[POLICY_DENIED\]/);
    // An operator key nobody pinned.
    const rogue = join(dir, '..', 'rogue.operator.json');
    const g = cli('operator', 'keygen', '--out', rogue, '--id', 'rogue', '--json');
    expect(g.code, g.err).toBe(0);
    expect(JSON.parse(g.out).publicKey).toMatch(/^[0-9a-f]{64}$/);
    expect(readFileSync(rogue, 'utf8')).toContain('signSecret');
    const foreign = cli(
      'reshare',
      '--key',
      k.keyId,
      '--threshold',
      '2',
      '--participants',
      'signer-1,signer-2,signer-3',
      '--approve-with',
      rogue,
      '--json',
    );
    expect(foreign.code).not.toBe(0);
    expect(foreign.err).toMatch(/has 0.*\[POLICY_DENIED\]/);
    // The dev cluster's operator approves the request file; then it passes.
    const ap = cli('approve', req, '--approve-with', join(dir, 'operator.json'), '--json');
    expect(ap.code, ap.err).toBe(0);
    expect(JSON.parse(ap.out)).toMatchObject({ approvals: 1 });
    const ok = cli(
      'reshare',
      '--key',
      k.keyId,
      '--threshold',
      '2',
      '--participants',
      'signer-1,signer-2,signer-3',
      '--authorisation',
      req,
      '--json',
    );
    expect(ok.code, ok.err).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({
      epoch: 1,
      threshold: 2,
      participants: ['signer-1', 'signer-2', 'signer-3'],
      publicKey: k.publicKey,
    });
    // A request for another operation or key is refused by the CLI before anything is sent.
    const wrong = cli('refresh', '--key', k.keyId, '--authorisation', req, '--json');
    expect(wrong.code).not.toBe(0);
    expect(wrong.err).toMatch(/authorises a reshare.*\[INVALID_ARGUMENT\]/);
  });

  it("device revoke: every signer checks the operators' approval itself; the dev operator's is accepted, an unpinned key's refused by all (exit 1)", () => {
    const ok = cli('device', 'revoke', '--device', 'lost-phone', '--json');
    expect(ok.code, ok.err).toBe(0);
    expect(JSON.parse(ok.out)).toEqual({
      device: 'lost-phone',
      signers: ['signer-1', 'signer-2', 'signer-3'],
      refused: [],
    });
    const rogue = join(dir, '..', 'rogue2.operator.json');
    expect(cli('operator', 'keygen', '--out', rogue).code).toBe(0);
    const bad = cli('device', 'revoke', '--device', 'other-phone', '--approve-with', rogue, '--json');
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.out)).toMatchObject({ signers: [], refused: ['signer-1', 'signer-2', 'signer-3'] });
  });

  it('keys and status list the cluster', () => {
    const k = cli('keys', '--json');
    expect(k.code).toBe(0);
    expect((JSON.parse(k.out) as unknown[]).length).toBeGreaterThanOrEqual(3);
    const s = cli('status', '--json');
    const st = JSON.parse(s.out) as {
      coordinator: { pid: number };
      signers: { id: string; healthy: boolean; pid?: number; metrics: string }[];
    };
    expect(st.signers.map((x) => x.id)).toEqual(['signer-1', 'signer-2', 'signer-3']);
    expect(st.signers.every((x) => x.healthy && x.pid && x.metrics.startsWith('http://'))).toBe(true);
    // The offline KPIs, read from the coordinator's metrics (no device has paid here yet).
    expect((JSON.parse(s.out) as { offline: unknown }).offline).toMatchObject({
      completed: 0,
      refused: 0,
      successRate: {},
      compromiseIndicators: { reservationReuse: 0, culprits: 0, packagesPastCap: 0 },
    });
    expect(cli('status').out).toMatch(/^offline payments: 0 completed, 0 refused, 0 waiting on devices; success —;/m);
  });

  it("packages lists the cluster's offline package decisions; a bad state is a usage error", () => {
    const r = cli('packages', '--json');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ packages: [], truncated: false });
    expect(cli('packages').out).toMatch(/^no offline packages yet$/m);
    const bad = cli('packages', '--state', 'lost');
    expect(bad.code).toBe(2);
  });

  it("audit verify reports every process's chain intact after keygens and signatures", () => {
    const r = cli('audit', 'verify', '--json');
    expect(r.code, r.err).toBe(0);
    const a = JSON.parse(r.out) as { ok: boolean; processes: { id: string; ok: boolean; count: number }[] };
    expect(a.ok).toBe(true);
    expect(a.processes.map((p) => p.id)).toEqual(['coordinator', 'signer-1', 'signer-2', 'signer-3']);
    // The coordinator recorded the proof's keygen and signature plus the tests' ones.
    expect(a.processes[0]!.count).toBeGreaterThanOrEqual(4);
    expect(a.processes.every((p) => p.ok && p.count > 0)).toBe(true);
  });

  it('certs creates a CA and certificates with the given names', () => {
    const outDir = join(dir, '..', 'certs');
    const r = spawnSync(process.execPath, [BIN, 'certs', '--out', outDir, '--names', 'node-a,node-b', '--json'], {
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const c = JSON.parse(r.stdout) as { ca: string; certs: Record<string, { cert: string; key: string }> };
    expect(Object.keys(c.certs).sort()).toEqual(['node-a', 'node-b']);
    expect(new X509Certificate(readFileSync(c.certs['node-a']!.cert)).subject).toContain('CN=node-a');
    expect(
      new X509Certificate(readFileSync(c.certs['node-a']!.cert)).verify(
        new X509Certificate(readFileSync(c.ca)).publicKey,
      ),
    ).toBe(true);
  });

  it('every process serves tessera_ metrics at the URL status names', async () => {
    const st = JSON.parse(cli('status', '--json').out) as {
      coordinator: { metrics: string };
      signers: { id: string; metrics: string }[];
    };
    const coord = await (await fetch(st.coordinator.metrics)).text();
    for (const m of [
      /tessera_signatures_total\{[^}]*result="ok"/,
      /tessera_keygens_total\{[^}]*result="ok"/,
      /tessera_participant_up\{[^}]*participant="signer-1"[^}]*\} 1/,
      /tessera_nonce_pool_size\{[^}]*participant="signer-2"/,
      /tessera_session_duration_seconds_bucket/,
      /^tessera_build_info\{version="\d+\.\d+\.\d+",nodejs="v[\d.]+",service="coordinator"\} 1$/m,
      /^tessera_key_threshold_max\{[^}]*\} [2-9]$/m,
      /^tessera_keys\{suite="[a-z0-9-]+"[^}]*\} [1-9]/m,
      // The refreshes and reshares above: outcomes and durations.
      /^tessera_lifecycle_sessions_total\{kind="refresh",result="ok",cause=""[^}]*\} [1-9]/m,
      /^tessera_lifecycle_sessions_total\{kind="reshare",result="ok",cause=""[^}]*\} [1-9]/m,
      /^tessera_lifecycle_sessions_total\{kind="reshare",result="error",cause="POLICY_DENIED"[^}]*\} [1-9]/m,
      /^tessera_session_duration_seconds_count\{[^}]*kind="reshare"[^}]*\} [1-9]/m,
    ])
      expect(coord).toMatch(m);
    const signer = await (await fetch(st.signers[0]!.metrics)).text();
    expect(signer).toContain('tessera_signer_signatures_total');
    expect(signer).toMatch(/tessera_signer_link_up(\{[^}]*\})? 1/);
    expect(signer).toMatch(/^tessera_build_info\{version="[^"]+",nodejs="[^"]+",participant="signer-\d"\} 1$/m);
  });

  it('tessera console serves this cluster to whoever has its login link, and no one else', async () => {
    const apps = join(dir, '..', 'apps');
    const built = spawnSync(
      process.execPath,
      [fileURLToPath(new URL('../scripts/build-apps.mjs', import.meta.url)), apps],
      {
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    expect(built.status, built.stderr).toBe(0);
    const { con, url, login } = await startConsole('--apps-dir', apps, '--kpi-every', '200');
    try {
      expect(new URL(url).hostname).toBe('127.0.0.1');
      const secret = /#login=([\w-]+)$/.exec(login)?.[1] as string;
      expect(secret.length).toBeGreaterThanOrEqual(32);
      expect((await fetch(new URL('/api/overview', url))).status).toBe(401);
      expect(
        (await fetch(new URL('/api/overview', url), { headers: { authorization: `Bearer ${secret}x` } })).status,
      ).toBe(401);
      const r = await fetch(new URL('/api/overview', url), { headers: { authorization: `Bearer ${secret}` } });
      expect(r.status).toBe(200);
      const o = (await r.json()) as {
        signers: { id: string; healthy: boolean }[];
        keys: unknown[];
        audit: { ok: boolean };
      };
      expect(o.signers.map((x) => [x.id, x.healthy])).toEqual([
        ['signer-1', true],
        ['signer-2', true],
        ['signer-3', true],
      ]);
      expect(o.keys.length).toBeGreaterThan(0);
      expect(o.audit.ok).toBe(true);
      // Bad input is a typed 400, and changes nothing.
      const bad = await fetch(new URL('/api/keys/refresh', url), {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: '{"keyId": 7}',
      });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('INVALID_ARGUMENT');
      // The KPI history: sampled by the server (here every 200 ms), kept across restarts (below).
      let history: { samples: KpiSample[] } = { samples: [] };
      for (let i = 0; i < 50 && history.samples.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const h = await fetch(new URL('/api/kpis/history', url), { headers: { authorization: `Bearer ${secret}` } });
        history = (await h.json()) as { samples: KpiSample[] };
      }
      expect(history.samples.length).toBeGreaterThanOrEqual(2);
      for (const x of history.samples) {
        expect(x.completed).toBeGreaterThanOrEqual(0);
        expect(x.at).toBeLessThanOrEqual(Date.now());
      }
      firstKpiSample = (history.samples[0] as KpiSample).at;
      const page = await fetch(url);
      expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
      expect(await page.text()).toMatch(/<title>Tessera operator console<\/title>/);
    } finally {
      await stopProcess(con);
    }
  });

  it('tessera console --no-login-link --collect-approvals: only an operator key signs in; refreshes wait for approvals made with the operators’ own keys', async () => {
    const { con, url, login } = await startConsole(
      '--no-login-link',
      '--collect-approvals',
      '--apps-dir',
      join(dir, '..', 'apps'),
    );
    try {
      expect(login).toBe(url); // no secret to print
      // The history the first console wrote is still there after its restart.
      expect((await fetch(new URL('/api/kpis/history', url))).status).toBe(401);
      const origin = new URL(url).origin;
      const post = async (path: string, body?: unknown) => {
        const r = await fetch(new URL(path, url), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          ...(body ? { body: JSON.stringify(body) } : {}),
        });
        return { status: r.status, json: (await r.json()) as Record<string, unknown> & { error?: { code: string } } };
      };
      const challenge = async () => (await post('/api/login/challenge')).json.challenge as string;
      const client = JSON.parse(readFileSync(join(dir, 'client.json'), 'utf8')) as { operator: string };
      const operator = JSON.parse(readFileSync(join(dir, client.operator), 'utf8')) as {
        signSecret: string;
        publicKey: string;
      };
      const seed = fromHex(operator.signSecret);
      // A key no one pinned, another console's origin, a bad signature: refused, typed.
      const refused = [
        signOperatorLogin(new Uint8Array(32).fill(7), origin, await challenge()),
        signOperatorLogin(seed, 'http://127.0.0.1:1', await challenge()),
        { ...signOperatorLogin(seed, origin, await challenge()), signature: '00'.repeat(64) },
        { publicKey: operator.publicKey },
      ];
      for (const body of refused) {
        const r = await post('/api/login', body);
        expect(r.status).toBe(401);
        expect(r.json.error?.code).toBe('UNAUTHENTICATED');
      }
      // The operator's own key: a session token that opens the API.
      const c = await challenge();
      const ok = await post('/api/login', signOperatorLogin(seed, origin, c));
      expect(ok.status).toBe(200);
      expect(ok.json.operator).toBe(operator.publicKey);
      const token = ok.json.token as string;
      const overview = await fetch(new URL('/api/overview', url), { headers: { authorization: `Bearer ${token}` } });
      expect(overview.status).toBe(200);
      // A challenge answers once: the same signature again is refused.
      expect((await post('/api/login', signOperatorLogin(seed, origin, c))).status).toBe(401);
      expect(
        (await fetch(new URL('/api/overview', url), { headers: { authorization: `Bearer ${token}x` } })).status,
      ).toBe(401);

      // The server holds no operator key: an action is a request, approved with the operators' keys.
      const api = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
        const r = await fetch(new URL(path, url), {
          method,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          ...(body ? { body: JSON.stringify(body) } : {}),
        });
        return { status: r.status, json: (await r.json()) as Record<string, unknown> & { error?: { code: string } } };
      };
      const kept = (await api('GET', '/api/kpis/history')).json.samples as KpiSample[];
      expect(kept.map((x) => x.at)).toContain(firstKpiSample);
      const o = (await overview.json()) as { approvesItself: boolean; keys: { keyId: string; epoch: number }[] };
      expect(o.approvesItself).toBe(false);
      const key = o.keys[0] as { keyId: string; epoch: number };
      expect((await api('POST', '/api/keys/refresh', { keyId: key.keyId })).json.error?.code).toBe('POLICY_DENIED');
      expect((await api('POST', '/api/requests', { operation: 'delete', keyId: key.keyId })).status).toBe(400);
      const req = (await api('POST', '/api/requests', { operation: 'refresh', keyId: key.keyId })).json as {
        id: string;
        authorisation: string;
        approvals: unknown[];
      };
      expect(decodeAuthorisation(fromHex(req.authorisation))).toMatchObject({ operation: 'refresh', keyId: key.keyId });
      // Without approvals the signers refuse it, and it stays pending.
      const early = await api('POST', '/api/requests/run', { id: req.id });
      expect([early.status, early.json.error?.code]).toEqual([403, 'POLICY_DENIED']);
      // An approval by a key that is not an operator's, or of other bytes, is refused here already.
      const stranger = approveAuthorisation(operatorKeySigner(new Uint8Array(32).fill(9)), fromHex(req.authorisation));
      const other = (await api('POST', '/api/requests', { operation: 'refresh', keyId: key.keyId })).json as {
        authorisation: string;
      };
      const misplaced = approveAuthorisation(operatorKeySigner(seed), fromHex(other.authorisation));
      expect((await api('POST', '/api/requests/approve', { id: req.id, approval: toHex(stranger) })).status).toBe(403);
      expect((await api('POST', '/api/requests/approve', { id: req.id, approval: toHex(misplaced) })).status).toBe(400);
      expect((await api('POST', '/api/requests/approve', { id: req.id, approval: 'zz' })).status).toBe(400);
      // The operator's approval, made where the key is; twice counts once.
      const approval = toHex(approveAuthorisation(operatorKeySigner(seed), fromHex(req.authorisation)));
      for (let i = 0; i < 2; i++) {
        const r = await api('POST', '/api/requests/approve', { id: req.id, approval });
        expect([r.status, (r.json.approvals as unknown[]).length]).toEqual([200, 1]);
      }
      const ran = await api('POST', '/api/requests/run', { id: req.id });
      expect(ran.status).toBe(200);
      expect(ran.json).toMatchObject({ operation: 'refresh', keyId: key.keyId, epoch: key.epoch + 1 });
      expect((await api('POST', '/api/requests/run', { id: req.id })).status).toBe(404);
      const left = (await api('GET', '/api/requests')).json.requests as { id: string }[];
      expect(left.map((x) => x.id)).not.toContain(req.id);
      // A reshare asked for in the console: bad shapes refused before anything is prepared.
      const full = (await (
        await fetch(new URL('/api/overview', url), { headers: { authorization: `Bearer ${token}` } })
      ).json()) as {
        keys: { keyId: string; threshold: number; participants: string[] }[];
      };
      const k2 = full.keys.find((k) => k.keyId === key.keyId) as {
        keyId: string;
        threshold: number;
        participants: string[];
      };
      for (const bad of [
        { threshold: 0, participants: k2.participants },
        { threshold: 2, participants: ['signer-1', 'signer-1'] },
        { threshold: k2.participants.length + 1, participants: k2.participants },
        { threshold: 2, participants: 'signer-1,signer-2' },
      ])
        expect((await api('POST', '/api/requests', { operation: 'reshare', keyId: key.keyId, ...bad })).status).toBe(
          400,
        );
      const grow = (
        await api('POST', '/api/requests', {
          operation: 'reshare',
          keyId: key.keyId,
          threshold: k2.participants.length,
          participants: k2.participants,
        })
      ).json as { id: string; authorisation: string };
      expect(decodeAuthorisation(fromHex(grow.authorisation))).toMatchObject({
        operation: 'reshare',
        newThreshold: k2.participants.length,
      });
      await api('POST', '/api/requests/approve', {
        id: grow.id,
        approval: toHex(approveAuthorisation(operatorKeySigner(seed), fromHex(grow.authorisation))),
      });
      const reshared = await api('POST', '/api/requests/run', { id: grow.id });
      expect(reshared.status).toBe(200);
      expect(reshared.json).toMatchObject({
        operation: 'reshare',
        threshold: k2.participants.length,
        epoch: key.epoch + 2,
      });
    } finally {
      await stopProcess(con);
    }
  }, 120_000);

  it('collected approvals, admission and device replacement: the new phone admitted, then a reshare request per key with it vouched for and the old one revoked; each runs once approved', async () => {
    // What the console server does with POST /api/requests { operation: 'replace', … } (the HTTP
    // side is the test above): here straight on the request book, against the dev cluster.
    const client = openClient(dir);
    const deviceUrl = (JSON.parse(readFileSync(join(dir, 'client.json'), 'utf8')) as { deviceUrl: string }).deviceUrl;
    const phones: Device[] = [];
    try {
      for (const id of ['phone-a', 'phone-b']) {
        const d = await Device.open({ location: join(dir, '..', id), storageKey: new Uint8Array(randomBytes(32)) });
        phones.push(d);
        await d.init(id);
        const { token } = await client.call<{ token: string }>('IssueEnrolmentToken', { ttlMs: 60_000, label: id });
        await d.enrol(deviceUrl, token);
        if (id === 'phone-a') await admitDevice(client, id, devOperatorFiles(dir));
      }
      const [a, b] = phones as [Device, Device];
      const key = await a.keygen(deviceUrl, { suite: 'ed25519', threshold: 2, with: ['signer-1', 'signer-2'] });
      const key2 = await a.keygen(deviceUrl, { suite: 'ed25519', threshold: 2, with: ['signer-1', 'signer-3'] });
      await b.connect(deviceUrl, { acceptKeygen: true }); // the new phone receives its share over its link
      const operatorFile = (JSON.parse(readFileSync(join(dir, 'client.json'), 'utf8')) as { operator: string })
        .operator;
      const operator = JSON.parse(readFileSync(join(dir, operatorFile), 'utf8')) as {
        signSecret: string;
        publicKey: string;
      };
      const book = consoleRequests(client, () => new Set([operator.publicKey]));
      const code = (p: Promise<unknown>) =>
        p.then(
          () => 'ok',
          (e: { code?: string }) => e.code,
        );
      const seed = fromHex(operator.signSecret);
      // Admission: the operators approve the entry the page decodes from the bytes it signs.
      const admit = await book.create({ operation: 'admit', device: 'phone-b' });
      const entry = decodeAdmission(fromHex(admit.authorisation));
      expect([entry.id, entry.device, admit.operation]).toEqual(['phone-b', true, 'admit']);
      expect(await code(book.run({ id: admit.id }))).toBe('POLICY_DENIED');
      // An authorisation's approval cannot even be made over an admission's bytes.
      expect(() => approveAuthorisation(operatorKeySigner(seed), fromHex(admit.authorisation))).toThrow();
      const stranger = approveDevice(operatorKeySigner(new Uint8Array(32).fill(5)), entry);
      expect(() => book.approve({ id: admit.id, approval: toHex(stranger) })).toThrow(
        /not an operator of this console/,
      );
      book.approve({ id: admit.id, approval: toHex(approveDevice(operatorKeySigner(seed), entry)) });
      expect(await book.run({ id: admit.id })).toMatchObject({ operation: 'admit', device: 'phone-b', approvals: 1 });
      const admitted = await client.call<{ approvals: Uint8Array[] }>('GetDevice', { device: 'phone-b' });
      expect(admitted.approvals).toHaveLength(1);
      expect(await code(book.create({ operation: 'replace', keyId: key.keyId, old: 'phone-a', new: 'phone-a' }))).toBe(
        'INVALID_ARGUMENT',
      );
      expect(await code(book.create({ operation: 'replace', keyId: key.keyId, old: 'phone-b', new: 'phone-a' }))).toBe(
        'INVALID_ARGUMENT',
      );
      expect(
        await code(book.create({ operation: 'replace', keyId: '0000000000000000', old: 'phone-a', new: 'phone-b' })),
      ).toBe('NOT_FOUND');
      // One request per key of phone-a; the last one revokes it.
      const r1 = await book.create({ operation: 'replace', keyId: key.keyId, old: 'phone-a', new: 'phone-b' });
      const r2 = await book.create({
        operation: 'replace',
        keyId: key2.keyId,
        old: 'phone-a',
        new: 'phone-b',
        revoke: true,
      });
      // What the operators approve, decoded from the bytes they sign.
      const auth = decodeAuthorisation(fromHex(r2.authorisation));
      expect(auth).toMatchObject({
        operation: 'reshare',
        keyId: key2.keyId,
        newThreshold: 2,
        revoke: ['phone-a'],
        allowUnpinned: ['phone-b'],
      });
      expect(auth.newParticipants.map((p) => p.id).sort()).toEqual(['phone-b', 'signer-1', 'signer-3']);
      expect(decodeAuthorisation(fromHex(r1.authorisation)).revoke).toEqual([]);
      // Without the approval the signers refuse it, and it stays pending.
      expect(await code(book.run({ id: r1.id }))).toBe('POLICY_DENIED');
      for (const r of [r1, r2])
        book.approve({
          id: r.id,
          approval: toHex(approveAuthorisation(operatorKeySigner(seed), fromHex(r.authorisation))),
        });
      // The revoking one first: refused while phone-a still holds the other key; it stays pending.
      expect(await code(book.run({ id: r2.id }))).toBe('FAILED_PRECONDITION');
      for (const [r, k, signers, revoked] of [
        [r1, key, ['phone-b', 'signer-1', 'signer-2'], undefined],
        [r2, key2, ['phone-b', 'signer-1', 'signer-3'], ['phone-a']],
      ] as const) {
        const ran = (await book.run({ id: r.id })) as Record<string, unknown> & { participants: string[] };
        expect(ran).toMatchObject({
          operation: 'reshare',
          replace: { old: 'phone-a', new: 'phone-b' },
          revoked: revoked ?? [],
          keyId: k.keyId,
          epoch: 1,
          publicKey: k.publicKey,
        });
        expect([...ran.participants].sort()).toEqual(signers);
      }
      // The old phone is revoked: the gateway no longer takes its calls.
      expect(await code(a.reserve(deviceUrl, { keyId: key.keyId, count: 1 }))).toBe('UNAUTHENTICATED');
    } finally {
      for (const d of phones) await d.close().catch(() => {});
      client.close();
    }
  }, 120_000);

  it('tessera console refuses to start where no one could sign in (no link, no operator key)', () => {
    const r = spawnSync(
      process.execPath,
      [BIN, 'console', '--dir', dir, '--port', '0', '--no-login-link', '--login-keys', ',', '--json'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.status).toBe(1);
    expect(errorLine(r.stderr)).toMatch(/no operator could sign in .*\[CONFIG\]/);
  });

  it('an error is one line on stderr and a non-zero exit code', () => {
    const r = cli('sign', '--key', '0000000000000000', '--message', 'aa', '--json');
    expect(r.code).not.toBe(0);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/NOT_FOUND/);
    const bad = cli('sign', '--key', 'x', '--message', 'zz');
    expect(bad.code).not.toBe(0);
  });

  it('SIGTERM stops the dev cluster and all its processes', async () => {
    const exited = new Promise<number | null>((r) => dev.once('exit', (c) => r(c)));
    dev.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});

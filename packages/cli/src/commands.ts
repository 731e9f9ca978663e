/** The API commands: keygen, sign, keys, status. Each prints JSON with --json, a table otherwise. */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  address,
  chainFits,
  ecdsaAddresses,
  finaliseBitcoinInput,
  paymentToJSON,
  readPayment,
  evmAddress,
  createSignIntent,
  decodeKeyRecord,
  decodeMessage,
  deriveKey,
  fromHex,
  getSuite,
  suiteByWireId,
  toHex,
  type SuiteId,
} from '@tessera/core';
import { fetchOfflineKpis } from './kpis.js';
import { authorisationFor } from './operators.js';
import type { Client } from './client.js';
import { CliError } from './errors.js';

interface WireKeyInfo {
  keyId: string;
  suite: number;
  threshold: number;
  participants: string[];
  publicKey: Uint8Array;
  epoch: number;
  createdAt: number;
}

export function keyJson(k: WireKeyInfo) {
  return {
    keyId: k.keyId,
    suite: suiteByWireId(k.suite)?.id ?? String(k.suite),
    threshold: k.threshold,
    participants: k.participants,
    publicKey: toHex(k.publicKey),
    epoch: k.epoch,
  };
}

export async function keygen(c: Client, opts: { suite: string; threshold: number; participants?: string[] }) {
  const suite = getSuite(opts.suite);
  const k = await c.call<WireKeyInfo>('Keygen', {
    suite: suite.wireId,
    threshold: opts.threshold,
    participants: opts.participants ?? [],
  });
  return keyJson(k);
}

/** Refresh or reshare; checks that the public key did not change (the coordinator is not trusted). */
export async function lifecycle(c: Client, method: 'Refresh' | 'Reshare', req: Record<string, unknown>) {
  const before = (await keys(c)).find((k) => k.keyId === req.keyId);
  if (!before) throw new CliError('NOT_FOUND', `no key ${String(req.keyId)}`);
  const k = keyJson(await c.call<WireKeyInfo>(method, req, 180_000));
  if (k.publicKey !== before.publicKey)
    throw new CliError(
      'INTERNAL',
      `the coordinator reports a different public key after ${method.toLowerCase()}: refuse to use it`,
    );
  return k;
}

export async function keys(c: Client) {
  const r = await c.call<{ keys: WireKeyInfo[] }>('ListKeys', {});
  return r.keys.map(keyJson);
}

/** The key's full public record, from the coordinator; checked against the key list's public key. */
export async function keyRecord(c: Client, keyId: string) {
  const r = await c.call<{ keyRecord: Uint8Array }>('GetKey', { keyId });
  return decodeKeyRecord(new Uint8Array(r.keyRecord));
}

/** An HD child key of `keyId`, derived here from the key's public record (not by the coordinator). */
export async function derive(c: Client, opts: { key: string; path: string; network?: 'mainnet' | 'testnet' }) {
  const rec = await keyRecord(c, opts.key);
  const child = deriveKey(rec.key, opts.path);
  return {
    keyId: rec.keyId,
    suite: rec.key.suite.id,
    path: child.path,
    publicKey: toHex(child.publicKey),
    address: address(rec.key.suite, child.publicKey, opts.network ?? 'mainnet'),
    // An ECDSA key pays on EVM chains, TRON and Bitcoin SegWit v0 alike.
    ...(rec.key.suite.scheme === 'ecdsa'
      ? { addresses: ecdsaAddresses(child.publicKey, opts.network ?? 'mainnet') as Record<string, string> }
      : {}),
  };
}

export async function sign(c: Client, opts: Parameters<typeof signMessage>[1] & { psbt?: string; input?: number }) {
  if (opts.psbt !== undefined && [opts.message, opts.messageFile, opts.ethTx, opts.tronTx].some((x) => x !== undefined))
    throw new CliError(
      'INVALID_ARGUMENT',
      'give exactly one of --message HEX, --message-file FILE, --eth-tx FILE, --tron-tx FILE or --psbt FILE',
    );
  return opts.psbt !== undefined ? signPsbt(c, { ...opts, psbt: opts.psbt }) : signMessage(c, opts);
}

async function signMessage(
  c: Client,
  opts: {
    key: string;
    message?: string;
    messageFile?: string;
    ethTx?: string;
    tronTx?: string;
    signers?: string[];
    path?: string;
  },
) {
  if ([opts.message, opts.messageFile, opts.ethTx, opts.tronTx].filter((x) => x !== undefined).length !== 1)
    throw new CliError(
      'INVALID_ARGUMENT',
      'give exactly one of --message HEX, --message-file FILE, --eth-tx FILE, --tron-tx FILE or --psbt FILE',
    );
  // An EVM transaction: the message is its signing hash, computed here from the transaction.
  const eth = opts.ethTx !== undefined ? await import('./eth-tx.js') : undefined;
  const tx = eth?.readEthTx(opts.ethTx as string);
  // A TRON transaction: read (the payment it makes) and its txID computed here.
  const tron = opts.tronTx !== undefined ? await import('./tron-tx.js') : undefined;
  const trx = tron?.readTronTx(opts.tronTx as string);
  const message =
    eth && tx
      ? eth.ethTxDigest(tx)
      : trx
        ? trx.txID
        : opts.message !== undefined
          ? fromHex(opts.message, '--message')
          : new Uint8Array(readFileSync(opts.messageFile as string));
  const info = (await keys(c)).find((k) => k.keyId === opts.key);
  if (!info) throw new CliError('NOT_FOUND', `no key ${opts.key}`);
  if ((tx || trx) && getSuite(info.suite as SuiteId).scheme !== 'ecdsa')
    throw new CliError(
      'WRONG_SUITE',
      `key ${info.keyId} is ${info.suite}: ${tx ? 'EVM' : 'TRON'} transactions need an ecdsa-secp256k1 key`,
    );
  if (getSuite(info.suite as SuiteId).scheme === 'ecdsa' && message.length !== 32)
    throw new CliError(
      'INVALID_ARGUMENT',
      `key ${info.keyId} is ECDSA: it signs a 32-byte digest (e.g. keccak256 of an Ethereum transaction), not ${message.length} bytes`,
    );
  // With --path, the expected key is the child derived here, from the key's public record.
  const expected = opts.path ? (await derive(c, { key: info.keyId, path: opts.path })).publicKey : info.publicKey;
  if (tron && trx) tron.checkTronSender(trx, fromHex(expected));
  const intent = createSignIntent(c.requester, {
    suite: getSuite(info.suite as SuiteId),
    keyId: info.keyId,
    message,
    requestId: new Uint8Array(randomBytes(16)),
    notAfter: Date.now() + 120_000,
    ...(opts.path ? { path: opts.path } : {}),
  });
  const r = await c.call<{ keyId: string; signature: Uint8Array; signers: string[]; publicKey: Uint8Array }>('Sign', {
    intent: decodeMessage('Envelope', intent),
    signers: opts.signers ?? [],
  });
  // The coordinator is untrusted: check what it returns against the key and the message we sent.
  if (
    toHex(r.publicKey) !== expected ||
    !getSuite(info.suite as SuiteId).verify(r.signature, message, fromHex(expected))
  )
    throw new CliError(
      'SIGNATURE_INVALID',
      'the coordinator returned a signature that does not verify for this key and message',
    );
  return {
    keyId: r.keyId,
    signature: toHex(r.signature),
    signers: r.signers,
    publicKey: toHex(r.publicKey),
    ...(opts.path ? { path: opts.path } : {}),
    ...(eth && tx
      ? {
          from: evmAddress(r.publicKey),
          digest: toHex(message),
          ...eth.signedEthTx(tx, r.signature),
          payment: eth.ethPayment(tx) ?? null,
        }
      : {}),
    ...(tron && trx ? tron.signedTronTx(trx, r.signature) : {}),
  };
}

/**
 * `sign --psbt`: one input of a Bitcoin PSBT spent by the key (at `--path`): a Taproot key path
 * (secp256k1-tr) or P2WPKH (ecdsa-secp256k1). The signature hash is computed here from the PSBT
 * (core's payment reader, which also checks that the input is this key's output); the signature is
 * put in and the input finalised with @scure/btc-signer; when every input is final the signed
 * transaction is printed.
 */
async function signPsbt(
  c: Client,
  opts: { key: string; psbt: string; input?: number; signers?: string[]; path?: string },
) {
  const { readPsbt } = await import('./device-io.js');
  const psbt = readPsbt(opts.psbt);
  const info = (await keys(c)).find((k) => k.keyId === opts.key);
  if (!info) throw new CliError('NOT_FOUND', `no key ${opts.key}`);
  if (!chainFits('bitcoin', info.suite as SuiteId))
    throw new CliError(
      'WRONG_SUITE',
      `key ${info.keyId} is ${info.suite}: Bitcoin needs secp256k1-tr or ecdsa-secp256k1`,
    );
  const publicKey = fromHex(
    opts.path ? (await derive(c, { key: info.keyId, path: opts.path })).publicKey : info.publicKey,
  );
  const input = opts.input ?? 0;
  const read = readPayment({ chain: 'bitcoin', tx: psbt, input }, publicKey);
  const r = await signMessage(c, {
    key: opts.key,
    signers: opts.signers,
    path: opts.path,
    message: toHex(read.message),
  });
  const done = finaliseBitcoinInput(psbt, input, publicKey, fromHex(r.signature), (compact) =>
    secp256k1.Signature.fromBytes(compact, 'compact').toBytes('der'),
  );
  return {
    ...r,
    input,
    sighash: toHex(read.message),
    payment: paymentToJSON(read.payment),
    psbt: Buffer.from(done.psbt).toString('base64'),
    // Absent (undefined, left out of --json) until every input is final.
    transaction: done.transaction ? toHex(done.transaction) : undefined,
    txid: done.txid,
  };
}

export async function status(c: Client) {
  const s = await c.call<{
    version: string;
    keys: number;
    startedAt: number;
    metricsUrl: string;
    pid: number;
    participants: {
      id: string;
      connected: boolean;
      keys: number;
      pooledCommitments: number;
      metricsUrl: string;
      pid: number;
      device: boolean;
    }[];
  }>('Status', {});
  const offline = await fetchOfflineKpis(s.metricsUrl);
  return {
    coordinator: {
      address: c.file.coordinator,
      ...(c.file.deviceUrl ? { deviceGateway: c.file.deviceUrl } : {}),
      version: s.version,
      keys: s.keys,
      pid: s.pid,
      metrics: s.metricsUrl,
      startedAt: new Date(s.startedAt).toISOString(),
    },
    devices: s.participants.filter((p) => p.device).map((p) => ({ id: p.id, linked: p.connected, keys: p.keys })),
    signers: s.participants
      .filter((p) => !p.device)
      .map((p) => ({
        id: p.id,
        healthy: p.connected,
        keys: p.keys,
        epoch: 0,
        pooledCommitments: p.pooledCommitments,
        ...(p.pid ? { pid: p.pid } : {}),
        metrics: p.metricsUrl,
      })),
    /** The offline-payment KPIs (null when the coordinator's metrics cannot be read). */
    offline,
  };
}

export interface AuditSummary {
  ok: boolean;
  count: number;
  head: string;
  problemSeq: number;
  reason: string;
}

/** Every process's verification of its own audit chain; `ok` only if all verified. */
export async function auditVerify(c: Client) {
  const r = await c.call<{
    coordinator: AuditSummary;
    participants: { id: string; reachable: boolean; report: AuditSummary | null; error: string }[];
  }>('AuditVerify', {});
  const processes = [
    { id: 'coordinator', reachable: true, ...r.coordinator },
    ...r.participants.map((p) => ({
      id: p.id,
      reachable: p.reachable,
      ...(p.report ?? { ok: false, count: 0, head: '', problemSeq: 0, reason: p.error || 'unreachable' }),
    })),
  ];
  return { ok: processes.every((p) => p.ok), processes };
}

export interface PackageSummary {
  packageId: string;
  device: string;
  keyId: string;
  state: string;
  code: string;
  at: string;
}

/** The cluster's offline package records, newest first. */
export async function packages(c: Client, opts: { device?: string; state?: string; limit?: number } = {}) {
  const r = await c.call<{
    packages: { packageId: string; device: string; keyId: string; state: string; code: string; at: number }[];
    truncated: boolean;
  }>('ListPackages', { device: opts.device ?? '', state: opts.state ?? '', limit: opts.limit ?? 0 });
  return {
    packages: r.packages.map((p): PackageSummary => ({ ...p, at: new Date(Number(p.at)).toISOString() })),
    truncated: r.truncated,
  };
}

/**
 * A new device in, a lost one out: reshares each key (default: every key of the old device) to
 * the new device with the same threshold and public key, approved by the operators, and revokes
 * the old device with the last key. The new device must be linked and accept the key.
 */
export async function replaceDevice(
  c: Client,
  opts: { old: string; new: string; keys?: string[]; approveWith?: string[] },
) {
  const all = await keys(c);
  const ids = opts.keys ?? all.filter((k) => k.participants.includes(opts.old)).map((k) => k.keyId);
  if (!ids.length) throw new CliError('INVALID_ARGUMENT', `${opts.old} holds no key to move`);
  if (opts.old === opts.new) throw new CliError('INVALID_ARGUMENT', 'the new device must be another device');
  const done = [];
  for (const [i, keyId] of ids.entries()) {
    const k = all.find((x) => x.keyId === keyId);
    if (!k) throw new CliError('NOT_FOUND', `no key ${keyId}`);
    if (!k.participants.includes(opts.old))
      throw new CliError('INVALID_ARGUMENT', `${opts.old} is not a participant of key ${keyId}`);
    const participants = [...k.participants.filter((p) => p !== opts.old), opts.new];
    // The old device is revoked with the last key, once nothing of it is needed. The new device
    // is not pinned anywhere: the operators vouch for it (allowUnpinned).
    const revoke = i === ids.length - 1 ? [opts.old] : [];
    const authorisation = await authorisationFor(
      c,
      { keyId, operation: 'reshare', threshold: k.threshold, participants, revoke, allowUnpinned: [opts.new] },
      { ...(opts.approveWith ? { approveWith: opts.approveWith } : {}) },
    );
    done.push(await lifecycle(c, 'Reshare', { keyId, threshold: k.threshold, participants, revoke, authorisation }));
  }
  return { replaced: opts.old, by: opts.new, revoked: true, keys: done };
}

/**
 * What the device commands do with a device directory and the cluster's device gateway: open the
 * sealed store with the directory's `storage.key`, find the gateway URL, read packages and
 * two-device messages in binary or text form, deliver a package as a merchant. Loaded only when a
 * device command runs; with it, the SDK and the encodings those commands use.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { base45Decode, base45Encode, fromHex, packageFromText, suiteByWireId, toHex } from '@tessera/core';
import { Device } from '@tessera/device';
import type { Client } from './client.js';
import { CliError } from './errors.js';
import { resolveDir } from './dir.js';

export { backupFromText, backupToText, combineBackup, splitBackup } from '@tessera/device';
export { checkPackage } from '@tessera/core/merchant';
export { fromHex, toHex } from '@tessera/core';
export { qrSvg, qrTerminal } from './qr.js';
export { CliError, Device };

export function storageKey(deviceDir: string, create: boolean): Uint8Array {
  const f = join(deviceDir, 'storage.key');
  if (!existsSync(f)) {
    if (!create)
      throw new CliError('CONFIG', `no device at ${deviceDir}: run \`tessera device init --device-dir ${deviceDir}\``);
    mkdirSync(deviceDir, { recursive: true, mode: 0o700 });
    writeFileSync(f, randomBytes(32).toString('hex'), { mode: 0o600 });
  }
  return fromHex(readFileSync(f, 'utf8').trim(), 'storage.key');
}

export async function withDevice<T>(deviceDir: string, fn: (d: Device) => Promise<T>, create = false): Promise<T> {
  const dir = resolve(deviceDir);
  const d = await Device.open({ location: join(dir, 'store'), storageKey: storageKey(dir, create) });
  try {
    return await fn(d);
  } finally {
    await d.close();
  }
}

/** The gateway URL(s): --gateway (comma-separated for coordinator replicas), else `deviceUrl` in the cluster's client.json. */
export function gatewayUrl(o: { gateway?: string; dir?: string }): string {
  if (o.gateway) return o.gateway;
  const f = join(resolveDir(o.dir), 'client.json');
  if (!existsSync(f))
    throw new CliError(
      'CONFIG',
      `no cluster at ${resolveDir(o.dir)} (missing client.json): pass --dir or --gateway URL`,
    );
  const url = (JSON.parse(readFileSync(f, 'utf8')) as { deviceUrl?: string }).deviceUrl;
  if (!url)
    throw new CliError(
      'CONFIG',
      'this cluster has no device gateway (deviceUrl missing in client.json): pass --gateway URL',
    );
  return url;
}

/** A backup password from a file or TESSERA_BACKUP_PASSWORD (never from argv, which `ps` shows). */
export function password(o: { passwordFile?: string }): string {
  const p = o.passwordFile
    ? readFileSync(o.passwordFile, 'utf8').replace(/\r?\n$/, '')
    : process.env.TESSERA_BACKUP_PASSWORD;
  if (!p)
    throw new CliError(
      'INVALID_ARGUMENT',
      'give the backup password with --password-file FILE or TESSERA_BACKUP_PASSWORD',
    );
  return p;
}

const COSIGN_TEXT = 'TSC1:';
/** Two-device messages as text for a QR code: "TSC1:" + base45. */
export const cosignText = (b: Uint8Array) => COSIGN_TEXT + base45Encode(b);
/** Reads a two-device message file: binary, or its TSC1: text form. */
export function readCosign(file: string): Uint8Array {
  const raw = readFileSync(file);
  const text = raw.toString('utf8').trim();
  return text.startsWith(COSIGN_TEXT) ? base45Decode(text.slice(COSIGN_TEXT.length)) : new Uint8Array(raw);
}

/** Reads a package file: binary, or its TSP1: text form. */
export function readPackage(file: string): Uint8Array {
  const raw = readFileSync(file);
  const text = raw.toString('utf8').trim();
  return text.startsWith('TSP1:') ? packageFromText(text) : new Uint8Array(raw);
}

export async function submitPackage(c: Client, pkg: Uint8Array) {
  const r = await c.call<{
    packageId: string;
    keyId: string;
    message: Uint8Array;
    signature: Uint8Array;
    publicKey: Uint8Array;
    signers: string[];
    alreadyCompleted: boolean;
  }>('SubmitPackage', { package: pkg });
  const suite = (await c.call<{ keys: { keyId: string; suite: number }[] }>('ListKeys', {})).keys.find(
    (k) => k.keyId === r.keyId,
  );
  // The coordinator is untrusted: check the signature before reporting success.
  const s = suite ? suiteByWireId(suite.suite) : undefined;
  if (!s?.verify(r.signature, r.message, r.publicKey))
    throw new CliError('SIGNATURE_INVALID', 'the coordinator returned a signature that does not verify');
  return {
    packageId: r.packageId,
    keyId: r.keyId,
    message: toHex(r.message),
    signature: toHex(r.signature),
    publicKey: toHex(r.publicKey),
    signers: r.signers,
    alreadyCompleted: r.alreadyCompleted,
  };
}

/** A PSBT from a file: binary, or its base64 or hex text (as wallets export it). */
/**
 * A Solana transaction in its wire form, from a file: raw bytes, or base64 text (what
 * `getBase64EncodedWireTransaction` and wallets' RPC calls use).
 */
export function readSolanaTx(file: string): Uint8Array {
  const raw = new Uint8Array(readFileSync(file));
  const text = new TextDecoder().decode(raw).trim();
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(text) && text.length % 4 === 0) return Uint8Array.from(Buffer.from(text, 'base64'));
  if (raw.length === 0) throw new CliError('INVALID_ARGUMENT', `${file} is empty`);
  return raw;
}

export function readPsbt(file: string): Uint8Array {
  const raw = new Uint8Array(readFileSync(file));
  const magic = [0x70, 0x73, 0x62, 0x74, 0xff]; // "psbt" 0xff
  if (magic.every((b, i) => raw[i] === b)) return raw;
  const text = new TextDecoder().decode(raw).trim();
  const bytes = /^([0-9a-fA-F]{2})+$/.test(text)
    ? Uint8Array.from(Buffer.from(text, 'hex'))
    : /^[A-Za-z0-9+/]+={0,2}$/.test(text)
      ? Uint8Array.from(Buffer.from(text, 'base64'))
      : new Uint8Array(0);
  if (!magic.every((b, i) => bytes[i] === b))
    throw new CliError('INVALID_ARGUMENT', `${file} is not a PSBT (binary, base64 or hex)`);
  return bytes;
}

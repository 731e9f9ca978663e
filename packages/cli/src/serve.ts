/**
 * The serving commands' actions: `tessera console` (the operator console for a cluster) and
 * `tessera dev` (the embedded dev cluster, its proof, the browser wallet and the console).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromHex, getSuite, utf8ToBytes } from '@tessera/core';
import { openClient, resolveDir, type Client } from './client.js';
import { keygen, sign, status } from './commands.js';
import { startDev } from './dev.js';
import { serveWallet, type WalletServer } from './wallet-server.js';
import { serveConsole, type ConsoleServer } from './console-server.js';
import { out } from './program/output.js';

export interface ConsoleCommandOptions {
  dir?: string;
  host: string;
  port: number;
  approveWith?: string[];
  loginKeys?: string[];
  /** false with --no-login-link */
  loginLink: boolean;
  collectApprovals?: boolean;
  kpiEvery: number;
  appsDir?: string;
  json?: boolean;
}

export interface DevCommandOptions {
  dir: string;
  signers: number;
  port: number;
  gatewayPort: number;
  walletPort: number;
  wallet: boolean;
  consolePort: number;
  console: boolean;
  appsDir?: string;
  prove: boolean;
  json?: boolean;
}

export async function runConsole(o: ConsoleCommandOptions): Promise<void> {
  const client = openClient(o.dir);
  const server = await serveConsole({
    client,
    host: o.host,
    port: o.port,
    ...(o.approveWith ? { approveWith: o.approveWith } : {}),
    ...(o.loginKeys ? { loginKeys: o.loginKeys } : {}),
    ...(o.loginLink ? {} : { noLoginLink: true }),
    ...(o.collectApprovals ? { collectApprovals: true } : {}),
    kpiEveryMs: o.kpiEvery,
    ...(o.appsDir ? { dir: join(o.appsDir, 'console') } : {}),
  });
  out(
    !!o.json,
    { url: server.url, login: server.loginUrl },
    () =>
      `operator console: ${server.loginUrl}   (${o.loginLink ? 'this link logs in, or ' : ''}sign in with an operator key; Ctrl-C stops)`,
  );
  const stop = async () => {
    await server.close();
    client.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

export async function runDev(o: DevCommandOptions): Promise<void> {
  const say = (s: string) => process.stdout.write((o.json ? JSON.stringify({ event: s }) : `tessera dev: ${s}`) + '\n');
  const dev = await startDev({
    dir: o.dir,
    signers: o.signers,
    port: o.port,
    gatewayPort: o.gatewayPort,
    onLine: say,
  });
  let wallet: WalletServer | undefined;
  let operatorConsole: { server: ConsoleServer; client: Client } | undefined;
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    say('stopping');
    await wallet?.close();
    await operatorConsole?.server.close();
    operatorConsole?.client.close();
    await dev.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  const dir = resolveDir(o.dir);
  const c = openClient(dir);
  try {
    for (let i = 0; i < 100; i++) {
      const s = await status(c).catch(() => undefined);
      if (s && s.signers.filter((x) => x.healthy).length >= o.signers) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (o.prove) {
      const t = Math.min(2, o.signers);
      const k = await keygen(c, { suite: 'ed25519', threshold: t });
      say(`proof: DKG ${t}-of-${k.participants.length} → key ${k.keyId}, public key ${k.publicKey}`);
      const msg = utf8ToBytes('tessera dev cluster is alive');
      const r = await sign(c, { key: k.keyId, message: Buffer.from(msg).toString('hex') });
      const ok = getSuite('ed25519').verify(fromHex(r.signature), msg, fromHex(k.publicKey));
      say(`proof: signed by ${r.signers.join(' + ')}; signature ${ok ? 'verifies (RFC 8032)' : 'DOES NOT VERIFY'}`);
      if (!ok) process.exitCode = 1;
    }
  } finally {
    c.close();
  }
  if (o.wallet) {
    const gateway = String((JSON.parse(readFileSync(dev.clientFile, 'utf8')) as { deviceUrl?: string }).deviceUrl);
    try {
      wallet = await serveWallet({
        gateway,
        port: o.walletPort,
        ...(o.appsDir ? { dir: join(o.appsDir, 'wallet') } : {}),
      });
      say(
        `browser wallet: ${wallet.url}   (enrol it with a token from the operator console or: npx tessera device token --dir ${o.dir})`,
      );
    } catch (e) {
      say(`browser wallet not served: ${(e as Error).message}`);
    }
  }
  if (o.console) {
    const client = openClient(dir);
    try {
      const server = await serveConsole({
        client,
        port: o.consolePort,
        ...(o.appsDir ? { dir: join(o.appsDir, 'console') } : {}),
      });
      operatorConsole = { server, client };
      say(`operator console: ${server.loginUrl}   (this link logs in; loopback only)`);
    } catch (e) {
      client.close();
      say(`operator console not served: ${(e as Error).message}`);
    }
  }
  say(`serving; in another terminal: npx tessera keygen --threshold 2 --dir ${o.dir}   (Ctrl-C stops)`);
}

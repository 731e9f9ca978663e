/**
 * Serves the browser wallet (apps/wallet, built by scripts/build-wallet.mjs) for `tessera dev`:
 * its files from one directory plus `/config.json` naming the cluster's device gateway, on
 * loopback by default, under a strict content-security policy (scripts from this origin only,
 * no eval; the gateway is the one other origin the page may call).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where `npm start` builds the wallet: apps/wallet/dist in the repository. */
export const DEFAULT_WALLET_DIR = fileURLToPath(new URL('../../../apps/wallet/dist', import.meta.url));

const FILES: Record<string, string> = {
  '/index.html': 'text/html; charset=utf-8',
  '/wallet.js': 'text/javascript; charset=utf-8',
  '/wallet.css': 'text/css; charset=utf-8',
};

export interface WalletServer {
  url: string;
  close(): Promise<void>;
}

/** Starts the wallet's server; fails with a clear message when the wallet was not built. */
export async function serveWallet(opts: {
  dir?: string;
  gateway: string;
  host?: string;
  port?: number;
}): Promise<WalletServer> {
  const dir = opts.dir ?? DEFAULT_WALLET_DIR;
  if (!existsSync(join(dir, 'wallet.js')))
    throw new Error(`the browser wallet is not built in ${dir}: run node scripts/build-wallet.mjs`);
  const gatewayOrigin = new URL(opts.gateway.split(',')[0] ?? opts.gateway).origin;
  const csp = `default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ${gatewayOrigin}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'`;
  const config = JSON.stringify({ gateway: opts.gateway });
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const key = path === '/' ? '/index.html' : path;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed');
      return;
    }
    let body: string | Buffer;
    let type: string;
    if (key === '/config.json') {
      body = config;
      type = 'application/json; charset=utf-8';
    } else if (Object.hasOwn(FILES, key)) {
      body = readFileSync(join(dir, key.slice(1)));
      type = FILES[key] as string;
    } else {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': type,
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      'content-security-policy': csp,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    url: `http://${a.address}:${a.port}/`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

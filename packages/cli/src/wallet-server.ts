/**
 * Serves the browser wallet (apps/wallet) for `tessera dev`: its built files plus `/config.json`
 * naming the cluster's device gateway, the one other origin the page may call.
 */
import { join } from 'node:path';
import { DEFAULT_APPS_DIR, send, startWebServer, type WebServer } from './web.js';

export type WalletServer = WebServer;

export async function serveWallet(opts: {
  /** The built wallet (default apps/dist/wallet). */
  dir?: string;
  gateway: string;
  host?: string;
  port?: number;
}): Promise<WalletServer> {
  const gateways = opts.gateway.split(',').map((u) => new URL(u.trim()).origin);
  return startWebServer({
    app: 'wallet',
    dir: opts.dir ?? join(DEFAULT_APPS_DIR, 'wallet'),
    ...(opts.host ? { host: opts.host } : {}),
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    connect: gateways,
    handle: (req, res, path) => {
      if (path !== '/config.json' || req.method !== 'GET') return false;
      send(res, 200, { gateway: opts.gateway });
      return true;
    },
  });
}

/**
 * The small HTTP server under the web apps `tessera dev` serves (the browser wallet, the operator
 * console): an app's built files from one directory (apps/dist/<app>, scripts/build-apps.mjs),
 * routes the app adds (`handle` answers true when it took the request), a strict
 * content-security policy on every answer, loopback by default.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where `npm start` builds the apps: apps/dist/<app> in the repository. */
export const DEFAULT_APPS_DIR = fileURLToPath(new URL('../../../apps/dist', import.meta.url));

export interface WebServer {
  url: string;
  close(): Promise<void>;
}

export interface WebOptions {
  /** `wallet` or `console`: serves `<dir>/index.html`, `<dir>/<app>.js`, `<dir>/<app>.css`. */
  app: string;
  dir: string;
  host?: string;
  port?: number;
  /** Origins the page may call besides its own (CSP connect-src). */
  connect?: string[];
  handle?: (req: IncomingMessage, res: ServerResponse, path: string) => Promise<boolean> | boolean;
}

export function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

/** The request body as JSON (at most 64 KiB); `{}` when empty. */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > 65_536) throw Object.assign(new Error('request body too large'), { code: 'INVALID_ARGUMENT' });
    chunks.push(c);
  }
  if (!n) return {};
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {}
  throw Object.assign(new Error('the request body must be a JSON object'), { code: 'INVALID_ARGUMENT' });
}

/** A chunk of an app's module, as scripts/build-apps.mjs names them. */
const CHUNK = /^\/chunks\/[A-Za-z0-9_-]{1,64}\.js$/;

export async function startWebServer(o: WebOptions): Promise<WebServer> {
  if (!existsSync(join(o.dir, `${o.app}.js`)))
    throw new Error(`the ${o.app} is not built in ${o.dir}: run node scripts/build-apps.mjs`);
  const files: Record<string, string> = {
    '/index.html': 'text/html; charset=utf-8',
    [`/${o.app}.js`]: 'text/javascript; charset=utf-8',
    [`/${o.app}.css`]: 'text/css; charset=utf-8',
  };
  const csp = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self'${(o.connect ?? []).map((c) => ` ${c}`).join('')}`,
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  const server = createServer((req, res) => {
    res.setHeader('content-security-policy', csp);
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    void (async () => {
      if (o.handle && (await o.handle(req, res, path))) return;
      const key = path === '/' ? '/index.html' : path;
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return send(res, 405, { error: { code: 'INVALID_ARGUMENT', message: 'method not allowed' } });
      // The page's files, and the chunks its module imports (`chunks/<name>.js`, code splitting).
      const chunk = CHUNK.test(key) && existsSync(join(o.dir, key.slice(1)));
      const type = Object.hasOwn(files, key) ? files[key] : chunk ? 'text/javascript; charset=utf-8' : undefined;
      if (!type) return send(res, 404, { error: { code: 'NOT_FOUND', message: 'not found' } });
      const body = readFileSync(join(o.dir, key.slice(1)));
      res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    })().catch((e: unknown) => {
      if (res.headersSent) return res.destroy();
      const code = (e as { code?: string }).code;
      send(res, code === 'INVALID_ARGUMENT' ? 400 : 500, {
        error: { code: code ?? 'INTERNAL', message: code ? (e as Error).message : 'internal error' },
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => resolve());
  });
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    url: `http://${host}:${a.port}/`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

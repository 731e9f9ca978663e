/**
 * Prometheus metrics: a registry with the default process metrics and a tiny HTTP server.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * A fresh registry (never the prom-client global one) with the default process metrics,
 * prefixed `tessera_`, and `labels` as default labels on every metric.
 */
export function createRegistry(labels?: Record<string, string>): Registry {
  const registry = new Registry();
  if (labels !== undefined && Object.keys(labels).length > 0) registry.setDefaultLabels(labels);
  collectDefaultMetrics({ register: registry, prefix: 'tessera_' });
  return registry;
}

/**
 * `tessera_build_info{version, nodejs} 1` on `registry`: which release each process runs (for
 * rolling upgrades and the TesseraMixedVersions alert), the standard *_build_info pattern.
 */
export function buildInfo(registry: Registry, version: string): void {
  new Gauge({
    name: 'tessera_build_info',
    help: 'always 1; the labels say which Tessera release and Node.js this process runs',
    labelNames: ['version', 'nodejs'],
    registers: [registry],
  }).set({ version, nodejs: process.version }, 1);
}

/**
 * Serves `GET /metrics` (Prometheus text format) and `GET /healthz` ('ok') on host:port
 * (default host 127.0.0.1; port 0 = ephemeral). Anything else: 404 (405 for other methods).
 * `url` is the /metrics address a local scraper can use.
 */
export async function startMetricsServer(
  registry: Registry,
  opts: { host?: string; port: number },
): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const host = opts.host ?? '127.0.0.1';
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' && path !== '/healthz') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('method not allowed\n');
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    try {
      const body = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : body);
    } catch {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
    }
  };
  const server = createServer((req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const wildcard = host === '0.0.0.0' || host === '::' || host === '';
  const urlHost = wildcard ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}/metrics`,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

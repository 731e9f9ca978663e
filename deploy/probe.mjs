#!/usr/bin/env node
/**
 * Health probes and a metrics sidecar for the Tessera daemons in containers. Node only, no shell.
 *
 *   node deploy/probe.mjs http   <url>                        exit 0 iff GET <url> answers 200
 *   node deploy/probe.mjs metric <url> <name> <value>          exit 0 iff some sample of metric
 *                                                              <name> at <url> equals <value>
 *   node deploy/probe.mjs grpc   <host:port> [--tls-from <daemon config.json>]
 *                                [--ca f --cert f --key f] [--authority name] [--service name]
 *                                                              exit 0 iff grpc.health.v1 Check
 *                                                              answers SERVING
 *   node deploy/probe.mjs proxy  <listen host:port> <upstream base url>
 *                                                              serve GET/HEAD /metrics and
 *                                                              /healthz from upstream (sidecar)
 *
 * Why this exists (remove the parts the daemons make unnecessary):
 * - The daemons bind their metrics server (/metrics, /healthz) to `metricsHost`, 127.0.0.1 by
 *   default. The manifests keep that default, so only the pod itself can reach the daemon's
 *   server; `proxy` runs as a sidecar in the same pod (same network namespace) and re-serves
 *   just those two paths, read-only, on the pod IP. (Setting `metricsHost: 0.0.0.0` instead
 *   exposes the daemon's server directly and makes the sidecar unnecessary.)
 * - The coordinator's gRPC port requires a client certificate (mTLS), and kubelet's native gRPC
 *   probe cannot present one, so `grpc` performs the standard health check over mTLS from inside
 *   the container, with the daemon's own certificate.
 *
 * Exit codes: 0 healthy, 1 unhealthy, 2 usage error. One line on stderr says why.
 */
import { readFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { createRequire } from 'node:module';

const TIMEOUT_MS = Number(process.env.TESSERA_PROBE_TIMEOUT_MS ?? 4000);

function fail(why, code = 1) {
  process.stderr.write(`probe: ${why}\n`);
  process.exit(code);
}

/** GET (or HEAD) `url` over plain HTTP; resolves {status, headers, body}. */
function httpGet(url, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, timeout: TIMEOUT_MS }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Values of every sample of `name` in a Prometheus text exposition. */
function sampleValues(text, name) {
  const out = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && m[1] === name) out.push(Number(m[3]));
  }
  return out;
}

function flags(args) {
  const f = {};
  for (let i = 0; i < args.length; i += 2) {
    if (!args[i].startsWith('--') || args[i + 1] === undefined) fail(`bad flag ${args[i]}`, 2);
    f[args[i].slice(2)] = args[i + 1];
  }
  return f;
}

async function probeHttp(url) {
  const r = await httpGet(url);
  if (r.status !== 200) fail(`${url} answered ${r.status}`);
}

async function probeMetric(url, name, want) {
  const r = await httpGet(url);
  if (r.status !== 200) fail(`${url} answered ${r.status}`);
  const values = sampleValues(r.body.toString('utf8'), name);
  if (!values.includes(Number(want))) fail(`${name} is ${values.length ? values.join(',') : 'absent'}, want ${want}`);
}

/** grpc.health.v1.Health/Check with hand-encoded protobuf (no .proto file needed). */
async function probeGrpc(target, f) {
  // @grpc/grpc-js is a dependency of @tessera/runtime: resolve it from there, wherever npm put it.
  const req = createRequire(import.meta.resolve('@tessera/runtime'));
  const grpc = req('@grpc/grpc-js');
  let tls;
  if (f['tls-from']) {
    tls = JSON.parse(readFileSync(f['tls-from'], 'utf8')).tls;
    if (!tls) fail(`${f['tls-from']} has no tls section`, 2);
  } else if (f.ca || f.cert || f.key) {
    tls = { ca: f.ca, cert: f.cert, key: f.key };
  }
  const creds = tls
    ? grpc.credentials.createSsl(readFileSync(tls.ca), readFileSync(tls.key), readFileSync(tls.cert))
    : grpc.credentials.createInsecure();
  const options = f.authority
    ? { 'grpc.ssl_target_name_override': f.authority, 'grpc.default_authority': f.authority }
    : {};
  const client = new grpc.Client(target, creds, options);
  const service = Buffer.from(f.service ?? '', 'utf8');
  // HealthCheckRequest { string service = 1; }
  const body = service.length ? Buffer.concat([Buffer.from([0x0a, service.length]), service]) : Buffer.alloc(0);
  const status = await new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      (b) => b,
      (b) => b,
      body,
      { deadline: Date.now() + TIMEOUT_MS },
      (err, res) => {
        client.close();
        if (err) return reject(new Error(err.details || err.message));
        // HealthCheckResponse { ServingStatus status = 1; } SERVING = 1; default (absent) = 0.
        resolve(res.length >= 2 && res[0] === 0x08 ? res[1] : 0);
      },
    );
  });
  if (status !== 1) fail(`health status ${status} (1 = SERVING)`);
}

/** Re-serves GET/HEAD /metrics and /healthz of `upstream` on `listen`; runs until SIGTERM. */
function proxy(listen, upstream) {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(i + 1));
  if (i < 0 || !Number.isInteger(port)) fail(`bad listen address ${listen}`, 2);
  const base = upstream.replace(/\/+$/, '');
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' && path !== '/healthz')
      return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { allow: 'GET, HEAD' }).end();
    httpGet(`${base}${path}`, req.method).then(
      (r) => {
        const type = r.headers['content-type'];
        res.writeHead(r.status, type ? { 'content-type': type } : {}).end(req.method === 'HEAD' ? undefined : r.body);
      },
      (e) => res.writeHead(502, { 'content-type': 'text/plain' }).end(`upstream ${base}: ${e.message}\n`),
    );
  });
  server.listen(port, host, () => {
    const a = server.address();
    process.stdout.write(JSON.stringify({ ready: true, proxy: `${a.address}:${a.port}`, upstream: base }) + '\n');
  });
  server.on('error', (e) => fail(`cannot listen on ${listen}: ${e.message}`));
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function main() {
  const [mode, ...rest] = process.argv.slice(2);
  if (mode === 'http' && rest.length === 1) return probeHttp(rest[0]);
  if (mode === 'metric' && rest.length === 3) return probeMetric(rest[0], rest[1], rest[2]);
  if (mode === 'grpc' && rest.length >= 1) return probeGrpc(rest[0], flags(rest.slice(1)));
  if (mode === 'proxy' && rest.length === 2) return proxy(rest[0], rest[1]);
  fail(
    'usage: probe.mjs http <url> | metric <url> <name> <value> | grpc <host:port> [flags] | proxy <listen> <upstream>',
    2,
  );
}

main().catch((e) => fail(e instanceof Error ? e.message : String(e)));

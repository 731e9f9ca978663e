import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Counter } from 'prom-client';
import { createRegistry, startMetricsServer } from '@tessera/runtime';

const registry = createRegistry({ node: 'test-node' });
const counter = new Counter({
  name: 'tessera_test_total',
  help: 'test counter',
  labelNames: ['kind'],
  registers: [registry],
});
let srv: Awaited<ReturnType<typeof startMetricsServer>>;

beforeAll(async () => {
  srv = await startMetricsServer(registry, { port: 0 });
});
afterAll(async () => {
  await srv?.close();
});

describe('metrics', () => {
  it('reports its URL', () => {
    expect(srv.url).toBe(`http://127.0.0.1:${srv.port}/metrics`);
    expect(srv.port).toBeGreaterThan(0);
  });

  it('serves counters and default process metrics over HTTP', async () => {
    counter.inc({ kind: 'a' });
    counter.inc({ kind: 'a' }, 2);
    const res = await fetch(srv.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('# TYPE tessera_test_total counter');
    expect(text).toMatch(/^tessera_test_total\{kind="a",node="test-node"\} 3$/m);
    expect(text).toContain('tessera_process_cpu_user_seconds_total');
    expect(text).toContain('tessera_nodejs_eventloop_lag_seconds');

    counter.inc({ kind: 'a' });
    expect(await (await fetch(srv.url)).text()).toMatch(/^tessera_test_total\{kind="a",node="test-node"\} 4$/m);
  });

  it('/healthz is 200; unknown paths 404; POST 405', async () => {
    const base = srv.url.replace(/\/metrics$/, '');
    const h = await fetch(`${base}/healthz`);
    expect(h.status).toBe(200);
    expect(await h.text()).toBe('ok\n');
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(srv.url, { method: 'POST' })).status).toBe(405);
  });

  it('close() stops the server', async () => {
    const other = await startMetricsServer(createRegistry(), { port: 0 });
    expect((await fetch(other.url)).status).toBe(200);
    await other.close();
    await expect(fetch(other.url)).rejects.toThrow();
  });
});

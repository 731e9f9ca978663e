/**
 * deploy/monitoring: the alert rules load in Prometheus's own checker and behave as their unit
 * tests say, the PrometheusRule is the rules file, and every query in the rules and the Grafana
 * dashboard names metrics (and labels) that the coordinator and signers really export.
 * promtool comes from Debian's `prometheus` package (scripts/test-deps.sh installs it).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEVICE_CLASSES, coordinatorMetrics } from '@tessera/coordinator';
import { createRegistry, reloadMetrics } from '@tessera/runtime';
import { signerMetrics } from '@tessera/signer';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = new URL('..', import.meta.url).pathname;
const DIR = join(ROOT, 'deploy/monitoring');
const tmp = mkdtempSync(join(tmpdir(), 'tessera-monitoring-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function promtool(...args: string[]): { code: number; out: string } {
  const r = spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8' });
  if (r.error) throw new Error(`promtool: ${r.error.message} (run scripts/test-deps.sh)`);
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  labels?: Record<string, string>;
}
const rules = parse(readFileSync(join(DIR, 'rules.yaml'), 'utf8')) as { groups: { name: string; rules: Rule[] }[] };
const alertRules = rules.groups.flatMap((g) => g.rules);

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
}
const dashboard = JSON.parse(readFileSync(join(DIR, 'grafana-dashboard.json'), 'utf8')) as {
  uid: string;
  panels: Panel[];
};
const dashboardExprs = dashboard.panels.flatMap((p) =>
  (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })),
);
/** Grafana's interval variables as Prometheus sees them after substitution. */
const substitute = (expr: string) => expr.replaceAll('$__rate_interval', '5m').replaceAll('$__range', '6h');

/** Every metric the processes export, with its label names (default labels included). */
function exported(): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const add = (registry: ReturnType<typeof createRegistry>, defaults: string[]) => {
    for (const m of registry.getMetricsAsArray() as unknown as {
      name: string;
      labelNames?: string[];
      type?: string;
    }[]) {
      const labels = new Set([...(m.labelNames ?? []), ...defaults]);
      out.set(m.name, new Set([...(out.get(m.name) ?? []), ...labels]));
      // prom-client reports histograms by their base name; Prometheus stores the three series.
      if (m.constructor.name === 'Histogram')
        for (const s of ['_bucket', '_sum', '_count']) out.set(m.name + s, new Set([...labels, 'le']));
    }
  };
  // Both daemons also register the reload metrics (config hash, last reload, certificate expiry).
  const c = createRegistry({ service: 'coordinator' });
  coordinatorMetrics(c, { version: '0.0.0-test' });
  reloadMetrics(c);
  add(c, ['service']);
  const s = createRegistry({ participant: 'signer-1' });
  signerMetrics(s, { version: '0.0.0-test' });
  reloadMetrics(s);
  add(s, ['participant']);
  return out;
}
const metrics = exported();

/** The metric names and the label matchers `{name op "…"}` of a PromQL expression. */
function selectors(expr: string): { metric: string; labels: string[] }[] {
  const out: { metric: string; labels: string[] }[] = [];
  for (const m of expr.matchAll(/\b(tessera_[a-z0-9_]+)(\{([^}]*)\})?/g)) {
    const labels = [...(m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)].map((l) => l[1] as string);
    out.push({ metric: m[1] as string, labels });
  }
  return out;
}
/** Labels named in `by (…)`, `without (…)` and `on (…)` clauses. */
function groupingLabels(expr: string): string[] {
  return [...expr.matchAll(/\b(?:by|without|on|ignoring)\s*\(([^)]*)\)/g)].flatMap((m) =>
    (m[1] as string)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

describe('deploy/monitoring', () => {
  it('promtool accepts the rules file, and every rule has a severity of page, warn or info', () => {
    const r = promtool('check', 'rules', 'rules.yaml');
    expect(r.out).toContain(`SUCCESS: ${alertRules.length} rules found`);
    expect(r.code).toBe(0);
    for (const rule of alertRules) expect(['page', 'warn', 'info'], rule.alert).toContain(rule.labels?.severity);
  });

  it('the alerts fire, and stay quiet, as rules.test.yaml says (promtool test rules)', () => {
    const r = promtool('test', 'rules', 'rules.test.yaml');
    expect(r.out).toContain('SUCCESS');
    expect(r.code).toBe(0);
  });

  it('a rule that is wrong fails its unit test (the tests can fail)', () => {
    // The same tests against a rules file whose culprit alert no longer looks at culprits.
    const broken = readFileSync(join(DIR, 'rules.yaml'), 'utf8').replace(
      'increase(tessera_culprits_total[15m])',
      'increase(tessera_culprits_total{code="NONE"}[15m])',
    );
    writeFileSync(join(tmp, 'rules.yaml'), broken);
    writeFileSync(join(tmp, 'rules.test.yaml'), readFileSync(join(DIR, 'rules.test.yaml')));
    const r = spawnSync('promtool', ['test', 'rules', 'rules.test.yaml'], { cwd: tmp, encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(`${r.stdout}${r.stderr}`).toContain('TesseraCulpritBlamed');
  });

  it('every alert named in docs/OPERATIONS.md exists, and every alert has a unit test', () => {
    const tests = readFileSync(join(DIR, 'rules.test.yaml'), 'utf8');
    const tested = alertRules.filter((r) => tests.includes(`alertname: ${r.alert}`)).map((r) => r.alert);
    // The pages all have tests; warn/info rules at least half (they are the same shapes).
    for (const r of alertRules.filter((x) => x.labels?.severity === 'page')) expect(tested).toContain(r.alert);
    expect(tested.length).toBeGreaterThanOrEqual(alertRules.length / 2);
    const ops = readFileSync(join(ROOT, 'docs/OPERATIONS.md'), 'utf8');
    for (const name of ops.matchAll(/`(Tessera[A-Z][A-Za-z]+)`/g))
      expect(alertRules.map((r) => r.alert)).toContain(name[1]);
  });

  it('prometheus-rule.yaml is the rules file as a PrometheusRule (scripts/gen-monitoring.mjs --check)', () => {
    execFileSync(process.execPath, [join(ROOT, 'scripts/gen-monitoring.mjs'), '--check'], { stdio: 'pipe' });
    const resource = parse(readFileSync(join(DIR, 'prometheus-rule.yaml'), 'utf8')) as {
      kind: string;
      spec: { groups: unknown };
    };
    expect(resource.kind).toBe('PrometheusRule');
    expect(resource.spec.groups).toEqual(rules.groups);
  });

  it('the ServiceMonitor selects the Services of deploy/k8s by their labels and scrapes their `metrics` port', () => {
    const k = parse(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8')) as {
      resources: string[];
      configMapGenerator: { files: string[] }[];
    };
    expect(k.resources.sort()).toEqual(['prometheus-rule.yaml', 'service-monitor.yaml']);
    expect(k.configMapGenerator[0]?.files).toEqual(['grafana-dashboard.json']);
    const sm = parse(readFileSync(join(DIR, 'service-monitor.yaml'), 'utf8')) as {
      kind: string;
      spec: {
        selector: { matchExpressions: { key: string; operator: string; values: string[] }[] };
        endpoints: { port: string; honorLabels?: boolean }[];
      };
    };
    expect(sm.kind).toBe('ServiceMonitor');
    expect(sm.spec.endpoints[0]?.honorLabels).toBe(true);
    const services = ['coordinator.yaml', 'signers.yaml'].flatMap((f) =>
      readFileSync(join(ROOT, 'deploy/k8s', f), 'utf8')
        .split(/^---$/m)
        .map(
          (d) =>
            parse(d) as {
              kind?: string;
              metadata?: { labels?: Record<string, string> };
              spec?: { ports?: { name: string }[] };
            },
        )
        .filter((d) => d?.kind === 'Service'),
    );
    expect(services).toHaveLength(2);
    for (const svc of services) {
      for (const e of sm.spec.selector.matchExpressions)
        expect(e.values, `${e.key} of ${JSON.stringify(svc.metadata)}`).toContain(svc.metadata?.labels?.[e.key]);
      expect(svc.spec?.ports?.map((p) => p.name)).toContain(sm.spec.endpoints[0]?.port);
    }
  });

  it('every metric and label the rules and the dashboard query is exported by a coordinator or a signer', () => {
    const exprs = [
      ...alertRules.map((r) => ({ where: `rule ${r.alert}`, expr: r.expr })),
      ...dashboardExprs.map((d) => ({ where: `panel "${d.panel}"`, expr: d.expr })),
    ];
    expect(exprs.length).toBeGreaterThan(40);
    const allLabels = new Set([...metrics.values()].flatMap((s) => [...s]));
    for (const { where, expr } of exprs) {
      const sel = selectors(expr);
      expect(sel.length, `${where} names no tessera metric`).toBeGreaterThan(0);
      for (const s of sel) {
        expect(metrics.has(s.metric), `${where}: ${s.metric} is not exported`).toBe(true);
        for (const l of s.labels) expect(metrics.get(s.metric), `${where}: ${s.metric} has no label ${l}`).toContain(l);
      }
      for (const l of groupingLabels(expr)) expect(allLabels, `${where}: no metric has the label ${l}`).toContain(l);
    }
  });

  it('every dashboard query is valid PromQL (promtool parses them as recording rules)', () => {
    expect(dashboard.uid).toBe('tessera-overview');
    expect(dashboardExprs.length).toBeGreaterThan(20);
    const file = join(tmp, 'dashboard-queries.yaml');
    const body = dashboardExprs
      .map(
        (d, i) => `      - record: tessera:dashboard_query_${i}\n        expr: ${JSON.stringify(substitute(d.expr))}\n`,
      )
      .join('');
    writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${body}`);
    const r = promtool('check', 'rules', file);
    expect(r.out).toContain(`SUCCESS: ${dashboardExprs.length} rules found`);
    expect(r.code).toBe(0);
  });

  it('no metric carries a per-device label (cardinality), and tessera_build_info says the version', async () => {
    // `device_class` is the one device label: its values come from a fixed list, never from a device.
    expect([...DEVICE_CLASSES]).toEqual(['ios', 'android', 'browser', 'desktop', 'cli', 'pos', 'other']);
    for (const [name, labels] of metrics)
      for (const l of labels)
        expect(/device/i.test(l) && l !== 'device_class', `${name} has the label ${l}`).toBe(false);
    const c = createRegistry({ service: 'coordinator' });
    coordinatorMetrics(c, { version: '1.2.3' });
    const text = await c.metrics();
    expect(text).toMatch(/^tessera_build_info\{version="1\.2\.3",nodejs="v\d+\.\d+\.\d+",service="coordinator"\} 1$/m);
  });
});

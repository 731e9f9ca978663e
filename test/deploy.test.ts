/**
 * deploy/: the Kubernetes manifests, the Compose file, the daemon configs, the Dockerfile and the
 * probe script, validated without a cluster or a container engine.
 *
 * Kubernetes objects are checked twice with the `kubernetes-models` package:
 * 1. `new Model(obj).validate()`: its JSON-Schema validators from the Kubernetes OpenAPI spec
 *    (types, required fields, formats). Kubernetes' schemas allow unknown properties, so a
 *    misspelt field passes this layer;
 * 2. the same package's TypeScript declarations, by compiling `const x: IStatefulSet = <object>`
 *    in memory: excess-property checks reject any unknown field, at any depth, and string-literal
 *    unions reject invalid enum values.
 * Daemon configs are loaded with the daemons' own loadConfig and zod schemas, with the
 * environment each container gets (Kubernetes `$(VAR)` expansion included).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gauge } from 'prom-client';
import { CoordinatorConfigSchema } from '@tessera/coordinator';
import { SignerConfigSchema } from '@tessera/signer';
import {
  createDevPki,
  createRegistry,
  envName,
  loadConfig,
  serverCredentials,
  startMetricsServer,
  startServer,
} from '@tessera/runtime';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Obj = Record<string, any>;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
const K8S = join(DEPLOY, 'k8s');
const PROBE = join(DEPLOY, 'probe.mjs');
const read = (p: string) => readFileSync(p, 'utf8');
const tmp = mkdtempSync(join(tmpdir(), 'tessera-deploy-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// Kubernetes: parsing and schema validation

interface Doc {
  where: string;
  obj: Obj;
}

/** Every non-empty document of a multi-document YAML text; a syntax error throws. */
function yamlDocs(text: string, file: string): Doc[] {
  const out: Doc[] = [];
  parseAllDocuments(text).forEach((d, i) => {
    if (d.errors.length > 0) throw new Error(`${file}#${i}: ${d.errors.map((e) => e.message).join('; ')}`);
    const obj = d.toJS() as Obj | null;
    if (obj !== null) out.push({ where: `${file}#${i} ${obj.kind ?? '?'}/${obj.metadata?.name ?? '?'}`, obj });
  });
  return out;
}

/** kubernetes-models module path of an apiVersion/kind: v1 → v1/Kind, apps/v1 → apps/v1/Kind. */
function modelPath(apiVersion: string, kind: string): string {
  if (!/^[A-Za-z0-9.]+(\/[A-Za-z0-9]+)?$/.test(apiVersion) || !/^[A-Z][A-Za-z0-9]+$/.test(kind)) {
    throw new Error(`bad apiVersion/kind ${apiVersion} ${kind}`);
  }
  return `kubernetes-models/${apiVersion}/${kind}`;
}

/** Layer 1: the model's JSON-Schema validation. Returns error messages (empty = valid). */
async function schemaErrors(docs: Doc[]): Promise<string[]> {
  const errors: string[] = [];
  for (const d of docs) {
    const { apiVersion, kind } = d.obj;
    if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
      errors.push(`${d.where}: apiVersion and kind are required`);
      continue;
    }
    let Model: (new (data: Obj) => { validate(): void }) | undefined;
    try {
      Model = ((await import(/* @vite-ignore */ modelPath(apiVersion, kind))) as Obj)[kind];
    } catch {
      Model = undefined;
    }
    if (typeof Model !== 'function') {
      errors.push(`${d.where}: unknown apiVersion/kind ${apiVersion} ${kind}`);
      continue;
    }
    try {
      new Model(d.obj).validate();
    } catch (e) {
      errors.push(`${d.where}: ${(e as Error).message}`);
    }
  }
  return errors;
}

/** Layer 2: the model's TypeScript type, with excess-property checks. Returns error messages. */
function typeErrors(docs: Doc[]): string[] {
  const file = join(ROOT, '__deploy_manifest_typecheck__.ts');
  let src = '';
  const spans: Array<{ start: number; end: number; where: string }> = [];
  docs.forEach((d, i) => {
    const { apiVersion, kind } = d.obj;
    const start = src.length;
    src += `import type { I${kind} as T${i} } from '${modelPath(apiVersion, kind)}';\nexport const d${i}: T${i} = ${JSON.stringify(d.obj, null, 1)};\n`;
    spans.push({ start, end: src.length, where: d.where });
  });
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (f, lang, ...rest) =>
    resolve(f) === file ? ts.createSourceFile(f, src, lang) : getSourceFile(f, lang, ...rest);
  host.fileExists = (f) => resolve(f) === file || fileExists(f);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((diag) => {
    const where =
      diag.file && resolve(diag.file.fileName) === file && diag.start !== undefined
        ? (spans.find((s) => diag.start! >= s.start && diag.start! < s.end)?.where ?? '?')
        : (diag.file?.fileName ?? '?');
    let path = '';
    if (diag.file && diag.start !== undefined && resolve(diag.file.fileName) === file) {
      path = ` (at ${src.slice(diag.start, diag.start + 60).split('\n')[0]})`;
    }
    return `${where}: ${ts.flattenDiagnosticMessageText(diag.messageText, ' ')}${path}`;
  });
}

async function manifestErrors(docs: Doc[]): Promise<string[]> {
  return [...(await schemaErrors(docs)), ...typeErrors(docs)];
}

const manifestFiles = readdirSync(K8S)
  .filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml')
  .sort();
const docsByFile = new Map(manifestFiles.map((f) => [f, yamlDocs(read(join(K8S, f)), f)]));
const allDocs = [...docsByFile.values()].flat();
const objects = allDocs.map((d) => d.obj);
const find = (kind: string, name: string): Obj => {
  const o = objects.find((x) => x.kind === kind && x.metadata?.name === name);
  if (!o) throw new Error(`no ${kind}/${name} in deploy/k8s`);
  return o;
};

describe('Kubernetes manifests (deploy/k8s)', () => {
  it('every file parses and every object validates against the Kubernetes schemas, strictly', async () => {
    expect(manifestFiles).toEqual(
      expect.arrayContaining([
        'namespace.yaml',
        'coordinator.yaml',
        'signers.yaml',
        'networkpolicies.yaml',
        'secrets.yaml',
      ]),
    );
    expect(allDocs.length).toBeGreaterThanOrEqual(12);
    expect(await manifestErrors(allDocs)).toEqual([]);
  });

  it('a deliberately broken copy of a manifest fails validation', async () => {
    const text = read(join(K8S, 'signers.yaml'));
    const cases: Array<[from: string | RegExp, to: string, expected: RegExp]> = [
      // A wrong type (both layers).
      ['replicas: 3', 'replicas: "three"', /replicas/],
      // A misspelt field, which Kubernetes' own schemas let through (TypeScript layer).
      [/imagePullPolicy: IfNotPresent/, 'imagePulPolicy: IfNotPresent', /imagePulPolicy/],
      // An unknown field deep inside a container's security context.
      ['readOnlyRootFilesystem: true', 'readOnlyRootFileSystem: true', /readOnlyRootFileSystem/],
      // An invalid enum value.
      ['whenUnsatisfiable: DoNotSchedule', 'whenUnsatisfiable: Sometimes', /Sometimes/],
      // A missing required field (a container without a name).
      ['- name: signer\n          image:', '- image:', /required property name|"name"' is missing/],
      // An unknown kind.
      ['kind: PodDisruptionBudget', 'kind: PodDisruptionBudgett', /unknown apiVersion\/kind/],
    ];
    const variants = cases.map(([from, to], i) => {
      const copy = text.replace(from, to);
      expect(copy, String(from)).not.toBe(text);
      return yamlDocs(copy, `broken-${i}`);
    });
    // One compile for every variant; each error is attributed to its variant by the file label.
    const errors = await manifestErrors(variants.flat());
    cases.forEach(([from, , expected], i) => {
      const mine = errors.filter((e) => e.startsWith(`broken-${i}#`));
      expect(mine.join('\n'), `${String(from)} must fail`).toMatch(expected);
    });
    // The intact file, checked the same way, has no error.
    expect(await manifestErrors(yamlDocs(text, 'signers.yaml'))).toEqual([]);
    // Not even YAML.
    expect(() => yamlDocs(text.replace('kind: StatefulSet', 'kind: [StatefulSet'), 'x')).toThrow();
  });

  it('kustomization.yaml lists every manifest except the placeholder secrets, and nothing missing', () => {
    const k = parseYaml(read(join(K8S, 'kustomization.yaml'))) as Obj;
    expect(k.apiVersion).toBe('kustomize.config.k8s.io/v1beta1');
    expect(k.kind).toBe('Kustomization');
    expect(k.namespace).toBe('tessera');
    const resources = k.resources as string[];
    for (const r of resources) expect(existsSync(join(K8S, r)), r).toBe(true);
    expect([...resources].sort()).toEqual(manifestFiles.filter((f) => f !== 'secrets.yaml'));
    // Namespaced objects name the namespace themselves too (kubectl apply -f works per file).
    for (const o of objects)
      if (o.kind !== 'Namespace') expect(o.metadata?.namespace, `${o.kind}/${o.metadata?.name}`).toBe('tessera');
  });

  const workloads = objects.filter((o) => o.kind === 'StatefulSet' || o.kind === 'Deployment');

  it('pods are locked down: non-root, read-only root, no capabilities, RuntimeDefault seccomp, resources, probes', () => {
    expect(workloads.map((w) => w.metadata.name).sort()).toEqual(['coordinator', 'signer']);
    for (const w of workloads) {
      const pod = w.spec.template.spec as Obj;
      const name = `${w.kind}/${w.metadata.name}`;
      expect(pod.automountServiceAccountToken, name).toBe(false);
      expect(pod.securityContext.runAsNonRoot, name).toBe(true);
      expect(pod.securityContext.runAsUser, name).toBeGreaterThan(0);
      expect(pod.securityContext.seccompProfile.type, name).toBe('RuntimeDefault');
      const volumes = new Set([
        ...(pod.volumes ?? []).map((v: Obj) => v.name),
        ...(w.spec.volumeClaimTemplates ?? []).map((v: Obj) => v.metadata.name),
      ]);
      for (const c of pod.containers as Obj[]) {
        const cn = `${name} container ${c.name}`;
        expect(c.securityContext.runAsNonRoot, cn).toBe(true);
        expect(c.securityContext.readOnlyRootFilesystem, cn).toBe(true);
        expect(c.securityContext.allowPrivilegeEscalation, cn).toBe(false);
        expect(c.securityContext.capabilities.drop, cn).toEqual(['ALL']);
        expect(c.securityContext.capabilities.add, cn).toBeUndefined();
        expect(c.securityContext.seccompProfile.type, cn).toBe('RuntimeDefault');
        expect(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory, cn).toBeTruthy();
        expect(c.livenessProbe, cn).toBeDefined();
        for (const m of c.volumeMounts ?? []) expect(volumes.has(m.name), `${cn} mounts ${m.name}`).toBe(true);
        // Probe ports name a port of this pod; exec probes run the shipped probe script.
        const portNames = new Set((pod.containers as Obj[]).flatMap((x) => (x.ports ?? []).map((p: Obj) => p.name)));
        for (const probe of [c.livenessProbe, c.readinessProbe].filter(Boolean)) {
          const port = probe.httpGet?.port ?? probe.tcpSocket?.port ?? probe.grpc?.port;
          if (typeof port === 'string') expect(portNames.has(port), `${cn} probe port ${port}`).toBe(true);
          if (probe.exec) expect(probe.exec.command.slice(0, 2), cn).toEqual(['node', '/app/deploy/probe.mjs']);
        }
      }
      const main = (pod.containers as Obj[])[0]!;
      expect(main.readinessProbe, name).toBeDefined();
      // Secret and ConfigMap volumes refer to objects defined here (Secrets: the placeholders).
      for (const v of pod.volumes ?? []) {
        if (v.secret) find('Secret', v.secret.secretName);
        if (v.configMap) find('ConfigMap', v.configMap.name);
      }
    }
  });

  it('the signer StatefulSet gives every pod its own volume and an id from its pod name', () => {
    const sts = find('StatefulSet', 'signer');
    expect(sts.spec.volumeClaimTemplates.map((v: Obj) => v.metadata.name)).toEqual(['data']);
    expect(sts.spec.persistentVolumeClaimRetentionPolicy).toEqual({ whenDeleted: 'Retain', whenScaled: 'Retain' });
    const svc = find('Service', sts.spec.serviceName);
    expect(svc.spec.clusterIP).toBe('None');
    const env = sts.spec.template.spec.containers[0].env as Obj[];
    expect(env.find((e) => e.name === 'TESSERA_SIGNER_ID')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    // The PodDisruptionBudget selects the signers.
    const pdb = find('PodDisruptionBudget', 'signer');
    expect(pdb.spec.selector.matchLabels).toEqual(sts.spec.selector.matchLabels);
  });

  it('the Services select their pods and expose the ports the containers declare', () => {
    for (const svc of objects.filter((o) => o.kind === 'Service')) {
      const w = workloads.find((x) =>
        Object.entries(svc.spec.selector).every(([k, v]) => x.spec.template.metadata.labels[k] === v),
      );
      expect(w, `Service/${svc.metadata.name} selects a workload`).toBeDefined();
      const ports = (w!.spec.template.spec.containers as Obj[]).flatMap((c) => c.ports ?? []);
      for (const p of svc.spec.ports)
        expect(
          ports.some((cp: Obj) => cp.name === p.targetPort || cp.containerPort === p.targetPort),
          `${svc.metadata.name}:${p.name}`,
        ).toBe(true);
    }
  });

  it('network policies: signers take metrics scrapes only and reach only the coordinator and DNS; the coordinator takes 7400 from signers and labelled API clients', () => {
    const deny = find('NetworkPolicy', 'default-deny');
    expect(deny.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    const signerLabels = find('StatefulSet', 'signer').spec.template.metadata.labels as Obj;
    const coordLabels = find('StatefulSet', 'coordinator').spec.template.metadata.labels as Obj;
    const selects = (sel: Obj, labels: Obj) => Object.entries(sel.matchLabels ?? {}).every(([k, v]) => labels[k] === v);

    const sp = find('NetworkPolicy', 'signer');
    expect(selects(sp.spec.podSelector, signerLabels)).toBe(true);
    expect(sp.spec.ingress).toHaveLength(1);
    expect(sp.spec.ingress[0].from).toEqual([
      { namespaceSelector: { matchLabels: { 'tessera.io/monitoring': 'true' } } },
    ]);
    expect(sp.spec.ingress[0].ports).toEqual([{ port: 9465, protocol: 'TCP' }]);
    expect(sp.spec.egress).toHaveLength(2);
    expect(selects(sp.spec.egress[0].to[0].podSelector, coordLabels)).toBe(true);
    expect(sp.spec.egress[0].ports).toEqual([{ port: 7400, protocol: 'TCP' }]);
    expect(sp.spec.egress[1].ports.map((p: Obj) => `${p.port}/${p.protocol}`).sort()).toEqual(['53/TCP', '53/UDP']);

    const cp = find('NetworkPolicy', 'coordinator');
    expect(selects(cp.spec.podSelector, coordLabels)).toBe(true);
    const grpcRule = (cp.spec.ingress as Obj[]).find((r) => r.ports.some((p: Obj) => p.port === 7400))!;
    expect(
      grpcRule.from.some((f: Obj) => f.podSelector && !f.namespaceSelector && selects(f.podSelector, signerLabels)),
    ).toBe(true);
    expect(grpcRule.from.some((f: Obj) => f.podSelector?.matchLabels?.['tessera.io/api-client'] === 'true')).toBe(true);
    expect(cp.spec.egress).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Daemon configs inside the pods: the ConfigMap JSON plus each container's environment

/** A container's environment as the kubelet builds it: fieldRefs resolved, $(VAR) expanded. */
function podEnv(container: Obj, podName: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = podName;
    else if (e.valueFrom) throw new Error(`unsupported env source for ${e.name}`);
    else env[e.name] = String(e.value).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v: string) => env[v] ?? m);
  }
  return env;
}

/** Where a path inside the container comes from: a Secret key, a ConfigMap key or a PVC. */
function source(
  pod: Obj,
  container: Obj,
  sts: Obj,
  path: string,
): { kind: 'Secret' | 'ConfigMap' | 'PVC' | 'emptyDir'; name: string; key?: string } {
  const mount = (container.volumeMounts as Obj[])
    .filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  if (!mount) throw new Error(`${path} is on no volume (the root filesystem is read-only)`);
  const rest = posix.relative(mount.mountPath, path);
  const vol = (pod.volumes as Obj[]).find((v) => v.name === mount.name);
  if (vol?.secret) return { kind: 'Secret', name: vol.secret.secretName, key: rest };
  if (vol?.configMap) return { kind: 'ConfigMap', name: vol.configMap.name, key: rest };
  if (vol?.emptyDir) return { kind: 'emptyDir', name: mount.name };
  if ((sts.spec.volumeClaimTemplates as Obj[]).some((t) => t.metadata.name === mount.name))
    return { kind: 'PVC', name: mount.name };
  throw new Error(`unknown volume ${mount.name}`);
}

/** Loads `configJson` with the daemon's own loader, as the container would. */
function loadInPod<T>(schema: T, configJson: string, prefix: string, env: Record<string, string>) {
  const f = join(tmp, `cfg-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(f, configJson);
  return loadConfig(schema as never, { file: f, envPrefix: prefix, env }) as Obj;
}

/** Every TESSERA_<DAEMON>_* variable must name a top-level config key, or it is silently ignored. */
function expectEnvKeysKnown(env: Record<string, string>, prefix: string, shape: Obj) {
  const known = new Set(Object.keys(shape).map((k) => `${prefix}${envName(k)}`));
  for (const k of Object.keys(env))
    if (k.startsWith(prefix)) expect(known.has(k), `${k} is not a config key`).toBe(true);
}

function configArg(container: Obj): string {
  const args = container.args as string[];
  return args[args.indexOf('--config') + 1]!;
}

function expectFileFrom(pod: Obj, c: Obj, sts: Obj, path: string, kind: 'Secret' | 'ConfigMap') {
  const s = source(pod, c, sts, path);
  expect(s.kind, path).toBe(kind);
  const obj = find(kind, s.name);
  expect(Object.keys({ ...obj.data, ...obj.stringData }), `${kind}/${s.name} has ${s.key} (for ${path})`).toContain(
    s.key,
  );
}

const binOf = (pkg: string) => {
  const j = JSON.parse(read(join(ROOT, 'packages', pkg, 'package.json'))) as { bin: Record<string, string> };
  return posix.join('packages', pkg, Object.values(j.bin)[0]!);
};

describe('daemon configuration in Kubernetes', () => {
  it('the coordinator pod gets a valid config whose files and ports line up with the manifests', () => {
    const sts = find('StatefulSet', 'coordinator');
    const pod = sts.spec.template.spec as Obj;
    const c = (pod.containers as Obj[]).find((x) => x.name === 'coordinator')!;
    expect(c.args[0]).toBe(binOf('coordinator'));
    const cfgPath = configArg(c);
    const src = source(pod, c, sts, cfgPath);
    expect(src.kind).toBe('ConfigMap');
    const json = find('ConfigMap', src.name).data[src.key!];
    const env = podEnv(c, 'coordinator-0');
    expectEnvKeysKnown(env, 'TESSERA_COORDINATOR_', CoordinatorConfigSchema.shape);
    const cfg = loadInPod(CoordinatorConfigSchema, json, 'TESSERA_COORDINATOR_', env);
    expect(cfg.host).toBe('0.0.0.0'); // the default 127.0.0.1 is unreachable from other pods
    expect(source(pod, c, sts, cfg.dataDir).kind).toBe('PVC');
    expectFileFrom(pod, c, sts, cfg.kekFile, 'Secret');
    for (const f of Object.values(cfg.tls as Record<string, string>)) expectFileFrom(pod, c, sts, f, 'Secret');
    expect(c.ports.find((p: Obj) => p.name === 'grpc').containerPort).toBe(cfg.port);
    // The metrics sidecar and the readiness probe talk to this daemon's ports.
    const proxy = (pod.containers as Obj[]).find((x) => x.name === 'metrics-proxy')!;
    expect(proxy.args).toEqual([
      '/app/deploy/probe.mjs',
      'proxy',
      '0.0.0.0:9465',
      `http://127.0.0.1:${cfg.metricsPort}`,
    ]);
    expect(c.readinessProbe.exec.command).toContain(`127.0.0.1:${cfg.port}`);
    expect(c.readinessProbe.exec.command[c.readinessProbe.exec.command.indexOf('--tls-from') + 1]).toBe(cfgPath);
    // Only the signer pods may link as participants.
    const signers = find('StatefulSet', 'signer');
    const start = signers.spec.ordinals?.start ?? 0;
    const podNames = Array.from({ length: signers.spec.replicas }, (_, i) => `${signers.metadata.name}-${start + i}`);
    expect(cfg.participants).toEqual(podNames);
  });

  it('every signer pod gets a valid config with its own id, KEK, certificate and volume', () => {
    const sts = find('StatefulSet', 'signer');
    const pod = sts.spec.template.spec as Obj;
    const c = (pod.containers as Obj[]).find((x) => x.name === 'signer')!;
    expect(c.args[0]).toBe(binOf('signer'));
    const src = source(pod, c, sts, configArg(c));
    expect(src.kind).toBe('ConfigMap');
    const json = find('ConfigMap', src.name).data[src.key!];
    const coordSvc = find('Service', 'coordinator');
    const start = sts.spec.ordinals?.start ?? 0;
    const seen = { kek: new Set<string>(), cert: new Set<string>() };
    for (let i = 0; i < sts.spec.replicas; i++) {
      const podName = `${sts.metadata.name}-${start + i}`;
      const env = podEnv(c, podName);
      expectEnvKeysKnown(env, 'TESSERA_SIGNER_', SignerConfigSchema.shape);
      const cfg = loadInPod(SignerConfigSchema, json, 'TESSERA_SIGNER_', env);
      expect(cfg.id).toBe(podName);
      expect(source(pod, c, sts, cfg.dataDir).kind).toBe('PVC');
      expectFileFrom(pod, c, sts, cfg.kekFile, 'Secret');
      for (const f of Object.values(cfg.tls as Record<string, string>)) expectFileFrom(pod, c, sts, f, 'Secret');
      seen.kek.add(cfg.kekFile);
      seen.cert.add(cfg.tls.cert);
      expect(cfg.tls.cert).toContain(podName);
      // coordinator:7400 = the coordinator Service (same namespace) and its gRPC port.
      const [host, port] = cfg.coordinator.split(':');
      expect(host).toBe(coordSvc.metadata.name);
      expect(coordSvc.spec.ports.some((p: Obj) => p.port === Number(port) && p.name === 'grpc')).toBe(true);
      const proxy = (pod.containers as Obj[]).find((x) => x.name === 'metrics-proxy')!;
      expect(proxy.args.at(-1)).toBe(`http://127.0.0.1:${cfg.metricsPort}`);
      expect(c.readinessProbe.exec.command).toContain(`http://127.0.0.1:${cfg.metricsPort}/metrics`);
    }
    // No two signers share a KEK or a certificate.
    expect(seen.kek.size).toBe(sts.spec.replicas);
    expect(seen.cert.size).toBe(sts.spec.replicas);
  });
});

// ---------------------------------------------------------------------------------------------
// Compose and the config files it mounts

/** Keys of `input` that the schema dropped (zod objects strip unknown keys silently). */
function unknownKeys(input: unknown, parsed: unknown, path = ''): string[] {
  if (Array.isArray(input) && Array.isArray(parsed))
    return input.flatMap((v, i) => unknownKeys(v, parsed[i], `${path}[${i}]`));
  if (input && typeof input === 'object' && parsed && typeof parsed === 'object') {
    return Object.entries(input).flatMap(([k, v]) =>
      k in parsed ? unknownKeys(v, (parsed as Obj)[k], `${path}.${k}`) : [`${path}.${k}`],
    );
  }
  return [];
}

const configFiles = readdirSync(join(DEPLOY, 'config'))
  .filter((f) => f.endsWith('.json'))
  .sort();
const configOf = (f: string) => JSON.parse(read(join(DEPLOY, 'config', f))) as Obj;

describe('deploy/config/*.json', () => {
  it("validate against the daemons' zod schemas, with no unknown keys", () => {
    expect(configFiles).toEqual(['coordinator.json', 'signer-1.json', 'signer-2.json', 'signer-3.json']);
    for (const f of configFiles) {
      const input = configOf(f);
      const schema = f === 'coordinator.json' ? CoordinatorConfigSchema : SignerConfigSchema;
      const res = schema.safeParse(input);
      expect(res.success ? [] : res.error.issues.map((i) => `${f}: ${i.path.join('.')}: ${i.message}`)).toEqual([]);
      expect(unknownKeys(input, res.data), f).toEqual([]);
    }
  });

  it('a broken config fails', () => {
    expect(SignerConfigSchema.safeParse({ ...configOf('signer-1.json'), id: 'signer 1' }).success).toBe(false);
    expect(CoordinatorConfigSchema.safeParse({ ...configOf('coordinator.json'), port: 70000 }).success).toBe(false);
    const typo = { ...configOf('signer-1.json'), metricPort: 9464 };
    expect(unknownKeys(typo, SignerConfigSchema.parse(typo))).toEqual(['.metricPort']);
  });

  it('are consistent: distinct signer ids, the coordinator admits exactly them, signers dial coordinator:<port>', () => {
    const coord = CoordinatorConfigSchema.parse(configOf('coordinator.json'));
    const signers = configFiles
      .filter((f) => f.startsWith('signer-'))
      .map((f) => SignerConfigSchema.parse(configOf(f)));
    expect(signers.map((s) => s.id)).toEqual(['signer-1', 'signer-2', 'signer-3']);
    expect(coord.participants).toEqual(signers.map((s) => s.id));
    expect(coord.host).toBe('0.0.0.0');
    for (const s of signers) expect(s.coordinator).toBe(`coordinator:${coord.port}`);
    for (const c of [coord, ...signers]) expect(c.metricsPort).toBeGreaterThan(0);
  });
});

describe('deploy/compose.yaml', () => {
  const compose = parseYaml(read(join(DEPLOY, 'compose.yaml')), { merge: true }) as Obj;
  const services = compose.services as Record<string, Obj>;

  it('parses, with a coordinator and three signers; only the coordinator publishes ports (API and device gateway, on loopback)', () => {
    expect(Object.keys(services).sort()).toEqual(['coordinator', 'signer-1', 'signer-2', 'signer-3']);
    for (const [name, s] of Object.entries(services)) {
      if (name === 'coordinator') {
        expect(s.ports.map((p: string) => p.split(':').at(-1))).toEqual(['7400', '7480']);
        for (const p of s.ports as string[]) expect(p.startsWith('127.0.0.1:'), p).toBe(true);
      } else expect(s.ports, name).toBeUndefined();
    }
  });

  it('every referenced local path exists and every named volume, config, secret and network is declared', () => {
    for (const [name, s] of Object.entries(services)) {
      const ctx = resolve(DEPLOY, s.build.context);
      expect(existsSync(ctx), `${name} build context`).toBe(true);
      expect(existsSync(join(ctx, s.build.dockerfile)), `${name} Dockerfile`).toBe(true);
      expect(s.image, name).toBeTruthy();
      for (const v of s.volumes ?? []) {
        const src = (typeof v === 'string' ? v.split(':')[0] : v.source) as string;
        if (/^[.~/]/.test(src)) expect(existsSync(resolve(DEPLOY, src)), `${name} bind ${src}`).toBe(true);
        else expect(Object.keys(compose.volumes ?? {}), `${name} volume ${src}`).toContain(src);
      }
      for (const c of s.configs ?? []) {
        const cfg = compose.configs[typeof c === 'string' ? c : c.source];
        expect(cfg, `${name} config`).toBeDefined();
        expect(existsSync(resolve(DEPLOY, cfg.file)), `${name} config ${cfg.file}`).toBe(true);
      }
      for (const sec of s.secrets ?? []) {
        const decl = compose.secrets[typeof sec === 'string' ? sec : sec.source];
        expect(decl, `${name} secret`).toBeDefined();
        // Generated by the operator (deploy/README.md), never committed: only their place is checked.
        expect(decl.file, `${name} secret`).toMatch(/^\.\/secrets\//);
      }
      for (const f of s.env_file ?? []) expect(typeof f === 'string' ? f : f.path).toMatch(/^\.\/secrets\//);
      for (const n of s.networks ?? []) expect(Object.keys(compose.networks), `${name} network ${n}`).toContain(n);
    }
    // Secrets stay out of git.
    expect(read(join(DEPLOY, '.gitignore'))).toMatch(/^secrets\/$/m);
  });

  it("each service's mounted config validates and names the files and volume that service mounts", () => {
    for (const [name, s] of Object.entries(services)) {
      expect(s.command[0], name).toBe(binOf(name === 'coordinator' ? 'coordinator' : 'signer'));
      const target = s.command[s.command.indexOf('--config') + 1];
      const mount = (s.configs as Obj[]).find((c) => c.target === target);
      expect(mount, `${name} mounts its --config`).toBeDefined();
      const file = resolve(DEPLOY, compose.configs[mount!.source].file);
      const cfg = (name === 'coordinator' ? CoordinatorConfigSchema : SignerConfigSchema).parse(
        JSON.parse(read(file)),
      ) as Obj;
      if (name !== 'coordinator') expect(cfg.id).toBe(name);
      const secretPaths = (s.secrets as Obj[]).map((x) => `/run/secrets/${x.target}`);
      expect(secretPaths).toContain(cfg.kekFile);
      for (const f of Object.values(cfg.tls as Record<string, string>)) expect(secretPaths).toContain(f);
      // The secret behind the KEK and the certificate is this service's own.
      const own = (s.secrets as Obj[])
        .filter((x) => x.target !== 'ca.pem')
        .map((x) => compose.secrets[x.source].file as string);
      for (const f of own) expect(f, name).toContain(name);
      const mountPaths = (s.volumes as string[]).map((v) => v.split(':')[1]!);
      expect(
        mountPaths.some((m) => cfg.dataDir === m || cfg.dataDir.startsWith(`${m}/`)),
        `${name} dataDir on its volume`,
      ).toBe(true);
      if (name !== 'coordinator') {
        expect(cfg.coordinator.split(':')[0]).toBe('coordinator');
        expect(s.networks.some((n: string) => services.coordinator!.networks.includes(n))).toBe(true);
      }
    }
    // Each service has its own volume.
    const vols = Object.values(services).map((s) => (s.volumes as string[])[0]!.split(':')[0]);
    expect(new Set(vols).size).toBe(vols.length);
  });
});

// ---------------------------------------------------------------------------------------------
// Dockerfile

interface Instr {
  op: string;
  args: string;
}
function dockerInstructions(text: string): Instr[] {
  const joined = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const m = /^(\S+)\s+(.*)$/.exec(l)!;
      return { op: m[1]!.toUpperCase(), args: m[2]! };
    });
}

describe('deploy/Dockerfile', () => {
  const instrs = dockerInstructions(read(join(DEPLOY, 'Dockerfile')));
  const stages: Instr[][] = [];
  for (const i of instrs) {
    if (i.op === 'FROM') stages.push([i]);
    else stages.at(-1)?.push(i);
  }
  const final = stages.at(-1)!;
  const args = Object.fromEntries(
    instrs.filter((i) => i.op === 'ARG' && i.args.includes('=')).map((i) => i.args.split('=') as [string, string]),
  );
  const base = (from: Instr) => from.args.split(/\s+/)[0]!.replace(/^\$\{(\w+)\}$/, (_, v: string) => args[v] ?? '');

  it('is multi-stage: a node:20-bookworm-slim build stage runs npm ci and tsc -b', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = stages.find((s) => s.some((i) => i.op === 'RUN' && /\btsc -b\b/.test(i.args)))!;
    expect(build).toBeDefined();
    expect(base(build[0]!)).toBe('node:20-bookworm-slim');
    expect(build.some((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args))).toBe(true);
    const deps = stages.find((s) => s.some((i) => i.op === 'RUN' && /npm ci .*--omit=dev/.test(i.args)));
    expect(deps, 'a stage installs production dependencies only').toBeDefined();
  });

  it('the final stage runs as a numeric non-root USER, node as ENTRYPOINT, the coordinator by default', () => {
    const users = final.filter((i) => i.op === 'USER');
    expect(users.length).toBeGreaterThan(0);
    const uid = users.at(-1)!.args.split(':')[0]!;
    expect(uid).toMatch(/^\d+$/);
    expect(Number(uid)).toBeGreaterThan(0);
    expect(
      final.some((i) => i.op === 'RUN'),
      'no shell needed in the runtime stage',
    ).toBe(false);
    expect(JSON.parse(final.find((i) => i.op === 'ENTRYPOINT')!.args)).toEqual(['node']);
    const cmd = JSON.parse(final.find((i) => i.op === 'CMD')!.args) as string[];
    expect(cmd[0]).toBe(binOf('coordinator'));
    // The data mount point belongs to that user (a fresh named volume inherits it).
    expect(
      final.some(
        (i) => i.op === 'COPY' && i.args.includes(`--chown=${uid}`) && i.args.trim().endsWith('/var/lib/tessera/'),
      ),
    ).toBe(true);
  });

  it('copies every workspace and only files that exist; the build context ignores secrets and build output', () => {
    const workspaces = (JSON.parse(read(join(ROOT, 'package.json'))) as { workspaces: string[] }).workspaces;
    for (const w of workspaces) {
      expect(
        instrs.some((i) => i.op === 'COPY' && i.args.includes(`${w}/package.json`)),
        `${w}/package.json`,
      ).toBe(true);
      expect(
        final.some((i) => i.op === 'COPY' && i.args.includes(`${w}/dist/`)),
        `${w}/dist`,
      ).toBe(true);
    }
    for (const i of instrs.filter((x) => x.op === 'COPY' && !x.args.includes('--from='))) {
      const parts = i.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1)) expect(existsSync(join(ROOT, src)), `COPY ${src}`).toBe(true);
    }
    const ignore = read(join(DEPLOY, 'Dockerfile.dockerignore')).split('\n');
    for (const p of ['**/node_modules', '**/dist', 'deploy/secrets', '**/.tessera']) expect(ignore).toContain(p);
  });
});

// ---------------------------------------------------------------------------------------------
// deploy/probe.mjs, exercised on loopback

function runProbe(...args: string[]): Promise<{ code: number | null; err: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [PROBE, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, TESSERA_PROBE_TIMEOUT_MS: '3000' },
    });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => done({ code, err }));
  });
}

describe('deploy/probe.mjs', () => {
  const registry = createRegistry({ participant: 'signer-1' });
  const linkUp = new Gauge({ name: 'tessera_signer_link_up', help: 'test', registers: [registry] });
  let metrics: Awaited<ReturnType<typeof startMetricsServer>>;
  let base: string;
  let proxy: ChildProcess | undefined;
  beforeAll(async () => {
    metrics = await startMetricsServer(registry, { port: 0 });
    base = `http://127.0.0.1:${metrics.port}`;
  });
  afterAll(async () => {
    if (proxy?.pid && proxy.exitCode === null) proxy.kill('SIGTERM');
    await metrics.close();
  });

  it('http and metric modes', async () => {
    expect((await runProbe('http', `${base}/healthz`)).code).toBe(0);
    expect((await runProbe('http', `${base}/nope`)).code).toBe(1);
    linkUp.set(1);
    expect((await runProbe('metric', `${base}/metrics`, 'tessera_signer_link_up', '1')).code).toBe(0);
    linkUp.set(0);
    const down = await runProbe('metric', `${base}/metrics`, 'tessera_signer_link_up', '1');
    expect(down.code).toBe(1);
    expect(down.err).toMatch(/tessera_signer_link_up is 0/);
    expect((await runProbe()).code).toBe(2);
  });

  it('proxy mode re-serves /metrics and /healthz and nothing else', async () => {
    proxy = spawn(process.execPath, [PROBE, 'proxy', '127.0.0.1:0', base], { stdio: ['ignore', 'pipe', 'inherit'] });
    const ready = await new Promise<{ proxy: string }>((ok, fail) => {
      createInterface({ input: proxy!.stdout! }).once('line', (l) => ok(JSON.parse(l) as { proxy: string }));
      proxy!.once('exit', (c) => fail(new Error(`proxy exited ${c}`)));
    });
    const url = `http://${ready.proxy}`;
    linkUp.set(1);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const body = await (await fetch(`${url}/metrics`)).text();
    expect(body).toMatch(/^tessera_signer_link_up\{participant="signer-1"\} 1$/m);
    expect((await fetch(`${url}/other`)).status).toBe(404);
    expect((await runProbe('metric', `${url}/metrics`, 'tessera_signer_link_up', '1')).code).toBe(0);
    const exited = new Promise((r) => proxy!.once('exit', r));
    proxy.kill('SIGTERM');
    await exited;
  });

  it('grpc mode: the standard health check over mTLS', async () => {
    const pki = await createDevPki(join(tmp, 'pki'), ['coordinator']);
    const tls = pki.certs.coordinator!;
    const server = await startServer({ port: 0, credentials: serverCredentials(tls), services: [] });
    try {
      const target = `127.0.0.1:${server.port}`;
      const cfgFile = join(tmp, 'coordinator.json');
      writeFileSync(cfgFile, JSON.stringify({ dataDir: '/x', tls }));
      expect(await runProbe('grpc', target, '--tls-from', cfgFile, '--authority', 'coordinator')).toMatchObject({
        code: 0,
      });
      expect((await runProbe('grpc', target, '--ca', tls.ca, '--cert', tls.cert, '--key', tls.key)).code).toBe(0);
      // Without a client certificate the server refuses the handshake.
      expect((await runProbe('grpc', target)).code).toBe(1);
      server.health.setStatus('', 'NOT_SERVING');
      const r = await runProbe('grpc', target, '--tls-from', cfgFile);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/health status 2/);
    } finally {
      await server.close(0);
    }
  });

  it('the image ships it where the manifests run it', () => {
    expect(read(join(DEPLOY, 'Dockerfile'))).toMatch(/^COPY deploy\/probe\.mjs \/app\/deploy\/probe\.mjs$/m);
    expect(dirname(PROBE)).toBe(DEPLOY);
  });
});

/** RFC 6902 add/replace/remove on plain objects (what the HA overlay's patch uses). */
function applyJsonPatch(target: Obj, ops: { op: string; path: string; value?: unknown }[]): void {
  for (const { op, path, value } of ops) {
    const parts = path.split('/').slice(1);
    const last = parts.pop()!;
    let at = target;
    for (const p of parts) {
      at = at[p];
      if (at === undefined) throw new Error(`patch path ${path}: ${p} does not exist`);
    }
    if (op === 'remove') {
      if (!(last in at)) throw new Error(`patch path ${path} does not exist`);
      delete at[last];
    } else if (op === 'add' && last === '-') (at as unknown as unknown[]).push(value);
    else if (op === 'add' || op === 'replace') {
      if (op === 'replace' && !(last in at)) throw new Error(`patch path ${path} does not exist`);
      at[last] = value;
    } else throw new Error(`unsupported patch op ${op}`);
  }
}

describe('coordinator high availability overlay (deploy/k8s/ha)', () => {
  it('applies to the base: 3 replicas started together, state in PostgreSQL from a Secret, a valid config, a PDB', async () => {
    const dir = join(K8S, 'ha');
    const k = parseYaml(read(join(dir, 'kustomization.yaml'))) as Obj;
    expect(k.resources).toEqual(['..', 'pdb.yaml']);
    const sts = structuredClone(find('StatefulSet', 'coordinator'));
    const patch = (k.patches as Obj[]).find(
      (p) => p.target?.kind === 'StatefulSet' && p.target?.name === 'coordinator',
    )!;
    applyJsonPatch(sts, parseYaml(patch.patch) as { op: string; path: string }[]);
    const cmPatch = parseYaml(read(join(dir, (k.patches as Obj[]).find((p) => p.path)!.path))) as Obj;
    expect(cmPatch.metadata.name).toBe('tessera-coordinator-config');
    const cm = { ...structuredClone(find('ConfigMap', 'tessera-coordinator-config')), data: cmPatch.data };
    const pdb = parseYaml(read(join(dir, 'pdb.yaml'))) as Obj;
    expect(
      await manifestErrors([
        { where: 'ha StatefulSet', obj: sts },
        { where: 'ha ConfigMap', obj: cm },
        { where: 'ha PDB', obj: pdb },
      ]),
    ).toEqual([]);
    expect(sts.spec.replicas).toBe(3);
    expect(sts.spec.podManagementPolicy).toBe('Parallel');
    expect(sts.spec.volumeClaimTemplates).toBeUndefined();
    const pod = sts.spec.template.spec as Obj;
    const c = (pod.containers as Obj[]).find((x) => x.name === 'coordinator')!;
    const cfg = loadInPod(
      CoordinatorConfigSchema,
      cm.data['coordinator.json'],
      'TESSERA_COORDINATOR_',
      podEnv(c, 'coordinator-0'),
    );
    expect(cfg.dataDir).toBeUndefined();
    expectFileFrom(pod, c, sts, cfg.postgres.urlFile, 'Secret');
    expectFileFrom(pod, c, sts, cfg.kekFile, 'Secret');
    // The PDB covers the coordinator pods.
    for (const [key, v] of Object.entries(pdb.spec.selector.matchLabels as Record<string, string>))
      expect(sts.spec.template.metadata.labels[key]).toBe(v);
    expect(pdb.spec.maxUnavailable).toBe(1);
  });
});

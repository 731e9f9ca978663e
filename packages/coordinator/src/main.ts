#!/usr/bin/env node
/**
 * tessera-coordinator: the coordinator daemon. `tessera-coordinator --config coordinator.json`.
 * Prints one JSON line `{ready, port, pid, metricsUrl}` on stdout when serving.
 */
import { encodeApproved, fromHex } from '@tessera/core';
import { type OpenedKek, PgSealedStore, type SealedKV, SealedStore, kekFromConfig } from '@tessera/store';
import type { Logger } from 'pino';
import {
  parseDaemonArgs,
  createLogger,
  createRegistry,
  loadConfig,
  ReloadableTls,
  grpc,
  onShutdown,
  readCertificateAndKey,
  reloadMetrics,
  startMetricsServer,
  startReloader,
} from '@tessera/runtime';
import { type CoordinatorConfig, CoordinatorConfigSchema } from './config.js';
import { Coordinator } from './coordinator.js';
import { coordinatorMetrics } from './metrics.js';
import { applyCoordinatorReload } from './reload.js';
import { startCoordinatorServer } from './server.js';
import { startDeviceGateway, type StartedGateway } from './gateway.js';
import { readFileSync } from 'node:fs';

/** An approved request file (`tessera authorise` + `tessera approve`: {authorisation, approvals} in hex) as wire bytes. */
function readApprovedFile(file: string): Uint8Array {
  let j: { authorisation?: unknown; approvals?: unknown };
  try {
    j = JSON.parse(readFileSync(file, 'utf8')) as typeof j;
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? 'not JSON';
    throw new Error(`refreshAuthorisationFile: cannot read ${file} (${why})`);
  }
  if (typeof j?.authorisation !== 'string' || !Array.isArray(j.approvals))
    throw new Error(
      `refreshAuthorisationFile: ${file} is not an approved authorisation request ({authorisation, approvals})`,
    );
  return encodeApproved(
    fromHex(j.authorisation),
    j.approvals.map((a) => fromHex(String(a))),
  );
}

/**
 * The coordinator's state: LevelDB in `dataDir`, or PostgreSQL shared by replicas. With
 * PostgreSQL this waits for the leadership lease (a standby logs so, serves nothing, and takes
 * over when the leader's database session ends); losing the lease later ends the process, so a
 * replica never acts on state it no longer owns.
 */
async function openStore(cfg: CoordinatorConfig, kek: OpenedKek, log: Logger): Promise<SealedKV> {
  if (!cfg.postgres) return SealedStore.open(cfg.dataDir as string, kek);
  const p = cfg.postgres;
  let url: string;
  try {
    url = (p.urlFile ? readFileSync(p.urlFile, 'utf8') : (process.env[p.urlEnv as string] ?? '')).trim();
  } catch (e) {
    throw new Error(`postgres.urlFile: cannot read ${p.urlFile} (${(e as NodeJS.ErrnoException).code})`);
  }
  if (!url) throw new Error(`postgres: ${p.urlFile ? `${p.urlFile} is empty` : `${p.urlEnv} is not set`}`);
  return PgSealedStore.open(url, kek, {
    lease: {
      name: p.lease,
      onStandby: () => log.info({ lease: p.lease }, 'standby: another coordinator leads; waiting for the lease'),
    },
    onLost: (e) => {
      log.error({ err: e.message }, 'lost the PostgreSQL session and with it the lease: stopping');
      process.exit(1);
    },
  });
}

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

async function main(): Promise<void> {
  const args = parseDaemonArgs({
    name: 'tessera-coordinator',
    description: 'The Tessera coordinator: runs DKG, signing and lifecycle sessions and the device gateway.',
    version: VERSION,
    envPrefix: 'TESSERA_COORDINATOR_',
    flags: [],
  });
  const cfg = loadConfig(CoordinatorConfigSchema, {
    ...(args.config ? { file: args.config } : {}),
    envPrefix: 'TESSERA_COORDINATOR_',
  });
  const log = createLogger('coordinator');
  const registry = createRegistry({ service: 'coordinator' });
  const metricsSet = coordinatorMetrics(registry, { version: VERSION });
  // Metrics and /healthz first: a standby replica (waiting for the lease) is alive, not ready.
  const metrics = await startMetricsServer(registry, { host: cfg.metricsHost, port: cfg.metricsPort });
  const kek = kekFromConfig(cfg);
  // The KEK opens the store's data key once; an HSM session is not kept beyond that.
  const store = await openStore(cfg, kek, log).finally(() => kek.close?.());
  let gateway: StartedGateway | undefined;
  const coordinator = new Coordinator({
    store,
    taskTimeoutMs: cfg.taskTimeoutMs,
    maxInFlight: cfg.maxInFlight,
    keyCacheSize: cfg.keyCacheSize,
    ...(cfg.clusterId ? { clusterId: cfg.clusterId } : {}),
    // The operators' standing refresh authorisation for scheduled refreshes (an approved request file).
    ...(cfg.refreshAuthorisationFile ? { refreshAuthorisation: readApprovedFile(cfg.refreshAuthorisationFile) } : {}),
    onEvent: (e) => {
      metricsSet.onEvent(e);
      if (e.type === 'pool' && !e.ok)
        log.warn({ participant: e.participant, cause: e.cause, err: e.message }, 'commitment refill failed');
      if (e.type === 'ecdsa-setup' && !e.ok)
        log.warn(
          { keyId: e.keyId, cause: e.cause },
          'ECDSA setup of a new roster failed: the next signature runs it again',
        );
    },
  });
  metricsSet.observe({
    inFlight: () => coordinator.inFlight,
    connected: () => coordinator.connected(),
    rosterParticipants: () => coordinator.rosterParticipants(),
    poolSize: (id) => coordinator.poolSize(id),
    keys: () => coordinator.keys(),
    isDevice: (id) => coordinator.device(id) !== undefined,
    deviceClass: (id) => coordinator.deviceClass(id),
    pendingPackages: () => [...(gateway?.pendingByDevice().values() ?? [])].reduce((a, n) => a + n, 0),
    now: () => Date.now(),
  });
  await coordinator.load();
  // TLS through a certificate provider, so a reload swaps the certificate for new connections.
  const tls = cfg.tls ? ReloadableTls.load(cfg.tls) : undefined;
  const reloads = reloadMetrics(registry);
  if (tls) reloads.certificate('grpc', tls.current.notAfter);
  const server = await startCoordinatorServer({
    coordinator,
    host: cfg.host,
    port: cfg.port,
    credentials: tls?.serverCredentials() ?? grpc.ServerCredentials.createInsecure(),
    requirePeerName: !!cfg.tls,
    ...(cfg.participants ? { participants: cfg.participants } : {}),
    log,
    metricsUrl: metrics.url,
  });
  if (cfg.gateway) {
    const g = cfg.gateway;
    const cert = g.tls ? readCertificateAndKey(g.tls, 'gateway.tls') : undefined;
    if (cert) reloads.certificate('gateway', cert.notAfter);
    gateway = await startDeviceGateway({
      coordinator,
      host: g.host,
      port: g.port,
      log,
      ...(cert ? { tls: { cert: cert.cert, key: cert.key } } : {}),
      onCall: (op, code) => metricsSet.onGatewayCall(op, code),
    });
  }
  let refreshTimer: NodeJS.Timeout | undefined;
  if (cfg.refreshEveryDays) {
    const maxAge = cfg.refreshEveryDays * 86_400_000;
    const run = () => {
      coordinator.refreshDue(maxAge).then(
        (r) => {
          for (const x of r)
            (x.error ? log.warn : log.info).call(
              log,
              { keyId: x.keyId, epoch: x.epoch, err: x.error },
              x.error ? 'scheduled refresh failed' : 'scheduled refresh',
            );
        },
        (e: unknown) => log.error({ err: (e as Error).message }, 'scheduled refresh run failed'),
      );
    };
    refreshTimer = setInterval(run, 3_600_000);
    refreshTimer.unref();
  }
  log.info({ port: server.port, pid: process.pid, metrics: metrics.url, gateway: gateway?.url }, 'coordinator serving');
  process.stdout.write(
    JSON.stringify({
      ready: true,
      port: server.port,
      pid: process.pid,
      metricsUrl: metrics.url,
      ...(gateway ? { gatewayUrl: gateway.url } : {}),
    }) + '\n',
  );
  const reloader = startReloader(cfg, {
    name: 'tessera-coordinator',
    load: () =>
      loadConfig(CoordinatorConfigSchema, {
        ...(args.config ? { file: args.config } : {}),
        envPrefix: 'TESSERA_COORDINATOR_',
      }),
    files: (c) => [
      ...(args.config ? [args.config] : []),
      ...(c.tls ? [c.tls.ca, c.tls.cert, c.tls.key] : []),
      ...(c.gateway?.tls ? [c.gateway.tls.cert, c.gateway.tls.key] : []),
      ...(c.refreshAuthorisationFile ? [c.refreshAuthorisationFile] : []),
    ],
    apply: (next, prev) =>
      applyCoordinatorReload(next, prev, {
        setParticipants: (ids) => server.setParticipants(ids),
        setStandingRefresh: (a) => coordinator.setStandingRefresh(a),
        readApproved: readApprovedFile,
        tls,
        gateway,
        reloads,
        dropped: (ids) => log.warn({ participants: ids }, 'participants no longer allowed were disconnected'),
      }),
    log,
    metrics: reloads,
    pollMs: cfg.reloadPollSeconds * 1000,
  });
  onShutdown(async () => {
    reloader.stop();
    if (refreshTimer) clearInterval(refreshTimer);
    await gateway?.close();
    await server.close(5_000);
    await metrics.close();
    await store.close();
    log.info('coordinator stopped');
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`tessera-coordinator: ${(e as Error).message}\n`);
  process.exit(1);
});

#!/usr/bin/env node
/**
 * tessera-coordinator: the coordinator daemon. `tessera-coordinator --config coordinator.json`.
 * Prints one JSON line `{ready, port, pid, metricsUrl}` on stdout when serving.
 */
import { encodeApproved, fromHex } from '@tessera/core';
import { SealedStore, loadKek } from '@tessera/store';
import {
  parseDaemonArgs,
  createLogger,
  createRegistry,
  loadConfig,
  onShutdown,
  serverCredentials,
  startMetricsServer,
} from '@tessera/runtime';
import { Counter, Gauge, Histogram } from 'prom-client';
import { CoordinatorConfigSchema } from './config.js';
import { Coordinator } from './coordinator.js';
import { startCoordinatorServer } from './server.js';
import { startDeviceGateway, type StartedGateway } from './gateway.js';
import { readFileSync } from 'node:fs';

/** An approved request file (`tessera authorise` + `tessera approve`: {authorisation, approvals} in hex) as wire bytes. */
function readApprovedFile(file: string): Uint8Array {
  const j = JSON.parse(readFileSync(file, 'utf8')) as { authorisation?: unknown; approvals?: unknown };
  if (typeof j.authorisation !== 'string' || !Array.isArray(j.approvals))
    throw new Error(`${file}: not an approved authorisation request ({authorisation, approvals})`);
  return encodeApproved(
    fromHex(j.authorisation),
    j.approvals.map((a) => fromHex(String(a))),
  );
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
  const kek = loadKek(cfg.kekFile ? { file: cfg.kekFile } : { env: cfg.kekEnv ?? 'TESSERA_KEK' });
  const store = await SealedStore.open(cfg.dataDir, kek);
  const registry = createRegistry({ service: 'coordinator' });
  const signs = new Counter({
    name: 'tessera_signatures_total',
    help: 'sign requests by result and cause',
    labelNames: ['result', 'cause'],
    registers: [registry],
  });
  const culprits = new Counter({
    name: 'tessera_culprits_total',
    help: 'participants blamed, by code',
    labelNames: ['participant', 'code'],
    registers: [registry],
  });
  const keygens = new Counter({
    name: 'tessera_keygens_total',
    help: 'DKG sessions by result and cause',
    labelNames: ['result', 'cause'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'tessera_session_duration_seconds',
    help: 'session durations',
    labelNames: ['kind'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const packages = new Counter({
    name: 'tessera_offline_packages_total',
    help: 'offline package deliveries by result (completed | already_completed | error) and cause',
    labelNames: ['result', 'cause'],
    registers: [registry],
  });
  const syncLatency = new Histogram({
    name: 'tessera_offline_sync_seconds',
    help: 'time from a package being signed offline (device clock) to its completion',
    buckets: [1, 10, 60, 300, 1800, 3600, 6 * 3600, 86400, 7 * 86400],
    registers: [registry],
  });
  const reservations = new Counter({
    name: 'tessera_reservations_total',
    help: 'reservation slots issued to devices',
    registers: [registry],
  });
  const gatewayCalls = new Counter({
    name: 'tessera_device_calls_total',
    help: 'device gateway calls by op and result code',
    labelNames: ['op', 'code'],
    registers: [registry],
  });
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
      if (e.type === 'sign') {
        signs.inc({ result: e.ok ? 'ok' : 'error', cause: e.cause ?? '' });
        duration.observe({ kind: 'sign' }, e.ms / 1000);
      } else if (e.type === 'keygen') {
        duration.observe({ kind: 'dkg' }, e.ms / 1000);
        keygens.inc({ result: e.ok ? 'ok' : 'error', cause: e.cause ?? '' });
      } else if (e.type === 'package') {
        packages.inc({ result: !e.ok ? 'error' : e.cached ? 'already_completed' : 'completed', cause: e.cause ?? '' });
        if (e.ok && !e.cached) {
          duration.observe({ kind: 'offline' }, e.ms / 1000);
          if (e.createdAt) syncLatency.observe(Math.max(0, Date.now() - e.createdAt) / 1000);
        }
      } else if (e.type === 'reserve') reservations.inc(e.slots);
      else if (e.type === 'culprit') culprits.inc({ participant: e.participant, code: e.code });
      else if (e.type === 'pool' && !e.ok)
        log.warn({ participant: e.participant, cause: e.cause, err: e.message }, 'commitment refill failed');
    },
  });
  new Gauge({
    name: 'tessera_requests_in_flight',
    help: 'sign requests and package completions in progress (admission bound: maxInFlight)',
    registers: [registry],
    collect() {
      this.set(coordinator.inFlight);
    },
  });
  new Gauge({
    name: 'tessera_participants_connected',
    help: 'participants linked',
    registers: [registry],
    collect() {
      this.set(coordinator.connected().length);
    },
  });
  new Gauge({
    name: 'tessera_participant_up',
    help: '1 per known participant that is linked, 0 if not',
    labelNames: ['participant'],
    registers: [registry],
    collect() {
      this.reset();
      const up = new Set(coordinator.connected());
      for (const id of new Set([...up, ...coordinator.rosterParticipants()]))
        this.set({ participant: id }, up.has(id) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'tessera_nonce_pool_size',
    help: 'pooled signing commitments per participant (all keys)',
    labelNames: ['participant'],
    registers: [registry],
    collect() {
      this.reset();
      for (const id of coordinator.connected()) this.set({ participant: id }, coordinator.poolSize(id));
    },
  });
  new Gauge({
    name: 'tessera_offline_packages_pending',
    help: 'offline packages queued on devices, as each linked device last reported',
    labelNames: ['device'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [d, n] of gateway?.pendingByDevice() ?? []) this.set({ device: d }, n);
    },
  });
  await coordinator.load();
  const metrics = await startMetricsServer(registry, { host: cfg.metricsHost, port: cfg.metricsPort });
  const server = await startCoordinatorServer({
    coordinator,
    host: cfg.host,
    port: cfg.port,
    credentials: serverCredentials(cfg.tls),
    requirePeerName: !!cfg.tls,
    ...(cfg.participants ? { participants: cfg.participants } : {}),
    log,
    metricsUrl: metrics.url,
  });
  if (cfg.gateway) {
    const g = cfg.gateway;
    gateway = await startDeviceGateway({
      coordinator,
      host: g.host,
      port: g.port,
      log,
      ...(g.tls ? { tls: { cert: readFileSync(g.tls.cert), key: readFileSync(g.tls.key) } } : {}),
      onCall: (op, code) => gatewayCalls.inc({ op, code }),
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
  onShutdown(async () => {
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

#!/usr/bin/env node
/**
 * tessera-signer: the signer node daemon. `tessera-signer --config signer.json`; with `--init`,
 * it creates (or reads) the node's identity, prints its public keys as JSON and exits.
 * Holds its identity and shares sealed in LevelDB under the KEK, dials the coordinator, serves
 * Prometheus metrics, stops gracefully on SIGTERM/SIGINT.
 */
import { toHex } from '@tessera/core';
import { SealedStore, kekFromConfig } from '@tessera/store';
import { loadOrCreateIdentity } from './identity-store.js';
import {
  ReloadableTls,
  grpc,
  parseDaemonArgs,
  reloadMetrics,
  startReloader,
  createLogger,
  createRegistry,
  loadConfig,
  onShutdown,
  startMetricsServer,
} from '@tessera/runtime';
import { SignerConfigSchema } from './config.js';
import { applySignerReload } from './reload.js';
import { SignerEngine } from './engine.js';
import { SpentJournal } from './spent.js';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { runLink } from './link.js';
import { signerMetrics } from './metrics.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

async function main(): Promise<void> {
  const args = parseDaemonArgs({
    name: 'tessera-signer',
    description: 'The Tessera signer node: holds its shares sealed in LevelDB and dials the coordinator.',
    version: VERSION,
    envPrefix: 'TESSERA_SIGNER_',
    flags: [{ flag: '--init', help: 'create (or read) the node identity, print its public keys as JSON and exit' }],
  });
  const cfg = loadConfig(SignerConfigSchema, {
    ...(args.config ? { file: args.config } : {}),
    envPrefix: 'TESSERA_SIGNER_',
  });
  const log = createLogger(`signer`).child({ participant: cfg.id });
  const kek = kekFromConfig(cfg);
  // The KEK opens the store's data key once; an HSM session is not kept beyond that.
  const store = await SealedStore.open(cfg.dataDir, kek).finally(() => kek.close?.());
  const identity = await loadOrCreateIdentity(store, cfg.id);
  if (args.init) {
    // Creates (or reads) the identity and prints its public keys, to pin in peers' policies.
    process.stdout.write(
      JSON.stringify({
        id: identity.id,
        signKey: toHex(identity.public.signKey),
        encKey: toHex(identity.public.encKey),
      }) + '\n',
    );
    await store.close();
    return;
  }
  const registry = createRegistry({ participant: cfg.id });
  const metricsSet = signerMetrics(registry, { version: VERSION });
  const spent = SpentJournal.open(join(cfg.dataDir, 'spent-reservations.journal'));
  const engine = new SignerEngine({
    spent,
    identity,
    store,
    policy: cfg.policy,
    onEvent: (e) => metricsSet.onEvent(e),
  });
  // Startup check: the nonce ledger must be readable before the node links (every link discards
  // unused nonces first). A damaged store (a corrupt or truncated table file) refuses to start
  // here with one line, instead of a process that runs but can never link.
  await engine.discardFreshNonces();
  const metrics = await startMetricsServer(registry, { host: cfg.metricsHost, port: cfg.metricsPort });
  // TLS through a certificate provider, so a reload swaps the certificate for the next connection.
  const tls = cfg.tls ? ReloadableTls.load(cfg.tls) : undefined;
  const reloads = reloadMetrics(registry);
  if (tls) reloads.certificate('grpc', tls.current.notAfter);
  const link = runLink({
    engine,
    address: cfg.coordinator,
    credentials: tls?.channelCredentials() ?? grpc.credentials.createInsecure(),
    metricsUrl: metrics.url,
    log,
    onState: (up) => metricsSet.onLink(up),
  });
  log.info({ pid: process.pid, metrics: metrics.url, signKey: toHex(identity.public.signKey) }, 'signer started');
  // Say at once, on one line each, what this node will refuse and why.
  const unpinned = SignerEngine.unpinnedReason(cfg.policy);
  if (unpinned) process.stderr.write(`tessera-signer ${cfg.id}: ${unpinned}\n`);
  if (!cfg.policy.operators)
    process.stderr.write(
      `tessera-signer ${cfg.id}: no operator keys are pinned (policy.operators): this node takes part in no refresh or reshare\n`,
    );
  process.stdout.write(
    JSON.stringify({
      ready: true,
      id: cfg.id,
      pid: process.pid,
      metricsUrl: metrics.url,
      signKey: toHex(identity.public.signKey),
    }) + '\n',
  );
  const reloader = startReloader(cfg, {
    name: `tessera-signer ${cfg.id}`,
    load: () =>
      loadConfig(SignerConfigSchema, { ...(args.config ? { file: args.config } : {}), envPrefix: 'TESSERA_SIGNER_' }),
    files: (c) => [...(args.config ? [args.config] : []), ...(c.tls ? [c.tls.ca, c.tls.cert, c.tls.key] : [])],
    apply: (next, prev) => applySignerReload(next, prev, { engine, tls, reloads }),
    log,
    metrics: reloads,
    pollMs: cfg.reloadPollSeconds * 1000,
  });
  onShutdown(async () => {
    reloader.stop();
    link.stop();
    await metrics.close();
    await store.close();
    log.info('signer stopped');
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`tessera-signer: ${(e as Error).message}\n`);
  process.exit(1);
});

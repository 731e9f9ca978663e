/**
 * What a coordinator changes in place when its configuration is reloaded (SIGHUP or a changed
 * file; see @tessera/runtime's startReloader): the participant allowlist (linked participants no
 * longer on it are disconnected), the gRPC TLS certificate, the device gateway's HTTPS
 * certificate and the standing refresh authorisation. Everything else waits for a restart.
 */
import {
  type ReloadableTls,
  type ReloadMetrics,
  changedFields,
  readCertificateAndKey,
  readTlsMaterial,
} from '@tessera/runtime';
import type { CoordinatorConfig } from './config.js';

/** Fields a running coordinator cannot change in place: a reload names them and keeps the old value. */
const RESTART_ONLY = [
  'dataDir',
  'postgres',
  'host',
  'port',
  'kekFile',
  'kekEnv',
  'kekPkcs11',
  'metricsPort',
  'metricsHost',
  'taskTimeoutMs',
  'maxInFlight',
  'keyCacheSize',
  'clusterId',
  'refreshEveryDays',
  'reloadPollSeconds',
];

export interface CoordinatorReloadTargets {
  setParticipants(ids: readonly string[] | undefined): string[];
  setStandingRefresh(approved: Uint8Array): void;
  /** Reads an approved authorisation file (throws one line if it is not one). */
  readApproved(file: string): Uint8Array;
  tls: ReloadableTls | undefined;
  gateway: { setTls(tls: { cert: Buffer; key: Buffer }): boolean } | undefined;
  reloads: ReloadMetrics;
  /** Disconnected participants are reported here (for the log). */
  dropped?(ids: string[]): void;
}

/**
 * Validates a reloaded configuration completely (TLS files, the authorisation file), then puts
 * the reloadable parts in force. Throws, applying nothing, if any part is invalid. Returns the
 * changed fields that only a restart applies.
 */
export function applyCoordinatorReload(
  next: CoordinatorConfig,
  prev: CoordinatorConfig,
  on: CoordinatorReloadTargets,
): string[] {
  const restart = changedFields(prev, next).filter((f) => RESTART_ONLY.includes(f));
  // Turning TLS (or the gateway) on or off changes what listens: a restart. New files: now.
  const tlsSwitch = !!next.tls !== !!on.tls;
  if (tlsSwitch) restart.push('tls');
  const gatewaySwitch =
    !!next.gateway !== !!prev.gateway ||
    next.gateway?.host !== prev.gateway?.host ||
    next.gateway?.port !== prev.gateway?.port ||
    !!next.gateway?.tls !== !!prev.gateway?.tls;
  if (gatewaySwitch) restart.push('gateway');
  // 1. Check everything.
  const material = next.tls && on.tls && !tlsSwitch ? readTlsMaterial(next.tls) : undefined;
  const gatewayCert =
    next.gateway?.tls && on.gateway && !gatewaySwitch
      ? readCertificateAndKey(next.gateway.tls, 'gateway.tls')
      : undefined;
  const standing = next.refreshAuthorisationFile ? on.readApproved(next.refreshAuthorisationFile) : new Uint8Array(0);
  // 2. Apply.
  const dropped = on.setParticipants(next.participants);
  if (dropped.length) on.dropped?.(dropped);
  on.setStandingRefresh(standing);
  if (material && on.tls) {
    on.tls.update(material);
    on.reloads.certificate('grpc', material.notAfter);
  }
  if (gatewayCert && on.gateway?.setTls({ cert: gatewayCert.cert, key: gatewayCert.key }))
    on.reloads.certificate('gateway', gatewayCert.notAfter);
  return [...new Set(restart)];
}

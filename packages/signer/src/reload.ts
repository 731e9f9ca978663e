/**
 * What a signer changes in place when its configuration is reloaded (SIGHUP or a changed file;
 * see @tessera/runtime's startReloader): the policy (requesters, pinned peers, operators, device
 * rules and revocations) and the TLS certificate. Everything else waits for a restart.
 */
import { type ReloadableTls, type ReloadMetrics, changedFields, readTlsMaterial } from '@tessera/runtime';
import type { SignerConfig } from './config.js';
import type { SignerEngine } from './engine.js';

/** Fields a running signer cannot change in place: a reload names them and keeps the old value. */
const RESTART_ONLY = [
  'id',
  'dataDir',
  'coordinator',
  'kekFile',
  'kekEnv',
  'kekPkcs11',
  'metricsPort',
  'metricsHost',
  'reloadPollSeconds',
];

/**
 * Validates a reloaded configuration completely (the policy's keys, the TLS files), then puts the
 * policy and the TLS certificate in force. Throws, applying nothing, if any part is invalid.
 * Returns the changed fields that only a restart applies.
 */
export function applySignerReload(
  next: SignerConfig,
  prev: SignerConfig,
  on: { engine: Pick<SignerEngine, 'setPolicy'>; tls: ReloadableTls | undefined; reloads: ReloadMetrics },
): string[] {
  const changed = changedFields(prev, next);
  const restart = changed.filter((f) => RESTART_ONLY.includes(f));
  // Turning TLS on or off changes how the link dials: a restart. New files for TLS in use: now.
  const tlsSwitch = !!next.tls !== !!on.tls;
  if (tlsSwitch) restart.push('tls');
  const material = next.tls && on.tls && !tlsSwitch ? readTlsMaterial(next.tls) : undefined;
  on.engine.setPolicy(next.policy); // throws, changing nothing, on a requester key that does not parse
  if (material && on.tls) {
    on.tls.update(material);
    on.reloads.certificate('grpc', material.notAfter);
  }
  return restart;
}

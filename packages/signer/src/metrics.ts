/**
 * A signer node's Prometheus metrics (docs/OPERATIONS.md, Monitoring): counters fed by
 * {@link SignerEvent}s and the link state. Labels are codes and results only; the node's own
 * `participant` label comes from the registry's default labels. No per-device label.
 */
import { buildInfo } from '@tessera/runtime';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { SignerEvent } from './engine.js';

export interface SignerMetrics {
  /** Feed every engine event here. */
  onEvent(e: SignerEvent): void;
  /** The coordinator link went up (true) or down. */
  onLink(up: boolean): void;
}

/** Registers the signer's metrics on `registry` (with `tessera_build_info{version}`). */
export function signerMetrics(registry: Registry, opts: { version: string }): SignerMetrics {
  const registers = [registry];
  buildInfo(registry, opts.version);
  const signs = new Counter({
    name: 'tessera_signer_signatures_total',
    help: 'signature shares released (ok) or re-sent for an identical retry (cached)',
    labelNames: ['result'],
    registers,
  });
  const refusals = new Counter({
    name: 'tessera_signer_refusals_total',
    help: 'sign requests refused, by code',
    labelNames: ['code'],
    registers,
  });
  const keygens = new Counter({ name: 'tessera_signer_keygens_total', help: 'keys created', registers });
  const offline = new Counter({
    name: 'tessera_signer_offline_completions_total',
    help: 'offline packages completed with a reserved nonce (ok) or re-answered identically (cached)',
    labelNames: ['result'],
    registers,
  });
  const reserved = new Counter({
    name: 'tessera_signer_reservations_total',
    help: 'nonces reserved for devices',
    registers,
  });
  const linkUp = new Gauge({ name: 'tessera_signer_link_up', help: '1 when linked to the coordinator', registers });
  return {
    onEvent(e) {
      if (e.type === 'sign') signs.inc({ result: e.result });
      else if (e.type === 'refusal') refusals.inc({ code: e.code });
      else if (e.type === 'keygen') keygens.inc();
      else if (e.type === 'complete') offline.inc({ result: e.result });
      else if (e.type === 'reserve') reserved.inc(e.count);
    },
    onLink(up) {
      linkUp.set(up ? 1 : 0);
    },
  };
}

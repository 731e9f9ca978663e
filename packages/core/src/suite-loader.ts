/**
 * A suite's curve, loaded when it is first needed: the merchant's package check imports the
 * curve of the one suite it meets (a bundler makes each its own chunk), not all four as
 * ./suites.ts does. The objects are the ones ./suites.ts gives its suites, so the cluster and the
 * merchant verify with the same code (./fast.ts).
 */
import { ed25519Flavor } from './curves/ed25519.js';
import type { Flavor } from './frost-flavor.js';
import type { FrostSuiteId as SuiteId } from './suite-ids.js';

const LOADERS: Readonly<Record<SuiteId, () => Promise<Flavor>>> = {
  // Static: identity signatures are Ed25519, so its curve is loaded whatever the suite.
  ed25519: async () => ed25519Flavor,
  'secp256k1-tr': async () => (await import('./curves/secp256k1.js')).secp256k1TrFlavor,
  secp256k1: async () => (await import('./curves/secp256k1.js')).secp256k1Flavor,
  p256: async () => (await import('./curves/p256.js')).p256Flavor,
};

const loaded = new Map<SuiteId, Promise<Flavor>>();

/** The curve of `id`, imported once. */
export function loadCurve(id: SuiteId): Promise<Flavor> {
  let c = loaded.get(id);
  if (!c) {
    c = LOADERS[id]();
    loaded.set(id, c);
    c.catch(() => loaded.delete(id));
  }
  return c;
}

/**
 * Suite names as they appear in CLIs, configs and JSON. Its own module with no imports, so a
 * command line can list the choices without loading the curves (`@tessera/core/suite-ids`).
 */
export const SUITE_IDS = ['ed25519', 'secp256k1-tr', 'secp256k1', 'p256'] as const;
export type SuiteId = (typeof SUITE_IDS)[number];

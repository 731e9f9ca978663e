/**
 * @tessera/core — Tessera's protocol logic. Pure: no I/O, injected randomness and clock.
 */
export * from './errors.js';
export * from './bytes.js';
export * from './suites.js';

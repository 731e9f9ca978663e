/**
 * @tessera/core — Tessera's protocol logic. Pure: no I/O; randomness and time are injected.
 */
export * from './errors.js';
export * from './bytes.js';
export * from './suites.js';
export * from './hpke.js';
export * from './hpke-xwing.js';
export * from './identity.js';
export * from './envelope.js';
export * from './key.js';
export * from './dkg.js';
export * from './dkg-participant.js';
export * from './lifecycle.js';
export * from './authorisation.js';
export * from './operator-login.js';
export * from './lifecycle-participant.js';
export * from './sign.js';
export * from './local.js';
export * from './records.js';
export * from './intent.js';
export * from './reservation.js';
export * from './offline.js';
export * from './package-text.js';
export * from './cosign.js';
export * from './device-claims.js';
export * from './allowance.js';
export * from './prices.js';
export * from './payment.js';
export * from './payment-chains.js';
export * from './destinations.js';
export * from './package-payment.js';
export * from './hd.js';
export * from './ecdsa-address.js';
export * from './named-exports.js';
// The wire codec's modules export only public names: re-exported whole, not through the barrel
// (a module that uses only these — `@tessera/ecdsa`, loaded by a device page on demand — then
// pulls none of the barrel's other modules into a chunk it shares with the page's first download).
export * from './wire/codec.js';
export * from './wire/status.js';
export * from './wire/packages.js';
export * from './wire/types.js';
export * from './wire/link.js';

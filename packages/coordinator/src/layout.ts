/**
 * The coordinator's store layout: every record it keeps, by key, in one place. Services build
 * their keys here and nowhere else, so a new record cannot collide with an old one unnoticed
 * (`packages/coordinator/test/layout.test.ts` checks that no prefix is a prefix of another).
 *
 * The audit chain keeps its own records under the store's `AUDIT_PREFIX` (`audit/`).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { toHex } from '@tessera/core';

export const layout = {
  /** This cluster's id, created on first start. */
  clusterId: 'cluster-id',
  /** Every key's current public record (`KeyRecord`), by key id. */
  keys: 'key/',
  key: (keyId: string) => `key/${keyId}`,
  /** Each epoch's public record, kept for packages reserved at an earlier epoch. */
  keyEpoch: (keyId: string, epoch: number) => `keyepoch/${keyId}/${epoch}`,
  /** A committed refresh or reshare session (params, contributions, confirmations, acks), for catch-up. */
  lifecycle: (keyId: string, epoch: number) => `lifecycle/${keyId}/${epoch}`,
  /** The newest epoch of a key a participant acknowledged (decimal). */
  ack: (participant: string, keyId: string) => `ack/${participant}/${keyId}`,
  /** Enrolled devices (`ParticipantInfo`), by participant id. */
  devices: 'device/',
  device: (id: string) => `device/${id}`,
  /** What an enrolled device said it is (ios, android, browser, …): the offline KPIs' label. */
  deviceClass: (id: string) => `devclass/${id}`,
  deviceClasses: 'devclass/',
  /** A revoked device id (time of revocation): never enrolled again. */
  revoked: (id: string) => `revoked/${id}`,
  /** The operators' admissions of an enrolled device (JSON list of hex envelopes). */
  admission: (id: string) => `admission/${id}`,
  /** A one-time enrolment token, by its hash (JSON: expiry, label, who used it). */
  enrolToken: (tokenHash: string) => `enrol/${tokenHash}`,
  /** The operators' approved revocations, handed to every node that links. */
  revocations: 'revocation/',
  revocation: (authorisation: Uint8Array) => `revocation/${toHex(sha256(authorisation)).slice(0, 32)}`,
  /** A completed offline package's result (exactly once), by package id. */
  packages: 'package/',
  package: (packageId: string) => `package/${packageId}`,
  /**
   * A device's offline package as the cluster decided it (JSON: key, state completed|refused,
   * code, at), for the device's reconciliation.
   */
  devicePackages: (device: string) => `devpkg/${device}/`,
  allDevicePackages: 'devpkg/',
  devicePackage: (device: string, packageId: string) => `devpkg/${device}/${packageId}`,
  /** Which package used a co-signer's reservation (package id). */
  reservationUse: (signer: string, nonceId: Uint8Array) => `resv/${signer}/${toHex(nonceId)}`,
  /** A signature result bound to its intent, by requester and request id (idempotent retries). */
  result: (requester: Uint8Array, requestId: Uint8Array) => `result/${toHex(requester)}/${toHex(requestId)}`,
} as const;

/** Every prefix of the layout (for tests and tools that scan the store). */
export const layoutPrefixes = [
  'cluster-id',
  'key/',
  'keyepoch/',
  'lifecycle/',
  'ack/',
  'device/',
  'devclass/',
  'revoked/',
  'admission/',
  'enrol/',
  'revocation/',
  'package/',
  'devpkg/',
  'resv/',
  'result/',
] as const;

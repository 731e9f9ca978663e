/**
 * The bytes an envelope's Ed25519 signature covers: a domain tag, the payload kind and the exact
 * payload bytes, so a payload cannot be replayed as another kind. Its own module (no codec): the
 * merchant's package check verifies reservation signatures with it.
 */
import { concatBytes, u32be, utf8ToBytes } from './bytes.js';

const ENVELOPE_DST = utf8ToBytes('tessera/v1/envelope');

/** The bytes an envelope signature covers; `kind` is a `tessera.v1.PayloadKind` number. */
export function envelopeSigningBytes(kind: number, payload: Uint8Array): Uint8Array {
  return concatBytes(ENVELOPE_DST, u32be(kind), payload);
}

/** `PayloadKind.RESERVATION`, without loading the generated schema (a test holds them equal). */
export const RESERVATION_PAYLOAD_KIND = 14;

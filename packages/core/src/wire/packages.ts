/**
 * Semantic checks shared by every package decoder: the header (format version + suite) and
 * exact lengths of keys, elements and scalars. A decoder built on these rejects a wrong suite,
 * version or length with a typed error before any cryptography runs.
 */
import { DecodeError, UnsupportedVersionError, WrongSuiteError } from '../errors.js';
import { suiteByWireId, type Suite } from '../suites.js';
import { FORMAT_VERSION } from './limits.js';
import type { WireHeader } from './types.js';

export { FORMAT_VERSION } from './limits.js';

export function makeHeader(suite: Suite): WireHeader {
  return { version: FORMAT_VERSION, suite: suite.wireId };
}

/**
 * Checks a decoded header. With `expected`, the package must be of that suite; without, any
 * known FROST suite is accepted and returned (an ECDSA suite too with `anyScheme`: key records
 * and intents; never a FROST package).
 */
export function checkHeader(
  h: WireHeader | null | undefined,
  what: string,
  expected?: Suite,
  anyScheme = false,
): Suite {
  if (!h) throw new DecodeError(`${what}: missing header`);
  if (h.version !== FORMAT_VERSION) throw new UnsupportedVersionError(h.version, FORMAT_VERSION);
  const suite = suiteByWireId(h.suite);
  if (!suite) throw new DecodeError(`${what}: unknown suite number ${h.suite}`);
  // An ECDSA suite's number in a FROST package reads as an unknown suite (as the merchant's
  // decoder, which knows only FROST suites, reads it).
  if (suite.scheme !== 'frost' && !anyScheme && expected?.wireId !== suite.wireId)
    throw new DecodeError(`${what}: suite ${suite.id} has no such package`);
  if (expected && suite.wireId !== expected.wireId) throw new WrongSuiteError(suite.id, expected.id);
  return suite;
}

/** Asserts an exact byte length; `what` names the field in the error. */
export function expectLength(b: Uint8Array, n: number, what: string): Uint8Array {
  if (!(b instanceof Uint8Array) || b.length !== n)
    throw new DecodeError(`${what}: expected ${n} bytes, got ${b instanceof Uint8Array ? b.length : typeof b}`);
  return b;
}

/** Asserts a length within [min, max]. */
export function expectLengthBetween(b: Uint8Array, min: number, max: number, what: string): Uint8Array {
  if (!(b instanceof Uint8Array) || b.length < min || b.length > max)
    throw new DecodeError(
      `${what}: expected ${min}..${max} bytes, got ${b instanceof Uint8Array ? b.length : typeof b}`,
    );
  return b;
}

/** Small byte helpers shared by the store's modules (no cryptography here). */
import { StoreError } from './errors.js';

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 bytes of `s`. */
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Decode UTF-8 strictly; throws a TypeError on invalid sequences. */
export function fromUtf8(b: Uint8Array): string {
  return strictDecoder.decode(b);
}

/** True if `s` has no lone surrogates, so it round-trips through UTF-8 unchanged. */
export function isWellFormed(s: string): boolean {
  return !/\p{Surrogate}/u.test(s);
}

/** A copy of `b` that owns its own buffer (callers may then wipe either side). */
export function copyBytes(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

/** Overwrite buffers with zeros (best effort: JS may have made copies we cannot reach). */
export function wipe(...bufs: (Uint8Array | undefined)[]): void {
  for (const b of bufs) b?.fill(0);
}

/** Throw INVALID_ARGUMENT unless `v` is a Uint8Array. `what` names it in the message. */
export function requireBytes(v: unknown, what: string): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) throw new StoreError('INVALID_ARGUMENT', `${what} must be a Uint8Array`);
}

/**
 * Throw INVALID_ARGUMENT unless `s` is a non-empty, well-formed string of at most `maxBytes`
 * UTF-8 bytes without control characters. Used for ids that become parts of store keys.
 */
export function requireId(s: unknown, what: string, maxBytes = 512): asserts s is string {
  if (typeof s !== 'string' || s.length === 0) {
    throw new StoreError('INVALID_ARGUMENT', `${what} must be a non-empty string`);
  }
  // eslint-disable-next-line no-control-regex
  if (!isWellFormed(s) || /[\u0000-\u001f\u007f]/.test(s)) {
    throw new StoreError('INVALID_ARGUMENT', `${what} must be well-formed text without control characters`);
  }
  if (utf8(s).length > maxBytes) {
    throw new StoreError('INVALID_ARGUMENT', `${what} is longer than ${maxBytes} bytes`);
  }
}

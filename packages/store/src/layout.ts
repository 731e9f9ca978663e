/**
 * Raw LevelDB key layout of a {@link SealedStore}. Exported for inspection tools and tests that
 * must reach beneath the sealing layer; application code never needs it.
 *
 * - `m/data-key` — JSON meta record: format version, KEK id, the data key wrapped under the KEK,
 *   and a check value sealed under the data key. Not itself sealed (it holds the wrapped key).
 * - `d/<key>`    — every application value, sealed under the data key with AAD = the UTF-8 bytes
 *   of this full raw key (`d/<key>`), so a sealed value moved to another key fails to open.
 */
import { utf8 } from './bytes.js';

/** Prefix of all sealed application values. */
export const DATA_PREFIX = 'd/';
/** Raw key of the meta record holding the wrapped data key. */
export const META_KEY = 'm/data-key';
/** AAD under which the KEK wraps the data key. */
export const DATA_KEY_WRAP_AAD = utf8('tessera/store/v1/data-key');
/** AAD of the check value (distinct from every `d/...` key). */
export const CHECK_AAD = utf8('m/check');
/** Plaintext of the check value sealed under the data key. */
export const CHECK_PLAINTEXT = utf8('tessera/store/v1/check');

/** The raw LevelDB key of application key `key`. */
export function rawKeyOf(key: string): string {
  return DATA_PREFIX + key;
}

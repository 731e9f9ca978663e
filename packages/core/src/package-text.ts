/**
 * An offline package as text, for QR codes and copy-paste: "TSP1:" + base45 (RFC 9285), which
 * fits a QR code's alphanumeric mode. Its own module: the merchant's check reads it too.
 */
import { base45Decode, base45Encode } from './base45.js';
import { DecodeError } from './errors.js';

const TEXT_PREFIX = 'TSP1:';

/** The package as text for a QR code (alphanumeric mode): "TSP1:" + base45. */
export function packageToText(bytes: Uint8Array): string {
  return TEXT_PREFIX + base45Encode(bytes);
}

/** Accepts the text form (with or without surrounding whitespace) and returns the package bytes. */
export function packageFromText(text: string): Uint8Array {
  const t = String(text).trim();
  if (!t.startsWith(TEXT_PREFIX)) throw new DecodeError('offline package text must start with TSP1:');
  return base45Decode(t.slice(TEXT_PREFIX.length));
}

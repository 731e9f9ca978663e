/**
 * Base45 (RFC 9285): the text form of offline packages. Its 45 characters are exactly QR
 * code's alphanumeric set, which packs 5.5 bits per character instead of byte mode's 8, so a
 * base45 package makes a smaller QR code than base64 of the same bytes.
 */
import { DecodeError } from './errors.js';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:';
const INDEX = new Map([...ALPHABET].map((c, i) => [c, i]));

export function base45Encode(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    let n = (bytes[i] as number) * 256 + (bytes[i + 1] as number);
    for (let k = 0; k < 3; k++) {
      out += ALPHABET[n % 45];
      n = Math.floor(n / 45);
    }
  }
  if (bytes.length % 2 === 1) {
    const n = bytes[bytes.length - 1] as number;
    out += (ALPHABET[n % 45] as string) + (ALPHABET[Math.floor(n / 45)] as string);
  }
  return out;
}

export function base45Decode(text: string): Uint8Array {
  if (typeof text !== 'string') throw new DecodeError('base45: expected a string');
  if (text.length % 3 === 1) throw new DecodeError('base45: invalid length');
  const out = new Uint8Array(Math.floor(text.length / 3) * 2 + (text.length % 3 === 2 ? 1 : 0));
  const digit = (c: string) => {
    const d = INDEX.get(c);
    if (d === undefined) throw new DecodeError('base45: invalid character');
    return d;
  };
  let o = 0;
  for (let i = 0; i < text.length; i += 3) {
    if (i + 2 < text.length) {
      const n = digit(text[i] as string) + digit(text[i + 1] as string) * 45 + digit(text[i + 2] as string) * 2025;
      if (n > 0xffff) throw new DecodeError('base45: value out of range');
      out[o++] = n >> 8;
      out[o++] = n & 0xff;
    } else {
      const n = digit(text[i] as string) + digit(text[i + 1] as string) * 45;
      if (n > 0xff) throw new DecodeError('base45: value out of range');
      out[o++] = n;
    }
  }
  return out;
}

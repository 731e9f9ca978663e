/**
 * The QR rendering of offline packages: the package text is encoded in QR's alphanumeric mode;
 * the terminal form is a rectangle of half-block characters, the SVG a document whose view box is
 * the code's modules plus the quiet zone; anything but package text, or a package too large for
 * one code, is refused with INVALID_ARGUMENT.
 */
import { describe, expect, it } from 'vitest';
import { type TesseraError, packageToText } from '@tessera/core';
import { qrModules, qrSvg, qrTerminal } from '../src/qr.js';

const text = packageToText(new Uint8Array(358).map((_, i) => (i * 37) & 0xff));

describe('package QR codes', () => {
  it('a 358-byte package (2-of-3 Ed25519) fits a version-15 code at level M', () => {
    expect(text.length).toBe(5 + 537);
    expect(qrModules(text)).toBe(77);
    expect(qrModules('TSP1:A')).toBe(21);
  });

  it('terminal: a rectangle of half blocks, two module rows per line, with a quiet zone', () => {
    const lines = qrTerminal(text).split('\n').filter(Boolean);
    const width = 77 + 4;
    expect(lines.every((l) => [...l].length === width)).toBe(true);
    expect(lines.length).toBe(Math.ceil(width / 2));
    expect(lines.every((l) => /^[█▀▄ ]+$/u.test(l))).toBe(true);
  });

  it('SVG: a document whose view box is the modules at 4 px plus the 16 px quiet zone, deterministic', () => {
    const svg = qrSvg(text);
    expect(svg.startsWith('<?xml')).toBe(true);
    expect(svg).toContain(`viewBox="0 0 ${77 * 4 + 32} ${77 * 4 + 32}"`);
    expect(svg).toMatch(/<path d="M[0-9lz ,\-M]+"/);
    expect(qrSvg(text)).toBe(svg);
    expect(qrSvg(`${text.slice(0, -1)}0`)).not.toBe(svg);
  });

  it('refuses what is not package text, and a package too large for one code', () => {
    for (const bad of ['tsp1:lowercase', '', `${'A'.repeat(4000)}`]) {
      const e = (() => {
        try {
          qrSvg(bad);
        } catch (x) {
          return x as TesseraError;
        }
      })();
      expect(e?.code).toBe('INVALID_ARGUMENT');
    }
  });
});

/**
 * An offline package as a QR code, for a merchant's terminal to scan while the phone is offline.
 * The package's text form (`TSP1:` + base45) uses only the 45 characters of QR's alphanumeric
 * mode, so it is encoded in that mode (5.5 bits a character instead of 8): a 2-of-3 Ed25519
 * package of 358 bytes fits a version-15 code (77 × 77 modules) at error-correction level M. Rendering by
 * `qrcode-generator` (MIT, no dependencies): SVG for files and pages, half-block characters for
 * terminals.
 */
import qrcode from 'qrcode-generator';
import { CliError } from './errors.js';

function encode(text: string): ReturnType<typeof qrcode> {
  if (!/^[0-9A-Z $%*+\-./:]+$/.test(text))
    throw new CliError('INVALID_ARGUMENT', 'a QR package must be the package text (TSP1: and base45)');
  const qr = qrcode(0, 'M');
  qr.addData(text, 'Alphanumeric');
  try {
    qr.make();
  } catch {
    throw new CliError('INVALID_ARGUMENT', `the package (${text.length} characters) is too large for one QR code`);
  }
  return qr;
}

/** The QR code's size in modules (21 for version 1, +4 per version). */
export function qrModules(text: string): number {
  return encode(text).getModuleCount();
}

/** For a terminal: two module rows per line in half-block characters, with a quiet zone. */
export function qrTerminal(text: string): string {
  return encode(text).createASCII(1, 2);
}

/** An SVG document of the code (4 px modules, the standard 4-module quiet zone). */
export function qrSvg(text: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${encode(text).createSvgTag({ cellSize: 4, margin: 16, scalable: true })}\n`;
}

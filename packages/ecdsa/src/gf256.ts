/**
 * GF(2^256) for the OT-extension consistency check ([DKLs23] §5.1: under Fiat–Shamir the check
 * blocks are 2·λ_c = 256 bits, so a prover that grinds challenges still faces 2^-128 per try).
 * Modulus X^256 + X^10 + X^5 + X^2 + 1 (irreducible; the test checks it with Rabin's test).
 * Not curve arithmetic — no library offers this binary field — and only used on public check
 * values, so it need not be constant-time. An element is 32 bytes; bit i (byte ⌊i/8⌋, least
 * significant bit first) is the coefficient of X^i. Internally eight little-endian 32-bit words.
 */

const WORDS = 8;
/** X^256 ≡ X^10 + X^5 + X^2 + 1. */
const REDUCE = (1 << 10) | (1 << 5) | (1 << 2) | 1;

function toWords(b: Uint8Array): Uint32Array {
  if (b.length !== 32) throw new Error('GF(2^256) element must be 32 bytes');
  const w = new Uint32Array(WORDS);
  for (let i = 0; i < WORDS; i++)
    w[i] =
      ((b[4 * i] as number) |
        ((b[4 * i + 1] as number) << 8) |
        ((b[4 * i + 2] as number) << 16) |
        ((b[4 * i + 3] as number) << 24)) >>>
      0;
  return w;
}

function toBytes(w: Uint32Array): Uint8Array {
  const b = new Uint8Array(32);
  for (let i = 0; i < WORDS; i++) {
    const x = w[i] as number;
    b[4 * i] = x & 0xff;
    b[4 * i + 1] = (x >>> 8) & 0xff;
    b[4 * i + 2] = (x >>> 16) & 0xff;
    b[4 * i + 3] = x >>> 24;
  }
  return b;
}

/**
 * Multiplication by a fixed element, with a table of its products by X^0..X^255 (built once):
 * each product then costs one XOR of a table row per set bit of the other factor.
 */
export class GfMultiplier {
  readonly #rows: Uint32Array;

  constructor(a: Uint8Array) {
    this.#rows = new Uint32Array(256 * WORDS);
    const cur = toWords(a);
    for (let i = 0; i < 256; i++) {
      this.#rows.set(cur, i * WORDS);
      // cur ← cur·X mod the modulus
      const carry = (cur[WORDS - 1] as number) >>> 31;
      for (let k = WORDS - 1; k > 0; k--) cur[k] = (((cur[k] as number) << 1) | ((cur[k - 1] as number) >>> 31)) >>> 0;
      cur[0] = ((cur[0] as number) << 1) >>> 0;
      if (carry) cur[0] = ((cur[0] as number) ^ REDUCE) >>> 0;
    }
  }

  /** a·b, XORed into `acc` (eight words). */
  mulInto(b: Uint8Array, offset: number, acc: Uint32Array): void {
    const rows = this.#rows;
    for (let byte = 0; byte < 32; byte++) {
      let v = b[offset + byte] as number;
      let base = byte * 8 * WORDS;
      while (v) {
        if (v & 1) for (let k = 0; k < WORDS; k++) acc[k] = ((acc[k] as number) ^ (rows[base + k] as number)) >>> 0;
        v >>>= 1;
        base += WORDS;
      }
    }
  }

  mul(b: Uint8Array): Uint8Array {
    const acc = new Uint32Array(WORDS);
    this.mulInto(b, 0, acc);
    return toBytes(acc);
  }
}

/** a·b in GF(2^256). */
export function gfMul(a: Uint8Array, b: Uint8Array): Uint8Array {
  return new GfMultiplier(a).mul(b);
}

/**
 * The check's fold of a 96-byte (768-bit) string y = y1 ‖ y2 ‖ y3 of three 256-bit blocks:
 * χ1·y1 + χ2·y2 + y3 ([DKLs23] §5.1, the KOS/SoftSpokenOT universal hash with one mask block).
 */
export function fold(chi1: GfMultiplier, chi2: GfMultiplier, y: Uint8Array): Uint8Array {
  if (y.length !== 96) throw new Error('fold takes 96 bytes');
  const acc = toWords(y.subarray(64, 96));
  chi1.mulInto(y, 0, acc);
  chi2.mulInto(y, 32, acc);
  return toBytes(acc);
}

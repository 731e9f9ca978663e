/**
 * The sealing AEAD: XChaCha20-Poly1305 as HChaCha20 (noble) + ChaCha20-Poly1305 (Node's OpenSSL).
 * Known answers from draft-irtf-cfrg-xchacha-03 Appendix A.3.1, and a differential property
 * test against noble's `xchacha20poly1305` on random inputs (both directions, tampering).
 */
import { getCiphers } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { _aeadPaths, ENVELOPE_OVERHEAD, nativeAeadInUse, openEnvelope, sealEnvelope } from '../src/aead.js';

const h = (x: string) => Uint8Array.from(Buffer.from(x, 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

// draft-irtf-cfrg-xchacha-03, A.3.1 (AEAD_XChaCha20_Poly1305)
const KAT = {
  plaintext: new TextEncoder().encode(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  ),
  aad: h('50515253c0c1c2c3c4c5c6c7'),
  key: h('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f'),
  nonce: h('404142434445464748494a4b4c4d4e4f5051525354555657'),
  ciphertext:
    'bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e',
  tag: 'c0875924c1c7987947deafd8780acf49',
};

describe('sealing AEAD (XChaCha20-Poly1305)', () => {
  it('runs on OpenSSL wherever the runtime has ChaCha20-Poly1305 (little-endian hosts)', () => {
    const le = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
    expect(nativeAeadInUse()).toBe(le && getCiphers().includes('chacha20-poly1305'));
  });

  for (const [name, path] of Object.entries(_aeadPaths)) {
    it(`${name}: draft-irtf-cfrg-xchacha A.3.1 known answer, and refuses the answer tampered`, () => {
      const sealed = path.seal(KAT.key, KAT.nonce, KAT.aad, KAT.plaintext);
      expect(hex(sealed)).toBe(KAT.ciphertext + KAT.tag);
      expect(hex(path.open(KAT.key, KAT.nonce, KAT.aad, sealed) as Uint8Array)).toBe(hex(KAT.plaintext));
      const bad = sealed.slice();
      bad[bad.length - 1]! ^= 0x80;
      expect(path.open(KAT.key, KAT.nonce, KAT.aad, bad)).toBeUndefined();
      expect(path.open(KAT.key, KAT.nonce, h('50515253c0c1c2c3c4c5c6c8'), sealed)).toBeUndefined();
    });
  }

  it('OpenSSL and noble agree byte for byte, and each opens what the other sealed (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 24, maxLength: 24 }),
        fc.uint8Array({ maxLength: 80 }),
        fc.uint8Array({ maxLength: 700 }),
        fc.nat(),
        (key, nonce, aad, plain, flip) => {
          const a = _aeadPaths.native.seal(key, nonce, aad, plain);
          const b = _aeadPaths.noble.seal(key, nonce, aad, plain);
          expect(hex(a)).toBe(hex(b));
          expect(hex(_aeadPaths.native.open(key, nonce, aad, b) as Uint8Array)).toBe(hex(plain));
          expect(hex(_aeadPaths.noble.open(key, nonce, aad, a) as Uint8Array)).toBe(hex(plain));
          // Any one flipped bit of ciphertext or tag: both refuse.
          const bad = a.slice();
          const bit = flip % (bad.length * 8);
          bad[bit >> 3]! ^= 1 << (bit & 7);
          expect(_aeadPaths.native.open(key, nonce, aad, bad)).toBeUndefined();
          expect(_aeadPaths.noble.open(key, nonce, aad, bad)).toBeUndefined();
        },
      ),
      { numRuns: 300 },
    );
  });

  it("never writes to the caller's key or nonce (also when they are views into a larger buffer)", () => {
    const pool = Buffer.alloc(200, 7);
    const key = pool.subarray(13, 45); // unaligned view, as a Buffer's slice() would give
    const before = Buffer.from(pool);
    const sealed = sealEnvelope(key, new Uint8Array([1, 2, 3]), new Uint8Array(0));
    expect(openEnvelope(key, sealed, new Uint8Array(0))).toEqual(new Uint8Array([1, 2, 3]));
    expect(Buffer.compare(pool, before)).toBe(0);
    const opened = openEnvelope(key, sealed, new Uint8Array(0)) as Uint8Array;
    expect(opened.constructor).toBe(Uint8Array); // a plain array the caller owns, not a pooled Buffer view
    expect(opened.byteOffset).toBe(0);
  });

  it('envelopes: version byte, fresh nonce per seal, fixed overhead; malformed envelopes open to undefined', () => {
    const key = new Uint8Array(32).fill(1);
    const aad = new TextEncoder().encode('d/x');
    const a = sealEnvelope(key, new Uint8Array(10), aad);
    const b = sealEnvelope(key, new Uint8Array(10), aad);
    expect(a.length).toBe(10 + ENVELOPE_OVERHEAD);
    expect(a[0]).toBe(1);
    expect(hex(a.subarray(1, 25))).not.toBe(hex(b.subarray(1, 25)));
    expect(openEnvelope(key, a.subarray(0, ENVELOPE_OVERHEAD - 1), aad)).toBeUndefined();
    expect(openEnvelope(key, Uint8Array.of(2, ...a.subarray(1)), aad)).toBeUndefined();
    expect(openEnvelope(new Uint8Array(32).fill(2), a, aad)).toBeUndefined();
  });
});

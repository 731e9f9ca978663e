/**
 * HPKE with the X-Wing hybrid KEM (0x647A) / HKDF-SHA256 / ChaCha20Poly1305: the HPKE working
 * group's known answers, then the dispatch in hpkeSeal/hpkeOpen and properties.
 */
import { ml_kem768_x25519 } from '@noble/post-quantum/hybrid.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../src/bytes.js';
import { ErrorCode } from '../src/errors.js';
import { hpkeGenerateKeyPair, hpkeOpen, hpkeSeal } from '../src/hpke.js';
import {
  HPKE_XWING_SUITE,
  XWING_ENC_BYTES,
  XWING_PUBLIC_KEY_BYTES,
  setupXWingReceiver,
  setupXWingSender,
  xwingPublicKey,
} from '../src/hpke-xwing.js';
import { codeOf, fixedRng } from './helpers.js';
import V from './vectors/hpke/xwing-base.json' with { type: 'json' };

const h = (s: string): Uint8Array => fromHex(s);

describe('X-Wing HPKE known answers (HPKE WG vectors, mode_base, 0x647A/0x0001/0x0003)', () => {
  const info = h(V.info);

  it('the vector is this suite', () => {
    expect([V.mode, V.kem_id, V.kdf_id, V.aead_id]).toEqual([
      0,
      HPKE_XWING_SUITE.kem,
      HPKE_XWING_SUITE.kdf,
      HPKE_XWING_SUITE.aead,
    ]);
  });

  it('public key from the secret seed; the KEM is X-Wing (shared secret as published)', () => {
    expect(toHex(xwingPublicKey(h(V.skRm)))).toBe(V.pkRm);
    expect(toHex(ml_kem768_x25519.decapsulate(h(V.enc), h(V.skRm)))).toBe(V.shared_secret);
  });

  it('sender: enc from ikmE, then every ciphertext in sequence and every export', () => {
    const s = setupXWingSender(h(V.pkRm), info, h(V.ikmE));
    expect(toHex(s.enc)).toBe(V.enc);
    for (const e of V.encryptions) expect(toHex(s.seal(h(e.aad), h(e.pt)))).toBe(e.ct);
    for (const x of V.exports) expect(toHex(s.export(h(x.exporter_context), x.L))).toBe(x.exported_value);
  });

  it('receiver: opens every ciphertext in sequence and exports the same values', () => {
    const r = setupXWingReceiver(h(V.enc), h(V.skRm), info);
    for (const e of V.encryptions) expect(toHex(r.open(h(e.aad), h(e.ct)))).toBe(e.pt);
    for (const x of V.exports) expect(toHex(r.export(h(x.exporter_context), x.L))).toBe(x.exported_value);
  });

  it('hpkeSeal to the vector key with ikmE as randomness gives the vector enc and first ciphertext', () => {
    const first = V.encryptions[0] as (typeof V.encryptions)[number];
    const box = hpkeSeal(h(V.pkRm), info, h(first.aad), h(first.pt), fixedRng(h(V.ikmE)));
    expect(toHex(box.enc)).toBe(V.enc);
    expect(toHex(box.ciphertext)).toBe(first.ct);
    expect(toHex(hpkeOpen(h(V.skRm), box.enc, info, h(first.aad), box.ciphertext))).toBe(first.pt);
  });
});

describe('one seal for both suites', () => {
  const seed = new Uint8Array(32).map((_, i) => i + 1);
  const pk = xwingPublicKey(seed);

  it('a 1216-byte key is sealed with X-Wing, a 32-byte key with DHKEM(X25519); each opens with its secret', () => {
    const msg = new TextEncoder().encode('share');
    const hybrid = hpkeSeal(pk, new Uint8Array(0), new Uint8Array(0), msg);
    expect(pk.length).toBe(XWING_PUBLIC_KEY_BYTES);
    expect(hybrid.enc.length).toBe(XWING_ENC_BYTES);
    expect(hpkeOpen(seed, hybrid.enc, new Uint8Array(0), new Uint8Array(0), hybrid.ciphertext)).toEqual(msg);
    const classic = hpkeGenerateKeyPair();
    const old = hpkeSeal(classic.publicKey, new Uint8Array(0), new Uint8Array(0), msg);
    expect(old.enc.length).toBe(32);
    expect(hpkeOpen(classic.secretKey, old.enc, new Uint8Array(0), new Uint8Array(0), old.ciphertext)).toEqual(msg);
    // Crossing suites never opens.
    expect(
      codeOf(() => hpkeOpen(classic.secretKey, hybrid.enc, new Uint8Array(0), new Uint8Array(0), hybrid.ciphertext)),
    ).toBe(ErrorCode.DECRYPT);
    expect(codeOf(() => hpkeOpen(seed, old.enc, new Uint8Array(0), new Uint8Array(0), old.ciphertext))).toBe(
      ErrorCode.DECRYPT,
    );
  });

  it('round-trips any plaintext, aad and info', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.uint8Array({ maxLength: 40 }),
        (pt, aad, info) => {
          const box = hpkeSeal(pk, info, aad, pt);
          expect(hpkeOpen(seed, box.enc, info, aad, box.ciphertext)).toEqual(pt);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('a changed enc, ciphertext, aad or info, or another secret, fails with DECRYPT', () => {
    const info = new TextEncoder().encode('info');
    const aad = new TextEncoder().encode('aad');
    const box = hpkeSeal(pk, info, aad, new TextEncoder().encode('secret share'));
    fc.assert(
      fc.property(fc.nat(XWING_ENC_BYTES - 1), fc.integer({ min: 1, max: 255 }), (i, mask) => {
        const enc = box.enc.slice();
        enc[i] = (enc[i] as number) ^ mask;
        expect(codeOf(() => hpkeOpen(seed, enc, info, aad, box.ciphertext))).toBe(ErrorCode.DECRYPT);
      }),
      { numRuns: 20 },
    );
    const ct = box.ciphertext.slice();
    ct[0] = (ct[0] as number) ^ 1;
    expect(codeOf(() => hpkeOpen(seed, box.enc, info, aad, ct))).toBe(ErrorCode.DECRYPT);
    expect(codeOf(() => hpkeOpen(seed, box.enc, info, new Uint8Array(0), box.ciphertext))).toBe(ErrorCode.DECRYPT);
    expect(codeOf(() => hpkeOpen(seed, box.enc, new Uint8Array(0), aad, box.ciphertext))).toBe(ErrorCode.DECRYPT);
    const other = seed.slice();
    other[0] = (other[0] as number) ^ 1;
    expect(codeOf(() => hpkeOpen(other, box.enc, info, aad, box.ciphertext))).toBe(ErrorCode.DECRYPT);
    expect(codeOf(() => hpkeOpen(seed, box.enc.subarray(1), info, aad, box.ciphertext))).toBe(ErrorCode.DECRYPT);
  });

  it('a public key X-Wing refuses is a caller error, and nothing is sealed', () => {
    const bad = new Uint8Array(XWING_PUBLIC_KEY_BYTES).fill(0xff);
    expect(codeOf(() => hpkeSeal(bad, new Uint8Array(0), new Uint8Array(0), new Uint8Array(1)))).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
  });
});

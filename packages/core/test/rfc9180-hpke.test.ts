/**
 * HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20Poly1305:
 * known answers from RFC 9180 Appendix A.2.1, then properties.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, fromHex, toHex, utf8ToBytes } from '../src/bytes.js';
import { ErrorCode } from '../src/errors.js';
import {
  HPKE_SUITE,
  hpkeGenerateKeyPair,
  hpkeKeyPairFromSeed,
  hpkeOpen,
  hpkeSeal,
  setupBaseReceiver,
  setupBaseSender,
} from '../src/hpke.js';
import { codeOf, fixedRng } from './helpers.js';
import V from './vectors/hpke/rfc9180-a2-base.json' with { type: 'json' };

const h = (s: string): Uint8Array => fromHex(s);

/** Test-side transcription of RFC 9180 §4 LabeledExtract/LabeledExpand, for the vector chain. */
const ref = {
  kemSuiteId: concatBytes(utf8ToBytes('KEM'), Uint8Array.of(0x00, 0x20)),
  hpkeSuiteId: concatBytes(utf8ToBytes('HPKE'), Uint8Array.of(0x00, 0x20, 0x00, 0x01, 0x00, 0x03)),
  labeledExtract(suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
    return extract(sha256, concatBytes(utf8ToBytes('HPKE-v1'), suiteId, utf8ToBytes(label), ikm), salt);
  },
  labeledExpand(suiteId: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, L: number): Uint8Array {
    const li = concatBytes(Uint8Array.of(L >> 8, L & 0xff), utf8ToBytes('HPKE-v1'), suiteId, utf8ToBytes(label), info);
    return expand(sha256, prk, li, L);
  },
};

describe('RFC 9180 A.2.1 known answers (mode_base)', () => {
  const info = h(V.info);
  const eph = { secretKey: h(V.skEm), publicKey: h(V.pkEm) };
  const byseq = new Map(V.encryptions.map((e) => [e.sequence_number, e]));
  const lastSeq = Math.max(...byseq.keys());

  it('is the suite this module speaks', () => {
    expect([V.mode, V.kem_id, V.kdf_id, V.aead_id]).toEqual([0, HPKE_SUITE.kem, HPKE_SUITE.kdf, HPKE_SUITE.aead]);
  });

  it('DeriveKeyPair(ikmE), DeriveKeyPair(ikmR) give skEm/pkEm and skRm/pkRm', () => {
    const e = hpkeKeyPairFromSeed(h(V.ikmE));
    expect(toHex(e.secretKey)).toBe(V.skEm);
    expect(toHex(e.publicKey)).toBe(V.pkEm);
    const r = hpkeKeyPairFromSeed(h(V.ikmR));
    expect(toHex(r.secretKey)).toBe(V.skRm);
    expect(toHex(r.publicKey)).toBe(V.pkRm);
    // GenerateKeyPair is DeriveKeyPair over the rng's 32 bytes.
    expect(toHex(hpkeGenerateKeyPair(fixedRng(h(V.ikmR))).secretKey)).toBe(V.skRm);
  });

  it('sender: enc and every listed encryption (seq 0, 1, 2, 4, 255, 256), in sequence', () => {
    const sender = setupBaseSender(h(V.pkRm), info, eph);
    expect(toHex(sender.enc)).toBe(V.enc);
    const receiver = setupBaseReceiver(h(V.enc), h(V.skRm), info);
    let checked = 0;
    for (let seq = 0; seq <= lastSeq; seq++) {
      const v = byseq.get(seq);
      // Unlisted sequence numbers are advanced with filler messages through both contexts.
      const aad = v ? h(v.aad) : utf8ToBytes(`Count-${seq}`);
      const pt = v ? h(v.pt) : utf8ToBytes('filler');
      const ct = sender.seal(aad, pt);
      if (v) {
        expect(toHex(ct), `seq ${seq}`).toBe(v.ct);
        checked++;
      }
      expect(toHex(receiver.open(aad, ct)), `seq ${seq}`).toBe(toHex(pt));
    }
    expect(checked).toBe(6);
  });

  it('receiver: opens the listed ciphertexts at their sequence numbers', () => {
    const receiver = setupBaseReceiver(h(V.enc), h(V.skRm), info);
    const sender = setupBaseSender(h(V.pkRm), info, eph); // only to produce the unlisted fillers
    for (let seq = 0; seq <= lastSeq; seq++) {
      const v = byseq.get(seq);
      if (v) {
        sender.seal(h(v.aad), h(v.pt)); // keep the filler source in step
        expect(toHex(receiver.open(h(v.aad), h(v.ct))), `seq ${seq}`).toBe(v.pt);
      } else {
        const aad = utf8ToBytes(`Count-${seq}`);
        receiver.open(aad, sender.seal(aad, utf8ToBytes('filler')));
      }
    }
  });

  it('key schedule: key and base_nonce give every listed nonce and ciphertext', () => {
    const baseNonce = h(V.base_nonce);
    for (const v of V.encryptions) {
      const seqBytes = new Uint8Array(12);
      new DataView(seqBytes.buffer).setBigUint64(4, BigInt(v.sequence_number));
      const nonce = baseNonce.map((b, i) => b ^ (seqBytes[i] as number)); // §5.2 ComputeNonce
      expect(toHex(nonce)).toBe(v.nonce);
      expect(toHex(chacha20poly1305(h(V.key), nonce, h(v.aad)).encrypt(h(v.pt)))).toBe(v.ct);
    }
  });

  it('exported values, from both contexts and from exporter_secret', () => {
    const sender = setupBaseSender(h(V.pkRm), info, eph);
    const receiver = setupBaseReceiver(h(V.enc), h(V.skRm), info);
    for (const x of V.exports) {
      const ctx = h(x.exporter_context);
      expect(toHex(sender.export(ctx, x.L))).toBe(x.exported_value);
      expect(toHex(receiver.export(ctx, x.L))).toBe(x.exported_value);
      expect(toHex(ref.labeledExpand(ref.hpkeSuiteId, h(V.exporter_secret), 'sec', ctx, x.L))).toBe(x.exported_value);
    }
  });

  it('vector chain: DH -> shared_secret -> key_schedule_context -> secret -> key, base_nonce, exporter_secret', () => {
    // An independent transcription of the RFC pseudocode, checking the vector data end to end.
    const dh = x25519.getSharedSecret(h(V.skRm), h(V.enc));
    expect(toHex(x25519.getSharedSecret(h(V.skEm), h(V.pkRm)))).toBe(toHex(dh));
    const eaePrk = ref.labeledExtract(ref.kemSuiteId, new Uint8Array(0), 'eae_prk', dh);
    const sharedSecret = ref.labeledExpand(
      ref.kemSuiteId,
      eaePrk,
      'shared_secret',
      concatBytes(h(V.enc), h(V.pkRm)),
      32,
    );
    expect(toHex(sharedSecret)).toBe(V.shared_secret);
    const empty = new Uint8Array(0);
    const ksc = concatBytes(
      Uint8Array.of(V.mode),
      ref.labeledExtract(ref.hpkeSuiteId, empty, 'psk_id_hash', empty),
      ref.labeledExtract(ref.hpkeSuiteId, empty, 'info_hash', info),
    );
    expect(toHex(ksc)).toBe(V.key_schedule_context);
    const secret = ref.labeledExtract(ref.hpkeSuiteId, sharedSecret, 'secret', empty);
    expect(toHex(secret)).toBe(V.secret);
    expect(toHex(ref.labeledExpand(ref.hpkeSuiteId, secret, 'key', ksc, 32))).toBe(V.key);
    expect(toHex(ref.labeledExpand(ref.hpkeSuiteId, secret, 'base_nonce', ksc, 12))).toBe(V.base_nonce);
    expect(toHex(ref.labeledExpand(ref.hpkeSuiteId, secret, 'exp', ksc, 32))).toBe(V.exporter_secret);
  });

  it('single-shot hpkeSeal (ephemeral seed ikmE) and hpkeOpen reproduce seq 0', () => {
    const v0 = byseq.get(0)!;
    const box = hpkeSeal(h(V.pkRm), info, h(v0.aad), h(v0.pt), fixedRng(h(V.ikmE)));
    expect(toHex(box.enc)).toBe(V.enc);
    expect(toHex(box.ciphertext)).toBe(v0.ct);
    expect(toHex(hpkeOpen(h(V.skRm), h(V.enc), info, h(v0.aad), h(v0.ct)))).toBe(v0.pt);
  });
});

describe('HPKE argument and input validation', () => {
  const r = hpkeKeyPairFromSeed(h(V.ikmR));
  const e = hpkeKeyPairFromSeed(h(V.ikmE));
  const none = new Uint8Array(0);
  // X25519 u-coordinates of small order (0, 1, the two of order 8, p-1) and non-canonical p, p+1.
  const lowOrder = [
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0100000000000000000000000000000000000000000000000000000000000000',
    'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
    '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  ].map(h);

  it('wrong-length keys and seeds are INVALID_ARGUMENT', () => {
    const inv = ErrorCode.INVALID_ARGUMENT;
    expect(codeOf(() => hpkeSeal(new Uint8Array(31), none, none, none))).toBe(inv);
    expect(codeOf(() => hpkeSeal(new Uint8Array(33), none, none, none))).toBe(inv);
    expect(codeOf(() => hpkeOpen(new Uint8Array(31), e.publicKey, none, none, new Uint8Array(16)))).toBe(inv);
    expect(codeOf(() => hpkeOpen(new Uint8Array(33), e.publicKey, none, none, new Uint8Array(16)))).toBe(inv);
    expect(codeOf(() => hpkeKeyPairFromSeed(new Uint8Array(31)))).toBe(inv);
    expect(codeOf(() => setupBaseSender(new Uint8Array(31), none, e))).toBe(inv);
    expect(
      codeOf(() => setupBaseSender(r.publicKey, none, { secretKey: e.secretKey, publicKey: new Uint8Array(31) })),
    ).toBe(inv);
    expect(codeOf(() => setupBaseSender(r.publicKey, none, { secretKey: e.secretKey, publicKey: r.publicKey }))).toBe(
      inv,
    );
    expect(codeOf(() => setupBaseReceiver(e.publicKey, new Uint8Array(31), none))).toBe(inv);
    expect(codeOf(() => setupBaseSender(r.publicKey, none, e).export(none, 255 * 32 + 1))).toBe(inv);
  });

  it('a low-order recipient key is refused at seal (§7.1.4 all-zero DH)', () => {
    for (const pk of lowOrder)
      expect(
        codeOf(() => hpkeSeal(pk, none, none, none)),
        toHex(pk),
      ).toBe(ErrorCode.INVALID_ARGUMENT);
  });

  it('a low-order or wrong-length enc fails to open with DECRYPT', () => {
    const box = hpkeSeal(r.publicKey, none, none, utf8ToBytes('hi'));
    for (const enc of [...lowOrder, new Uint8Array(31), new Uint8Array(33), none])
      expect(
        codeOf(() => hpkeOpen(r.secretKey, enc, none, none, box.ciphertext)),
        toHex(enc),
      ).toBe(ErrorCode.DECRYPT);
    expect(codeOf(() => hpkeOpen(r.secretKey, box.enc, none, none, box.ciphertext.subarray(0, 15)))).toBe(
      ErrorCode.DECRYPT,
    );
  });

  it('a failed open does not advance the receiver sequence (§5.2)', () => {
    const sender = setupBaseSender(r.publicKey, none, e);
    const receiver = setupBaseReceiver(sender.enc, r.secretKey, none);
    const ct0 = sender.seal(none, utf8ToBytes('zero'));
    const bad = ct0.slice();
    bad[0] = (bad[0] as number) ^ 1;
    expect(codeOf(() => receiver.open(none, bad))).toBe(ErrorCode.DECRYPT);
    expect(toHex(receiver.open(none, ct0))).toBe(toHex(utf8ToBytes('zero')));
  });

  it('the DECRYPT message carries no key bytes', () => {
    const box = hpkeSeal(r.publicKey, none, none, utf8ToBytes('hi'));
    const bad = box.ciphertext.slice();
    bad[0] = (bad[0] as number) ^ 1;
    try {
      hpkeOpen(r.secretKey, box.enc, none, none, bad);
      expect.unreachable();
    } catch (err) {
      const msg = String((err as Error).message);
      expect(msg).not.toContain(toHex(r.secretKey));
      expect(msg).not.toMatch(/[0-9a-f]{16}/);
    }
  });
});

describe('HPKE properties', () => {
  const seed = fc.uint8Array({ minLength: 32, maxLength: 32 });
  const bytes = (maxLength: number) => fc.uint8Array({ maxLength });
  const sealWith = (rSeed: Uint8Array, eSeed: Uint8Array, info: Uint8Array, aad: Uint8Array, pt: Uint8Array) => {
    const r = hpkeKeyPairFromSeed(rSeed);
    return { r, box: hpkeSeal(r.publicKey, info, aad, pt, fixedRng(eSeed)) };
  };

  it('open(seal(x)) === x', () => {
    fc.assert(
      fc.property(seed, seed, bytes(64), bytes(64), bytes(512), (rs, es, info, aad, pt) => {
        const { r, box } = sealWith(rs, es, info, aad, pt);
        expect(box.enc.length).toBe(32);
        expect(box.ciphertext.length).toBe(pt.length + 16);
        expect(toHex(hpkeOpen(r.secretKey, box.enc, info, aad, box.ciphertext))).toBe(toHex(pt));
      }),
    );
  });

  it('flipping any byte of enc or ciphertext makes open fail with DECRYPT', () => {
    fc.assert(
      fc.property(
        seed,
        seed,
        bytes(32),
        bytes(32),
        bytes(64),
        fc.boolean(),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (rs, es, info, aad, pt, inEnc, at, mask) => {
          const { r, box } = sealWith(rs, es, info, aad, pt);
          const enc = box.enc.slice();
          const ct = box.ciphertext.slice();
          const target = inEnc ? enc : ct;
          const i = at % target.length;
          target[i] = (target[i] as number) ^ mask;
          expect(codeOf(() => hpkeOpen(r.secretKey, enc, info, aad, ct))).toBe(ErrorCode.DECRYPT);
        },
      ),
    );
  });

  it('a different info or aad makes open fail with DECRYPT', () => {
    fc.assert(
      fc.property(
        seed,
        seed,
        bytes(32),
        bytes(32),
        bytes(32),
        bytes(64),
        fc.boolean(),
        (rs, es, info, aad, other, pt, swapInfo) => {
          fc.pre(toHex(other) !== toHex(swapInfo ? info : aad));
          const { r, box } = sealWith(rs, es, info, aad, pt);
          const [i2, a2] = swapInfo ? [other, aad] : [info, other];
          expect(codeOf(() => hpkeOpen(r.secretKey, box.enc, i2, a2, box.ciphertext))).toBe(ErrorCode.DECRYPT);
        },
      ),
    );
  });

  it("another recipient's key fails with DECRYPT", () => {
    fc.assert(
      fc.property(seed, seed, seed, bytes(32), bytes(32), bytes(64), (rs, os, es, info, aad, pt) => {
        fc.pre(toHex(rs) !== toHex(os));
        const { box } = sealWith(rs, es, info, aad, pt);
        const other = hpkeKeyPairFromSeed(os);
        expect(codeOf(() => hpkeOpen(other.secretKey, box.enc, info, aad, box.ciphertext))).toBe(ErrorCode.DECRYPT);
      }),
    );
  });
});

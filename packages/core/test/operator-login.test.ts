/**
 * The operator console's signed login (operator-login.ts): the bytes signed are fixed (a
 * known answer), the signature is plain RFC 8032 Ed25519 under the operator's key, and it binds
 * the challenge and the console's origin.
 */
import fc from 'fast-check';
import { ed25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  fromHex,
  operatorLoginMessage,
  signOperatorLogin,
  toHex,
  verifyParticipantSignature,
} from '../src/index.js';

describe('operator login', () => {
  it('signs exactly "tessera-console-login/v1\\n<origin>\\n<challenge>" (known answer)', () => {
    const challenge = 'ab'.repeat(32);
    expect(new TextDecoder().decode(operatorLoginMessage('http://127.0.0.1:7491', challenge))).toBe(
      `tessera-console-login/v1\nhttp://127.0.0.1:7491\n${challenge}`,
    );
    const seed = new Uint8Array(32).fill(1);
    const a = signOperatorLogin(seed, 'http://127.0.0.1:7491', challenge);
    expect(a.publicKey).toBe(toHex(ed25519.getPublicKey(seed)));
    // RFC 8032 is deterministic: the same bytes as noble's plain Ed25519 over the message.
    expect(a.signature).toBe(toHex(ed25519.sign(operatorLoginMessage('http://127.0.0.1:7491', challenge), seed)));
  });

  it('verifies under the key for its own origin and challenge only', () => {
    const hex = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(toHex);
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        hex,
        hex,
        fc.integer({ min: 1, max: 65535 }),
        (seed, c1, c2, port) => {
          const origin = `http://127.0.0.1:${port}`;
          const a = signOperatorLogin(seed, origin, c1);
          const pk = fromHex(a.publicKey);
          expect(verifyParticipantSignature(pk, operatorLoginMessage(origin, c1), fromHex(a.signature))).toBe(true);
          expect(
            verifyParticipantSignature(pk, operatorLoginMessage(`http://localhost:${port}`, c1), fromHex(a.signature)),
          ).toBe(false);
          if (c1 !== c2)
            expect(verifyParticipantSignature(pk, operatorLoginMessage(origin, c2), fromHex(a.signature))).toBe(false);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('refuses a malformed challenge, origin or key with a typed error', () => {
    for (const [origin, challenge] of [
      ['http://127.0.0.1:7491', 'AB'.repeat(32)],
      ['http://127.0.0.1:7491', 'ab'.repeat(31)],
      ['http://127.0.0.1:7491/path', 'ab'.repeat(32)],
      ['javascript:alert(1)', 'ab'.repeat(32)],
      ['http://a\nb', 'ab'.repeat(32)],
    ] as const)
      expect(() => operatorLoginMessage(origin, challenge)).toThrow(InvalidArgumentError);
    expect(() => signOperatorLogin(new Uint8Array(31), 'http://127.0.0.1:1', 'ab'.repeat(32))).toThrow(
      InvalidArgumentError,
    );
  });
});

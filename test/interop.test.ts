/**
 * Signatures verify with implementations that share no code with noble: OpenSSL and libsodium
 * for Ed25519, libsecp256k1 for BIP340 — for random keys, quorums and messages — and the same
 * verifiers reject a signature over another message.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ParticipantIdentity, getSuite, groupPublicKey, runLocalDkg, runLocalSign } from '@tessera/core';
import { externalVerifiers } from './verifiers.js';

describe.each(['ed25519', 'secp256k1-tr'] as const)('external verifiers accept %s signatures', (suiteId) => {
  const suite = getSuite(suiteId);
  const ids = ['a', 'b', 'c', 'd', 'e'].map((x) => ParticipantIdentity.generate(x));
  const out = runLocalDkg(suite, 3, ids);
  const key = out.get('a')!.key;
  const shares = new Map([...out].map(([id, o]) => [id, o.share]));
  const pk = groupPublicKey(key);
  const verifiers = externalVerifiers(suiteId);

  it('has at least one independent verifier', () => {
    expect(Object.keys(verifiers).length).toBeGreaterThan(0);
  });

  it.each(Object.keys(verifiers))('%s accepts random 3-of-5 signatures and rejects altered messages', (name) => {
    const verify = verifiers[name]!;
    fc.assert(
      fc.property(
        fc.shuffledSubarray(['a', 'b', 'c', 'd', 'e'], { minLength: 3, maxLength: 3 }), // libsecp256k1's binding takes 32-byte messages: what Taproot signs (a sighash).
        suiteId === 'secp256k1-tr'
          ? fc.uint8Array({ minLength: 32, maxLength: 32 })
          : fc.uint8Array({ minLength: 0, maxLength: 96 }),
        (quorum, msg) => {
          const sig = runLocalSign(key, shares, quorum, msg);
          expect(verify(sig, msg, pk)).toBe(true);
          const other = msg.slice();
          other[0] = (other[0] ?? 0) ^ 1;
          if (other.length === 0) return;
          expect(verify(sig, other, pk)).toBe(false);
        },
      ),
      { numRuns: 12 },
    );
  });
});

/**
 * Nothing secret prints: identities, key shares and nonces redact themselves in JSON, string
 * conversion and Node's inspector, and errors raised on bad input carry no secret bytes.
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ParticipantIdentity, commit, getSuite, hpkeOpen, runLocalDkg, toHex, type DkgOutput } from '../src/index.js';
import { identities } from './helpers.js';

function renderings(x: unknown): string[] {
  return [JSON.stringify(x), String(x), inspect(x, { depth: 5 }), inspect({ nested: x }, { depth: 5 })];
}

describe('secrets never print', () => {
  const ids = identities(3);
  const out = runLocalDkg(getSuite('ed25519'), 2, ids);
  const p1 = out.get('p1') as DkgOutput;

  it('a participant identity shows only its public keys', () => {
    const id = ParticipantIdentity.generate('alice');
    const { signSecret, encSecret } = id.exportSecrets();
    for (const r of renderings(id)) {
      expect(r).not.toContain(toHex(signSecret));
      expect(r).not.toContain(toHex(encSecret));
      expect(r).toContain('redacted');
    }
  });

  it('a key share shows no share bytes', () => {
    const secret = toHex(p1.share.signingShare());
    for (const r of renderings(p1.share)) {
      expect(r).not.toContain(secret);
      expect(r).toContain('redacted');
    }
    for (const r of renderings(p1)) expect(r).not.toContain(secret);
  });

  it('signing nonces show no nonce bytes', () => {
    const { nonces } = commit(p1.share);
    const secret = toHex(nonces.exportSecret());
    for (const r of renderings(nonces)) {
      expect(r).not.toContain(secret.slice(0, 64));
      expect(r).not.toContain(secret.slice(64));
    }
  });

  it('a failed decryption error carries no key material', () => {
    const id = ParticipantIdentity.generate('bob');
    const sk = id.encryptionSecret();
    try {
      hpkeOpen(sk, new Uint8Array(32).fill(9), new Uint8Array(0), new Uint8Array(0), new Uint8Array(48));
      expect.unreachable();
    } catch (e) {
      expect((e as { code: string }).code).toBe('DECRYPT');
      for (const r of renderings(e)) expect(r).not.toContain(toHex(sk));
    }
  });
});

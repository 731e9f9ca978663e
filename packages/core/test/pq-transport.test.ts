/**
 * Post-quantum share transport: new identities receive shares under X-Wing, identities made
 * before keep X25519, and a roster may mix both (a cluster upgrading one node at a time). Every
 * key that comes out signs, checked with the plain verifier.
 */
import { x25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import {
  EncKem,
  ParticipantIdentity,
  PayloadKind,
  XWING_ENC_BYTES,
  XWING_PUBLIC_KEY_BYTES,
  applyRefresh,
  decodeIdentityRecord,
  decodeMessage,
  encodeIdentityRecord,
  encodeMessage,
  getSuite,
  groupPublicKey,
  hpkeOpen,
  hpkeSeal,
  openEnvelope,
  refreshRound1,
  runLocalDkg,
  runLocalSign,
  signEnvelope,
  utf8ToBytes,
  type RefreshConfig,
} from '../src/index.js';
import { seededRng } from './helpers.js';

describe('identities', () => {
  it('a new identity has an X-Wing key; its record keeps the KEM; an old record (no KEM) is X25519 as before', () => {
    const id = ParticipantIdentity.generate('signer-9', seededRng('pq-id'));
    expect(id.encKem).toBe(EncKem.XWING);
    expect(id.public.encKey.length).toBe(XWING_PUBLIC_KEY_BYTES);
    const back = decodeIdentityRecord(encodeIdentityRecord(id));
    expect(back.encKem).toBe(EncKem.XWING);
    expect(back.public.encKey).toEqual(id.public.encKey);

    const s = id.exportSecrets();
    const old = encodeMessage('IdentityRecord', {
      version: 1,
      id: 'signer-9',
      signSecret: s.signSecret,
      encSecret: s.encSecret,
      encKem: 0,
    });
    const restored = decodeIdentityRecord(old);
    expect(restored.encKem).toBe(EncKem.X25519);
    expect(restored.public.encKey.length).toBe(32);
    expect(restored.public.signKey).toEqual(id.public.signKey);
  });

  it('an identity opens only in its own suite: its X-Wing seed is never used as an X25519 key', () => {
    const id = ParticipantIdentity.generate('p1', seededRng('pq-strict'));
    const info = utf8ToBytes('info');
    const none = new Uint8Array(0);
    // A box sealed classically to the X25519 key the seed would be, if used as a scalar.
    const asScalar = x25519.getPublicKey(id.encryptionSecret());
    const classic = hpkeSeal(asScalar, info, none, utf8ToBytes('share'));
    expect(hpkeOpen(id.encryptionSecret(), classic.enc, info, none, classic.ciphertext)).toEqual(utf8ToBytes('share'));
    expect(() => id.open(classic.enc, info, none, classic.ciphertext)).toThrow(
      expect.objectContaining({ code: 'DECRYPT' }),
    );
    const hybrid = hpkeSeal(id.public.encKey, info, none, utf8ToBytes('share'));
    expect(id.open(hybrid.enc, info, none, hybrid.ciphertext)).toEqual(utf8ToBytes('share'));
    // And a classic identity refuses an X-Wing-sized enc.
    const old = ParticipantIdentity.generate('p2', seededRng('pq-strict-2'), EncKem.X25519);
    expect(() => old.open(hybrid.enc, info, none, hybrid.ciphertext)).toThrow(
      expect.objectContaining({ code: 'DECRYPT' }),
    );
  });

  it('an unknown KEM in a record is refused', () => {
    const s = ParticipantIdentity.generate('p1', seededRng('pq-bad')).exportSecrets();
    const bad = encodeMessage('IdentityRecord', { version: 1, id: 'p1', ...s, encKem: 0x9999 });
    expect(() => decodeIdentityRecord(bad)).toThrow(expect.objectContaining({ code: 'DECODE' }));
  });
});

describe('DKG and refresh over X-Wing, and over a mixed roster', () => {
  const suite = getSuite('ed25519');
  const roster = (kems: EncKem[]) =>
    kems.map((k, i) => ParticipantIdentity.generate(`p${i + 1}`, seededRng(`pq-${i}-${k}`), k));

  for (const [name, kems] of [
    ['all X-Wing', [EncKem.XWING, EncKem.XWING, EncKem.XWING]],
    ['mixed: one X25519 node not yet upgraded', [EncKem.XWING, EncKem.X25519, EncKem.XWING]],
  ] as const) {
    it(`${name}: DKG, a refresh whose shares are sealed to each recipient's KEM, and signing`, () => {
      const ids = roster([...kems]);
      const out = runLocalDkg(suite, 2, ids, seededRng(`dkg-${name}`));
      const key = out.get('p1')!.key;
      expect(ids.map((i) => key.roster.find((r) => r.id === i.id)!.encKey.length)).toEqual(
        kems.map((k) => (k === EncKem.XWING ? 1216 : 32)),
      );
      const shares = new Map([...out].map(([id, o]) => [id, o.share]));
      const m1 = utf8ToBytes('epoch 0');
      expect(suite.verify(runLocalSign(key, shares, ['p1', 'p2'], m1), m1, groupPublicKey(key))).toBe(true);

      const rng = seededRng(`refresh-${name}`);
      const cfg: RefreshConfig = {
        suite,
        sessionId: rng(32),
        keyId: '0123456789abcdef',
        fromEpoch: 0,
        key,
        contributors: ['p1', 'p3'],
      };
      const envs = cfg.contributors.map((id) => refreshRound1(cfg, ids.find((i) => i.id === id)!, rng));
      // On the wire: each share's enc is the recipient's suite (1120 bytes for X-Wing, 32 for X25519).
      for (const env of envs) {
        const r1 = decodeMessage('LifecycleRound1', openEnvelope(env, PayloadKind.REFRESH_ROUND1).payload);
        const byRecipient = key.roster.filter((r) => r.identifier !== undefined);
        expect(r1.shares.map((s) => s.enc.length)).toEqual(
          r1.shares.map((s) => {
            const to = byRecipient.find((r) => Buffer.from(r.identifier, 'hex').equals(Buffer.from(s.recipient)))!;
            return to.encKey.length === XWING_PUBLIC_KEY_BYTES ? XWING_ENC_BYTES : 32;
          }),
        );
      }
      const next = new Map(ids.map((i) => [i.id, applyRefresh(cfg, i, shares.get(i.id)!, envs)]));
      const nextKey = next.get('p1')!.key;
      expect(groupPublicKey(nextKey)).toEqual(groupPublicKey(key));
      const m2 = utf8ToBytes('epoch 1');
      const nextShares = new Map([...next].map(([id, o]) => [id, o.share]));
      expect(suite.verify(runLocalSign(nextKey, nextShares, ['p2', 'p3'], m2), m2, groupPublicKey(key))).toBe(true);
    });
  }

  it('a contributor that seals an X25519-sized enc to an X-Wing recipient is named (BAD_SHARE)', () => {
    const ids = roster([EncKem.XWING, EncKem.XWING, EncKem.XWING]);
    const out = runLocalDkg(suite, 2, ids, seededRng('dkg-downgrade'));
    const key = out.get('p1')!.key;
    const rng = seededRng('refresh-downgrade');
    const cfg: RefreshConfig = {
      suite,
      sessionId: rng(32),
      keyId: '0123456789abcdef',
      fromEpoch: 0,
      key,
      contributors: ['p1', 'p2'],
    };
    const p1 = ids[0]!;
    const honest = refreshRound1(cfg, p1, rng);
    const r1 = decodeMessage('LifecycleRound1', openEnvelope(honest, PayloadKind.REFRESH_ROUND1).payload);
    const downgraded = encodeMessage('LifecycleRound1', {
      ...r1,
      shares: r1.shares.map((s) => ({ ...s, enc: s.enc.subarray(0, 32) })),
    });
    const forged = signEnvelope(p1, PayloadKind.REFRESH_ROUND1, downgraded);
    const envs = [forged, refreshRound1(cfg, ids[1]!, rng)];
    expect(() => applyRefresh(cfg, ids[2]!, out.get('p3')!.share, envs)).toThrow(
      expect.objectContaining({ code: 'BAD_SHARE', culprits: ['p1'] }),
    );
  });
});

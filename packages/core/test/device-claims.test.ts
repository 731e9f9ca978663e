/**
 * Device claims (src/device-claims.ts; issue 19): the device signs its clock and the app's
 * integrity verdict into each offline package, outside the digest. The package is the same
 * package with or without them (same digest and id); they open only as the device's own, about
 * exactly that digest; the merchant's lite codec carries them byte for byte.
 */
import { describe, expect, it } from 'vitest';
import {
  ErrorCode,
  type GroupKey,
  type KeyShare,
  ParticipantIdentity,
  RESERVATION_NONCE_ID_BYTES,
  commit,
  createOfflinePackage,
  decodeOfflinePackage,
  encodeKeyRecord,
  encodeOfflinePackage,
  getSuite,
  openDeviceClaims,
  openReservation,
  packageDigest,
  packageToText,
  runLocalDkg,
  signDeviceClaims,
  signReservation,
  toHex,
} from '../src/index.js';
import { codeOf } from './helpers.js';
import { checkPackage } from '../src/package-check-any.js';

const NOW = Date.UTC(2026, 11, 7, 12);
const suite = getSuite('ed25519');
const ids = ['phone', 'signer-1', 'signer-2'].map((i) => ParticipantIdentity.generate(i));
const out = runLocalDkg(suite, 2, ids, undefined, ['phone']);
const key = (out.get('phone') as { key: GroupKey }).key;
const share = (i: string) => (out.get(i) as { share: KeyShare }).share;

function pkg(claims?: { signer: ParticipantIdentity; integrity: 'pass' | 'fail' | '' }) {
  const { commitment } = commit(share('signer-1'));
  const reservation = openReservation(
    key,
    signReservation(ids[1] as ParticipantIdentity, {
      suite,
      keyId: 'c0ffee00c0ffee00',
      epoch: 0,
      device: 'phone',
      signer: 'signer-1',
      nonceId: new Uint8Array(RESERVATION_NONCE_ID_BYTES).fill(5),
      hiding: commitment.hiding,
      binding: commitment.binding,
      expiresAt: NOW + 3600_000,
    }),
  );
  return createOfflinePackage({
    key,
    share: share('phone'),
    keyId: 'c0ffee00c0ffee00',
    epoch: 0,
    device: 'phone',
    message: new Uint8Array(32).fill(1),
    reservations: [reservation],
    createdAt: NOW,
    ...(claims ? { claims: { ...claims, integrityDetail: claims.integrity ? 'play-integrity:STRONG' : '' } } : {}),
  });
}

/** The error code a call throws, or 'ok'. */
const code = (f: () => unknown) => codeOf(f) ?? 'ok';

describe('device claims', () => {
  it("are the device's own word about exactly this package, outside its digest", () => {
    const p = pkg({ signer: ids[0] as ParticipantIdentity, integrity: 'pass' });
    expect(p.claims?.length).toBeGreaterThan(0);
    // The same package without them: the same digest and id.
    const bare = decodeOfflinePackage(encodeOfflinePackage({ ...p, claims: null }));
    expect(toHex(bare.digest)).toBe(toHex(p.digest));
    expect(toHex(packageDigest(p))).toBe(toHex(p.digest));
    expect(openDeviceClaims(key, bare, bare.digest)).toBeNull();
    expect(openDeviceClaims(key, p, p.digest)).toMatchObject({
      signedAt: NOW,
      integrity: 'pass',
      integrityDetail: 'play-integrity:STRONG',
    });
    // Signed by a co-signer instead of the device; about another package; not an envelope.
    const byOther = pkg({ signer: ids[1] as ParticipantIdentity, integrity: 'pass' });
    expect(code(() => openDeviceClaims(key, byOther, byOther.digest))).toBe(ErrorCode.POLICY_DENIED);
    const other = pkg({ signer: ids[0] as ParticipantIdentity, integrity: 'pass' });
    expect(code(() => openDeviceClaims(key, { ...p, claims: other.claims }, p.digest))).toBe(ErrorCode.POLICY_DENIED);
    expect(code(() => openDeviceClaims(key, { ...p, claims: new Uint8Array(40).fill(3) }, p.digest))).toBe(
      ErrorCode.POLICY_DENIED,
    );
    // Another participant's name on the package: only a device entry speaks for a phone.
    expect(code(() => openDeviceClaims(key, { ...byOther, device: 'signer-1' }, byOther.digest))).toBe(
      ErrorCode.POLICY_DENIED,
    );
    // Claims past 512 bytes are refused by both codecs.
    const padded = encodeOfflinePackage({ ...p, claims: new Uint8Array(513).fill(1) });
    expect(code(() => decodeOfflinePackage(padded))).toBe(ErrorCode.DECODE);
    expect(
      code(() =>
        signDeviceClaims(ids[0] as ParticipantIdentity, {
          packageDigest: p.digest,
          signedAt: NOW,
          integrity: 'maybe' as never,
          integrityDetail: '',
        }),
      ),
    ).toBe(ErrorCode.INVALID_ARGUMENT);
  });

  it("the merchant's check reads a package with claims: the same id as the cluster's codec", async () => {
    const p = pkg({ signer: ids[0] as ParticipantIdentity, integrity: 'fail' });
    const record = encodeKeyRecord({ keyId: 'c0ffee00c0ffee00', epoch: 0, key, createdAt: NOW });
    const checked = await checkPackage(record, packageToText(p.bytes), NOW);
    expect(checked.packageId).toBe(p.packageId);
    const padded = encodeOfflinePackage({ ...p, claims: new Uint8Array(513).fill(1) });
    await expect(checkPackage(record, padded, NOW)).rejects.toMatchObject({ code: ErrorCode.DECODE });
  });
});

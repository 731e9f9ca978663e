/**
 * Operator authorisations (core/src/authorisation.ts): what a participant checks before it takes
 * part in a refresh or reshare. Pure logic; the attacks on real processes are in test/trust.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ParticipantIdentity,
  admissionPayload,
  approveAuthorisation,
  decodeAdmission,
  encodeMessage,
  participantToWire,
  checkAuthorisation,
  checkRevocation,
  decodeAuthorisation,
  encodeApproved,
  encodeAuthorisation,
  getSuite,
  toHex,
  runLocalDkg,
  type LifecycleAuthorisation,
  type LifecycleRequest,
  type ParticipantPublic,
} from '../src/index.js';

const ops = Array.from({ length: 4 }, (_, i) => ParticipantIdentity.generate(`op-${i}`));
const policy = (m: number) => ({ keys: ops.slice(0, 3).map((o) => toHex(o.public.signKey)), approvals: m });
const nodes = ['signer-1', 'signer-2', 'signer-3', 'signer-4'].map((id) => ParticipantIdentity.generate(id));
const suite = getSuite('ed25519');
const now = 1_800_000_000_000;

/** A 2-of-3 key of signer-1..3 (the checks read only its public data). */
const KEY3 = [...runLocalDkg(suite, 2, nodes.slice(0, 3)).values()][0]!.key;
const key3 = () => KEY3;

const base = (over: Partial<LifecycleAuthorisation> = {}) =>
  encodeAuthorisation({
    keyId: '0123456789abcdef',
    operation: 'reshare',
    fromEpoch: 3,
    anyEpoch: false,
    newThreshold: 2,
    newParticipants: [nodes[0]!.public, nodes[1]!.public, nodes[3]!.public],
    allowThresholdDecrease: false,
    allowUnpinned: [],
    revoke: [],
    notAfter: now + 60_000,
    ...over,
  });

const approvedBy = (auth: Uint8Array, by: ParticipantIdentity[]) =>
  encodeApproved(
    auth,
    by.map((o) => approveAuthorisation(o, auth)),
  );
const pinnedAll = () => true;
const req = (over: Partial<LifecycleRequest> = {}): LifecycleRequest => ({
  operation: 'reshare',
  keyId: '0123456789abcdef',
  fromEpoch: 3,
  key: key3(),
  newThreshold: 2,
  newParticipants: [nodes[0]!.public, nodes[1]!.public, nodes[3]!.public],
  ...over,
});
const check = (
  bytes: Uint8Array | undefined,
  r: LifecycleRequest = req(),
  m = 2,
  pinned: (p: ParticipantPublic) => boolean = pinnedAll,
  at = now,
) => checkAuthorisation(bytes, r, { operators: policy(m), now: at, pinned });

describe('operator authorisation', () => {
  it('M of N distinct pinned operators: passes exactly when at least M pinned keys approved these bytes (property)', () => {
    fc.assert(
      fc.property(fc.subarray([0, 1, 2, 3]), fc.integer({ min: 1, max: 3 }), fc.boolean(), (who, m, dup) => {
        const auth = base();
        const by = who.map((i) => ops[i]!);
        const bytes = approvedBy(auth, dup ? [...by, ...by] : by);
        const pinnedApprovals = who.filter((i) => i < 3).length; // op-3 is not pinned
        if (pinnedApprovals >= m) expect(check(bytes, req(), m).operation).toBe('reshare');
        else
          expect(() => check(bytes, req(), m)).toThrow(
            expect.objectContaining({
              code: 'POLICY_DENIED',
              message: expect.stringContaining(`has ${pinnedApprovals}`),
            }),
          );
      }),
      { numRuns: 60 },
    );
  });

  it('an approval of other bytes, or a forged one, counts for nothing', () => {
    const auth = base();
    const other = base({ fromEpoch: 4 });
    const forged = approveAuthorisation(ops[0]!, other);
    expect(() => check(encodeApproved(auth, [forged, approveAuthorisation(ops[1]!, auth)]))).toThrow(/has 1/);
    const bad = approveAuthorisation(ops[0]!, auth);
    bad[bad.length - 1]! ^= 1;
    expect(() => check(encodeApproved(auth, [bad, approveAuthorisation(ops[1]!, auth)]))).toThrow(/has 1/);
  });

  it('refuses without pinned operators, without an authorisation, after expiry (contribute), or for another key, operation or epoch', () => {
    const ok = approvedBy(base(), ops.slice(0, 2));
    expect(() => checkAuthorisation(ok, req(), { operators: undefined, now, pinned: pinnedAll })).toThrow(
      /no operator keys are pinned/,
    );
    expect(() => check(undefined)).toThrow(/carries no operator authorisation/);
    expect(() => check(new Uint8Array(0))).toThrow(/carries no operator authorisation/);
    expect(() => check(ok, req(), 2, pinnedAll, now + 120_000)).toThrow(/expired/);
    expect(() => check(ok, req({ keyId: 'fedcba9876543210' }))).toThrow(/authorised key 0123456789abcdef/);
    expect(() => check(ok, req({ fromEpoch: 4 }))).toThrow(/from epoch 3/);
    expect(() => check(ok, req({ operation: 'refresh' }))).toThrow(/authorised a reshare, not a refresh/);
    for (const e of [() => check(ok, req({ keyId: 'fedcba9876543210' })), () => check(undefined)])
      expect(e).toThrow(expect.objectContaining({ code: 'POLICY_DENIED', culprits: [] }));
  });

  it('a reshare must be exactly the approved roster and threshold; a lower threshold and unpinned newcomers need explicit permission', () => {
    const ok = approvedBy(base(), ops.slice(0, 2));
    expect(() => check(ok, req({ newThreshold: 3 }))).toThrow(/not the approved 2/);
    expect(() => check(ok, req({ newParticipants: [nodes[0]!.public, nodes[1]!.public, nodes[2]!.public] }))).toThrow(
      /not the one the operators approved/,
    );
    // The same ids with another key for signer-4 (the coordinator swapped a key) is another roster.
    const swapped = { ...nodes[3]!.public, signKey: ops[3]!.public.signKey };
    expect(() => check(ok, req({ newParticipants: [nodes[0]!.public, nodes[1]!.public, swapped] }))).toThrow(
      /not the one the operators approved/,
    );
    // signer-4 is new to the key: refused where it is not pinned, unless vouched for.
    const notS4 = (p: ParticipantPublic) => p.id !== 'signer-4';
    expect(() => check(ok, req(), 2, notS4)).toThrow(/has not pinned: signer-4/);
    expect(
      check(approvedBy(base({ allowUnpinned: ['signer-4'] }), ops.slice(0, 2)), req(), 2, notS4).allowUnpinned,
    ).toEqual(['signer-4']);
    // Old members are known from the key itself, pinned or not.
    const keep = [nodes[0]!.public, nodes[1]!.public, nodes[2]!.public];
    expect(
      check(
        approvedBy(base({ newParticipants: keep }), ops.slice(0, 2)),
        req({ newParticipants: keep }),
        2,
        () => false,
      ).operation,
    ).toBe('reshare');
    // 3-of-… → 2: a decrease needs allowThresholdDecrease.
    const k3 = { ...key3(), threshold: 3 };
    expect(() => check(ok, req({ key: k3 }))).toThrow(/lowering the threshold from 3 to 2/);
    expect(
      check(approvedBy(base({ allowThresholdDecrease: true }), ops.slice(0, 2)), req({ key: k3 }))
        .allowThresholdDecrease,
    ).toBe(true);
  });

  it('a standing refresh authorisation ("*", any epoch) serves every key and epoch but never a reshare', () => {
    const standing = approvedBy(
      encodeAuthorisation({
        keyId: '*',
        operation: 'refresh',
        fromEpoch: 0,
        anyEpoch: true,
        newThreshold: 0,
        newParticipants: [],
        allowThresholdDecrease: false,
        allowUnpinned: [],
        revoke: [],
        notAfter: now + 60_000,
      }),
      ops.slice(0, 2),
    );
    expect(
      check(standing, { operation: 'refresh', keyId: 'aaaaaaaaaaaaaaaa', fromEpoch: 9, key: key3() }).anyEpoch,
    ).toBe(true);
    expect(() => check(standing, req())).toThrow(/authorised a refresh, not a reshare/);
    expect(() =>
      encodeAuthorisation({
        keyId: '*',
        operation: 'reshare',
        fromEpoch: 0,
        anyEpoch: true,
        newThreshold: 2,
        newParticipants: [],
        allowThresholdDecrease: false,
        allowUnpinned: [],
        revoke: [],
        notAfter: 1,
      }),
    ).toThrow(/only a refresh/);
    expect(() =>
      encodeAuthorisation({
        keyId: '*',
        operation: 'refresh',
        fromEpoch: 0,
        anyEpoch: false,
        newThreshold: 0,
        newParticipants: [],
        allowThresholdDecrease: false,
        allowUnpinned: [],
        revoke: [],
        notAfter: 1,
      }),
    ).toThrow(/standing refresh/);
  });

  it('a revocation: M of N approvals, unexpired, names devices; it authorises no refresh or reshare, and a reshare authorisation is no revocation', () => {
    const rev = encodeAuthorisation({
      keyId: '*',
      operation: 'revoke',
      fromEpoch: 0,
      anyEpoch: false,
      newThreshold: 0,
      newParticipants: [],
      allowThresholdDecrease: false,
      allowUnpinned: [],
      revoke: ['phone-1'],
      notAfter: now + 60_000,
    });
    expect(checkRevocation(approvedBy(rev, ops.slice(0, 2)), { operators: policy(2), now })).toEqual(['phone-1']);
    expect(() => checkRevocation(approvedBy(rev, ops.slice(0, 1)), { operators: policy(2), now })).toThrow(/has 1/);
    expect(() =>
      checkRevocation(approvedBy(rev, ops.slice(0, 2)), { operators: policy(2), now: now + 120_000 }),
    ).toThrow(/expired/);
    expect(() => checkRevocation(approvedBy(base(), ops.slice(0, 2)), { operators: policy(2), now })).toThrow(
      /not a revocation/,
    );
    expect(() => check(approvedBy(rev, ops.slice(0, 2)))).toThrow(/authorised a revoke, not a reshare/);
    expect(() =>
      encodeAuthorisation({
        keyId: 'aaaaaaaaaaaaaaaa',
        operation: 'revoke',
        fromEpoch: 0,
        anyEpoch: false,
        newThreshold: 0,
        newParticipants: [],
        allowThresholdDecrease: false,
        allowUnpinned: [],
        revoke: ['x'],
        notAfter: 1,
      }),
    ).toThrow(/names key "\*"/);
  });

  it('only the canonical encoding decodes; decoding never throws anything untyped (fuzz)', () => {
    const auth = base();
    expect(decodeAuthorisation(auth).keyId).toBe('0123456789abcdef');
    fc.assert(
      fc.property(fc.integer({ min: 0, max: auth.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const b = new Uint8Array(auth);
        b[at]! ^= x;
        try {
          decodeAuthorisation(b);
        } catch (e) {
          expect((e as { code?: string }).code).toMatch(/^(DECODE|UNSUPPORTED_VERSION|INVALID_ARGUMENT)$/);
        }
        try {
          check(encodeApproved(b, [approveAuthorisation(ops[0]!, auth), approveAuthorisation(ops[1]!, auth)]));
          // A flip that still decodes changes the bytes: the approvals no longer cover them.
          expect.unreachable();
        } catch (e) {
          expect((e as { code?: string }).code).toMatch(
            /^(DECODE|UNSUPPORTED_VERSION|INVALID_ARGUMENT|POLICY_DENIED)$/,
          );
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('decodeAdmission: the device an admission payload names, nothing else', () => {
  it('round-trips a device entry; refuses a node entry, other bytes and a non-canonical encoding', () => {
    const phone = { ...ParticipantIdentity.generate('phone-9').public, device: true };
    const payload = admissionPayload(phone);
    const p = decodeAdmission(payload);
    expect([p.id, toHex(p.signKey), toHex(p.encKey), p.device]).toEqual([
      'phone-9',
      toHex(phone.signKey),
      toHex(phone.encKey),
      true,
    ]);
    const node = encodeMessage('ParticipantInfo', participantToWire(ParticipantIdentity.generate('signer-9').public));
    for (const bad of [node, Uint8Array.from([...payload, 0x08, 0x01]), new Uint8Array([0xff])])
      expect(() => decodeAdmission(bad)).toThrow();
  });
});

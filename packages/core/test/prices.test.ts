/**
 * Price snapshots and fiat caps (src/prices.ts, src/allowance-charge.ts; issue 19): the
 * snapshot's bytes are canonical and checked; a co-signer accepts one only with M of its pinned
 * operators' PRICE_SNAPSHOT signatures over exactly those bytes, fresh and in the cap's
 * currency; a payment is valued rounding up; a fiat cap and an asset cap both hold for a payment
 * they cover; and a property: a random sequence of payments in random assets is accepted exactly
 * while every running total (each asset's, the fiat one) stays within its cap.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Allowance,
  ErrorCode,
  ParticipantIdentity,
  PayloadKind,
  approvePriceSnapshot,
  checkPriceSnapshot,
  decodePriceSnapshot,
  encodePriceSnapshot,
  fiatTotalName,
  fiatValue,
  priceSnapshotFromJson,
  signEnvelope,
  toHex,
  validateAllowance,
} from '../src/index.js';
import { codeOf } from './helpers.js';
import { chargeAllowance } from '../src/package-payment.js';
import type { TypedPayment } from '../src/payment.js';

const NOW = Date.UTC(2026, 11, 7, 12);
const HOUR = 3600_000;
const alice = ParticipantIdentity.generate('alice');
const bob = ParticipantIdentity.generate('bob');
const mallory = ParticipantIdentity.generate('mallory');
const operators = { keys: [alice, bob].map((o) => toHex(o.public.signKey)), approvals: 2 };

/** $97,000.00 per BTC (1e8 sat), $180.00 per SOL (1e9 lamports), $1.00 per USDT (1e6). */
const snapshot = (over: Partial<Parameters<typeof encodePriceSnapshot>[0]> = {}) =>
  encodePriceSnapshot({
    currency: 'USD',
    takenAt: NOW - HOUR,
    prices: [
      { asset: 'BTC', per: 100_000_000n, fiat: 9_700_000n },
      { asset: 'SOL', per: 1_000_000_000n, fiat: 18_000n },
      { asset: 'SPL:Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB', per: 1_000_000n, fiat: 100n },
    ],
    ...over,
  });

/** The error code a call throws, or 'ok'. */
const code = (f: () => unknown) => codeOf(f) ?? 'ok';

describe('price snapshots', () => {
  it('round-trip canonically; a malformed table is refused before anyone signs it', () => {
    const bytes = snapshot();
    const s = decodePriceSnapshot(bytes);
    expect(s.currency).toBe('USD');
    expect(s.prices.map((p) => p.asset)).toEqual(['BTC', 'SOL', 'SPL:Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB']);
    expect(toHex(encodePriceSnapshot(s))).toBe(toHex(bytes));
    for (const bad of [
      { currency: 'usd' },
      { currency: 'DOLLAR' },
      { takenAt: 0 },
      { prices: [] },
      {
        prices: [
          { asset: 'BTC', per: 1n, fiat: 1n },
          { asset: 'BTC', per: 2n, fiat: 1n },
        ],
      },
      { prices: [{ asset: 'BTC', per: 0n, fiat: 1n }] },
      { prices: [{ asset: 'BTC', per: 1n, fiat: -1n }] },
      { prices: [{ asset: 'BTC', per: 1n, fiat: 0n }] }, // a zero price would value any amount at nothing
      { prices: [{ asset: '@fiat:USD', per: 1n, fiat: 1n }] },
    ])
      expect(code(() => snapshot(bad))).toBe(ErrorCode.INVALID_ARGUMENT);
    // Bytes that are not exactly what the encoder writes (a field appended) do not decode.
    expect(code(() => decodePriceSnapshot(Uint8Array.of(...bytes, 0x08, 0x01)))).toBe(ErrorCode.DECODE);
    expect(code(() => decodePriceSnapshot(bytes.subarray(0, bytes.length - 3)))).toBe(ErrorCode.DECODE);
  });

  it('fuzz: random bytes and one-byte changes decode to a snapshot or DECODE, nothing else', () => {
    const bytes = snapshot();
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
            const m = bytes.slice();
            m[i] = (m[i] as number) ^ x;
            return m;
          }),
        ),
        (b) => {
          const c = code(() => decodePriceSnapshot(b));
          expect(['ok', ErrorCode.DECODE]).toContain(c);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('a co-signer accepts exactly M of its pinned operators over exactly these bytes, fresh, in the currency', () => {
    const bytes = snapshot();
    const sigs = [approvePriceSnapshot(alice, bytes), approvePriceSnapshot(bob, bytes)];
    const opts = { operators, currency: 'USD', now: NOW, maxAgeMs: 24 * HOUR };
    expect(checkPriceSnapshot(bytes, sigs, opts).takenAt).toBe(NOW - HOUR);
    const denied = (f: () => unknown) => expect(code(f)).toBe(ErrorCode.POLICY_DENIED);
    // One operator, twice; an unpinned one; an operator approval of the same bytes of another kind.
    denied(() => checkPriceSnapshot(bytes, [sigs[0] as Uint8Array, sigs[0] as Uint8Array], opts));
    denied(() => checkPriceSnapshot(bytes, [sigs[0] as Uint8Array, approvePriceSnapshot(mallory, bytes)], opts));
    denied(() =>
      checkPriceSnapshot(bytes, [sigs[0] as Uint8Array, signEnvelope(bob, PayloadKind.OPERATOR_APPROVAL, bytes)], opts),
    );
    // Signatures over another table do not carry over to this one.
    const cheaper = snapshot({ prices: [{ asset: 'BTC', per: 100_000_000n, fiat: 1n }] });
    denied(() => checkPriceSnapshot(cheaper, sigs, opts));
    // Too old, from the future, another currency, nobody pinned.
    denied(() => checkPriceSnapshot(bytes, sigs, { ...opts, maxAgeMs: HOUR - 1 }));
    const ahead = snapshot({ takenAt: NOW + 2 * 60_000 });
    denied(() =>
      checkPriceSnapshot(ahead, [approvePriceSnapshot(alice, ahead), approvePriceSnapshot(bob, ahead)], opts),
    );
    denied(() => checkPriceSnapshot(bytes, sigs, { ...opts, currency: 'EUR' }));
    denied(() => checkPriceSnapshot(bytes, sigs, { ...opts, operators: { keys: [], approvals: 1 } }));
  });

  it('values rounding up; the JSON form reads what an operator writes', () => {
    const s = decodePriceSnapshot(snapshot());
    expect(fiatValue(s, 'BTC', 100_000_000n)).toBe(9_700_000n);
    expect(fiatValue(s, 'BTC', 1n)).toBe(1n); // 0.097 cents: a cent
    expect(fiatValue(s, 'BTC', 0n)).toBe(0n);
    expect(fiatValue(s, 'BTC', 1_031n)).toBe(101n); // 100.007 cents
    expect(fiatValue(s, 'ETH', 1n)).toBeUndefined();
    const j = priceSnapshotFromJson({ currency: 'EUR', prices: { BTC: { per: '100000000', fiat: 8_900_000 } } }, NOW);
    expect(j).toEqual({
      currency: 'EUR',
      takenAt: NOW,
      prices: [{ asset: 'BTC', per: 100_000_000n, fiat: 8_900_000n }],
    });
    for (const bad of [
      {},
      { currency: 'EUR', prices: [] },
      { currency: 'EUR', prices: { BTC: { per: '1.5', fiat: 1 } } },
    ])
      expect(code(() => priceSnapshotFromJson(bad, NOW))).toBe(ErrorCode.INVALID_ARGUMENT);
  });
});

const pay = (amount: bigint, fee = 0n, asset = 'BTC'): TypedPayment => ({
  chain: 'bitcoin',
  asset,
  amount,
  fee,
  to: [],
});
const fiatAllowance = (cap: string, perPayment = '', caps: Allowance['caps'] = []): Allowance => ({
  allowanceId: new Uint8Array(16),
  caps,
  perPayment: [],
  fiat: { currency: 'USD', cap, perPayment, prices: snapshot(), approvals: [] },
});

describe('fiat caps', () => {
  it('are checked in shape: currency, decimal minor units, a snapshot, no approvals once granted', () => {
    expect(code(() => validateAllowance(fiatAllowance('50000')))).toBe('ok');
    for (const f of [{ currency: 'usd' }, { cap: '1.5' }, { perPayment: '-1' }, { prices: new Uint8Array(0) }]) {
      const a = fiatAllowance('50000');
      expect(
        code(() => validateAllowance({ ...a, fiat: { ...(a.fiat as NonNullable<Allowance['fiat']>), ...f } })),
      ).toBe(ErrorCode.INVALID_ARGUMENT);
    }
    const asked = { ...fiatAllowance('50000'), allowanceId: new Uint8Array(0) };
    const withSigs = {
      ...asked,
      fiat: { ...(asked.fiat as NonNullable<Allowance['fiat']>), approvals: [new Uint8Array(3)] },
    };
    expect(code(() => validateAllowance(withSigs, { request: true }))).toBe('ok');
    expect(code(() => validateAllowance({ ...withSigs, allowanceId: new Uint8Array(16) }))).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
  });

  it('the edges: the per-payment limit and the cap in cents, fee included; an unpriced asset is not covered', () => {
    const usd = fiatTotalName('USD');
    // $500.00 in all, $200.00 a payment. 200,000 sat + 1,000 fee = 201,000 sat = $194.97.
    const a = fiatAllowance('50000', '20000');
    expect(chargeAllowance(a, pay(200_000n, 1_000n)).totals).toEqual({ [usd]: 19_497n });
    expect(code(() => chargeAllowance(a, pay(206_186n, 0n)))).toBe(ErrorCode.OVER_ALLOWANCE); // $200.0004
    expect(chargeAllowance(a, pay(206_185n, 0n)).totals).toEqual({ [usd]: 20_000n }); // $199.99945: a cent up
    expect(chargeAllowance(a, pay(1_000_000_000n, 0n, 'SOL'), () => 30_000n).totals).toEqual({ [usd]: 48_000n });
    expect(code(() => chargeAllowance(a, pay(1_000_000_000n, 0n, 'SOL'), () => 32_001n))).toBe(
      ErrorCode.OVER_ALLOWANCE,
    );
    expect(code(() => chargeAllowance(a, pay(1n, 0n, 'ETH')))).toBe(ErrorCode.OVER_ALLOWANCE);
    // An asset cap beside it: both hold for BTC; ETH has only its own cap.
    const both = fiatAllowance('50000', '', [
      { asset: 'BTC', amount: '300000' },
      { asset: 'ETH', amount: '10' },
    ]);
    expect(chargeAllowance(both, pay(100_000n)).totals).toEqual({ BTC: 100_000n, [usd]: 9_700n });
    expect(code(() => chargeAllowance(both, pay(100_000n), (n) => (n === 'BTC' ? 200_001n : 0n)))).toBe(
      ErrorCode.OVER_ALLOWANCE,
    );
    expect(code(() => chargeAllowance(both, pay(100_000n), (n) => (n === usd ? 40_301n : 0n)))).toBe(
      ErrorCode.OVER_ALLOWANCE,
    );
    expect(chargeAllowance(both, pay(10n, 0n, 'ETH')).totals).toEqual({ ETH: 10n });
    // A fiat cap whose snapshot is in another currency counts nothing.
    const eur = fiatAllowance('50000');
    const mixed = { ...eur, fiat: { ...(eur.fiat as NonNullable<Allowance['fiat']>), currency: 'EUR' } };
    expect(code(() => chargeAllowance(mixed, pay(1n)))).toBe(ErrorCode.OVER_ALLOWANCE);
  });

  it('property: payments in random assets are accepted exactly while every running total stays within its cap', () => {
    const usd = fiatTotalName('USD');
    const s = decodePriceSnapshot(snapshot());
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 7n }),
        fc.bigInt({ min: 0n, max: 10n ** 6n }),
        fc.array(
          fc.tuple(
            fc.constantFrom('BTC', 'SOL', 'ETH'),
            fc.bigInt({ min: 0n, max: 10n ** 9n }),
            fc.bigInt({ min: 0n, max: 10n ** 4n }),
          ),
          { maxLength: 30 },
        ),
        (fiatCap, btcCap, payments) => {
          const a = fiatAllowance(fiatCap.toString(), '', [{ asset: 'BTC', amount: btcCap.toString() }]);
          const totals: Record<string, bigint> = {};
          for (const [asset, amount, fee] of payments) {
            const value = fiatValue(s, asset, amount + fee);
            const fits =
              (asset !== 'BTC' || (totals.BTC ?? 0n) + amount + fee <= btcCap) &&
              (value === undefined || (totals[usd] ?? 0n) + value <= fiatCap) &&
              (asset === 'BTC' || value !== undefined);
            let accepted = true;
            try {
              Object.assign(
                totals,
                chargeAllowance(a, pay(amount, fee, asset), (n) => totals[n] ?? 0n),
              );
            } catch (e) {
              expect((e as { code?: string }).code).toBe(ErrorCode.OVER_ALLOWANCE);
              accepted = false;
            }
            expect(accepted).toBe(fits);
            expect((totals[usd] ?? 0n) <= fiatCap && (totals.BTC ?? 0n) <= btcCap).toBe(true);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

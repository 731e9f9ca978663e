/**
 * Price snapshots (issue 19's "cached exchange rates"): a table of what each asset costs in one
 * fiat currency at one time, signed by the operators (`PRICE_SNAPSHOT` envelopes over the exact
 * `tessera.v1.PriceSnapshot` bytes). A co-signer grants a fiat cap only with a snapshot that M of
 * its pinned operators signed and that is fresh enough; the snapshot then travels inside the
 * allowance it signs, so the device and the merchant value payments offline with exactly the
 * prices the co-signer counts with at completion.
 *
 * A price says that `fiat` minor units (cents) buy `per` base units of the asset; a payment is
 * valued by rounding up (a cap is never passed by rounding).
 */
import { equalBytes, toHex } from './bytes.js';
import { type EnvelopeSigner, openEnvelope, signEnvelope } from './envelope.js';
import { DecodeError, ErrorCode, InvalidArgumentError, ProtocolError } from './errors.js';
import { decodeMessage, encodeMessage } from './wire/codec.js';
import { PayloadKind } from './wire/types.js';

export interface Price {
  readonly asset: string;
  /** Base units that `fiat` buys (> 0). */
  readonly per: bigint;
  /** Minor units of the snapshot's currency. */
  readonly fiat: bigint;
}

export interface PriceSnapshot {
  /** ISO 4217 code, e.g. "USD". */
  readonly currency: string;
  /** When the prices were taken, ms since the Unix epoch. */
  readonly takenAt: number;
  readonly prices: readonly Price[];
}

export const PRICE_SNAPSHOT_VERSION = 1;
export const CURRENCY = /^[A-Z]{3}$/;
const ASSET = /^[A-Za-z0-9][A-Za-z0-9:._-]{0,63}$/;
const DECIMAL = /^(0|[1-9][0-9]{0,77})$/;
const MAX_PRICES = 64;

function check(s: PriceSnapshot): void {
  if (typeof s.currency !== 'string' || !CURRENCY.test(s.currency))
    throw new InvalidArgumentError('price snapshot: the currency must be an ISO 4217 code such as USD');
  if (!Number.isSafeInteger(s.takenAt) || s.takenAt <= 0)
    throw new InvalidArgumentError('price snapshot: takenAt must be a time (ms since the epoch)');
  if (!Array.isArray(s.prices) || s.prices.length === 0 || s.prices.length > MAX_PRICES)
    throw new InvalidArgumentError(`price snapshot: 1..${MAX_PRICES} prices`);
  const seen = new Set<string>();
  for (const p of s.prices) {
    if (typeof p.asset !== 'string' || !ASSET.test(p.asset))
      throw new InvalidArgumentError(`price snapshot: asset "${String(p.asset).slice(0, 64)}" is not a valid name`);
    if (seen.has(p.asset)) throw new InvalidArgumentError(`price snapshot: ${p.asset} priced twice`);
    seen.add(p.asset);
    if (typeof p.per !== 'bigint' || p.per <= 0n || !DECIMAL.test(p.per.toString()))
      throw new InvalidArgumentError(`price snapshot: ${p.asset} must be priced per a positive number of base units`);
    // A zero price would value any amount at nothing: an asset not to be paid is left out instead.
    if (typeof p.fiat !== 'bigint' || p.fiat < 1n || !DECIMAL.test(p.fiat.toString()))
      throw new InvalidArgumentError(
        `price snapshot: ${p.asset}'s price must be at least one minor unit (leave an asset out to exclude it)`,
      );
  }
}

/** The bytes operators sign (checked; prices in the order given). */
export function encodePriceSnapshot(s: PriceSnapshot): Uint8Array {
  check(s);
  return encodeMessage('PriceSnapshot', {
    version: PRICE_SNAPSHOT_VERSION,
    currency: s.currency,
    takenAt: s.takenAt,
    prices: s.prices.map((p) => ({ asset: p.asset, per: p.per.toString(), fiat: p.fiat.toString() })),
  });
}

/** Reads snapshot bytes: well-formed and canonical (the exact bytes {@link encodePriceSnapshot} writes), or DECODE. */
export function decodePriceSnapshot(bytes: Uint8Array): PriceSnapshot {
  let s: PriceSnapshot;
  try {
    const w = decodeMessage('PriceSnapshot', bytes);
    if (w.version !== PRICE_SNAPSHOT_VERSION) throw new InvalidArgumentError(`version ${w.version}`);
    s = {
      currency: w.currency,
      takenAt: w.takenAt,
      prices: w.prices.map((p) => {
        if (!DECIMAL.test(p.per) || !DECIMAL.test(p.fiat))
          throw new InvalidArgumentError(`${p.asset.slice(0, 64)}: amounts must be decimal integers`);
        return { asset: p.asset, per: BigInt(p.per), fiat: BigInt(p.fiat) };
      }),
    };
    if (!equalBytes(encodePriceSnapshot(s), bytes)) throw new InvalidArgumentError('non-canonical encoding');
  } catch (e) {
    throw e instanceof DecodeError ? e : new DecodeError(`price snapshot: ${(e as Error).message}`);
  }
  return s;
}

/** One operator's signature over snapshot bytes (a PRICE_SNAPSHOT envelope). */
export function approvePriceSnapshot(operator: EnvelopeSigner, snapshot: Uint8Array): Uint8Array {
  decodePriceSnapshot(snapshot);
  return signEnvelope(operator, PayloadKind.PRICE_SNAPSHOT, snapshot);
}

/** The distinct pinned operator keys (hex) among `approvals` that signed exactly `snapshot`. */
export function priceApprovers(
  snapshot: Uint8Array,
  approvals: readonly Uint8Array[],
  pinnedKeys: readonly string[],
): string[] {
  const pinned = new Set(pinnedKeys.map((k) => k.toLowerCase()));
  const by = new Set<string>();
  for (const bytes of approvals) {
    try {
      const env = openEnvelope(bytes, PayloadKind.PRICE_SNAPSHOT);
      const k = toHex(env.sender);
      if (pinned.has(k) && equalBytes(env.payload, snapshot)) by.add(k);
    } catch {
      // an approval that does not verify counts for nothing
    }
  }
  return [...by];
}

/**
 * A co-signer's check before it grants a fiat cap: M of its pinned operators signed exactly
 * these bytes, the snapshot is in `currency`, and it was taken at most `maxAgeMs` before `now`
 * (and not in the future, past a minute's clock skew). POLICY_DENIED naming what is wrong.
 */
export function checkPriceSnapshot(
  snapshot: Uint8Array,
  approvals: readonly Uint8Array[],
  opts: {
    readonly operators: { readonly keys: readonly string[]; readonly approvals: number } | undefined;
    readonly currency: string;
    readonly now: number;
    readonly maxAgeMs: number;
  },
): PriceSnapshot {
  const denied = (m: string) => new ProtocolError(ErrorCode.POLICY_DENIED, m);
  const ops = opts.operators;
  if (!ops || ops.keys.length === 0)
    throw denied('no operator keys are pinned here (policy.operators): a price snapshot cannot be checked');
  const s = decodePriceSnapshot(snapshot);
  if (s.currency !== opts.currency) throw denied(`the price snapshot is in ${s.currency}, the cap in ${opts.currency}`);
  const by = priceApprovers(snapshot, approvals, ops.keys);
  if (by.length < ops.approvals)
    throw denied(`a price snapshot needs ${ops.approvals} operator signature(s), has ${by.length}`);
  if (s.takenAt > opts.now + 60_000) throw denied('the price snapshot is dated in the future');
  if (opts.now - s.takenAt > opts.maxAgeMs)
    throw denied(
      `the price snapshot of ${new Date(s.takenAt).toISOString()} is older than ${Math.round(opts.maxAgeMs / 60_000)} min: sign a fresh one`,
    );
  return s;
}

/** What `amount` base units of `asset` are worth in the snapshot's minor units (rounded up), or undefined if unpriced. */
export function fiatValue(s: PriceSnapshot, asset: string, amount: bigint): bigint | undefined {
  const p = s.prices.find((x) => x.asset === asset);
  if (!p) return undefined;
  return (amount * p.fiat + p.per - 1n) / p.per;
}

/**
 * A snapshot from its JSON form (`tessera prices sign`): `{ currency, takenAt?, prices: { ASSET:
 * { per, fiat } } }` with amounts as decimal strings or integers.
 */
export function priceSnapshotFromJson(v: unknown, now: number): PriceSnapshot {
  const o = (v ?? {}) as { currency?: unknown; takenAt?: unknown; prices?: unknown };
  if (typeof o.prices !== 'object' || o.prices === null || Array.isArray(o.prices))
    throw new InvalidArgumentError('prices: an object { ASSET: { per, fiat } }');
  const big = (x: unknown, what: string): bigint => {
    if ((typeof x === 'string' && DECIMAL.test(x)) || (typeof x === 'number' && Number.isSafeInteger(x) && x >= 0))
      return BigInt(x);
    throw new InvalidArgumentError(`${what} must be a decimal integer`);
  };
  const s: PriceSnapshot = {
    currency: String(o.currency ?? ''),
    takenAt: o.takenAt === undefined ? now : Number(o.takenAt),
    prices: Object.entries(o.prices as Record<string, { per?: unknown; fiat?: unknown }>).map(([asset, p]) => ({
      asset,
      per: big(p?.per, `${asset.slice(0, 64)}.per`),
      fiat: big(p?.fiat, `${asset.slice(0, 64)}.fiat`),
    })),
  };
  check(s);
  return s;
}

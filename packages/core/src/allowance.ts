/**
 * Allowances (issue 19): what a device may pay with its reservations, signed by each co-signer in
 * every reservation of one reserve call (`tessera.v1.Allowance`, the same id in all). Per asset,
 * a total cap and one payment's most; a payment counts its amount plus its fee. A device with
 * capped reservations pays only with packages that carry their transaction: every checker reads
 * the payment from it (./payment.ts) and counts that. The device refuses to sign past it, the
 * merchant's check refuses a package past it, and the co-signer counts every package it completes
 * against the total, exactly once (durably, with the nonce it consumes).
 */
import { randomBytes } from '@noble/hashes/utils.js';
import { ErrorCode, InvalidArgumentError, ProtocolError } from './errors.js';
import type { PaymentTx } from './payment.js';

export interface AssetAmount {
  readonly asset: string;
  /** Base units, a decimal string. */
  readonly amount: string;
}

/**
 * `tessera.v1.FiatCap`: a cap over every asset the snapshot prices, in minor units of its
 * currency (./prices.ts values payments; ./allowance-charge.ts counts them).
 */
export interface FiatCap {
  readonly currency: string;
  /** Minor units, a decimal string. */
  readonly cap: string;
  /** One payment's most, minor units ('' : up to the cap). */
  readonly perPayment: string;
  /** An encoded `PriceSnapshot`, exactly as the operators signed it. */
  readonly prices: Uint8Array;
  /** In a request only: the operators' PRICE_SNAPSHOT signatures (a grant drops them). */
  readonly approvals: readonly Uint8Array[];
}

/** `tessera.v1.Allowance`. */
export interface Allowance {
  /** 16 bytes chosen by the co-signer (empty in a request). */
  readonly allowanceId: Uint8Array;
  readonly caps: readonly AssetAmount[];
  readonly perPayment: readonly AssetAmount[];
  /** A fiat cap (absent: none). */
  readonly fiat?: FiatCap | null;
  /**
   * Packages of this allowance complete only with the device's signed `pass` verdict in their
   * claims (./device-claims.ts): the device refuses to sign without one, the merchant checks it.
   */
  readonly requireIntegrity?: boolean;
}

export const ALLOWANCE_ID_BYTES = 16;
const ASSET = /^[A-Za-z0-9][A-Za-z0-9:._-]{0,63}$/;
const AMOUNT = /^(0|[1-9][0-9]{0,77})$/;
const MAX_ASSETS = 16;

/** Whether a package on reservations with these allowances needs the device's `pass` verdict. */
export function needsIntegrity(cosigners: readonly { readonly allowance?: Allowance | null }[]): boolean {
  return cosigners.some((c) => c.allowance?.requireIntegrity === true);
}

/** Whether `a` caps anything (an absent or empty allowance lets the device sign any message). */
export function hasCaps(a: Allowance | null | undefined): a is Allowance {
  return !!a && (a.caps.length > 0 || !!a.fiat);
}

/** The name a running total of fiat charges is kept under, beside the assets' (no asset name starts with '@'). */
export function fiatTotalName(currency: string): string {
  return `@fiat:${currency}`;
}

/**
 * The name under which what one transaction's packages counted against total `name` is kept (a
 * Bitcoin payment spending several inputs is signed in one package per input, and counts once:
 * ./allowance-charge.ts). `tx` is the payment's transaction id (no asset name holds ':' twice).
 */
export function txTotalName(tx: string, name: string): string {
  return `tx:${tx}:${name}`;
}

/**
 * Every total `a` caps: its asset caps, and its fiat cap under {@link fiatTotalName} (how a
 * co-signer's policy limits name it, e.g. `maxCaps: { "@fiat:USD": "50000" }`).
 */
export function capEntries(a: Allowance): AssetAmount[] {
  return [...a.caps, ...(a.fiat ? [{ asset: fiatTotalName(a.fiat.currency), amount: a.fiat.cap }] : [])];
}

/** The amount of `asset` in `list`, or undefined. */
export function amountOf(list: readonly AssetAmount[], asset: string): bigint | undefined {
  const e = list.find((x) => x.asset === asset);
  return e ? BigInt(e.amount) : undefined;
}

/**
 * Checks an allowance's shape: asset names, decimal amounts, each asset once per list, at most
 * 16, a per-payment limit only for a capped asset; the id 16 bytes (or empty, `request`).
 */
export function validateAllowance(a: Allowance, opts: { request?: boolean } = {}): void {
  const idOk = opts.request
    ? a.allowanceId.length === 0 || a.allowanceId.length === ALLOWANCE_ID_BYTES
    : a.allowanceId.length === ALLOWANCE_ID_BYTES;
  if (!idOk) throw new InvalidArgumentError(`allowance id must be ${ALLOWANCE_ID_BYTES} bytes`);
  if (a.requireIntegrity !== undefined && typeof a.requireIntegrity !== 'boolean')
    throw new InvalidArgumentError('allowance: requireIntegrity must be true or false');
  for (const [name, list] of [
    ['caps', a.caps],
    ['per-payment limits', a.perPayment],
  ] as const) {
    if (list.length > MAX_ASSETS) throw new InvalidArgumentError(`allowance: at most ${MAX_ASSETS} ${name}`);
    const seen = new Set<string>();
    for (const e of list) {
      if (typeof e.asset !== 'string' || !ASSET.test(e.asset))
        throw new InvalidArgumentError(`allowance: asset "${String(e.asset).slice(0, 64)}" is not a valid name`);
      if (typeof e.amount !== 'string' || !AMOUNT.test(e.amount))
        throw new InvalidArgumentError(`allowance: ${e.asset} amount must be a decimal integer of base units`);
      if (seen.has(e.asset)) throw new InvalidArgumentError(`allowance: ${e.asset} listed twice in ${name}`);
      seen.add(e.asset);
    }
  }
  for (const e of a.perPayment)
    if (amountOf(a.caps, e.asset) === undefined)
      throw new InvalidArgumentError(`allowance: a per-payment limit for ${e.asset}, which has no cap`);
  const f = a.fiat;
  if (f) {
    if (typeof f.currency !== 'string' || !/^[A-Z]{3}$/.test(f.currency))
      throw new InvalidArgumentError('allowance: the fiat currency must be an ISO 4217 code such as USD');
    if (typeof f.cap !== 'string' || !AMOUNT.test(f.cap))
      throw new InvalidArgumentError('allowance: the fiat cap must be a decimal integer of minor units');
    if (typeof f.perPayment !== 'string' || (f.perPayment !== '' && !AMOUNT.test(f.perPayment)))
      throw new InvalidArgumentError('allowance: the fiat per-payment limit must be a decimal integer of minor units');
    if (!(f.prices instanceof Uint8Array) || f.prices.length === 0)
      throw new InvalidArgumentError('allowance: a fiat cap needs the price snapshot it is valued with');
    if (!opts.request && f.approvals.length > 0)
      throw new InvalidArgumentError('allowance: a granted fiat cap carries no approvals');
    if (f.approvals.length > MAX_ASSETS)
      throw new InvalidArgumentError(`allowance: at most ${MAX_ASSETS} price snapshot signatures`);
  }
}

/**
 * A granted allowance from a request: a fresh id, the caps as asked (a fiat cap without its
 * approvals), the device's verdict required if the request or the co-signer (`requireIntegrity`)
 * asks for it.
 */
export function grantAllowance(
  request: Allowance,
  rng: (n: number) => Uint8Array = randomBytes,
  requireIntegrity = false,
): Allowance {
  validateAllowance(request, { request: true });
  const f = request.fiat;
  return {
    allowanceId: rng(ALLOWANCE_ID_BYTES),
    caps: request.caps,
    perPayment: request.perPayment,
    ...(f
      ? { fiat: { currency: f.currency, cap: f.cap, perPayment: f.perPayment, prices: f.prices, approvals: [] } }
      : {}),
    ...(requireIntegrity || request.requireIntegrity ? { requireIntegrity: true } : {}),
  };
}

/**
 * The rule that needs no reader: a package on a capped reservation must carry a payment. The
 * merchant's one-suite check applies it without importing any chain. For a device about to sign
 * it is OVER_ALLOWANCE (it tries another slot); for a package delivered (`delivered`), whose
 * payment sits outside its id, a copy without one is a relay's — the device signs nothing else on
 * such reservations — so FAILED_PRECONDITION, naming nobody and not final: the device's own copy
 * still completes.
 */
export function requirePayment(
  p: {
    readonly device: string;
    readonly payment?: PaymentTx | null;
    readonly cosigners: readonly { readonly signer: string; readonly allowance?: Allowance | null }[];
  },
  delivered = false,
): void {
  const first = p.cosigners.find((c) => hasCaps(c.allowance));
  if (p.payment || !first) return;
  if (delivered)
    throw new ProtocolError(
      ErrorCode.FAILED_PRECONDITION,
      `the reservation of ${first.signer} caps payments: this copy carries no payment to count (deliver the device's own copy)`,
    );
  throw new ProtocolError(
    ErrorCode.OVER_ALLOWANCE,
    `the reservation of ${first.signer} caps payments: the package carries no payment to count`,
    [p.device],
  );
}

/** A package's device claims as a checker opened them (./device-claims.ts, ./package-claims.ts). */
export interface IntegrityClaim {
  readonly integrity: string;
  readonly integrityDetail: string;
}

/**
 * The integrity rule (an allowance's `requireIntegrity`, a co-signer's policy): the package's
 * device claims must verify and say `pass`. Missing or unverifiable claims are
 * FAILED_PRECONDITION — claims are outside the package id, so a relay's stripped copy must not
 * settle the payment as refused while the device's own copy can still complete; another verdict
 * is POLICY_DENIED (final). `open` returns the claims (null: none) or throws; `why` names the rule.
 */
export function requirePass(open: () => IntegrityClaim | null, why: string): IntegrityClaim {
  let claims: IntegrityClaim | null;
  try {
    claims = open();
  } catch (e) {
    throw new ProtocolError(
      ErrorCode.FAILED_PRECONDITION,
      `${(e as Error).message}: deliver the device's own copy (${why})`,
    );
  }
  if (!claims)
    throw new ProtocolError(
      ErrorCode.FAILED_PRECONDITION,
      `this package completes with a device integrity verdict only (${why}): this copy carries no device claims`,
    );
  if (claims.integrity !== 'pass')
    throw new ProtocolError(
      ErrorCode.POLICY_DENIED,
      `the device's integrity verdict was ${claims.integrity || 'not given'}${claims.integrityDetail ? ` (${claims.integrityDetail.slice(0, 100)})` : ''}: ${why} requires pass`,
    );
  return claims;
}

/**
 * A co-signer's policy over devices' offline payments (issue 19; ./policy.ts `devices`): what
 * caps it grants at reserve time (`maxCaps`, a fiat cap's operator-signed price snapshot and its
 * age), how much a device may hold in unspent caps on this node (`maxDeviceCaps`), whether a
 * reservation made before today's policy still completes, the device's integrity verdict a
 * package must carry (`requireIntegrity`), and the destination lists a completed payment must
 * pass (`denyTo`, `allowTo`). Every refusal is POLICY_DENIED (INVALID_ARGUMENT for a malformed
 * request) and changes nothing.
 */
import {
  ALLOWANCE_ID_BYTES,
  type Allowance,
  type OperatorPolicy,
  type PriceSnapshot,
  type Rng,
  capEntries,
  checkPriceSnapshot,
  destinationRefusal,
  decodePriceSnapshot,
  type GroupKey,
  grantAllowance,
  hasCaps,
  openDeviceClaims,
  requirePass,
  validateAllowance,
} from '@tessera/core';
import { SignerError } from './errors.js';
import { deviceSegment } from './lifecycle-store.js';
import type { DevicePolicy } from './policy.js';

const DAY_MS = 24 * 3600_000;

/**
 * The allowance this node signs into a reserve call's reservations: the caps asked for, with a
 * fresh id of its own, within the policy's `maxCaps` (which, when set, requires caps). A fiat cap
 * needs a price snapshot that M of the pinned operators signed, at most `devices.maxPriceAgeMs`
 * old (default a day); the grant keeps the snapshot, not the signatures.
 */
export function grant(
  asked: Allowance | null | undefined,
  dp: DevicePolicy,
  ctx: {
    readonly operators: OperatorPolicy | undefined;
    readonly now: number;
    readonly rng: Rng;
    /** The device keeps reservations that require the verdict without asking (DeviceReserve). */
    readonly takesIntegrityRule?: boolean;
  },
): Allowance | null {
  const { maxCaps: max, maxDeviceCaps } = dp;
  // The device's verdict is signed into the allowance when the device asks for the rule (its
  // wallet requires one), or when this node's policy requires it and the device says it keeps
  // such reservations: merchants then check it, the device signs on them only with a `pass`, and
  // this node holds every copy to it. Not added for a device that does not say so (an earlier
  // release would store a reservation with a field it cannot re-encode, and fail to sign on it):
  // `requireIntegrity` is checked at completion either way.
  const integrity =
    asked?.requireIntegrity === true || (dp.requireIntegrity === true && ctx.takesIntegrityRule === true);
  if (!hasCaps(asked)) {
    if (max || maxDeviceCaps)
      throw new SignerError(
        'POLICY_DENIED',
        `this node reserves only with caps (policy devices.${max ? 'maxCaps' : 'maxDeviceCaps'})`,
      );
    return integrity
      ? { allowanceId: ctx.rng(ALLOWANCE_ID_BYTES), caps: [], perPayment: [], requireIntegrity: true }
      : null;
  }
  try {
    validateAllowance(asked, { request: true });
  } catch (e) {
    throw new SignerError('INVALID_ARGUMENT', (e as Error).message);
  }
  if (asked.fiat) {
    let snapshot: PriceSnapshot;
    try {
      snapshot = checkPriceSnapshot(asked.fiat.prices, asked.fiat.approvals, {
        operators: ctx.operators,
        currency: asked.fiat.currency,
        now: ctx.now,
        maxAgeMs: dp.maxPriceAgeMs ?? DAY_MS,
      });
    } catch (e) {
      throw new SignerError(
        (e as { code?: string }).code === 'DECODE' ? 'INVALID_ARGUMENT' : 'POLICY_DENIED',
        (e as Error).message,
      );
    }
    // Per-asset limits keep binding: with them, every asset the snapshot prices needs a cap of
    // its own in the allowance (the fiat cap then bounds the sum on top).
    const unbounded = unboundedAssets(asked, snapshot);
    if ((max || maxDeviceCaps) && unbounded.length)
      throw new SignerError(
        'POLICY_DENIED',
        `this node limits each asset (policy devices.${max ? 'maxCaps' : 'maxDeviceCaps'}): a fiat cap needs a cap of its own for ${unbounded.slice(0, 8).join(', ')}, which its price snapshot values`,
      );
  }
  if (max)
    for (const c of capEntries(asked)) {
      const most = Object.hasOwn(max, c.asset) ? max[c.asset] : undefined;
      if (most === undefined || BigInt(c.amount) > BigInt(most))
        throw new SignerError(
          'POLICY_DENIED',
          `a cap of ${c.amount} ${c.asset} is above what this node grants (${most ?? 'none'})`,
        );
    }
  return grantAllowance(asked, ctx.rng, integrity);
}

/** The assets `snapshot` prices that `a` has no cap of its own for (a fiat cap alone bounds them). */
function unboundedAssets(a: Allowance, snapshot: PriceSnapshot): string[] {
  return snapshot.prices.map((p) => p.asset).filter((asset) => !a.caps.some((c) => c.asset === asset));
}

/**
 * Whether a reservation's allowance is within today's `maxCaps` (or, with only `maxDeviceCaps`
 * set, capped at all): a policy of caps applies to reservations made before it too (uncapped
 * ones, ones above today's maximum, and fiat caps over an asset without a cap of its own complete
 * nothing).
 */
export function withinMaxCaps(a: Allowance | null | undefined, max?: Readonly<Record<string, string>>): boolean {
  return (
    hasCaps(a) &&
    (!max ||
      capEntries(a).every((c) => Object.hasOwn(max, c.asset) && BigInt(c.amount) <= BigInt(max[c.asset] as string))) &&
    (!a.fiat || unboundedAssets(a, decodePriceSnapshot(a.fiat.prices)).length === 0)
  );
}

/**
 * Until when a reservation of allowance `a` may be used: a fiat cap's prices are no older at use
 * than the policy lets them be at grant (`maxPriceAgeMs` after they were taken).
 */
export function pricedUntil(a: Allowance | null, dp: DevicePolicy): number {
  if (!a?.fiat) return Number.POSITIVE_INFINITY;
  return decodePriceSnapshot(a.fiat.prices).takenAt + (dp.maxPriceAgeMs ?? DAY_MS);
}

/**
 * POLICY_DENIED unless the device's unspent caps on this node (each usable allowance's cap minus
 * what this node counted against it: the larger of its stored total and the spent journal's sum)
 * plus `asked` stay within `most`, total by total (an asset's, a fiat cap's `@fiat:<currency>`).
 */
export async function withinDeviceCaps(
  device: string,
  most: Readonly<Record<string, string>>,
  usable: ReadonlyMap<string, Allowance>,
  asked: Allowance,
  counted: {
    /** The stored running totals of an allowance (by its record name). */
    totals(name: string): Promise<Record<string, string>>;
    /** What the spent journal says uses charged to it, per total. */
    journalled(name: string, total: string): bigint;
  },
): Promise<void> {
  const held = new Map<string, bigint>();
  for (const [id, a] of usable) {
    const name = `${deviceSegment(device)}/${id}`;
    const totals = await counted.totals(name);
    for (const c of capEntries(a)) {
      const stored = BigInt(totals[c.asset] ?? '0');
      const journalled = counted.journalled(name, c.asset);
      const left = BigInt(c.amount) - (stored > journalled ? stored : journalled);
      if (left > 0n) held.set(c.asset, (held.get(c.asset) ?? 0n) + left);
    }
  }
  for (const c of capEntries(asked)) {
    const total = (held.get(c.asset) ?? 0n) + BigInt(c.amount);
    const limit = Object.hasOwn(most, c.asset) ? most[c.asset] : undefined;
    if (limit === undefined || total > BigInt(limit))
      throw new SignerError(
        'POLICY_DENIED',
        `device ${device.slice(0, 64)} would hold ${total} ${c.asset} in unspent caps on this node (policy devices.maxDeviceCaps: ${limit ?? 'none'})`,
      );
  }
}

/**
 * With `devices.requireIntegrity`, or on a reservation whose allowance requires it: the package's
 * device claims (core's device-claims.ts) must be there, signed by the device itself about
 * exactly this package, with the verdict `pass` — the device's own integrity rule, evaluated
 * again here. Another verdict is POLICY_DENIED (final); missing or unverifiable claims
 * FAILED_PRECONDITION (not final: another copy may carry them). Nothing is spent either way.
 */
export function checkIntegrity(
  dp: DevicePolicy,
  key: GroupKey,
  pkg: { readonly device: string; readonly claims?: Uint8Array | null; readonly digest: Uint8Array },
  allowance: Allowance | null | undefined,
): void {
  const byPolicy = dp.requireIntegrity === true;
  if (!byPolicy && !allowance?.requireIntegrity) return;
  requirePass(
    () => openDeviceClaims(key, pkg, pkg.digest),
    byPolicy ? 'policy devices.requireIntegrity' : "this node's reservation",
  );
}

/**
 * The node's destination lists (`devices.denyTo`, `devices.allowTo`) on a completed package's
 * payment: POLICY_DENIED naming the payee, before anything is spent. With a list, a package that
 * pays no transaction (a bare message, whose payee cannot be known) is refused too.
 */
export function checkPayees(
  dp: { denyTo?: readonly string[]; allowTo?: readonly string[] },
  payment: { to: readonly string[] } | undefined,
): void {
  const why = destinationRefusal(dp, payment, 'this node');
  if (why) throw new SignerError('POLICY_DENIED', why);
}

/**
 * The device's own risk rules while offline, checked before a payment is signed (a refusal signs
 * nothing and changes nothing):
 *
 * - velocity: at most `maxPaymentsPerHour` payments signed in any rolling hour, counted from the
 *   journal (so a restart does not reset it); the `risk` event warns from `warnAt` of the limit;
 * - device integrity: the app passes its platform attestation verdict (Play Integrity, App
 *   Attest, a jailbreak check) with each payment; with `requireIntegrity`, anything but `pass`
 *   is refused. The verdict is recorded in the payment's journal entry either way.
 *
 * - destinations: `allowTo` (the only payees this device pays) and `denyTo` (payees it never
 *   pays), matched against the payees read from the transaction (a Bitcoin or Solana address as
 *   core's payment readers print it); with either list, a bare message is refused — the payees
 *   are known only from a transaction.
 *
 * Amount caps are the reservations' allowances (core's allowance.ts), counted by the co-signer.
 */
import { type TypedPayment, destinationRefusal } from '@tessera/core';
import { DeviceError } from './errors.js';
import type { JournalEntry } from './journal.js';

export interface RiskRules {
  /** Payments signed in any rolling hour, at most. */
  maxPaymentsPerHour?: number;
  /** The `risk` event fires from this fraction of the limit (default 0.8). */
  warnAt?: number;
  /** Refuse a payment whose integrity verdict is not `pass`. */
  requireIntegrity?: boolean;
  /** The only payees this device pays (addresses as the payment reads them). */
  allowTo?: readonly string[];
  /** Payees this device never pays. */
  denyTo?: readonly string[];
}

/**
 * The destination rules on a payment read from its transaction (undefined: a bare message), by
 * core's one rule (a co-signer applies its own lists the same way): POLICY_DENIED naming why.
 */
export function checkDestinations(rules: RiskRules, payment: TypedPayment | undefined): void {
  const why = destinationRefusal(rules, payment, 'this wallet');
  if (why) throw new DeviceError('POLICY_DENIED', why);
}

/** The app's attestation verdict for this payment. */
export interface IntegrityVerdict {
  verdict: 'pass' | 'fail' | 'unknown';
  /** What produced it (e.g. `play-integrity:MEETS_STRONG_INTEGRITY`), at most 200 characters. */
  detail?: string;
}

const HOUR_MS = 3_600_000;

/** The verdict as the journal records it (`pass:detail`); INVALID_ARGUMENT for a malformed one. */
export function integrityRecord(v: IntegrityVerdict | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (!v || !['pass', 'fail', 'unknown'].includes(v.verdict))
    throw new DeviceError('INVALID_ARGUMENT', 'integrity.verdict must be pass, fail or unknown');
  const detail = v.detail === undefined ? '' : String(v.detail);
  if (detail.length > 200) throw new DeviceError('INVALID_ARGUMENT', 'integrity.detail is at most 200 characters');
  return detail ? `${v.verdict}:${detail}` : v.verdict;
}

/**
 * Checks the rules for one more payment at `now`; returns the count in the last hour including
 * it, and whether to warn. POLICY_DENIED when a rule refuses.
 */
export function checkRisk(
  rules: RiskRules,
  journal: readonly JournalEntry[],
  now: number,
  integrity: IntegrityVerdict | undefined,
): { count: number; limit: number | null; warn: boolean } {
  if (rules.requireIntegrity && integrity?.verdict !== 'pass')
    throw new DeviceError(
      'POLICY_DENIED',
      `device integrity is ${integrity ? integrity.verdict : 'not given'}: this wallet signs only on a device that passes`,
    );
  const limit = rules.maxPaymentsPerHour ?? null;
  const count = journal.filter((e) => e.kind === 'signed' && e.at > now - HOUR_MS).length + 1;
  if (limit !== null && count > limit)
    throw new DeviceError(
      'POLICY_DENIED',
      `velocity: ${count - 1} payments signed in the last hour, the limit is ${limit}; try again later`,
    );
  return { count, limit, warn: limit !== null && count >= Math.ceil((rules.warnAt ?? 0.8) * limit) };
}

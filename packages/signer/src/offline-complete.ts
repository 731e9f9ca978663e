/**
 * A co-signer's part of a device's FROST offline package (OfflineCosigner.complete): the
 * package checked against this node's own reservation, its payment against the allowance, the
 * nonce consumed durably (and journalled) before the share leaves.
 */
import {
  PayloadKind,
  chargeAllowance,
  checkPackagePayment,
  hasCaps,
  SigningNonces,
  decodeOfflinePackage,
  groupPublicKey,
  encodeSignatureShare,
  equalBytes,
  signEnvelope,
  toHex,
  txTotalName,
  txTotals,
  verifyOfflinePackage,
} from '@tessera/core';
import type { BatchOp, KeyedMutex } from '@tessera/store';
import { checkIntegrity, checkPayees, withinMaxCaps } from './allowance-policy.js';
import { SignerError, toTaskError } from './errors.js';
import type { OfflineCosignerContext } from './offline-cosigner.js';
import { decodeMessageSafe, reservationLedgerId, sameAllowance } from './reservation-records.js';
import { deviceSegment } from './lifecycle-store.js';
import { devicePolicyOf } from './policy.js';
import type { SpentCharge } from './spent.js';

/**
 * Completes an offline package with this node's reserved nonce. The package must be for a
 * reservation this node issued to that device (its own ledger record, not the package, is
 * the authority), unexpired, and carry a valid share of the device over the message: the
 * device's share is its authorisation. The nonce is consumed durably before the share
 * leaves; the same package again gets the same share; another package on the same
 * reservation is refused with RESERVATION_USED. A refused package does not burn the
 * reservation.
 */
export async function completeOfflinePackage(
  ctx: OfflineCosignerContext,
  node: { admit(device: string): Promise<void>; readonly allowanceLocks: KeyedMutex },
  bytes: Uint8Array,
): Promise<Uint8Array> {
  const pkg = decodeOfflinePackage(bytes);
  const keyId = pkg.keyId;
  try {
    // Devices allowed on this node, this one not revoked.
    await node.admit(pkg.device);
    const dp = devicePolicyOf(ctx.policy());
    // A package completes with the share of its own epoch (kept for a while after a refresh).
    const rec = await ctx.keyAt(keyId, pkg.epoch);
    const mine = pkg.cosigners.filter((c) => c.signer === ctx.identity.id);
    if (mine.length !== 1) throw new SignerError('INVALID_ARGUMENT', 'the package names no reservation of this node');
    const res = mine[0] as (typeof mine)[number];
    const ledgerId = reservationLedgerId(pkg.device, keyId, res.nonceId);
    const st = await ctx.ledger.status(ledgerId);
    if (st.state === 'unknown')
      throw new SignerError(
        'RESERVATION_UNKNOWN',
        `no reservation ${toHex(res.nonceId)} of ${pkg.device} on this node`,
      );
    // Reservations exist only for devices of the key; checked again against the key itself.
    if (!rec.key.roster.some((r) => r.id === pkg.device && r.device))
      throw new SignerError('POLICY_DENIED', `${pkg.device.slice(0, 64)} is not a device of key ${keyId}`);
    const own = st.meta ? decodeMessageSafe(st.meta) : undefined;
    if (
      !own ||
      own.epoch !== pkg.epoch ||
      own.keyId !== keyId ||
      own.device !== pkg.device ||
      !equalBytes(own.hiding, res.hiding) ||
      !equalBytes(own.binding, res.binding) ||
      own.expiresAt !== res.expiresAt ||
      !sameAllowance(own.allowance, res.allowance)
    )
      throw new SignerError('RESERVATION_INVALID', 'the package does not match the reservation this node issued', [
        pkg.device,
      ]);
    if (st.state === 'fresh' && own.expiresAt < ctx.clock()) {
      await ctx.ledger.discard(ledgerId);
      throw new SignerError(
        'RESERVATION_EXPIRED',
        `reservation ${toHex(res.nonceId)} expired at ${new Date(own.expiresAt).toISOString()}`,
      );
    }
    if (st.state === 'consumed' && !equalBytes(st.requestDigest, pkg.digest))
      throw new SignerError(
        'RESERVATION_USED',
        `reservation ${toHex(res.nonceId)} was already used by another package`,
      );
    // The journal outlives a damaged store: a used reservation stays used.
    const spentFor = ctx.spent?.get(ledgerId);
    if (spentFor !== undefined && spentFor !== toHex(pkg.digest))
      throw new SignerError(
        'RESERVATION_USED',
        `reservation ${toHex(res.nonceId)} was already used by another package`,
      );
    // The session that verified the package also signs: its list is decoded and checked once,
    // this node's own reserved commitment (its ledger's copy, checked equal above) without the
    // subgroup check: it made those points itself.
    const session = verifyOfflinePackage(
      rec.key,
      pkg,
      { keyId, epoch: rec.epoch },
      { own: { identifier: rec.share.identifier, hiding: own.hiding, binding: own.binding } },
    );
    // A policy of caps applies to reservations made before it too: uncapped ones, or ones above
    // today's maximum, complete nothing (POLICY_DENIED; nothing spent).
    if ((dp.maxCaps || dp.maxDeviceCaps) && !withinMaxCaps(own.allowance, dp.maxCaps))
      throw new SignerError(
        'POLICY_DENIED',
        'this reservation is not within the caps this node now grants (policy devices.maxCaps / maxDeviceCaps)',
      );
    // The device's own integrity verdict, signed by it into the package, when the policy asks.
    checkIntegrity(dp, rec.key, pkg, own.allowance);
    // Payments (issue 19): a package with a payment signs what its transaction signs, and every
    // capped reservation's allowance holds it (PAYMENT_MISMATCH, OVER_ALLOWANCE; nothing spent).
    const paid = checkPackagePayment({ ...pkg, suite: rec.key.suite.id, publicKey: groupPublicKey(rec.key) });
    // The operators' destination lists, evaluated again here whatever the device's own were.
    checkPayees(dp, paid?.payment);
    const capped = hasCaps(own.allowance) ? own.allowance : undefined;
    const allowanceName = capped ? `${deviceSegment(pkg.device)}/${toHex(capped.allowanceId)}` : undefined;
    const totalsKey = allowanceName ? `allowance/${allowanceName}` : undefined;
    /** What this completion charged (journalled with the use). */
    let charged: SpentCharge[] = [];
    let totals: Record<string, string> = {};
    // Cached unless this call's produce() runs: concurrent deliveries that lose the ledger's
    // per-nonce lock get the stored share and must not be counted as fresh completions.
    let cached = true;
    let share: Uint8Array;
    // This node's running total of the allowance: charged on the fresh path only (a re-delivery
    // is not counted again), under the allowance's lock (two packages of one allowance cannot
    // both pass its cap), and written in the same synced batch as the consumed nonce.
    const charge = capped
      ? {
          beforeProduce: async () => {
            const raw = await ctx.store.get(totalsKey as string);
            totals = raw ? (JSON.parse(new TextDecoder().decode(raw)) as Record<string, string>) : {};
            const p = (paid as NonNullable<typeof paid>).payment;
            // Each stored total (an asset's, the fiat cap's), or the journal's sum if a damaged
            // store lost some of it.
            const before = (name: string) => {
              const stored = BigInt(totals[name] ?? '0');
              const journalled = ctx.spent?.charged(allowanceName as string, name, ledgerId) ?? 0n;
              return stored > journalled ? stored : journalled;
            };
            // A transaction another package of which (another input) completed here counts once.
            const c = chargeAllowance(capped, p, before, [pkg.device], (name) =>
              BigInt(totals[txTotalName(p.tx ?? '', name)] ?? '0'),
            );
            charged = Object.entries(c.totals).map(([name, total]) => ({
              allowance: allowanceName as string,
              asset: name,
              amount: total - before(name),
            }));
            const next = { ...c.totals, ...txTotals(p, c) };
            totals = { ...totals, ...Object.fromEntries(Object.entries(next).map(([n, t]) => [n, t.toString()])) };
          },
          commit: (ops: readonly BatchOp[]) =>
            ctx.store.batch(
              [
                ...ops,
                { type: 'put', key: totalsKey as string, value: new TextEncoder().encode(JSON.stringify(totals)) },
              ],
              { sync: true },
            ),
        }
      : {};
    try {
      const consume = () =>
        ctx.ledger.consume(
          ledgerId,
          pkg.digest,
          async (secret) => {
            cached = false;
            // The reservation this node signed names the commitment of exactly these nonces.
            const nonces = SigningNonces.importSecret(rec.key.suite, rec.share.identifier, secret, {
              identifier: rec.share.identifier,
              hiding: own.hiding,
              binding: own.binding,
            });
            const out = session.signShare(rec.share, nonces);
            // Journalled (fsync) before the ledger write and before release.
            await ctx.spent?.add(ledgerId, toHex(pkg.digest), charged);
            return out;
          },
          charge,
        );
      share = await (totalsKey ? node.allowanceLocks.run(totalsKey, consume) : consume());
    } catch (e) {
      if ((e as { code?: string }).code === 'NONCE_REUSED')
        throw new SignerError(
          'RESERVATION_USED',
          `reservation ${toHex(res.nonceId)} was already used by another package`,
        );
      throw e;
    }
    await ctx.audit.append({
      type: 'offline-complete',
      actor: pkg.device,
      data: { keyId, package: pkg.packageId, nonce: ledgerId, cached },
    });
    ctx.onEvent({ type: 'complete', keyId, device: pkg.device, result: cached ? 'cached' : 'ok' });
    const payload = encodeSignatureShare(rec.key.suite, {
      sessionId: pkg.digest.subarray(0, 16),
      identifier: rec.share.identifier,
      share,
      requestDigest: pkg.digest,
    });
    return signEnvelope(ctx.identity, PayloadKind.SIGNATURE_SHARE, payload);
  } catch (e) {
    const err = toTaskError(e);
    await ctx.audit
      .append({
        type: 'refusal',
        actor: ctx.identity.id,
        data: { keyId, what: 'offline', package: pkg.packageId, code: err.code, reason: err.message.slice(0, 200) },
      })
      .catch(() => {});
    ctx.onEvent({ type: 'refusal', keyId, code: err.code });
    throw e;
  }
}

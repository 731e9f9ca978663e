/**
 * Reserving offline signatures (`Device.reserve`): the request to the cluster, then what it
 * returns checked and stored — each slot's reservations opened against the key, for this device,
 * key and epoch and with the caps asked for — in one write with the journal entry.
 */
import {
  decodeMessage,
  encodeMessage,
  openReservation,
  toHex,
  type Allowance,
  type ParticipantIdentity,
  type WireTypes,
} from '@tessera/core';
import { DeviceError } from './errors.js';
import type { RiskRules } from './risk.js';
import type { Holdings } from './holdings.js';
import { type AllowanceRequest, allowanceRequest } from './payments.js';
import type { GatewayUrl } from './enrolment.js';
import type { GatewayClient } from './gateway-client.js';
import type { Journal } from './journal.js';
import { type Slot, pad } from './offline-sign.js';
import { DeviceStorage } from './storage.js';

type WireAllowance = WireTypes['Allowance'];

/**
 * Whether a granted allowance has the caps asked for (its id is the co-signer's; a fiat cap the
 * same amounts valued with the same price snapshot, its signatures dropped).
 */
function sameCaps(granted: Allowance | null | undefined, asked: Allowance): boolean {
  const key = (a: Allowance) =>
    JSON.stringify([
      a.caps,
      a.perPayment,
      a.fiat ? [a.fiat.currency, a.fiat.cap, a.fiat.perPayment, toHex(a.fiat.prices)] : null,
      a.requireIntegrity === true,
    ]);
  return !!granted && key(granted) === key(asked);
}

/** The rule alone, as a co-signer grants it to a device that asked for no caps. */
const RULE_ONLY: Allowance = { allowanceId: new Uint8Array(0), caps: [], perPayment: [], requireIntegrity: true };

/** Whether a co-signer granted what was asked (`null`: no caps), or that with the integrity rule added. */
function granted(g: Allowance | null | undefined, asked: Allowance | null): boolean {
  if (!asked) return !g || sameCaps(g, RULE_ONLY);
  return sameCaps(g, asked) || sameCaps(g, { ...asked, requireIntegrity: true });
}

/** What reserving needs of its device. */
export interface ReserveContext extends Pick<Holdings, 'key' | 'allowance'> {
  /** The wallet's own rules: with `requireIntegrity`, the reservations are asked to carry it. */
  readonly risk: RiskRules;
  readonly store: DeviceStorage;
  readonly journal: Journal;
  me(): ParticipantIdentity;
  serial<T>(fn: () => Promise<T>): Promise<T>;
  gateway(url: GatewayUrl): GatewayClient;
}

/**
 * Asks the cluster at `url` for `req.count` slots on `req.keyId`, then checks what it returns and
 * stores it with the journal entry in one write: any reservation for another device, key, epoch or
 * caps refuses them all.
 */
export async function reserveSlots(
  ctx: ReserveContext,
  url: GatewayUrl,
  req: { keyId: string; count: number; cosigners?: string[]; ttlMs?: number; caps?: AllowanceRequest },
): Promise<{ added: number; allowance: number; errors: string[] }> {
  const rec = await ctx.key(req.keyId);
  const caps = allowanceRequest(req.caps);
  // A wallet whose own rule requires the app's verdict asks its co-signers to sign the rule into
  // the reservations: merchants then verify the verdict, and the co-signers hold any copy to it.
  const asked = ctx.risk.requireIntegrity
    ? { ...(caps ?? { allowanceId: new Uint8Array(0), caps: [], perPayment: [] }), requireIntegrity: true }
    : caps;
  const out = decodeMessage(
    'DeviceReserved',
    await ctx.gateway(url).call(
      'reserve',
      encodeMessage('DeviceReserve', {
        keyId: req.keyId,
        count: req.count,
        cosigners: req.cosigners ?? [],
        ttlMs: req.ttlMs ?? 0,
        allowance: asked as WireAllowance,
        // This release signs on reservations whose allowance requires the app's verdict: a
        // co-signer whose policy requires one signs the rule in, and the device then signs on
        // them only with a `pass` (never a package the co-signer would refuse at completion).
        takesIntegrityRule: true,
        presignSeed: new Uint8Array(0),
      }),
      60_000,
    ),
  );
  return ctx.serial(async () => {
    const ops: { type: 'put'; key: string; value: Uint8Array }[] = [];
    let seq = (await ctx.store.getJson<number>('seq')) ?? 0;
    let earliest = Number.POSITIVE_INFINITY;
    for (const slot of out.slots) {
      const rs = slot.reservations.map((env) => openReservation(rec.key, env));
      if (
        rs.length !== rec.key.threshold - 1 ||
        rs.some((r) => r.device !== ctx.me().id || r.keyId !== req.keyId || r.epoch !== rec.epoch)
      )
        throw new DeviceError(
          'RESERVATION_INVALID',
          'the cluster returned a reservation for another device, key or epoch',
        );
      // The caps asked for are the caps granted (a co-signer grants them or refuses), with the
      // integrity rule added if a co-signer's policy requires it; nothing else unasked.
      if (rs.some((r) => !granted(r.allowance, asked)))
        throw new DeviceError('RESERVATION_INVALID', 'the cluster returned reservations with other caps than asked');
      const expiresAt = Math.min(...rs.map((r) => r.expiresAt));
      earliest = Math.min(earliest, expiresAt);
      ops.push({
        type: 'put',
        key: `slot/${req.keyId}/${pad(++seq)}`,
        value: DeviceStorage.json({
          reservations: slot.reservations.map(toHex),
          expiresAt,
          epoch: rec.epoch,
        } satisfies Slot),
      });
    }
    ops.push({ type: 'put', key: 'seq', value: DeviceStorage.json(seq) });
    await ctx.journal.append(
      out.slots.length ? [{ kind: 'reserved', keyId: req.keyId, count: out.slots.length, expiresAt: earliest }] : [],
      ops,
    );
    return {
      added: out.slots.length,
      allowance: await ctx.allowance(req.keyId),
      errors: out.errors,
    };
  });
}

/**
 * Offline signing with an ECDSA key (loaded on first use with `@tessera/ecdsa`): reserving is
 * presigning — the device and its co-signers run DKLs23's three presigning rounds while online
 * (the device through its link, ecdsa-tasks.ts), each keeping its part of the presignature — and
 * signing offline is the device's partial on that presignature, in a package it signs
 * (`@tessera/ecdsa` offline-package.ts) that its co-signers complete once.
 *
 * - A presignature becomes a slot only with every co-signer's signed statement of it (same key,
 *   epoch, session, signers and R as the device's own), written with the journal entry in one
 *   synced batch; presignatures the cluster never confirmed are dropped at the next reserve.
 * - Signing takes the oldest slot of the key's epoch, and removes it, queues the package and
 *   journals it in one synced write before the package is returned: a presignature is used once.
 * - A slot signs a 32-byte digest, or pays a Bitcoin transaction (a P2WPKH input: its BIP 143
 *   sighash, read from the PSBT here and by every co-signer); caps on ECDSA slots are not built.
 */
import {
  PayloadKind,
  decodeMessage,
  encodeMessage,
  equalBytes,
  fromHex,
  openEnvelope,
  packageToText,
  toHex,
  utf8ToBytes,
  type KeyShareRecord,
  type ParticipantIdentity,
  type Rng,
} from '@tessera/core';
import {
  createEcdsaPackage,
  decodePresigned,
  devicePresignSession,
  keyView,
  partialSign,
  presignatureFromRecord,
  rosterIndex,
} from '@tessera/ecdsa';
import { type PendingPresignature, pendingPresignature } from './ecdsa-tasks.js';
import type { GatewayUrl } from './enrolment.js';
import { DeviceError } from './errors.js';
import type { DeviceEmitter } from './events.js';
import type { GatewayClient } from './gateway-client.js';
import type { Journal } from './journal.js';
import type { OfflineRequest, OfflineSigned } from './offline-sign.js';
import type { DeviceStorage } from './storage.js';
import type { QueuedPackage } from './sync.js';

/** A stored ECDSA slot: one presignature, with every co-signer's statement of it. */
export interface EcdsaSlot {
  session: string;
  epoch: number;
  /** When the first of its co-signers drops its part, unused (ms, from their signed statements). */
  expiresAt: number;
  /** The co-signers' ECDSA_PRESIGNATURE envelopes (hex). */
  presigned: string[];
  /** The device's part (hex of EcdsaPresignatureSecret) and its statement (hex of EcdsaPresigned). */
  secret: string;
  meta: string;
}

// Local, not imported from the modules of a page's first download: a value this chunk shared with
// them would split them into more chunks (test/sdk-size.test.ts counts the bytes).
const pad = (n: number) => String(n).padStart(12, '0');
const json = (x: unknown) => new TextEncoder().encode(JSON.stringify(x));

export const ecdsaSlotPrefix = (keyId: string) => `eslot/${keyId}/`;

export interface EcdsaOfflineContext {
  readonly id: string;
  me(): ParticipantIdentity;
  readonly store: DeviceStorage;
  readonly journal: Journal;
  readonly events: DeviceEmitter;
  readonly clock: () => number;
  readonly rng: Rng;
  /** A slot this close to its expiry is not signed on (offline-sign.ts's EXPIRY_MARGIN_MS). */
  readonly expiryMarginMs: number;
  key(keyId: string): Promise<KeyShareRecord>;
  allowance(keyId: string): Promise<number>;
  checkAllowance(keyId: string): Promise<void>;
  serial<T>(fn: () => Promise<T>): Promise<T>;
  gateway(url: GatewayUrl): GatewayClient;
  /** Whether a reserve call still running allows presigning session `session` (hex) on `keyId`. */
  presignRunning(keyId: string, session: string): boolean;
  /** Runs a reserve call with the link open, taking presigning tasks of `sessions` (hex) only meanwhile. */
  presigning<T>(url: GatewayUrl, keyId: string, sessions: ReadonlySet<string>, call: () => Promise<T>): Promise<T>;
}

/** Reserves `count` presignatures on ECDSA key `keyId` with its co-signers (all online now). */
export async function reserveEcdsa(
  ctx: EcdsaOfflineContext,
  url: GatewayUrl,
  req: { keyId: string; count: number; cosigners?: string[]; caps?: unknown },
): Promise<{ added: number; allowance: number; errors: string[] }> {
  if (req.caps !== undefined)
    throw new DeviceError('NOT_SUPPORTED', 'caps on ECDSA reservations are not built yet: reserve without caps');
  const rec = await ctx.key(req.keyId);
  const key = keyView(rec);
  const started = ctx.clock();
  if (!Number.isInteger(req.count) || req.count < 1 || req.count > 64)
    throw new DeviceError('INVALID_ARGUMENT', 'an ECDSA key reserves 1..64 presignatures per call');
  // The session ids this call allows, from fresh randomness of the device's: the coordinator
  // cannot run a session id twice on it (a restored phone forgot which ids it used).
  const seed = ctx.rng(32);
  const sessions = new Set(Array.from({ length: req.count }, (_, i) => toHex(devicePresignSession(seed, i))));
  const out = decodeMessage(
    'DeviceReserved',
    await ctx.presigning(url, req.keyId, sessions, async () =>
      ctx.gateway(url).call(
        'reserve',
        encodeMessage('DeviceReserve', {
          keyId: req.keyId,
          count: req.count,
          cosigners: req.cosigners ?? [],
          ttlMs: 0,
          allowance: null as never,
          takesIntegrityRule: false,
          presignSeed: seed,
        }),
        // Each presignature is three relayed rounds with the device taking part.
        60_000 + 5_000 * Math.max(1, Math.min(req.count, 64)),
      ),
    ),
  );
  return ctx.serial(async () => {
    const ops: ({ type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string })[] = [];
    let seq = (await ctx.store.getJson<number>('seq')) ?? 0;
    const confirmed = new Set<string>();
    const now = ctx.clock();
    let earliest = Number.POSITIVE_INFINITY;
    for (const slot of out.slots) {
      if (!slot.reservations.length)
        throw new DeviceError('RESERVATION_INVALID', 'the cluster returned a slot without statements');
      const stated = slot.reservations.map((env) => {
        const e = openEnvelope(env, PayloadKind.ECDSA_PRESIGNATURE);
        const by = key.roster.find((r) => equalBytes(r.signKey, e.sender));
        return { by: by?.id, p: decodePresigned(key.suite, e.payload) };
      });
      const session = toHex(stated[0]?.p.session ?? new Uint8Array(0));
      // One slot per presignature: a session returned twice would sign twice on one presignature.
      if (confirmed.has(session) || !sessions.has(session))
        throw new DeviceError('RESERVATION_INVALID', 'the cluster returned a presignature twice or of another call');
      const pending = await ctx.store.getJson<PendingPresignature>(pendingPresignature(req.keyId, session));
      if (!pending)
        throw new DeviceError('RESERVATION_INVALID', 'the cluster returned a presignature this device did not make');
      const mine = decodePresigned(key.suite, fromHex(pending.meta));
      const cosigners = mine.signers.filter((id) => id !== ctx.id);
      // Co-signers are nodes (a device completes nothing), the ones asked for if any were.
      const node = (id: string) => key.roster.some((r) => r.id === id && !r.device);
      if (
        mine.epoch !== rec.epoch ||
        cosigners.some((id) => !node(id) || (req.cosigners?.length && !req.cosigners.includes(id)))
      )
        throw new DeviceError(
          'RESERVATION_INVALID',
          'a presignature with other co-signers or of another epoch than asked',
        );
      const fits = (p: (typeof stated)[number]['p']) =>
        p.keyId === req.keyId &&
        p.epoch === rec.epoch &&
        toHex(p.session) === session &&
        p.signers.join(',') === mine.signers.join(',') &&
        equalBytes(p.R, mine.R) &&
        (p.expiresAt ?? 0) > now;
      const by = stated.map((s) => s.by);
      if (
        stated.length !== cosigners.length ||
        new Set(by).size !== by.length ||
        by.some((id) => !id || !cosigners.includes(id)) ||
        stated.some((s) => !fits(s.p))
      )
        throw new DeviceError(
          'RESERVATION_INVALID',
          'a co-signer states another presignature than this device holds (key, epoch, signers or R)',
        );
      confirmed.add(session);
      earliest = Math.min(earliest, ...stated.map((x) => x.p.expiresAt ?? 0));
      ops.push(
        {
          type: 'put',
          key: `${ecdsaSlotPrefix(req.keyId)}${pad(++seq)}`,
          value: json({
            session,
            epoch: rec.epoch,
            expiresAt: Math.min(...stated.map((x) => x.p.expiresAt ?? 0)),
            presigned: slot.reservations.map(toHex),
            secret: pending.secret,
            meta: pending.meta,
          } satisfies EcdsaSlot),
        },
        { type: 'del', key: pendingPresignature(req.keyId, session) },
      );
    }
    // Presignatures of earlier calls the cluster never confirmed: no co-signer statement will come.
    for await (const [k, v] of ctx.store.entries(pendingPresignature(req.keyId, '')))
      if (
        !confirmed.has(k.split('/').pop() as string) &&
        // (not one of another reserve call still running on this key)
        !ctx.presignRunning(req.keyId, k.split('/').pop() as string) &&
        (JSON.parse(new TextDecoder().decode(v)) as PendingPresignature).at < started
      )
        ops.push({ type: 'del', key: k });
    ops.push({ type: 'put', key: 'seq', value: json(seq) });
    const expiries = out.slots.length ? { expiresAt: earliest } : {};
    await ctx.journal.append(
      out.slots.length ? [{ kind: 'reserved', keyId: req.keyId, count: out.slots.length, ...expiries }] : [],
      ops,
    );
    return { added: out.slots.length, allowance: await ctx.allowance(req.keyId), errors: out.errors };
  });
}

/** Signs a 32-byte digest offline with the oldest ECDSA slot of the key's epoch. */
export async function signEcdsaOffline(ctx: EcdsaOfflineContext, req: OfflineRequest): Promise<OfflineSigned> {
  if (req.integrity) throw new DeviceError('NOT_SUPPORTED', 'integrity verdicts on ECDSA packages are not built yet');
  const rec = await ctx.key(req.keyId);
  const key = keyView(rec);
  // A payment: the message is what its transaction signs (a P2WPKH input's BIP 143 sighash),
  // read here with the chain's reader (loaded on first use) — and again by every co-signer.
  let message = req.message;
  let paid: OfflineSigned['payment'];
  if (req.payment) {
    if (req.payment.chain !== 'bitcoin')
      throw new DeviceError(
        'PAYMENT_MISMATCH',
        `an ECDSA key pays on bitcoin (SegWit v0), not ${String(req.payment.chain).slice(0, 32)}`,
      );
    const read = (await import('./payment-plan.js')).readEcdsaPayment(req.payment, key.publicKey);
    if (message && !equalBytes(message, read.message))
      throw new DeviceError('PAYMENT_MISMATCH', 'the message is not what the transaction signs');
    message = read.message;
    paid = read.json;
  }
  if (!(message instanceof Uint8Array) || message.length !== 32)
    throw new DeviceError('INVALID_ARGUMENT', 'an ECDSA package signs a 32-byte digest');
  const now = ctx.clock();
  const stale: { type: 'del'; key: string }[] = [];
  let chosen: { k: string; slot: EcdsaSlot } | undefined;
  for await (const [k, v] of ctx.store.entries(ecdsaSlotPrefix(req.keyId))) {
    const slot = JSON.parse(new TextDecoder().decode(v)) as EcdsaSlot;
    // A slot of an earlier epoch (its co-signers' parts belong to shares that no longer sign), or
    // one its co-signers drop before the package could reach them.
    if (slot.epoch !== rec.epoch || !(slot.expiresAt - ctx.expiryMarginMs >= now)) stale.push({ type: 'del', key: k });
    else if (!chosen) chosen = { k, slot };
  }
  const lapsed = stale.length ? [{ kind: 'expired' as const, keyId: req.keyId, count: stale.length }] : [];
  if (!chosen) {
    if (stale.length) await ctx.journal.append(lapsed, stale);
    ctx.events.emit('allowance', { keyId: req.keyId, remaining: 0 });
    throw new DeviceError(
      'NO_ALLOWANCE',
      `no unused presignature left for key ${req.keyId}: reserve more while online`,
    );
  }
  const { slot } = chosen;
  const stated = decodePresigned(key.suite, fromHex(slot.meta));
  const secret = fromHex(slot.secret);
  let partial: { u: Uint8Array; w: Uint8Array };
  try {
    const ps = presignatureFromRecord(secret, stated, {
      me: rosterIndex(key, ctx.id),
      signers: stated.signers.map((id) => rosterIndex(key, id)).sort((a, b) => a - b),
      publicKey: key.publicKey,
      keyIdBytes: utf8ToBytes(req.keyId),
    });
    // Re-randomised with the digest (Groth–Shoup; sign.ts): R' is fixed only now.
    partial = partialSign(ps, message, 0n);
  } finally {
    secret.fill(0);
  }
  const pkg = createEcdsaPackage(ctx.me(), key, {
    keyId: req.keyId,
    epoch: rec.epoch,
    device: ctx.id,
    message,
    session: fromHex(slot.session),
    signers: stated.signers,
    u: partial.u,
    w: partial.w,
    presigned: slot.presigned.map((h) => fromHex(h)),
    createdAt: now,
    payment: req.payment ?? null,
  });
  let seq = (await ctx.store.getJson<number>('seq')) ?? 0;
  seq++;
  const item: QueuedPackage = {
    seq,
    packageId: pkg.packageId,
    keyId: req.keyId,
    message: toHex(message),
    bytes: toHex(pkg.bytes),
    createdAt: now,
    state: 'pending',
  };
  // The slot used, the package queued and the journal entry: one synced write.
  await ctx.journal.append(
    [...lapsed, { kind: 'signed', keyId: req.keyId, packageId: pkg.packageId, ...(paid ? { payment: paid } : {}) }],
    [
      ...stale,
      { type: 'del', key: chosen.k },
      { type: 'put', key: `queue/${pad(seq)}`, value: json(item) },
      { type: 'put', key: 'seq', value: json(seq) },
    ],
  );
  await ctx.checkAllowance(req.keyId);
  return {
    packageId: pkg.packageId,
    bytes: pkg.bytes,
    text: packageToText(pkg.bytes),
    keyId: req.keyId,
    ...(paid ? { payment: paid } : {}),
  };
}

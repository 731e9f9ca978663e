/**
 * A co-signer's part of a device's offline ECDSA package (`@tessera/ecdsa` offline-package.ts):
 * the device and this node made a presignature together while the device was online; the
 * device signed its partial offline into a package, and this node gives its own partial on that
 * presignature — once, on the device's signed authority, never on the coordinator's word.
 *
 * - the package must open against the key: signed by the device's roster key, for this key and
 *   epoch, naming the presignature and signers of the request, with this node among them and
 *   every co-signer's statement of the same R; the device admitted here (not revoked);
 * - the ledger consumes the presignature for this request (the request's digest binds the
 *   package), in one synced batch with the audit entry, before the partial leaves; the same
 *   request again gets the same partial, another one NONCE_REUSED → RESERVATION_USED;
 * - a refusal never discards the presignature: a coordinator that sends made-up packages naming a
 *   device's reservation cannot erase it (the device's genuine package still completes).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import {
  PayloadKind,
  chainFits,
  equalBytes,
  readPayment,
  signEnvelope,
  toHex,
  utf8ToBytes,
  type KeyShareRecord,
} from '@tessera/core';
import {
  decodePresigned,
  encodePartial,
  keyView,
  openEcdsaPackage,
  partialSign,
  presignatureFromRecord,
  rosterIndex,
  type EcdsaKeyView,
  type EcdsaSignRequest,
} from '@tessera/ecdsa';
import type { AuditLog, NonceLedger } from '@tessera/store';
import type { SignerEvent } from './engine.js';
import { deviceSegment } from './lifecycle-store.js';
import { SignerError, toTaskError } from './errors.js';
import type { SpentReservations } from './spent.js';

/** An online presignature's ledger id (its signers all nodes). */
export const onlineId = (keyId: string, session: Uint8Array) => `${keyId}.${toHex(session)}`;
/**
 * A presignature's ledger id. With a device among its signers it is that device's reservation
 * (`q.<device>.<key>.<session>`): kept when a new coordinator link discards the pooled ones,
 * counted against the device's reservation cap, discarded when the device is revoked or leaves
 * the key — like its FROST reservations (`r.…`).
 */
export function presignatureId(key: EcdsaKeyView, session: Uint8Array, signers: readonly string[]): string {
  const device = signers.find((id) => key.roster.find((r) => r.id === id)?.device);
  return device ? `q.${deviceSegment(device)}.${key.keyId}.${toHex(session)}` : onlineId(key.keyId, session);
}

export interface EcdsaOfflineContext {
  readonly identity: import('@tessera/core').ParticipantIdentity;
  readonly ledger: NonceLedger;
  readonly audit: AuditLog;
  signingRecord(keyId: string, epoch: number): Promise<KeyShareRecord>;
  /** Throws POLICY_DENIED unless this node co-signs for `device` (devices allowed, not revoked). */
  admitDevice(device: string, presigning?: { keyId: string; epoch: number }): Promise<void>;
  readonly clock: () => number;
  /** The spent-reservation journal: outlives a damaged store (./spent.ts). */
  readonly spent: SpentReservations | undefined;
  onEvent(e: SignerEvent): void;
}

/** This node's ECDSA_PARTIAL for the device's package in `req.intent` (`bytes`: the request). */
export async function completeEcdsaPackage(
  ctx: EcdsaOfflineContext,
  req: EcdsaSignRequest,
  bytes: Uint8Array,
): Promise<Uint8Array> {
  const keyId = req.keyId;
  let packageId = '';
  try {
    const rec = await ctx.signingRecord(keyId, req.epoch);
    const key = keyView(rec);
    let pkg: ReturnType<typeof openEcdsaPackage>;
    try {
      pkg = openEcdsaPackage(key, req.intent);
    } catch (e) {
      const code = (e as { code?: string }).code;
      throw new SignerError(
        code === 'RESERVATION_INVALID' || code === 'BAD_SIGNATURE' ? code : 'DECODE',
        `ECDSA package: ${(e as Error).message}`,
        [...((e as { culprits?: readonly string[] }).culprits ?? [])],
      );
    }
    packageId = pkg.packageId;
    if (
      !equalBytes(pkg.session, req.session) ||
      pkg.signers.join(',') !== [...req.signers].join(',') ||
      !pkg.cosigners.includes(ctx.identity.id)
    )
      throw new SignerError('INVALID_ARGUMENT', 'the request names another presignature or signers than the package');
    await ctx.admitDevice(pkg.device);
    // A payment: the message must be what its transaction signs, read here (never the package's word).
    if (pkg.payment) {
      let read: ReturnType<typeof readPayment> | undefined;
      try {
        read = chainFits(pkg.payment.chain, rec.key.suite.id) ? readPayment(pkg.payment, key.publicKey) : undefined;
      } catch {}
      if (!read || !equalBytes(read.message, pkg.message))
        throw new SignerError('PAYMENT_MISMATCH', "the package's message is not what its transaction signs", [
          pkg.device,
        ]);
    }
    const nonceId = presignatureId(key, pkg.session, pkg.signers);
    const digest = sha256(bytes);
    // The journal outlives a damaged store: a used presignature stays used.
    const spentFor = ctx.spent?.get(nonceId);
    if (spentFor !== undefined && spentFor !== toHex(digest))
      throw new SignerError(
        'RESERVATION_USED',
        `presignature ${toHex(req.session).slice(0, 16)}… was used by another package`,
      );
    const me = rosterIndex(key, ctx.identity.id);
    let cached = true;
    const payload = await ctx.ledger
      .consume(
        nonceId,
        digest,
        async (secret, meta) => {
          cached = false;
          if (!meta) throw new SignerError('INTERNAL', 'presignature record without its statement');
          const stated = decodePresigned(rec.key.suite, meta);
          if ((stated.expiresAt ?? 0) < ctx.clock())
            throw new SignerError(
              'RESERVATION_EXPIRED',
              `presignature ${toHex(req.session).slice(0, 16)}… expired unused`,
            );
          // This node's own statement of the presignature: the package's R and signers, or no.
          if (
            stated.epoch !== req.epoch ||
            stated.signers.join(',') !== pkg.signers.join(',') ||
            !equalBytes(stated.R, pkg.R)
          )
            throw new SignerError(
              'RESERVATION_INVALID',
              "the package's presignature is not the one this node holds under its id",
              [pkg.device],
            );
          const ps = presignatureFromRecord(secret, stated, {
            me,
            signers: stated.signers.map((id) => rosterIndex(key, id)).sort((a, b) => a - b),
            publicKey: key.publicKey,
            keyIdBytes: utf8ToBytes(keyId),
          });
          const p = partialSign(ps, pkg.message, 0n);
          // Journalled (fsync) before the ledger write and before the partial leaves.
          await ctx.spent?.add(nonceId, toHex(digest));
          return encodePartial(rec.key.suite, { session: req.session, requestDigest: digest, u: p.u, w: p.w });
        },
        {
          commit: async (ops) => {
            await ctx.audit.append(
              {
                type: 'offline-complete',
                actor: pkg.device,
                data: { keyId, package: pkg.packageId, nonce: nonceId, cached: false },
              },
              { with: [...ops] },
            );
          },
        },
      )
      .catch((e: unknown) => {
        const code = (e as { code?: string }).code;
        if (code === 'NONCE_REUSED')
          throw new SignerError(
            'RESERVATION_USED',
            `presignature ${toHex(req.session).slice(0, 16)}… was used by another package`,
          );
        if (code === 'NONCE_UNKNOWN')
          throw new SignerError(
            'RESERVATION_UNKNOWN',
            `this node holds no presignature ${toHex(req.session).slice(0, 16)}…`,
          );
        throw e;
      });
    ctx.onEvent({ type: 'complete', keyId, device: pkg.device, result: cached ? 'cached' : 'ok' });
    return signEnvelope(ctx.identity, PayloadKind.ECDSA_PARTIAL, payload);
  } catch (e) {
    const err = toTaskError(e);
    await ctx.audit
      .append({
        type: 'refusal',
        actor: ctx.identity.id,
        data: { keyId, what: 'offline', package: packageId, code: err.code, reason: err.message.slice(0, 200) },
      })
      .catch(() => {});
    ctx.onEvent({ type: 'refusal', keyId, code: err.code });
    throw e;
  }
}

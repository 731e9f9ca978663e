/**
 * Offline co-signing with an ECDSA key, the cluster's side (offline.ts routes here by the key's
 * suite and the package's kind):
 * - reserve: presignatures made now by the device (through its link) and its t−1 co-signers,
 *   one DKLs23 presigning session each ([DKLs23] Protocol 3.6 rounds 1–3); a slot is every
 *   co-signer's signed statement of one presignature, which the device checks against its own;
 * - complete: the device's signed package opened against the key (@tessera/ecdsa
 *   offline-package.ts), each co-signer asked for its partial on the package's presignature (it
 *   checks the package itself and consumes the presignature once), the device's partial and theirs
 *   combined and checked with the plain verifier (recovery id included), the result stored once
 *   under the package id with each co-signer's use of the presignature.
 * [DKLs23] gives no check of one partial: a combination that fails names nobody.
 */
import { fromHex, groupPublicKey, toHex, utf8ToBytes, type KeyRecord } from '@tessera/core';
import {
  combine,
  devicePresignSession,
  encodeEcdsaSignRequest,
  keyView,
  openEcdsaPackage,
  rosterIndex,
} from '@tessera/ecdsa';
import type { OfflineComponents } from './offline.js';
import { storeCompletion } from './completions.js';
import { layout } from './layout.js';
import { CoordinatorError, codeOf, type PackageResult } from './types.js';

/** Presignatures a device may reserve in one call (each is three relayed rounds with it). */
export const MAX_ECDSA_RESERVE = 64;

export async function reserveEcdsa(
  c: OfflineComponents,
  rec: KeyRecord,
  device: string,
  cosigners: readonly string[],
  count: number,
  seed: Uint8Array | undefined,
): Promise<{ slots: Uint8Array[][]; errors: string[] }> {
  // The device presigns only under the ids its seed gives (never one id twice on it).
  if (!(seed instanceof Uint8Array) || seed.length !== 32)
    throw new CoordinatorError('INVALID_ARGUMENT', "an ECDSA reservation needs the device's 32-byte presign seed");
  if (count > MAX_ECDSA_RESERVE)
    throw new CoordinatorError(
      'INVALID_ARGUMENT',
      `an ECDSA key reserves 1..${MAX_ECDSA_RESERVE} presignatures per call`,
    );
  if (!c.participants.linked(device))
    throw new CoordinatorError('UNAVAILABLE', `${device} is not linked: an ECDSA reservation presigns with the device`);
  const slots: Uint8Array[][] = [];
  const errors: string[] = [];
  let setUp = false;
  for (let i = 0; i < count; i++) {
    const excluded = new Map<string, string>();
    const made = await c.ecdsa.presignFor(rec, [device, ...cosigners], excluded, devicePresignSession(seed, i));
    // Members not set up for the roster yet (a coordinator that stopped between keygen and
    // setup): set up once, and go on with the device's next session id (this one is spent).
    if (!made && !setUp && [...excluded.values()].every((why) => why === 'FAILED_PRECONDITION')) {
      setUp = true;
      await c.ecdsa.setup(rec);
      continue;
    }
    if (!made) {
      for (const [id, why] of excluded) errors.push(`${id}: ${why}`);
      break;
    }
    slots.push(cosigners.map((id) => made.statements.get(id) as Uint8Array));
  }
  if (slots.length)
    await c.audit.append({
      type: 'reserve',
      data: { keyId: rec.keyId, device, cosigners: cosigners.join(','), slots: slots.length },
    });
  c.onEvent({ type: 'reserve', device, keyId: rec.keyId, slots: slots.length });
  if (!slots.length) {
    const codes = new Set(errors.map((e) => e.split(' ')[1]));
    const [only] = codes;
    throw new CoordinatorError(
      codes.size === 1 && (only === 'POLICY_DENIED' || only === 'RESOURCE_EXHAUSTED' || only === 'FAILED_PRECONDITION')
        ? (only as 'POLICY_DENIED')
        : 'UNAVAILABLE',
      `no presignatures made: ${errors.join('; ')}`,
    );
  }
  return { slots, errors };
}

/**
 * Completes an ECDSA package not completed before (the caller holds its lock and checked for a
 * stored result). `progress.deviceSigned` tells the caller whether the package is the device's
 * (only then is a refusal recorded in the device's package record).
 */
export async function completeEcdsa(
  c: OfflineComponents,
  bytes: Uint8Array,
  head: { keyId: string; epoch: number },
  progress: { deviceSigned?: () => boolean },
): Promise<PackageResult> {
  const rec = await c.registry.keyAt(head.keyId, head.epoch);
  let pkg: ReturnType<typeof openEcdsaPackage>;
  try {
    pkg = openEcdsaPackage(keyView(rec), bytes);
  } catch (e) {
    const code = codeOf(e);
    throw new CoordinatorError(
      code === 'BAD_SIGNATURE' || code === 'RESERVATION_INVALID' ? code : 'DECODE',
      (e as Error).message,
      [...((e as { culprits?: readonly string[] }).culprits ?? [])],
    );
  }
  progress.deviceSigned = () => true;
  for (const id of pkg.cosigners) {
    const used = await c.store.get(layout.reservationUse(id, pkg.session));
    if (used && new TextDecoder().decode(used) !== pkg.packageId)
      throw new CoordinatorError(
        'RESERVATION_USED',
        `the presignature of ${id} was already used by package ${new TextDecoder().decode(used)}`,
        [pkg.device],
      );
  }
  const off = pkg.cosigners.filter((id) => !c.participants.linked(id));
  if (off.length)
    throw new CoordinatorError('UNAVAILABLE', `co-signer not connected: ${off.join(', ')}; the package stays pending`);
  // The request is the package's own: the same bytes on every retry, so a co-signer that already
  // gave its partial for it gives the same one again (its ledger binds the request's digest).
  const request = encodeEcdsaSignRequest({
    keyId: rec.keyId,
    epoch: rec.epoch,
    intent: bytes,
    session: pkg.session,
    signers: pkg.signers,
    requestId: fromHex(pkg.packageId),
  });
  const got = await c.ecdsa.partialsFor(rec, request, pkg.session, pkg.cosigners);
  if (got.failed.size) {
    const [id, why] = [...got.failed].find(([, w]) => w !== 'UNAVAILABLE') ?? [...got.failed][0] ?? ['', 'INTERNAL'];
    const code = why.split(' ')[0] as string;
    const blamesDevice = code.startsWith('RESERVATION_');
    throw new CoordinatorError(
      code,
      `${id}: ${got.codes.get(id) ?? why}${code === 'UNAVAILABLE' ? '; the package stays pending' : ''}`,
      blamesDevice ? [pkg.device] : why.startsWith('BAD_') ? [id] : [],
    );
  }
  let signature: Uint8Array;
  try {
    const sig = combine(
      {
        keyId: utf8ToBytes(rec.keyId),
        sigid: pkg.session,
        signers: pkg.signers.map((id) => rosterIndex(rec.key, id)).sort((a, b) => a - b),
        R: pkg.R,
        publicKey: groupPublicKey(rec.key),
      },
      pkg.message,
      [...got.partials, { from: rosterIndex(rec.key, pkg.device), u: pkg.u, w: pkg.w }],
    );
    signature = new Uint8Array([...sig.compact, sig.recovery]);
  } catch (e) {
    throw new CoordinatorError(
      'SIGNATURE_INVALID',
      `the partials of ${pkg.signers.join(', ')} do not combine into a valid signature (${codeOf(e)}); DKLs23 names no one`,
    );
  }
  const result: PackageResult = {
    packageId: pkg.packageId,
    keyId: rec.keyId,
    message: pkg.message,
    signature,
    publicKey: groupPublicKey(rec.key),
    signers: [...pkg.signers],
    alreadyCompleted: false,
  };
  return storeCompletion(
    c,
    result,
    pkg.device,
    pkg.cosigners.map((signer) => ({ signer, nonce: pkg.session })),
    { session: toHex(pkg.session) },
  );
}

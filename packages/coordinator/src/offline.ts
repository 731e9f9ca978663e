/**
 * Offline co-signing, the cluster's side: reserves nonces for a device from t−1 co-signer nodes
 * (each reservation signed by its co-signer, checked here before it is handed out), and
 * completes an offline package exactly once — the device's share and every reservation
 * verified, each co-signer spending its reserved nonce, the aggregate checked with the plain
 * verifier, the result stored under the package id. The co-signers' own ledgers guarantee the
 * same even if this store lost the result.
 */
import {
  PayloadKind,
  decodeMessage,
  decodeOfflinePackage,
  decodeSignatureShare,
  equalBytes,
  groupPublicKey,
  openEnvelope,
  openReservation,
  preparePackageSession,
  verifyOfflinePackage,
  validateElements,
  type KeyRecord,
  type DecodedPackage,
} from '@tessera/core';
import type { Allowance, WireTypes } from '@tessera/core';
import { KeyedMutex, type AuditLog, type SealedKV } from '@tessera/store';
import { isEcdsaPackage, peekEcdsaPackage } from '@tessera/ecdsa';
import type { EcdsaService } from './ecdsa.js';
import { completeEcdsa, reserveEcdsa } from './ecdsa-offline.js';
import type { KeyRegistry } from './key-registry.js';
import { type DevicePackageRecord, devicePackageRecord, storeCompletion } from './completions.js';
import { layout } from './layout.js';
import type { Participants } from './participants.js';
import {
  CoordinatorError,
  codeOf,
  type CoordinatorEvent,
  type PackageResult,
  type ParticipantHandle,
} from './types.js';

/** What offline co-signing uses. */
export interface OfflineComponents {
  readonly store: SealedKV;
  readonly audit: AuditLog;
  readonly clock: () => number;
  /** Per-task deadline, ms. */
  readonly timeout: number;
  readonly participants: Participants;
  readonly registry: KeyRegistry;
  /** Whether `id` is an enrolled device (devices are never co-signers). */
  isDevice(id: string): boolean;
  /** Threshold ECDSA sessions: an ECDSA key's reservations are presignatures (ecdsa-offline.ts). */
  readonly ecdsa: EcdsaService;
  onEvent(e: CoordinatorEvent): void;
}

export interface ReserveRequest {
  keyId: string;
  /** Slots to reserve, 1..256. */
  count: number;
  /** Exactly t−1 co-signer nodes; default: the connected ones that answered fastest lately. */
  cosigners?: string[];
  ttlMs?: number;
  /** The caps the device asks its co-signers to sign into the reservations. */
  allowance?: Allowance;
  /**
   * The device's signed reserve call, when it says it keeps reservations that require the
   * integrity verdict unasked (DeviceReserve.takes_integrity_rule): co-signers read the flag there.
   */
  deviceCall?: Uint8Array;
  /** An ECDSA key's reservation: the device's 32 random bytes its presigning session ids come from. */
  presignSeed?: Uint8Array;
}

/** Refusals after which a package can never complete (the device's queue marks it failed too). */
const FINAL_REFUSALS = new Set([
  'RESERVATION_USED',
  'RESERVATION_EXPIRED',
  'RESERVATION_UNKNOWN',
  'RESERVATION_INVALID',
  'BAD_SIGNATURE_SHARE',
  'OVER_ALLOWANCE',
  'PAYMENT_MISMATCH',
  'POLICY_DENIED',
  // An ECDSA package whose partials do not combine: its presignatures are spent.
  'SIGNATURE_INVALID',
]);

export type { DevicePackageRecord };

export class OfflineService {
  readonly #packageLocks = new KeyedMutex();

  constructor(private readonly c: OfflineComponents) {}

  /**
   * Reserves nonces for `device` on a key from t−1 co-signer nodes. Returns slots of one verified
   * reservation per co-signer: each slot lets the device sign one message offline.
   */
  async reserve(device: string, req: ReserveRequest): Promise<{ slots: Uint8Array[][]; errors: string[] }> {
    const rec = this.c.registry.key(req.keyId);
    if (!rec.key.roster.some((r) => r.id === device))
      throw new CoordinatorError('POLICY_DENIED', `${device} is not a participant of key ${rec.keyId}`);
    if (!Number.isInteger(req.count) || req.count < 1 || req.count > 256)
      throw new CoordinatorError('INVALID_ARGUMENT', 'reservation count must be 1..256');
    const cosigners = this.#cosigners(rec, device, req.cosigners);
    if (rec.key.suite.scheme === 'ecdsa') {
      if (req.allowance) throw new CoordinatorError('NOT_SUPPORTED', 'caps on ECDSA reservations are not built yet');
      return reserveEcdsa(this.c, rec, device, cosigners, req.count, req.presignSeed);
    }
    const errors: string[] = [];
    const answers = await Promise.allSettled(
      cosigners.map((id) =>
        (this.c.participants.get(id) as ParticipantHandle).call(
          {
            body: 'reserve',
            reserve: {
              keyId: rec.keyId,
              device,
              count: req.count,
              ttlMs: req.ttlMs ?? 0,
              // The caps the device asks for: each co-signer grants them (its own id) or refuses.
              allowance: (req.allowance ?? null) as WireTypes['Allowance'],
              deviceCall: req.deviceCall ?? new Uint8Array(0),
            },
          },
          this.c.timeout,
        ),
      ),
    );
    const lists: Uint8Array[][] = answers.map((a, i) => {
      const id = cosigners[i] as string;
      if (a.status === 'rejected') return (void errors.push(`${id}: UNAVAILABLE`), []);
      if (a.value.body !== 'reservations' || !a.value.reservations) {
        const e = a.value.error;
        errors.push(`${id}: ${e?.code ?? 'UNEXPECTED_MESSAGE'} ${String(e?.message ?? '').slice(0, 200)}`);
        return [];
      }
      const ok: Uint8Array[] = [];
      for (const env of a.value.reservations.envelopes) {
        try {
          const r = openReservation(rec.key, env);
          if (r.signer !== id || r.device !== device || r.keyId !== rec.keyId || r.epoch !== rec.epoch)
            throw new CoordinatorError('RESERVATION_INVALID', 'reservation does not fit the request');
          // Validated now (RFC 9591 §3.1), not when the payment arrives with it: an invalid
          // commitment is this co-signer's fault, and a valid one decodes for free at completion.
          try {
            validateElements(rec.key.suite, [r.hiding, r.binding]);
          } catch {
            throw new CoordinatorError('RESERVATION_INVALID', 'reserved commitment is not a valid element');
          }
          ok.push(env);
        } catch (e) {
          errors.push(`${id}: ${codeOf(e)}`);
          this.c.onEvent({ type: 'culprit', participant: id, code: codeOf(e) });
        }
      }
      return ok;
    });
    const n = Math.min(...lists.map((l) => l.length));
    const slots = Array.from({ length: n }, (_, i) => lists.map((l) => l[i] as Uint8Array));
    if (n > 0)
      await this.c.audit.append({
        type: 'reserve',
        data: { keyId: rec.keyId, device, cosigners: cosigners.join(','), slots: n },
      });
    this.c.onEvent({ type: 'reserve', device, keyId: rec.keyId, slots: n });
    if (n === 0) {
      // Every co-signer refused the request itself (its policy, its caps): that code, not a retry.
      const codes = new Set(errors.map((e) => e.split(' ')[1]));
      const [only] = codes;
      const refused = codes.size === 1 && (only === 'POLICY_DENIED' || only === 'INVALID_ARGUMENT');
      throw new CoordinatorError(
        refused
          ? (only as 'POLICY_DENIED' | 'INVALID_ARGUMENT')
          : errors.some((e) => e.includes('RESOURCE_EXHAUSTED'))
            ? 'RESOURCE_EXHAUSTED'
            : 'UNAVAILABLE',
        `no reservations made: ${errors.join('; ')}`,
      );
    }
    return { slots, errors };
  }

  /** The t−1 co-signer nodes of a reservation: those asked for, checked, or the fastest connected. */
  #cosigners(rec: KeyRecord, device: string, asked: readonly string[] | undefined): string[] {
    const need = rec.key.threshold - 1;
    const p = this.c.participants;
    const nodes = rec.key.roster.map((r) => r.id).filter((id) => id !== device && !this.c.isDevice(id));
    if (!asked?.length) {
      const up = p.fastFirst(nodes.filter((id) => p.linked(id)));
      if (up.length < need)
        throw new CoordinatorError(
          'UNAVAILABLE',
          `need ${need} connected co-signer node(s) for key ${rec.keyId}, ${up.length} connected`,
        );
      return up.slice(0, need);
    }
    const cosigners = [...new Set(asked)];
    const bad = cosigners.filter((c) => !nodes.includes(c));
    if (bad.length)
      throw new CoordinatorError('INVALID_ARGUMENT', `not a co-signer node of key ${rec.keyId}: ${bad.join(', ')}`);
    if (cosigners.length !== need)
      throw new CoordinatorError('INVALID_ARGUMENT', `key ${rec.keyId} needs exactly ${need} co-signer(s) per package`);
    const off = cosigners.filter((c) => !p.linked(c));
    if (off.length) throw new CoordinatorError('UNAVAILABLE', `co-signer not connected: ${off.join(', ')}`);
    return cosigners;
  }

  /**
   * Completes an offline package exactly once. Delivering the same package again (device,
   * merchant, a retry after a crash) returns the stored result.
   */
  async complete(bytes: Uint8Array, opts: { submitter?: string } = {}): Promise<PackageResult> {
    const t0 = this.c.clock();
    // What the metrics learn of this delivery; keyId, device and packageId once it decodes.
    const seen = { keyId: '', device: '', packageId: '' };
    const report = (e: { ok: boolean; cached: boolean; cause?: string; createdAt?: number }) =>
      this.c.onEvent({ type: 'package', ...seen, ...e, ms: this.c.clock() - t0 });
    try {
      // An ECDSA package (a device's signed partial, ecdsa-offline.ts) or a FROST one.
      const ecdsa = isEcdsaPackage(bytes);
      const pkg = ecdsa ? peekEcdsaPackage(bytes) : decodeOfflinePackage(bytes);
      Object.assign(seen, { keyId: pkg.keyId, device: pkg.device, packageId: pkg.packageId });
      return await this.#packageLocks.run(layout.package(pkg.packageId), async () => {
        const prior = await this.c.store.get(layout.package(pkg.packageId));
        if (prior) {
          const r = decodeMessage('SubmitPackageResponse', prior);
          report({ ok: true, cached: true });
          return { ...r, alreadyCompleted: true };
        }
        const progress: { deviceSigned?: () => boolean } = {};
        const result = await (ecdsa
          ? completeEcdsa(this.c, bytes, pkg, progress)
          : this.#complete(pkg as DecodedPackage, progress, opts.submitter === pkg.device)
        ).catch(async (e: unknown) => {
          // Only a package whose device share verifies is recorded as refused: anyone can send
          // bytes, only the device makes such a package.
          if (progress.deviceSigned?.()) await this.#recordRefusal(pkg, e);
          throw e;
        });
        report({ ok: true, cached: false, createdAt: pkg.createdAt });
        return result;
      });
    } catch (e) {
      report({ ok: false, cached: false, cause: codeOf(e) });
      throw e;
    }
  }

  /** Completes a package not completed before (under its lock). */
  async #complete(
    pkg: DecodedPackage,
    progress: { deviceSigned?: () => boolean },
    fromDevice: boolean,
  ): Promise<PackageResult> {
    const rec = await this.c.registry.keyAt(pkg.keyId, pkg.epoch);
    // From anyone but the device (a merchant, a relay): the whole package, the device's share
    // included, before a co-signer is asked, so the signers see only packages that verify. From
    // the device itself (authenticated, admitted, rate-limited): every check but the share, the
    // costly one (RFC 9591 §5.4), which each co-signer makes before it spends its nonce and the
    // aggregate makes at the end; here only if this node refuses the package or records a refusal.
    const expect = { keyId: rec.keyId, epoch: rec.epoch };
    const session = fromDevice
      ? preparePackageSession(rec.key, pkg, expect)
      : verifyOfflinePackage(rec.key, pkg, expect);
    let signed: boolean | undefined = fromDevice ? undefined : true;
    const deviceSigned = () => (signed ??= session.verifyShare(pkg.device, pkg.share));
    progress.deviceSigned = deviceSigned;
    const refuse = (e: CoordinatorError): never => {
      if (!deviceSigned())
        throw new CoordinatorError(
          'BAD_SIGNATURE_SHARE',
          `the device's signature share does not verify for this message`,
          [pkg.device],
        );
      throw e;
    };
    for (const c of pkg.cosigners) {
      const used = await this.c.store.get(layout.reservationUse(c.signer, c.nonceId));
      if (used && new TextDecoder().decode(used) !== pkg.packageId)
        refuse(
          new CoordinatorError(
            'RESERVATION_USED',
            `the reservation of ${c.signer} was already used by package ${new TextDecoder().decode(used)}`,
            [pkg.device],
          ),
        );
    }
    const off = pkg.cosigners.map((c) => c.signer).filter((id) => !this.c.participants.linked(id));
    if (off.length)
      refuse(
        new CoordinatorError(
          'UNAVAILABLE',
          `reserved co-signer not connected: ${off.join(', ')}; the package stays pending`,
        ),
      );
    const answers = await Promise.allSettled(
      pkg.cosigners.map((c) =>
        (this.c.participants.get(c.signer) as ParticipantHandle).call(
          { body: 'complete', complete: pkg.bytes },
          this.c.timeout,
        ),
      ),
    );
    const shares = new Map<string, Uint8Array>([[pkg.device, pkg.share]]);
    const failures: CoordinatorError[] = [];
    answers.forEach((a, i) => {
      const id = (pkg.cosigners[i] as (typeof pkg.cosigners)[number]).signer;
      const h = this.c.participants.get(id);
      if (a.status === 'rejected' || !h)
        return void failures.push(
          new CoordinatorError('UNAVAILABLE', `${id} did not answer; the package stays pending`),
        );
      const r = a.value;
      if (r.body !== 'envelope' || !r.envelope) {
        const code =
          typeof r.error?.code === 'string' && /^[A-Z][A-Z_]{1,39}$/.test(r.error.code) ? r.error.code : 'INTERNAL';
        const blamesDevice = code.startsWith('RESERVATION_') || code === 'BAD_SIGNATURE_SHARE';
        return void failures.push(
          new CoordinatorError(
            code,
            `${id}: ${String(r.error?.message ?? code).slice(0, 300)}`,
            blamesDevice ? [pkg.device] : [],
          ),
        );
      }
      try {
        const env = openEnvelope(r.envelope, PayloadKind.SIGNATURE_SHARE);
        if (!equalBytes(env.sender, h.info.signKey))
          throw new CoordinatorError('BAD_SIGNATURE', 'share signed by another key');
        const s = decodeSignatureShare(rec.key.suite, env.payload);
        if (!equalBytes(s.requestDigest, pkg.digest))
          throw new CoordinatorError('BAD_SIGNATURE_SHARE', 'share answers another package');
        shares.set(id, s.share); // verified by the aggregate below (each one only if it fails)
      } catch (e) {
        this.c.onEvent({ type: 'culprit', participant: id, code: 'BAD_SIGNATURE_SHARE' });
        failures.push(new CoordinatorError('BAD_SIGNATURE_SHARE', `${id} sent an invalid share (${codeOf(e)})`, [id]));
      }
    });
    if (failures.length) throw failures.find((f) => f.code !== 'UNAVAILABLE') ?? (failures[0] as CoordinatorError);
    let signature: Uint8Array;
    try {
      // Optimistic: the shares summed and the signature verified once; on failure every share
      // is verified and the senders of bad ones are named.
      signature = session.aggregate(shares);
    } catch (e) {
      const cheaters = (e as { culprits?: readonly string[] }).culprits ?? [];
      for (const id of cheaters) this.c.onEvent({ type: 'culprit', participant: id, code: 'BAD_SIGNATURE_SHARE' });
      throw new CoordinatorError(
        'BAD_SIGNATURE_SHARE',
        `${cheaters.length ? cheaters.join(', ') : 'a co-signer'} sent an invalid share (${codeOf(e)})`,
        [...cheaters],
      );
    }
    const result: PackageResult = {
      packageId: pkg.packageId,
      keyId: rec.keyId,
      message: pkg.message,
      signature,
      publicKey: groupPublicKey(rec.key),
      signers: [pkg.device, ...pkg.cosigners.map((c) => c.signer)],
      alreadyCompleted: false,
    };
    return storeCompletion(
      this.c,
      result,
      pkg.device,
      pkg.cosigners.map((c) => ({ signer: c.signer, nonce: c.nonceId })),
    );
  }

  /**
   * Records a final refusal of a genuine package (its device's share verified) in the device's
   * package record, unless the cluster already decided it. A package that did not verify is not
   * recorded: anyone can send bytes, only the device can make a package that verifies.
   */
  async #recordRefusal(pkg: Pick<DecodedPackage, 'device' | 'packageId' | 'keyId'>, e: unknown): Promise<void> {
    const code = codeOf(e);
    if (!FINAL_REFUSALS.has(code)) return;
    const key = layout.devicePackage(pkg.device, pkg.packageId);
    if (await this.c.store.get(key)) return;
    await this.c.store.batch(
      [
        {
          type: 'put',
          key,
          value: devicePackageRecord({ keyId: pkg.keyId, state: 'refused', code, at: this.c.clock() }),
        },
      ],
      { sync: true },
    );
  }

  /** The cluster's record of a device's packages, oldest decision first (at most `limit`). */
  async devicePackages(
    device: string,
    since = 0,
    limit = 1000,
  ): Promise<{ packages: DevicePackageRecord[]; truncated: boolean }> {
    const out: DevicePackageRecord[] = [];
    const prefix = layout.devicePackages(device);
    for await (const [key, value] of this.c.store.iterate(prefix)) {
      const r = JSON.parse(new TextDecoder().decode(value)) as Omit<DevicePackageRecord, 'packageId'>;
      if (r.at >= since) out.push({ packageId: key.slice(prefix.length), ...r });
    }
    out.sort((a, b) => a.at - b.at);
    return { packages: out.slice(0, limit), truncated: out.length > limit };
  }

  /**
   * The package records of every device (or one), newest first, optionally of one state:
   * at most `limit` (1 to 1000, default 100).
   */
  async listPackages(opts: { device?: string; state?: string; limit?: number } = {}): Promise<{
    packages: (DevicePackageRecord & { device: string })[];
    truncated: boolean;
  }> {
    const state = opts.state ?? '';
    if (state !== '' && state !== 'completed' && state !== 'refused')
      throw new CoordinatorError('INVALID_ARGUMENT', 'state must be completed, refused or empty');
    const limit = Math.min(1000, Math.max(1, opts.limit || 100));
    const prefix = opts.device ? layout.devicePackages(opts.device) : layout.allDevicePackages;
    const out: (DevicePackageRecord & { device: string })[] = [];
    for await (const [key, value] of this.c.store.iterate(prefix)) {
      const rest = key.slice(layout.allDevicePackages.length);
      const cut = rest.lastIndexOf('/');
      if (cut <= 0) continue;
      const r = JSON.parse(new TextDecoder().decode(value)) as Omit<DevicePackageRecord, 'packageId'>;
      if (state && r.state !== state) continue;
      out.push({ device: rest.slice(0, cut), packageId: rest.slice(cut + 1), ...r });
    }
    out.sort((a, b) => b.at - a.at);
    return { packages: out.slice(0, limit), truncated: out.length > limit };
  }

  /** Number of offline packages completed (stored results). */
  async completed(): Promise<number> {
    let n = 0;
    for await (const _ of this.c.store.iterate(layout.packages)) n++;
    return n;
  }
}

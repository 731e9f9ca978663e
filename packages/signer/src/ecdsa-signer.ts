/**
 * Threshold ECDSA on a signer node (DKLs23, `@tessera/ecdsa`): the pairwise setup of a key once
 * after its DKG, presigning sessions whose presignature is kept in the nonce ledger, and the
 * online part — one partial signature per presignature, on a requester's signed intent.
 *
 * Safety rules, as for FROST nonces:
 * - a presigning session id is used once per key, ever: it is written (synced) before this node's
 *   first message of the session leaves, so a coordinator that replays a session id — to make the
 *   OT extension run twice on one id — is refused, also after a restart;
 * - the presignature is in the ledger (synced) before its statement leaves; the partial leaves only
 *   after the ledger marks it consumed for this one request, in the batch with the request's
 *   attempt record and the audit entry;
 * - every peer message is sealed to its recipient and signed by its sender (session.ts): the
 *   coordinator relays bytes it cannot read or forge.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import {
  PayloadKind,
  deriveKey,
  openSignIntent,
  signEnvelope,
  toHex,
  utf8ToBytes,
  type KeyShareRecord,
  type LinkTask,
  type ParticipantIdentity,
  type Rng,
} from '@tessera/core';
import {
  PresignSession,
  isEcdsaPackage,
  decodeEcdsaSignRequest,
  decodePresigned,
  encodePresigned,
  encodePartial,
  partialSign,
  presignatureFromRecord,
  presignatureRecord,
  rosterIndex,
} from '@tessera/ecdsa';
import { bytesToNumberBE } from '@noble/curves/utils.js';
import type { AuditLog, BatchOp, KeyedMutex, NonceLedger, SealedKV } from '@tessera/store';
import type { SignerEvent } from './engine.js';
import { type EcdsaAnswer, EcdsaSetups, view } from './ecdsa-setup.js';
import { completeEcdsaPackage, onlineId, presignatureId } from './ecdsa-offline.js';
import { SignerError } from './errors.js';
import type { SpentReservations } from './spent.js';
import { refuseSign } from './online-signer.js';
import type { PolicyEngine } from './policy.js';

export interface EcdsaSignerContext {
  readonly identity: ParticipantIdentity;
  readonly ledger: NonceLedger;
  readonly audit: AuditLog;
  readonly store: SealedKV;
  readonly rng: Rng;
  /** Presignatures kept (and sessions open) per key at most. */
  readonly maxFresh: number;
  readonly clock: () => number;
  /**
   * How long a presigning session may stay open between its steps, ms (default a minute). A
   * session whose quorum broke off elsewhere (a peer refused step 1, the coordinator died) is
   * dropped after it, so it stops counting against `maxFresh`; its id stays spent.
   */
  readonly sessionTtlMs?: number;
  readonly attempts: KeyedMutex;
  policy(): PolicyEngine;
  key(keyId: string): Promise<KeyShareRecord>;
  signingRecord(keyId: string, epoch: number): Promise<KeyShareRecord>;
  /** The request's attempt record (online-signer.ts), written with the consumption. */
  countAttempt(requester: Uint8Array, requestId: Uint8Array, nonceId: string): Promise<BatchOp[]>;
  /** Throws unless this node co-signs for `device` (allowed, not revoked; `presigning`: below its cap). */
  admitDevice(device: string, presigning?: { keyId: string; epoch: number }): Promise<void>;
  /** How long this node keeps a device's presignature unused (ms). */
  reservationTtlMs(): number;
  /** The spent-reservation journal (a device's presignatures are reservations too). */
  readonly spent: SpentReservations | undefined;
  onEvent(e: SignerEvent): void;
}

type EcdsaTask = NonNullable<LinkTask['ecdsa']>;
export type { EcdsaAnswer };

const sessionMark = (keyId: string, session: Uint8Array) => `ecdsa/session/${keyId}.${toHex(session)}`;
const banKey = (keyId: string, peer: string) => `ecdsa/ban/${keyId}/${peer}`;
/** A presignature's ledger id: with the key's FROST-free prefix, counted like pooled nonces. */

export class EcdsaSigner {
  readonly #ctx: EcdsaSignerContext;
  readonly #setups: EcdsaSetups;
  readonly #presigns = new Map<string, { s: PresignSession; epoch: number; at: number }>();
  /** Session ids whose step 1 is between its checks and its first message. */
  readonly #starting = new Set<string>();

  constructor(ctx: EcdsaSignerContext) {
    this.#ctx = ctx;
    this.#setups = new EcdsaSetups(ctx);
  }

  /** One step of a setup or presigning session. */
  async task(t: EcdsaTask | undefined): Promise<EcdsaAnswer> {
    if (!t) throw new SignerError('INVALID_ARGUMENT', 'missing ECDSA task');
    if (!(t.session instanceof Uint8Array) || t.session.length !== 32)
      throw new SignerError('INVALID_ARGUMENT', 'ECDSA session: 32 bytes');
    if (t.kind === 'setup') return this.#setups.task(t);
    if (t.kind === 'presign') return this.#presign(t);
    throw new SignerError('INVALID_ARGUMENT', `unknown ECDSA session kind "${t.kind}"`);
  }

  /** The counterparties this node no longer presigns with for `keyId` (a failed multiplication check). */
  async #banned(keyId: string, peers: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    for (const p of peers) if (await this.#ctx.store.get(banKey(keyId, p))) out.push(p);
    return out;
  }

  /**
   * A multiplication check a counterparty failed ([DKLs23] Protocol 3.6 step 8: the OT-extension
   * fold, the vector OLE, the Γ equations): each failure can tell a cheater one bit of this node's
   * long-term OT choices, so the pair is banned — durably, before the error leaves — and this
   * node presigns with that counterparty no more for this key, in any roster (an operator-approved
   * reshare takes the cheater out). Other failures (malformed or misaddressed messages) only end
   * the session.
   */
  async #banOnCheatingMultiplication(keyId: string, e: unknown): Promise<void> {
    const err = e as { code?: string; culprits?: readonly string[] };
    if (err?.code !== 'BAD_MULTIPLICATION') return;
    for (const peer of err.culprits ?? []) {
      await this.#ctx.store.put(banKey(keyId, peer), utf8ToBytes('BAD_MULTIPLICATION'), { sync: true });
      await this.#ctx.audit
        .append({ type: 'ecdsa-ban', actor: this.#ctx.identity.id, data: { keyId, peer, code: err.code } })
        .catch(() => {});
    }
  }

  async #presign(t: EcdsaTask): Promise<EcdsaAnswer> {
    const id = `${t.keyId}.${toHex(t.session)}`;
    if (t.step === 1) {
      // Claimed before the first await: two step-1 tasks of one session id cannot both pass the
      // checks below (the OT extension must never run twice under one id).
      if (this.#presigns.has(id) || this.#starting.has(id))
        throw new SignerError('NONCE_REUSED', `presigning session ${toHex(t.session).slice(0, 16)}… was already used`);
      this.#starting.add(id);
      try {
        return await this.#presignStart(t, id);
      } finally {
        this.#starting.delete(id);
      }
    }
    this.#expire(t.keyId);
    const open = this.#presigns.get(id);
    if (!open)
      throw new SignerError(
        'INVALID_STATE',
        `no open presigning session ${toHex(t.session).slice(0, 16)}… (ended or expired)`,
      );
    const { s, epoch } = open;
    try {
      if (t.step === 2) return { envelopes: s.step2(t.messages) };
      if (t.step !== 3) throw new SignerError('INVALID_ARGUMENT', `presigning has no step ${t.step}`);
      this.#presigns.delete(id);
      const ps = s.step3(t.messages);
      // The presignature is of the epoch whose share made it; a commit meanwhile ends the session.
      const rec = await this.#ctx.key(t.keyId);
      if (rec.epoch !== epoch)
        throw new SignerError('INVALID_STATE', `key ${t.keyId} moved to epoch ${rec.epoch} during presigning`);
      const ledgerId = presignatureId(view(rec), t.session, s.signers);
      // A device's reservation is kept a while only (`devices.maxTtlMs`), stated in its statement.
      const statement = {
        keyId: t.keyId,
        epoch,
        session: t.session,
        signers: s.signers,
        R: ps.R,
        ...(ledgerId.startsWith('q.') ? { expiresAt: this.#ctx.clock() + this.#ctx.reservationTtlMs() } : {}),
      };
      // Kept uncompressed in the ledger (reading it back to sign needs no square root); stated to
      // the coordinator in the 33-byte form every release reads (it decodes it when it arrives,
      // off the online path).
      const r = presignatureRecord(rec.key.suite, ps, { ...statement, ...(ps.Rpoint ? { Rpoint: ps.Rpoint } : {}) });
      try {
        await this.#ctx.ledger.addFresh(ledgerId, r.secret, r.meta);
      } finally {
        r.secret.fill(0);
      }
      return {
        envelope: signEnvelope(
          this.#ctx.identity,
          PayloadKind.ECDSA_PRESIGNATURE,
          encodePresigned(rec.key.suite, statement),
        ),
      };
    } catch (e) {
      this.#presigns.delete(id);
      await this.#banOnCheatingMultiplication(t.keyId, e);
      throw e;
    }
  }

  async #presignStart(t: EcdsaTask, id: string): Promise<EcdsaAnswer> {
    const rec = await this.#ctx.key(t.keyId);
    const key = view(rec);
    const pairs = await this.#setups.pairs(key);
    if (!pairs)
      throw new SignerError('FAILED_PRECONDITION', `key ${t.keyId} is not set up for ECDSA signing by its roster yet`);
    const banned = await this.#banned(t.keyId, t.signers ?? []);
    if (banned.length)
      throw new SignerError(
        'POLICY_DENIED',
        `this node no longer presigns with ${banned.join(', ')} for key ${t.keyId}: a multiplication check failed (reshare it out of the key)`,
      );
    // With a device: its reservation, only for a device this node co-signs for, within its cap.
    const device = (t.signers ?? []).find((id) => key.roster.find((r) => r.id === id)?.device);
    if (device) await this.#ctx.admitDevice(device, { keyId: t.keyId, epoch: rec.epoch });
    this.#expire(t.keyId);
    const open = [...this.#presigns.keys()].filter((k) => k.startsWith(`${t.keyId}.`)).length;
    const fresh = await this.#ctx.ledger.countFresh(`${t.keyId}.`);
    if (open + fresh >= this.#ctx.maxFresh)
      throw new SignerError(
        'RESOURCE_EXHAUSTED',
        `already ${fresh} presignatures and ${open} sessions for key ${t.keyId}`,
      );
    const share = rec.share.signingShare();
    let s: PresignSession;
    try {
      s = new PresignSession({
        identity: this.#ctx.identity,
        key,
        session: t.session,
        signers: t.signers,
        share: bytesToNumberBE(share),
        pairs,
        rng: this.#ctx.rng,
      });
    } catch (e) {
      throw new SignerError('INVALID_ARGUMENT', (e as Error).message);
    } finally {
      share.fill(0);
    }
    // The session id is spent on disk before anything of the session leaves (across restarts too).
    const mark = sessionMark(t.keyId, t.session);
    if (await this.#ctx.store.get(mark))
      throw new SignerError('NONCE_REUSED', `presigning session ${toHex(t.session).slice(0, 16)}… was already used`);
    await this.#ctx.store.put(mark, utf8ToBytes(s.signers.join(',')), { sync: true });
    this.#presigns.set(id, { s, epoch: rec.epoch, at: this.#ctx.clock() });
    return { envelopes: s.step1() };
  }

  /** Drops the presigning sessions of `keyId` open longer than the session lifetime. */
  #expire(keyId: string): void {
    const oldest = this.#ctx.clock() - (this.#ctx.sessionTtlMs ?? 60_000);
    for (const [id, open] of this.#presigns)
      if (id.startsWith(`${keyId}.`) && open.at < oldest) this.#presigns.delete(id);
  }

  /**
   * Forgets every open session (a new coordinator link: the old one's sessions cannot continue).
   * Their ids stay spent on disk.
   */
  dropSessions(): void {
    this.#presigns.clear();
    this.#setups.drop();
  }

  /**
   * Answers an ECDSA sign request with an ECDSA_PARTIAL envelope, or refuses. Order as for FROST:
   * decode, the intent and policy, the presignature's statement, then the ledger's consumption.
   */
  async sign(bytes: Uint8Array): Promise<Uint8Array> {
    const req = decodeEcdsaSignRequest(bytes);
    const keyId = req.keyId;
    // A device's offline package names a presignature the device made with this node (./ecdsa-offline.ts).
    if (isEcdsaPackage(req.intent)) return completeEcdsaPackage(this.#ctx, req, bytes);
    let nonceId = onlineId(keyId, req.session);
    let named = false;
    /** A device's reservation named by an online request: refused, and kept for the device's package. */
    let devices = false;
    try {
      const rec = await this.#ctx.signingRecord(keyId, req.epoch);
      const key = view(rec);
      nonceId = presignatureId(key, req.session, req.signers);
      // A device's reservation named by an online request: refused, and never discarded on the
      // coordinator's word (only the device's signed package completes it).
      devices = nonceId.startsWith('q.');
      if (devices)
        throw new SignerError(
          'POLICY_DENIED',
          "this presignature is a device's reservation: only the device's signed package completes it",
        );
      named = true;
      const intent = openSignIntent(req.intent, rec.key.suite);
      if (intent.keyId !== keyId) throw new SignerError('POLICY_DENIED', 'the intent authorises another key');
      if (intent.message.length !== 32)
        throw new SignerError('INVALID_ARGUMENT', 'an ECDSA intent signs a 32-byte digest');
      const rule = this.#ctx.policy().authorise(intent, keyId);
      const digest = sha256(bytes);
      const me = rosterIndex(key, this.#ctx.identity.id);
      const auditEntry = {
        type: 'sign',
        actor: rule.id,
        data: {
          keyId,
          requestId: toHex(intent.requestId),
          nonce: nonceId,
          digest: toHex(digest),
          ...(intent.path ? { path: intent.path } : {}),
        },
      };
      let audited = false;
      const payload = await this.#ctx.attempts.run(
        `${toHex(intent.requester)}/${toHex(intent.requestId)}`,
        async () => {
          let attempt: BatchOp[] = [];
          return this.#ctx.ledger.consume(
            nonceId,
            digest,
            (secret, meta) => {
              if (!meta) throw new SignerError('INTERNAL', 'presignature record without its statement');
              const stated = decodePresigned(rec.key.suite, meta);
              const same = [...stated.signers].sort().join(',') === [...req.signers].sort().join(',');
              if (stated.keyId !== keyId || stated.epoch !== req.epoch || !same)
                throw new SignerError(
                  'INVALID_ARGUMENT',
                  'the request names other signers or another epoch than the presignature',
                );
              const ps = presignatureFromRecord(secret, stated, {
                me,
                signers: stated.signers.map((id) => rosterIndex(key, id)).sort((a, b) => a - b),
                publicKey: key.publicKey,
                keyIdBytes: utf8ToBytes(keyId),
              });
              // An HD child: the presignature is re-randomised with the path's tweak (Groth–Shoup,
              // sign.ts) and the partial is for the child key.
              const tweak = intent.path ? deriveKey(rec.key, intent.path).tweak.add : 0n;
              const p = partialSign(ps, intent.message, tweak);
              return encodePartial(rec.key.suite, { session: req.session, requestDigest: digest, u: p.u, w: p.w });
            },
            {
              beforeProduce: async () => {
                attempt = await this.#ctx.countAttempt(intent.requester, intent.requestId, nonceId);
                this.#ctx.policy().spendRateToken(rule);
              },
              commit: async (ops) => {
                await this.#ctx.audit.append(auditEntry, { with: [...ops, ...attempt] });
                audited = true;
              },
            },
          );
        },
      );
      if (!audited) await this.#ctx.audit.append(auditEntry);
      this.#ctx.onEvent({ type: 'sign', keyId, result: 'ok' });
      return signEnvelope(this.#ctx.identity, PayloadKind.ECDSA_PARTIAL, payload);
    } catch (e) {
      // A refused request burns the presignature it named (its R is known to the coordinator).
      await refuseSign(this.#ctx, keyId, named && !devices ? nonceId : undefined, e);
      throw e;
    }
  }
}

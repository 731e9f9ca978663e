/**
 * The ECDSA tasks a linked device takes (loaded only when one comes: a device that holds no
 * ECDSA key never downloads `@tessera/ecdsa`):
 * - the pairwise setup of an ECDSA key it holds a share of — `@tessera/ecdsa`'s two-phase setup
 *   state machine, the same one a signer node runs, over the device's sealed store (every batch
 *   durable before it resolves). Pairs a device stored are never replaced on the coordinator's
 *   word, as on a node;
 * - presigning, only while its own reserve call runs for that key and only under the session ids
 *   that call drew from fresh randomness (ecdsa-offline.ts): no id runs twice on the device, a
 *   restored phone included (its backup holds no record of the ids it used); the id is also spent
 *   on disk before the first message leaves, and the presignature is stored pending (synced)
 *   before its statement leaves. It becomes a slot the device signs with only when the reserve
 *   call returns every co-signer's statement of it.
 */
import {
  PayloadKind,
  decodeKeyShareRecord,
  signEnvelope,
  toHex,
  type LinkResult,
  type LinkTask,
  type ParticipantIdentity,
  type Rng,
} from '@tessera/core';
import {
  EcdsaSetups,
  PresignSession,
  keyView,
  presignatureRecord,
  type EcdsaAnswer,
  type EcdsaTask,
} from '@tessera/ecdsa';
import { DeviceError } from './errors.js';
import type { DeviceStorage } from './storage.js';

/** A presigning session id this device used for `keyId` (spent before its first message leaves). */
const sessionMark = (keyId: string, session: Uint8Array) => `ecdsa/psession/${keyId}.${toHex(session)}`;
/** A presignature made, not yet confirmed by every co-signer's statement (JSON: secret, meta, at). */
export const pendingPresignature = (keyId: string, session: string) => `ecdsa/presig/${keyId}/${session}`;
/** How long a presigning session may stay open between its steps (ms). */
const SESSION_TTL_MS = 60_000;

export interface PendingPresignature {
  /** The secret scalars (hex of EcdsaPresignatureSecret). */
  secret: string;
  /** The statement (hex of EcdsaPresigned): key, epoch, session, signers, R. */
  meta: string;
  at: number;
}

export interface DeviceEcdsaContext {
  me(): ParticipantIdentity;
  readonly rng: Rng;
  readonly store: DeviceStorage;
  readonly clock: () => number;
  /** Whether a reserve call of this device runs that allows presigning session `session` (hex) on `keyId`. */
  mayPresign(keyId: string, session: string): boolean;
}

export class DeviceEcdsa {
  readonly #ctx: DeviceEcdsaContext;
  readonly #setups: EcdsaSetups;
  readonly #open = new Map<string, { s: PresignSession; epoch: number; at: number }>();
  /** Session ids whose step 1 is between its checks and its first message. */
  readonly #starting = new Set<string>();

  constructor(ctx: DeviceEcdsaContext) {
    this.#ctx = ctx;
    const { store } = ctx;
    this.#setups = new EcdsaSetups({
      identity: ctx.me(),
      rng: ctx.rng,
      store: { get: (k) => store.get(k), batch: (ops) => store.batch(ops) },
      // A device keeps no audit chain: what it stored is evidence enough (the words are kept).
      audit: async () => {},
      key: (keyId) => this.#key(keyId),
    });
  }

  async #key(keyId: string) {
    const b = await this.#ctx.store.get(`key/${keyId}`);
    if (!b) throw new DeviceError('NOT_FOUND', `this device holds no share of key ${keyId.slice(0, 64)}`);
    return decodeKeyShareRecord(b);
  }

  /** One ECDSA task's answer on the link (a refusal is thrown, and answered by the link). */
  async handle(task: LinkTask): Promise<LinkResult> {
    const taskId = task.taskId;
    const a = await this.#task(task.ecdsa);
    if ('envelopes' in a) return { taskId, body: 'ecdsa', ecdsa: { envelopes: a.envelopes } };
    if ('envelope' in a) return { taskId, body: 'envelope', envelope: a.envelope };
    return { taskId, body: 'ok', ok: true };
  }

  #task(t: LinkTask['ecdsa']): Promise<EcdsaAnswer> {
    if (!t) throw new DeviceError('INVALID_ARGUMENT', 'missing ECDSA task');
    if (!(t.session instanceof Uint8Array) || t.session.length !== 32)
      throw new DeviceError('INVALID_ARGUMENT', 'ECDSA session: 32 bytes');
    if (t.kind === 'setup') return this.#setups.task(t);
    if (t.kind === 'presign') return this.#presign(t);
    throw new DeviceError('NOT_SUPPORTED', `a device does not take ECDSA ${String(t.kind).slice(0, 32)} tasks`);
  }

  async #presign(t: EcdsaTask): Promise<EcdsaAnswer> {
    const id = `${t.keyId}.${toHex(t.session)}`;
    const oldest = this.#ctx.clock() - SESSION_TTL_MS;
    for (const [k, o] of this.#open) if (o.at < oldest) this.#open.delete(k);
    if (t.step === 1) return this.#start(t, id);
    const open = this.#open.get(id);
    if (!open)
      throw new DeviceError('INVALID_STATE', `no open presigning session ${toHex(t.session).slice(0, 16)}… here`);
    try {
      if (t.step === 2) return { envelopes: open.s.step2(t.messages) };
      if (t.step !== 3) throw new DeviceError('INVALID_ARGUMENT', `presigning has no step ${t.step}`);
      this.#open.delete(id);
      const ps = open.s.step3(t.messages);
      const rec = await this.#key(t.keyId);
      if (rec.epoch !== open.epoch)
        throw new DeviceError('INVALID_STATE', `key ${t.keyId} moved to epoch ${rec.epoch} during presigning`);
      const statement = { keyId: t.keyId, epoch: open.epoch, session: t.session, signers: open.s.signers, R: ps.R };
      const r = presignatureRecord(rec.key.suite, ps, statement);
      // Pending (synced) before the statement leaves: the device holds what it says it holds.
      await this.#ctx.store.put(
        pendingPresignature(t.keyId, toHex(t.session)),
        new TextEncoder().encode(
          JSON.stringify({
            secret: toHex(r.secret),
            meta: toHex(r.meta),
            at: this.#ctx.clock(),
          } satisfies PendingPresignature),
        ),
      );
      r.secret.fill(0);
      return { envelope: signEnvelope(this.#ctx.me(), PayloadKind.ECDSA_PRESIGNATURE, r.meta) };
    } catch (e) {
      this.#open.delete(id);
      throw e;
    }
  }

  async #start(t: EcdsaTask, id: string): Promise<EcdsaAnswer> {
    if (!this.#ctx.mayPresign(t.keyId, toHex(t.session)))
      throw new DeviceError(
        'POLICY_DENIED',
        'this device presigns only for its own reservation, under the session ids it drew for it',
      );
    // Claimed before the first await: two step-1 tasks of one id (two links polling at once)
    // cannot both pass the checks below (the OT extension must never run twice under one id).
    if (this.#open.has(id) || this.#starting.has(id))
      throw new DeviceError('NONCE_REUSED', `presigning session ${toHex(t.session).slice(0, 16)}… was already used`);
    this.#starting.add(id);
    try {
      return await this.#begin(t, id);
    } finally {
      this.#starting.delete(id);
    }
  }

  async #begin(t: EcdsaTask, id: string): Promise<EcdsaAnswer> {
    const rec = await this.#key(t.keyId);
    const key = keyView(rec);
    const pairs = await this.#setups.pairs(key);
    if (!pairs)
      throw new DeviceError('FAILED_PRECONDITION', `key ${t.keyId} is not set up for ECDSA signing by its roster yet`);
    const mark = sessionMark(t.keyId, t.session);
    if (await this.#ctx.store.get(mark))
      throw new DeviceError('NONCE_REUSED', `presigning session ${toHex(t.session).slice(0, 16)}… was already used`);
    const share = rec.share.signingShare();
    let s: PresignSession;
    try {
      s = new PresignSession({
        identity: this.#ctx.me(),
        key,
        session: t.session,
        signers: t.signers,
        share: BigInt(`0x${toHex(share)}`),
        pairs,
        rng: this.#ctx.rng,
      });
    } catch (e) {
      throw new DeviceError('INVALID_ARGUMENT', (e as Error).message);
    } finally {
      share.fill(0);
    }
    // Spent on disk before anything of the session leaves (the OT extension never runs twice on one id).
    await this.#ctx.store.put(mark, new Uint8Array([1]));
    this.#open.set(id, { s, epoch: rec.epoch, at: this.#ctx.clock() });
    return { envelopes: s.step1() };
  }
}

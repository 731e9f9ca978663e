/**
 * Online signing on a signer node: nonce commitments for the coordinator's pool, and answers to
 * sign requests. Order matters in `sign`: decode, check the requester's signed intent and this
 * node's policy, find this node's own commitment and its nonce, and only then consume the nonce
 * through the ledger — the share, the consumption, the request's attempt record and the audit
 * entry are on disk in one synced batch before the share leaves.
 */
import {
  PayloadKind,
  SigningNonces,
  commit,
  decodeCommitment,
  decodeSignRequest,
  deriveKey,
  deriveShare,
  encodeCommitment,
  encodeSignatureShare,
  openSignIntent,
  signEnvelope,
  signShare,
  toHex,
  type KeyShareRecord,
  type ParticipantIdentity,
  type Rng,
} from '@tessera/core';
import type { AuditLog, BatchOp, KeyedMutex, NonceLedger, SealedKV } from '@tessera/store';
import type { SignerEvent } from './engine.js';
import { SignerError, toTaskError } from './errors.js';
import type { PolicyEngine } from './policy.js';

/** What online signing needs of its signer engine. */
export interface OnlineSignerContext {
  readonly identity: ParticipantIdentity;
  readonly ledger: NonceLedger;
  readonly audit: AuditLog;
  readonly store: SealedKV;
  readonly rng: Rng;
  /** Unused commitments kept per key at most. */
  readonly maxFresh: number;
  /** Distinct nonces one request may consume at most. */
  readonly maxAttempts: number;
  /** Serialises the work of one (requester, request id). */
  readonly attempts: KeyedMutex;
  /** The policy engine in force now (a reload replaces it). */
  policy(): PolicyEngine;
  key(keyId: string): Promise<KeyShareRecord>;
  /** The share a request for `epoch` is answered with (the active one, checked). */
  signingRecord(keyId: string, epoch: number): Promise<KeyShareRecord>;
  onEvent(e: SignerEvent): void;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class OnlineSigner {
  readonly #ctx: OnlineSignerContext;

  constructor(ctx: OnlineSignerContext) {
    this.#ctx = ctx;
  }

  /** Produces `count` fresh commitments for `keyId`, each backed by a nonce durably in the ledger. */
  async commitments(keyId: string, count: number): Promise<Uint8Array[]> {
    if (!Number.isInteger(count) || count < 1 || count > 1024)
      throw new SignerError('INVALID_ARGUMENT', 'commitment count must be 1..1024');
    const rec = await this.#ctx.key(keyId);
    if (rec.key.suite.scheme !== 'frost')
      throw new SignerError(
        'WRONG_SUITE',
        `key ${keyId} is ${rec.key.suite.id}: it signs on presignatures, not FROST nonces`,
      );
    const fresh = await this.#ctx.ledger.countFresh(`${keyId}.`);
    const n = Math.min(count, Math.max(0, this.#ctx.maxFresh - fresh));
    if (n === 0) throw new SignerError('RESOURCE_EXHAUSTED', `already ${fresh} unused commitments for key ${keyId}`);
    // Every nonce of the batch durably in the ledger (one synced write) before any commitment
    // leaves. The public commitment is kept with the nonce (the record's meta): signing compares
    // the listed commitment with it instead of recomputing it from the secret nonces.
    const batch: { nonceId: string; secret: Uint8Array; meta: Uint8Array }[] = [];
    try {
      for (let i = 0; i < n; i++) {
        // A refill is background work: a sign task that arrives meanwhile waits for one nonce at most.
        if (i > 0) await yieldToEventLoop();
        const { nonces, commitment } = commit(rec.share, this.#ctx.rng);
        const nonceId = `${keyId}.${toHex(this.#ctx.rng(12))}`;
        batch.push({
          nonceId,
          secret: nonces.exportSecret(),
          meta: encodeCommitment(rec.key.suite, commitment, new TextEncoder().encode(nonceId)),
        });
      }
      await this.#ctx.ledger.addFreshMany(batch);
    } finally {
      for (const b of batch) b.secret.fill(0);
    }
    const out = batch.map((b) => signEnvelope(this.#ctx.identity, PayloadKind.SIGNING_COMMITMENT, b.meta));
    this.#ctx.onEvent({ type: 'commitments', keyId, count: out.length });
    return out;
  }

  /**
   * Answers a sign request with a SIGNATURE_SHARE envelope, or refuses. Order matters: decode,
   * check the intent and policy, find our own commitment and its nonce, and only then consume
   * the nonce (durably, before the share leaves).
   */
  async sign(requestBytes: Uint8Array): Promise<Uint8Array> {
    const req = decodeSignRequest(requestBytes);
    const keyId = req.keyId;
    let ownNonce: string | undefined;
    try {
      const rec = await this.#ctx.signingRecord(req.keyId, req.epoch);
      const mine = req.commitments.filter((c) => c.identifier === rec.share.identifier);
      if (mine.length !== 1)
        throw new SignerError(
          'INVALID_ARGUMENT',
          'the commitment list does not carry exactly one commitment of this node',
        );
      const nonceId = new TextDecoder().decode((mine[0] as (typeof mine)[number]).nonceId);
      if (!nonceId.startsWith(`${req.keyId}.`))
        throw new SignerError('INVALID_ARGUMENT', 'the nonce belongs to another key');
      ownNonce = nonceId;
      if (rec.key.suite.id !== req.suite.id || rec.key.suite.scheme !== 'frost')
        throw new SignerError('WRONG_SUITE', `key ${req.keyId} is ${rec.key.suite.id}, request is ${req.suite.id}`);
      const intent = openSignIntent(req.intent, rec.key.suite);
      if (intent.keyId !== req.keyId) throw new SignerError('POLICY_DENIED', 'the intent authorises another key');
      const rule = this.#ctx.policy().authorise(intent, req.keyId);
      const auditEntry = {
        type: 'sign',
        actor: rule.id,
        data: {
          keyId,
          requestId: toHex(intent.requestId),
          nonce: nonceId,
          digest: toHex(req.digest),
          ...(intent.path ? { path: intent.path } : {}),
        },
      };
      let audited = false;
      // Serialise per (requester, request id): concurrent tasks cannot overrun the attempt bound.
      const share = await this.#ctx.attempts.run(`${toHex(intent.requester)}/${toHex(intent.requestId)}`, async () => {
        let kept: ReturnType<typeof decodeCommitment> | undefined;
        let attempt: BatchOp[] = [];
        return this.#ctx.ledger.consume(
          nonceId,
          req.digest,
          (secret) => {
            const nonces = SigningNonces.importSecret(rec.key.suite, rec.share.identifier, secret, kept?.commitment);
            // An HD child key: the public tweak of the intent's path applied to key and share.
            if (intent.path) {
              const child = deriveKey(rec.key, intent.path);
              return signShare(deriveShare(rec.share, child.tweak), child.key, nonces, req.commitments, intent.message);
            }
            return signShare(rec.share, rec.key, nonces, req.commitments, intent.message);
          },
          {
            // Only for a fresh nonce (a retry of the same request gets the recorded share).
            beforeProduce: async (meta) => {
              // The commitment kept with the nonce when it was made (absent in older records).
              kept = meta ? decodeCommitment(rec.key.suite, meta) : undefined;
              if (kept && new TextDecoder().decode(kept.nonceId) !== nonceId)
                throw new SignerError('INTERNAL', 'nonce record does not match its id');
              attempt = await this.countAttempt(intent.requester, intent.requestId, nonceId);
              // Rate tokens are spent only on work that uses a nonce, never on cached retries.
              this.#ctx.policy().spendRateToken(rule);
            },
            // The consumption, the request's attempt record and the audit entry: one synced batch,
            // on disk before the share leaves.
            commit: async (ops) => {
              await this.#ctx.audit.append(auditEntry, { with: [...ops, ...attempt] });
              audited = true;
            },
          },
        );
      });
      // A cached retry (the same request again) releases the recorded share again: audited too.
      if (!audited) await this.#ctx.audit.append(auditEntry);
      this.#ctx.onEvent({ type: 'sign', keyId, result: 'ok' });
      const payload = encodeSignatureShare(rec.key.suite, {
        sessionId: req.sessionId,
        identifier: rec.share.identifier,
        share,
        requestDigest: req.digest,
      });
      return signEnvelope(this.#ctx.identity, PayloadKind.SIGNATURE_SHARE, payload);
    } catch (e) {
      // A refused request burns the nonce it named (the coordinator has handed its commitment
      // out); discarding it keeps refusals from filling the fresh-nonce cap. A consumed record
      // is never discarded, so replays still fail with NONCE_REUSED.
      await refuseSign(this.#ctx, keyId, ownNonce, e);
      throw e;
    }
  }

  /**
   * Bounds how many distinct nonces one request may consume: a coordinator that retries with new
   * quorums gets a few attempts; one replaying an intent does not get unbounded signatures.
   * Callers hold the per-request mutex.
   */
  async countAttempt(requester: Uint8Array, requestId: Uint8Array, nonceId: string): Promise<BatchOp[]> {
    const k = `attempts/${toHex(requester)}/${toHex(requestId)}`;
    const prev = await this.#ctx.store.get(k);
    const list = prev ? new TextDecoder().decode(prev).split(',') : [];
    if (list.includes(nonceId)) return [];
    if (list.length >= this.#ctx.maxAttempts)
      throw new SignerError(
        'POLICY_DENIED',
        `request ${toHex(requestId).slice(0, 16)}… already used ${list.length} nonces`,
      );
    list.push(nonceId);
    // Written by the caller with the nonce's consumption (one atomic, synced batch).
    return [{ type: 'put', key: k, value: new TextEncoder().encode(list.join(',')) }];
  }
}

/**
 * A refused sign request: the nonce (or presignature) it named is burned — the coordinator has
 * handed out its commitment, and discarding keeps refusals from filling the fresh cap; a consumed
 * record is never discarded, so a replay still fails NONCE_REUSED — and the refusal is audited
 * and reported. Never throws.
 */
export async function refuseSign(
  ctx: Pick<OnlineSignerContext, 'ledger' | 'audit' | 'identity' | 'onEvent'>,
  keyId: string,
  nonceId: string | undefined,
  e: unknown,
): Promise<void> {
  if (nonceId) await ctx.ledger.discard(nonceId).catch(() => false);
  const err = toTaskError(e);
  await ctx.audit
    .append({
      type: 'refusal',
      actor: ctx.identity.id,
      data: { keyId, code: err.code, reason: err.message.slice(0, 200) },
    })
    .catch(() => {});
  ctx.onEvent({ type: 'refusal', keyId, code: err.code });
}

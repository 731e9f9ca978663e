/**
 * Commitment pools: per signer node and key, nonce commitments fetched ahead in batches, each
 * decoded and validated once on arrival (RFC 9591 §3.1) off the signing path, so a signature
 * costs one round trip. A pool is dropped when its signer relinks or its key moves to a new
 * epoch; a refill that raced such a change is not pooled.
 */
import {
  PayloadKind,
  decodeCommitment,
  equalBytes,
  readEnvelope,
  validateCommitment,
  type KeyRecord,
  type RequestCommitment,
} from '@tessera/core';
import type { KeyRegistry } from './key-registry.js';
import type { Participants } from './participants.js';
import { CoordinatorError, codeOf, type CoordinatorEvent } from './types.js';

/** A pooled commitment, validated on arrival (core `validateCommitment`), with the signer's nonce id. */
export type Pooled = Readonly<RequestCommitment>;

/** What the pools use. */
export interface PoolComponents {
  readonly participants: Participants;
  readonly registry: KeyRegistry;
  /** Per-task deadline, ms. */
  readonly timeout: number;
  /** Commitments fetched per participant and key when a pool runs low. */
  readonly batch: number;
  onEvent(e: CoordinatorEvent): void;
}

/** Refills a waiting request may wait for before its signer counts as giving none. */
const MAX_WAITS = 8;

export class CommitmentPools {
  readonly #pools = new Map<string, Pooled[]>();
  readonly #refills = new Map<string, Promise<void>>();
  /** Requests waiting for a commitment, per pool: the next refill fetches at least this many. */
  readonly #waiting = new Map<string, number>();

  constructor(private readonly c: PoolComponents) {}

  /** A commitment of `id` for the key: from the pool if any (the one-round-trip path), else fetched. */
  async take(id: string, rec: KeyRecord): Promise<Pooled> {
    const k = poolKey(id, rec.keyId);
    // Under concurrency a refill can be drained by other waiters before this one gets a turn:
    // wait for further refills (each sized to the queue) rather than failing the request.
    for (let waits = 0; waits < MAX_WAITS; waits++) {
      const c = this.#pools.get(k)?.shift();
      if (c) {
        if ((this.#pools.get(k)?.length ?? 0) < this.c.batch / 2) this.refillInBackground(id, rec.keyId);
        return c;
      }
      this.#waiting.set(k, (this.#waiting.get(k) ?? 0) + 1);
      try {
        await this.refill(id, rec.keyId);
      } finally {
        this.#waiting.set(k, (this.#waiting.get(k) ?? 1) - 1);
      }
    }
    throw new CoordinatorError('UNAVAILABLE', `${id} gave no commitments`);
  }

  /** Starts a refill whose failure is reported as a pool event, not thrown. */
  refillInBackground(id: string, keyId: string): void {
    this.refill(id, keyId).catch((e: unknown) =>
      this.c.onEvent({ type: 'pool', participant: id, ok: false, cause: codeOf(e), message: (e as Error).message }),
    );
  }

  /** Fetches a batch of commitments from `id` for `keyId` into the pool (one refill at a time per pool). */
  refill(id: string, keyId: string): Promise<void> {
    const k = poolKey(id, keyId);
    const running = this.#refills.get(k);
    if (running) return running;
    const p = this.#fetch(id, keyId, k).finally(() => this.#refills.delete(k));
    this.#refills.set(k, p);
    return p;
  }

  async #fetch(id: string, keyId: string, k: string): Promise<void> {
    const h = this.c.participants.get(id);
    // The record's bytes identify its epoch: a lifecycle commit while this refill runs replaces
    // them (and drops the pool), and then this refill's commitments must not be pooled.
    const generation = this.c.registry.generation(keyId);
    const rec = generation ? this.c.registry.key(keyId) : undefined;
    if (!h || !rec) throw new CoordinatorError('UNAVAILABLE', `${id} is not connected`);
    // ECDSA keys sign on presignatures made per signature (ecdsa.ts), not pooled FROST nonces.
    if (rec.key.suite.scheme !== 'frost') return;
    const r = await h.call(
      { body: 'commit', commit: { keyId, count: Math.min(256, Math.max(this.c.batch, this.#waiting.get(k) ?? 0)) } },
      this.c.timeout,
    );
    if (r.body !== 'commitments' || !r.commitments)
      throw new CoordinatorError(r.error?.code ?? 'UNAVAILABLE', r.error?.message ?? `${id} gave no commitments`);
    const identifier = rec.key.roster.find((x) => x.id === id)?.identifier;
    const pool = this.#pools.get(k) ?? [];
    let invalid = 0;
    for (const [i, e] of r.commitments.envelopes.entries()) {
      // Validation is background work: requests that arrive meanwhile run between commitments.
      if (i > 0) await new Promise((resolve) => setImmediate(resolve));
      // Over the signer's authenticated link (sender checked against it); each commitment is
      // decoded and validated here, once, off the signing path.
      try {
        const env = readEnvelope(e, PayloadKind.SIGNING_COMMITMENT);
        if (!equalBytes(env.sender, h.info.signKey))
          throw new CoordinatorError('BAD_SIGNATURE', 'commitment signed by another key');
        const c = decodeCommitment(rec.key.suite, env.payload);
        if (c.commitment.identifier !== identifier)
          throw new CoordinatorError('INVALID_ARGUMENT', 'commitment of another participant');
        pool.push(validateCommitment(rec.key.suite, { ...c.commitment, nonceId: c.nonceId }));
      } catch {
        invalid++;
      }
    }
    if (invalid)
      this.c.onEvent({
        type: 'pool',
        participant: id,
        ok: false,
        cause: 'INVALID_ARGUMENT',
        message: `${invalid} invalid commitments dropped`,
      });
    if (this.c.participants.get(id) === h && this.c.registry.generation(keyId) === generation) this.#pools.set(k, pool);
  }

  /** Drops every pool of participant `id` (it relinked or left: its commitments may be gone). */
  dropParticipant(id: string): void {
    for (const k of [...this.#pools.keys()]) if (k.startsWith(`${id}/`)) this.#pools.delete(k);
  }

  /** Drops every pool of `keyId` (it moved to a new epoch). */
  dropKey(keyId: string): void {
    for (const k of [...this.#pools.keys()]) if (k.endsWith(`/${keyId}`)) this.#pools.delete(k);
  }

  /** Commitments pooled for participant `id`, over all keys. */
  size(id: string): number {
    let n = 0;
    for (const [k, v] of this.#pools) if (k.startsWith(`${id}/`)) n += v.length;
    return n;
  }
}

function poolKey(id: string, keyId: string): string {
  return `${id}/${keyId}`;
}

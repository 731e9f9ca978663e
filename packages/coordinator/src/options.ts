/** What a {@link Coordinator} is built with. */
import type { Rng } from '@tessera/core';
import type { SealedKV } from '@tessera/store';
import { randomBytes } from 'node:crypto';
import type { CoordinatorEvent } from './types.js';

export interface CoordinatorOptions {
  store: SealedKV;
  clock?: () => number;
  rng?: Rng;
  /** Per-task deadline. */
  taskTimeoutMs?: number;
  /** Commitments fetched per participant and key when a pool runs low. */
  poolBatch?: number;
  /** Attempts (quorums) per sign request. */
  maxAttempts?: number;
  /**
   * Admission control: most sign requests and package completions in progress at once (default
   * 256). Beyond it a request is refused at once with RESOURCE_EXHAUSTED (gRPC
   * RESOURCE_EXHAUSTED, HTTP 429 on the gateway), before any work: no nonce, attempt, pool
   * refill or stored result is touched, so the caller may simply retry later.
   */
  maxInFlight?: number;
  /**
   * Decoded key records kept in memory (most recently used; default 4096). Every key is also
   * kept encoded (~1 KB) with a small summary, so 100,000 keys cost ~100 MB, not ~700 MB.
   */
  keyCacheSize?: number;
  /**
   * This cluster's id, named in every device call (a call captured at another cluster is
   * refused). Default: a random id generated on first `Coordinator.load` and stored.
   */
  clusterId?: string;
  /**
   * A standing refresh authorisation (an encoded `ApprovedAuthorisation`, operation refresh,
   * anyEpoch) the operators signed for scheduled refreshes. Participants check it themselves.
   */
  refreshAuthorisation?: Uint8Array;
  onEvent?: (e: CoordinatorEvent) => void;
}

/** Node's CSPRNG, the default `rng`. */
export const defaultRng: Rng = ((n = 32) => new Uint8Array(randomBytes(n))) as Rng;

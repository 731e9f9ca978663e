/**
 * Online signing: opens the requester's signed intent, picks a quorum of linked signer nodes,
 * takes one pooled commitment from each, sends them the signing package, verifies and
 * aggregates the shares, and checks the signature with the plain verifier (core
 * `SigningSession`). A signer that is unavailable, refuses or sends a bad share is excluded (a
 * bad share is named) and another quorum is tried, up to `maxAttempts`. Results are stored per
 * requester and request id, bound to the exact intent: a retry gets the same signature.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import {
  FORMAT_VERSION,
  PayloadKind,
  SigningSession,
  decodeMessage,
  decodeSignatureShare,
  deriveKey,
  encodeMessage,
  encodeSignRequest,
  equalBytes,
  groupPublicKey,
  openSignIntent,
  readEnvelope,
  selectQuorum,
  toHex,
  validateCommitmentList,
  verifyEnvelope,
  type KeyRecord,
  type RequestCommitment,
  type Rng,
} from '@tessera/core';
import type { AuditLog, SealedKV } from '@tessera/store';
import type { EcdsaService } from './ecdsa.js';
import type { KeyRegistry } from './key-registry.js';
import { layout } from './layout.js';
import type { Participants } from './participants.js';
import type { CommitmentPools } from './pools.js';
import { CoordinatorError, codeOf, type CoordinatorEvent, type ParticipantHandle, type SignResult } from './types.js';

/** What signing uses. */
export interface SigningComponents {
  readonly store: SealedKV;
  readonly audit: AuditLog;
  readonly clock: () => number;
  readonly rng: Rng;
  /** Per-task deadline, ms. */
  readonly timeout: number;
  /** Quorums tried per request. */
  readonly maxAttempts: number;
  readonly participants: Participants;
  readonly registry: KeyRegistry;
  readonly pools: CommitmentPools;
  /** ECDSA keys' signing sessions (presign, then sign). */
  readonly ecdsa: EcdsaService;
  /** Whether `id` is an enrolled device (devices never sign online). */
  isDevice(id: string): boolean;
  onEvent(e: CoordinatorEvent): void;
}

/** Signers excluded from further quorums of one request, with why ("BAD_…" names a culprit). */
type Excluded = Map<string, string>;

export class SigningService {
  constructor(private readonly c: SigningComponents) {}

  /** Signs with the key the intent names; `preferred` signers are tried first. */
  async sign(intentBytes: Uint8Array, preferred: readonly string[] = []): Promise<SignResult> {
    const t0 = this.c.clock();
    let attempts = 0;
    let keyId = '';
    try {
      const intent = openSignIntent(intentBytes);
      keyId = intent.keyId;
      const rec = this.c.registry.key(intent.keyId);
      if (rec.key.suite.id !== intent.suite.id)
        throw new CoordinatorError('WRONG_SUITE', `key ${rec.keyId} is ${rec.key.suite.id}`);
      // Results are kept per (requester, request id) and bound to the exact intent: a retry of the
      // same intent gets the stored signature; the same id with another intent is refused.
      const resultKey = layout.result(intent.requester, intent.requestId);
      const intentDigest = sha256(intent.payload);
      const storedResult = async () => {
        const prior = await this.c.store.get(resultKey);
        if (!prior) return undefined;
        const stored = decodeResult(prior);
        if (!equalBytes(stored.intentDigest, intentDigest))
          throw new CoordinatorError(
            'INVALID_ARGUMENT',
            `request id ${toHex(intent.requestId).slice(0, 16)}… was already used for another intent`,
          );
        return stored.result;
      };
      const prior = await storedResult();
      if (prior) return prior;
      // An HD child key (the intent's path): same roster and shares, publicly tweaked.
      const signingKey = intent.path ? deriveKey(rec.key, intent.path).key : rec.key;
      const excluded: Excluded = new Map();
      while (attempts < this.c.maxAttempts) {
        const quorum = this.#quorum(rec, preferred, excluded);
        if (!quorum) break;
        attempts++;
        const signature =
          rec.key.suite.scheme === 'ecdsa'
            ? await this.c.ecdsa.attempt(rec, intentBytes, intent, quorum, excluded)
            : await this.#attempt(rec, intentBytes, intent.message, quorum, excluded, signingKey);
        if (!signature) continue; // whoever failed is excluded now
        const out: SignResult = {
          keyId: rec.keyId,
          signature,
          signers: quorum,
          publicKey: groupPublicKey(signingKey),
          requestId: intent.requestId,
        };
        // The result and its audit entry: one synced batch. The result is an insert: if the same
        // request finished first elsewhere (a concurrent retry, a deposed leader), that stored
        // result is the answer and this signature is never handed out.
        const stored = await this.c.audit
          .append(
            {
              type: 'sign',
              data: {
                keyId,
                requestId: toHex(intent.requestId),
                signers: quorum.join(','),
                attempts,
                ...(intent.path ? { path: intent.path } : {}),
              },
            },
            { with: [{ type: 'insert', key: resultKey, value: encodeResult(out, intentDigest) }] },
          )
          .then(
            () => out,
            async (e: unknown) => {
              if (codeOf(e) !== 'KEY_EXISTS') throw e;
              return (await storedResult()) ?? Promise.reject(e);
            },
          );
        this.c.onEvent({ type: 'sign', keyId, ok: true, ms: this.c.clock() - t0, attempts });
        return stored;
      }
      throw noQuorum(rec, excluded);
    } catch (e) {
      this.c.onEvent({ type: 'sign', keyId, ok: false, cause: codeOf(e), ms: this.c.clock() - t0, attempts });
      throw e;
    }
  }

  /**
   * The next quorum to try: linked signer nodes not excluded yet, preferred first, those that
   * timed out lately last. None when too few are left.
   */
  #quorum(rec: KeyRecord, preferred: readonly string[], excluded: Excluded): string[] | undefined {
    const p = this.c.participants;
    const available = p.fastFirst(
      [...preferred, ...rec.key.roster.map((r) => r.id)].filter((id) => p.linked(id) && !this.c.isDevice(id)),
    );
    try {
      return selectQuorum(rec.key, available, excluded.keys());
    } catch {
      return undefined;
    }
  }

  /**
   * One signing attempt with `quorum`. Resolves to the signature, or to undefined after
   * excluding whoever failed (then another quorum may be tried).
   */
  async #attempt(
    rec: KeyRecord,
    intent: Uint8Array,
    message: Uint8Array,
    quorum: string[],
    excluded: Excluded,
    signingKey: KeyRecord['key'],
  ): Promise<Uint8Array | undefined> {
    const commitments: RequestCommitment[] = [];
    const got = await Promise.allSettled(quorum.map((id) => this.c.pools.take(id, rec)));
    got.forEach((g, i) => {
      if (g.status === 'fulfilled') commitments.push(g.value);
      else excluded.set(quorum[i] as string, codeOf(g.reason));
    });
    if (commitments.length < quorum.length) return undefined;
    const request = encodeSignRequest({
      suite: rec.key.suite,
      sessionId: this.c.rng(16),
      keyId: rec.keyId,
      epoch: rec.epoch,
      intent,
      commitments,
    });
    const digest = sha256(request);
    // The list is checked before any signer spends a nonce on it (each commitment was decoded and
    // validated when pooled); the session itself (binding factors, group commitment R: ~2 ms for
    // secp256k1) is computed while the signers work, off the one-request critical path.
    validateCommitmentList(signingKey, commitments);
    const pending = Promise.allSettled(
      quorum.map(async (id) =>
        (this.c.participants.get(id) as ParticipantHandle).call({ body: 'sign', sign: request }, this.c.timeout),
      ),
    );
    await new Promise((resolve) => setImmediate(resolve)); // the sign tasks go out first
    let session: SigningSession;
    try {
      session = new SigningSession(signingKey, message, commitments);
    } catch (e) {
      await pending;
      throw e;
    }
    const answers = await pending;
    const shares = new Map<string, Uint8Array>();
    const envelopes = new Map<string, ReturnType<typeof readEnvelope>>();
    answers.forEach((a, i) => {
      const id = quorum[i] as string;
      const h = this.c.participants.get(id);
      if (a.status === 'rejected' || !h) {
        this.c.participants.markSlow(id);
        return void excluded.set(id, 'UNAVAILABLE');
      }
      const r = a.value;
      if (r.body !== 'envelope' || !r.envelope) return void excluded.set(id, r.error?.code ?? 'UNEXPECTED_MESSAGE');
      try {
        // The share came over the signer's authenticated link: its envelope must name that
        // signer, and its signature is verified only if the aggregate fails (then it is evidence).
        const env = readEnvelope(r.envelope, PayloadKind.SIGNATURE_SHARE);
        if (!equalBytes(env.sender, h.info.signKey))
          throw new CoordinatorError('BAD_SIGNATURE', 'share signed by another key');
        envelopes.set(id, env);
        const s = decodeSignatureShare(rec.key.suite, env.payload);
        if (!equalBytes(s.requestDigest, digest))
          throw new CoordinatorError('BAD_SIGNATURE_SHARE', 'share answers another request');
        shares.set(id, s.share);
      } catch (e) {
        // Blamed now, so the envelope signature is evidence now.
        const env = envelopes.get(id);
        const code = env && !verifyEnvelope(env) ? 'BAD_SIGNATURE' : codeOf(e);
        excluded.set(id, `BAD_SIGNATURE_SHARE ${code}`);
        this.c.onEvent({ type: 'culprit', participant: id, code });
      }
    });
    if (shares.size < quorum.length) return undefined;
    try {
      return session.aggregate(shares);
    } catch (e) {
      // Now the envelope signatures are evidence: a share whose envelope does not verify is
      // blamed as such (its link named the sender), the others by share verification.
      const unsigned = [...envelopes].filter(([, env]) => !verifyEnvelope(env)).map(([id]) => id);
      const culprits = [...new Set([...unsigned, ...((e as { culprits?: string[] }).culprits ?? [])])];
      for (const c of culprits) {
        const code = unsigned.includes(c) ? 'BAD_SIGNATURE' : 'BAD_SIGNATURE_SHARE';
        excluded.set(c, code === 'BAD_SIGNATURE' ? 'BAD_SIGNATURE_SHARE BAD_SIGNATURE' : code);
        this.c.onEvent({ type: 'culprit', participant: c, code });
      }
      if (culprits.length) return undefined;
      throw e;
    }
  }
}

/** Why no quorum signed: NO_QUORUM naming the bad shares' senders, or POLICY_DENIED if only policy refused. */
function noQuorum(rec: KeyRecord, excluded: Excluded): CoordinatorError {
  const reasons = [...excluded].map(([id, why]) => `${id}: ${why}`).join('; ');
  const culprits = [...excluded].filter(([, why]) => why.startsWith('BAD_')).map(([id]) => id);
  const denied = [...excluded.values()].some((w) => w.startsWith('POLICY_DENIED'));
  return new CoordinatorError(
    denied && culprits.length === 0 ? 'POLICY_DENIED' : 'NO_QUORUM',
    `no quorum of ${rec.key.threshold} could sign key ${rec.keyId}${reasons ? ` (${reasons})` : ''}`,
    culprits,
  );
}

function encodeResult(r: SignResult, intentDigest: Uint8Array): Uint8Array {
  return encodeMessage('SignResultRecord', {
    version: FORMAT_VERSION,
    keyId: r.keyId,
    signature: r.signature,
    signers: r.signers,
    publicKey: r.publicKey,
    requestId: r.requestId,
    intentDigest,
  });
}

function decodeResult(b: Uint8Array): { result: SignResult; intentDigest: Uint8Array } {
  const w = decodeMessage('SignResultRecord', b);
  if (w.version !== FORMAT_VERSION)
    throw new CoordinatorError('STORE_CORRUPT', `stored result has unsupported version ${w.version}`);
  return {
    result: {
      keyId: w.keyId,
      signature: w.signature,
      signers: w.signers,
      publicKey: w.publicKey,
      requestId: w.requestId,
    },
    intentDigest: w.intentDigest,
  };
}

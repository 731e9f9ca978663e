/**
 * Key generation: drives the participants' DKG (core `DkgParticipant`: two rounds and a
 * confirmation round, shares sealed to each recipient) over their links, checks that every
 * round message is signed by the participant whose link carried it, and registers the key only
 * when every participant reports the same one. A failure aborts the DKG everywhere and names a
 * culprit only with proof.
 */
import {
  PayloadKind,
  decodeKeyRecord,
  dkgSessionHashOfParams,
  encodeDkgParams,
  equalBytes,
  getSuite,
  groupPublicKey,
  keyDigest,
  openEnvelope,
  toHex,
  type KeyRecord,
  type LinkResult,
  type LinkTask,
  type Rng,
  type SuiteId,
} from '@tessera/core';
import type { AuditLog } from '@tessera/store';
import type { EcdsaService } from './ecdsa.js';
import type { KeyRegistry } from './key-registry.js';
import type { Participants } from './participants.js';
import type { CommitmentPools } from './pools.js';
import {
  CoordinatorError,
  codeOf,
  keyInfo,
  type CoordinatorEvent,
  type KeyInfo,
  type ParticipantHandle,
} from './types.js';

/** What key generation uses. */
export interface KeygenComponents {
  readonly audit: AuditLog;
  readonly clock: () => number;
  readonly rng: Rng;
  /** Per-task deadline, ms. */
  readonly timeout: number;
  readonly participants: Participants;
  readonly registry: KeyRegistry;
  readonly pools: CommitmentPools;
  readonly ecdsa: EcdsaService;
  /** Whether `id` is an enrolled device. */
  isDevice(id: string): boolean;
  /** The operators' admissions stored for device `id`. */
  admissions(id: string): Promise<Uint8Array[]>;
  onEvent(e: CoordinatorEvent): void;
}

export interface KeygenRequest {
  suite: SuiteId;
  threshold: number;
  /** Default: every connected signer node. */
  participants?: string[];
}

/** One participant's failure in a DKG round. */
export interface RoundFailure {
  id: string;
  code: string;
  message: string;
  /** Who the participant blames (unchecked). */
  culprits: readonly string[];
  /** The coordinator saw the misbehaviour itself (a wrong answer, an envelope not signed by its sender). */
  proven?: boolean;
}

export class KeygenService {
  constructor(private readonly c: KeygenComponents) {}

  /** Runs a DKG among `req.participants` (default: every connected signer node). */
  async keygen(req: KeygenRequest, progress?: (stage: string) => void): Promise<KeyInfo> {
    const t0 = this.c.clock();
    try {
      const handles = this.#roster(req);
      const ids = handles.map((h) => h.info.id);
      const params = encodeDkgParams({
        suite: getSuite(req.suite),
        sessionId: this.c.rng(32),
        threshold: req.threshold,
        participants: handles.map((h) => h.info),
      });
      progress?.('round 1');
      // Devices go in only with the operators' admissions: every signer checks them itself.
      const deviceAdmissions: Uint8Array[] = [];
      for (const h of handles) if (h.info.device) deviceAdmissions.push(...(await this.c.admissions(h.info.id)));
      let envelopes = await this.#all(
        handles,
        { body: 'dkgStart', dkgStart: { params, deviceAdmissions } },
        'envelope',
        undefined,
        PayloadKind.DKG_ROUND1,
      );
      const sessionHash = dkgSessionHashOfParams(params);
      for (const round of [1, 2] as const) {
        progress?.(round === 1 ? 'round 2' : 'confirmation');
        envelopes = await this.#all(
          handles,
          {
            body: 'dkgBundle',
            dkgBundle: { sessionHash, round, envelopes: envelopes.map((e) => e.envelope as Uint8Array) },
          },
          'envelope',
          sessionHash,
          round === 1 ? PayloadKind.DKG_ROUND2 : PayloadKind.DKG_CONFIRM,
        );
      }
      progress?.('finalising');
      const done = await this.#all(
        handles,
        {
          body: 'dkgBundle',
          dkgBundle: { sessionHash, round: 3, envelopes: envelopes.map((e) => e.envelope as Uint8Array) },
        },
        'dkgDone',
        sessionHash,
      );
      const rec: KeyRecord = { ...agreedKey(ids, done), createdAt: this.c.clock() };
      if (rec.key.suite.scheme === 'ecdsa') {
        // The pairwise OT setup and zero-sharing seeds of DKLs23: the key signs only after it.
        progress?.('ECDSA setup');
        await this.c.ecdsa.setup(rec);
      }
      await this.c.registry.add(rec);
      await this.c.audit.append({
        type: 'keygen',
        data: {
          keyId: rec.keyId,
          suite: rec.key.suite.id,
          threshold: rec.key.threshold,
          participants: ids.join(','),
          publicKey: toHex(groupPublicKey(rec.key)),
        },
      });
      this.c.onEvent({ type: 'keygen', ok: true, ms: this.c.clock() - t0 });
      // Devices sign offline, never from pools: only nodes get commitments fetched.
      for (const id of ids.filter((x) => !this.c.isDevice(x))) this.c.pools.refillInBackground(id, rec.keyId);
      return keyInfo(rec);
    } catch (e) {
      this.c.onEvent({ type: 'keygen', ok: false, ms: this.c.clock() - t0, cause: codeOf(e) });
      throw e;
    }
  }

  /** The participants' links, after checking the request against who is known and linked. */
  #roster(req: KeygenRequest): ParticipantHandle[] {
    getSuite(req.suite); // an unknown suite is refused before anything else
    const p = this.c.participants;
    const ids = req.participants?.length
      ? [...new Set(req.participants)]
      : p.connected().filter((id) => !this.c.isDevice(id));
    const unknown = ids.filter((id) => !p.isKnown(id));
    if (unknown.length) throw new CoordinatorError('INVALID_ARGUMENT', `unknown participant: ${unknown.join(', ')}`);
    const missing = ids.filter((id) => !p.linked(id));
    if (missing.length) throw new CoordinatorError('UNAVAILABLE', `not connected: ${missing.join(', ')}`);
    if (ids.length < 2)
      throw new CoordinatorError('INVALID_ARGUMENT', `DKG needs at least 2 participants, ${ids.length} given`);
    if (!Number.isInteger(req.threshold) || req.threshold < 2 || req.threshold > ids.length)
      throw new CoordinatorError('INVALID_ARGUMENT', `threshold must be 2..${ids.length}, got ${req.threshold}`);
    return ids.map((id) => p.get(id) as ParticipantHandle);
  }

  /** Sends one task to every handle; all must succeed with a result of `want`. On failure, aborts the DKG everywhere. */
  async #all(
    handles: ParticipantHandle[],
    task: Omit<LinkTask, 'taskId'>,
    want: 'envelope' | 'dkgDone',
    sessionHash?: Uint8Array,
    kind?: PayloadKind,
  ): Promise<LinkResult[]> {
    const results = await Promise.allSettled(handles.map((h) => h.call(task, this.c.timeout)));
    const failures: RoundFailure[] = [];
    const out: LinkResult[] = [];
    results.forEach((r, i) => {
      const h = handles[i] as ParticipantHandle;
      const failure = r.status === 'rejected' ? unanswered(h) : checkAnswer(h, handles, r.value, want, kind);
      if (failure) failures.push(failure);
      else out.push((r as PromiseFulfilledResult<LinkResult>).value);
    });
    if (!failures.length) return out;
    if (sessionHash)
      void Promise.allSettled(
        handles.map((h) =>
          h.call({ body: 'dkgAbort', dkgAbort: { sessionHash, reason: failures[0]?.code ?? '' } }, this.c.timeout),
        ),
      );
    const f = failures.find((x) => x.proven) ?? (failures[0] as RoundFailure);
    throw new CoordinatorError(
      f.code,
      `DKG aborted: ${failures.map((x) => `${x.id}: ${x.code} ${x.message}`).join('; ')}`,
      blame(failures, handles.length),
    );
  }
}

function unanswered(h: ParticipantHandle): RoundFailure {
  return { id: h.info.id, code: 'UNAVAILABLE', message: `${h.info.id} did not answer`, culprits: [] };
}

/** What is wrong with `h`'s answer, if anything. */
function checkAnswer(
  h: ParticipantHandle,
  handles: ParticipantHandle[],
  v: LinkResult,
  want: 'envelope' | 'dkgDone',
  kind: PayloadKind | undefined,
): RoundFailure | undefined {
  const id = h.info.id;
  if (v.body === 'error' || v.error) {
    const code =
      typeof v.error?.code === 'string' && /^[A-Z][A-Z_]{1,39}$/.test(v.error.code) ? v.error.code : 'INTERNAL';
    const culprits = Array.isArray(v.error?.culprits)
      ? v.error.culprits.filter((c) => typeof c === 'string' && handles.some((x) => x.info.id === c))
      : [];
    return { id, code, message: String(v.error?.message ?? '').slice(0, 300), culprits };
  }
  if (v.body !== want)
    return {
      id,
      code: 'UNEXPECTED_MESSAGE',
      message: `${id} answered ${String(v.body)}`,
      culprits: [id],
      proven: true,
    };
  if (kind === undefined) return undefined;
  try {
    const env = openEnvelope(v.envelope as Uint8Array, kind);
    if (!equalBytes(env.sender, h.info.signKey)) throw new CoordinatorError('BAD_SIGNATURE', 'signed by another key');
    return undefined;
  } catch (e) {
    return {
      id,
      code: 'UNEXPECTED_MESSAGE',
      message: `${id} sent an invalid round message (${codeOf(e)})`,
      culprits: [id],
      proven: true,
    };
  }
}

/**
 * Blame needs proof. What the coordinator saw itself names the participant. A participant's
 * report cannot be checked here, so a reported culprit is named only when at least two
 * different participants report it (one liar cannot frame an honest participant); with two
 * participants, the other's word is all there is.
 */
export function blame(failures: readonly RoundFailure[], participants: number): string[] {
  const reports = new Map<string, Set<string>>();
  for (const f of failures)
    for (const c of f.culprits) if (c !== f.id) reports.set(c, (reports.get(c) ?? new Set()).add(f.id));
  const needed = participants > 2 ? 2 : 1;
  return [
    ...new Set([
      ...failures.filter((f) => f.proven).map((f) => f.id),
      ...[...reports].filter(([, by]) => by.size >= needed).map(([c]) => c),
    ]),
  ];
}

/**
 * The key every participant reported after the DKG (`done` in `ids` order). Each report must
 * verify against its own key record and all must agree; the majority view is kept so that a
 * lone liar is the one named.
 */
function agreedKey(ids: readonly string[], done: readonly LinkResult[]): KeyRecord {
  const views = done.map((r) => {
    const d = r.dkgDone;
    try {
      const rec = d ? decodeKeyRecord(d.keyRecord) : undefined;
      return rec && d && rec.keyId === d.keyId && equalBytes(keyDigest(rec.key), d.keyDigest)
        ? { rec, digest: toHex(d.keyDigest) }
        : undefined;
    } catch {
      return undefined;
    }
  });
  const tally = new Map<string, number>();
  for (const v of views) if (v) tally.set(v.digest, (tally.get(v.digest) ?? 0) + 1);
  const majority = [...tally].sort((a, b) => b[1] - a[1])[0]?.[0];
  const dissent = ids.filter((_, i) => views[i]?.digest !== majority);
  if (dissent.length || majority === undefined)
    throw new CoordinatorError(
      'CONFIRMATION_MISMATCH',
      `participants disagree about the key: ${dissent.join(', ')}`,
      dissent,
    );
  return (views.find((v) => v?.digest === majority) as { rec: KeyRecord }).rec;
}

/**
 * The coordinator's share lifecycle: refresh, reshare, their commit and retirement, catch-up of
 * participants that were offline, and the authorisations operators are asked to approve. It
 * drives the participants' `LifecycleParticipant` (core) step by step and trusts none of their
 * answers beyond what it checks itself; the participants check everything again.
 */
import {
  LifecycleStep,
  PayloadKind,
  checkLifecycleConfirmations,
  decodeKeyRecord,
  decodeMessage,
  decodeRefreshParams,
  decodeReshareParams,
  encodeAuthorisation,
  encodeKeyRecord,
  encodeRefreshParams,
  encodeReshareParams,
  equalBytes,
  fromHex,
  groupPublicKey,
  openEnvelope,
  refreshPublicKey,
  refreshSessionHash,
  resharePublicKey,
  reshareSessionHash,
  retirementQuorum,
  toHex,
  type KeyRecord,
  type LinkTask,
  type ParticipantPublic,
  type Rng,
} from '@tessera/core';
import type { AuditLog, SealedKV } from '@tessera/store';
import { layout } from './layout.js';
import {
  CoordinatorError,
  codeOf,
  keyInfo,
  type CoordinatorEvent,
  type KeyInfo,
  type ParticipantHandle,
} from './types.js';

/** What the lifecycle service uses of the coordinator. */
export interface LifecycleComponents {
  readonly store: SealedKV;
  readonly audit: AuditLog;
  readonly clock: () => number;
  readonly rng: Rng;
  /** Per-task deadline, ms. */
  readonly timeout: number;
  /** The operators' standing refresh authorisation (empty: none). */
  readonly standingRefresh: Uint8Array;
  onEvent(e: CoordinatorEvent): void;
  /** A linked participant. */
  participant(id: string): ParticipantHandle | undefined;
  /** An enrolled device. */
  device(id: string): ParticipantPublic | undefined;
  /** The current record of a key (NOT_FOUND if unknown). */
  key(keyId: string): KeyRecord;
  /** The summary of a key (no record decoded). */
  summary(keyId: string): KeyInfo | undefined;
  keys(): KeyInfo[];
  /** Ids of the keys whose roster names `participant`. */
  keyIdsOf(participant: string): string[];
  /** A committed new epoch: the registry, the known participants and the commitment pools follow. */
  committed(next: KeyRecord): void;
}

/** What `PrepareLifecycle` asks for. */
export interface PrepareRequest {
  keyId: string;
  operation: string;
  threshold?: number;
  participants?: string[];
  revoke?: string[];
  ttlMs?: number;
  allowThresholdDecrease?: boolean;
  allowUnpinned?: string[];
  anyEpoch?: boolean;
}

export class LifecycleService {
  constructor(private readonly c: LifecycleComponents) {}

  /** Sends one lifecycle step to each handle; all must answer with `want`. */
  async #step(
    handles: ParticipantHandle[],
    task: Omit<NonNullable<LinkTask['lifecycle']>, 'step'> & { step: LifecycleStep },
    want: 'envelope' | 'any',
  ): Promise<Map<string, Uint8Array | undefined>> {
    const answers = await Promise.allSettled(
      handles.map((h) => h.call({ body: 'lifecycle', lifecycle: task }, this.c.timeout)),
    );
    const out = new Map<string, Uint8Array | undefined>();
    const failures: string[] = [];
    const culprits = new Set<string>();
    answers.forEach((a, i) => {
      const id = (handles[i] as ParticipantHandle).info.id;
      if (a.status === 'rejected') return void failures.push(`${id}: UNAVAILABLE`);
      const r = a.value;
      if (r.body === 'error' || r.error) {
        for (const c of r.error?.culprits ?? []) if (typeof c === 'string') culprits.add(c);
        return void failures.push(
          `${id}: ${r.error?.code ?? 'INTERNAL'} ${String(r.error?.message ?? '').slice(0, 200)}`,
        );
      }
      if (want === 'envelope' && (r.body !== 'envelope' || !r.envelope))
        return void failures.push(`${id}: UNEXPECTED_MESSAGE`);
      out.set(id, r.body === 'envelope' ? r.envelope : undefined);
    });
    if (failures.length) {
      void Promise.allSettled(
        handles.map((h) =>
          h.call({ body: 'lifecycle', lifecycle: { ...task, step: LifecycleStep.ABORT } }, this.c.timeout),
        ),
      );
      const bad = failures.find((f) => !f.includes('UNAVAILABLE')) ?? failures[0] ?? '';
      const code = /^[^:]+: ([A-Z_]+)/.exec(bad)?.[1] ?? 'ABORTED';
      throw new CoordinatorError(
        code === 'UNAVAILABLE' ? 'UNAVAILABLE' : code,
        `${task.kind} aborted, epoch ${task.kind === 'refresh' ? '' : ''}unchanged: ${failures.join('; ')}`,
        [...culprits],
      );
    }
    return out;
  }

  /**
   * Stores the committed key and the session (params, contributions, authorisation and the
   * confirmations, for participants that apply it later), then commits on the online
   * participants: each activates only with the confirmations of its own pending outcome and
   * answers with a signed activation acknowledgement. With min(n', 2t'−1) of those, every
   * participant is told to retire the previous epoch (dropped there after its retention time).
   */
  async #commitLifecycle(
    kind: 'refresh' | 'reshare',
    rec: KeyRecord,
    next: KeyRecord,
    session: { params: Uint8Array; round1: Uint8Array[]; authorisation: Uint8Array; confirmations: Uint8Array[] },
    online: ParticipantHandle[],
  ): Promise<void> {
    const stored: StoredSession = {
      kind,
      params: toHex(session.params),
      envelopes: session.round1.map(toHex),
      oldKey: toHex(encodeKeyRecord(rec)),
      authorisation: toHex(session.authorisation),
      confirmations: session.confirmations.map(toHex),
      acks: [],
    };
    await this.c.store.batch(
      [
        { type: 'put', key: layout.key(next.keyId), value: encodeKeyRecord(next) },
        { type: 'put', key: layout.keyEpoch(next.keyId, next.epoch), value: encodeKeyRecord(next) },
        { type: 'put', key: layout.lifecycle(next.keyId, next.epoch), value: encodeSession(stored) },
      ],
      { sync: true },
    );
    this.c.committed(next);
    await this.c.audit.append({
      type: kind,
      data: {
        keyId: next.keyId,
        epoch: next.epoch,
        threshold: next.key.threshold,
        participants: next.key.roster.map((r) => r.id).join(','),
        publicKey: toHex(groupPublicKey(next.key)),
      },
    });
    const commit = {
      kind,
      keyId: next.keyId,
      step: LifecycleStep.COMMIT,
      params: new Uint8Array(0),
      envelopes: session.confirmations,
      oldKeyRecord: new Uint8Array(0),
      epoch: next.epoch,
    };
    const answers = await Promise.allSettled(
      online.map((h) => h.call({ body: 'lifecycle', lifecycle: commit }, this.c.timeout)),
    );
    const acks: Uint8Array[] = [];
    await Promise.all(
      answers.map(async (a, i) => {
        if (a.status !== 'fulfilled' || (a.value.body !== 'ok' && a.value.body !== 'envelope')) return;
        if (a.value.body === 'envelope' && a.value.envelope) acks.push(a.value.envelope);
        await this.c.store.put(
          layout.ack((online[i] as ParticipantHandle).info.id, next.keyId),
          new TextEncoder().encode(String(next.epoch)),
          { sync: true },
        );
      }),
    );
    await this.#retire(next, stored, acks, online);
  }

  /** Adds activation acknowledgements to the stored session and, with t' of them, tells `to` to retire the previous epoch. */
  async #retire(next: KeyRecord, stored: StoredSession, acks: Uint8Array[], to: ParticipantHandle[]): Promise<void> {
    const all = [...new Set([...stored.acks, ...acks.map(toHex)])];
    if (all.length !== stored.acks.length) {
      stored.acks = all;
      await this.c.store.put(layout.lifecycle(next.keyId, next.epoch), encodeSession(stored), { sync: true });
    }
    if (all.length < retirementQuorum(next.key)) return;
    const retire = {
      kind: stored.kind,
      keyId: next.keyId,
      step: LifecycleStep.RETIRE,
      params: new Uint8Array(0),
      envelopes: all.map((x) => fromHex(x)),
      oldKeyRecord: new Uint8Array(0),
      epoch: next.epoch,
    };
    await Promise.allSettled(to.map((h) => h.call({ body: 'lifecycle', lifecycle: retire }, this.c.timeout)));
  }

  /**
   * Brings a participant that was offline during refreshes up to date: applies each committed
   * session it missed, in epoch order, and commits it with the stored confirmations. Runs when it links.
   */
  async catchUp(h: ParticipantHandle): Promise<void> {
    for (const keyId of this.c.keyIdsOf(h.info.id)) {
      // Epoch 0 has no lifecycle session to catch up on: no store read per key at every link.
      // Only the summary is read (no record decoded, the decoded cache left alone).
      const info = this.c.summary(keyId);
      if (!info || info.epoch === 0) continue;
      const ackRaw = await this.c.store.get(layout.ack(h.info.id, keyId));
      const acked = ackRaw ? Number(new TextDecoder().decode(ackRaw)) : 0;
      for (let e = acked + 1; e <= info.epoch; e++) {
        const raw = await this.c.store.get(layout.lifecycle(keyId, e));
        if (!raw) break;
        const sess = decodeSession(raw);
        const base = {
          kind: sess.kind,
          keyId,
          params: fromHex(sess.params),
          envelopes: sess.envelopes.map((x) => fromHex(x)),
          oldKeyRecord: fromHex(sess.oldKey),
          epoch: e,
          authorisation: fromHex(sess.authorisation),
        };
        const applied = await h.call(
          { body: 'lifecycle', lifecycle: { ...base, step: LifecycleStep.APPLY } },
          this.c.timeout,
        );
        if (applied.body === 'error')
          throw new CoordinatorError(
            applied.error?.code ?? 'INTERNAL',
            `${h.info.id} could not apply epoch ${e} of ${keyId}: ${applied.error?.message ?? ''}`,
          );
        const confirmations = sess.confirmations.map((x) => fromHex(x));
        if (applied.body === 'envelope' && applied.envelope) {
          // The late participant must have derived exactly the key everyone else committed to.
          const oldKey = decodeKeyRecord(base.oldKeyRecord).key;
          const pub =
            sess.kind === 'refresh'
              ? refreshPublicKey(decodeRefreshParams(base.params, oldKey), base.envelopes)
              : resharePublicKey(decodeReshareParams(base.params, oldKey), base.envelopes);
          checkLifecycleConfirmations(pub, [applied.envelope], [h.info.id]);
          confirmations.push(applied.envelope);
        }
        const done = await h.call(
          { body: 'lifecycle', lifecycle: { ...base, envelopes: confirmations, step: LifecycleStep.COMMIT } },
          this.c.timeout,
        );
        if (done.body !== 'ok' && done.body !== 'envelope') break;
        await this.c.store.put(layout.ack(h.info.id, keyId), new TextEncoder().encode(String(e)), { sync: true });
        await this.c.audit.append({ type: 'lifecycle-catch-up', data: { keyId, participant: h.info.id, epoch: e } });
        const next = e === info.epoch ? this.c.key(keyId) : undefined;
        // Its acknowledgement may complete the retirement quorum: tell every linked member.
        const members = next
          ? next.key.roster.map((r) => this.c.participant(r.id)).filter((x): x is ParticipantHandle => !!x)
          : [];
        if (next)
          await this.#retire(next, sess, done.body === 'envelope' && done.envelope ? [done.envelope] : [], members);
      }
    }
  }

  /**
   * Checks each round-1 contribution (`round1[i]` is `contributors[i]`'s answer, as #step
   * returns them) against what the coordinator itself saw: it came over that contributor's own
   * link, so one not signed by it, or made for another session (another epoch, a replay of an
   * earlier session), names that contributor. Core's public checks cannot tell who replayed a
   * message of another session and blame nobody; here there is no relay in between.
   */
  #checkContributions(
    contributors: ParticipantHandle[],
    round1: Uint8Array[],
    kind: PayloadKind,
    sessionHash: Uint8Array,
  ): void {
    contributors.forEach((h, i) => {
      let why: string | undefined;
      try {
        const env = openEnvelope(round1[i] as Uint8Array, kind);
        if (!equalBytes(env.sender, h.info.signKey)) why = 'is not signed by its key';
        else if (!equalBytes(decodeMessage('LifecycleRound1', env.payload).sessionHash, sessionHash))
          why = 'was made for another session (another epoch, or a replay)';
      } catch (e) {
        why = `does not open (${codeOf(e)})`;
      }
      if (why === undefined) return;
      this.c.onEvent({ type: 'culprit', participant: h.info.id, code: 'UNEXPECTED_MESSAGE' });
      throw new CoordinatorError('UNEXPECTED_MESSAGE', `the round-1 contribution of ${h.info.id} ${why}`, [h.info.id]);
    });
  }

  /**
   * Proactive refresh of `keyId`: the linked participants (at least t) contribute zero-sharings;
   * every participant's share changes, the public key does not. Participants offline now apply
   * it when they next link. Any failure before the commit aborts everywhere and leaves the
   * current epoch in force.
   */
  async refresh(keyId: string, authorisation: Uint8Array = this.c.standingRefresh): Promise<KeyInfo> {
    const rec = this.c.key(keyId);
    const online = rec.key.roster.map((r) => this.c.participant(r.id)).filter((h): h is ParticipantHandle => !!h);
    if (online.length < rec.key.threshold)
      throw new CoordinatorError(
        'UNAVAILABLE',
        `refresh needs ${rec.key.threshold} linked participants of key ${keyId}, ${online.length} linked`,
      );
    // Anyone that lags behind an earlier epoch catches up first.
    for (const h of online) await this.catchUp(h).catch(() => {});
    // Contributors: the linked signer nodes when they are enough (phones drop off), else all linked.
    const nodes = online.filter((h) => !h.device);
    const contributors = nodes.length >= rec.key.threshold ? nodes : online;
    const cfg = {
      suite: rec.key.suite,
      sessionId: this.c.rng(32),
      keyId,
      fromEpoch: rec.epoch,
      key: rec.key,
      contributors: contributors.map((h) => h.info.id),
    };
    const params = encodeRefreshParams(cfg);
    const base = {
      kind: 'refresh',
      keyId,
      params,
      envelopes: [] as Uint8Array[],
      oldKeyRecord: new Uint8Array(0),
      epoch: rec.epoch + 1,
      authorisation,
    };
    const round1 = [
      ...(await this.#step(contributors, { ...base, step: LifecycleStep.CONTRIBUTE }, 'envelope')).values(),
    ] as Uint8Array[];
    let pub;
    try {
      this.#checkContributions(contributors, round1, PayloadKind.REFRESH_ROUND1, refreshSessionHash(cfg));
      pub = refreshPublicKey(cfg, round1);
    } catch (e) {
      void Promise.allSettled(
        online.map((h) =>
          h.call({ body: 'lifecycle', lifecycle: { ...base, step: LifecycleStep.ABORT } }, this.c.timeout),
        ),
      );
      throw e;
    }
    // Contributors must apply and confirm; any other linked participant (a phone) applies too if
    // it can, and otherwise catches up from the stored session when it next links.
    const others = online.filter((h) => !contributors.includes(h));
    const [mustConfirm, mayConfirm] = await Promise.all([
      this.#step(contributors, { ...base, envelopes: round1, step: LifecycleStep.APPLY }, 'envelope'),
      Promise.allSettled(
        others.map((h) =>
          h.call(
            { body: 'lifecycle', lifecycle: { ...base, envelopes: round1, step: LifecycleStep.APPLY } },
            this.c.timeout,
          ),
        ),
      ),
    ]);
    const applied = [...contributors];
    const confirmations = [...mustConfirm.values()] as Uint8Array[];
    mayConfirm.forEach((a, i) => {
      if (a.status === 'fulfilled' && a.value.body === 'envelope' && a.value.envelope) {
        confirmations.push(a.value.envelope);
        applied.push(others[i] as ParticipantHandle);
      }
    });
    try {
      checkLifecycleConfirmations(
        pub,
        confirmations,
        applied.map((h) => h.info.id),
      );
    } catch (e) {
      void Promise.allSettled(
        online.map((h) =>
          h.call({ body: 'lifecycle', lifecycle: { ...base, step: LifecycleStep.ABORT } }, this.c.timeout),
        ),
      );
      throw e;
    }
    const next: KeyRecord = { keyId, epoch: pub.epoch, key: pub.key, createdAt: this.c.clock() };
    await this.#commitLifecycle('refresh', rec, next, { params, round1, authorisation, confirmations }, applied);
    return keyInfo(next);
  }

  /**
   * Scheduled refresh: refreshes every key whose current epoch is older than `maxAgeMs` (one at a
   * time). A key that cannot be refreshed now (too few participants linked) is reported, audited
   * and tried again at the next run.
   */
  async refreshDue(maxAgeMs: number): Promise<{ keyId: string; epoch?: number; error?: string }[]> {
    const out: { keyId: string; epoch?: number; error?: string }[] = [];
    const now = this.c.clock();
    for (const k of this.c.keys()) {
      if (now - k.createdAt < maxAgeMs) continue;
      try {
        out.push({ keyId: k.keyId, epoch: (await this.refresh(k.keyId, this.c.standingRefresh)).epoch });
      } catch (e) {
        out.push({ keyId: k.keyId, error: `${codeOf(e)}: ${(e as Error).message}`.slice(0, 300) });
        await this.c.audit.append({
          type: 'refresh-failed',
          data: { keyId: k.keyId, code: codeOf(e), scheduled: 'yes' },
        });
      }
    }
    return out;
  }

  /**
   * Reshares `keyId` to `threshold`-of-`participants` (ids of linked participants; old members may
   * stay, leave or be replaced), same public key. An old quorum of linked members contributes.
   */
  async reshare(
    keyId: string,
    req: { threshold: number; participants: string[]; authorisation?: Uint8Array },
  ): Promise<KeyInfo> {
    const authorisation = req.authorisation ?? new Uint8Array(0);
    const rec = this.c.key(keyId);
    const ids = [...new Set(req.participants)];
    if (ids.length < 2) throw new CoordinatorError('INVALID_ARGUMENT', 'a reshare needs at least 2 participants');
    if (!Number.isInteger(req.threshold) || req.threshold < 2 || req.threshold > ids.length)
      throw new CoordinatorError('INVALID_ARGUMENT', `threshold must be 2..${ids.length}, got ${req.threshold}`);
    const missing = ids.filter((id) => !this.c.participant(id));
    if (missing.length)
      throw new CoordinatorError(
        'UNAVAILABLE',
        `every new participant must be linked; not linked: ${missing.join(', ')}`,
      );
    const newHandles = ids.map((id) => this.c.participant(id) as ParticipantHandle);
    // Old quorum: linked old members, nodes first (phones are the likelier to drop mid-session).
    const oldOnline = rec.key.roster
      .map((r) => this.c.participant(r.id))
      .filter((h): h is ParticipantHandle => !!h)
      .sort((a, b) => Number(!!a.device) - Number(!!b.device));
    if (oldOnline.length < rec.key.threshold)
      throw new CoordinatorError(
        'UNAVAILABLE',
        `reshare needs ${rec.key.threshold} linked holders of key ${keyId}, ${oldOnline.length} linked`,
      );
    for (const h of oldOnline) await this.catchUp(h).catch(() => {});
    const contributors = oldOnline.slice(0, rec.key.threshold);
    const cfg = {
      suite: rec.key.suite,
      sessionId: this.c.rng(32),
      keyId,
      fromEpoch: rec.epoch,
      oldKey: rec.key,
      contributors: contributors.map((h) => h.info.id),
      newThreshold: req.threshold,
      newParticipants: newHandles.map((h) => h.info),
    };
    const params = encodeReshareParams(cfg);
    const base = {
      kind: 'reshare',
      keyId,
      params,
      envelopes: [] as Uint8Array[],
      oldKeyRecord: encodeKeyRecord(rec),
      epoch: rec.epoch + 1,
      authorisation,
    };
    const everyone = [...new Map([...oldOnline, ...newHandles].map((h) => [h.info.id, h])).values()];
    const round1 = [
      ...(await this.#step(contributors, { ...base, step: LifecycleStep.CONTRIBUTE }, 'envelope')).values(),
    ] as Uint8Array[];
    let pub;
    try {
      this.#checkContributions(contributors, round1, PayloadKind.RESHARE_ROUND1, reshareSessionHash(cfg));
      pub = resharePublicKey(cfg, round1);
    } catch (e) {
      void Promise.allSettled(
        everyone.map((h) =>
          h.call({ body: 'lifecycle', lifecycle: { ...base, step: LifecycleStep.ABORT } }, this.c.timeout),
        ),
      );
      throw e;
    }
    // Contributors and new participants must answer; other old members only learn of it.
    const required = everyone.filter((h) => contributors.includes(h) || ids.includes(h.info.id));
    const optional = everyone.filter((h) => !required.includes(h));
    const [answers] = await Promise.all([
      this.#step(required, { ...base, envelopes: round1, step: LifecycleStep.APPLY }, 'any'),
      Promise.allSettled(
        optional.map((h) =>
          h.call(
            { body: 'lifecycle', lifecycle: { ...base, envelopes: round1, step: LifecycleStep.APPLY } },
            this.c.timeout,
          ),
        ),
      ),
    ]);
    const confirmations = ids.map((id) => answers.get(id)).filter((x): x is Uint8Array => !!x);
    try {
      checkLifecycleConfirmations(pub, confirmations, ids);
    } catch (e) {
      void Promise.allSettled(
        everyone.map((h) =>
          h.call({ body: 'lifecycle', lifecycle: { ...base, step: LifecycleStep.ABORT } }, this.c.timeout),
        ),
      );
      throw e;
    }
    const next: KeyRecord = { keyId, epoch: pub.epoch, key: pub.key, createdAt: this.c.clock() };
    await this.#commitLifecycle('reshare', rec, next, { params, round1, authorisation, confirmations }, everyone);
    return keyInfo(next);
  }

  /**
   * The unsigned authorisation operators are asked to approve for a refresh or reshare, with the
   * participants' keys as this coordinator knows them (linked, enrolled, or in the key's roster).
   * Operators check it before they sign; every participant checks the signed one again itself.
   */
  prepare(req: PrepareRequest): Uint8Array {
    if (req.operation !== 'refresh' && req.operation !== 'reshare' && req.operation !== 'revoke')
      throw new CoordinatorError('INVALID_ARGUMENT', 'operation must be refresh, reshare or revoke');
    const ttl = req.ttlMs && req.ttlMs > 0 ? req.ttlMs : 3600_000;
    if (!Number.isSafeInteger(ttl) || ttl > 400 * 86_400_000)
      throw new CoordinatorError('INVALID_ARGUMENT', 'ttl must be at most 400 days');
    const common = {
      allowThresholdDecrease: !!req.allowThresholdDecrease,
      allowUnpinned: req.allowUnpinned ?? [],
      revoke: req.revoke ?? [],
      notAfter: this.c.clock() + ttl,
      nonce: this.c.rng(16),
    };
    if (req.operation === 'revoke') {
      if (!common.revoke.length)
        throw new CoordinatorError('INVALID_ARGUMENT', 'a revocation names at least one device');
      return encodeAuthorisation({
        keyId: '*',
        operation: 'revoke',
        fromEpoch: 0,
        anyEpoch: false,
        newThreshold: 0,
        newParticipants: [],
        ...common,
      });
    }
    if (req.operation === 'refresh') {
      const anyEpoch = !!req.anyEpoch;
      const fromEpoch = req.keyId === '*' ? 0 : this.c.key(req.keyId).epoch;
      if (req.keyId === '*' && !anyEpoch)
        throw new CoordinatorError(
          'INVALID_ARGUMENT',
          'a refresh authorisation for every key must be a standing one (anyEpoch)',
        );
      return encodeAuthorisation({
        keyId: req.keyId,
        operation: 'refresh',
        fromEpoch,
        anyEpoch,
        newThreshold: 0,
        newParticipants: [],
        ...common,
      });
    }
    const rec = this.c.key(req.keyId);
    const ids = [...new Set(req.participants ?? [])];
    const find = (id: string): ParticipantPublic | undefined =>
      this.c.participant(id)?.info ?? this.c.device(id) ?? rec.key.roster.find((r) => r.id === id);
    const unknown = ids.filter((id) => !find(id));
    if (unknown.length)
      throw new CoordinatorError('UNAVAILABLE', `participants never seen by this coordinator: ${unknown.join(', ')}`);
    const newParticipants = ids.map((id) => {
      const p = find(id) as ParticipantPublic;
      return { id: p.id, signKey: p.signKey, encKey: p.encKey, ...(p.device ? { device: true } : {}) };
    });
    return encodeAuthorisation({
      keyId: req.keyId,
      operation: 'reshare',
      fromEpoch: rec.epoch,
      anyEpoch: false,
      newThreshold: req.threshold ?? 0,
      newParticipants,
      ...common,
    });
  }
}

/** A committed lifecycle session as stored for late participants (`lifecycle/<key>/<epoch>`). */
interface StoredSession {
  kind: 'refresh' | 'reshare';
  params: string;
  envelopes: string[];
  oldKey: string;
  /** The operators' ApprovedAuthorisation (hex; empty in sessions stored before authorisations). */
  authorisation: string;
  /** The confirmations the commit carried. */
  confirmations: string[];
  /** Activation acknowledgements collected so far. */
  acks: string[];
}

function encodeSession(s: StoredSession): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(s));
}

function decodeSession(raw: Uint8Array): StoredSession {
  const j = JSON.parse(new TextDecoder().decode(raw)) as Partial<StoredSession> &
    Pick<StoredSession, 'kind' | 'params' | 'envelopes' | 'oldKey'>;
  return { ...j, authorisation: j.authorisation ?? '', confirmations: j.confirmations ?? [], acks: j.acks ?? [] };
}

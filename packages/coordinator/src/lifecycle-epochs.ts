/**
 * The epochs of a key's lifecycle, as the coordinator moves participants through them: one step
 * sent to many participants (all must answer, or the session aborts everywhere), the commit of a
 * new epoch (stored first, then activated by each participant on the confirmations), retirement
 * of the previous epoch once enough participants acknowledged the new one, and catch-up of a
 * participant that was offline, from the stored sessions. `LifecycleService` (./lifecycle.ts)
 * runs refresh and reshare on top of this.
 */
import {
  LifecycleStep,
  checkLifecycleConfirmations,
  decodeKeyRecord,
  decodeRefreshParams,
  decodeReshareParams,
  encodeKeyRecord,
  fromHex,
  groupPublicKey,
  refreshPublicKey,
  resharePublicKey,
  retirementQuorum,
  toHex,
  type KeyRecord,
  type LinkTask,
  type ParticipantPublic,
  type Rng,
} from '@tessera/core';
import type { AuditLog, SealedKV } from '@tessera/store';
import { layout } from './layout.js';
import type { EcdsaService } from './ecdsa.js';
import { CoordinatorError, type CoordinatorEvent, type KeyInfo, type ParticipantHandle } from './types.js';

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
  /** ECDSA sessions: a reshared ECDSA key's new roster sets its pairs up. */
  readonly ecdsa: Pick<EcdsaService, 'setup'>;
}

/** One lifecycle task as sent to participants (the step is set per call). */
export type LifecycleTask = Omit<NonNullable<LinkTask['lifecycle']>, 'step'>;

/** What a committed session stores for participants that apply it later. */
export interface SessionRecord {
  params: Uint8Array;
  round1: Uint8Array[];
  authorisation: Uint8Array;
  confirmations: Uint8Array[];
}

export class LifecycleEpochs {
  constructor(private readonly c: LifecycleComponents) {}

  /** Sends one lifecycle step to each handle; all must answer with `want`. */
  async step(
    handles: ParticipantHandle[],
    task: LifecycleTask & { step: LifecycleStep },
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
      this.abort(handles, task);
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

  /** Tells `handles` to drop the session's pending state (best effort, not awaited). */
  abort(handles: ParticipantHandle[], task: LifecycleTask): void {
    void Promise.allSettled(
      handles.map((h) =>
        h.call({ body: 'lifecycle', lifecycle: { ...task, step: LifecycleStep.ABORT } }, this.c.timeout),
      ),
    );
  }

  /**
   * Stores the committed key and the session (params, contributions, authorisation and the
   * confirmations, for participants that apply it later), then commits on the online
   * participants: each activates only with the confirmations of its own pending outcome and
   * answers with a signed activation acknowledgement. With min(n', 2t'−1) of those, every
   * participant is told to retire the previous epoch (dropped there after its retention time).
   */
  async commit(
    kind: 'refresh' | 'reshare',
    rec: KeyRecord,
    next: KeyRecord,
    session: SessionRecord,
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

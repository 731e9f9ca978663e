/**
 * A key holder's pairwise setup of an ECDSA key (DKLs23 setup), once per key and roster, as a
 * two-phase commit (./setup-done.ts) — the one state machine of it, shared by the signer node
 * (over its sealed LevelDB) and the device (over its sealed store):
 *
 * - steps 1–3: the setup's rounds. A session id is used once here, ever: it is written (synced)
 *   at step 1 before the first message leaves, so a coordinator cannot run one session twice and
 *   have members store pairs of different runs under one id. Step 3 stores this holder's pairs as
 *   *pending* (synced) and answers with its signed word that it did (ECDSA_SETUP_DONE: its yes);
 * - step 4: with every roster member's word for the same session, the pending pairs become the
 *   ones this holder presigns with (one synced batch, audited); after that, pair states are never
 *   replaced on the coordinator's word (KEY_EXISTS);
 * - step 5: this holder's word again, for the session it holds (pending or in use): how a setup
 *   that ended after some members' step 4 and before the others' is finished;
 * - step 6: an abort of a session this holder did not give its word for (ECDSA_SETUP_ABORT: its
 *   no), written (synced) before it leaves: it will never give it. A holder that gave its word
 *   for a session keeps those pairs until they are in use, or until a new setup's step 1 brings
 *   another member's abort of that session — so no member can be left holding a session the
 *   others dropped.
 *
 * Every step of a key runs under one lock. A setup that breaks off anywhere therefore leaves
 * either a member that never gave its word (its abort lets the others set up again) or every
 * member's word (the session is finished); before, a break between members' step 3 left some
 * with pairs in use and others without, and the roster could never be set up again.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import {
  TesseraError,
  equalBytes,
  fromHex,
  groupPublicKey,
  toHex,
  utf8ToBytes,
  type ErrorCode,
  type KeyShareRecord,
  type LinkTask,
  type ParticipantIdentity,
  type Rng,
} from '@tessera/core';
import { SetupSession, rosterIndex, type EcdsaKeyView } from './session.js';
import { hasSetupAbort, setupAbort, setupDone, verifySetupDone } from './setup-done.js';
import { decodePairs, encodePairs, type PairRecords } from './wire.js';

declare const TextDecoder: new () => { decode(b: Uint8Array): string };

export type EcdsaTask = NonNullable<LinkTask['ecdsa']>;
export type EcdsaAnswer = { envelopes: Uint8Array[] } | { envelope: Uint8Array } | { ok: true };

/** A refusal of a setup step (a stable code; the holder maps it to its wire error). */
const refuse = (code: ErrorCode, message: string) => new TesseraError(code, message);

/** The pair states of `keyId` in use for one roster (a reshare's new roster sets its pairs up again). */
const pairsKey = (keyId: string, roster: string) => `ecdsa/pairs/${keyId}/${roster}`;
/** The setup session whose pairs are in use (absent for pairs of the first release: in use). */
const sessionKey = (keyId: string, roster: string) => `ecdsa/setup/${keyId}/${roster}`;
/** Pairs stored by step 3, not yet in use: the session id (32 bytes) and the pairs. */
const pendingKey = (keyId: string, roster: string) => `ecdsa/pending/${keyId}/${roster}`;
/** A setup session id used here (step 1, or aborted before it came): never used again. */
const usedKey = (keyId: string, session: string) => `ecdsa/setup-id/${keyId}.${session}`;
/** A session this holder signed an abort of: it never stores that session's pairs. */
const abortKey = (keyId: string, session: string) => `ecdsa/setup-abort/${keyId}.${session}`;
/** What each of this holder's pairs exchanged in its pending or in-use session (JSON: session, digests by peer). */
const transcriptsKey = (keyId: string, roster: string) => `ecdsa/transcripts/${keyId}/${roster}`;
/** The words that put a session in use here, and that the activation was audited (evidence, kept). */
const wordsKey = (keyId: string, roster: string) => `ecdsa/setup-words/${keyId}/${roster}`;
const auditedKey = (keyId: string, roster: string) => `ecdsa/setup-audited/${keyId}/${roster}`;
/** An abort that made this holder drop pending pairs (evidence, kept). */
const droppedKey = (keyId: string, session: string) => `ecdsa/setup-dropped/${keyId}.${session}`;
/** Where the first version kept a key's one set of pairs (read when it fits the roster). */
const legacyPairsKey = (keyId: string) => `ecdsa/pairs/${keyId}`;
/** A roster's tag: its members and their identifiers (the protocol indices follow from them). */
const rosterTag = (key: EcdsaKeyView) =>
  toHex(sha256(utf8ToBytes(key.roster.map((r) => `${r.id}:${r.identifier}`).join(',')))).slice(0, 32);

/** The public facts of an ECDSA key a session needs, from a share record or a key's public record. */
export function keyView(rec: Pick<KeyShareRecord, 'keyId' | 'epoch' | 'key'>): EcdsaKeyView {
  if (rec.key.suite.scheme !== 'ecdsa')
    throw refuse('WRONG_SUITE', `key ${rec.keyId} is ${rec.key.suite.id}, not an ECDSA key`);
  return {
    keyId: rec.keyId,
    epoch: rec.epoch,
    threshold: rec.key.threshold,
    suite: rec.key.suite,
    roster: rec.key.roster,
    publicKey: groupPublicKey(rec.key),
  };
}

/** The first envelope of `messages` that is another member's abort of `pending`'s session. */
function abortFor(key: EcdsaKeyView, pending: Uint8Array, messages: readonly Uint8Array[], me: string): Uint8Array {
  const session = pending.subarray(0, 32);
  return messages.find((m) => hasSetupAbort(key, session, me, [m])) ?? new Uint8Array(0);
}

/** A holder's sealed store as the setup uses it: reads, and atomic writes durable before they resolve. */
export interface SetupStore {
  get(key: string): Promise<Uint8Array | undefined>;
  batch(
    ops: readonly ({ type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string })[],
  ): Promise<void>;
}

export interface EcdsaSetupContext {
  readonly identity: ParticipantIdentity;
  readonly store: SetupStore;
  readonly rng: Rng;
  /** Appends to the holder's audit chain (a device without one may log it or do nothing). */
  audit(entry: { type: string; actor: string; data: Record<string, string | number> }): Promise<void>;
  key(keyId: string): Promise<KeyShareRecord>;
}

export class EcdsaSetups {
  readonly #ctx: EcdsaSetupContext;
  readonly #open = new Map<string, { session: string; s: SetupSession; busy: boolean }>();
  /** One step of a key at a time (reads and writes of its setup state). */
  readonly #locks = new Map<string, Promise<unknown>>();

  constructor(ctx: EcdsaSetupContext) {
    this.#ctx = ctx;
  }

  /** The pair states in use for `key`'s roster, if any (pairs do not depend on the shares). */
  async pairs(key: EcdsaKeyView): Promise<PairRecords | undefined> {
    const b = await this.#ctx.store.get(pairsKey(key.keyId, rosterTag(key)));
    if (b) return decodePairs(b);
    const legacy = await this.#ctx.store.get(legacyPairsKey(key.keyId));
    if (!legacy) return undefined;
    const r = decodePairs(legacy);
    const me = rosterIndex(key, this.#ctx.identity.id);
    const fits =
      r.me === me &&
      r.pairs.size === key.roster.length - 1 &&
      key.roster.every((m, i) => m.id === this.#ctx.identity.id || r.pairs.get(m.id)?.peer === i + 1);
    return fits ? r : undefined;
  }

  /** Forgets the open setup rounds (a new coordinator link); what is stored stays. */
  drop(): void {
    this.#open.clear();
  }

  async task(t: EcdsaTask): Promise<EcdsaAnswer> {
    // A round runs for seconds: a second step of the same setup meanwhile is refused, not queued.
    if ((t.step === 2 || t.step === 3) && this.#open.get(t.keyId)?.busy)
      throw refuse('INVALID_STATE', `an ECDSA setup step of key ${t.keyId} is running`);
    const prev = this.#locks.get(t.keyId) ?? Promise.resolve();
    const run = prev.then(
      () => this.#step(t),
      () => this.#step(t),
    );
    const tail = run.catch(() => {});
    this.#locks.set(t.keyId, tail);
    void tail.then(() => {
      if (this.#locks.get(t.keyId) === tail) this.#locks.delete(t.keyId);
    });
    return run;
  }

  async #step(t: EcdsaTask): Promise<EcdsaAnswer> {
    const key = keyView(await this.#ctx.key(t.keyId));
    if (t.step === 1) return this.#start(key, t);
    if (t.step === 4) return this.#activate(key, t);
    if (t.step === 5) return this.#word(key);
    if (t.step === 6) return this.#abort(key, t);
    if (t.step !== 2 && t.step !== 3) throw refuse('INVALID_ARGUMENT', `ECDSA setup has no step ${t.step}`);
    const session = toHex(t.session);
    const open = this.#open.get(t.keyId);
    if (!open || open.session !== session)
      throw refuse('INVALID_STATE', `no ECDSA setup session ${session.slice(0, 16)}… for key ${t.keyId}`);
    open.busy = true;
    try {
      if (t.step === 2) {
        const envelopes = await open.s.step2(t.messages);
        open.busy = false;
        return { envelopes };
      }
      const records = await open.s.step3(t.messages);
      this.#open.delete(t.keyId);
      const of = open.s.key;
      if (await this.pairs(of)) throw refuse('KEY_EXISTS', `key ${t.keyId} is already set up`);
      if (await this.#ctx.store.get(abortKey(t.keyId, session)))
        throw refuse('INVALID_STATE', `this holder aborted ECDSA setup session ${session.slice(0, 16)}…`);
      // Pending (synced) before the word leaves: a member that says it stored them has. With what
      // each pair exchanged, which the word carries and step 4 compares.
      const transcripts = open.s.transcripts();
      const tag = rosterTag(of);
      await this.#ctx.store.batch([
        {
          type: 'put',
          key: pendingKey(t.keyId, tag),
          value: new Uint8Array([...t.session, ...encodePairs(records)]),
        },
        {
          type: 'put',
          key: transcriptsKey(t.keyId, tag),
          value: utf8ToBytes(
            JSON.stringify({
              session,
              pairs: Object.fromEntries([...transcripts].map(([id, d]) => [id, toHex(d)])),
            }),
          ),
        },
      ]);
      return { envelope: setupDone(this.#ctx.identity, of, t.session, transcripts) };
    } catch (e) {
      this.#open.delete(t.keyId);
      throw e;
    }
  }

  /**
   * Step 1: a new session, never used here before. With pending pairs of a session this holder gave
   * its word for, only on another member's abort of that session (in `t.messages`): the pending
   * pairs are dropped in the write that marks the new session used.
   */
  async #start(key: EcdsaKeyView, t: EcdsaTask): Promise<EcdsaAnswer> {
    if (await this.pairs(key))
      throw refuse('KEY_EXISTS', `key ${t.keyId} is already set up for ECDSA signing by this roster`);
    const session = toHex(t.session);
    if (await this.#ctx.store.get(usedKey(t.keyId, session)))
      throw refuse('INVALID_STATE', `ECDSA setup session ${session.slice(0, 16)}… was already used here`);
    const pendingAt = pendingKey(key.keyId, rosterTag(key));
    const pending = await this.#ctx.store.get(pendingAt);
    if (pending) {
      const held = pending.subarray(0, 32);
      if (!hasSetupAbort(key, held, this.#ctx.identity.id, t.messages))
        throw refuse(
          'FAILED_PRECONDITION',
          `this holder gave its word for ECDSA setup session ${toHex(held).slice(0, 16)}… of key ${t.keyId}: a new setup needs another member's abort of it`,
        );
    }
    const held = pending ? toHex(pending.subarray(0, 32)) : '';
    await this.#ctx.store.batch([
      { type: 'put', key: usedKey(t.keyId, session), value: new Uint8Array([1]) },
      ...(pending
        ? [
            { type: 'del' as const, key: pendingAt },
            { type: 'del' as const, key: transcriptsKey(key.keyId, rosterTag(key)) },
            // The abort that let it go: with a word of the same member for that session
            // elsewhere, proof that the member signed both.
            {
              type: 'put' as const,
              key: droppedKey(key.keyId, held),
              value: abortFor(key, pending, t.messages, this.#ctx.identity.id),
            },
          ]
        : []),
    ]);
    if (pending)
      await this.#ctx.audit({
        type: 'ecdsa-setup-dropped',
        actor: this.#ctx.identity.id,
        data: { keyId: key.keyId, epoch: key.epoch, session: held },
      });
    const s = new SetupSession({ identity: this.#ctx.identity, key, session: t.session, rng: this.#ctx.rng });
    this.#open.set(t.keyId, { session, s, busy: false });
    return { envelopes: s.step1() };
  }

  /** Step 4: the pending pairs of `t.session` in use, on every roster member's word for it. */
  async #activate(key: EcdsaKeyView, t: EcdsaTask): Promise<EcdsaAnswer> {
    const tag = rosterTag(key);
    if (await this.pairs(key)) {
      const inUse = await this.#ctx.store.get(sessionKey(key.keyId, tag));
      // Step 4 again for the session in use (a coordinator finishing a setup): nothing to do but
      // the audit entry, if a crash came between the activation and its entry.
      if (inUse && equalBytes(inUse, t.session)) {
        await this.#audited(key, t.session);
        return { ok: true };
      }
      throw refuse('KEY_EXISTS', `key ${key.keyId} is already set up for ECDSA signing by this roster`);
    }
    const pending = await this.#ctx.store.get(pendingKey(key.keyId, tag));
    if (!pending || !equalBytes(pending.subarray(0, 32), t.session))
      throw refuse(
        'INVALID_STATE',
        `no pending ECDSA setup session ${toHex(t.session).slice(0, 16)}… of key ${key.keyId} here`,
      );
    verifySetupDone(key, t.session, t.messages, {
      id: this.#ctx.identity.id,
      transcripts: await this.#transcripts(key, t.session),
    });
    const pairs = pending.subarray(32);
    await this.#ctx.store.batch([
      { type: 'put', key: pairsKey(key.keyId, tag), value: pairs },
      { type: 'put', key: sessionKey(key.keyId, tag), value: t.session },
      { type: 'put', key: wordsKey(key.keyId, tag), value: utf8ToBytes(JSON.stringify(t.messages.map(toHex))) },
      { type: 'del', key: pendingKey(key.keyId, tag) },
    ]);
    await this.#audited(key, t.session);
    return { ok: true };
  }

  /** Step 5: this holder's word for the setup session it holds for `key`'s roster. */
  async #word(key: EcdsaKeyView): Promise<EcdsaAnswer> {
    const tag = rosterTag(key);
    const inUse = (await this.pairs(key)) ? await this.#ctx.store.get(sessionKey(key.keyId, tag)) : undefined;
    const session = inUse ?? (await this.#ctx.store.get(pendingKey(key.keyId, tag)))?.subarray(0, 32);
    if (!session) throw refuse('NOT_FOUND', `no ECDSA setup of key ${key.keyId} for this roster is stored here`);
    return { envelope: setupDone(this.#ctx.identity, key, session, await this.#transcripts(key, session)) };
  }

  /** What this holder's pairs exchanged in `session` (empty if it stored none for it). */
  async #transcripts(key: EcdsaKeyView, session: Uint8Array): Promise<Map<string, Uint8Array>> {
    const raw = await this.#ctx.store.get(transcriptsKey(key.keyId, rosterTag(key)));
    if (!raw) return new Map();
    const t = JSON.parse(new TextDecoder().decode(raw)) as { session: string; pairs: Record<string, string> };
    return t.session === toHex(session)
      ? new Map(Object.entries(t.pairs).map(([id, d]) => [id, fromHex(d)]))
      : new Map();
  }

  /** The activation's audit entry, once (a marker written after it). */
  async #audited(key: EcdsaKeyView, session: Uint8Array): Promise<void> {
    const tag = rosterTag(key);
    if (await this.#ctx.store.get(auditedKey(key.keyId, tag))) return;
    const pairs = (await this.pairs(key))?.pairs.keys() ?? [];
    await this.#ctx.audit({
      type: 'ecdsa-setup',
      actor: this.#ctx.identity.id,
      data: { keyId: key.keyId, epoch: key.epoch, session: toHex(session), pairs: [...pairs].join(',') },
    });
    await this.#ctx.store.batch([{ type: 'put', key: auditedKey(key.keyId, tag), value: new Uint8Array([1]) }]);
  }

  /** Step 6: this holder's abort of `t.session`, which it did not give its word for (and never will). */
  async #abort(key: EcdsaKeyView, t: EcdsaTask): Promise<EcdsaAnswer> {
    const tag = rosterTag(key);
    if (await this.pairs(key))
      throw refuse('KEY_EXISTS', `key ${key.keyId} is already set up for ECDSA signing by this roster`);
    const pending = await this.#ctx.store.get(pendingKey(key.keyId, tag));
    if (pending && equalBytes(pending.subarray(0, 32), t.session))
      throw refuse(
        'FAILED_PRECONDITION',
        `this holder gave its word for ECDSA setup session ${toHex(t.session).slice(0, 16)}…: it does not abort it`,
      );
    const session = toHex(t.session);
    // Written before the abort leaves: this holder never starts or stores that session afterwards.
    await this.#ctx.store.batch([
      { type: 'put', key: abortKey(key.keyId, session), value: new Uint8Array([1]) },
      { type: 'put', key: usedKey(key.keyId, session), value: new Uint8Array([1]) },
    ]);
    if (this.#open.get(key.keyId)?.session === session) this.#open.delete(key.keyId);
    return { envelope: setupAbort(this.#ctx.identity, key, t.session) };
  }
}

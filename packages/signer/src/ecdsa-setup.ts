/**
 * The pairwise setup of an ECDSA key on a signer node (DKLs23 setup, `@tessera/ecdsa`), once per
 * key and roster, in two phases:
 *
 * - steps 1–3: the setup's rounds; step 3 stores this node's pairs as *pending* (synced) and
 *   answers with its signed word that it did (an ECDSA_SETUP_DONE envelope);
 * - step 4: with every roster member's word for the same session, the pending pairs become the
 *   ones this node presigns with (one synced batch, audited). Until then a later setup replaces
 *   them; after, pair states are never replaced on the coordinator's word (KEY_EXISTS);
 * - step 5: this node's word again, for the session it holds (pending or in use): how a setup
 *   that ended after some members' step 4 and before the others' is finished.
 *
 * So a setup that breaks off anywhere leaves either nobody using its pairs (it runs again) or
 * every member able to finish it; before, a break between members' step 3 left some with pairs
 * in use and others without, and the roster could never be set up again.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import {
  equalBytes,
  groupPublicKey,
  toHex,
  utf8ToBytes,
  type KeyShareRecord,
  type LinkTask,
  type ParticipantIdentity,
  type Rng,
} from '@tessera/core';
import {
  SetupSession,
  decodePairs,
  encodePairs,
  rosterIndex,
  setupDone,
  verifySetupDone,
  type EcdsaKeyView,
  type PairRecords,
} from '@tessera/ecdsa';
import type { AuditLog, SealedKV } from '@tessera/store';
import { SignerError } from './errors.js';

type EcdsaTask = NonNullable<LinkTask['ecdsa']>;
export type EcdsaAnswer = { envelopes: Uint8Array[] } | { envelope: Uint8Array } | { ok: true };

/** The pair states of `keyId` in use for one roster (a reshare's new roster sets its pairs up again). */
const pairsKey = (keyId: string, roster: string) => `ecdsa/pairs/${keyId}/${roster}`;
/** The setup session whose pairs are in use (absent for pairs of the first release: in use). */
const sessionKey = (keyId: string, roster: string) => `ecdsa/setup/${keyId}/${roster}`;
/** Pairs stored by step 3, not yet in use: the session id (32 bytes) and the pairs. */
const pendingKey = (keyId: string, roster: string) => `ecdsa/pending/${keyId}/${roster}`;
/** Where the first version kept a key's one set of pairs (read when it fits the roster). */
const legacyPairsKey = (keyId: string) => `ecdsa/pairs/${keyId}`;
/** A roster's tag: its members and their identifiers (the protocol indices follow from them). */
const rosterTag = (key: EcdsaKeyView) =>
  toHex(sha256(utf8ToBytes(key.roster.map((r) => `${r.id}:${r.identifier}`).join(',')))).slice(0, 32);

/** The public facts of an ECDSA key a session needs, from this node's share record. */
export function view(rec: KeyShareRecord): EcdsaKeyView {
  if (rec.key.suite.scheme !== 'ecdsa')
    throw new SignerError('WRONG_SUITE', `key ${rec.keyId} is ${rec.key.suite.id}, not an ECDSA key`);
  return {
    keyId: rec.keyId,
    epoch: rec.epoch,
    threshold: rec.key.threshold,
    suite: rec.key.suite,
    roster: rec.key.roster,
    publicKey: groupPublicKey(rec.key),
  };
}

export interface EcdsaSetupContext {
  readonly identity: ParticipantIdentity;
  readonly audit: AuditLog;
  readonly store: SealedKV;
  readonly rng: Rng;
  key(keyId: string): Promise<KeyShareRecord>;
}

export class EcdsaSetups {
  readonly #ctx: EcdsaSetupContext;
  readonly #open = new Map<string, { session: string; s: SetupSession; busy: boolean }>();
  /** Keys whose step 4 is between its checks and its write. */
  readonly #activating = new Set<string>();

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
    const key = view(await this.#ctx.key(t.keyId));
    const session = toHex(t.session);
    if (t.step === 1) {
      // Once per key and roster: pair states in use are never replaced on the coordinator's word.
      // A new roster (an authorised reshare, committed here) is set up anew, under its epoch;
      // pending pairs (no word from every member yet) are replaced by a setup that gets further.
      if (await this.pairs(key))
        throw new SignerError('KEY_EXISTS', `key ${t.keyId} is already set up for ECDSA signing by this roster`);
      if (this.#open.get(t.keyId)?.busy)
        throw new SignerError('INVALID_STATE', `an ECDSA setup of key ${t.keyId} is running`);
      const s = new SetupSession({ identity: this.#ctx.identity, key, session: t.session, rng: this.#ctx.rng });
      this.#open.set(t.keyId, { session, s, busy: false });
      return { envelopes: s.step1() };
    }
    if (t.step === 4) return this.#activate(key, t);
    if (t.step === 5) return this.#word(key);
    const open = this.#open.get(t.keyId);
    if (!open || open.session !== session)
      throw new SignerError('INVALID_STATE', `no ECDSA setup session ${session.slice(0, 16)}… for key ${t.keyId}`);
    // A round runs for seconds and yields meanwhile: another step of the setup waits its turn.
    if (open.busy) throw new SignerError('INVALID_STATE', `an ECDSA setup step of key ${t.keyId} is running`);
    open.busy = true;
    try {
      if (t.step === 2) {
        const envelopes = await open.s.step2(t.messages);
        open.busy = false;
        return { envelopes };
      }
      if (t.step !== 3) throw new SignerError('INVALID_ARGUMENT', `ECDSA setup has no step ${t.step}`);
      const records = await open.s.step3(t.messages);
      this.#open.delete(t.keyId);
      const of = open.s.key;
      if (await this.pairs(of)) throw new SignerError('KEY_EXISTS', `key ${t.keyId} is already set up`);
      // Pending (synced) before the word leaves: a member that says it stored them has.
      await this.#ctx.store.put(
        pendingKey(t.keyId, rosterTag(of)),
        new Uint8Array([...t.session, ...encodePairs(records)]),
        {
          sync: true,
        },
      );
      return { envelope: setupDone(this.#ctx.identity, of, t.session) };
    } catch (e) {
      this.#open.delete(t.keyId);
      throw e;
    }
  }

  /** Step 4: the pending pairs of `t.session` in use, on every roster member's word for it. */
  async #activate(key: EcdsaKeyView, t: EcdsaTask): Promise<EcdsaAnswer> {
    const tag = rosterTag(key);
    if (await this.pairs(key)) {
      const inUse = await this.#ctx.store.get(sessionKey(key.keyId, tag));
      // Step 4 again for the session in use (a coordinator finishing a setup): nothing to do.
      if (inUse && equalBytes(inUse, t.session)) return { ok: true };
      throw new SignerError('KEY_EXISTS', `key ${key.keyId} is already set up for ECDSA signing by this roster`);
    }
    const pending = await this.#ctx.store.get(pendingKey(key.keyId, tag));
    if (!pending || !equalBytes(pending.subarray(0, 32), t.session))
      throw new SignerError(
        'INVALID_STATE',
        `no pending ECDSA setup session ${toHex(t.session).slice(0, 16)}… of key ${key.keyId} here`,
      );
    if (this.#activating.has(key.keyId))
      throw new SignerError('INVALID_STATE', `an ECDSA setup of key ${key.keyId} is being activated`);
    this.#activating.add(key.keyId);
    try {
      verifySetupDone(key, t.session, t.messages);
      const pairs = pending.subarray(32);
      await this.#ctx.store.batch(
        [
          { type: 'put', key: pairsKey(key.keyId, tag), value: pairs },
          { type: 'put', key: sessionKey(key.keyId, tag), value: t.session },
          { type: 'del', key: pendingKey(key.keyId, tag) },
        ],
        { sync: true },
      );
      await this.#ctx.audit.append({
        type: 'ecdsa-setup',
        actor: this.#ctx.identity.id,
        data: { keyId: key.keyId, epoch: key.epoch, pairs: [...decodePairs(pairs).pairs.keys()].join(',') },
      });
      return { ok: true };
    } finally {
      this.#activating.delete(key.keyId);
    }
  }

  /** Step 5: this node's word for the setup session it holds for `key`'s roster. */
  async #word(key: EcdsaKeyView): Promise<EcdsaAnswer> {
    const tag = rosterTag(key);
    const inUse = (await this.pairs(key)) ? await this.#ctx.store.get(sessionKey(key.keyId, tag)) : undefined;
    const session = inUse ?? (await this.#ctx.store.get(pendingKey(key.keyId, tag)))?.subarray(0, 32);
    if (!session)
      throw new SignerError('NOT_FOUND', `no ECDSA setup of key ${key.keyId} for this roster is stored here`);
    return { envelope: setupDone(this.#ctx.identity, key, session) };
  }
}

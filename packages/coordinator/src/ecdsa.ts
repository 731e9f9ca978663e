/**
 * Threshold ECDSA sessions (DKLs23, `@tessera/ecdsa`) as the coordinator runs them: it relays
 * sealed messages between signers and learns nothing it could sign with.
 * - `setup`: after the DKG of an ecdsa-secp256k1 key, every roster member sets up its pairs
 *   (three steps); the key is registered only when all have.
 * - `attempt`: one signature by a quorum: a presignature from the pool of that signer set, or three
 *   presigning steps now (the presignature ends in each signer's nonce ledger; all must state the
 *   same R); then the sign request with the requester's intent (one round trip); the partials are
 *   combined and checked with the plain verifier (recovery id included). After a signature the
 *   set's pool is topped up in the background, so the next one is a single round trip.
 * Routing reads only the envelopes' clear fields (sender, recipient); an envelope a signer's link
 * carried that is not signed by that signer, or is addressed outside the session, excludes it.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import {
  PayloadKind,
  decodeMessage,
  deriveKey,
  equalBytes,
  groupPublicKey,
  readEnvelope,
  utf8ToBytes,
  type KeyRecord,
  type LinkResult,
  type OpenedIntent,
  type Rng,
} from '@tessera/core';
import {
  combine,
  decodePartial,
  decodePresigned,
  encodeEcdsaSignRequest,
  rosterIndex,
  type PartialSignature,
  type Presigned,
} from '@tessera/ecdsa';
import type { Participants } from './participants.js';
import { CoordinatorError, codeOf, type CoordinatorEvent, type ParticipantHandle } from './types.js';

export interface EcdsaComponents {
  readonly rng: Rng;
  readonly timeout: number;
  readonly participants: Participants;
  /** The key's current epoch (the registry's): work begun for an older epoch stops. */
  epochOf?(keyId: string): number | undefined;
  onEvent(e: CoordinatorEvent): void;
}

/** The least time a setup step may take (its base OTs are seconds of work per key). */
const SETUP_TIMEOUT_MS = 60_000;

/** Signers excluded from further quorums of one request, with why ("BAD_…" names a culprit). */
type Excluded = Map<string, string>;

/** One step's outcome: every member's answer, or who failed and why. */
type StepOutcome = { ok: true; results: Map<string, LinkResult> } | { ok: false; failed: Map<string, string> };

/** Presignatures kept ahead per key and signer set (made after a signature, in the background). */
const POOL_TARGET = 4;
const poolKey = (rec: KeyRecord, signers: readonly string[]) => `${rec.keyId}|${signers.join(',')}`;

export class EcdsaService {
  /** Presignatures made ahead (all signers of the set hold theirs), by key and signer set. */
  readonly #pool = new Map<string, Presigned[]>();
  readonly #filling = new Set<string>();
  /** Setups running, by key and epoch (two signatures that both need one share it). */
  readonly #setups = new Map<string, Promise<void>>();

  constructor(private readonly c: EcdsaComponents) {}

  /**
   * The pairwise setup of an ECDSA key's roster (after its DKG, or a reshare to a new roster);
   * throws naming who failed. Members that already hold pairs for this roster refuse a second
   * setup (`KEY_EXISTS`): when all of them do, the roster is set up and this is done.
   */
  setup(rec: KeyRecord): Promise<void> {
    const k = `${rec.keyId}@${rec.epoch}`;
    const running = this.#setups.get(k);
    if (running) return running;
    const p = this.#runSetup(rec).finally(() => this.#setups.delete(k));
    this.#setups.set(k, p);
    return p;
  }

  async #runSetup(rec: KeyRecord): Promise<void> {
    const ids = rec.key.roster.map((r) => r.id);
    const session = this.c.rng(32);
    let inbox = new Map<string, Uint8Array[]>();
    for (const step of [1, 2, 3]) {
      const out = await this.#step(rec, 'setup', step, session, ids, inbox, step === 3 ? 'ok' : 'ecdsa');
      if (!out.ok && step === 1 && [...out.failed.values()].every((code) => code === 'KEY_EXISTS')) {
        if (out.failed.size === ids.length) return;
        throw new CoordinatorError(
          'FAILED_PRECONDITION',
          `ECDSA setup of key ${rec.keyId}: ${[...out.failed.keys()].join(', ')} hold pairs for this roster and the others do not`,
        );
      }
      if (!out.ok) {
        const why = [...out.failed].map(([id, code]) => `${id}: ${code}`).join('; ');
        const culprits = [...out.failed].filter(([, code]) => code.startsWith('BAD_')).map(([id]) => id);
        // A named culprit's failure is "BAD_… <the reporter's code> (reported by …)": that code.
        const first = [...out.failed.values()].find((c) => c.startsWith('BAD_')) ?? [...out.failed.values()][0];
        throw new CoordinatorError(
          ((culprits.length ? first?.split(' ')[1] : first?.split(' ')[0]) ?? 'INTERNAL') as string,
          `ECDSA setup of key ${rec.keyId} failed (${why})`,
          culprits,
        );
      }
      if (step < 3)
        try {
          inbox = this.#route(rec, ids, out.results);
        } catch (e) {
          const failed = (e as { failed: Map<string, string> }).failed;
          throw new CoordinatorError('UNEXPECTED_MESSAGE', `ECDSA setup of key ${rec.keyId} failed`, [
            ...failed.keys(),
          ]);
        }
    }
  }

  /**
   * One signing attempt by `quorum`: the signature (r ‖ s ‖ v), or undefined after excluding
   * whoever failed (another quorum may then be tried).
   */
  async attempt(
    rec: KeyRecord,
    intentBytes: Uint8Array,
    intent: OpenedIntent,
    quorum: readonly string[],
    excluded: Excluded,
    usePool = true,
  ): Promise<Uint8Array | undefined> {
    if (intent.message.length !== 32)
      throw new CoordinatorError('INVALID_ARGUMENT', 'an ECDSA intent signs a 32-byte digest');
    const signers = [...quorum].sort((a, b) => rosterIndex(rec.key, a) - rosterIndex(rec.key, b));
    const k = poolKey(rec, signers);
    const pooled = usePool ? this.#take(k, rec.epoch) : undefined;
    const presigned = pooled ?? (await this.#presign(rec, signers, excluded));
    if (!presigned) return undefined;
    const sig = await this.#sign(rec, intentBytes, intent, signers, presigned, excluded, !!pooled);
    // A pooled presignature a signer no longer holds (it restarted or relinked: unused ones are
    // discarded then): the pool is stale, so drop it and presign now, once.
    if (sig === 'stale') {
      this.#pool.delete(k);
      return this.attempt(rec, intentBytes, intent, quorum, excluded, false);
    }
    if (sig) this.#refill(rec, signers);
    return sig;
  }

  /** Whether the key has moved past `rec`'s epoch (a reshare or refresh committed meanwhile). */
  #stale(rec: KeyRecord): boolean {
    const now = this.c.epochOf?.(rec.keyId);
    return now !== undefined && now !== rec.epoch;
  }

  /** Presignatures on hand for `rec` at its epoch and this signer set. */
  pooled(rec: KeyRecord, signers: readonly string[]): number {
    return (this.#pool.get(poolKey(rec, signers)) ?? []).filter((p) => p.epoch === rec.epoch).length;
  }

  #take(k: string, epoch: number): Presigned | undefined {
    const list = this.#pool.get(k);
    while (list?.length) {
      const p = list.shift() as Presigned;
      if (p.epoch === epoch) return p;
    }
    return undefined;
  }

  /** Tops the signer set's pool up to POOL_TARGET in the background (one filler per set). */
  #refill(rec: KeyRecord, signers: readonly string[]): void {
    const k = poolKey(rec, signers);
    if (this.#filling.has(k)) return;
    this.#filling.add(k);
    void (async () => {
      try {
        while ((this.#pool.get(k)?.length ?? 0) < POOL_TARGET && !this.#stale(rec)) {
          const failed: Excluded = new Map();
          const p = await this.#presign(rec, signers, failed);
          if (!p) {
            const [who, why] = [...failed][0] ?? ['', 'UNAVAILABLE'];
            this.c.onEvent({ type: 'pool', participant: who, ok: false, cause: why.split(' ')[0] as string });
            return;
          }
          this.#pool.set(k, [...(this.#pool.get(k) ?? []), p]);
        }
      } finally {
        this.#filling.delete(k);
      }
    })();
  }

  /**
   * Three presigning steps among `signers`: the presignature every signer stated, or undefined
   * after excluding. Signers that are not set up for the key's roster yet (a reshare's setup that
   * failed, or a coordinator that stopped in between) get the setup first, once.
   */
  async #presign(
    rec: KeyRecord,
    signers: readonly string[],
    excluded: Excluded,
    setUp = false,
  ): Promise<Presigned | undefined> {
    const session = this.c.rng(32);
    let inbox = new Map<string, Uint8Array[]>();
    let results = new Map<string, LinkResult>();
    for (const step of [1, 2, 3]) {
      const out = await this.#step(rec, 'presign', step, session, signers, inbox, step === 3 ? 'envelope' : 'ecdsa');
      // (Not for an epoch the key has left: the new roster's setup is the coordinator's own.)
      if (
        !out.ok &&
        step === 1 &&
        !setUp &&
        !this.#stale(rec) &&
        [...out.failed.values()].every((c) => c === 'FAILED_PRECONDITION')
      ) {
        try {
          await this.setup(rec);
        } catch (e) {
          const culprits = (e as { culprits?: readonly string[] }).culprits ?? [];
          const why = codeOf(e);
          // Excluded from this request, not blamed: a setup's culprit is only its reporter's word.
          return this.#exclude(
            excluded,
            new Map(culprits.length ? culprits.map((id) => [id, `SETUP ${why}`]) : [...out.failed]),
          );
        }
        return this.#presign(rec, signers, excluded, true);
      }
      if (!out.ok) return this.#exclude(excluded, out.failed);
      results = out.results;
      if (step < 3) {
        try {
          inbox = this.#route(rec, signers, results);
        } catch (e) {
          return this.#exclude(excluded, (e as { failed: Map<string, string> }).failed);
        }
      }
    }
    return this.#agreedPresignature(rec, signers, session, results, excluded);
  }

  /** The online part on `presigned`: every signer's partial, combined and verified. */
  async #sign(
    rec: KeyRecord,
    intentBytes: Uint8Array,
    intent: OpenedIntent,
    signers: readonly string[],
    presigned: Presigned,
    excluded: Excluded,
    pooled: boolean,
  ): Promise<Uint8Array | 'stale' | undefined> {
    const session = presigned.session;
    const request = encodeEcdsaSignRequest({
      keyId: rec.keyId,
      epoch: rec.epoch,
      intent: intentBytes,
      session,
      signers,
      requestId: this.c.rng(16),
    });
    const digest = sha256(request);
    const answers = await this.#call(signers, { body: 'ecdsaSign', ecdsaSign: request });
    const partials: PartialSignature[] = [];
    const failed = new Map<string, string>();
    for (const id of signers) {
      const a = answers.get(id);
      if (a?.body !== 'envelope' || !a.envelope) {
        failed.set(id, a?.error?.code ?? (a ? 'UNEXPECTED_MESSAGE' : 'UNAVAILABLE'));
        continue;
      }
      try {
        const env = this.#fromLink(id, a.envelope, PayloadKind.ECDSA_PARTIAL);
        const p = decodePartial(rec.key.suite, env.payload, rosterIndex(rec.key, id));
        if (!equalBytes(p.requestDigest, digest) || !equalBytes(p.session, session))
          throw new CoordinatorError('BAD_SIGNATURE_SHARE', 'partial answers another request');
        partials.push(p);
      } catch (e) {
        failed.set(id, culprit('BAD_SIGNATURE_SHARE', e));
      }
    }
    // Stale only if every signer that failed no longer holds it (once: the retry presigns anew).
    if (pooled && failed.size && [...failed.values()].every((why) => why === 'NONCE_UNKNOWN')) return 'stale';
    if (failed.size) return this.#exclude(excluded, failed);
    const tweak = intent.path ? deriveKey(rec.key, intent.path).tweak.add : 0n;
    try {
      const sig = combine(
        {
          keyId: utf8ToBytes(rec.keyId),
          sigid: session,
          signers: signers.map((id) => rosterIndex(rec.key, id)),
          R: presigned.R,
          // Decoded when the statement arrived (at presigning): none of that on the online path.
          ...(presigned.Rpoint ? { Rpoint: presigned.Rpoint } : {}),
          publicKey: groupPublicKey(rec.key),
        },
        intent.message,
        partials,
        tweak,
      );
      // combine checked it with noble's plain verifier, recovery id included, on the key tweaked
      // by the path's δ: the key that signs (deriveKey's public key is that same point).
      return new Uint8Array([...sig.compact, sig.recovery]);
    } catch (e) {
      // [DKLs23] gives no per-signer check of a partial: a bad combination names nobody.
      for (const id of signers) excluded.set(id, codeOf(e));
      return undefined;
    }
  }

  /** Every signer's statement of the presignature: all the same session, signers and R. */
  #agreedPresignature(
    rec: KeyRecord,
    signers: readonly string[],
    session: Uint8Array,
    results: Map<string, LinkResult>,
    excluded: Excluded,
  ): Presigned | undefined {
    const stated = new Map<string, Presigned>();
    const failed = new Map<string, string>();
    for (const id of signers) {
      try {
        const env = this.#fromLink(id, results.get(id)?.envelope, PayloadKind.ECDSA_PRESIGNATURE);
        const p = decodePresigned(rec.key.suite, env.payload);
        if (p.keyId !== rec.keyId || !equalBytes(p.session, session) || p.signers.join(',') !== signers.join(','))
          throw new CoordinatorError('UNEXPECTED_MESSAGE', 'a presignature of another session');
        stated.set(id, p);
      } catch (e) {
        failed.set(id, culprit('BAD_PRESIGNATURE', e));
      }
    }
    if (failed.size) return this.#exclude(excluded, failed);
    const first = stated.get(signers[0] as string) as Presigned;
    if ([...stated.values()].some((p) => !equalBytes(p.R, first.R))) {
      // Someone's R differs: the round-3 checks pass only for a common R, so a signer lies here.
      for (const id of signers) excluded.set(id, 'CONFIRMATION_MISMATCH');
      return undefined;
    }
    return first;
  }

  #exclude(excluded: Excluded, failed: Map<string, string>): undefined {
    for (const [id, why] of failed) {
      excluded.set(id, why);
      if (why.startsWith('BAD_'))
        this.c.onEvent({ type: 'culprit', participant: id, code: why.split(' ')[0] as string });
    }
    return undefined;
  }

  /** An envelope `id`'s link carried: of `kind` and signed by `id`'s key (the link authenticated it). */
  #fromLink(id: string, bytes: Uint8Array | undefined, kind: PayloadKind) {
    if (!(bytes instanceof Uint8Array)) throw new CoordinatorError('UNEXPECTED_MESSAGE', `${id} sent no envelope`);
    const env = readEnvelope(bytes, kind);
    const h = this.c.participants.get(id);
    // Gone meanwhile (it disconnected): unavailable, not a culprit.
    if (!h) throw new CoordinatorError('UNAVAILABLE', `${id} is not connected`);
    if (!equalBytes(env.sender, h.info.signKey))
      throw new CoordinatorError('BAD_SIGNATURE', `${id} sent an envelope signed by another key`);
    return env;
  }

  async #call(
    ids: readonly string[],
    task: Parameters<ParticipantHandle['call']>[0],
  ): Promise<Map<string, LinkResult>> {
    const out = new Map<string, LinkResult>();
    await Promise.all(
      ids.map(async (id) => {
        const h = this.c.participants.get(id);
        if (!h) return;
        try {
          out.set(id, await h.call(task, this.c.timeout));
        } catch {
          this.c.participants.markSlow(id);
        }
      }),
    );
    return out;
  }

  /** One step on every member, each with its own inbox; who failed and why, if anyone did. */
  async #step(
    rec: KeyRecord,
    kind: 'setup' | 'presign',
    step: number,
    session: Uint8Array,
    ids: readonly string[],
    inbox: Map<string, Uint8Array[]>,
    want: 'ecdsa' | 'envelope' | 'ok',
  ): Promise<StepOutcome> {
    const results = new Map<string, LinkResult>();
    const failed = new Map<string, string>();
    await Promise.all(
      ids.map(async (id) => {
        const h = this.c.participants.get(id);
        if (!h) return void failed.set(id, 'UNAVAILABLE');
        try {
          const r = await h.call(
            {
              body: 'ecdsa',
              ecdsa: { kind, keyId: rec.keyId, step, session, signers: [...ids], messages: inbox.get(id) ?? [] },
            },
            // The setup's base OTs (128 per directed pair, hash-to-curve and scalar multiplications)
            // take seconds on a busy node, once per key.
            kind === 'setup' ? Math.max(this.c.timeout, SETUP_TIMEOUT_MS) : this.c.timeout,
          );
          if (r.body === want) return void results.set(id, r);
          const code = r.error?.code ?? 'UNEXPECTED_MESSAGE';
          // A signer that names a culprit (a bad OT, multiplication, commitment or sealed message
          // of another signer): that culprit is excluded, the reporter kept ([DKLs23] aborts name
          // the failing pair; the reporter's word alone cannot be checked here).
          const named = (r.error?.culprits ?? []).filter((c) => c !== id && ids.includes(c));
          if (named.length) for (const c of named) failed.set(c, `BAD_PRESIGN ${code} (reported by ${id})`);
          else failed.set(id, code);
        } catch {
          this.c.participants.markSlow(id);
          failed.set(id, 'UNAVAILABLE');
        }
      }),
    );
    return failed.size ? { ok: false, failed } : { ok: true, results };
  }

  /** Each member's messages of a step, by recipient; a malformed or misaddressed one fails its sender. */
  #route(rec: KeyRecord, ids: readonly string[], results: Map<string, LinkResult>): Map<string, Uint8Array[]> {
    const inbox = new Map<string, Uint8Array[]>();
    const failed = new Map<string, string>();
    for (const id of ids) {
      const envelopes = results.get(id)?.ecdsa?.envelopes ?? [];
      try {
        const to = new Set<string>();
        for (const bytes of envelopes) {
          const env = this.#fromLink(id, bytes, PayloadKind.ECDSA_MESSAGE);
          const w = decodeMessage('EcdsaPeerMessage', env.payload);
          if (w.from !== id || !ids.includes(w.to) || w.to === id || to.has(w.to) || w.keyId !== rec.keyId)
            throw new CoordinatorError('UNEXPECTED_MESSAGE', `${id} addressed a message outside the session`);
          to.add(w.to);
          inbox.set(w.to, [...(inbox.get(w.to) ?? []), bytes]);
        }
        if (to.size !== ids.length - 1) throw new CoordinatorError('UNEXPECTED_MESSAGE', `${id} left a signer out`);
      } catch (e) {
        failed.set(id, culprit('BAD_ECDSA_MESSAGE', e));
      }
    }
    if (failed.size) throw Object.assign(new CoordinatorError('UNEXPECTED_MESSAGE', 'bad ECDSA messages'), { failed });
    return inbox;
  }
}

/** Why a signer's answer failed: unavailable (it left), or `prefix` naming it as the culprit. */
function culprit(prefix: string, e: unknown): string {
  const code = codeOf(e);
  return code === 'UNAVAILABLE' ? code : `${prefix} ${code}`;
}

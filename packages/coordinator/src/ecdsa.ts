/**
 * Threshold ECDSA sessions (DKLs23, `@tessera/ecdsa`) as the coordinator runs them: it relays
 * sealed messages between signers and learns nothing it could sign with.
 * - `setup`: after the DKG of an ecdsa-secp256k1 key, every roster member sets up its pairs
 *   (three steps, each member storing them pending and signing its word that it did), then puts
 *   them in use on every member's word (step 4); a setup that ended between members' step 4 is
 *   finished with their words again (step 5). The key is registered only when all have.
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
  deriveKey,
  equalBytes,
  groupPublicKey,
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
import { EcdsaRelay, culprit } from './ecdsa-relay.js';
import { runEcdsaSetup } from './ecdsa-setup.js';
import type { Participants } from './participants.js';
import { CoordinatorError, codeOf, type CoordinatorEvent } from './types.js';

export interface EcdsaComponents {
  readonly rng: Rng;
  readonly timeout: number;
  readonly participants: Participants;
  /** The key's current epoch (the registry's): work begun for an older epoch stops. */
  epochOf?(keyId: string): number | undefined;
  onEvent(e: CoordinatorEvent): void;
}

/** Signers excluded from further quorums of one request, with why ("BAD_…" names a culprit). */
type Excluded = Map<string, string>;

/** Presignatures kept ahead per key and signer set (made after a signature, in the background). */
const POOL_TARGET = 4;
const poolKey = (rec: KeyRecord, signers: readonly string[]) => `${rec.keyId}|${signers.join(',')}`;

export class EcdsaService {
  /** Presignatures made ahead (all signers of the set hold theirs), by key and signer set. */
  readonly #pool = new Map<string, Presigned[]>();
  readonly #filling = new Set<string>();
  /** Setups running, by key and epoch (two signatures that both need one share it). */
  readonly #setups = new Map<string, Promise<void>>();

  readonly #relay: EcdsaRelay;

  constructor(private readonly c: EcdsaComponents) {
    this.#relay = new EcdsaRelay(c);
  }

  /**
   * The pairwise setup of an ECDSA key's roster (after its DKG, or a reshare to a new roster);
   * throws naming who failed. Members that already hold pairs for this roster refuse a second
   * setup (`KEY_EXISTS`): when all of them do, the roster is set up and this is done.
   */
  setup(rec: KeyRecord): Promise<void> {
    const k = `${rec.keyId}@${rec.epoch}`;
    const running = this.#setups.get(k);
    if (running) return running;
    const p = runEcdsaSetup(this.#relay, this.c.rng, rec).finally(() => this.#setups.delete(k));
    this.#setups.set(k, p);
    return p;
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
    /** Filled with every signer's signed statement of the presignature (a device's reservation). */
    statements?: Map<string, Uint8Array>,
    /** The session id a device's reservation names (its seed's); otherwise a fresh one. */
    given?: Uint8Array,
  ): Promise<Presigned | undefined> {
    const session = given ?? this.c.rng(32);
    let inbox = new Map<string, Uint8Array[]>();
    let results = new Map<string, LinkResult>();
    for (const step of [1, 2, 3]) {
      const out = await this.#relay.step(
        rec,
        'presign',
        step,
        session,
        signers,
        inbox,
        step === 3 ? 'envelope' : 'ecdsa',
      );
      // (Not for an epoch the key has left: the new roster's setup is the coordinator's own.)
      if (
        !out.ok &&
        step === 1 &&
        !setUp &&
        !given &&
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
        return this.#presign(rec, signers, excluded, true, statements);
      }
      if (!out.ok) return this.#exclude(excluded, out.failed);
      results = out.results;
      if (step < 3) {
        try {
          inbox = this.#relay.route(rec, signers, results);
        } catch (e) {
          return this.#exclude(excluded, (e as { failed: Map<string, string> }).failed);
        }
      }
    }
    const agreed = this.#agreedPresignature(rec, signers, session, results, excluded);
    if (agreed && statements) for (const id of signers) statements.set(id, results.get(id)?.envelope as Uint8Array);
    return agreed;
  }

  /**
   * One presignature among `signers` (a device and its co-signers: a device's reservation), with
   * each signer's signed statement of it; undefined after excluding whoever failed.
   */
  async presignFor(
    rec: KeyRecord,
    signers: readonly string[],
    excluded: Excluded,
    session: Uint8Array,
  ): Promise<{ presigned: Presigned; statements: Map<string, Uint8Array> } | undefined> {
    const statements = new Map<string, Uint8Array>();
    const ordered = [...signers].sort((a, b) => rosterIndex(rec.key, a) - rosterIndex(rec.key, b));
    const presigned = await this.#presign(rec, ordered, excluded, false, statements, session);
    return presigned ? { presigned, statements } : undefined;
  }

  /**
   * Each of `cosigners`' partial for `request` (an EcdsaSignRequest: a requester's intent, or a
   * device's offline package), each checked to answer it; who failed and why otherwise.
   */
  async partialsFor(
    rec: KeyRecord,
    request: Uint8Array,
    session: Uint8Array,
    cosigners: readonly string[],
  ): Promise<{ partials: PartialSignature[]; failed: Map<string, string>; codes: Map<string, string> }> {
    const digest = sha256(request);
    const answers = await this.#relay.call(cosigners, { body: 'ecdsaSign', ecdsaSign: request });
    const partials: PartialSignature[] = [];
    const failed = new Map<string, string>();
    const codes = new Map<string, string>();
    for (const id of cosigners) {
      const a = answers.get(id);
      if (a?.body !== 'envelope' || !a.envelope) {
        failed.set(id, a?.error?.code ?? (a ? 'UNEXPECTED_MESSAGE' : 'UNAVAILABLE'));
        if (a?.error?.message) codes.set(id, String(a.error.message).slice(0, 300));
        continue;
      }
      try {
        const env = this.#relay.fromLink(id, a.envelope, PayloadKind.ECDSA_PARTIAL);
        const p = decodePartial(rec.key.suite, env.payload, rosterIndex(rec.key, id));
        if (!equalBytes(p.requestDigest, digest) || !equalBytes(p.session, session))
          throw new CoordinatorError('BAD_SIGNATURE_SHARE', 'partial answers another request');
        partials.push(p);
      } catch (e) {
        failed.set(id, culprit('BAD_SIGNATURE_SHARE', e));
      }
    }
    return { partials, failed, codes };
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
    const { partials, failed } = await this.partialsFor(rec, request, session, signers);
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
        const env = this.#relay.fromLink(id, results.get(id)?.envelope, PayloadKind.ECDSA_PRESIGNATURE);
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
}

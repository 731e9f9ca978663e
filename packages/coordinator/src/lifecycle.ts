/**
 * The coordinator's share lifecycle: proactive refresh (also scheduled) and reshare. It drives the
 * participants' `LifecycleParticipant` (core) step by step through `LifecycleEpochs`
 * (./lifecycle-epochs.ts: steps, commit, retirement, catch-up) and trusts none of their answers
 * beyond what it checks itself; the participants check everything again. The authorisations
 * operators approve are prepared in ./authorisations.ts.
 */
import {
  LifecycleStep,
  PayloadKind,
  checkLifecycleConfirmations,
  decodeMessage,
  encodeKeyRecord,
  encodeRefreshParams,
  encodeReshareParams,
  equalBytes,
  openEnvelope,
  refreshPublicKey,
  refreshSessionHash,
  resharePublicKey,
  reshareSessionHash,
  type KeyRecord,
} from '@tessera/core';
import { type PrepareRequest, prepareAuthorisation } from './authorisations.js';
import { type LifecycleComponents, LifecycleEpochs } from './lifecycle-epochs.js';
import { CoordinatorError, codeOf, keyInfo, type KeyInfo, type ParticipantHandle } from './types.js';

export type { LifecycleComponents } from './lifecycle-epochs.js';
export type { PrepareRequest } from './authorisations.js';

export class LifecycleService {
  readonly #epochs: LifecycleEpochs;

  constructor(private readonly c: LifecycleComponents) {
    this.#epochs = new LifecycleEpochs(c);
  }

  /** Brings a participant that was offline during refreshes up to date (see {@link LifecycleEpochs.catchUp}). */
  catchUp(h: ParticipantHandle): Promise<void> {
    return this.#epochs.catchUp(h);
  }

  /** The unsigned authorisation operators are asked to approve (see {@link prepareAuthorisation}). */
  prepare(req: PrepareRequest): Uint8Array {
    return prepareAuthorisation(this.c, req);
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
  refresh(keyId: string, authorisation: Uint8Array = this.c.standingRefresh): Promise<KeyInfo> {
    return this.#timed('refresh', keyId, () => this.#refresh(keyId, authorisation));
  }

  /** Runs one session and reports its kind, outcome and duration (the lifecycle metrics). */
  async #timed(kind: 'refresh' | 'reshare', keyId: string, run: () => Promise<KeyInfo>): Promise<KeyInfo> {
    const t0 = Date.now();
    try {
      const info = await run();
      this.c.onEvent({ type: 'lifecycle', kind, keyId, ok: true, ms: Date.now() - t0 });
      return info;
    } catch (e) {
      this.c.onEvent({ type: 'lifecycle', kind, keyId, ok: false, ms: Date.now() - t0, cause: codeOf(e) });
      throw e;
    }
  }

  async #refresh(keyId: string, authorisation: Uint8Array): Promise<KeyInfo> {
    const rec = this.c.key(keyId);
    const online = rec.key.roster.map((r) => this.c.participant(r.id)).filter((h): h is ParticipantHandle => !!h);
    if (online.length < rec.key.threshold)
      throw new CoordinatorError(
        'UNAVAILABLE',
        `refresh needs ${rec.key.threshold} linked participants of key ${keyId}, ${online.length} linked`,
      );
    // Anyone that lags behind an earlier epoch catches up first.
    for (const h of online) await this.#epochs.catchUp(h).catch(() => {});
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
      ...(await this.#epochs.step(contributors, { ...base, step: LifecycleStep.CONTRIBUTE }, 'envelope')).values(),
    ] as Uint8Array[];
    let pub;
    try {
      this.#checkContributions(contributors, round1, PayloadKind.REFRESH_ROUND1, refreshSessionHash(cfg));
      pub = refreshPublicKey(cfg, round1);
    } catch (e) {
      this.#epochs.abort(online, base);
      throw e;
    }
    // Contributors must apply and confirm; any other linked participant (a phone) applies too if
    // it can, and otherwise catches up from the stored session when it next links.
    const others = online.filter((h) => !contributors.includes(h));
    const [mustConfirm, mayConfirm] = await Promise.all([
      this.#epochs.step(contributors, { ...base, envelopes: round1, step: LifecycleStep.APPLY }, 'envelope'),
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
      this.#epochs.abort(online, base);
      throw e;
    }
    const next: KeyRecord = { keyId, epoch: pub.epoch, key: pub.key, createdAt: this.c.clock() };
    await this.#epochs.commit('refresh', rec, next, { params, round1, authorisation, confirmations }, applied);
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
  reshare(
    keyId: string,
    req: { threshold: number; participants: string[]; authorisation?: Uint8Array },
  ): Promise<KeyInfo> {
    return this.#timed('reshare', keyId, () => this.#reshare(keyId, req));
  }

  async #reshare(
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
    if (rec.key.suite.scheme === 'ecdsa' && newHandles.some((h) => h.device))
      throw new CoordinatorError(
        'UNIMPLEMENTED',
        `key ${keyId} is ECDSA: a device joins it by its keygen only, not by a reshare`,
      );
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
    for (const h of oldOnline) await this.#epochs.catchUp(h).catch(() => {});
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
      ...(await this.#epochs.step(contributors, { ...base, step: LifecycleStep.CONTRIBUTE }, 'envelope')).values(),
    ] as Uint8Array[];
    let pub;
    try {
      this.#checkContributions(contributors, round1, PayloadKind.RESHARE_ROUND1, reshareSessionHash(cfg));
      pub = resharePublicKey(cfg, round1);
    } catch (e) {
      this.#epochs.abort(everyone, base);
      throw e;
    }
    // Contributors and new participants must answer; other old members only learn of it.
    const required = everyone.filter((h) => contributors.includes(h) || ids.includes(h.info.id));
    const optional = everyone.filter((h) => !required.includes(h));
    const [answers] = await Promise.all([
      this.#epochs.step(required, { ...base, envelopes: round1, step: LifecycleStep.APPLY }, 'any'),
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
      this.#epochs.abort(everyone, base);
      throw e;
    }
    const next: KeyRecord = { keyId, epoch: pub.epoch, key: pub.key, createdAt: this.c.clock() };
    await this.#epochs.commit('reshare', rec, next, { params, round1, authorisation, confirmations }, everyone);
    if (next.key.suite.scheme === 'ecdsa') this.#ecdsaSetup(next);
    return keyInfo(next);
  }

  /**
   * The new roster's pairwise setup (DKLs23 pairs belong to a roster, not to shares), started in
   * the background: the reshare is committed whatever happens to it. A signature meanwhile waits
   * for it (ecdsa.ts joins the running setup); one that failed (a member offline) is run again by
   * the key's next signature, so a failure is an event here, not a failed reshare.
   */
  #ecdsaSetup(next: KeyRecord): void {
    this.c.ecdsa.setup(next).then(
      () => this.c.onEvent({ type: 'ecdsa-setup', keyId: next.keyId, ok: true }),
      (e: unknown) => this.c.onEvent({ type: 'ecdsa-setup', keyId: next.keyId, ok: false, cause: codeOf(e) }),
    );
  }
}

/**
 * How the coordinator moves one step of an ECDSA session (`@tessera/ecdsa`) between signers: the
 * same task to every member, each with the envelopes addressed to it, and the answers sorted into
 * next step's inboxes. Routing reads only the envelopes' clear fields (sender, recipient); an
 * envelope a signer's link carried that is not signed by that signer, or is addressed outside
 * the session, fails that signer.
 */
import { PayloadKind, decodeMessage, equalBytes, readEnvelope, type KeyRecord, type LinkResult } from '@tessera/core';
import type { Participants } from './participants.js';
import { CoordinatorError, codeOf, type ParticipantHandle } from './types.js';

/** The least time a setup step may take (its base OTs are seconds of work per key). */
const SETUP_TIMEOUT_MS = 60_000;

/** One step's outcome: every member's answer, or who failed and why (and the others' answers). */
export type StepOutcome =
  | { ok: true; results: Map<string, LinkResult> }
  | { ok: false; failed: Map<string, string>; results: Map<string, LinkResult> };

export class EcdsaRelay {
  readonly #c: { readonly participants: Participants; readonly timeout: number };

  constructor(c: { readonly participants: Participants; readonly timeout: number }) {
    this.#c = c;
  }

  /** An envelope `id`'s link carried: of `kind` and signed by `id`'s key (the link authenticated it). */
  fromLink(id: string, bytes: Uint8Array | undefined, kind: PayloadKind) {
    if (!(bytes instanceof Uint8Array)) throw new CoordinatorError('UNEXPECTED_MESSAGE', `${id} sent no envelope`);
    const env = readEnvelope(bytes, kind);
    const h = this.#c.participants.get(id);
    // Gone meanwhile (it disconnected): unavailable, not a culprit.
    if (!h) throw new CoordinatorError('UNAVAILABLE', `${id} is not connected`);
    if (!equalBytes(env.sender, h.info.signKey))
      throw new CoordinatorError('BAD_SIGNATURE', `${id} sent an envelope signed by another key`);
    return env;
  }

  async call(ids: readonly string[], task: Parameters<ParticipantHandle['call']>[0]): Promise<Map<string, LinkResult>> {
    const out = new Map<string, LinkResult>();
    await Promise.all(
      ids.map(async (id) => {
        const h = this.#c.participants.get(id);
        if (!h) return;
        try {
          out.set(id, await h.call(task, this.#c.timeout));
        } catch {
          this.#c.participants.markSlow(id);
        }
      }),
    );
    return out;
  }

  /** One step on every member, each with its own inbox; who failed and why, if anyone did. */
  async step(
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
        const h = this.#c.participants.get(id);
        if (!h) return void failed.set(id, 'UNAVAILABLE');
        try {
          const r = await h.call(
            {
              body: 'ecdsa',
              ecdsa: { kind, keyId: rec.keyId, step, session, signers: [...ids], messages: inbox.get(id) ?? [] },
            },
            // The setup's base OTs (128 per directed pair, hash-to-curve and scalar multiplications)
            // take seconds on a busy node, once per key.
            kind === 'setup' ? Math.max(this.#c.timeout, SETUP_TIMEOUT_MS) : this.#c.timeout,
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
          this.#c.participants.markSlow(id);
          failed.set(id, 'UNAVAILABLE');
        }
      }),
    );
    return failed.size ? { ok: false, failed, results } : { ok: true, results };
  }

  /** Each member's messages of a step, by recipient; a malformed or misaddressed one fails its sender. */
  route(rec: KeyRecord, ids: readonly string[], results: Map<string, LinkResult>): Map<string, Uint8Array[]> {
    const inbox = new Map<string, Uint8Array[]>();
    const failed = new Map<string, string>();
    for (const id of ids) {
      const envelopes = results.get(id)?.ecdsa?.envelopes ?? [];
      try {
        const to = new Set<string>();
        for (const bytes of envelopes) {
          const env = this.fromLink(id, bytes, PayloadKind.ECDSA_MESSAGE);
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
export function culprit(prefix: string, e: unknown): string {
  const code = codeOf(e);
  return code === 'UNAVAILABLE' ? code : `${prefix} ${code}`;
}

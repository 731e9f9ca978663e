/**
 * An ECDSA key's pairwise setup as the coordinator runs it (after a DKG, or for a reshare's new
 * roster), in two phases (the signer's side: signer/src/ecdsa-setup.ts): steps 1–3 relay the
 * setup's rounds and collect each member's signed word that it stored its pairs (pending); step 4
 * hands every member all the words, and each puts its pairs in use. If the roster is set up on
 * some members and not others (a setup that ended between members' step 4), step 5 collects each
 * member's word for the session it holds and step 4 finishes that session. The coordinator
 * cannot make up a word: each member checks every one against the roster.
 */
import {
  PayloadKind,
  decodeMessage,
  readEnvelope,
  toHex,
  type KeyRecord,
  type LinkResult,
  type Rng,
} from '@tessera/core';
import type { EcdsaRelay } from './ecdsa-relay.js';
import { CoordinatorError } from './types.js';

/**
 * Sets up `rec`'s roster; throws naming who failed. Members that already use pairs for this
 * roster refuse a new setup (`KEY_EXISTS`): when all of them do, the roster is set up and this
 * is done.
 */
export async function runEcdsaSetup(relay: EcdsaRelay, rng: Rng, rec: KeyRecord): Promise<void> {
  const ids = rec.key.roster.map((r) => r.id);
  const session = rng(32);
  let inbox = new Map<string, Uint8Array[]>();
  for (const step of [1, 2, 3]) {
    const out = await relay.step(rec, 'setup', step, session, ids, inbox, step === 3 ? 'envelope' : 'ecdsa');
    if (!out.ok && step === 1 && [...out.failed.values()].every((code) => code === 'KEY_EXISTS')) {
      if (out.failed.size === ids.length) return;
      // Some members use pairs of this roster and the others do not: a setup that ended
      // between members' activations. Finished with every member's word for it.
      return finish(relay, rng, rec, ids);
    }
    if (!out.ok) failedSetup(rec, out.failed);
    if (step < 3)
      try {
        inbox = relay.route(rec, ids, out.results);
      } catch (e) {
        const failed = (e as { failed: Map<string, string> }).failed;
        throw new CoordinatorError('UNEXPECTED_MESSAGE', `ECDSA setup of key ${rec.keyId} failed`, [...failed.keys()]);
      }
    else await activate(relay, rec, ids, session, words(ids, out.results));
  }
}

/** Each member's ECDSA_SETUP_DONE envelope of a step, in roster order. */
function words(ids: readonly string[], results: Map<string, LinkResult>): Uint8Array[] {
  return ids.map((id) => results.get(id)?.envelope as Uint8Array);
}

/** Step 4 on every member: each puts its pending pairs in use on all members' words. */
async function activate(
  relay: EcdsaRelay,
  rec: KeyRecord,
  ids: readonly string[],
  session: Uint8Array,
  all: Uint8Array[],
) {
  const out = await relay.step(rec, 'setup', 4, session, ids, new Map(ids.map((id) => [id, all])), 'ok');
  if (!out.ok) failedSetup(rec, out.failed);
}

/**
 * A setup some members finished (their pairs in use) and others did not activate: every member's
 * word for the session it holds (step 5); if all name one session, step 4 on every member.
 */
async function finish(relay: EcdsaRelay, rng: Rng, rec: KeyRecord, ids: readonly string[]): Promise<void> {
  const out = await relay.step(rec, 'setup', 5, rng(32), ids, new Map(), 'envelope');
  const stuck = (why: string) =>
    new CoordinatorError(
      'FAILED_PRECONDITION',
      `ECDSA setup of key ${rec.keyId}: some members hold pairs for this roster and the others cannot finish their setup (${why})`,
    );
  if (!out.ok) throw stuck([...out.failed].map(([id, code]) => `${id}: ${code}`).join('; '));
  const all = words(ids, out.results);
  // The members check every word themselves; here only which session they name.
  const sessions = new Map<string, Uint8Array>();
  for (const w of all) {
    const s = decodeMessage('EcdsaSetupDone', readEnvelope(w, PayloadKind.ECDSA_SETUP_DONE).payload).session;
    sessions.set(toHex(s), s);
  }
  if (sessions.size !== 1) throw stuck('they hold pairs of different setup sessions');
  await activate(relay, rec, ids, [...sessions.values()][0] as Uint8Array, all);
}

/** Throws a setup's failure, naming who the members' answers name. */
function failedSetup(rec: KeyRecord, failed: Map<string, string>): never {
  const why = [...failed].map(([id, code]) => `${id}: ${code}`).join('; ');
  const culprits = [...failed].filter(([, code]) => code.startsWith('BAD_')).map(([id]) => id);
  // A named culprit's failure is "BAD_… <the reporter's code> (reported by …)": that code.
  const first = [...failed.values()].find((c) => c.startsWith('BAD_')) ?? [...failed.values()][0];
  throw new CoordinatorError(
    ((culprits.length ? first?.split(' ')[1] : first?.split(' ')[0]) ?? 'INTERNAL') as string,
    `ECDSA setup of key ${rec.keyId} failed (${why})`,
    culprits,
  );
}

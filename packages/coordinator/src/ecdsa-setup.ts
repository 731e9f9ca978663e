/**
 * An ECDSA key's pairwise setup as the coordinator runs it (after a DKG, or for a reshare's new
 * roster), in two phases (the signer's side: signer/src/ecdsa-setup.ts): steps 1–3 relay the
 * setup's rounds and collect each member's signed word that it stored its pairs (pending); step 4
 * hands every member all the words, and each puts its pairs in use. If the roster is set up on
 * some members and not others (a setup that ended between members' step 4), step 5 collects each
 * member's word for the session it holds and step 4 finishes that session; if some member never
 * gave its word for a session others hold, step 6 has it sign that session's abort, which lets
 * them set up again. The coordinator cannot make up a word or an abort: each member checks every
 * one against the roster.
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
 * is done. Members that gave their word for an earlier session refuse one (`FAILED_PRECONDITION`)
 * until they are shown an abort of it: then every member's word (step 5) either finishes that
 * session, or a member without its word signs its abort (step 6) and the setup starts again
 * with it.
 */
export async function runEcdsaSetup(relay: EcdsaRelay, rng: Rng, rec: KeyRecord): Promise<void> {
  const ids = rec.key.roster.map((r) => r.id);
  let aborts = new Map<string, Uint8Array[]>();
  for (let attempt = 0; ; attempt++) {
    const session = rng(32);
    let inbox = aborts;
    for (const step of [1, 2, 3]) {
      const out = await relay.step(rec, 'setup', step, session, ids, inbox, step === 3 ? 'envelope' : 'ecdsa');
      if (!out.ok && step === 1) {
        const codes = [...out.failed.values()];
        if (codes.every((code) => code === 'KEY_EXISTS') && out.failed.size === ids.length) return;
        if (attempt === 0 && codes.every((code) => code === 'KEY_EXISTS' || code === 'FAILED_PRECONDITION')) {
          // A setup that ended part way: finished, or its sessions aborted and started again.
          const left = await resolve(relay, rng, rec, ids, codes.includes('KEY_EXISTS'));
          if (!left) return;
          aborts = left;
          break;
        }
      }
      if (!out.ok) failedSetup(rec, out.failed);
      if (step < 3)
        try {
          inbox = relay.route(rec, ids, out.results);
        } catch (e) {
          const failed = (e as { failed: Map<string, string> }).failed;
          throw new CoordinatorError('UNEXPECTED_MESSAGE', `ECDSA setup of key ${rec.keyId} failed`, [
            ...failed.keys(),
          ]);
        }
      else return activate(relay, rec, ids, session, words(ids, out.results));
    }
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
 * A setup that ended part way, seen from every member's word for the session it holds (step 5):
 * if all gave theirs for one session, it is finished (step 4) and nothing is left; otherwise each
 * session some members hold is aborted by a member that holds no word for it (step 6), and the
 * aborts are returned for those members' next step 1.
 */
async function resolve(
  relay: EcdsaRelay,
  rng: Rng,
  rec: KeyRecord,
  ids: readonly string[],
  someInUse: boolean,
): Promise<Map<string, Uint8Array[]> | undefined> {
  const stuck = (why: string) =>
    new CoordinatorError(
      'FAILED_PRECONDITION',
      `ECDSA setup of key ${rec.keyId}: its members hold pairs of setups that cannot be finished or aborted (${why})`,
    );
  const out = await relay.step(rec, 'setup', 5, rng(32), ids, new Map(), 'envelope');
  const other = [...(out.ok ? [] : out.failed)].filter(([, code]) => code !== 'NOT_FOUND');
  if (other.length) throw stuck(other.map(([id, code]) => `${id}: ${code}`).join('; '));
  // The members check every word themselves; here only which session each names.
  const held = new Map<string, string>();
  const sessions = new Map<string, Uint8Array>();
  for (const [id, r] of out.results) {
    const s = decodeMessage(
      'EcdsaSetupDone',
      readEnvelope(r.envelope as Uint8Array, PayloadKind.ECDSA_SETUP_DONE).payload,
    ).session;
    held.set(id, toHex(s));
    sessions.set(toHex(s), s);
  }
  if (held.size === ids.length && sessions.size === 1) {
    await activate(relay, rec, ids, [...sessions.values()][0] as Uint8Array, words(ids, out.results));
    return undefined;
  }
  // Pairs in use mean every member gave its word for that session: one without it lost its store.
  if (someInUse) throw stuck('some members use pairs of a session others hold no word for');
  const aborts = new Map<string, Uint8Array[]>();
  for (const [hex, session] of sessions) {
    const by = ids.find((id) => held.get(id) !== hex) as string;
    const a = await relay.step(rec, 'setup', 6, session, [by], new Map(), 'envelope');
    if (!a.ok) throw stuck([...a.failed].map(([id, code]) => `${id}: ${code}`).join('; '));
    const abort = a.results.get(by)?.envelope as Uint8Array;
    for (const id of ids) if (held.get(id) === hex) aborts.set(id, [...(aborts.get(id) ?? []), abort]);
  }
  return aborts;
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

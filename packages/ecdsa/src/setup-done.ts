/**
 * The end of a key's pairwise setup, in two phases (a two-phase commit): each roster member
 * stores its pairs as pending and says so, signed (an ECDSA_SETUP_DONE envelope: its "yes"); a
 * member uses its pairs only once it holds every roster member's word for the same session. A
 * member that gave its word keeps that session's pairs until it is put in use, or until a member
 * that did not give its word signs that it never will (an ECDSA_SETUP_ABORT envelope: its "no").
 * So a setup that broke off before every word was given is aborted and runs again, and one that
 * broke off after is finished with the words of all (each member says its word again). The
 * coordinator relays the words and cannot make one up: members act on the roster members'
 * signatures, never on the relay's say-so.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import {
  ErrorCode,
  PayloadKind,
  ProtocolError,
  decodeMessage,
  encodeMessage,
  equalBytes,
  makeHeader,
  openEnvelope,
  signEnvelope,
  utf8ToBytes,
  type ParticipantIdentity,
} from '@tessera/core';
import type { EcdsaKeyView } from './session.js';

/** The digest of a roster: its members and their identifiers, in roster order. */
export function rosterDigest(key: Pick<EcdsaKeyView, 'roster'>): Uint8Array {
  return sha256(utf8ToBytes(key.roster.map((r) => `${r.id}:${r.identifier}`).join(',')));
}

/**
 * `me`'s word that it stored its pairs of setup `session` for `key`'s roster, with what each pair
 * exchanged (`transcripts`, by peer id: SetupSession.transcripts()).
 */
export function setupDone(
  me: ParticipantIdentity,
  key: EcdsaKeyView,
  session: Uint8Array,
  transcripts: ReadonlyMap<string, Uint8Array>,
): Uint8Array {
  const pairs = key.roster.map((r) =>
    r.id === me.id ? new Uint8Array(0) : (transcripts.get(r.id) ?? new Uint8Array(0)),
  );
  return setupWord(me, key, session, PayloadKind.ECDSA_SETUP_DONE, pairs);
}

/** `me`'s word that it did not store the pairs of setup `session` for `key`'s roster, and never will. */
export function setupAbort(me: ParticipantIdentity, key: EcdsaKeyView, session: Uint8Array): Uint8Array {
  return setupWord(me, key, session, PayloadKind.ECDSA_SETUP_ABORT, []);
}

function setupWord(
  me: ParticipantIdentity,
  key: EcdsaKeyView,
  session: Uint8Array,
  kind: PayloadKind,
  pairs: Uint8Array[],
): Uint8Array {
  return signEnvelope(
    me,
    kind,
    encodeMessage('EcdsaSetupDone', {
      header: makeHeader(key.suite),
      keyId: key.keyId,
      epoch: key.epoch,
      roster: rosterDigest(key),
      session,
      from: me.id,
      pairs,
    }),
  );
}

/** The session a member's word names, after checking it is a word of `key`'s roster at all. */
export function setupDoneSession(
  key: EcdsaKeyView,
  envelope: Uint8Array,
  kind: PayloadKind = PayloadKind.ECDSA_SETUP_DONE,
): { from: string; session: Uint8Array; pairs: Uint8Array[] } {
  const env = openEnvelope(envelope, kind);
  const w = decodeMessage('EcdsaSetupDone', env.payload);
  const member = key.roster.find((r) => r.id === w.from);
  if (!member || !equalBytes(env.sender, member.signKey))
    throw new ProtocolError(
      ErrorCode.BAD_SIGNATURE,
      `a setup word from "${String(w.from).slice(0, 64)}" not signed by that roster member`,
    );
  if (w.keyId !== key.keyId || w.epoch !== key.epoch || !equalBytes(w.roster, rosterDigest(key)))
    throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, `${w.from}'s setup word is for another key, epoch or roster`);
  return { from: w.from, session: w.session, pairs: w.pairs };
}

/**
 * Whether `envelopes` hold an abort of `session` signed by a roster member of `key` other than
 * `me` (undecodable or foreign envelopes are skipped: the relay chose what to pass on).
 */
export function hasSetupAbort(
  key: EcdsaKeyView,
  session: Uint8Array,
  me: string,
  envelopes: readonly Uint8Array[],
): boolean {
  for (const e of envelopes) {
    try {
      const w = setupDoneSession(key, e, PayloadKind.ECDSA_SETUP_ABORT);
      if (w.from !== me && equalBytes(w.session, session)) return true;
    } catch {
      // not an abort of this roster: skipped
    }
  }
  return false;
}

/**
 * Checks that `envelopes` hold exactly one word of every roster member of `key`, each for
 * `session`, and that each peer's word says its pair with `me` exchanged what `me`'s own pair
 * did (`transcripts`, by peer id): what a member needs to use its pending pairs of that session.
 * Names nobody when a word is missing, misplaced or of another run: the words are signed, the
 * relay chose which to pass on, and a mismatch does not tell which end ran the session twice.
 */
export function verifySetupDone(
  key: EcdsaKeyView,
  session: Uint8Array,
  envelopes: readonly Uint8Array[],
  me: { readonly id: string; readonly transcripts: ReadonlyMap<string, Uint8Array> },
): void {
  const seen = new Set<string>();
  const mine = key.roster.findIndex((r) => r.id === me.id);
  for (const e of envelopes) {
    const w = setupDoneSession(key, e);
    if (!equalBytes(w.session, session))
      throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, `${w.from}'s word is for another setup session`);
    if (seen.has(w.from)) throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, `two setup words from ${w.from}`);
    seen.add(w.from);
    const ours = me.transcripts.get(w.from);
    const theirs = w.pairs[mine];
    if (w.from !== me.id && (!ours || !(theirs instanceof Uint8Array) || !equalBytes(theirs, ours)))
      throw new ProtocolError(
        ErrorCode.CONFIRMATION_MISMATCH,
        `${w.from}'s pair with ${me.id} exchanged other messages in this session than ${me.id}'s did (a second run of it)`,
      );
  }
  const missing = key.roster.map((r) => r.id).filter((id) => !seen.has(id));
  if (missing.length)
    throw new ProtocolError(
      ErrorCode.FAILED_PRECONDITION,
      `the setup is not done by every roster member (no word from ${missing.join(', ')})`,
    );
}

/**
 * A key holder's ECDSA sessions over an untrusted relay (the coordinator): the pairwise setup
 * after the DKG and the three presigning rounds, each round's messages addressed to one other
 * key holder, sealed to it (HPKE, its encryption key from the key's roster) and signed by the
 * sender (an ECDSA_MESSAGE envelope). The relay sees who talks to whom and how much, nothing
 * else; a message it forges, replays into another session or round, or redirects fails to open
 * and is refused without blaming the claimed sender. The state machines are setup.ts and
 * sign.ts; this module binds them to Tessera identities, rosters and bytes (shared by the signer
 * node and, later, the device).
 */
import {
  ErrorCode,
  InvalidArgumentError,
  PayloadKind,
  ProtocolError,
  checkHeader,
  decodeMessage,
  encodeMessage,
  equalBytes,
  fromHex,
  hpkeSeal,
  makeHeader,
  openEnvelope,
  signEnvelope,
  utf8ToBytes,
  type ParticipantIdentity,
  type RosterEntry,
  type Rng,
  type Suite,
} from '@tessera/core';
import { bytesToNumberBE } from '@noble/curves/utils.js';
import { EcdsaPairSetup, type PairState } from './setup.js';
import { H, u16 } from './params.js';
import { drainAsync } from './steps.js';
import { EcdsaPresign, type Presignature } from './sign.js';
import {
  decodePresign1,
  decodePresign2,
  decodeSetup1,
  decodeSetup2,
  encodePresign1,
  encodePresign2,
  encodeSetup1,
  encodeSetup2,
  type PairRecords,
} from './wire.js';

/** The public facts of a key a session needs. */
export interface EcdsaKeyView {
  readonly keyId: string;
  readonly epoch: number;
  readonly threshold: number;
  readonly suite: Suite;
  readonly roster: readonly RosterEntry[];
  /** The group key, 33 bytes SEC1 compressed. */
  readonly publicKey: Uint8Array;
}

export type SessionKind = 'setup' | 'presign';
const INFO = utf8ToBytes('tessera/v1/ecdsa');

/** A participant's protocol index: its place in the key's roster (sorted by identifier), from 1. */
export function rosterIndex(key: Pick<EcdsaKeyView, 'roster'>, id: string): number {
  const i = key.roster.findIndex((r) => r.id === id);
  if (i < 0) throw new InvalidArgumentError(`${id} is not in the key's roster`);
  return i + 1;
}

/** Where each roster member's share is evaluated (its FROST identifier), by index. */
export function evaluationPoints(key: Pick<EcdsaKeyView, 'roster'>): Map<number, bigint> {
  return new Map(key.roster.map((r, i) => [i + 1, bytesToNumberBE(fromHex(r.identifier))]));
}

interface Route {
  readonly key: EcdsaKeyView;
  readonly kind: SessionKind;
  readonly session: Uint8Array;
}

/** Seals `body` to `to` and signs it: one ECDSA_MESSAGE envelope. */
export function sealPeerMessage(
  me: ParticipantIdentity,
  key: EcdsaKeyView,
  kind: SessionKind,
  session: Uint8Array,
  step: number,
  to: RosterEntry,
  body: Uint8Array,
  rng: Rng,
): Uint8Array {
  return seal(me, { key, kind, session }, step, to, body, rng);
}

function seal(me: ParticipantIdentity, r: Route, step: number, to: RosterEntry, body: Uint8Array, rng: Rng) {
  const base = {
    header: makeHeader(r.key.suite),
    keyId: r.key.keyId,
    kind: r.kind,
    step,
    session: r.session,
    from: me.id,
    to: to.id,
    enc: new Uint8Array(0),
    ciphertext: new Uint8Array(0),
  };
  const box = hpkeSeal(to.encKey, INFO, encodeMessage('EcdsaPeerMessage', base), body, rng);
  return signEnvelope(
    me,
    PayloadKind.ECDSA_MESSAGE,
    encodeMessage('EcdsaPeerMessage', { ...base, enc: box.enc, ciphertext: box.ciphertext }),
  );
}

/**
 * Opens the messages of one round addressed to me: exactly one from each of `from`, each signed
 * by that member's roster key, for this key, session, kind and step. Returns the bodies by index.
 */
function openAll(
  me: ParticipantIdentity,
  r: Route,
  step: number,
  from: readonly number[],
  envelopes: readonly Uint8Array[],
): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  if (!Array.isArray(envelopes)) throw new InvalidArgumentError('messages: expected a list');
  for (const bytes of envelopes) {
    const env = openEnvelope(bytes, PayloadKind.ECDSA_MESSAGE);
    const w = decodeMessage('EcdsaPeerMessage', env.payload);
    const idx = r.key.roster.findIndex((x) => x.id === w.from) + 1;
    const sender = r.key.roster[idx - 1];
    // Who signed it is all that is known: a message that claims another sender names nobody.
    if (!sender || !equalBytes(sender.signKey, env.sender) || !from.includes(idx))
      throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, `ECDSA ${r.kind}: a message from outside the session`);
    const same =
      w.keyId === r.key.keyId &&
      w.kind === r.kind &&
      w.step === step &&
      equalBytes(w.session, r.session) &&
      w.to === me.id;
    if (!same)
      throw new ProtocolError(
        ErrorCode.UNEXPECTED_MESSAGE,
        `ECDSA ${r.kind}: ${w.from}'s message belongs to another session, round or recipient`,
      );
    checkHeader(w.header, 'ECDSA message', r.key.suite);
    if (out.has(idx))
      throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, `ECDSA ${r.kind}: two messages from ${w.from}`);
    const aad = encodeMessage('EcdsaPeerMessage', { ...w, enc: new Uint8Array(0), ciphertext: new Uint8Array(0) });
    try {
      out.set(idx, me.open(w.enc, INFO, aad, w.ciphertext));
    } catch (e) {
      // Signed by its sender and not sealed to me: the sender's fault.
      throw new ProtocolError(ErrorCode.DECRYPT, `ECDSA ${r.kind}: ${w.from}'s message does not open`, [w.from], e);
    }
  }
  const missing = from.filter((j) => !out.has(j));
  if (missing.length)
    throw new ProtocolError(
      ErrorCode.UNEXPECTED_MESSAGE,
      `ECDSA ${r.kind}: no message from ${missing.map((j) => r.key.roster[j - 1]?.id).join(', ')}`,
    );
  return out;
}

/** Decodes each body, naming its sender when it is malformed. */
function decodeEach<T>(r: Route, bodies: Map<number, Uint8Array>, decode: (b: Uint8Array) => T): Map<number, T> {
  const out = new Map<number, T>();
  for (const [j, b] of bodies) {
    const who = r.key.roster[j - 1]?.id ?? String(j);
    try {
      out.set(j, decode(b));
    } catch (e) {
      throw new ProtocolError(ErrorCode.DECODE, `ECDSA ${r.kind}: malformed message from ${who}`, [who], e);
    }
  }
  return out;
}

function check(key: EcdsaKeyView, session: Uint8Array): void {
  if (key.suite.scheme !== 'ecdsa') throw new InvalidArgumentError(`key ${key.keyId} is not an ECDSA key`);
  if (!(session instanceof Uint8Array) || session.length !== 32) throw new InvalidArgumentError('session: 32 bytes');
}

/** The pairwise setup with every other roster member, as three steps of relayed messages. */
export class SetupSession {
  readonly #me: ParticipantIdentity;
  readonly #route: Route;
  readonly #rng: Rng;
  readonly #index: number;
  readonly #peers: number[];
  readonly #setup: EcdsaPairSetup;
  /** The bodies each pair exchanged, by peer index: [mine of round 1, theirs, mine of round 2, theirs]. */
  readonly #bodies = new Map<number, Uint8Array[]>();

  constructor(opts: { identity: ParticipantIdentity; key: EcdsaKeyView; session: Uint8Array; rng: Rng }) {
    check(opts.key, opts.session);
    this.#me = opts.identity;
    this.#route = { key: opts.key, kind: 'setup', session: opts.session };
    this.#rng = opts.rng;
    this.#index = rosterIndex(opts.key, opts.identity.id);
    this.#peers = opts.key.roster.map((_, i) => i + 1).filter((j) => j !== this.#index);
    this.#setup = new EcdsaPairSetup({
      keyId: utf8ToBytes(opts.key.keyId),
      me: this.#index,
      peers: this.#peers,
      // The pairs' generation: the key's epoch when they are set up (0 after the DKG; a reshare's
      // new roster sets up under its new epoch, so its session ids differ from every earlier one).
      epoch: opts.key.epoch,
      rng: opts.rng,
      name: (j) => opts.key.roster[j - 1]?.id ?? String(j),
    });
  }

  #send<T>(step: number, msgs: Map<number, T>, encode: (m: T) => Uint8Array): Uint8Array[] {
    return [...msgs].map(([j, m]) => {
      const body = encode(m);
      this.#keep(j, step === 1 ? 0 : 2, body);
      return seal(this.#me, this.#route, step, this.#route.key.roster[j - 1] as RosterEntry, body, this.#rng);
    });
  }

  #keep(j: number, slot: number, body: Uint8Array): void {
    const b = this.#bodies.get(j) ?? [];
    b[slot] = body;
    this.#bodies.set(j, b);
  }

  #received(got: Map<number, Uint8Array>, slot: number): Map<number, Uint8Array> {
    for (const [j, body] of got) this.#keep(j, slot, body);
    return got;
  }

  /**
   * What each pair exchanged, as one digest per peer (by id): both ends of a pair compute the same
   * one from the same four bodies, in the pair's order (lower roster index first). A member's word
   * that its setup is done carries them, so pairs stored from two runs of one session (a member
   * whose store was restored and that ran the session again) never go into use together.
   */
  transcripts(): Map<string, Uint8Array> {
    const out = new Map<string, Uint8Array>();
    for (const j of this.#peers) {
      const b = this.#bodies.get(j) ?? [];
      const [mine1, theirs1, mine2, theirs2] = [0, 1, 2, 3].map((k) => b[k] ?? new Uint8Array(0)) as [
        Uint8Array,
        Uint8Array,
        Uint8Array,
        Uint8Array,
      ];
      const lowFirst = this.#index < j;
      const [lo, hi] = lowFirst ? [this.#index, j] : [j, this.#index];
      const parts = lowFirst ? [mine1, theirs1, mine2, theirs2] : [theirs1, mine1, theirs2, mine2];
      out.set(
        (this.#route.key.roster[j - 1] as RosterEntry).id,
        H('setup-transcript', [this.#route.session, u16(lo), u16(hi), ...parts], 32),
      );
    }
    return out;
  }

  /** The key (its roster and epoch) this setup is for. */
  get key(): EcdsaKeyView {
    return this.#route.key;
  }

  step1(): Uint8Array[] {
    return this.#send(1, this.#setup.round1(), encodeSetup1);
  }

  /** Round 2: seconds of base OTs, with a pause to the event loop every few OTs (./steps.ts). */
  async step2(incoming: readonly Uint8Array[]): Promise<Uint8Array[]> {
    const got = decodeEach(
      this.#route,
      this.#received(openAll(this.#me, this.#route, 1, this.#peers, incoming), 1),
      decodeSetup1,
    );
    return this.#send(2, await drainAsync(this.#setup.round2Steps(got)), encodeSetup2);
  }

  async step3(incoming: readonly Uint8Array[]): Promise<PairRecords> {
    const got = decodeEach(
      this.#route,
      this.#received(openAll(this.#me, this.#route, 2, this.#peers, incoming), 3),
      decodeSetup2,
    );
    const pairs = await drainAsync(this.#setup.finishSteps(got));
    const roster = this.#route.key.roster;
    return {
      keyId: this.#route.key.keyId,
      me: this.#index,
      pairs: new Map([...pairs].map(([j, p]) => [(roster[j - 1] as RosterEntry).id, p])),
    };
  }
}

/** One presigning session among `signers` (ids), as three steps of relayed messages. */
export class PresignSession {
  readonly #me: ParticipantIdentity;
  readonly #route: Route;
  readonly #rng: Rng;
  readonly #peers: number[];
  readonly #signers: readonly string[];
  readonly #presign: EcdsaPresign;

  constructor(opts: {
    identity: ParticipantIdentity;
    key: EcdsaKeyView;
    /** The presignature id (sigid): 32 bytes this signer never used for this key before. */
    session: Uint8Array;
    signers: readonly string[];
    /** My Shamir share of the key (its scalar). */
    share: bigint;
    pairs: PairRecords;
    rng: Rng;
  }) {
    const { key } = opts;
    check(key, opts.session);
    if (new Set(opts.signers).size !== opts.signers.length)
      throw new InvalidArgumentError('signers: a participant is listed twice');
    if (opts.signers.length < Math.max(2, key.threshold))
      throw new InvalidArgumentError(`signers: at least ${Math.max(2, key.threshold)} (the key's threshold)`);
    const index = rosterIndex(key, opts.identity.id);
    const indices = opts.signers.map((id) => rosterIndex(key, id)).sort((a, b) => a - b);
    if (!indices.includes(index)) throw new InvalidArgumentError('signers: this participant is not among them');
    this.#me = opts.identity;
    this.#route = { key, kind: 'presign', session: opts.session };
    this.#rng = opts.rng;
    this.#peers = indices.filter((j) => j !== index);
    this.#signers = indices.map((j) => (key.roster[j - 1] as RosterEntry).id);
    // Pair states are of one roster: set up with this participant at `index` and each peer at its
    // index now (a record of another roster, or damaged, is refused rather than reinterpreted).
    if (opts.pairs.me !== index) throw new InvalidArgumentError('pairs: set up for another index of this participant');
    const pairs = new Map<number, PairState>();
    for (const j of this.#peers) {
      const p = opts.pairs.pairs.get((key.roster[j - 1] as RosterEntry).id);
      if (p && p.peer !== j)
        throw new InvalidArgumentError(`pairs: ${key.roster[j - 1]?.id} was set up at another index`);
      if (p) pairs.set(j, p);
    }
    this.#presign = new EcdsaPresign({
      keyId: utf8ToBytes(key.keyId),
      sigid: opts.session,
      me: index,
      signers: indices,
      share: opts.share,
      points: evaluationPoints(key),
      publicKey: key.publicKey,
      pairs,
      rng: opts.rng,
      name: (j) => key.roster[j - 1]?.id ?? String(j),
    });
  }

  /** The signers' ids in index order. */
  get signers(): readonly string[] {
    return this.#signers;
  }

  #send<T>(step: number, msgs: Map<number, T>, encode: (m: T) => Uint8Array): Uint8Array[] {
    return [...msgs].map(([j, m]) =>
      seal(this.#me, this.#route, step, this.#route.key.roster[j - 1] as RosterEntry, encode(m), this.#rng),
    );
  }

  step1(): Uint8Array[] {
    return this.#send(1, this.#presign.round1(), encodePresign1);
  }

  step2(incoming: readonly Uint8Array[]): Uint8Array[] {
    const got = decodeEach(this.#route, openAll(this.#me, this.#route, 1, this.#peers, incoming), decodePresign1);
    return this.#send(2, this.#presign.round2(got), encodePresign2);
  }

  step3(incoming: readonly Uint8Array[]): Presignature {
    const got = decodeEach(this.#route, openAll(this.#me, this.#route, 2, this.#peers, incoming), decodePresign2);
    return this.#presign.round3(got);
  }
}

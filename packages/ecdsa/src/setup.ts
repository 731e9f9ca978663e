/**
 * Pairwise setup after the DKG ([DKLs23] Protocol 3.6, setup step 3: "any initialisation
 * associated with F_RVOLE and F_Zero"). Every pair {i, j} of key holders runs, in two rounds:
 *  - two directed base-OT instances (base-ot.ts): inst(B=i, A=j) and inst(B=j, A=i);
 *  - a zero-sharing seed by commit-and-open ([DKLs23] §3.1, Functionality 3.4): each side commits
 *    to 32 random bytes with a 32-byte salt, then opens; the pair seed is the XOR of both.
 * The result (per counterparty: Bob's seeds, Alice's choices and seeds, the zero seed) does not
 * depend on the key share; it is secret and kept sealed like a share. `epoch` numbers its
 * generation: after a ban-class abort or a reshare the pair is set up again under a new epoch.
 */
import {
  DecodeError,
  ErrorCode,
  InvalidArgumentError,
  InvalidStateError,
  ProtocolError,
  type Rng,
} from '@tessera/core';
import {
  baseOtFinishSteps,
  baseOtRespondSteps,
  baseOtStart,
  type BaseOtChoices,
  type BaseOtSeeds,
  type BaseOtSender,
} from './base-ot.js';
import { H, u16, u32, xor } from './params.js';
import { drain } from './steps.js';

/** What one key holder keeps about one counterparty. */
export interface PairState {
  readonly peer: number;
  readonly epoch: number;
  /** Base-OT seeds of inst(B = me, A = peer): I am the multiplication receiver. */
  readonly bob: BaseOtSeeds;
  /** Base-OT choices of inst(B = peer, A = me): I am the multiplication sender. */
  readonly alice: BaseOtChoices;
  /** The pair's zero-sharing seed. */
  readonly zeroSeed: Uint8Array;
}

/** Setup round 1 to one counterparty: my base-OT point (as Bob) and my zero-seed commitment. */
export interface SetupMessage1 {
  readonly bobPoint: Uint8Array;
  readonly zeroCommit: Uint8Array;
}

/** Setup round 2 to one counterparty: my base-OT answer (as Alice) and my zero-seed opening. */
export interface SetupMessage2 {
  readonly pairs: readonly Uint8Array[];
  readonly zeroSeed: Uint8Array;
  readonly zeroSalt: Uint8Array;
}

export function setupSid(keyId: Uint8Array, i: number, j: number, epoch: number): Uint8Array {
  return H('setup-sid', [keyId, u16(Math.min(i, j)), u16(Math.max(i, j)), u32(epoch)], 32);
}

/** The session id of the directed instance where `bob` receives and `alice` sends. */
export function instSid(keyId: Uint8Array, bob: number, alice: number, epoch: number): Uint8Array {
  return H('inst-sid', [setupSid(keyId, bob, alice, epoch), u16(bob), u16(alice)], 32);
}

const zeroCommit = (sid: Uint8Array, from: number, to: number, seed: Uint8Array, salt: Uint8Array) =>
  H('zero-com', [sid, u16(from), u16(to), seed, salt], 32);

export function checkIndex(i: number, what: string): void {
  if (!Number.isInteger(i) || i < 1 || i > 0xffff) throw new InvalidArgumentError(`${what}: index must be 1..65535`);
}

/** One key holder's side of the pairwise setup with every other holder. */
export class EcdsaPairSetup {
  readonly #keyId: Uint8Array;
  readonly #me: number;
  readonly #peers: readonly number[];
  readonly #epoch: number;
  readonly #rng: Rng;
  readonly #name: (j: number) => string;
  #stage: 0 | 1 | 2 | 3 = 0;
  readonly #sender = new Map<number, BaseOtSender>();
  readonly #mySeed = new Map<number, { seed: Uint8Array; salt: Uint8Array }>();
  readonly #theirCommit = new Map<number, Uint8Array>();
  readonly #alice = new Map<number, BaseOtChoices>();

  constructor(opts: {
    keyId: Uint8Array;
    me: number;
    peers: readonly number[];
    epoch?: number;
    rng: Rng;
    /** Participant ids for errors (default: the index as a string). */
    name?: (index: number) => string;
  }) {
    checkIndex(opts.me, 'me');
    for (const j of opts.peers) checkIndex(j, 'peer');
    if (new Set([opts.me, ...opts.peers]).size !== opts.peers.length + 1 || opts.peers.length === 0)
      throw new InvalidArgumentError('peers: distinct indices other than mine, at least one');
    this.#keyId = opts.keyId;
    this.#me = opts.me;
    this.#peers = [...opts.peers].sort((a, b) => a - b);
    this.#epoch = opts.epoch ?? 0;
    this.#rng = opts.rng;
    this.#name = opts.name ?? String;
  }

  #advance(from: 0 | 1 | 2, what: string): void {
    if (this.#stage !== from) throw new InvalidStateError(`pair setup: ${what} out of order`);
    this.#stage = (from + 1) as 1 | 2 | 3;
  }

  #expect<T>(incoming: ReadonlyMap<number, T>, round: string): void {
    const got = [...incoming.keys()].sort((a, b) => a - b);
    if (got.length !== this.#peers.length || got.some((j, k) => j !== this.#peers[k]))
      throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, `pair setup ${round}: expected one message from each peer`);
  }

  round1(): Map<number, SetupMessage1> {
    this.#advance(0, 'round 1');
    const out = new Map<number, SetupMessage1>();
    for (const j of this.#peers) {
      const sender = baseOtStart(this.#rng);
      const seed = this.#rng(32);
      const salt = this.#rng(32);
      this.#sender.set(j, sender);
      this.#mySeed.set(j, { seed, salt });
      const sid = setupSid(this.#keyId, this.#me, j, this.#epoch);
      out.set(j, { bobPoint: sender.point, zeroCommit: zeroCommit(sid, this.#me, j, seed, salt) });
    }
    return out;
  }

  round2(incoming: ReadonlyMap<number, SetupMessage1>): Map<number, SetupMessage2> {
    return drain(this.round2Steps(incoming));
  }

  /** {@link round2} one base OT per step (./steps.ts: a node pauses between them). */
  *round2Steps(incoming: ReadonlyMap<number, SetupMessage1>): Generator<void, Map<number, SetupMessage2>> {
    this.#advance(1, 'round 2');
    this.#expect(incoming, 'round 1');
    const out = new Map<number, SetupMessage2>();
    for (const j of this.#peers) {
      const m = incoming.get(j) as SetupMessage1;
      if (!(m?.zeroCommit instanceof Uint8Array) || m.zeroCommit.length !== 32)
        throw new ProtocolError(ErrorCode.DECODE, `pair setup: malformed commitment from ${this.#name(j)}`, [
          this.#name(j),
        ]);
      this.#theirCommit.set(j, m.zeroCommit);
      let answer: { pairs: Uint8Array[]; choices: BaseOtChoices };
      try {
        answer = yield* baseOtRespondSteps(instSid(this.#keyId, j, this.#me, this.#epoch), m.bobPoint, this.#rng);
      } catch (e) {
        throw blame(e, this.#name(j));
      }
      this.#alice.set(j, answer.choices);
      const mine = this.#mySeed.get(j) as { seed: Uint8Array; salt: Uint8Array };
      out.set(j, { pairs: answer.pairs, zeroSeed: mine.seed, zeroSalt: mine.salt });
    }
    return out;
  }

  finish(incoming: ReadonlyMap<number, SetupMessage2>): Map<number, PairState> {
    return drain(this.finishSteps(incoming));
  }

  /** {@link finish} one base OT per step. */
  *finishSteps(incoming: ReadonlyMap<number, SetupMessage2>): Generator<void, Map<number, PairState>> {
    this.#advance(2, 'finish');
    this.#expect(incoming, 'round 2');
    const out = new Map<number, PairState>();
    for (const j of this.#peers) {
      const m = incoming.get(j) as SetupMessage2;
      const who = this.#name(j);
      const sid = setupSid(this.#keyId, this.#me, j, this.#epoch);
      const opened =
        m?.zeroSeed instanceof Uint8Array &&
        m.zeroSeed.length === 32 &&
        m.zeroSalt instanceof Uint8Array &&
        m.zeroSalt.length === 32 &&
        equal(zeroCommit(sid, j, this.#me, m.zeroSeed, m.zeroSalt), this.#theirCommit.get(j) as Uint8Array);
      if (!opened)
        throw new ProtocolError(
          ErrorCode.BAD_COMMITMENT,
          `pair setup: ${who}'s zero seed does not open its commitment`,
          [who],
        );
      let bob: BaseOtSeeds;
      try {
        bob = yield* baseOtFinishSteps(
          instSid(this.#keyId, this.#me, j, this.#epoch),
          this.#sender.get(j) as BaseOtSender,
          m.pairs,
        );
      } catch (e) {
        throw blame(e, who);
      }
      const mine = this.#mySeed.get(j) as { seed: Uint8Array };
      out.set(j, {
        peer: j,
        epoch: this.#epoch,
        bob,
        alice: this.#alice.get(j) as BaseOtChoices,
        zeroSeed: xor(mine.seed, m.zeroSeed),
      });
    }
    this.#sender.clear();
    this.#mySeed.clear();
    return out;
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= (a[i] as number) ^ (b[i] as number);
  return d === 0;
}

/** A decoding failure in a peer's message, as a protocol error naming that peer. */
function blame(e: unknown, who: string): Error {
  if (e instanceof DecodeError) return new ProtocolError(ErrorCode.DECODE, `${e.message} (from ${who})`, [who], e);
  return e as Error;
}

export { equal as constantTimeEqual, blame };

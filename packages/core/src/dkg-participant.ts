/**
 * A participant's side of the coordinator-driven DKG, as link tasks: start (round 1), the three
 * bundles (round-1 envelopes → round 2; round-2 envelopes → confirmation; confirmations → the
 * key), abort. Shared by signer nodes and devices; persisting the resulting share is the
 * caller's job (it must be durable before `dkgDone` is answered).
 */
import { toHex, type Rng } from './bytes.js';
import {
  DkgAwaitingConfirmations,
  DkgAwaitingRound1,
  DkgAwaitingRound2,
  startDkg,
  type DkgConfig,
  type DkgOutput,
} from './dkg.js';
import { ErrorCode, InvalidArgumentError, ProtocolError } from './errors.js';
import { participantFromWire, type ParticipantIdentity } from './identity.js';
import { keyIdFor } from './records.js';
import { suiteByWireId } from './suites.js';
import { decodeMessage } from './wire/codec.js';
import type { LinkTask } from './wire/link.js';

type DkgState = DkgAwaitingRound1 | DkgAwaitingRound2 | DkgAwaitingConfirmations;

/** What a finished DKG hands its participant. */
export interface DkgFinished extends DkgOutput {
  readonly keyId: string;
}

export class DkgParticipant {
  readonly #sessions = new Map<string, DkgState>();
  constructor(
    private readonly identity: ParticipantIdentity,
    private readonly rng: Rng,
  ) {}

  /** Decodes DKG params; `check` may refuse the roster (policy) by throwing. Returns the round-1 envelope. */
  start(paramsBytes: Uint8Array | undefined, check?: (cfg: DkgConfig) => void): Uint8Array {
    if (!(paramsBytes instanceof Uint8Array)) throw new InvalidArgumentError('DKG params: expected bytes');
    const params = decodeMessage('DkgParams', paramsBytes);
    const suite = params.header ? suiteByWireId(params.header.suite) : undefined;
    if (!suite || params.header?.version !== 1) throw new InvalidArgumentError('DKG params: unknown suite or version');
    const cfg: DkgConfig = {
      suite,
      sessionId: params.sessionId,
      threshold: params.threshold,
      participants: params.participants.map(participantFromWire),
    };
    check?.(cfg);
    const { state, round1 } = startDkg(cfg, this.identity, this.rng);
    const key = toHex(state.sessionHash);
    if (this.#sessions.has(key)) throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, 'DKG session already started');
    this.#sessions.set(key, state);
    return round1;
  }

  /** Advances a session by one bundle: an envelope to send, or the finished key. */
  bundle(b: LinkTask['dkgBundle']): { envelope: Uint8Array } | { done: DkgFinished } {
    if (!b || !(b.sessionHash instanceof Uint8Array)) throw new InvalidArgumentError('missing DKG bundle');
    const sk = toHex(b.sessionHash);
    const state = this.#sessions.get(sk);
    if (!state) throw new ProtocolError(ErrorCode.NOT_FOUND, 'no such DKG session here');
    if (!Array.isArray(b.envelopes) || !b.envelopes.every((e) => e instanceof Uint8Array))
      throw new InvalidArgumentError('DKG bundle: envelopes must be a list of bytes');
    try {
      if (b.round === 1 && state instanceof DkgAwaitingRound1) {
        const next = state.receiveRound1(b.envelopes);
        this.#sessions.set(sk, next.state);
        return { envelope: next.round2 };
      }
      if (b.round === 2 && state instanceof DkgAwaitingRound2) {
        const next = state.receiveRound2(b.envelopes);
        this.#sessions.set(sk, next.state);
        return { envelope: next.confirm };
      }
      if (b.round === 3 && state instanceof DkgAwaitingConfirmations) {
        const out = state.receiveConfirmations(b.envelopes);
        this.#sessions.delete(sk);
        return { done: { ...out, keyId: keyIdFor(state.sessionHash) } };
      }
    } catch (e) {
      this.#sessions.delete(sk);
      throw e;
    }
    this.#sessions.delete(sk);
    throw new ProtocolError(
      ErrorCode.UNEXPECTED_MESSAGE,
      `DKG bundle for round ${b.round} does not fit the session state`,
    );
  }

  abort(sessionHash: Uint8Array | undefined): void {
    if (sessionHash instanceof Uint8Array) this.#sessions.delete(toHex(sessionHash));
  }
}

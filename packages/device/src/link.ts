/**
 * The device's side of the participant link: the long-poll loop through the gateway (the
 * cluster's tasks come back with the next poll's results) and the tasks a device takes — DKG
 * steps, refresh and reshare steps (core's state machines, the same as a signer node's), the
 * pairwise setup of an ECDSA key (`@tessera/ecdsa`'s, also a node's), and nothing else: a device co-signs offline, never on the coordinator's request.
 */
import {
  decodeLinkTask,
  decodeMessage,
  encodeKeyRecord,
  encodeKeyShareRecord,
  encodeLinkResult,
  encodeMessage,
  isTesseraError,
  keyDigest,
  type KeyShareRecord,
  type LinkResult,
  type LinkTask,
  type OperatorPolicy,
  type ParticipantIdentity,
  type Rng,
} from '@tessera/core';
import type { DkgParticipant, LifecycleParticipant } from '@tessera/core';
import { DeviceError } from './errors.js';
import type { DeviceEmitter } from './events.js';
import type { GatewayClient } from './gateway-client.js';
import type { DeviceStorage } from './storage.js';

/** What the task handler needs of its device. */
export interface LinkTaskContext {
  me(): ParticipantIdentity;
  readonly rng: Rng;
  readonly clock: () => number;
  readonly store: DeviceStorage;
  readonly operators: OperatorPolicy | undefined;
  readonly events: DeviceEmitter;
  serial<T>(fn: () => Promise<T>): Promise<T>;
  /** Each key's epoch now (to tell the app which keys a lifecycle step moved). */
  epochs(): Promise<Map<string, number>>;
}

/** The tasks a linked device takes, and what it agreed to join. */
export class LinkTasks {
  /** Keygens this device asked for, in progress, and links opened with `acceptKeygen`. */
  acceptKeygen = 0;
  /** Links opened with `acceptKeygen`: DKGs that others (another device) start are joined. */
  acceptFromOthers = 0;
  /** Participants named by this device's own keygen calls in progress (other devices among them are welcome). */
  readonly keygenWith = new Set<string>();
  /** Presigning sessions (`<keyId>.<session hex>`) of the ECDSA reservations this device is asking for now. */
  readonly presignFor = new Set<string>();
  readonly #ctx: LinkTaskContext;
  #dkg: DkgParticipant | undefined;
  #lifecycle: LifecycleParticipant | undefined;
  #ecdsa: import('./ecdsa-tasks.js').DeviceEcdsa | undefined;

  constructor(ctx: LinkTaskContext) {
    this.#ctx = ctx;
  }

  async handle(task: LinkTask): Promise<LinkResult> {
    const taskId = task.taskId;
    try {
      this.#dkg ??= new (await import('./participants.js')).DkgParticipant(this.#ctx.me(), this.#ctx.rng);
      switch (task.body) {
        case 'dkgStart': {
          const me = this.#ctx.me().id;
          if (this.acceptKeygen <= 0)
            throw new DeviceError('POLICY_DENIED', 'this device joins only key generations it asked for');
          return {
            taskId,
            body: 'envelope',
            envelope: this.#dkg.start(task.dkgStart?.params, (cfg) => {
              // In a key this device asked for, no other device co-signs offline with its share,
              // unless this device was linked to accept keys others start (two-device keys).
              const others = cfg.participants.filter((p) => p.device && p.id !== me && !this.keygenWith.has(p.id));
              if (others.length && this.acceptFromOthers <= 0)
                throw new DeviceError(
                  'POLICY_DENIED',
                  `the key's roster has another device (${others.map((p) => p.id).join(', ')}) this device did not agree to`,
                );
              if (!cfg.participants.some((p) => p.id === me && p.device))
                throw new DeviceError('POLICY_DENIED', "the key's roster does not record this participant as a device");
            }),
          };
        }
        case 'dkgBundle': {
          const step = this.#dkg.bundle(task.dkgBundle);
          if ('envelope' in step) return { taskId, body: 'envelope', envelope: step.envelope };
          const out = step.done;
          const rec: KeyShareRecord = {
            keyId: out.keyId,
            epoch: 0,
            key: out.key,
            share: out.share,
            transcriptHash: out.transcriptHash,
            createdAt: this.#ctx.clock(),
          };
          // Durable before the coordinator hears the DKG is done here.
          await this.#ctx.store.put(`key/${out.keyId}`, encodeKeyShareRecord(rec));
          return {
            taskId,
            body: 'dkgDone',
            dkgDone: {
              keyId: out.keyId,
              keyDigest: keyDigest(out.key),
              keyRecord: encodeKeyRecord({ keyId: out.keyId, epoch: 0, key: out.key, createdAt: rec.createdAt }),
            },
          };
        }
        case 'dkgAbort':
          this.#dkg.abort(task.dkgAbort?.sessionHash);
          return { taskId, body: 'ok', ok: true };
        case 'lifecycle': {
          const env = await this.#lifecycleStep(task.lifecycle);
          return env ? { taskId, body: 'envelope', envelope: env } : { taskId, body: 'ok', ok: true };
        }
        case 'ecdsa':
          this.#ecdsa ??= new (await import('./ecdsa-tasks.js')).DeviceEcdsa({
            ...this.#ctx,
            mayPresign: (keyId, session) => this.presignFor.has(`${keyId}.${session}`),
          });
          return await this.#ecdsa.handle(task);
        default:
          throw new DeviceError(
            'NOT_SUPPORTED',
            `a device does not take ${String(task.body)} tasks: it co-signs offline`,
          );
      }
    } catch (e) {
      // A DeviceError is a TesseraError: its code and message are the SDK's own, never foreign.
      const known = isTesseraError(e);
      return {
        taskId,
        body: 'error',
        error: known
          ? { code: e.code, message: e.message, culprits: [...e.culprits] }
          : { code: 'INTERNAL', message: 'internal error', culprits: [] },
      };
    }
  }

  /**
   * A refresh or reshare step: core's `LifecycleParticipant`, the same state machine as a signer
   * node's (verified commits, pending outcomes, operator authorisations where operators are
   * pinned). A phone that was offline gets each stored session when it links and applies it.
   */
  async #lifecycleStep(t: LinkTask['lifecycle']): Promise<Uint8Array | undefined> {
    const { LifecycleParticipant, DeviceLifecycleStore } = await import('./participants.js');
    this.#lifecycle ??= new LifecycleParticipant(
      this.#ctx.me(),
      this.#ctx.rng,
      new DeviceLifecycleStore(this.#ctx.store, this.#ctx.clock),
      {
        ...(this.#ctx.operators ? { operators: this.#ctx.operators } : {}),
        requireAuthorisation: false,
        // A device pins no nodes: the roster its pinned operators approved (ids and keys) is its
        // authority; the nodes check their own pins as well.
        pinned: () => true,
        // Joining a key by reshare is like joining a DKG: only when this device agreed to.
        mayJoin: () => this.acceptKeygen > 0,
        now: this.#ctx.clock,
      },
    );
    const lc = this.#lifecycle;
    return this.#ctx.serial(async () => {
      const before = await this.#ctx.epochs();
      const out = await lc.handle(t);
      for (const [keyId, epoch] of await this.#ctx.epochs()) {
        const previous = before.get(keyId) ?? -1;
        if (epoch !== previous) this.#ctx.events.emit('lifecycle', { keyId, epoch, previous });
      }
      return out;
    });
  }
}

/** A running link: `stop` ends the loop (and the poll in flight); `done` settles when it has. */
export interface Link {
  stop(): void;
  readonly done: Promise<void>;
}

/**
 * Opens the link: a first poll registers the device (and fails if the gateway cannot be
 * reached), then polls in a loop, each poll carrying the previous tasks' results, and backs off
 * while the network is away. `link` events tell the app when it is up or down.
 */
export async function openLink(
  client: GatewayClient,
  state: () => Promise<{ keys: string[]; pending: number }>,
  events: DeviceEmitter,
  handle: (t: LinkTask) => Promise<LinkResult>,
  onStop: () => void,
): Promise<Link> {
  const poll = async (results: LinkResult[], waitMs: number) =>
    encodeMessage('DevicePoll', { results: results.map(encodeLinkResult), waitMs, ...(await state()), bye: false });
  await client.call('poll', await poll([], 0), 10_000);
  let up = true;
  events.emit('link', { up });
  let stopped = false;
  const ctl = new AbortController();
  const done = (async () => {
    let results: LinkResult[] = [];
    let backoff = 250;
    while (!stopped) {
      try {
        // After a failure, a short poll first: the link is known to be back at once.
        const body = await poll(results, up ? 15_000 : 0);
        const tasks = decodeMessage('DeviceTasks', await client.call('poll', body, 30_000, ctl.signal)).tasks.map(
          decodeLinkTask,
        );
        if (!up) events.emit('link', { up: (up = true) });
        results = [];
        for (const t of tasks) results.push(await handle(t));
        backoff = 250;
      } catch {
        if (stopped) break;
        if (up) events.emit('link', { up: (up = false) });
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(5_000, backoff * 2);
      }
    }
  })();
  return {
    stop: () => {
      stopped = true;
      ctl.abort();
      if (up) events.emit('link', { up: (up = false) });
      onStop();
    },
    done,
  };
}

/** Tells the cluster the device is gone, so no session waits for it (best effort). */
export async function sayBye(client: GatewayClient, pending: number): Promise<void> {
  await client
    .call('poll', encodeMessage('DevicePoll', { results: [], waitMs: 0, keys: [], pending, bye: true }), 3_000)
    .catch(() => undefined);
}

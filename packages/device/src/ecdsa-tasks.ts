/**
 * The ECDSA tasks a linked device takes (loaded only when one comes: a device that holds no
 * ECDSA key never downloads `@tessera/ecdsa`): the pairwise setup of an ECDSA key it holds a
 * share of — `@tessera/ecdsa`'s two-phase setup state machine, the same one a signer node runs,
 * over the device's sealed store (every batch durable before it resolves). Pairs a device stored
 * are never replaced on the coordinator's word, as on a node.
 */
import {
  decodeKeyShareRecord,
  type LinkResult,
  type LinkTask,
  type ParticipantIdentity,
  type Rng,
} from '@tessera/core';
import { EcdsaSetups, type EcdsaAnswer } from '@tessera/ecdsa';
import { DeviceError } from './errors.js';
import type { DeviceStorage } from './storage.js';

export class DeviceEcdsa {
  readonly #setups: EcdsaSetups;

  constructor({ me, rng, store }: { me(): ParticipantIdentity; rng: Rng; store: DeviceStorage }) {
    this.#setups = new EcdsaSetups({
      identity: me(),
      rng,
      store: { get: (k) => store.get(k), batch: (ops) => store.batch(ops) },
      // A device keeps no audit chain: what it stored is evidence enough (the words are kept).
      audit: async () => {},
      key: async (keyId) => {
        const b = await store.get(`key/${keyId}`);
        if (!b) throw new DeviceError('NOT_FOUND', `this device holds no share of key ${keyId.slice(0, 64)}`);
        return decodeKeyShareRecord(b);
      },
    });
  }

  /** One ECDSA task's answer on the link (a refusal is thrown, and answered by the link). */
  async handle(task: LinkTask): Promise<LinkResult> {
    const taskId = task.taskId;
    const a = await this.#task(task.ecdsa);
    if ('envelopes' in a) return { taskId, body: 'ecdsa', ecdsa: { envelopes: a.envelopes } };
    if ('envelope' in a) return { taskId, body: 'envelope', envelope: a.envelope };
    return { taskId, body: 'ok', ok: true };
  }

  #task(t: LinkTask['ecdsa']): Promise<EcdsaAnswer> {
    if (!t) throw new DeviceError('INVALID_ARGUMENT', 'missing ECDSA task');
    if (!(t.session instanceof Uint8Array) || t.session.length !== 32)
      throw new DeviceError('INVALID_ARGUMENT', 'ECDSA session: 32 bytes');
    if (t.kind === 'setup') return this.#setups.task(t);
    throw new DeviceError('NOT_SUPPORTED', `a device does not take ECDSA ${String(t.kind).slice(0, 32)} tasks`);
  }
}

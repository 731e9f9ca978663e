/**
 * What an enrolled device may ask through the device gateway, once its call is authenticated,
 * fresh, for this cluster, not replayed and within its rate: poll (its half of the participant
 * link), keygen (a key of the device and signer nodes, rate limited apart), reserve (nonces from
 * co-signers for offline signing), submit (complete an offline package), keys (its keys) and
 * packages (the cluster's record of its offline packages, for its reconciliation).
 * Each takes the call's body message and returns the response message, encoded.
 */
import { encodeLinkTask, decodeMessage, encodeMessage, suiteByWireId, type ParticipantPublic } from '@tessera/core';
import type { Coordinator } from './coordinator.js';
import { GatewayError, limited } from './gateway-http.js';
import type { DeviceLinks } from './gateway-link.js';
import type { ClientBuckets } from './gateway-limits.js';
import { keyInfoToWire } from './types.js';

/** What the operations use. */
export interface DeviceOpsContext {
  readonly coordinator: Coordinator;
  readonly links: DeviceLinks;
  /** Key generations each device may start. */
  readonly keygenBuckets: ClientBuckets;
}

/**
 * Runs `op` for the authenticated device `info` with the call's `body` (`signed`: the whole signed
 * call, passed on where co-signers read the device's own word); returns the encoded response.
 */
export async function deviceOp(
  c: DeviceOpsContext,
  op: string,
  info: ParticipantPublic,
  body: Uint8Array,
  signed: Uint8Array = new Uint8Array(0),
): Promise<Uint8Array> {
  const { coordinator } = c;
  switch (op) {
    case 'poll': {
      const p = decodeMessage('DevicePoll', body);
      c.links.admit(info.id);
      const tasks = await c.links.poll(info, p);
      return encodeMessage('DeviceTasks', { tasks: tasks.map(encodeLinkTask) });
    }
    case 'keygen': {
      const k = decodeMessage('KeygenRequest', body);
      const kr = c.keygenBuckets.take(info.id);
      if (kr !== 'ok') throw limited(kr, c.keygenBuckets, info.id, 'device (key generations)');
      const suite = suiteByWireId(k.suite);
      if (!suite) throw new GatewayError('INVALID_ARGUMENT', `unknown suite number ${k.suite}`);
      // No participants named: the device and every connected signer node (as the CLI's help says).
      const others = k.participants.length
        ? k.participants
        : coordinator.connected().filter((id) => !coordinator.device(id));
      const participants = [...new Set([info.id, ...others])];
      return encodeMessage(
        'KeyInfo',
        keyInfoToWire(await coordinator.keygen({ suite: suite.id, threshold: k.threshold, participants })),
      );
    }
    case 'reserve': {
      const r = decodeMessage('DeviceReserve', body);
      const out = await coordinator.reserve(info.id, {
        keyId: r.keyId,
        count: r.count,
        cosigners: r.cosigners,
        ttlMs: r.ttlMs,
        ...(r.allowance ? { allowance: r.allowance } : {}),
        // The flag reaches the co-signers as the device signed it: they read it themselves.
        ...(r.takesIntegrityRule ? { deviceCall: signed } : {}),
        ...(r.presignSeed?.length ? { presignSeed: r.presignSeed } : {}),
      });
      return encodeMessage('DeviceReserved', {
        slots: out.slots.map((s) => ({ reservations: s })),
        errors: out.errors,
      });
    }
    case 'submit': {
      const r = decodeMessage('SubmitPackageRequest', body);
      return encodeMessage(
        'SubmitPackageResponse',
        await coordinator.completePackage(r.package, { submitter: info.id }),
      );
    }
    case 'keys':
      return encodeMessage('DeviceKeys', { keys: coordinator.keysOf(info.id).map(keyInfoToWire) });
    case 'packages': {
      // Only the calling device's own record: its id comes from the authenticated call.
      const r = decodeMessage('DevicePackages', body);
      return encodeMessage('DevicePackageList', await coordinator.devicePackages(info.id, r.since));
    }
    default:
      throw new GatewayError('NOT_FOUND', `no operation ${op}`);
  }
}

/**
 * Link tasks and results as protobuf objects and back. The gRPC link gets these shapes from
 * proto-loader (`oneofs: true` adds `body`); the device gateway carries them inside DevicePoll /
 * DeviceTasks through the core codec, which leaves `body` off: these helpers add and strip it.
 */
import type { LinkResult, LinkTask } from './link.js';
import type { WireTypes } from './types.js';

const TASK_BODIES = [
  'dkgStart',
  'dkgBundle',
  'dkgAbort',
  'commit',
  'sign',
  'audit',
  'reserve',
  'complete',
  'lifecycle',
  'revoke',
  'ecdsa',
  'ecdsaSign',
] as const;
const RESULT_BODIES = ['error', 'envelope', 'dkgDone', 'commitments', 'ok', 'audit', 'reservations', 'ecdsa'] as const;

function strip(o: { body?: string; taskId: number }): Record<string, unknown> {
  const out: Record<string, unknown> = { taskId: o.taskId };
  if (o.body) out[o.body] = (o as unknown as Record<string, unknown>)[o.body];
  return out;
}

function withBody<T>(o: Record<string, unknown>, bodies: readonly string[]): T {
  const body = bodies.find((b) => o[b] !== undefined && o[b] !== null);
  return { ...o, taskId: Number(o.taskId ?? 0), ...(body ? { body } : {}) } as T;
}

export function encodeLinkTask(t: LinkTask): WireTypes['Task'] {
  return strip(t) as WireTypes['Task'];
}
export function decodeLinkTask(o: WireTypes['Task']): LinkTask {
  return withBody<LinkTask>(o as Record<string, unknown>, TASK_BODIES);
}
export function encodeLinkResult(r: LinkResult): WireTypes['TaskResult'] {
  return strip(r) as WireTypes['TaskResult'];
}
export function decodeLinkResult(o: WireTypes['TaskResult']): LinkResult {
  return withBody<LinkResult>(o as Record<string, unknown>, RESULT_BODIES);
}

/**
 * Delivering the device's queue (`Device.sync`): every pending package in queue order, a few in
 * flight, each outcome recorded durably with its journal entry — completed (the signature checked
 * with the plain verifier first), failed for good (a code after which it can never complete), or
 * still pending (the cluster unreachable: the rest wait, in order, for the next sync).
 */
import { decodeMessage, encodeMessage, fromHex, groupPublicKey, toHex, type KeyShareRecord } from '@tessera/core';
import { DeviceError } from './errors.js';
import type { DeviceEmitter } from './events.js';
import type { GatewayClient } from './gateway-client.js';
import type { Journal } from './journal.js';
import { DeviceStorage } from './storage.js';

export interface QueuedPackage {
  seq: number;
  packageId: string;
  keyId: string;
  message: string;
  bytes: string;
  createdAt: number;
  state: 'pending' | 'completed' | 'failed';
  signature?: string;
  signers?: string[];
  completedAt?: number;
  lastError?: { code: string; message: string };
}

export interface SyncResult {
  completed: { packageId: string; keyId: string; message: string; signature: string; signers: string[] }[];
  pending: { packageId: string; keyId: string; reason: string; code: string }[];
  failed: { packageId: string; keyId: string; code: string; reason: string }[];
}

/** Codes after which a package can never complete: it leaves the queue as failed. */
const FINAL = new Set([
  'SIGNATURE_INVALID',
  'RESERVATION_USED',
  'RESERVATION_EXPIRED',
  'RESERVATION_UNKNOWN',
  'RESERVATION_INVALID',
  'BAD_SIGNATURE_SHARE',
  'OVER_ALLOWANCE',
  'PAYMENT_MISMATCH',
  'DECODE',
  'INVALID_ARGUMENT',
  'WRONG_SUITE',
  'NOT_FOUND',
  'POLICY_DENIED',
]);

export interface SyncContext {
  store: DeviceStorage;
  journal: Journal;
  client: GatewayClient;
  events: DeviceEmitter;
  clock: () => number;
  key(keyId: string): Promise<KeyShareRecord>;
}

/** Submits the pending queue (up to `concurrency`, default 8, at once, at most 32). */
export async function deliverQueue(ctx: SyncContext, opts: { concurrency?: number } = {}): Promise<SyncResult> {
  // A journal altered on disk stops the sync before anything is delivered.
  await ctx.journal.read();
  const items: [string, QueuedPackage][] = [];
  for await (const [k, v] of ctx.store.entries('queue/')) {
    const item = JSON.parse(new TextDecoder().decode(v)) as QueuedPackage;
    if (item.state === 'pending') items.push([k, item]);
  }
  type Outcome =
    | { kind: 'completed'; r: SyncResult['completed'][number] }
    | { kind: 'pending'; r: SyncResult['pending'][number] }
    | { kind: 'failed'; r: SyncResult['failed'][number] };
  const outcomes: Outcome[] = new Array(items.length);
  let unreachable: DeviceError | undefined;
  let next = 0;
  let done = 0;
  const progress = (o: Outcome) => {
    ctx.events.emit('sync', { done: ++done, total: items.length, packageId: o.r.packageId, state: o.kind });
    if (o.kind === 'pending') return;
    const { packageId, keyId } = o.r;
    ctx.events.emit(
      'package',
      o.kind === 'completed'
        ? { packageId, keyId, state: 'completed', signature: o.r.signature }
        : { packageId, keyId, state: 'refused', code: o.r.code },
    );
  };
  // Submitted in queue order; a few in flight at once hide the round trips (each package is
  // independent: its own reservations, its own result).
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) {
      const [k, item] = items[i] as [string, QueuedPackage];
      if (unreachable) {
        outcomes[i] = {
          kind: 'pending',
          r: { packageId: item.packageId, keyId: item.keyId, code: unreachable.code, reason: unreachable.message },
        };
        progress(outcomes[i] as Outcome);
        continue;
      }
      try {
        const r = decodeMessage(
          'SubmitPackageResponse',
          await ctx.client.call(
            'submit',
            encodeMessage('SubmitPackageRequest', { package: fromHex(item.bytes) }),
            60_000,
          ),
        );
        const rec = await ctx.key(item.keyId);
        if (
          r.packageId !== item.packageId ||
          !rec.key.suite.verify(r.signature, fromHex(item.message), groupPublicKey(rec.key))
        )
          // Not final: the answer may be damaged or not the cluster's; the next sync asks again
          // (the cluster returns its stored result). SIGNATURE_INVALID from the cluster is final.
          throw new DeviceError('UNEXPECTED_MESSAGE', 'the cluster returned a signature that does not verify');
        const done: QueuedPackage = {
          ...item,
          state: 'completed',
          signature: toHex(r.signature),
          signers: r.signers,
          completedAt: ctx.clock(),
        };
        await ctx.journal.append(
          [
            {
              kind: 'completed',
              keyId: item.keyId,
              packageId: item.packageId,
              signature: done.signature as string,
            },
          ],
          [{ type: 'put', key: k, value: DeviceStorage.json(done) }],
        );
        outcomes[i] = {
          kind: 'completed',
          r: {
            packageId: item.packageId,
            keyId: item.keyId,
            message: item.message,
            signature: done.signature as string,
            signers: r.signers,
          },
        };
      } catch (e) {
        const code = (e as { code?: string }).code ?? 'INTERNAL';
        const message = (e as Error).message;
        if (FINAL.has(code)) {
          await ctx.journal.append(
            [{ kind: 'refused', keyId: item.keyId, packageId: item.packageId, code, reason: message }],
            [
              {
                type: 'put',
                key: k,
                value: DeviceStorage.json({
                  ...item,
                  state: 'failed',
                  lastError: { code, message },
                } satisfies QueuedPackage),
              },
            ],
          );
          outcomes[i] = {
            kind: 'failed',
            r: { packageId: item.packageId, keyId: item.keyId, code, reason: message },
          };
        } else {
          await ctx.store.put(k, DeviceStorage.json({ ...item, lastError: { code, message } } satisfies QueuedPackage));
          outcomes[i] = {
            kind: 'pending',
            r: { packageId: item.packageId, keyId: item.keyId, code, reason: message },
          };
          // The cluster itself is unreachable: keep the rest for the next sync, in order.
          if (e instanceof DeviceError && code === 'UNAVAILABLE' && message.startsWith('cannot reach')) unreachable = e;
        }
      }
      progress(outcomes[i] as Outcome);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 8, 32)) }, worker));
  const result: SyncResult = { completed: [], pending: [], failed: [] };
  for (const o of outcomes) {
    if (o.kind === 'completed') result.completed.push(o.r);
    else if (o.kind === 'pending') result.pending.push(o.r);
    else result.failed.push(o.r);
  }
  return result;
}

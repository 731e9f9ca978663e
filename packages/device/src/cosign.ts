/**
 * Two devices of one key sign together with no cluster (`Device.proposeCosign / cosign /
 * completeCosign`): the proposer's nonce waits in its store as `cosign/<request digest>` (sealed
 * like every record) and is replaced by a spent marker, durably, before it is used — so an answer
 * completes at most once, even across a crash.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import {
  answerCosignRequest,
  completeCosign,
  createCosignRequest,
  decodeMessage,
  fromHex,
  openCosignRequest,
  openCosignResponse,
  toHex,
  type KeyShareRecord,
  type ParticipantIdentity,
  type Rng,
} from '@tessera/core';
import { DeviceError } from './errors.js';
import { DeviceStorage } from './storage.js';

export interface CosignContext {
  store: DeviceStorage;
  identity(): ParticipantIdentity;
  key(keyId: string): Promise<KeyShareRecord>;
  rng: Rng;
  clock: () => number;
}

/** Round one on the proposer: its commitment and the message; the nonce kept sealed. */
export async function propose(
  ctx: CosignContext,
  req: { keyId: string; message: Uint8Array },
): Promise<{ request: Uint8Array; requestId: string }> {
  const rec = await ctx.key(req.keyId);
  const p = createCosignRequest({
    identity: ctx.identity(),
    key: rec.key,
    share: rec.share,
    keyId: rec.keyId,
    epoch: rec.epoch,
    message: req.message,
    rng: ctx.rng,
  });
  const id = toHex(sha256(p.requestEnvelope));
  await ctx.store.put(
    `cosign/${id}`,
    DeviceStorage.json({ request: toHex(p.requestEnvelope), nonce: toHex(p.nonceSecret), keyId: rec.keyId }),
  );
  p.nonceSecret.fill(0);
  return { request: p.requestEnvelope, requestId: id.slice(0, 32) };
}

/** Round two on the other device: checks the request came from a participant of the key, then answers. */
export async function answer(
  ctx: CosignContext,
  request: Uint8Array,
): Promise<{ response: Uint8Array; keyId: string; message: string; from: string }> {
  const env = decodeMessage('Envelope', request);
  const w = decodeMessage('CosignRequest', env.payload);
  const rec = await ctx.key(w.keyId);
  const opened = openCosignRequest(rec.key, request);
  if (opened.epoch !== rec.epoch)
    throw new DeviceError('INVALID_ARGUMENT', `request is for epoch ${opened.epoch}, this device holds ${rec.epoch}`);
  return {
    response: answerCosignRequest({
      identity: ctx.identity(),
      key: rec.key,
      share: rec.share,
      request: opened,
      rng: ctx.rng,
    }),
    keyId: rec.keyId,
    message: toHex(opened.message),
    from: opened.device,
  };
}

/** Back on the proposer: verifies the answer, spends the nonce durably, signs once, aggregates. */
export async function complete(
  ctx: CosignContext,
  response: Uint8Array,
): Promise<{ keyId: string; message: string; signature: string; signers: string[] }> {
  const w = decodeMessage('CosignResponse', response);
  const id = toHex(w.requestDigest);
  const k = `cosign/${id}`;
  const spent = `cosign-spent/${id}`;
  const pending = await ctx.store.getJson<{ request: string; nonce: string; keyId: string }>(k);
  if (!pending) {
    if (await ctx.store.get(spent))
      throw new DeviceError(
        'INVALID_STATE',
        'this request was already completed, or its completion was interrupted: its nonce is spent; propose again',
      );
    throw new DeviceError('NOT_FOUND', 'no pending request of this device matches this answer');
  }
  const rec = await ctx.key(pending.keyId);
  const requestEnvelope = fromHex(pending.request);
  openCosignResponse(rec.key, requestEnvelope, response);
  await ctx.store.batch([
    { type: 'del', key: k },
    { type: 'put', key: spent, value: DeviceStorage.json({ keyId: rec.keyId, spentAt: ctx.clock() }) },
  ]);
  const nonceSecret = fromHex(pending.nonce);
  try {
    const out = completeCosign({
      key: rec.key,
      share: rec.share,
      pending: { requestEnvelope, nonceSecret },
      response,
    });
    return { keyId: rec.keyId, message: toHex(out.message), signature: toHex(out.signature), signers: out.signers };
  } finally {
    nonceSecret.fill(0);
  }
}

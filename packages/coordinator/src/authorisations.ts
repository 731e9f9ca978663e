/**
 * The authorisations operators are asked to approve (refresh, reshare, revocation), prepared
 * unsigned with the participants' keys as this coordinator knows them. Operators check one before
 * they sign it; every participant checks the signed one again itself, so nothing here is trusted.
 */
import { encodeAuthorisation, type ParticipantPublic } from '@tessera/core';
import type { LifecycleComponents } from './lifecycle-epochs.js';
import { CoordinatorError } from './types.js';

/** What `PrepareLifecycle` asks for. */
export interface PrepareRequest {
  keyId: string;
  operation: string;
  threshold?: number;
  participants?: string[];
  revoke?: string[];
  ttlMs?: number;
  allowThresholdDecrease?: boolean;
  allowUnpinned?: string[];
  anyEpoch?: boolean;
}

/**
 * The unsigned authorisation for `req`, with the participants' keys as this coordinator knows
 * them (linked, enrolled, or in the key's roster).
 */
export function prepareAuthorisation(
  c: Pick<LifecycleComponents, 'clock' | 'rng' | 'key' | 'participant' | 'device'>,
  req: PrepareRequest,
): Uint8Array {
  if (req.operation !== 'refresh' && req.operation !== 'reshare' && req.operation !== 'revoke')
    throw new CoordinatorError('INVALID_ARGUMENT', 'operation must be refresh, reshare or revoke');
  const ttl = req.ttlMs && req.ttlMs > 0 ? req.ttlMs : 3600_000;
  if (!Number.isSafeInteger(ttl) || ttl > 400 * 86_400_000)
    throw new CoordinatorError('INVALID_ARGUMENT', 'ttl must be at most 400 days');
  const common = {
    allowThresholdDecrease: !!req.allowThresholdDecrease,
    allowUnpinned: req.allowUnpinned ?? [],
    revoke: req.revoke ?? [],
    notAfter: c.clock() + ttl,
    nonce: c.rng(16),
  };
  if (req.operation === 'revoke') {
    if (!common.revoke.length) throw new CoordinatorError('INVALID_ARGUMENT', 'a revocation names at least one device');
    return encodeAuthorisation({
      keyId: '*',
      operation: 'revoke',
      fromEpoch: 0,
      anyEpoch: false,
      newThreshold: 0,
      newParticipants: [],
      ...common,
    });
  }
  if (req.operation === 'refresh') {
    const anyEpoch = !!req.anyEpoch;
    const fromEpoch = req.keyId === '*' ? 0 : c.key(req.keyId).epoch;
    if (req.keyId === '*' && !anyEpoch)
      throw new CoordinatorError(
        'INVALID_ARGUMENT',
        'a refresh authorisation for every key must be a standing one (anyEpoch)',
      );
    return encodeAuthorisation({
      keyId: req.keyId,
      operation: 'refresh',
      fromEpoch,
      anyEpoch,
      newThreshold: 0,
      newParticipants: [],
      ...common,
    });
  }
  const rec = c.key(req.keyId);
  const ids = [...new Set(req.participants ?? [])];
  const find = (id: string): ParticipantPublic | undefined =>
    c.participant(id)?.info ?? c.device(id) ?? rec.key.roster.find((r) => r.id === id);
  const unknown = ids.filter((id) => !find(id));
  if (unknown.length)
    throw new CoordinatorError('UNAVAILABLE', `participants never seen by this coordinator: ${unknown.join(', ')}`);
  const newParticipants = ids.map((id) => {
    const p = find(id) as ParticipantPublic;
    return { id: p.id, signKey: p.signKey, encKey: p.encKey, ...(p.device ? { device: true } : {}) };
  });
  return encodeAuthorisation({
    keyId: req.keyId,
    operation: 'reshare',
    fromEpoch: rec.epoch,
    anyEpoch: false,
    newThreshold: req.threshold ?? 0,
    newParticipants,
    ...common,
  });
}

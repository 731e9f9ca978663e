/**
 * Signed authority for tests: an operator whose key the test signers pin, a standing refresh
 * authorisation, reshare authorisations approved by it, and pinned-peer lists.
 */
import { ParticipantIdentity, approveAuthorisation, encodeApproved, encodeAuthorisation, toHex } from '@tessera/core';
import type { Coordinator } from '@tessera/coordinator';

export const operator = ParticipantIdentity.generate('test-operator');
/** `policy.operators` pinning {@link operator}, one approval needed. */
export const operators = { keys: [toHex(operator.public.signKey)], approvals: 1 };

/** `authorisation` with approvals of `by` (default: the test operator), as the wire carries it. */
export function approved(authorisation: Uint8Array, by: readonly ParticipantIdentity[] = [operator]): Uint8Array {
  return encodeApproved(authorisation, by.map((o) => approveAuthorisation(o, authorisation)));
}

/** A standing refresh authorisation for every key (the coordinator's `refreshAuthorisation`). */
export function standingRefresh(by: readonly ParticipantIdentity[] = [operator], ttlMs = 365 * 86_400_000): Uint8Array {
  return approved(encodeAuthorisation({ keyId: '*', operation: 'refresh', fromEpoch: 0, anyEpoch: true, newThreshold: 0, newParticipants: [], allowThresholdDecrease: false, allowUnpinned: [], revoke: [], notAfter: Date.now() + ttlMs }), by);
}

/** An approved reshare authorisation, prepared by `coordinator` from its view of the participants. */
export function reshareAuthorisation(coordinator: Coordinator, keyId: string, req: { threshold: number; participants: string[]; allowUnpinned?: string[]; allowThresholdDecrease?: boolean; revoke?: string[] }, by: readonly ParticipantIdentity[] = [operator]): Uint8Array {
  return approved(coordinator.prepareLifecycle({ keyId, operation: 'reshare', ...req }), by);
}

/** `policy.peers` of `me`: every other identity, pinned by id and key. */
export function peersOf(me: string, all: readonly ParticipantIdentity[]): { id: string; publicKey: string; encKey: string }[] {
  return all.filter((p) => p.id !== me).map((p) => ({ id: p.id, publicKey: toHex(p.public.signKey), encKey: toHex(p.public.encKey) }));
}

/** An approved authorisation prepared over the API (`PrepareLifecycle`), as the CLI does. */
export async function approvedOverApi(call: <Res>(method: string, req: unknown) => Promise<Res>, req: { keyId: string; operation: 'refresh' | 'reshare'; threshold?: number; participants?: string[] }, by: readonly ParticipantIdentity[] = [operator]): Promise<Uint8Array> {
  const r = await call<{ authorisation: Uint8Array }>('PrepareLifecycle', { ...req, threshold: req.threshold ?? 0, participants: req.participants ?? [] });
  return approved(new Uint8Array(r.authorisation), by);
}

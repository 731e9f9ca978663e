/**
 * Signed authority for tests: an operator whose key the test signers pin, a standing refresh
 * authorisation, reshare authorisations approved by it, and pinned-peer lists.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ParticipantIdentity,
  approveAuthorisation,
  approveDevice,
  decodeMessage,
  encodeApproved,
  encodeAuthorisation,
  fromHex,
  participantFromWire,
  toHex,
} from '@tessera/core';
import type { Coordinator } from '@tessera/coordinator';

export const operator = ParticipantIdentity.generate('test-operator');
/** `policy.operators` pinning {@link operator}, one approval needed. */
export const operators = { keys: [toHex(operator.public.signKey)], approvals: 1 };

/** `authorisation` with approvals of `by` (default: the test operator), as the wire carries it. */
export function approved(authorisation: Uint8Array, by: readonly ParticipantIdentity[] = [operator]): Uint8Array {
  return encodeApproved(
    authorisation,
    by.map((o) => approveAuthorisation(o, authorisation)),
  );
}

/** A standing refresh authorisation for every key (the coordinator's `refreshAuthorisation`). */
export function standingRefresh(by: readonly ParticipantIdentity[] = [operator], ttlMs = 365 * 86_400_000): Uint8Array {
  return approved(
    encodeAuthorisation({
      keyId: '*',
      operation: 'refresh',
      fromEpoch: 0,
      anyEpoch: true,
      newThreshold: 0,
      newParticipants: [],
      allowThresholdDecrease: false,
      allowUnpinned: [],
      revoke: [],
      notAfter: Date.now() + ttlMs,
    }),
    by,
  );
}

/** An approved reshare authorisation, prepared by `coordinator` from its view of the participants. */
export function reshareAuthorisation(
  coordinator: Coordinator,
  keyId: string,
  req: {
    threshold: number;
    participants: string[];
    allowUnpinned?: string[];
    allowThresholdDecrease?: boolean;
    revoke?: string[];
  },
  by: readonly ParticipantIdentity[] = [operator],
): Uint8Array {
  return approved(coordinator.prepareLifecycle({ keyId, operation: 'reshare', ...req }), by);
}

/** `policy.peers` of `me`: every other identity, pinned by id and key. */
export function peersOf(
  me: string,
  all: readonly ParticipantIdentity[],
): { id: string; publicKey: string; encKey: string }[] {
  return all
    .filter((p) => p.id !== me)
    .map((p) => ({ id: p.id, publicKey: toHex(p.public.signKey), encKey: toHex(p.public.encKey) }));
}

/** An approved authorisation prepared over the API (`PrepareLifecycle`), as the CLI does. */
export async function approvedOverApi(
  call: <Res>(method: string, req: unknown) => Promise<Res>,
  req: { keyId: string; operation: 'refresh' | 'reshare'; threshold?: number; participants?: string[] },
  by: readonly ParticipantIdentity[] = [operator],
): Promise<Uint8Array> {
  const r = await call<{ authorisation: Uint8Array }>('PrepareLifecycle', {
    ...req,
    threshold: req.threshold ?? 0,
    participants: req.participants ?? [],
  });
  return approved(new Uint8Array(r.authorisation), by);
}

/** Admits an enrolled device with a dev cluster's operator (`<dir>/operator.json`), as `tessera device admit` does. */
export async function admitWithDevOperator(
  call: <Res>(method: string, req: unknown) => Promise<Res>,
  dir: string,
  device: string,
): Promise<void> {
  const j = JSON.parse(readFileSync(join(dir, 'operator.json'), 'utf8')) as {
    id: string;
    signSecret: string;
    encSecret: string;
  };
  await admitDevice(call, device, ParticipantIdentity.fromSecrets(j.id, fromHex(j.signSecret), fromHex(j.encSecret)));
}

/** Admits an enrolled device over the API with an operator's approval of its registered identity. */
export async function admitDevice(
  call: <Res>(method: string, req: unknown) => Promise<Res>,
  device: string,
  by: ParticipantIdentity = operator,
): Promise<void> {
  const d = await call<{ participant: Uint8Array }>('GetDevice', { device });
  const p = participantFromWire(decodeMessage('ParticipantInfo', new Uint8Array(d.participant)));
  await call('AdmitDevice', { device, approvals: [approveDevice(by, p)] });
}

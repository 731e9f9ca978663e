/**
 * Operator authorisations for the share lifecycle. A refresh or reshare changes who holds a key,
 * so no participant takes part in one on the coordinator's word: it needs a
 * `LifecycleAuthorisation` that names the key, the operation, the epoch it starts from and — for a
 * reshare — exactly the new roster and threshold, approved by at least M of the N operator keys
 * pinned in the participant's own policy (M-of-N `OPERATOR_APPROVAL` envelopes over the exact
 * authorisation bytes). Each participant checks it itself ({@link checkAuthorisation}) before it
 * contributes (seals anything derived from its share) and before it applies (takes a new share).
 *
 * What the check refuses even with enough approvals, unless the authorisation says so explicitly:
 * lowering the threshold (`allowThresholdDecrease`) and adding a participant the checking node
 * has not pinned (`allowUnpinned` names it; its keys are in `newParticipants`).
 */
import { randomBytes } from '@noble/hashes/utils.js';
import { equalBytes, toHex, type Rng } from './bytes.js';
import { openEnvelope, signEnvelope, type EnvelopeSigner } from './envelope.js';
import { ErrorCode, InvalidArgumentError, ProtocolError } from './errors.js';
import {
  participantFromWire,
  participantToWire,
  sameIdentity,
  sameParticipant,
  type ParticipantIdentity,
  type ParticipantPublic,
} from './identity.js';
import type { GroupKey } from './key.js';
import { decodeMessage, encodeMessage } from './wire/codec.js';
import { FORMAT_VERSION } from './wire/packages.js';
import { PayloadKind } from './wire/types.js';

/** What operators authorise: a refresh, a reshare, or the revocation of devices (`keyId` "*"). */
export type LifecycleOperation = 'refresh' | 'reshare' | 'revoke';

/** What operators approve. */
export interface LifecycleAuthorisation {
  readonly keyId: string;
  readonly operation: LifecycleOperation;
  readonly fromEpoch: number;
  /** Refresh only: valid for any epoch (and with `keyId` "*", any key) until `notAfter`: scheduled refreshes. */
  readonly anyEpoch: boolean;
  /** Reshare: the new threshold and exactly the new roster. */
  readonly newThreshold: number;
  readonly newParticipants: readonly ParticipantPublic[];
  readonly allowThresholdDecrease: boolean;
  readonly allowUnpinned: readonly string[];
  /** Devices revoked by this operation (a lost phone replaced): co-signers stop serving them. */
  readonly revoke: readonly string[];
  readonly notAfter: number;
  readonly nonce: Uint8Array;
}

/** The operator keys a participant pins, and how many of them must approve. */
export interface OperatorPolicy {
  /** Ed25519 public keys, hex. */
  readonly keys: readonly string[];
  /** M: distinct approvals needed (1..keys.length). */
  readonly approvals: number;
}

/** The operation a participant is asked to take part in, as its own config says. */
export interface LifecycleRequest {
  readonly operation: LifecycleOperation;
  readonly keyId: string;
  readonly fromEpoch: number;
  /** The key as this participant knows it (refresh: the key; reshare: the old key). */
  readonly key: GroupKey;
  /** Reshare only. */
  readonly newThreshold?: number;
  readonly newParticipants?: readonly ParticipantPublic[];
}

const policyDenied = (message: string) => new ProtocolError(ErrorCode.POLICY_DENIED, message);

/** Encodes an unsigned authorisation (what operators sign). */
export function encodeAuthorisation(
  a: Omit<LifecycleAuthorisation, 'nonce'> & { nonce?: Uint8Array },
  rng: Rng = randomBytes,
): Uint8Array {
  if (a.operation !== 'refresh' && a.operation !== 'reshare' && a.operation !== 'revoke')
    throw new InvalidArgumentError(`unknown lifecycle operation ${String(a.operation).slice(0, 20)}`);
  if (a.anyEpoch && a.operation !== 'refresh')
    throw new InvalidArgumentError('only a refresh can be authorised for any epoch');
  if (a.operation === 'revoke' && (a.keyId !== '*' || a.revoke.length === 0))
    throw new InvalidArgumentError('a revocation names key "*" and at least one device');
  if (a.keyId === '*' && !a.anyEpoch && a.operation !== 'revoke')
    throw new InvalidArgumentError(
      'an authorisation for every key ("*") must be a standing refresh authorisation (anyEpoch)',
    );
  return encodeMessage('LifecycleAuthorisation', {
    version: FORMAT_VERSION,
    keyId: a.keyId,
    operation: a.operation,
    fromEpoch: a.fromEpoch,
    anyEpoch: a.anyEpoch,
    newThreshold: a.newThreshold,
    newParticipants: a.newParticipants.map(participantToWire),
    allowThresholdDecrease: a.allowThresholdDecrease,
    allowUnpinned: [...a.allowUnpinned],
    revoke: [...a.revoke],
    notAfter: a.notAfter,
    nonce: a.nonce ?? rng(16),
  });
}

/** Decodes an authorisation; only its canonical encoding is accepted. */
export function decodeAuthorisation(bytes: Uint8Array): LifecycleAuthorisation {
  const w = decodeMessage('LifecycleAuthorisation', bytes);
  if (w.version !== FORMAT_VERSION)
    throw new ProtocolError(ErrorCode.UNSUPPORTED_VERSION, `authorisation: unsupported version ${w.version}`);
  if (w.operation !== 'refresh' && w.operation !== 'reshare' && w.operation !== 'revoke')
    throw new ProtocolError(ErrorCode.DECODE, `authorisation: unknown operation ${w.operation.slice(0, 20)}`);
  const a: LifecycleAuthorisation = {
    keyId: w.keyId,
    operation: w.operation,
    fromEpoch: w.fromEpoch,
    anyEpoch: w.anyEpoch,
    newThreshold: w.newThreshold,
    newParticipants: w.newParticipants.map(participantFromWire),
    allowThresholdDecrease: w.allowThresholdDecrease,
    allowUnpinned: w.allowUnpinned,
    revoke: w.revoke,
    notAfter: w.notAfter,
    nonce: w.nonce,
  };
  if (!equalBytes(encodeAuthorisation(a), bytes))
    throw new ProtocolError(ErrorCode.DECODE, 'authorisation: non-canonical encoding');
  return a;
}

/** One operator's approval: an OPERATOR_APPROVAL envelope over the exact authorisation bytes. */
export function approveAuthorisation(operator: EnvelopeSigner, authorisation: Uint8Array): Uint8Array {
  decodeAuthorisation(authorisation);
  return signEnvelope(operator, PayloadKind.OPERATOR_APPROVAL, authorisation);
}

/**
 * Checks an operator-approved revocation (operation `revoke`, key "*"): M of the pinned operators
 * approved it and it has not expired. Returns the revoked device ids; POLICY_DENIED otherwise.
 */
export function checkRevocation(
  approved: Uint8Array | undefined,
  opts: { operators: OperatorPolicy | undefined; now: number },
): readonly string[] {
  const ops = opts.operators;
  if (!ops || ops.keys.length === 0)
    throw policyDenied('no operator keys are pinned here (policy.operators): a revocation cannot be checked');
  if (!(approved instanceof Uint8Array) || approved.length === 0)
    throw policyDenied('the revocation carries no operator authorisation');
  const { authorisation, approvals, decoded: a } = decodeApproved(approved);
  if (a.operation !== 'revoke') throw policyDenied(`the operators authorised a ${a.operation}, not a revocation`);
  const by = approvingOperators(authorisation, approvals, ops);
  if (by.length < ops.approvals)
    throw policyDenied(`a revocation needs ${ops.approvals} operator approval(s), has ${by.length}`);
  if (a.notAfter < opts.now) throw policyDenied(`the revocation expired at ${new Date(a.notAfter).toISOString()}`);
  return a.revoke;
}

/**
 * What operators approve to admit a device into new keys: its encoded `ParticipantInfo` with the
 * device flag set (id and both keys). A signer puts a device in a DKG roster only with approvals
 * of M of its pinned operators over exactly these bytes, so a coordinator cannot make up
 * "devices" of its own to hold shares of a new key or to co-sign offline with.
 */
export function admissionPayload(p: ParticipantPublic): Uint8Array {
  return encodeMessage(
    'ParticipantInfo',
    participantToWire({ id: p.id, signKey: p.signKey, encKey: p.encKey, device: true }),
  );
}

/** One operator's admission of device `p`. */
export function approveDevice(operator: ParticipantIdentity | EnvelopeSigner, p: ParticipantPublic): Uint8Array {
  return signEnvelope(operator, PayloadKind.OPERATOR_APPROVAL, admissionPayload(p));
}

/**
 * The device an admission payload names (what an operator's page shows before it approves):
 * refused unless the bytes are exactly {@link admissionPayload} of a device.
 */
export function decodeAdmission(payload: Uint8Array): ParticipantPublic {
  const p = participantFromWire(decodeMessage('ParticipantInfo', payload));
  if (!p.device || !equalBytes(admissionPayload(p), payload))
    throw new InvalidArgumentError('not the admission of a device (a device entry, canonically encoded)');
  return p;
}

/** Refuses (POLICY_DENIED) a device entry that M of the pinned operators did not admit. */
export function checkDeviceAdmission(
  p: ParticipantPublic,
  approvals: readonly Uint8Array[],
  operators: OperatorPolicy | undefined,
): void {
  if (!operators || operators.keys.length === 0)
    throw policyDenied(`device ${p.id} cannot be admitted: no operator keys are pinned here (policy.operators)`);
  const by = approvingOperators(admissionPayload(p), approvals, operators);
  if (by.length < operators.approvals)
    throw policyDenied(
      `device ${p.id} is not admitted by the operators (${by.length} of ${operators.approvals} approvals): \`tessera device admit --device ${p.id}\``,
    );
}

/** Bundles an authorisation with its approvals (duplicates dropped) for the wire. */
export function encodeApproved(authorisation: Uint8Array, approvals: readonly Uint8Array[]): Uint8Array {
  const seen = new Set<string>();
  const unique = approvals.filter((a) => !seen.has(toHex(a)) && !!seen.add(toHex(a)));
  return encodeMessage('ApprovedAuthorisation', { authorisation, approvals: unique });
}

/** Splits an `ApprovedAuthorisation` (no check of the approvals: see {@link checkAuthorisation}). */
export function decodeApproved(bytes: Uint8Array): {
  authorisation: Uint8Array;
  approvals: Uint8Array[];
  decoded: LifecycleAuthorisation;
} {
  const w = decodeMessage('ApprovedAuthorisation', bytes);
  return { authorisation: w.authorisation, approvals: w.approvals, decoded: decodeAuthorisation(w.authorisation) };
}

/** The distinct pinned operator keys (hex) whose valid approvals of `authorisation` are among `approvals`. */
export function approvingOperators(
  authorisation: Uint8Array,
  approvals: readonly Uint8Array[],
  operators: OperatorPolicy,
): string[] {
  const pinned = new Set(operators.keys.map((k) => k.toLowerCase()));
  const by = new Set<string>();
  for (const bytes of approvals) {
    let env;
    try {
      env = openEnvelope(bytes, PayloadKind.OPERATOR_APPROVAL);
    } catch {
      continue; // an approval that does not verify counts for nothing
    }
    const k = toHex(env.sender);
    if (pinned.has(k) && equalBytes(env.payload, authorisation)) by.add(k);
  }
  return [...by];
}

/**
 * Checks an `ApprovedAuthorisation` against this participant's own view of the operation it is
 * asked to take part in. `pinned(p)` says whether the node pinned participant `p` (id and key).
 * Returns the decoded authorisation; throws POLICY_DENIED (never culprits: nobody is proven to
 * have misbehaved) naming what is missing.
 */
export function checkAuthorisation(
  approved: Uint8Array | undefined,
  req: LifecycleRequest,
  opts: { operators: OperatorPolicy | undefined; now: number; pinned: (p: ParticipantPublic) => boolean },
): LifecycleAuthorisation {
  const ops = opts.operators;
  if (!ops || ops.keys.length === 0 || !Number.isInteger(ops.approvals) || ops.approvals < 1)
    throw policyDenied(
      `no operator keys are pinned here (policy.operators): this participant takes part in no ${req.operation}`,
    );
  if (!(approved instanceof Uint8Array) || approved.length === 0)
    throw policyDenied(`${req.operation} of key ${req.keyId} carries no operator authorisation`);
  const { authorisation, approvals, decoded: a } = decodeApproved(approved);
  const by = approvingOperators(authorisation, approvals, ops);
  if (by.length < ops.approvals)
    throw policyDenied(
      `${req.operation} of key ${req.keyId} needs ${ops.approvals} operator approval(s), has ${by.length}`,
    );
  if (a.notAfter < opts.now)
    throw policyDenied(`the operator authorisation expired at ${new Date(a.notAfter).toISOString()}`);
  if (a.operation !== req.operation)
    throw policyDenied(`the operators authorised a ${a.operation}, not a ${req.operation}`);
  if (a.keyId !== req.keyId && !(a.keyId === '*' && a.anyEpoch))
    throw policyDenied(`the operators authorised key ${a.keyId.slice(0, 64)}, not ${req.keyId}`);
  if (!a.anyEpoch && a.fromEpoch !== req.fromEpoch)
    throw policyDenied(
      `the operators authorised ${a.operation} from epoch ${a.fromEpoch}, this one starts at ${req.fromEpoch}`,
    );
  if (req.operation === 'refresh') return a;
  // Reshare: exactly the roster and threshold the operators approved.
  const next = req.newParticipants ?? [];
  const same =
    a.newParticipants.length === next.length && next.every((p) => a.newParticipants.some((q) => sameParticipant(p, q)));
  if (!same)
    throw policyDenied(
      `the new roster (${next.map((p) => p.id).join(', ')}) is not the one the operators approved (${a.newParticipants.map((p) => p.id).join(', ')})`,
    );
  if (a.newThreshold !== req.newThreshold)
    throw policyDenied(`the new threshold ${req.newThreshold ?? '?'} is not the approved ${a.newThreshold}`);
  if ((req.newThreshold ?? 0) < req.key.threshold && !a.allowThresholdDecrease)
    throw policyDenied(
      `lowering the threshold from ${req.key.threshold} to ${req.newThreshold ?? '?'} needs an authorisation that allows it explicitly`,
    );
  const unvouched = next.filter(
    (p) => !opts.pinned(p) && !req.key.roster.some((r) => sameIdentity(r, p)) && !a.allowUnpinned.includes(p.id),
  );
  if (unvouched.length)
    throw policyDenied(
      `the new roster adds participants this node has not pinned: ${unvouched.map((p) => p.id).join(', ')} (an authorisation must name them in allowUnpinned)`,
    );
  return a;
}

/**
 * Approvals collected in the operator console (`tessera console --collect-approvals`): the console
 * server holds no operator key. An operator asks for a refresh, a reshare, a device replacement
 * (per key: a reshare to the new device, the old one revoked with its last key) or a revocation; the coordinator
 * prepares the authorisation, checked to say what was asked (`prepare`); each operator approves it
 * in their own page, which decodes the bytes it signs and shows them, with their own key file;
 * any signed-in operator runs it once the approvals are in. The signers check every approval
 * again against the operator keys they pin: the console only refuses early what they would refuse.
 *
 * Pending requests live in the server's memory (an authorisation is valid for an hour): a restart
 * loses requests not yet run, never the effect of one that ran.
 */
import { randomBytes } from 'node:crypto';
import {
  PayloadKind,
  admissionPayload,
  decodeAdmission,
  encodeApproved,
  equalBytes,
  fromHex,
  openEnvelope,
  toHex,
  type LifecycleOperation,
} from '@tessera/core';
import type { Client } from './client.js';
import { keys, lifecycle } from './commands.js';
import { CliError } from './errors.js';
import { prepare, type PrepareRequest, type RequestFile } from './operators.js';

export interface PendingRequest {
  id: string;
  /** A lifecycle operation, or `admit`: a device admitted into new keys (`tessera device admit`). */
  operation: LifecycleOperation | 'admit';
  keyId: string;
  device?: string;
  /** A reshare's new threshold and participants, and whom it revokes. */
  threshold?: number;
  participants?: string[];
  revoke?: string[];
  /** A device replacement's devices (the request is a reshare of one key). */
  replace?: { old: string; new: string };
  /** The unsigned authorisation (hex): what every approval signs (`admit`: the device's admission payload). */
  authorisation: string;
  /** A lifecycle request's summary; an admission has none (the page decodes the device from the bytes). */
  summary?: RequestFile['summary'];
  /** Operator public key (hex) → approval envelope (hex). */
  approvals: { operator: string; approval: string }[];
  createdAt: string;
}

const MAX_PENDING = 100;
/** How long an admission request waits for its approvals (a lifecycle one: its authorisation's expiry). */
const ADMISSION_TTL_MS = 3600_000;

const text = (v: unknown, what: string): string => {
  if (typeof v !== 'string' || !v || v.length > 200)
    throw new CliError('INVALID_ARGUMENT', `${what} must be a non-empty string`);
  return v;
};

/** A reshare asked for in the console: the key, the new threshold (1–100) and participants (1–100 ids). */
export function parseReshare(b: Record<string, unknown>): { keyId: string; threshold: number; participants: string[] } {
  const keyId = text(b.keyId, 'keyId');
  const { threshold, participants } = b;
  if (typeof threshold !== 'number' || !Number.isInteger(threshold) || threshold < 1 || threshold > 100)
    throw new CliError('INVALID_ARGUMENT', 'threshold must be a whole number from 1 to 100');
  if (!Array.isArray(participants) || participants.length < 1 || participants.length > 100)
    throw new CliError('INVALID_ARGUMENT', 'participants must be a list of 1 to 100 ids');
  const ids = participants.map((x, i) => text(x, `participants[${i}]`));
  if (new Set(ids).size !== ids.length) throw new CliError('INVALID_ARGUMENT', 'participants names someone twice');
  if (threshold > ids.length) throw new CliError('INVALID_ARGUMENT', 'threshold is larger than the participants');
  return { keyId, threshold, participants: ids };
}

/**
 * A device replacement for one key: a reshare at the same threshold with `new` in place of `old`,
 * `new` admitted unpinned (the operators vouch for it, as `tessera device replace` does) and `old`
 * revoked if `revoke` (the page asks it with the old device's last key, once nothing of it is needed).
 */
async function replacement(
  c: Client,
  b: Record<string, unknown>,
): Promise<PrepareRequest & { replace: PendingRequest['replace'] }> {
  const keyId = text(b.keyId, 'keyId');
  const old = text(b.old, 'old');
  const by = text(b.new, 'new');
  if (old === by) throw new CliError('INVALID_ARGUMENT', 'the new device must be another device');
  if (b.revoke !== undefined && typeof b.revoke !== 'boolean')
    throw new CliError('INVALID_ARGUMENT', 'revoke must be true or false');
  const k = (await keys(c)).find((x) => x.keyId === keyId);
  if (!k) throw new CliError('NOT_FOUND', `no key ${keyId}`);
  if (!k.participants.includes(old))
    throw new CliError('INVALID_ARGUMENT', `${old} is not a participant of key ${keyId}`);
  if (k.participants.includes(by))
    throw new CliError('INVALID_ARGUMENT', `${by} is already a participant of key ${keyId}`);
  return {
    operation: 'reshare',
    keyId,
    threshold: k.threshold,
    participants: [...k.participants.filter((p) => p !== old), by],
    revoke: b.revoke === true ? [old] : [],
    allowUnpinned: [by],
    replace: { old, new: by },
  };
}

export function consoleRequests(c: Client, accepted: () => ReadonlySet<string>) {
  const pending = new Map<string, PendingRequest>();
  const get = (id: unknown): PendingRequest => {
    prune();
    const r = typeof id === 'string' ? pending.get(id) : undefined;
    if (!r)
      throw new CliError('NOT_FOUND', 'no pending request with that id (it ran, expired, or the console restarted)');
    return r;
  };
  const prune = () => {
    const now = Date.now();
    for (const [id, r] of pending) {
      const until = r.summary ? Date.parse(r.summary.notAfter) : Date.parse(r.createdAt) + ADMISSION_TTL_MS;
      if (until < now) pending.delete(id);
    }
  };
  /**
   * An admission: the operators approve the device's entry (id and keys) as the coordinator
   * reports it, checked here to be that device; each page decodes the bytes it signs.
   */
  const admission = async (device: string): Promise<PendingRequest> => {
    const d = await c.call<{ participant: Uint8Array }>('GetDevice', { device });
    let payload: Uint8Array;
    try {
      const p = decodeAdmission(new Uint8Array(d.participant));
      if (p.id !== device) throw new Error('another device');
      payload = admissionPayload(p);
    } catch {
      throw new CliError('INTERNAL', 'the coordinator reported another entry than the device asked for');
    }
    const r: PendingRequest = {
      id: randomBytes(8).toString('hex'),
      operation: 'admit',
      keyId: '*',
      device,
      authorisation: toHex(payload),
      approvals: [],
      createdAt: new Date().toISOString(),
    };
    pending.set(r.id, r);
    return r;
  };

  return {
    list(): PendingRequest[] {
      prune();
      return [...pending.values()];
    },

    async create(b: Record<string, unknown>): Promise<PendingRequest> {
      prune();
      if (pending.size >= MAX_PENDING)
        throw new CliError('RESOURCE_EXHAUSTED', `${MAX_PENDING} requests are pending: run or let some expire first`);
      const operation = b.operation;
      let req: PrepareRequest;
      let device: string | undefined;
      let replace: PendingRequest['replace'];
      if (operation === 'admit') return admission(text(b.device, 'device'));
      if (operation === 'refresh') req = { operation, keyId: text(b.keyId, 'keyId') };
      else if (operation === 'replace') ({ replace, ...req } = await replacement(c, b));
      else if (operation === 'revoke') {
        device = text(b.device, 'device');
        req = { operation, keyId: '*', revoke: [device] };
      } else if (operation === 'reshare') req = { operation, ...parseReshare(b) };
      else
        throw new CliError(
          'INVALID_ARGUMENT',
          'operation must be "admit", "refresh", "reshare", "replace" or "revoke"',
        );
      const file = await prepare(c, req);
      const r: PendingRequest = {
        id: randomBytes(8).toString('hex'),
        operation: req.operation,
        keyId: req.keyId,
        ...(device ? { device } : {}),
        ...(req.operation === 'reshare'
          ? { threshold: req.threshold, participants: req.participants, revoke: req.revoke ?? [] }
          : {}),
        ...(replace ? { replace } : {}),
        authorisation: file.authorisation,
        summary: file.summary,
        approvals: [],
        createdAt: new Date().toISOString(),
      };
      pending.set(r.id, r);
      return r;
    },

    /** Adds an operator's approval: a signed envelope over exactly this request's authorisation. */
    approve(b: Record<string, unknown>): PendingRequest {
      const r = get(b.id);
      if (typeof b.approval !== 'string') throw new CliError('INVALID_ARGUMENT', 'approval must be hex');
      let env;
      try {
        env = openEnvelope(fromHex(b.approval, 'approval'), PayloadKind.OPERATOR_APPROVAL);
      } catch (e) {
        throw new CliError('INVALID_ARGUMENT', `not an operator approval: ${(e as Error).message}`);
      }
      if (!equalBytes(env.payload, fromHex(r.authorisation)))
        throw new CliError('INVALID_ARGUMENT', 'this approval signs another authorisation than this request');
      const operator = toHex(env.sender);
      if (!accepted().has(operator))
        throw new CliError('POLICY_DENIED', 'this key is not an operator of this console (--login-keys)');
      if (!r.approvals.some((a) => a.operator === operator)) r.approvals.push({ operator, approval: b.approval });
      return r;
    },

    /** Runs a request with the approvals collected; it stays pending if the signers refuse it. */
    async run(b: Record<string, unknown>) {
      const r = get(b.id);
      const approved = encodeApproved(
        fromHex(r.authorisation),
        r.approvals.map((a) => fromHex(a.approval)),
      );
      if (r.operation === 'admit') {
        if (!r.approvals.length)
          throw new CliError('POLICY_DENIED', 'no operator has approved this admission yet: it stays pending');
        const x = await c.call<{ approvals: Uint8Array[] }>('AdmitDevice', {
          device: r.device,
          approvals: r.approvals.map((a) => fromHex(a.approval)),
        });
        pending.delete(r.id);
        return { id: r.id, operation: r.operation, device: r.device, approvals: x.approvals.length };
      }
      // A replacement revokes the old device with its last key: refused while it holds others
      // (their requests run first), so it is never cut off a key still to be moved.
      if (r.replace && r.revoke?.length) {
        const old = r.replace.old;
        const still = (await keys(c)).filter((k) => k.keyId !== r.keyId && k.participants.includes(old));
        if (still.length)
          throw new CliError(
            'FAILED_PRECONDITION',
            `${old} still holds key(s) ${still.map((k) => k.keyId).join(', ')}: run their replacement first`,
          );
      }
      const result =
        r.operation === 'refresh' || r.operation === 'reshare'
          ? await lifecycle(
              c,
              r.operation === 'refresh' ? 'Refresh' : 'Reshare',
              r.operation === 'refresh'
                ? { keyId: r.keyId, authorisation: approved }
                : {
                    keyId: r.keyId,
                    threshold: r.threshold,
                    participants: r.participants,
                    revoke: r.revoke ?? [],
                    authorisation: approved,
                  },
            ).then((k) => ({
              keyId: k.keyId,
              epoch: k.epoch,
              threshold: k.threshold,
              participants: k.participants,
              publicKey: k.publicKey,
            }))
          : await c
              .call<{ signers: string[]; refused: string[] }>('RevokeDevice', {
                device: r.device,
                authorisation: approved,
              })
              .then((x) => {
                if (!x.signers.length)
                  throw new CliError(
                    'POLICY_DENIED',
                    `no signer accepted the revocation (refused or unreachable: ${x.refused.join(', ')})`,
                  );
                return { device: r.device, ...x };
              });
      pending.delete(r.id);
      return {
        id: r.id,
        operation: r.operation,
        approvals: r.approvals.length,
        ...(r.replace ? { replace: r.replace, revoked: r.revoke ?? [] } : {}),
        ...result,
      };
    },
  };
}

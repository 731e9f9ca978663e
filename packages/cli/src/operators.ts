/**
 * Operator authorisations from the command line. A refresh, reshare or device replacement runs
 * only with an authorisation that M of the operator keys pinned on every signer approved; the
 * signers check it themselves. The flow:
 *
 *   tessera authorise reshare --key K --threshold 3 --participants a,b,c,d --out req.json
 *   tessera approve req.json --approve-with alice.operator.json      # each operator, own machine
 *   tessera reshare --key K --threshold 3 --participants a,b,c,d --authorisation req.json
 *
 * or, with the keys at hand, `--approve-with a.json,b.json` on the command itself. `tessera dev`
 * creates a dev operator (`<dir>/operator.json`, named in client.json) and pins it on every
 * signer, so the dev commands approve with it by default.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import {
  ParticipantIdentity,
  approveAuthorisation,
  approveDevice,
  decodeAuthorisation,
  decodeMessage,
  encodeApproved,
  fromHex,
  participantFromWire,
  toHex,
  type LifecycleAuthorisation,
  type LifecycleOperation,
  EncKem,
} from '@tessera/core';
import type { PrepareRequest as CoordinatorPrepareRequest } from '@tessera/coordinator';
import type { Client } from './client.js';
import { CliError } from './errors.js';
import { resolveDir } from './dir.js';

/** An operator key file: the identity that approves (mode 0600). */
export function loadOperator(file: string): ParticipantIdentity {
  if (!existsSync(file)) throw new CliError('CONFIG', `no operator key file ${file}`);
  const j = JSON.parse(readFileSync(file, 'utf8')) as { id: string; signSecret: string; encSecret: string };
  return ParticipantIdentity.fromSecrets(
    j.id,
    fromHex(j.signSecret, 'operator signSecret'),
    fromHex(j.encSecret, 'operator encSecret'),
  );
}

/** Creates an operator key file; returns the public key (hex) to pin in signers' `policy.operators.keys`. */
export function createOperator(file: string, id: string): { id: string; publicKey: string; file: string } {
  if (existsSync(file)) throw new CliError('CONFIG', `${file} exists: an operator key is never overwritten`);
  // An operator only signs approvals (nothing is sealed to it): X25519 keeps the file format.
  const op = ParticipantIdentity.generate(id, undefined, EncKem.X25519);
  const s = op.exportSecrets();
  writeFileSync(
    file,
    JSON.stringify(
      {
        id: op.id,
        signSecret: toHex(s.signSecret),
        encSecret: toHex(s.encSecret),
        publicKey: toHex(op.public.signKey),
      },
      null,
      2,
    ),
    { mode: 0o600 },
  );
  return { id: op.id, publicKey: toHex(op.public.signKey), file };
}

/** A request file: the authorisation, the approvals so far, and a summary for people. */
export interface RequestFile {
  authorisation: string;
  approvals: string[];
  summary: ReturnType<typeof summarise>;
}

export function summarise(a: LifecycleAuthorisation) {
  return {
    operation: a.operation,
    keyId: a.keyId,
    fromEpoch: a.anyEpoch ? 'any' : a.fromEpoch,
    ...(a.operation === 'reshare'
      ? {
          newThreshold: a.newThreshold,
          newParticipants: a.newParticipants.map((p) => ({
            id: p.id,
            signKey: toHex(p.signKey),
            encKey: toHex(p.encKey),
            ...(p.device ? { device: true } : {}),
          })),
        }
      : {}),
    ...(a.allowThresholdDecrease ? { allowThresholdDecrease: true } : {}),
    ...(a.allowUnpinned.length ? { allowUnpinned: a.allowUnpinned } : {}),
    ...(a.revoke.length ? { revoke: a.revoke } : {}),
    notAfter: new Date(a.notAfter).toISOString(),
  };
}

export function readRequest(file: string): RequestFile {
  if (!existsSync(file)) throw new CliError('CONFIG', `no authorisation request ${file}`);
  const j = JSON.parse(readFileSync(file, 'utf8')) as Partial<RequestFile>;
  if (typeof j.authorisation !== 'string' || !Array.isArray(j.approvals))
    throw new CliError('INVALID_ARGUMENT', `${file} is not an authorisation request (authorisation, approvals)`);
  const a = decodeAuthorisation(fromHex(j.authorisation, 'authorisation'));
  return { authorisation: j.authorisation, approvals: j.approvals.map(String), summary: summarise(a) };
}

export function writeRequest(file: string, r: RequestFile): void {
  writeFileSync(file, JSON.stringify(r, null, 2) + '\n');
}

/** Adds each operator's approval to the request (an approval already there is not added twice). */
export function approve(r: RequestFile, operatorFiles: readonly string[]): RequestFile {
  const bytes = fromHex(r.authorisation, 'authorisation');
  const approvals = [...r.approvals];
  for (const f of operatorFiles) {
    const a = toHex(approveAuthorisation(loadOperator(f), bytes));
    if (!approvals.includes(a)) approvals.push(a);
  }
  return { ...r, approvals };
}

/** What is asked of the coordinator's PrepareLifecycle, with the operation typed. */
export type PrepareRequest = CoordinatorPrepareRequest & { operation: LifecycleOperation };

/** The unsigned authorisation for `req`, as the coordinator builds it, checked to say what was asked. */
export async function prepare(c: Client, req: PrepareRequest): Promise<RequestFile> {
  const r = await c.call<{ authorisation: Uint8Array }>('PrepareLifecycle', {
    ...req,
    threshold: req.threshold ?? 0,
    participants: req.participants ?? [],
    revoke: req.revoke ?? [],
    ttlMs: req.ttlMs ?? 0,
    allowUnpinned: req.allowUnpinned ?? [],
  });
  const bytes = new Uint8Array(r.authorisation);
  const a = decodeAuthorisation(bytes);
  // The coordinator is not trusted: every field must be what was asked for. (The participants'
  // keys come from the coordinator: the summary shows them for the operators to compare with
  // the keys they know; every signer checks them against its own pins again.)
  const asked = [...new Set(req.participants ?? [])].sort();
  const same = (x: readonly string[], y: readonly string[]) =>
    x.length === y.length && [...x].sort().every((v, i) => v === [...y].sort()[i]);
  const ttl = req.ttlMs && req.ttlMs > 0 ? req.ttlMs : 3600_000;
  const fits =
    a.operation === req.operation &&
    a.keyId === req.keyId &&
    a.anyEpoch === !!req.anyEpoch &&
    a.allowThresholdDecrease === !!req.allowThresholdDecrease &&
    same(a.allowUnpinned, req.allowUnpinned ?? []) &&
    same(a.revoke, req.revoke ?? []) &&
    a.notAfter <= Date.now() + ttl + 60_000 &&
    (req.operation !== 'reshare'
      ? a.newParticipants.length === 0
      : a.newThreshold === req.threshold &&
        same(
          a.newParticipants.map((p) => p.id),
          asked,
        ));
  if (!fits)
    throw new CliError(
      'INTERNAL',
      'the coordinator prepared an authorisation for something else than was asked: refuse to approve it',
    );
  return { authorisation: toHex(bytes), approvals: [], summary: summarise(a) };
}

/** The operator key files to approve with: `--approve-with`, else the dev cluster's operator. */
export function approvers(c: Client, approveWith: readonly string[] | undefined): string[] {
  if (approveWith?.length) return [...approveWith];
  const dev = c.file.operator;
  return dev ? [isAbsolute(dev) ? dev : join(c.dir, dev)] : [];
}

/**
 * Admits enrolled device `id` into new keys with the operators' keys: each approves the device's
 * identity (id, both keys) as the coordinator reports it. Returns what was approved.
 */
export async function admitDevice(
  c: Client,
  id: string,
  operatorFiles: readonly string[],
): Promise<{ device: string; signKey: string; encKey: string; approvals: number }> {
  if (!operatorFiles.length)
    throw new CliError(
      'POLICY_DENIED',
      'admitting a device needs operator approval: pass --approve-with OPERATOR_KEY_FILE',
    );
  const d = await c.call<{ participant: Uint8Array }>('GetDevice', { device: id });
  const p = participantFromWire(decodeMessage('ParticipantInfo', new Uint8Array(d.participant)));
  if (p.id !== id || !p.device)
    throw new CliError(
      'INTERNAL',
      'the coordinator reported another participant than the device asked for: refuse to admit it',
    );
  const approvals = operatorFiles.map((f) => approveDevice(loadOperator(f), p));
  const r = await c.call<{ approvals: Uint8Array[] }>('AdmitDevice', { device: id, approvals });
  return { device: id, signKey: toHex(p.signKey), encKey: toHex(p.encKey), approvals: r.approvals.length };
}

/** The dev cluster's operator key file, if the cluster directory names one (`client.json` `operator`). */
export function devOperatorFiles(dirOpt?: string): string[] {
  const dir = resolveDir(dirOpt);
  const f = join(dir, 'client.json');
  if (!existsSync(f))
    throw new CliError(
      'CONFIG',
      'pass --approve-with OPERATOR_KEY_FILE (no cluster directory with a dev operator here)',
    );
  const op = (JSON.parse(readFileSync(f, 'utf8')) as { operator?: string }).operator;
  if (!op) throw new CliError('CONFIG', 'pass --approve-with OPERATOR_KEY_FILE (this cluster has no dev operator)');
  return [isAbsolute(op) ? op : join(dir, op)];
}

/** The dev operator's key file when the cluster directory names one, else none. */
export function devOperatorFilesIfAny(dirOpt?: string): string[] {
  try {
    return devOperatorFiles(dirOpt);
  } catch {
    return [];
  }
}

/**
 * The `ApprovedAuthorisation` bytes for a lifecycle command: from `--authorisation FILE` (checked
 * to be for this operation and key), or prepared now and approved with the operator key files.
 */
export async function authorisationFor(
  c: Client,
  req: PrepareRequest,
  opts: { approveWith?: string[]; authorisation?: string },
): Promise<Uint8Array> {
  if (opts.authorisation) {
    const r = readRequest(opts.authorisation);
    if (r.summary.operation !== req.operation || r.summary.keyId !== req.keyId)
      throw new CliError(
        'INVALID_ARGUMENT',
        `${opts.authorisation} authorises a ${r.summary.operation} of key ${r.summary.keyId}, not this ${req.operation} of ${req.keyId}`,
      );
    return encodeApproved(
      fromHex(r.authorisation),
      r.approvals.map((x) => fromHex(x)),
    );
  }
  const files = approvers(c, opts.approveWith);
  if (!files.length)
    throw new CliError(
      'POLICY_DENIED',
      `a ${req.operation} needs operator approval: pass --approve-with OPERATOR_KEY_FILE, or --authorisation FILE (see \`tessera authorise\` and \`tessera approve\`)`,
    );
  const r = approve(await prepare(c, req), files);
  return encodeApproved(
    fromHex(r.authorisation),
    r.approvals.map((x) => fromHex(x)),
  );
}

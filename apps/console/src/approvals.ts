/**
 * Requests waiting for the operators' approval (a console started with --collect-approvals holds
 * no operator key): asking, showing what each request's bytes say, approving with the operator's
 * own key file, running. Also the reshare form, which asks or runs depending on the console.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { decodeAdmission, decodeAuthorisation, fromHex, toHex } from '@tessera/core';
import { approveWithKeyFile } from './operator-key.js';
import { $, api, button, cell, log } from './page.js';

export interface PendingRequest {
  id: string;
  operation: string;
  authorisation: string;
  approvals: { operator: string }[];
  createdAt: string;
}

let approvesItself = true;
/** Whether the server approves actions itself (else they become requests; see the overview). */
export function setApprovesItself(v: boolean): void {
  approvesItself = v;
}

/** Wires the Keys section's reshare form. */
export function wireReshare(refresh: () => Promise<void>): void {
  $('reshare-key').addEventListener('change', () => {
    const opt = $<HTMLSelectElement>('reshare-key').selectedOptions[0];
    $<HTMLInputElement>('reshare-participants').value = opt?.dataset.participants ?? '';
  });
  $('reshare').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const what = {
      keyId: $<HTMLSelectElement>('reshare-key').value,
      threshold: Number($<HTMLInputElement>('reshare-threshold').value),
      participants: $<HTMLInputElement>('reshare-participants')
        .value.split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    };
    void (async () => {
      try {
        if (!approvesItself) return await ask(refresh, { operation: 'reshare', ...what });
        log(`resharing ${what.keyId}…`);
        const r = await api<{ epoch: number; threshold: number; participants: string[] }>(
          'POST',
          '/api/keys/reshare',
          what,
        );
        log(
          `${what.keyId} reshared: epoch ${r.epoch}, ${r.threshold} of ${r.participants.join(', ')}, same public key`,
        );
        await refresh();
      } catch (e) {
        log(`error: ${(e as Error).message}`);
      }
    })();
  });
}

/** Asks for an operation the operators then approve (the server holds no operator key). */
export async function ask(
  refresh: () => Promise<void>,
  what:
    | { operation: 'refresh'; keyId: string }
    | { operation: 'revoke'; device: string }
    | { operation: 'reshare'; keyId: string; threshold: number; participants: string[] }
    | { operation: 'replace'; keyId: string; old: string; new: string; revoke: boolean }
    | { operation: 'admit'; device: string },
) {
  const r = await api<PendingRequest>('POST', '/api/requests', what);
  log(`request ${r.id} (${r.operation}) waits for the operators' approval`);
  await refresh();
}

/**
 * A participant's two keys as an operator compares them with what the device itself shows
 * (`tessera device status`): the signing key in full, the encryption key (1,216 bytes for X-Wing)
 * as the first 16 hex digits of its SHA-256.
 */
function keysOf(p: { signKey: Uint8Array; encKey: Uint8Array }): string {
  return `signing key ${toHex(p.signKey)}, encryption key sha256 ${toHex(sha256(p.encKey)).slice(0, 16)}`;
}

/**
 * What an approval signs, decoded here from the bytes themselves (never the server's summary):
 * the operator approves what this line says.
 */
export function describe(r: Pick<PendingRequest, 'operation' | 'authorisation'>): string {
  if (r.operation === 'admit') {
    const p = decodeAdmission(fromHex(r.authorisation));
    return `admit device ${p.id} into new keys (${keysOf(p)})`;
  }
  const a = decodeAuthorisation(fromHex(r.authorisation));
  const what =
    a.operation === 'revoke'
      ? `revoke device ${a.revoke.join(', ')} on every signer`
      : a.operation === 'reshare'
        ? `reshare key ${a.keyId} to ${a.newThreshold} of ${a.newParticipants.map((p) => p.id).join(', ')}` +
          (a.revoke.length ? `, revoking ${a.revoke.join(', ')}` : '') +
          (a.allowUnpinned.length
            ? `, vouching for ${a.newParticipants
                .filter((p) => a.allowUnpinned.includes(p.id))
                .map((p) => `${p.id} (not pinned: ${keysOf(p)})`)
                .join(', ')}`
            : '')
        : `${a.operation} key ${a.keyId}`;
  return `${what}; valid until ${new Date(a.notAfter).toLocaleString()}`;
}

export function renderRequests(list: PendingRequest[], refresh: () => Promise<void>): void {
  const body = $('requests');
  body.replaceChildren();
  for (const r of list) {
    const actions = document.createElement('td');
    actions.append(
      button(`Approve request ${r.id}`, async () => {
        const approval = await approveWithKeyFile(r.authorisation, r.operation === 'admit' ? 'admit' : 'lifecycle');
        await api('POST', '/api/requests/approve', { id: r.id, approval });
        log(`request ${r.id} approved`);
        await refresh();
      }),
      button(`Run request ${r.id}`, async () => {
        const x = await api<{ operation: string; epoch?: number; signers?: string[] }>('POST', '/api/requests/run', {
          id: r.id,
        });
        log(
          `request ${r.id} ran: ${
            x.operation === 'admit'
              ? 'device admitted'
              : x.operation !== 'revoke'
                ? `epoch ${x.epoch}, same public key`
                : `revoked on ${(x.signers ?? []).join(', ')}`
          }`,
        );
        await refresh();
      }),
    );
    const tr = document.createElement('tr');
    tr.dataset.id = r.id;
    tr.append(cell(r.id), cell(describe(r), 'what'), cell(String(r.approvals.length), 'approvals'), actions);
    body.append(tr);
  }
}

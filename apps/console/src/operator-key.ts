/**
 * The operator's key file, in this page only: read when the person picks it, used for one
 * signature (a login challenge, or an approval of authorisation bytes the page decoded and
 * showed) and wiped. Only signatures leave the page.
 */
import {
  approveAuthorisation,
  approveDevice,
  decodeAdmission,
  fromHex,
  operatorKeySigner,
  signOperatorLogin,
  toHex,
} from '@tessera/core';
import { $, log, setSession } from './page.js';

/** The Ed25519 seed of an operator key file (`tessera operator keygen`, or a dev cluster's operator.json). */
export async function readOperatorSeed(file: File): Promise<Uint8Array> {
  const key = JSON.parse(await file.text()) as { signSecret?: unknown };
  if (typeof key.signSecret !== 'string') throw new Error('this is not an operator key file (no signSecret)');
  return fromHex(key.signSecret);
}

/**
 * An approval (hex) of `authorisation` (hex) with the key file picked in `#approve-key`: of a
 * lifecycle authorisation, or (`admit`) of a device's admission, each decoded before it is signed.
 */
export async function approveWithKeyFile(
  authorisation: string,
  kind: 'lifecycle' | 'admit' = 'lifecycle',
): Promise<string> {
  const file = $<HTMLInputElement>('approve-key').files?.[0];
  if (!file) throw new Error('choose your operator key file first');
  const seed = await readOperatorSeed(file);
  try {
    const signer = operatorKeySigner(seed);
    const bytes = fromHex(authorisation);
    return toHex(
      kind === 'admit' ? approveDevice(signer, decodeAdmission(bytes)) : approveAuthorisation(signer, bytes),
    );
  } finally {
    seed.fill(0);
  }
}

/** Signs in with an operator key file: challenge → signature (made here) → session token. */
export async function signIn(refresh: () => Promise<void>): Promise<void> {
  const file = $<HTMLInputElement>('operator-key').files?.[0];
  const status = $('login-status');
  if (!file) {
    status.textContent = 'Choose your operator key file first.';
    return;
  }
  try {
    const seed = await readOperatorSeed(file);
    const c = (await (await fetch('/api/login/challenge', { method: 'POST' })).json()) as { challenge: string };
    const answer = signOperatorLogin(seed, location.origin, c.challenge);
    seed.fill(0);
    const r = await fetch('/api/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(answer),
    });
    const j = (await r.json()) as { token?: string; error?: { message: string } };
    if (!r.ok || !j.token) throw new Error(j.error?.message ?? `HTTP ${r.status}`);
    setSession(j.token);
    status.textContent = `Signed in as operator ${answer.publicKey.slice(0, 16)}…`;
    log('signed in with an operator key');
    await refresh();
  } catch (e) {
    status.textContent = `Not signed in: ${(e as Error).message}`;
  } finally {
    $<HTMLInputElement>('operator-key').value = '';
  }
}

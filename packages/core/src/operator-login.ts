/**
 * A signed login with an operator key (the operator console): the console server hands out a
 * one-time random challenge; the operator signs, with the Ed25519 key their signers pin for
 * approvals, the bytes below; the server checks the key is one it accepts and the signature. The
 * context string keeps the signature from being anything else (an approval, an envelope), and the
 * console's origin keeps a challenge answered for one console from opening another.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { toHex, utf8ToBytes } from './bytes.js';
import type { EnvelopeSigner } from './envelope.js';
import { InvalidArgumentError } from './errors.js';

export const OPERATOR_LOGIN_CONTEXT = 'tessera-console-login/v1';

/** What an operator signs to log in to the console at `origin` with `challenge` (64 hex characters). */
export function operatorLoginMessage(origin: string, challenge: string): Uint8Array {
  if (!/^[0-9a-f]{64}$/.test(challenge)) throw new InvalidArgumentError('a login challenge is 64 hex characters');
  if (!/^https?:\/\/[^\s/]+$/.test(origin)) throw new InvalidArgumentError('a login origin is scheme://host[:port]');
  return utf8ToBytes(`${OPERATOR_LOGIN_CONTEXT}\n${origin}\n${challenge}`);
}

/**
 * The operator's answer to a login challenge, made where the key is (the console page reads the
 * operator key file and signs; the key is never sent). `signSecret` is the key file's Ed25519 seed.
 */
export function signOperatorLogin(
  signSecret: Uint8Array,
  origin: string,
  challenge: string,
): { publicKey: string; challenge: string; signature: string } {
  if (!(signSecret instanceof Uint8Array) || signSecret.length !== 32)
    throw new InvalidArgumentError('an operator signing key is 32 bytes');
  return {
    publicKey: toHex(ed25519.getPublicKey(signSecret)),
    challenge,
    signature: toHex(ed25519.sign(operatorLoginMessage(origin, challenge), signSecret)),
  };
}

/**
 * An operator's signing key as an envelope signer (for {@link approveAuthorisation} in a console
 * page): Ed25519 from the key file's seed, nothing else of an identity.
 */
export function operatorKeySigner(signSecret: Uint8Array): EnvelopeSigner {
  if (!(signSecret instanceof Uint8Array) || signSecret.length !== 32)
    throw new InvalidArgumentError('an operator signing key is 32 bytes');
  const seed = signSecret.slice();
  return { public: { signKey: ed25519.getPublicKey(seed) }, sign: (m: Uint8Array) => ed25519.sign(m, seed) };
}

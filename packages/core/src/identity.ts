/**
 * Participant identities. Every participant (signer node, device, requester) has a long-term
 * Ed25519 key that signs everything it sends and an HPKE key that receives sealed secrets
 * (shares in DKG, refresh and reshare). New identities take an X-Wing key (ML-KEM-768 + X25519,
 * ./hpke-xwing.ts), so a recording of share traffic stays closed to a future quantum computer;
 * identities made before keep their X25519 key and keep working. The public half is a
 * {@link ParticipantPublic}; the secret half never prints.
 */
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { equalBytes, toHex, type Rng } from './bytes.js';
import { identitySigner, verifyIdentitySignature } from './ed25519-identity.js';
import { DecodeError, ErrorCode, InvalidArgumentError, ProtocolError } from './errors.js';
import { HPKE_SUITE, hpkeEncBytes, hpkeOpen } from './hpke.js';
import { HPKE_XWING_SUITE, XWING_PUBLIC_KEY_BYTES, xwingPublicKey } from './hpke-xwing.js';
import { FORMAT_VERSION, expectLength } from './wire/packages.js';
import { decodeMessage, encodeMessage } from './wire/codec.js';
import { PARTICIPANT_ID_PATTERN } from './wire/limits.js';
import type { WireParticipantInfo } from './wire/types.js';

/** Participant ids: 1..64 chars of [A-Za-z0-9._-]; they appear in logs, CLIs and errors. */
const ID_PATTERN = PARTICIPANT_ID_PATTERN;

export function assertParticipantId(id: string, what = 'participant id'): string {
  if (typeof id !== 'string' || !ID_PATTERN.test(id))
    throw new InvalidArgumentError(
      `${what} "${String(id).slice(0, 80)}" must be 1-64 characters of A-Z a-z 0-9 . _ - (starting alphanumeric)`,
    );
  return id;
}

/** The public identity of a participant. */
export interface ParticipantPublic {
  readonly id: string;
  /** Ed25519 public key (32 bytes). */
  readonly signKey: Uint8Array;
  /** The HPKE recipient key: X-Wing (1216 bytes) or, for identities made before it, X25519 (32). */
  readonly encKey: Uint8Array;
  /**
   * A device (phone, browser) rather than a signer node: recorded in the key's roster at DKG (so
   * every participant confirms it), it is what lets a node reserve nonces for it and complete
   * its offline packages. Absent for signer nodes.
   */
  readonly device?: boolean;
}

const REDACTED = '<redacted>';

/** The HPKE KEMs an identity's encryption key can belong to. */
export const EncKem = { X25519: HPKE_SUITE.kem, XWING: HPKE_XWING_SUITE.kem } as const;
export type EncKem = (typeof EncKem)[keyof typeof EncKem];

function encPublicKey(kem: EncKem, secret: Uint8Array): Uint8Array {
  return kem === EncKem.XWING ? xwingPublicKey(secret) : x25519.getPublicKey(secret);
}

function asEncKem(kem: number): EncKem {
  if (kem === 0 || kem === EncKem.X25519) return EncKem.X25519;
  if (kem === EncKem.XWING) return EncKem.XWING;
  throw new InvalidArgumentError(`identity encryption key: unknown KEM 0x${kem.toString(16)}`);
}

/**
 * A participant's full identity. The secret keys are reachable only through methods that use
 * them; printing, JSON-serialising or inspecting the object shows the public half only.
 */
export class ParticipantIdentity {
  readonly public: ParticipantPublic;
  readonly #signSecret: Uint8Array;
  readonly #encSecret: Uint8Array;
  /** The HPKE KEM of the encryption key. */
  readonly encKem: EncKem;
  #signer?: (message: Uint8Array) => Uint8Array;

  private constructor(id: string, signSecret: Uint8Array, encSecret: Uint8Array, encKem: EncKem) {
    assertParticipantId(id);
    expectLength(signSecret, 32, 'identity signing key');
    expectLength(encSecret, 32, 'identity encryption key');
    this.#signSecret = signSecret.slice();
    this.#encSecret = encSecret.slice();
    this.encKem = encKem;
    this.public = Object.freeze({
      id,
      signKey: ed25519.getPublicKey(this.#signSecret),
      encKey: encPublicKey(encKem, this.#encSecret),
    });
  }

  /** A fresh identity; its encryption key is X-Wing unless `encKem` says otherwise. */
  static generate(id: string, rng: Rng = randomBytes, encKem: EncKem = EncKem.XWING): ParticipantIdentity {
    return new ParticipantIdentity(id, rng(32), rng(32), asEncKem(encKem));
  }

  /**
   * Restores an identity from its two 32-byte secrets (as exported by {@link exportSecrets}).
   * `encKem` defaults to X25519, what every identity stored before X-Wing keys existed has.
   */
  static fromSecrets(
    id: string,
    signSecret: Uint8Array,
    encSecret: Uint8Array,
    encKem: number = EncKem.X25519,
  ): ParticipantIdentity {
    return new ParticipantIdentity(id, signSecret, encSecret, asEncKem(encKem));
  }

  get id(): string {
    return this.public.id;
  }

  /** Ed25519 signature over `message` with the identity key. */
  sign(message: Uint8Array): Uint8Array {
    this.#signer ??= identitySigner(this.#signSecret);
    return this.#signer(message);
  }

  /**
   * Opens a box sealed to this identity, in this identity's own suite only: an X-Wing identity
   * refuses an X25519-sized enc (and the reverse) with DECRYPT, so its secret is never used in the
   * other suite's construction.
   */
  open(enc: Uint8Array, info: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    const want = hpkeEncBytes(this.public.encKey);
    if (!(enc instanceof Uint8Array) || enc.length !== want)
      throw new ProtocolError(ErrorCode.DECRYPT, `HPKE enc: expected ${want} bytes for this identity's key`);
    return hpkeOpen(this.#encSecret, enc, info, aad, ciphertext);
  }

  /** The HPKE secret key (an X25519 scalar or an X-Wing seed), for tests and backups only. */
  encryptionSecret(): Uint8Array {
    return this.#encSecret.slice();
  }

  /** Copies of the secret keys, for the caller's sealed storage. Handle as secret. */
  exportSecrets(): { signSecret: Uint8Array; encSecret: Uint8Array; encKem: EncKem } {
    return { signSecret: this.#signSecret.slice(), encSecret: this.#encSecret.slice(), encKem: this.encKem };
  }

  toJSON(): { id: string; signKey: string; encKey: string; secrets: string } {
    return { id: this.id, signKey: toHex(this.public.signKey), encKey: toHex(this.public.encKey), secrets: REDACTED };
  }
  toString(): string {
    return `ParticipantIdentity(${this.id}, secrets ${REDACTED})`;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

/** Ed25519 verification of a participant's signature; false on any malformed input. */
export function verifyParticipantSignature(signKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  return verifyIdentitySignature(signKey, message, signature);
}

/**
 * Encodes a full identity (secrets included) for the owner's sealed storage only. The bytes are
 * secret: wipe them after writing.
 */
export function encodeIdentityRecord(identity: ParticipantIdentity): Uint8Array {
  const s = identity.exportSecrets();
  const out = encodeMessage('IdentityRecord', {
    version: FORMAT_VERSION,
    id: identity.id,
    signSecret: s.signSecret,
    encSecret: s.encSecret,
    encKem: s.encKem,
  });
  s.signSecret.fill(0);
  s.encSecret.fill(0);
  return out;
}

/** Decodes an identity stored by {@link encodeIdentityRecord}. */
export function decodeIdentityRecord(bytes: Uint8Array): ParticipantIdentity {
  const w = decodeMessage('IdentityRecord', bytes);
  if (w.version !== FORMAT_VERSION) throw new DecodeError(`identity record: unsupported version ${w.version}`);
  try {
    return ParticipantIdentity.fromSecrets(w.id, w.signSecret, w.encSecret, w.encKem);
  } catch (e) {
    throw new DecodeError(`identity record: ${(e as Error).message}`);
  } finally {
    w.signSecret.fill(0);
    w.encSecret.fill(0);
  }
}

export function participantToWire(p: ParticipantPublic): WireParticipantInfo {
  // `device` false is not encoded (proto3 default): a node's entry encodes exactly as before the field existed.
  return { id: p.id, signKey: p.signKey, encKey: p.encKey, device: p.device === true };
}

/** `w` as decoded, or as proto-loader hands it over (without `device` when unset). */
export function participantFromWire(w: Omit<WireParticipantInfo, 'device'> & { device?: boolean }): ParticipantPublic {
  try {
    assertParticipantId(w.id);
  } catch (e) {
    throw new DecodeError((e as Error).message);
  }
  return Object.freeze({
    id: w.id,
    signKey: expectLength(w.signKey, 32, `participant ${w.id} sign key`),
    encKey:
      w.encKey?.length === XWING_PUBLIC_KEY_BYTES
        ? w.encKey
        : expectLength(w.encKey, 32, `participant ${w.id} encryption key (32 or ${XWING_PUBLIC_KEY_BYTES} bytes)`),
    ...(w.device ? { device: true } : {}),
  });
}

/** Same id and keys (a roster entry's `device` mark aside): "this identity is that entry". */
export function sameIdentity(a: ParticipantPublic, b: ParticipantPublic): boolean {
  return a.id === b.id && equalBytes(a.signKey, b.signKey) && equalBytes(a.encKey, b.encKey);
}

/** Same participant: id, keys and kind (device or node). */
export function sameParticipant(a: ParticipantPublic, b: ParticipantPublic): boolean {
  return (
    a.id === b.id && equalBytes(a.signKey, b.signKey) && equalBytes(a.encKey, b.encKey) && !!a.device === !!b.device
  );
}

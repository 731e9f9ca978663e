/**
 * Ed25519 for participant identities (envelopes, intents, link hellos): the runtime's own
 * implementation where there is one (Node's `crypto`, i.e. OpenSSL), noble's everywhere else
 * (browsers, React Native). Both are RFC 8032 and deterministic, so a signature is the same bytes
 * whichever made it; on Node one costs ~0.03 ms instead of ~0.5 ms, a verification ~0.08 ms
 * instead of ~1 ms, and a signing request carries several of each.
 *
 * Verification accepts the same signatures on both, with one deliberate difference: noble's
 * strict mode checks the cofactored equation and OpenSSL the cofactorless one, so a signature whose
 * R carries a small-order component, which only the key's holder can make on purpose, is accepted
 * by noble and refused on Node. Every key is first checked as noble's strict mode checks it
 * (canonical encoding, not of small order), so Node accepts a subset of what noble accepts: never
 * something noble would refuse. FROST arithmetic and the plain verifier of aggregated signatures
 * stay with noble (`suites.ts`, `fast.ts`).
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { fromHex, toHex } from './bytes.js';

/** The part of Node's `crypto` used here (typed locally: core does not depend on Node's types). */
interface NodeKey {
  readonly asymmetricKeyType?: string;
}
interface NodeCrypto {
  createPrivateKey(o: { key: Uint8Array; format: 'der'; type: 'pkcs8' }): NodeKey;
  createPublicKey(o: { key: Uint8Array; format: 'der'; type: 'spki' }): NodeKey;
  sign(algorithm: null, data: Uint8Array, key: NodeKey): Uint8Array;
  verify(algorithm: null, data: Uint8Array, key: NodeKey, signature: Uint8Array): boolean;
}

/** Node's crypto module when this runtime has one (process.getBuiltinModule: Node >= 20.16). */
function loadNodeCrypto(): NodeCrypto | undefined {
  try {
    const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    const c = proc?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined;
    return c && typeof c.sign === 'function' && typeof c.createPublicKey === 'function' ? c : undefined;
  } catch {
    return undefined;
  }
}

/** PKCS#8 (RFC 8410) wrapping of an Ed25519 seed: this fixed prefix, then the 32 bytes. */
const PKCS8_PREFIX = Uint8Array.of(
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x04,
  0x22,
  0x04,
  0x20,
);

function nodePrivateKey(c: NodeCrypto, secret: Uint8Array): NodeKey {
  const der = new Uint8Array(PKCS8_PREFIX.length + 32);
  der.set(PKCS8_PREFIX);
  der.set(secret, PKCS8_PREFIX.length);
  try {
    return c.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

/** SubjectPublicKeyInfo (RFC 8410) of an Ed25519 public key: this fixed prefix, then the 32 bytes. */
const SPKI_PREFIX = Uint8Array.of(0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00);

function nodePublicKeyObject(c: NodeCrypto, publicKey: Uint8Array): NodeKey {
  const der = new Uint8Array(SPKI_PREFIX.length + 32);
  der.set(SPKI_PREFIX);
  der.set(publicKey, SPKI_PREFIX.length);
  return c.createPublicKey({ key: der, format: 'der', type: 'spki' });
}

/** RFC 8032 §7.1 TEST 1 (empty message): the self-test of Node's Ed25519. */
const RFC8032_TEST1 = {
  secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
  public: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  signature:
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
};

/**
 * Node's crypto if it really does Ed25519 (a FIPS-mode OpenSSL or a partial shim may offer the
 * functions and not the algorithm): RFC 8032's first test vector signed and checked, once, on
 * first use; else noble.
 */
function workingNodeCrypto(): NodeCrypto | undefined {
  const c = loadNodeCrypto();
  if (!c) return undefined;
  try {
    const msg = new Uint8Array(0);
    const sig = new Uint8Array(c.sign(null, msg, nodePrivateKey(c, fromHex(RFC8032_TEST1.secret))));
    const key = nodePublicKeyObject(c, fromHex(RFC8032_TEST1.public));
    const ok =
      toHex(sig) === RFC8032_TEST1.signature &&
      c.verify(null, msg, key, sig) &&
      !c.verify(null, Uint8Array.of(0), key, sig);
    return ok ? c : undefined;
  } catch {
    return undefined;
  }
}

let nodeCryptoChecked: NodeCrypto | null | undefined;
/** Node's Ed25519, self-tested on first use; undefined where noble is used. */
function nodeCryptoOrUndefined(): NodeCrypto | undefined {
  if (nodeCryptoChecked === undefined) nodeCryptoChecked = workingNodeCrypto() ?? null;
  return nodeCryptoChecked ?? undefined;
}

/** Which implementation signs and verifies identity signatures in this runtime. */
export function identityEd25519Backend(): 'node' | 'noble' {
  return nodeCryptoOrUndefined() ? 'node' : 'noble';
}

/** A signer for one secret key: signs with the runtime's implementation, noble's as fallback. */
export function identitySigner(secret: Uint8Array): (message: Uint8Array) => Uint8Array {
  const nodeCrypto = nodeCryptoOrUndefined();
  if (!nodeCrypto) return (m) => ed25519.sign(m, secret);
  const key = nodePrivateKey(nodeCrypto, secret);
  return (m) => {
    // As noble: bytes only (Node would also take a string and encode it).
    if (!(m instanceof Uint8Array)) throw new TypeError('message: expected Uint8Array');
    return new Uint8Array(nodeCrypto.sign(null, m, key));
  };
}

/**
 * Public keys seen lately, each checked once as noble's strict mode checks it: the imported key,
 * or `false` for a key no signature can verify under. Bounded: a participant set is small, and a
 * flood of foreign keys only empties the cache.
 */
const publicKeys = new Map<string, NodeKey | false>();
const PUBLIC_KEY_CACHE = 4096;

function nodePublicKey(c: NodeCrypto, publicKey: Uint8Array): NodeKey | false {
  const hex = toHex(publicKey);
  let k = publicKeys.get(hex);
  if (k === undefined) {
    try {
      // zip215=false: a canonical encoding of a curve point; then not of small order (noble's
      // strict verify refuses both, and so must every runtime).
      const p = ed25519.Point.fromBytes(publicKey, false);
      k = p.isSmallOrder() ? false : nodePublicKeyObject(c, publicKey);
    } catch {
      k = false;
    }
    if (publicKeys.size >= PUBLIC_KEY_CACHE) publicKeys.clear();
    publicKeys.set(hex, k);
  }
  return k;
}

/** Ed25519 verification of an identity signature (strict); false on any malformed input. */
export function verifyIdentitySignature(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    if (
      !(publicKey instanceof Uint8Array) ||
      publicKey.length !== 32 ||
      !(signature instanceof Uint8Array) ||
      signature.length !== 64 ||
      !(message instanceof Uint8Array)
    )
      return false;
    const nodeCrypto = nodeCryptoOrUndefined();
    if (!nodeCrypto) return ed25519.verify(signature, message, publicKey, { zip215: false });
    const key = nodePublicKey(nodeCrypto, publicKey);
    return key !== false && nodeCrypto.verify(null, message, key, signature);
  } catch {
    return false;
  }
}

/**
 * A package's device claims (./device-claims.ts) as the merchant's check opens them: the
 * DEVICE_CLAIMS envelope and its payload read with the small protobuf reader (./wire/proto-lite.ts)
 * instead of the codec, making the decisions `openDeviceClaims` makes — canonical envelope of the
 * right kind and version, signed by the package's device (a device entry of the key), about
 * exactly this package, with a known verdict. test/package-check holds the two to one verdict.
 */
import { equalBytes } from './bytes.js';
import { verifyIdentitySignature } from './ed25519-identity.js';
import { envelopeSigningBytes } from './envelope-bytes.js';
import type { IntegrityClaim } from './allowance.js';
import { FORMAT_VERSION } from './wire/limits.js';
import { putBytes, putVarint, readFields } from './package-wire.js';
import { Reader, Writer } from './wire/proto-lite.js';

/** `PayloadKind.DEVICE_CLAIMS`, without loading the generated schema (a test holds them equal). */
export const DEVICE_CLAIMS_PAYLOAD_KIND = 22;

const VERDICTS = ['', 'pass', 'fail', 'unknown'];
/**
 * How deep the codec skips nested unknown groups in a top-level message (its recursion limit
 * less the message's own level): the claims payload is not held to a canonical encoding, so the
 * two readers must refuse the same nesting.
 */
const SKIP_DEPTH = 99;
const NONE = new Uint8Array(0);

interface LiteEnvelope {
  version: number;
  kind: number;
  sender: Uint8Array;
  payload: Uint8Array;
  signature: Uint8Array;
}

function readEnvelope(bytes: Uint8Array): LiteEnvelope {
  const e: LiteEnvelope = { version: 0, kind: 0, sender: NONE, payload: NONE, signature: NONE };
  const r = new Reader(bytes);
  readFields(
    r,
    bytes.length,
    (no) => {
      if (no === 1) e.version = r.u32();
      else if (no === 2) e.kind = r.i32();
      else if (no === 3) e.sender = r.bytes();
      else if (no === 4) e.payload = r.bytes();
      else if (no === 5) e.signature = r.bytes();
      else return false;
      return true;
    },
    SKIP_DEPTH,
  );
  return e;
}

function writeEnvelope(e: LiteEnvelope): Uint8Array {
  const w = new Writer();
  putVarint(w, 1, e.version);
  putVarint(w, 2, e.kind);
  putBytes(w, 3, e.sender);
  putBytes(w, 4, e.payload);
  putBytes(w, 5, e.signature);
  return w.finish();
}

/**
 * The verified claims of a package whose device is `device` (its roster sign key, and whether
 * the roster records it as a device) and whose digest is `digest`; null when `claims` is empty.
 * Throws when they do not verify (the caller's rule decides what that means).
 */
export function openClaimsLite(
  claims: Uint8Array,
  device: { readonly id: string; readonly signKey: Uint8Array; readonly device: boolean },
  digest: Uint8Array,
): IntegrityClaim | null {
  if (claims.length === 0) return null;
  const env = readEnvelope(claims);
  if (
    env.version !== FORMAT_VERSION ||
    env.kind !== DEVICE_CLAIMS_PAYLOAD_KIND ||
    !equalBytes(writeEnvelope(env), claims) ||
    !device.device ||
    !equalBytes(env.sender, device.signKey) ||
    !verifyIdentitySignature(env.sender, envelopeSigningBytes(env.kind, env.payload), env.signature)
  )
    throw new Error(`device claims: not a DEVICE_CLAIMS envelope signed by ${device.id}, a device of the key`);
  const c: { digest: Uint8Array; signedAt: number; integrity: string; integrityDetail: string } = {
    digest: NONE,
    signedAt: 0,
    integrity: '',
    integrityDetail: '',
  };
  const r = new Reader(env.payload);
  readFields(
    r,
    env.payload.length,
    (no) => {
      if (no === 1) c.digest = r.bytes();
      // As the codec: a uint64 past 2^53 − 1 is refused if it is still the field's value at the end.
      else if (no === 2) c.signedAt = r.u64() > BigInt(Number.MAX_SAFE_INTEGER) ? Number.NaN : 1;
      else if (no === 3) c.integrity = r.string();
      else if (no === 4) c.integrityDetail = r.string();
      else return false;
      return true;
    },
    SKIP_DEPTH,
  );
  if (
    Number.isNaN(c.signedAt) ||
    !equalBytes(c.digest, digest) ||
    !VERDICTS.includes(c.integrity) ||
    c.integrityDetail.length > 200
  )
    throw new Error('device claims: about another package, or an unknown verdict');
  return { integrity: c.integrity, integrityDetail: c.integrityDetail };
}

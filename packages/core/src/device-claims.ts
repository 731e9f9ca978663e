/**
 * Device claims (issue 19): what a device says about one of its offline packages, signed with its
 * identity key — when it signed (its clock) and the app's attestation verdict then (Play
 * Integrity, App Attest, a jailbreak check). The package carries them in `claims`, outside its
 * digest (the claims name the digest), so they cannot make a second package race the first; a
 * relay that drops or alters them makes a package whose claims are missing or do not verify,
 * which a co-signer whose policy requires a verdict refuses. The sender must be the key's own
 * device entry (its roster sign key): nobody else can speak for the phone.
 *
 * A `pass` is the app's word, signed by the device's key: it proves the phone said so, not that
 * a platform attestation token verified. A rooted phone, or one whose key leaked, can claim it.
 */
import { equalBytes } from './bytes.js';
import { type EnvelopeSigner, openEnvelope, signEnvelope } from './envelope.js';
import { ErrorCode, InvalidArgumentError, ProtocolError } from './errors.js';
import type { GroupKey } from './key.js';
import { decodeMessage, encodeMessage } from './wire/codec.js';
import { PayloadKind } from './wire/types.js';

export type IntegrityVerdictName = 'pass' | 'fail' | 'unknown';

export interface DeviceClaims {
  readonly packageDigest: Uint8Array;
  readonly signedAt: number;
  /** '' when the app gave no verdict. */
  readonly integrity: IntegrityVerdictName | '';
  readonly integrityDetail: string;
}

const VERDICTS = new Set(['', 'pass', 'fail', 'unknown']);
const MAX_DETAIL = 200;

/** The device's DEVICE_CLAIMS envelope over its package's digest. */
export function signDeviceClaims(device: EnvelopeSigner, c: DeviceClaims): Uint8Array {
  if (!VERDICTS.has(c.integrity)) throw new InvalidArgumentError('integrity must be pass, fail or unknown');
  if (c.integrityDetail.length > MAX_DETAIL)
    throw new InvalidArgumentError(`integrity detail is at most ${MAX_DETAIL} characters`);
  if (c.packageDigest.length !== 32) throw new InvalidArgumentError('claims name a 32-byte package digest');
  return signEnvelope(
    device,
    PayloadKind.DEVICE_CLAIMS,
    encodeMessage('DeviceClaims', {
      packageDigest: c.packageDigest,
      signedAt: c.signedAt,
      integrity: c.integrity,
      integrityDetail: c.integrityDetail,
    }),
  );
}

/**
 * The claims of package `p` (digest `digest`) by its device, verified: a DEVICE_CLAIMS envelope
 * from the roster entry of `p.device`, about exactly this digest, with a known verdict. Returns
 * null when the package carries none; throws POLICY_DENIED (claims that do not verify prove
 * nothing, so they are refused rather than ignored) or DECODE.
 */
export function openDeviceClaims(
  key: GroupKey,
  p: { readonly device: string; readonly claims?: Uint8Array | null },
  digest: Uint8Array,
): DeviceClaims | null {
  if (!p.claims || p.claims.length === 0) return null;
  const denied = (m: string) => new ProtocolError(ErrorCode.POLICY_DENIED, `device claims: ${m}`);
  let env: ReturnType<typeof openEnvelope>;
  try {
    env = openEnvelope(p.claims, PayloadKind.DEVICE_CLAIMS);
  } catch (e) {
    throw denied((e as Error).message);
  }
  const entry = key.roster.find((r) => r.id === p.device);
  if (!entry?.device) throw denied(`${p.device.slice(0, 64)} is not a device of the key`);
  if (!equalBytes(env.sender, entry.signKey)) throw denied(`not signed by ${p.device}`);
  const w = decodeMessage('DeviceClaims', env.payload);
  if (!equalBytes(w.packageDigest, digest)) throw denied('about another package');
  if (!VERDICTS.has(w.integrity) || w.integrityDetail.length > MAX_DETAIL) throw denied('an unknown verdict');
  return {
    packageDigest: w.packageDigest,
    signedAt: w.signedAt,
    integrity: w.integrity as DeviceClaims['integrity'],
    integrityDetail: w.integrityDetail,
  };
}

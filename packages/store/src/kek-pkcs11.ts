/**
 * A KEK inside an HSM, over PKCS#11: the store's data key is wrapped and unwrapped by a
 * non-extractable AES-256 key that never leaves the token (CKM_AES_GCM, 96-bit random IV, 128-bit
 * tag, the store's AAD bound in). The process holds only a session; the key's bytes are never in
 * its memory. Binding: `pkcs11js` (an optional dependency, loaded only when a PKCS#11 KEK is used).
 *
 * The token and key are named by an RFC 7512 PKCS#11 URI:
 *   pkcs11:token=<token label>;object=<key label>?module-path=<library>&pin-source=file:<path>
 * `pin-source` may also be `env:<NAME>`; `pin-value=<pin>` works but puts the PIN in the config.
 *
 * Every failure is one line naming the token and key (never the PIN) with code KEK_UNAVAILABLE
 * (wrong PIN, no such token or key, token gone, module missing) or KEK_MISMATCH (the key does
 * not open these bytes).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { StoreError } from './errors.js';
import type { KeyEncryptionKey } from './kek.js';

/** A parsed PKCS#11 URI: which module, token and key, and where the PIN comes from. */
export interface Pkcs11Uri {
  module: string;
  token: string;
  object: string;
  pin: { file: string } | { env: string } | { value: string };
}

/** Parses `pkcs11:token=…;object=…?module-path=…&pin-source=…` (RFC 7512; percent-encoding allowed). */
export function parsePkcs11Uri(uri: string): Pkcs11Uri {
  const bad = (why: string) => new StoreError('KEK_INVALID', `PKCS#11 URI: ${why}`);
  if (!uri.startsWith('pkcs11:')) throw bad('must start with pkcs11:');
  const [path = '', query = ''] = uri.slice('pkcs11:'.length).split('?', 2);
  const attrs = (s: string, sep: string) => {
    const out = new Map<string, string>();
    for (const part of s.split(sep).filter(Boolean)) {
      const i = part.indexOf('=');
      if (i <= 0) throw bad(`"${part.slice(0, 40)}" is not name=value`);
      try {
        out.set(part.slice(0, i), decodeURIComponent(part.slice(i + 1)));
      } catch {
        throw bad(`"${part.slice(0, i)}" is not percent-encoded properly`);
      }
    }
    return out;
  };
  const p = attrs(path, ';');
  const q = attrs(query, '&');
  const token = p.get('token');
  const object = p.get('object');
  const module = q.get('module-path');
  if (!token) throw bad('token=<label> is required');
  if (!object) throw bad('object=<key label> is required');
  if (!module) throw bad('module-path=<PKCS#11 library> is required');
  const source = q.get('pin-source');
  const value = q.get('pin-value');
  let pin: Pkcs11Uri['pin'];
  if (source?.startsWith('file:')) pin = { file: source.slice(5) };
  else if (source?.startsWith('env:')) pin = { env: source.slice(4) };
  else if (source) throw bad('pin-source must be file:<path> or env:<NAME>');
  else if (value !== undefined) pin = { value };
  else throw bad('pin-source=file:<path> (or env:<NAME>) is required');
  return { module, token, object, pin };
}

type P11 = typeof import('pkcs11js');
type Lib = InstanceType<P11['PKCS11']>;

/** One loaded and initialised module per library path for the life of the process. */
const modules = new Map<string, { p11: P11; lib: Lib }>();

function loadModule(path: string, label: string): { p11: P11; lib: Lib } {
  const cached = modules.get(path);
  if (cached) return cached;
  let p11: P11;
  try {
    p11 = createRequire(import.meta.url)('pkcs11js') as P11;
  } catch {
    throw new StoreError('KEK_UNAVAILABLE', `${label}: the pkcs11js module is not installed (npm install pkcs11js)`);
  }
  const lib = new p11.PKCS11();
  try {
    lib.load(path);
  } catch {
    throw new StoreError('KEK_UNAVAILABLE', `${label}: cannot load the PKCS#11 module ${path}`);
  }
  try {
    lib.C_Initialize();
  } catch (e) {
    if (ckr(e) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') throw unavailable(label, 'initialise the module', e);
  }
  const entry = { p11, lib };
  modules.set(path, entry);
  process.once('exit', () => {
    try {
      lib.C_Finalize();
    } catch {
      // exiting anyway
    }
  });
  return entry;
}

/** The CKR_* name of a pkcs11js error (never its stack or arguments). */
function ckr(e: unknown): string {
  const m = /CKR_[A-Z_]+/.exec(String((e as Error)?.message ?? ''));
  return m ? m[0] : 'error';
}

function unavailable(label: string, what: string, e: unknown): StoreError {
  const code = ckr(e);
  const why: Record<string, string> = {
    CKR_PIN_INCORRECT: 'wrong PIN',
    CKR_PIN_LOCKED: 'the PIN is locked',
    CKR_TOKEN_NOT_PRESENT: 'the token is not present',
    CKR_DEVICE_REMOVED: 'the token was removed',
    CKR_SESSION_HANDLE_INVALID: 'the session was lost (token removed?)',
    CKR_SLOT_ID_INVALID: 'the token was removed',
  };
  return new StoreError('KEK_UNAVAILABLE', `${label}: cannot ${what}: ${why[code] ? `${why[code]} (${code})` : code}`);
}

function readPin(uri: Pkcs11Uri, label: string, environ: NodeJS.ProcessEnv): string {
  const pin = uri.pin;
  if ('value' in pin) return pin.value;
  if ('env' in pin) {
    const v = environ[pin.env];
    if (!v) throw new StoreError('KEK_MISSING', `${label}: PIN environment variable ${pin.env} is not set`);
    return v.trim();
  }
  try {
    return readFileSync(pin.file, 'utf8').trim();
  } catch (e) {
    throw new StoreError(
      'KEK_MISSING',
      `${label}: PIN file ${pin.file} cannot be read (${(e as NodeJS.ErrnoException).code})`,
    );
  }
}

/** A logged-in session on the token named by the URI. */
function openSession(
  uri: Pkcs11Uri,
  environ: NodeJS.ProcessEnv,
): { p11: P11; lib: Lib; session: Buffer; label: string } {
  const label = `PKCS#11 token "${uri.token}" key "${uri.object}"`;
  const { p11, lib } = loadModule(uri.module, label);
  const pin = readPin(uri, label, environ);
  let slots: Buffer[];
  try {
    slots = lib.C_GetSlotList(true);
  } catch (e) {
    throw unavailable(label, 'list the tokens', e);
  }
  const slot = slots.find((s) => {
    try {
      return lib.C_GetTokenInfo(s).label.trim() === uri.token;
    } catch {
      return false;
    }
  });
  if (!slot) throw new StoreError('KEK_UNAVAILABLE', `${label}: no token with that label is present`);
  let session: Buffer;
  try {
    session = lib.C_OpenSession(slot, p11.CKF_SERIAL_SESSION | p11.CKF_RW_SESSION);
  } catch (e) {
    throw unavailable(label, 'open a session', e);
  }
  try {
    lib.C_Login(session, p11.CKU_USER, pin);
  } catch (e) {
    if (ckr(e) !== 'CKR_USER_ALREADY_LOGGED_IN') {
      lib.C_CloseSession(session);
      throw unavailable(label, 'log in', e);
    }
  }
  return { p11, lib, session, label };
}

function findKey(p11: P11, lib: Lib, session: Buffer, object: string): Buffer | undefined {
  lib.C_FindObjectsInit(session, [
    { type: p11.CKA_CLASS, value: p11.CKO_SECRET_KEY },
    { type: p11.CKA_LABEL, value: object },
  ]);
  try {
    return lib.C_FindObjects(session, 2)[0];
  } finally {
    lib.C_FindObjectsFinal(session);
  }
}

/** The PKCS#11 KEK: `close()` logs out and closes the session. */
export interface Pkcs11Kek extends KeyEncryptionKey {
  wrap(plain: Uint8Array, aad: Uint8Array): Uint8Array;
  unwrap(wrapped: Uint8Array, aad: Uint8Array): Uint8Array;
  close(): void;
}

const VERSION = 0x01;
const IV_BYTES = 12;

/** Opens the AES key named by `uri` (a string or parsed) for wrapping; it must exist and be non-extractable. */
export function openPkcs11Kek(uri: string | Pkcs11Uri, environ: NodeJS.ProcessEnv = process.env): Pkcs11Kek {
  const u = typeof uri === 'string' ? parsePkcs11Uri(uri) : uri;
  const { p11, lib, session, label } = openSession(u, environ);
  const fail = (e: unknown): never => {
    try {
      lib.C_CloseSession(session);
    } catch {
      // already gone
    }
    throw e;
  };
  const key =
    findKey(p11, lib, session, u.object) ??
    fail(new StoreError('KEK_UNAVAILABLE', `${label}: no AES key with that label on the token`));
  const [extractable, sensitive] = lib
    .C_GetAttributeValue(session, key, [{ type: p11.CKA_EXTRACTABLE }, { type: p11.CKA_SENSITIVE }])
    .map((a) => (a.value as Buffer)[0] === 1);
  if (extractable || !sensitive)
    fail(
      new StoreError(
        'KEK_INVALID',
        `${label}: the key is extractable or not sensitive; create it with tessera kek create`,
      ),
    );
  const mechanism = (iv: Buffer, aad: Uint8Array) => ({
    mechanism: p11.CKM_AES_GCM,
    parameter: { type: p11.CK_PARAMS_AES_GCM, iv, aad: Buffer.from(aad), tagBits: 128 },
  });
  return {
    id: `pkcs11:${u.token}/${u.object}`,
    wrap(plain, aad) {
      const iv = randomBytes(IV_BYTES);
      try {
        lib.C_EncryptInit(session, mechanism(iv, aad), key);
        const ct = lib.C_Encrypt(session, Buffer.from(plain), Buffer.alloc(plain.length + 32));
        return new Uint8Array(Buffer.concat([Buffer.from([VERSION]), iv, ct]));
      } catch (e) {
        throw unavailable(label, 'wrap', e);
      }
    },
    unwrap(wrapped, aad) {
      if (wrapped.length < 1 + IV_BYTES + 16 || wrapped[0] !== VERSION)
        throw new StoreError('KEK_MISMATCH', `${label} did not wrap this value`);
      const iv = Buffer.from(wrapped.subarray(1, 1 + IV_BYTES));
      const ct = Buffer.from(wrapped.subarray(1 + IV_BYTES));
      try {
        lib.C_DecryptInit(session, mechanism(iv, aad), key);
        return new Uint8Array(lib.C_Decrypt(session, ct, Buffer.alloc(ct.length)));
      } catch (e) {
        const code = ckr(e);
        // A tag that does not verify: not this key's bytes (SoftHSM2 says GENERAL_ERROR here).
        if (['CKR_ENCRYPTED_DATA_INVALID', 'CKR_GENERAL_ERROR', 'CKR_FUNCTION_FAILED'].includes(code))
          throw new StoreError('KEK_MISMATCH', `${label} cannot unwrap this value`);
        throw unavailable(label, 'unwrap', e);
      }
    },
    close() {
      try {
        lib.C_Logout(session);
        lib.C_CloseSession(session);
      } catch {
        // the token may be gone
      }
    },
  };
}

/**
 * Creates the AES-256 KEK named by `uri` inside the token: generated there, CKA_TOKEN,
 * CKA_SENSITIVE, not CKA_EXTRACTABLE (its bytes can never be read out). Refuses if a key with that
 * label exists.
 */
export function createPkcs11Kek(uri: string, environ: NodeJS.ProcessEnv = process.env): { id: string } {
  const u = parsePkcs11Uri(uri);
  const { p11, lib, session, label } = openSession(u, environ);
  try {
    if (findKey(p11, lib, session, u.object))
      throw new StoreError('KEK_INVALID', `${label}: a key with that label exists already`);
    try {
      lib.C_GenerateKey(session, { mechanism: p11.CKM_AES_KEY_GEN }, [
        { type: p11.CKA_CLASS, value: p11.CKO_SECRET_KEY },
        { type: p11.CKA_KEY_TYPE, value: p11.CKK_AES },
        { type: p11.CKA_TOKEN, value: true },
        { type: p11.CKA_PRIVATE, value: true },
        { type: p11.CKA_LABEL, value: u.object },
        { type: p11.CKA_VALUE_LEN, value: 32 },
        { type: p11.CKA_ENCRYPT, value: true },
        { type: p11.CKA_DECRYPT, value: true },
        { type: p11.CKA_SENSITIVE, value: true },
        { type: p11.CKA_EXTRACTABLE, value: false },
      ]);
    } catch (e) {
      throw unavailable(label, 'create the key', e);
    }
    return { id: `pkcs11:${u.token}/${u.object}` };
  } finally {
    try {
      lib.C_Logout(session);
      lib.C_CloseSession(session);
    } catch {
      // gone
    }
  }
}

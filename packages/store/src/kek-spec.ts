/**
 * Naming a KEK in one place: daemon configs (`kekFile`, `kekEnv`, `kekPkcs11`) and the
 * `tessera kek` commands (`file:<path>`, `env:<NAME>`, `pkcs11:…`) both come here.
 */
import { StoreError } from './errors.js';
import { type KeyEncryptionKey, loadKek } from './kek.js';
import { openPkcs11Kek } from './kek-pkcs11.js';

/** A KEK that may hold a session (an HSM): `close` releases it. */
export type OpenedKek = KeyEncryptionKey & { close?(): void };

/** Opens the KEK a spec names: `file:<path>` or `env:<NAME>` (64 hex characters), or an RFC 7512 `pkcs11:` URI. */
export function openKek(spec: string, environ: NodeJS.ProcessEnv = process.env): OpenedKek {
  if (spec.startsWith('pkcs11:')) return openPkcs11Kek(spec, environ);
  if (spec.startsWith('file:')) return loadKek({ file: spec.slice(5) }, environ);
  if (spec.startsWith('env:')) return loadKek({ env: spec.slice(4) }, environ);
  throw new StoreError(
    'KEK_INVALID',
    `key-encryption key "${spec.slice(0, 40)}": use file:<path>, env:<NAME> or pkcs11:<URI>`,
  );
}

/** The KEK of a daemon config: exactly one of kekFile, kekEnv, kekPkcs11 (none: env TESSERA_KEK). */
export function kekFromConfig(
  cfg: { kekFile?: string | undefined; kekEnv?: string | undefined; kekPkcs11?: string | undefined },
  environ: NodeJS.ProcessEnv = process.env,
): OpenedKek {
  const given = (['kekFile', 'kekEnv', 'kekPkcs11'] as const).filter((k) => cfg[k] !== undefined);
  if (given.length > 1)
    throw new StoreError('KEK_INVALID', `give one of kekFile, kekEnv, kekPkcs11 (got ${given.join(', ')})`);
  if (cfg.kekPkcs11 !== undefined) return openPkcs11Kek(cfg.kekPkcs11, environ);
  if (cfg.kekFile !== undefined) return loadKek({ file: cfg.kekFile }, environ);
  return loadKek({ env: cfg.kekEnv ?? 'TESSERA_KEK' }, environ);
}

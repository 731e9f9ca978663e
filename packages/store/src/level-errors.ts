/** Translation of `level` / classic-level errors into {@link StoreError}s. */
import { StoreError } from './errors.js';

/** Map a `level` error to a StoreError naming the directory (never any value). */
export function levelFailure(dir: string, what: string, e: unknown): StoreError {
  if (e instanceof StoreError) return e;
  const code = levelCode(e);
  if (code === 'LEVEL_CORRUPTION') {
    return new StoreError('STORE_CORRUPT', `${what}: LevelDB reports corruption in ${dir}`, { cause: e });
  }
  if (code === 'LEVEL_LOCKED') {
    return new StoreError('STORE_UNAVAILABLE', `store ${dir} is locked by another process or handle`, { cause: e });
  }
  // A full disk is named (LevelDB says so only in its message, which is otherwise not echoed).
  const full = /no space left on device/i.test(String((e as { message?: unknown } | undefined)?.message ?? ''))
    ? ': no space left on device (disk full)'
    : '';
  return new StoreError('STORE_UNAVAILABLE', `${what} failed on store ${dir} (${code ?? 'error'})${full}`, {
    cause: e,
  });
}

function levelCode(e: unknown): string | undefined {
  const err = e as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const inner = err?.cause?.code;
  if (typeof inner === 'string' && inner.startsWith('LEVEL_')) return inner;
  return typeof err?.code === 'string' ? err.code : undefined;
}

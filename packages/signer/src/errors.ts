/** The signer's typed refusals and how any failure is put on the wire. */
import { TesseraError, isTesseraError, type ErrorCode, type TaskError } from '@tessera/core';

/** A typed refusal from the engine. */
export class SignerError extends TesseraError {
  constructor(code: ErrorCode, message: string, culprits: readonly string[] = []) {
    super(code, message, { culprits });
  }
}

/**
 * Maps any failure to the wire error shape. Only Tessera's own errors (a stable code and a
 * culprits list: core, store, policy, engine) keep their message; anything else — a Node or
 * LevelDB error that might carry paths or values — becomes INTERNAL with no message.
 */
export function toTaskError(e: unknown): TaskError {
  if (isTesseraError(e) && /^[A-Z_]+$/.test(e.code))
    return { code: e.code, message: e.message, culprits: [...e.culprits].map(String) };
  return { code: 'INTERNAL', message: 'internal error', culprits: [] };
}

/** A typed device-SDK error: a stable `code` (e.g. BACKUP_PASSWORD, BACKUP_CORRUPT, WEAK_PASSWORD, INVALID_ARGUMENT) and a message that never contains secrets. */
import { TesseraError, type ErrorCode } from '@tessera/core';

export class DeviceError extends TesseraError {
  constructor(code: ErrorCode, message: string, culprits: readonly string[] = []) {
    super(code, message, { culprits });
  }
}

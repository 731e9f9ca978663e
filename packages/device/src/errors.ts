/** A typed device-SDK error: a stable `code` (e.g. BACKUP_PASSWORD, BACKUP_CORRUPT, WEAK_PASSWORD, INVALID_ARGUMENT) and a message that never contains secrets. */
export class DeviceError extends Error {
  constructor(readonly code: string, message: string, readonly culprits: readonly string[] = []) { super(message); this.name = 'DeviceError'; }
}

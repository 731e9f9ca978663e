/** The CLI's own typed error: one of the product's error codes, shown as "message [CODE]" (see bin.ts). */
import { TesseraError, type ErrorCode } from '@tessera/core';

export class CliError extends TesseraError {
  constructor(code: ErrorCode, message: string) {
    super(code, message);
  }
}

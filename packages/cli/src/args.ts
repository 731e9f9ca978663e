/** Option parsers shared by the CLI's commands: a malformed value is a usage error (exit 2). */
import { InvalidArgumentError } from 'commander';

/** A whole number (`--threshold abc` is refused, not read as 0). */
export function int(v: string): number {
  if (!/^[0-9]+$/.test(v.trim()) || !Number.isSafeInteger(Number(v)))
    throw new InvalidArgumentError(`expected a whole number, got "${v}"`);
  return Number(v);
}

/** A comma-separated list. */
export const list = (s: string): string[] =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

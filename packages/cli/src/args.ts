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

/** `asset=amount,...` in base units (`--cap BTC=50000`): each asset once, amounts decimal integers. */
export function amounts(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of list(s)) {
    const m = /^([A-Za-z0-9][A-Za-z0-9:._-]{0,63})=(0|[1-9][0-9]{0,77})$/.exec(part);
    if (!m) throw new InvalidArgumentError(`expected asset=amount in base units (e.g. BTC=50000), got "${part}"`);
    const [, asset, amount] = m as unknown as [string, string, string];
    if (Object.hasOwn(out, asset)) throw new InvalidArgumentError(`${asset} is given twice`);
    out[asset] = amount;
  }
  return out;
}

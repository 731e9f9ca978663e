/**
 * What every command shares: how it prints (`--json` gives one JSON value, else a human line),
 * the cluster client it opens only when it runs, and the option groups of the device commands.
 * Nothing here loads the protocol or gRPC: registering the commands costs only commander, so
 * `tessera --help` and a device's offline commands start without the cluster client.
 */
import type { Command } from 'commander';
import type { Client } from '../client.js';
import { list } from '../args.js';

export type Out = (json: boolean, value: unknown, human: () => string) => void;

export const out: Out = (json, value, human) => {
  process.stdout.write((json ? JSON.stringify(value) : human()) + '\n');
};

/** Opens the cluster client (`<dir>/client.json`), runs `fn`, closes it. */
export async function withClient<T>(dir: string | undefined, fn: (c: Client) => Promise<T>): Promise<T> {
  const { openClient } = await import('../client.js');
  const c = openClient(dir);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

/** A device command: `--device-dir` (required) and `--json`. */
export const deviceDir = (c: Command) =>
  c.requiredOption('--device-dir <dir>', "the device's directory").option('--json', 'JSON output');

/** A device command that talks to the cluster's device gateway. */
export const gateway = (c: Command) =>
  c
    .option('--dir <dir>', 'cluster directory (for its device gateway URL)')
    .option('--gateway <urls>', "device gateway URL, or every coordinator replica's, comma-separated");

/** Options shared by the commands that operators approve. */
export const approveOpts = (cmd: Command) =>
  cmd
    .option(
      '--approve-with <files>',
      'operator key files that approve it (default in a dev cluster: its operator)',
      list,
    )
    .option('--authorisation <file>', 'an authorisation request approved with `tessera approve`');

#!/usr/bin/env node
/**
 * The `tessera` command. Errors are one line on stderr (with `--json`, `{"error":{"code",
 * "message","culprits"}}`) and an exit code: 2 for a usage error (unknown option, missing or
 * malformed argument), 1 for anything else (see README, "Exit codes").
 *
 * program/ declares the commands (options and help only); each action loads its implementation
 * when it runs, so `tessera --help` costs commander alone and a device's offline commands never
 * load the cluster client (gRPC, the daemons' runtime).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerClusterCommands } from './program/cluster.js';
import { registerLifecycleCommands } from './program/lifecycle.js';
import { registerDeviceCommands } from './program/device.js';
import { registerDeviceRecordCommands } from './program/device-records.js';
import { registerDeviceOpsCommands } from './program/device-ops.js';
import { registerKekCommands } from './program/kek.js';
import { registerPricesCommands } from './program/prices.js';
import { registerServeCommands } from './program/serve.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;
const program = new Command('tessera')
  .description('Tessera threshold-signing cluster')
  .version(VERSION, '-V, --version', 'print the version')
  .exitOverride()
  .configureOutput({ outputError: () => {} });

registerClusterCommands(program);
registerLifecycleCommands(program);
const device = registerDeviceCommands(program);
registerDeviceRecordCommands(device);
registerDeviceOpsCommands(program, device);
registerKekCommands(program);
registerPricesCommands(program);
registerServeCommands(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  // Help and --version exit 0 through the same path.
  if (
    e instanceof CommanderError &&
    (e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version')
  )
    process.exit(0);
  const usage = e instanceof CommanderError;
  const code = usage ? 'USAGE' : ((e as { code?: string }).code ?? 'INTERNAL');
  const message = (usage ? e.message.replace(/^error: /, '') : (e as Error).message) || 'internal error';
  const culprits = [...((e as { culprits?: readonly string[] }).culprits ?? [])];
  if (process.argv.includes('--json'))
    process.stderr.write(JSON.stringify({ error: { code, message, culprits } }) + '\n');
  else
    process.stderr.write(
      `tessera: ${message}${code !== 'INTERNAL' ? ` [${code}]` : ''}${usage ? ' (see tessera --help)' : ''}\n`,
    );
  process.exit(usage ? 2 : 1);
});

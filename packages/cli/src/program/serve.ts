/**
 * Serving commands: `tessera console` and `tessera dev`. Their actions live in serve.ts, loaded
 * when one runs.
 */
import type { Command } from 'commander';
import { int, list } from '../args.js';
import type { ConsoleCommandOptions, DevCommandOptions } from '../serve.js';

export function registerServeCommands(program: Command): void {
  program
    .command('console')
    .description('serve the operator console for this cluster (loopback by default; the printed link logs in)')
    .option('--dir <dir>', 'cluster directory')
    .option(
      '--host <host>',
      'address to listen on (anything but loopback exposes the console to the network)',
      '127.0.0.1',
    )
    .option('--port <port>', 'HTTP port', int, 7491)
    .option(
      '--approve-with <files>',
      'operator key files approving admissions, revocations, refreshes (default in a dev cluster: its operator)',
      list,
    )
    .option(
      '--login-keys <hex>',
      "operator public keys that may sign in with their key (default: the approving operators' keys)",
      list,
    )
    .option('--no-login-link', 'print no login link: operators sign in with their operator key only')
    .option(
      '--collect-approvals',
      'hold no operator key: refreshes and revocations become requests each operator approves in their own page',
    )
    .option('--kpi-every <ms>', 'sample the offline KPIs for the history chart this often', int, 15_000)
    .option('--apps-dir <dir>', 'the built web apps (default: apps/dist)')
    .option('--json', 'JSON output')
    .action(async (o: ConsoleCommandOptions) => (await import('../serve.js')).runConsole(o));

  program
    .command('dev')
    .description('run an embedded dev cluster (coordinator + signer processes) and keep serving')
    .option('--dir <dir>', 'data directory', '.tessera')
    .option('--signers <n>', 'signer processes', int, 3)
    .option('--port <port>', 'coordinator port', int, 7400)
    .option('--gateway-port <port>', 'device gateway port (HTTP, loopback)', int, 7480)
    .option('--no-prove', 'skip the keygen/sign/verify proof')
    .option('--wallet-port <port>', 'browser wallet port (HTTP, loopback)', int, 7490)
    .option('--no-wallet', 'do not serve the browser wallet')
    .option('--console-port <port>', 'operator console port (HTTP, loopback)', int, 7491)
    .option('--no-console', 'do not serve the operator console')
    .option('--apps-dir <dir>', 'the built web apps (default: apps/dist, built by npm start)')
    .option('--json', 'JSON lines output')
    .action(async (o: DevCommandOptions) => (await import('../serve.js')).runDev(o));
}

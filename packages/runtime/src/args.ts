/**
 * The daemons' command line (commander, as the `tessera` CLI): `--config FILE`, `--help`,
 * `--version` and any flags a daemon adds. A usage error is one line on stderr and exit code 2.
 */
import { Command, CommanderError } from 'commander';

export interface DaemonArgs {
  config?: string;
  [flag: string]: string | boolean | undefined;
}

export function parseDaemonArgs(
  spec: {
    name: string;
    description: string;
    version: string;
    envPrefix: string;
    flags?: { flag: string; help: string }[];
  },
  argv = process.argv,
): DaemonArgs {
  const cmd = new Command(spec.name)
    .description(
      `${spec.description}\nEvery config field can be overridden by ${spec.envPrefix}<FIELD> environment variables.`,
    )
    .version(spec.version, '-V, --version', 'print the version')
    .option('--config <file>', 'JSON config file (default: environment only)')
    .exitOverride()
    .configureOutput({ outputError: () => {} });
  for (const f of spec.flags ?? []) cmd.option(f.flag, f.help);
  try {
    cmd.parse(argv);
  } catch (e) {
    if (e instanceof CommanderError && e.exitCode === 0) process.exit(0);
    process.stderr.write(`${spec.name}: ${(e as Error).message.replace(/^error: /, '')} (see ${spec.name} --help)\n`);
    process.exit(2);
  }
  return cmd.opts<DaemonArgs>();
}

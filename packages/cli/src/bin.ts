#!/usr/bin/env node
/** The `tessera` command. */
import { printDemo, runDemo } from './demo.js';
import { SUITE_IDS, isSuiteId } from '@tessera/core';

const [cmd = 'demo', ...args] = process.argv.slice(2);
if (cmd === 'demo') {
  const json = args.includes('--json');
  const suiteArg = args[args.indexOf('--suite') + 1];
  const suite = args.includes('--suite') ? suiteArg : 'ed25519';
  if (!isSuiteId(suite)) {
    process.stderr.write(`tessera: unknown suite "${suite}" (expected one of ${SUITE_IDS.join(', ')})\n`);
    process.exit(2);
  }
  const r = runDemo(suite);
  if (json) process.stdout.write(JSON.stringify(r) + '\n');
  else printDemo(r);
  process.exit(r.verified ? 0 : 1);
} else {
  process.stderr.write(`tessera: unknown command "${cmd}"\n`);
  process.exit(2);
}

/**
 * Lifecycle commands that operators approve: refresh, reshare, authorise, approve, operator
 * keygen. Each action loads what it needs when it runs.
 */
import { Argument, type Command } from 'commander';
import { int, list } from '../args.js';
import { approveOpts, out, withClient } from './output.js';

export function registerLifecycleCommands(program: Command): void {
  approveOpts(
    program
      .command('refresh')
      .description(
        'proactive refresh: every share changes, the public key does not (new epoch); offline participants catch up when they link',
      )
      .requiredOption('--key <id>', 'key id')
      .option('--dir <dir>', 'cluster directory')
      .option('--json', 'JSON output'),
  ).action(async (o: { key: string; approveWith?: string[]; authorisation?: string; dir?: string; json?: boolean }) => {
    const { lifecycle } = await import('../commands.js');
    const { authorisationFor } = await import('../operators.js');
    const r = await withClient(o.dir, async (c) =>
      lifecycle(c, 'Refresh', {
        keyId: o.key,
        authorisation: await authorisationFor(c, { keyId: o.key, operation: 'refresh' }, o),
      }),
    );
    out(
      !!o.json,
      { keyId: r.keyId, epoch: r.epoch, publicKey: r.publicKey },
      () => `key ${r.keyId} refreshed: epoch ${r.epoch}, public key unchanged ${r.publicKey}`,
    );
  });

  approveOpts(
    program
      .command('reshare')
      .description('move a key to a new threshold and/or set of participants; the public key does not change')
      .requiredOption('--key <id>', 'key id')
      .requiredOption('--threshold <t>', 'new threshold', int)
      .requiredOption('--participants <ids>', 'new participants (linked), comma-separated', list)
      .option('--allow-threshold-decrease', 'the operators allow a threshold below the current one')
      .option(
        '--allow-unpinned <ids>',
        'new participants the signers have not pinned, vouched for by the operators',
        list,
      )
      .option('--dir <dir>', 'cluster directory')
      .option('--json', 'JSON output'),
  ).action(
    async (o: {
      key: string;
      threshold: number;
      participants: string[];
      allowThresholdDecrease?: boolean;
      allowUnpinned?: string[];
      approveWith?: string[];
      authorisation?: string;
      dir?: string;
      json?: boolean;
    }) => {
      const { lifecycle } = await import('../commands.js');
      const { authorisationFor } = await import('../operators.js');
      const r = await withClient(o.dir, async (c) => {
        const authorisation = await authorisationFor(
          c,
          {
            keyId: o.key,
            operation: 'reshare',
            threshold: o.threshold,
            participants: o.participants,
            allowThresholdDecrease: !!o.allowThresholdDecrease,
            allowUnpinned: o.allowUnpinned ?? [],
          },
          o,
        );
        return lifecycle(c, 'Reshare', {
          keyId: o.key,
          threshold: o.threshold,
          participants: o.participants,
          revoke: [],
          authorisation,
        });
      });
      out(
        !!o.json,
        r,
        () =>
          `key ${r.keyId} reshared: epoch ${r.epoch}, ${r.threshold}-of-${r.participants.length} (${r.participants.join(', ')}), public key unchanged ${r.publicKey}`,
      );
    },
  );

  program
    .command('authorise')
    .description(
      'write the authorisation request for a refresh or reshare, for operators to check and approve (`tessera approve`)',
    )
    .addArgument(new Argument('<operation>').choices(['refresh', 'reshare', 'revoke']))
    .requiredOption('--key <id>', 'key id ("*" with --any-epoch: every key, for scheduled refreshes)')
    .requiredOption('--out <file>', 'request file to write')
    .option('--threshold <t>', 'reshare: new threshold', int)
    .option('--participants <ids>', 'reshare: new participants', list)
    .option('--revoke <ids>', 'devices the operation revokes', list)
    .option('--ttl <seconds>', 'valid for (default 3600)', int)
    .option('--allow-threshold-decrease', 'allow a threshold below the current one')
    .option('--allow-unpinned <ids>', 'new participants the signers have not pinned', list)
    .option('--any-epoch', 'refresh: a standing authorisation for scheduled refreshes')
    .option('--approve-with <files>', 'operator key files approving it now', list)
    .option('--dir <dir>', 'cluster directory')
    .option('--json', 'JSON output')
    .action(
      async (
        operation: 'refresh' | 'reshare' | 'revoke',
        o: {
          key: string;
          out: string;
          threshold?: number;
          participants?: string[];
          revoke?: string[];
          ttl?: number;
          allowThresholdDecrease?: boolean;
          allowUnpinned?: string[];
          anyEpoch?: boolean;
          approveWith?: string[];
          dir?: string;
          json?: boolean;
        },
      ) => {
        const { approve, prepare, writeRequest } = await import('../operators.js');
        const r = await withClient(o.dir, async (c) => {
          const req = await prepare(c, {
            keyId: o.key,
            operation,
            ...(o.threshold !== undefined ? { threshold: o.threshold } : {}),
            participants: o.participants ?? [],
            revoke: o.revoke ?? [],
            ttlMs: (o.ttl ?? 3600) * 1000,
            allowThresholdDecrease: !!o.allowThresholdDecrease,
            allowUnpinned: o.allowUnpinned ?? [],
            anyEpoch: !!o.anyEpoch,
          });
          return o.approveWith?.length ? approve(req, o.approveWith) : req;
        });
        writeRequest(o.out, r);
        out(
          !!o.json,
          { file: o.out, approvals: r.approvals.length, ...r.summary },
          () => `wrote ${o.out} (${r.approvals.length} approval(s)):\n${JSON.stringify(r.summary, null, 2)}`,
        );
      },
    );

  program
    .command('approve')
    .description('approve an authorisation request with an operator key (check its summary first)')
    .argument('<file>', 'request file (from `tessera authorise`)')
    .option('--approve-with <files>', 'operator key files (default in a dev cluster: its operator)', list)
    .option('--out <file>', 'write here instead of updating the file')
    .option('--dir <dir>', 'cluster directory')
    .option('--json', 'JSON output')
    .action(async (file: string, o: { approveWith?: string[]; out?: string; dir?: string; json?: boolean }) => {
      const { approve, devOperatorFiles, readRequest, writeRequest } = await import('../operators.js');
      const r = approve(readRequest(file), o.approveWith?.length ? o.approveWith : devOperatorFiles(o.dir));
      writeRequest(o.out ?? file, r);
      out(
        !!o.json,
        { file: o.out ?? file, approvals: r.approvals.length, ...r.summary },
        () =>
          `approved (${r.approvals.length} approval(s) now) in ${o.out ?? file}:\n${JSON.stringify(r.summary, null, 2)}`,
      );
    });

  program
    .command('operator')
    .description('operator keys that approve refresh, reshare and device replacement')
    .command('keygen')
    .description("create an operator key file (pin its public key in every signer's policy.operators.keys)")
    .requiredOption('--out <file>', 'operator key file to create (mode 0600)')
    .option('--id <name>', 'operator name', 'operator')
    .option('--dir <dir>', 'ignored (accepted like every command)')
    .option('--json', 'JSON output')
    .action(async (o: { out: string; id: string; json?: boolean }) => {
      const { createOperator } = await import('../operators.js');
      const r = createOperator(o.out, o.id);
      out(!!o.json, r, () => `operator ${r.id}: ${r.file}\npublic key ${r.publicKey}`);
    });
}

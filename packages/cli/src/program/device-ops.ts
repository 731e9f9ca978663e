/**
 * The cluster's side of devices: `tessera submit` and `check-package` (the merchant path), and the
 * operator's `device token | revoke | admit | replace`.
 */
import { CliError } from '../errors.js';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { int, list } from '../args.js';
import { out, withClient } from './output.js';

export function registerDeviceOpsCommands(program: Command, device: Command): void {
  program
    .command('submit')
    .description(
      'complete an offline package (the merchant path): prints the signature; the same package always gives the same result',
    )
    .requiredOption('--package <file>', 'package file (binary or TSP1: text)')
    .option('--dir <dir>', 'cluster directory')
    .option('--json', 'JSON output')
    .action(async (o: { package: string; dir?: string; json?: boolean }) => {
      const { readPackage, submitPackage } = await import('../device-io.js');
      const r = await withClient(o.dir, (c) => submitPackage(c, readPackage(o.package)));
      out(
        !!o.json,
        r,
        () =>
          `package ${r.packageId} ${r.alreadyCompleted ? '(already completed) ' : ''}signature ${r.signature}\nsigned by ${r.signers.join(' + ')}`,
      );
    });

  program
    .command('check-package')
    .description(
      "verify an offline package without the cluster (the merchant's check): the device signed it against genuine, unexpired reservations; a payment it carries is read from its transaction and within the caps",
    )
    .requiredOption('--key-record <file>', "the key's public record (tessera device key-record)")
    .requiredOption('--package <file>', 'package file')
    .option('--json', 'JSON output')
    .action(async (o: { keyRecord: string; package: string; json?: boolean }) => {
      const { readPackage, checkPackage } = await import('../device-io.js');
      const keyRecord = new Uint8Array(readFileSync(o.keyRecord));
      const bytes = readPackage(o.package);
      const { isEcdsaPackage, checkEcdsaPackage } = await import('@tessera/ecdsa');
      if (isEcdsaPackage(bytes)) {
        // An ECDSA key's package: the device's signed partial and its co-signers' statements.
        const { payment, ...e } = checkEcdsaPackage(keyRecord, bytes);
        // Its payment read from the transaction: the digest must be what the transaction signs.
        const { readPayment, paymentToJSON, equalBytes, fromHex, decodeKeyRecord, groupPublicKey } = await import(
          '@tessera/core'
        );
        const paid = payment ? readPayment(payment, groupPublicKey(decodeKeyRecord(keyRecord).key)) : undefined;
        if (paid && !equalBytes(paid.message, fromHex(e.message)))
          throw new CliError('PAYMENT_MISMATCH', "the package's digest is not what its transaction signs");
        return out(
          !!o.json,
          {
            ok: true,
            ...e,
            createdAt: new Date(e.createdAt).toISOString(),
            expiresAt: new Date(e.expiresAt).toISOString(),
            ...(paid ? { payment: paymentToJSON(paid.payment) } : {}),
          },
          () =>
            `package ${e.packageId} OK: signed by ${e.device} for key ${e.keyId} (digest ${e.message}); co-signers ${e.cosigners.join(', ')} hold its presignature (ECDSA: the signature is checked whole when they complete it); complete before ${new Date(e.expiresAt).toISOString()}${
              paid
                ? `\npays ${paid.payment.amount} ${paid.payment.asset} (fee ${paid.payment.fee}) to ${paid.payment.to.join(', ') || 'nobody else'} on ${paid.payment.chain}`
                : ''
            }`,
        );
      }
      const r = await checkPackage(keyRecord, bytes);
      out(
        !!o.json,
        { ok: true, ...r },
        () =>
          `package ${r.packageId} OK: signed by ${r.device} for key ${r.keyId}; co-signers ${r.cosigners.join(', ')}; complete before ${new Date(r.expiresAt).toISOString()}${
            r.integrity ? `\ndevice integrity ${r.integrity}, signed by the device (its reservations require it)` : ''
          }${
            r.payment
              ? `\npays ${r.payment.amount} ${r.payment.asset} (fee ${r.payment.fee}) to ${r.payment.to.join(', ') || 'nobody else'} on ${r.payment.chain}, within every reservation's caps`
              : ''
          }`,
      );
    });

  device
    .command('token')
    .description('issue a one-time enrolment token (operator)')
    .option('--dir <dir>', 'cluster directory')
    .option('--ttl <seconds>', 'token lifetime', int, 86400)
    .option('--label <text>', 'note kept in the audit log', '')
    .option('--json', 'JSON output')
    .action(async (o: { dir?: string; ttl: number; label: string; json?: boolean }) => {
      const r = await withClient(o.dir, (c) =>
        c.call<{ token: string; expiresAt: number }>('IssueEnrolmentToken', { ttlMs: o.ttl * 1000, label: o.label }),
      );
      out(!!o.json, { token: r.token, expiresAt: new Date(r.expiresAt).toISOString() }, () => r.token);
    });

  device
    .command('revoke')
    .description(
      "revoke a device (a lost phone) on every signer, with the operators' approval: no more reservations or completions for it, its reservations discarded",
    )
    .requiredOption('--device <id>', 'device id')
    .option('--approve-with <files>', 'operator key files (default in a dev cluster: its operator)', list)
    .option(
      '--authorisation <file>',
      'a revocation request approved with `tessera approve` (`tessera authorise revoke --key "*" --revoke <id>`)',
    )
    .option('--dir <dir>', 'cluster directory')
    .option('--json', 'JSON output')
    .action(
      async (o: { device: string; approveWith?: string[]; authorisation?: string; dir?: string; json?: boolean }) => {
        const { authorisationFor } = await import('../operators.js');
        const r = await withClient(o.dir, async (c) => {
          const authorisation = await authorisationFor(c, { keyId: '*', operation: 'revoke', revoke: [o.device] }, o);
          return c.call<{ signers: string[]; refused: string[] }>('RevokeDevice', { device: o.device, authorisation });
        });
        if (r.refused.length) process.exitCode = 1;
        out(
          !!o.json,
          { device: o.device, ...r },
          () =>
            `${o.device} revoked on ${r.signers.join(', ') || 'no signer'}${r.refused.length ? `; refused or unreachable: ${r.refused.join(', ')}` : ''}`,
        );
      },
    );

  device
    .command('admit')
    .description(
      "operators admit an enrolled device into new keys (signers refuse devices no pinned operators admitted); compare the keys shown with the device's own",
    )
    .requiredOption('--device <id>', 'enrolled device id')
    .option('--approve-with <files>', 'operator key files (default in a dev cluster: its operator)', list)
    .option('--dir <dir>', 'cluster directory')
    .option('--json', 'JSON output')
    .action(async (o: { device: string; approveWith?: string[]; dir?: string; json?: boolean }) => {
      const { admitDevice, approvers } = await import('../operators.js');
      const r = await withClient(o.dir, (c) => admitDevice(c, o.device, approvers(c, o.approveWith)));
      out(
        !!o.json,
        r,
        () => `device ${r.device} admitted (${r.approvals} approval(s))\nsign key ${r.signKey}\nenc key  ${r.encKey}`,
      );
    });

  device
    .command('replace')
    .description(
      'a new phone in, a lost phone out: reshare every given key to the new device (same threshold and public key) and revoke the old one',
    )
    .requiredOption('--key <ids>', 'key id(s), comma-separated', list)
    .requiredOption('--old <device>', 'the lost device')
    .requiredOption(
      '--new <device>',
      'the new device (enrolled, and linked with `tessera device connect --accept-keygen`)',
    )
    .option(
      '--approve-with <files>',
      'operator key files that approve it (default in a dev cluster: its operator)',
      list,
    )
    .option('--dir <dir>', 'cluster directory')
    .option('--json', 'JSON output')
    .action(
      async (o: { key: string[]; old: string; new: string; approveWith?: string[]; dir?: string; json?: boolean }) => {
        const { replaceDevice } = await import('../commands.js');
        const r = await withClient(o.dir, (c) =>
          replaceDevice(c, {
            old: o.old,
            new: o.new,
            keys: o.key,
            ...(o.approveWith ? { approveWith: o.approveWith } : {}),
          }),
        );
        out(!!o.json, r, () =>
          [
            `${r.replaced} replaced by ${r.by} and revoked`,
            ...r.keys.map(
              (k) =>
                `  key ${k.keyId} epoch ${k.epoch} ${k.threshold}-of-${k.participants.length} (${k.participants.join(', ')})`,
            ),
          ].join('\n'),
        );
      },
    );
}

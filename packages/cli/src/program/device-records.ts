/**
 * `tessera device …` records and hand-offs: the journal and its reconciliation, compensation, the
 * key's public record, backup and restore, and two-device co-signing through files.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import type { BackupOptions, ClusterComparison } from '@tessera/device';
import { list } from '../args.js';
import { deviceDir as dd, gateway as net, out } from './output.js';

export function registerDeviceRecordCommands(device: Command): void {
  dd(device.command('journal').description("the device's event journal, oldest first, its hash chain checked")).action(
    async (o: { deviceDir: string; json?: boolean }) => {
      const { withDevice } = await import('../device-io.js');
      const entries = await withDevice(o.deviceDir, (d) => d.journal());
      out(!!o.json, { entries }, () =>
        entries.length === 0
          ? 'journal: empty'
          : entries
              .map((e) => {
                const what =
                  e.kind === 'reserved' || e.kind === 'expired'
                    ? `${e.count} slot(s) of key ${e.keyId}`
                    : `package ${e.packageId}${e.payment ? ` pays ${e.payment.amount} ${e.payment.asset} (fee ${e.payment.fee})` : ''}${e.code ? ` ${e.code}: ${e.reason}` : ''}${e.note ? ` (${e.note})` : ''}`;
                return `${String(e.seq).padStart(5)} ${new Date(e.at).toISOString()} ${e.kind.padEnd(11)} ${what}`;
              })
              .join('\n')
              .concat(
                `\nchain verified: ${entries.length} entries, head ${entries[entries.length - 1]?.hash.slice(0, 16)}…`,
              ),
      );
    },
  );

  net(
    dd(
      device
        .command('reconcile')
        .description(
          "reconciliation report: settled, refused (with why), needing compensation, expired, pending; compared with the cluster's record when it is reachable",
        ),
    ),
  )
    .option('--local', "the device's own journal and queue only (no network)")
    .action(async (o: { deviceDir: string; dir?: string; gateway?: string; local?: boolean; json?: boolean }) => {
      const { withDevice, gatewayUrl } = await import('../device-io.js');
      let url: string | undefined;
      let why = 'not asked (--local)';
      if (!o.local)
        try {
          url = gatewayUrl(o);
        } catch (e) {
          why = (e as Error).message;
        }
      const r = await withDevice(o.deviceDir, (d) => d.reconcile(url));
      const c: ClusterComparison = r.cluster ?? { compared: false, reason: why };
      const report = { ...r, cluster: c };
      out(!!o.json, report, () =>
        [
          `settled ${r.settled.length}, refused ${r.refused.length} (${r.needsCompensation.length} need compensation), pending ${r.pending.length}, expired slots ${r.expired.reduce((a, e) => a + e.count, 0)}`,
          ...r.needsCompensation.map((x) => `  needs compensation: package ${x.packageId} ${x.code}: ${x.reason}`),
          ...r.discrepancies.map((x) => `  discrepancy: package ${x.packageId} journal ${x.journal}, queue ${x.queue}`),
          `journal: ${r.journal.entries} entries, chain verified`,
          c.compared
            ? `cluster: ${c.records} record(s); ${c.clusterAhead.length} decided there and pending here (sync settles them), ${c.mismatches.length} mismatch(es)`
            : `cluster: not compared (${c.reason})`,
          ...(c.compared
            ? c.mismatches.map((m) => `  mismatch: package ${m.packageId} device ${m.device}, cluster ${m.cluster}`)
            : []),
        ].join('\n'),
      );
      if (r.discrepancies.length || (c.compared && c.mismatches.length)) process.exitCode = 1;
    });

  dd(device.command('compensate').description('record that a refused payment was settled with its user'))
    .requiredOption('--package <id>', 'the refused package')
    .option('--note <text>', 'what was done (refund, new payment, …)', '')
    .action(async (o: { deviceDir: string; package: string; note: string; json?: boolean }) => {
      const { withDevice } = await import('../device-io.js');
      const r = await withDevice(o.deviceDir, (d) => d.compensate(o.package, o.note));
      out(!!o.json, r, () => `package ${r.packageId} ${r.already ? 'was already' : 'is now'} recorded as compensated`);
    });

  dd(device.command('key-record').description("write a key's public record (for merchants to check packages offline)"))
    .requiredOption('--key <id>', 'key id')
    .requiredOption('--out <file>', 'output file')
    .action(async (o: { deviceDir: string; key: string; out: string; json?: boolean }) => {
      const { withDevice } = await import('../device-io.js');
      const rec = await withDevice(o.deviceDir, (d) => d.keyRecord(o.key));
      writeFileSync(o.out, rec);
      out(!!o.json, { keyId: o.key, file: resolve(o.out), bytes: rec.length }, () => `wrote ${o.out}`);
    });

  dd(
    device
      .command('backup')
      .description(
        'encrypted export of the device identity and shares (password from --password-file or TESSERA_BACKUP_PASSWORD)',
      ),
  )
    .requiredOption('--out <file>', 'backup file (text)')
    .option('--password-file <file>', 'file holding the password')
    .option(
      '--pieces <k/m>',
      'also split into m recovery pieces, any k of which restore it (written as <out>.piece-<i>)',
    )
    .addOption(new Option('--kdf <kdf>').choices(['scrypt', 'argon2id']).default('scrypt'))
    .option(
      '--allow-weak-password',
      'accept a password the backup floor refuses (under 12 characters, or too predictable)',
    )
    .action(
      async (o: {
        deviceDir: string;
        out: string;
        passwordFile?: string;
        pieces?: string;
        kdf: 'scrypt' | 'argon2id';
        allowWeakPassword?: boolean;
        json?: boolean;
      }) => {
        const { withDevice, password, backupToText, splitBackup, CliError } = await import('../device-io.js');
        const pw = password(o);
        const blob = await withDevice(o.deviceDir, (d) =>
          d.exportBackup(pw, { kdf: o.kdf, allowWeakPassword: o.allowWeakPassword === true } satisfies BackupOptions),
        );
        writeFileSync(o.out, backupToText(blob) + '\n', { mode: 0o600 });
        const pieces: string[] = [];
        if (o.pieces) {
          const m = /^(\d+)\/(\d+)$/.exec(o.pieces);
          if (!m) throw new CliError('INVALID_ARGUMENT', '--pieces must be k/m, e.g. 2/3');
          const texts = await splitBackup(blob, Number(m[1]), Number(m[2]));
          texts.forEach((t, i) => {
            const f = `${o.out}.piece-${i + 1}`;
            writeFileSync(f, t + '\n', { mode: 0o600 });
            pieces.push(resolve(f));
          });
        }
        out(
          !!o.json,
          { file: resolve(o.out), bytes: blob.length, kdf: o.kdf, pieces },
          () => `backup written to ${o.out}${pieces.length ? `\nrecovery pieces:\n  ${pieces.join('\n  ')}` : ''}`,
        );
      },
    );

  dd(device.command('restore').description('restore a backup (file or recovery pieces) into a new device directory'))
    .option('--in <file>', 'backup file')
    .option('--pieces <files>', 'recovery piece files, comma-separated', list)
    .option('--password-file <file>', 'file holding the password')
    .action(async (o: { deviceDir: string; in?: string; pieces?: string[]; passwordFile?: string; json?: boolean }) => {
      const { password, storageKey, Device, backupFromText, combineBackup, CliError } = await import('../device-io.js');
      if (!o.in === !o.pieces)
        throw new CliError('INVALID_ARGUMENT', 'give exactly one of --in FILE or --pieces FILES');
      const blob = o.in
        ? backupFromText(readFileSync(o.in, 'utf8'))
        : await combineBackup((o.pieces as string[]).map((f) => readFileSync(f, 'utf8').trim()));
      const dir = resolve(o.deviceDir);
      const d = await Device.restore({
        location: join(dir, 'store'),
        storageKey: storageKey(dir, true),
        backup: blob,
        password: password(o),
      });
      try {
        const s = await d.status();
        out(
          !!o.json,
          { device: s.device, keys: s.keys.map((k) => k.keyId), deviceDir: dir },
          () => `restored ${s.device} with ${s.keys.length} key(s); reserve again before signing offline`,
        );
      } finally {
        await d.close();
      }
    });

  dd(
    device
      .command('propose')
      .description("two devices, no cluster: start a signature (this device's commitment and the message)"),
  )
    .requiredOption('--key <id>', 'key id')
    .requiredOption('--message <hex>', 'message as hex')
    .requiredOption('--out <file>', 'request file for the other device')
    .action(async (o: { deviceDir: string; key: string; message: string; out: string; json?: boolean }) => {
      const { withDevice, cosignText, fromHex } = await import('../device-io.js');
      const r = await withDevice(o.deviceDir, (d) =>
        d.proposeCosign({ keyId: o.key, message: fromHex(o.message, '--message') }),
      );
      writeFileSync(o.out, r.request);
      out(
        !!o.json,
        { requestId: r.requestId, file: resolve(o.out), bytes: r.request.length, text: cosignText(r.request) },
        () => `request ${r.requestId} written to ${o.out}\n${cosignText(r.request)}`,
      );
    });

  dd(device.command('cosign').description("two devices: answer another device's request (commitment + share)"))
    .requiredOption('--in <file>', 'request file (binary or TSC1: text)')
    .requiredOption('--out <file>', 'answer file')
    .action(async (o: { deviceDir: string; in: string; out: string; json?: boolean }) => {
      const { withDevice, readCosign, cosignText } = await import('../device-io.js');
      const r = await withDevice(o.deviceDir, (d) => d.cosign(readCosign(o.in)));
      writeFileSync(o.out, r.response);
      out(
        !!o.json,
        {
          keyId: r.keyId,
          from: r.from,
          message: r.message,
          file: resolve(o.out),
          bytes: r.response.length,
          text: cosignText(r.response),
        },
        () => `co-signed ${r.message} for ${r.from}; answer in ${o.out}\n${cosignText(r.response)}`,
      );
    });

  dd(device.command('complete').description("two devices: finish with the other device's answer; prints the signature"))
    .requiredOption('--in <file>', 'answer file (binary or TSC1: text)')
    .action(async (o: { deviceDir: string; in: string; json?: boolean }) => {
      const { withDevice, readCosign } = await import('../device-io.js');
      // completeCosign checks the aggregate with the suite's plain verifier before returning it.
      const r = await withDevice(o.deviceDir, (d) => d.completeCosign(readCosign(o.in)));
      out(!!o.json, r, () => `signature ${r.signature}\nsigned by ${r.signers.join(' + ')}`);
    });
}

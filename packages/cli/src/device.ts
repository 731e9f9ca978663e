/**
 * `tessera device …` (the device SDK from a terminal: a phone's share in a directory) and
 * `tessera submit` (the merchant path). The device directory holds the sealed device store and
 * `storage.key` (0600; on a phone the platform keystore holds this key). The cluster's device
 * gateway URL comes from `<dir>/client.json` (`deviceUrl`, written by `tessera dev`) or `--gateway`.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import {
  SUITE_IDS,
  base45Decode,
  base45Encode,
  fromHex,
  packageFromText,
  suiteByWireId,
  toHex,
  type SuiteId,
} from '@tessera/core';
import {
  Device,
  backupFromText,
  backupToText,
  checkPackage,
  combineBackup,
  splitBackup,
  type BackupOptions,
} from '@tessera/device';
import { admitDevice, approvers, authorisationFor, devOperatorFilesIfAny } from './operators.js';
import { qrSvg, qrTerminal } from './qr.js';
import type { ClusterComparison } from '@tessera/device';
import { CliError, resolveDir, type Client } from './client.js';
import { replaceDevice } from './commands.js';
import { int, list } from './args.js';

type Out = (json: boolean, value: unknown, human: () => string) => void;

function storageKey(deviceDir: string, create: boolean): Uint8Array {
  const f = join(deviceDir, 'storage.key');
  if (!existsSync(f)) {
    if (!create)
      throw new CliError('CONFIG', `no device at ${deviceDir}: run \`tessera device init --device-dir ${deviceDir}\``);
    mkdirSync(deviceDir, { recursive: true, mode: 0o700 });
    writeFileSync(f, randomBytes(32).toString('hex'), { mode: 0o600 });
  }
  return fromHex(readFileSync(f, 'utf8').trim(), 'storage.key');
}

async function withDevice<T>(deviceDir: string, fn: (d: Device) => Promise<T>, create = false): Promise<T> {
  const dir = resolve(deviceDir);
  const d = await Device.open({ location: join(dir, 'store'), storageKey: storageKey(dir, create) });
  try {
    return await fn(d);
  } finally {
    await d.close();
  }
}

/** The gateway URL(s): --gateway (comma-separated for coordinator replicas), else `deviceUrl` in the cluster's client.json. */
function gatewayUrl(o: { gateway?: string; dir?: string }): string {
  if (o.gateway) return o.gateway;
  const f = join(resolveDir(o.dir), 'client.json');
  if (!existsSync(f))
    throw new CliError(
      'CONFIG',
      `no cluster at ${resolveDir(o.dir)} (missing client.json): pass --dir or --gateway URL`,
    );
  const url = (JSON.parse(readFileSync(f, 'utf8')) as { deviceUrl?: string }).deviceUrl;
  if (!url)
    throw new CliError(
      'CONFIG',
      'this cluster has no device gateway (deviceUrl missing in client.json): pass --gateway URL',
    );
  return url;
}

/** A backup password from a file or TESSERA_BACKUP_PASSWORD (never from argv, which `ps` shows). */
function password(o: { passwordFile?: string }): string {
  const p = o.passwordFile
    ? readFileSync(o.passwordFile, 'utf8').replace(/\r?\n$/, '')
    : process.env.TESSERA_BACKUP_PASSWORD;
  if (!p)
    throw new CliError(
      'INVALID_ARGUMENT',
      'give the backup password with --password-file FILE or TESSERA_BACKUP_PASSWORD',
    );
  return p;
}

const COSIGN_TEXT = 'TSC1:';
/** Two-device messages as text for a QR code: "TSC1:" + base45. */
const cosignText = (b: Uint8Array) => COSIGN_TEXT + base45Encode(b);
/** Reads a two-device message file: binary, or its TSC1: text form. */
function readCosign(file: string): Uint8Array {
  const raw = readFileSync(file);
  const text = raw.toString('utf8').trim();
  return text.startsWith(COSIGN_TEXT) ? base45Decode(text.slice(COSIGN_TEXT.length)) : new Uint8Array(raw);
}

/** Reads a package file: binary, or its TSP1: text form. */
export function readPackage(file: string): Uint8Array {
  const raw = readFileSync(file);
  const text = raw.toString('utf8').trim();
  return text.startsWith('TSP1:') ? packageFromText(text) : new Uint8Array(raw);
}

export async function submitPackage(c: Client, pkg: Uint8Array) {
  const r = await c.call<{
    packageId: string;
    keyId: string;
    message: Uint8Array;
    signature: Uint8Array;
    publicKey: Uint8Array;
    signers: string[];
    alreadyCompleted: boolean;
  }>('SubmitPackage', { package: pkg });
  const suite = (await c.call<{ keys: { keyId: string; suite: number }[] }>('ListKeys', {})).keys.find(
    (k) => k.keyId === r.keyId,
  );
  // The coordinator is untrusted: check the signature before reporting success.
  const s = suite ? suiteByWireId(suite.suite) : undefined;
  if (!s?.verify(r.signature, r.message, r.publicKey))
    throw new CliError('SIGNATURE_INVALID', 'the coordinator returned a signature that does not verify');
  return {
    packageId: r.packageId,
    keyId: r.keyId,
    message: toHex(r.message),
    signature: toHex(r.signature),
    publicKey: toHex(r.publicKey),
    signers: r.signers,
    alreadyCompleted: r.alreadyCompleted,
  };
}

export function registerDeviceCommands(
  program: Command,
  out: Out,
  withClient: <T>(dir: string | undefined, fn: (c: Client) => Promise<T>) => Promise<T>,
): void {
  program
    .command('submit')
    .description(
      'complete an offline package (the merchant path): prints the signature; the same package always gives the same result',
    )
    .requiredOption('--package <file>', 'package file (binary or TSP1: text)')
    .option('--dir <dir>', 'cluster directory')
    .option('--json', 'JSON output')
    .action(async (o: { package: string; dir?: string; json?: boolean }) => {
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
      "verify an offline package without the cluster (the merchant's check): the device signed it against genuine, unexpired reservations",
    )
    .requiredOption('--key-record <file>', "the key's public record (tessera device key-record)")
    .requiredOption('--package <file>', 'package file')
    .option('--json', 'JSON output')
    .action((o: { keyRecord: string; package: string; json?: boolean }) => {
      const r = checkPackage(new Uint8Array(readFileSync(o.keyRecord)), readPackage(o.package));
      out(
        !!o.json,
        { ok: true, ...r },
        () =>
          `package ${r.packageId} OK: signed by ${r.device} for key ${r.keyId}; co-signers ${r.cosigners.join(', ')}; complete before ${new Date(r.expiresAt).toISOString()}`,
      );
    });

  const device = program.command('device').description('a device share holder (phone/browser SDK) from the terminal');
  const dd = (c: Command) =>
    c.requiredOption('--device-dir <dir>', "the device's directory").option('--json', 'JSON output');
  const net = (c: Command) =>
    c
      .option('--dir <dir>', 'cluster directory (for its device gateway URL)')
      .option('--gateway <urls>', "device gateway URL, or every coordinator replica's, comma-separated");

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
      const r = await withClient(o.dir, (c) => admitDevice(c, o.device, approvers(c, o.approveWith)));
      out(
        !!o.json,
        r,
        () => `device ${r.device} admitted (${r.approvals} approval(s))\nsign key ${r.signKey}\nenc key  ${r.encKey}`,
      );
    });

  dd(device.command('init').description('create the device identity and its sealed store'))
    .option('--id <id>', 'participant id (default device-<random>)')
    .action(async (o: { deviceDir: string; id?: string; json?: boolean }) => {
      const r = await withDevice(
        o.deviceDir,
        async (d) => {
          const existed = (await d.status()).device !== null;
          const info = await d.init(o.id);
          return { device: info.id, signKey: toHex(info.signKey), created: !existed, deviceDir: resolve(o.deviceDir) };
        },
        true,
      );
      out(!!o.json, r, () => `device ${r.device} ${r.created ? 'created' : 'already exists'} in ${r.deviceDir}`);
    });

  net(dd(device.command('enrol').description('register the device with the cluster using a one-time token')))
    .requiredOption('--token <token>', 'enrolment token')
    .addOption(
      new Option('--class <class>', "what this device is, for the cluster's offline KPIs")
        .choices(['ios', 'android', 'browser', 'desktop', 'cli', 'pos', 'other'])
        .default('cli'),
    )
    .action(
      async (o: {
        deviceDir: string;
        token: string;
        class: string;
        dir?: string;
        gateway?: string;
        json?: boolean;
      }) => {
        const r = await withDevice(o.deviceDir, (d) => d.enrol(gatewayUrl(o), o.token, { deviceClass: o.class }));
        // A dev cluster admits its devices with its dev operator at once (production: `tessera device admit`).
        const dev = o.gateway ? [] : devOperatorFilesIfAny(o.dir);
        if (dev.length) await withClient(o.dir, (c) => admitDevice(c, r.device, dev));
        out(!!o.json, r, () => `device ${r.device} enrolled${dev.length ? ' and admitted by the dev operator' : ''}`);
      },
    );

  net(dd(device.command('keygen').description('create a key whose participants are this device and signer nodes')))
    .addOption(new Option('--suite <suite>').choices([...SUITE_IDS]).default('ed25519'))
    .requiredOption('--threshold <t>', 'signers needed', int)
    .option('--with <ids>', 'other participants (default: every connected signer node)', list)
    .action(
      async (o: {
        deviceDir: string;
        suite: SuiteId;
        threshold: number;
        with?: string[];
        dir?: string;
        gateway?: string;
        json?: boolean;
      }) => {
        if (process.stderr.isTTY && !o.json) process.stderr.write('running DKG with the cluster…\n');
        const k = await withDevice(o.deviceDir, (d) =>
          d.keygen(gatewayUrl(o), { suite: o.suite, threshold: o.threshold, ...(o.with ? { with: o.with } : {}) }),
        );
        out(
          !!o.json,
          k,
          () =>
            `key ${k.keyId}  ${k.suite} ${k.threshold}-of-${k.participants.length} (${k.participants.join(', ')})\npublic key ${k.publicKey}`,
        );
      },
    );

  net(dd(device.command('reserve').description('reserve nonce commitments from co-signers: the offline allowance')))
    .requiredOption('--key <id>', 'key id')
    .option('--count <n>', 'signatures to reserve', int, 10)
    .option('--ttl <seconds>', "reservation lifetime (capped by each signer's policy)", int)
    .option('--cosigners <ids>', 'co-signer nodes to reserve from (default: the coordinator picks)', list)
    .action(
      async (o: {
        deviceDir: string;
        key: string;
        count: number;
        ttl?: number;
        cosigners?: string[];
        dir?: string;
        gateway?: string;
        json?: boolean;
      }) => {
        const r = await withDevice(o.deviceDir, (d) =>
          d.reserve(gatewayUrl(o), {
            keyId: o.key,
            count: o.count,
            ...(o.ttl ? { ttlMs: o.ttl * 1000 } : {}),
            ...(o.cosigners ? { cosigners: o.cosigners } : {}),
          }),
        );
        out(
          !!o.json,
          { keyId: o.key, ...r },
          () =>
            `reserved ${r.added}; offline allowance for ${o.key}: ${r.allowance}${r.errors.length ? `\nwarnings: ${r.errors.join('; ')}` : ''}`,
        );
      },
    );

  net(
    dd(
      device
        .command('sign')
        .description('sign a message; with --offline no network is used and a package is written for later completion'),
    ),
  )
    .requiredOption('--key <id>', 'key id')
    .requiredOption('--message <hex>', 'message as hex')
    .option('--offline', 'sign offline against a reservation')
    .option('--out <file>', 'write the package here')
    .option('--qr', 'also show the package as a QR code (for a terminal; with --json as field "qr")')
    .option('--qr-svg <file>', 'write the package as a QR code in an SVG file')
    .action(
      async (o: {
        deviceDir: string;
        key: string;
        message: string;
        offline?: boolean;
        out?: string;
        qr?: boolean;
        qrSvg?: string;
        dir?: string;
        gateway?: string;
        json?: boolean;
      }) => {
        const message = fromHex(o.message, '--message');
        const r = await withDevice(o.deviceDir, async (d) => {
          const p = await d.signOffline({ keyId: o.key, message });
          if (o.out) writeFileSync(o.out, p.bytes);
          if (o.qrSvg) writeFileSync(o.qrSvg, qrSvg(p.text));
          const base = {
            packageId: p.packageId,
            keyId: p.keyId,
            text: p.text,
            bytes: p.bytes.length,
            ...(o.out ? { file: resolve(o.out) } : {}),
            ...(o.qrSvg ? { qrSvg: resolve(o.qrSvg) } : {}),
            ...(o.qr ? { qr: qrTerminal(p.text) } : {}),
          };
          if (o.offline) return base;
          // Online: deliver at once.
          const s = await d.sync(gatewayUrl(o));
          const done = s.completed.find((x) => x.packageId === p.packageId);
          return { ...base, ...(done ? { signature: done.signature, signers: done.signers } : { pending: true }) };
        });
        out(
          !!o.json,
          r,
          () =>
            `package ${r.packageId} (${r.bytes} bytes)${'signature' in r ? `\nsignature ${r.signature}` : ''}\n${r.text}${r.qr ? `\n${r.qr}` : ''}`,
        );
      },
    );

  net(dd(device.command('sync').description('submit queued packages in order and collect their signatures'))).action(
    async (o: { deviceDir: string; dir?: string; gateway?: string; json?: boolean }) => {
      const r = await withDevice(o.deviceDir, (d) => d.sync(gatewayUrl(o)));
      out(!!o.json, r, () =>
        [
          `completed ${r.completed.length}, pending ${r.pending.length}, failed ${r.failed.length}`,
          ...r.completed.map((c) => `  ${c.packageId} signature ${c.signature}`),
          ...r.pending.map((c) => `  ${c.packageId} pending: ${c.reason}`),
          ...r.failed.map((c) => `  ${c.packageId} FAILED ${c.code}: ${c.reason}`),
        ].join('\n'),
      );
      if (r.failed.length) process.exitCode = 1;
    },
  );

  dd(device.command('status').description('identity, keys, offline allowance and queue')).action(
    async (o: { deviceDir: string; json?: boolean }) => {
      const s = await withDevice(o.deviceDir, (d) => d.status());
      out(!!o.json, s, () =>
        [
          `device ${s.device ?? '(not initialised)'} ${s.enrolled ? 'enrolled' : 'not enrolled'}`,
          ...s.keys.map(
            (k) =>
              `  key ${k.keyId} ${k.suite} ${k.threshold}-of-${k.participants.length} allowance ${k.allowance}${k.nextExpiry ? ` (next expiry ${new Date(k.nextExpiry).toISOString()})` : ''}`,
          ),
          `queue: ${s.queue.pending} pending, ${s.queue.completed} completed, ${s.queue.failed} failed`,
        ].join('\n'),
      );
    },
  );

  dd(device.command('journal').description("the device's event journal, oldest first, its hash chain checked")).action(
    async (o: { deviceDir: string; json?: boolean }) => {
      const entries = await withDevice(o.deviceDir, (d) => d.journal());
      out(!!o.json, { entries }, () =>
        entries.length === 0
          ? 'journal: empty'
          : entries
              .map((e) => {
                const what =
                  e.kind === 'reserved' || e.kind === 'expired'
                    ? `${e.count} slot(s) of key ${e.keyId}`
                    : `package ${e.packageId}${e.code ? ` ${e.code}: ${e.reason}` : ''}${e.note ? ` (${e.note})` : ''}`;
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
      const r = await withDevice(o.deviceDir, (d) => d.compensate(o.package, o.note));
      out(!!o.json, r, () => `package ${r.packageId} ${r.already ? 'was already' : 'is now'} recorded as compensated`);
    });

  dd(device.command('key-record').description("write a key's public record (for merchants to check packages offline)"))
    .requiredOption('--key <id>', 'key id')
    .requiredOption('--out <file>', 'output file')
    .action(async (o: { deviceDir: string; key: string; out: string; json?: boolean }) => {
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

  net(
    dd(
      device
        .command('connect')
        .description('stay linked to the cluster (to join a key generation another device starts)'),
    ),
  )
    .option('--accept-keygen', 'join DKGs that include this device')
    .option('--seconds <n>', 'stay this long (default: until Ctrl-C)', int)
    .action(
      async (o: {
        deviceDir: string;
        acceptKeygen?: boolean;
        seconds?: number;
        dir?: string;
        gateway?: string;
        json?: boolean;
      }) => {
        await withDevice(o.deviceDir, async (d) => {
          await d.connect(gatewayUrl(o), { acceptKeygen: !!o.acceptKeygen });
          out(!!o.json, { device: d.id, linked: true }, () => `device ${d.id} linked; waiting`);
          await new Promise<void>((r) => {
            const t = o.seconds ? setTimeout(r, o.seconds * 1000) : undefined;
            process.once('SIGINT', () => {
              if (t) clearTimeout(t);
              r();
            });
            process.once('SIGTERM', () => {
              if (t) clearTimeout(t);
              r();
            });
          });
        });
      },
    );

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

  dd(
    device
      .command('propose')
      .description("two devices, no cluster: start a signature (this device's commitment and the message)"),
  )
    .requiredOption('--key <id>', 'key id')
    .requiredOption('--message <hex>', 'message as hex')
    .requiredOption('--out <file>', 'request file for the other device')
    .action(async (o: { deviceDir: string; key: string; message: string; out: string; json?: boolean }) => {
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
      // completeCosign checks the aggregate with the suite's plain verifier before returning it.
      const r = await withDevice(o.deviceDir, (d) => d.completeCosign(readCosign(o.in)));
      out(!!o.json, r, () => `signature ${r.signature}\nsigned by ${r.signers.join(' + ')}`);
    });
}

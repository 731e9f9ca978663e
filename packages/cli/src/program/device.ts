/**
 * `tessera device …`: the device SDK from a terminal — a phone's share in a directory. The
 * directory holds the sealed device store and `storage.key` (0600; on a phone the platform
 * keystore holds this key). The cluster's device gateway URL comes from `<dir>/client.json`
 * (`deviceUrl`, written by `tessera dev`) or `--gateway`. Offline commands load only the device
 * SDK, never the cluster client.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { KEY_SUITE_IDS, type SuiteId } from '@tessera/core/suite-ids';
import { amounts, int, list } from '../args.js';
import { CliError } from '../errors.js';
import { deviceDir as dd, gateway as net, out, withClient } from './output.js';

/** Registers `tessera device` with the share holder's own commands; returns the group. */
export function registerDeviceCommands(program: Command): Command {
  const device = program.command('device').description('a device share holder (phone/browser SDK) from the terminal');

  dd(device.command('init').description('create the device identity and its sealed store'))
    .option('--id <id>', 'participant id (default device-<random>)')
    .action(async (o: { deviceDir: string; id?: string; json?: boolean }) => {
      const { withDevice, toHex } = await import('../device-io.js');
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
        const { withDevice, gatewayUrl } = await import('../device-io.js');
        const { admitDevice, devOperatorFilesIfAny } = await import('../operators.js');
        const r = await withDevice(o.deviceDir, (d) => d.enrol(gatewayUrl(o), o.token, { deviceClass: o.class }));
        // A dev cluster admits its devices with its dev operator at once (production: `tessera device admit`).
        const dev = o.gateway ? [] : devOperatorFilesIfAny(o.dir);
        if (dev.length) await withClient(o.dir, (c) => admitDevice(c, r.device, dev));
        out(!!o.json, r, () => `device ${r.device} enrolled${dev.length ? ' and admitted by the dev operator' : ''}`);
      },
    );

  net(dd(device.command('keygen').description('create a key whose participants are this device and signer nodes')))
    .addOption(new Option('--suite <suite>').choices([...KEY_SUITE_IDS]).default('ed25519'))
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
        const { withDevice, gatewayUrl } = await import('../device-io.js');
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
    .option(
      '--cap <asset=amount,...>',
      'caps signed into the reservations: the most they may pay per asset, in base units (e.g. BTC=50000); capped reservations pay transactions only',
      amounts,
    )
    .option('--per-payment <asset=amount,...>', "one payment's most per asset (with --cap)", amounts)
    .option(
      '--fiat-cap <currency=amount>',
      'a cap over every asset the --prices snapshot prices, in minor units (USD=50000 is $500.00)',
      amounts,
    )
    .option(
      '--fiat-per-payment <currency=amount>',
      "one payment's most in the fiat currency (with --fiat-cap)",
      amounts,
    )
    .option(
      '--prices <file>',
      "the operators' signed price snapshot the fiat cap is valued with (`tessera prices sign`)",
    )
    .action(
      async (o: {
        deviceDir: string;
        key: string;
        count: number;
        ttl?: number;
        cosigners?: string[];
        cap?: Record<string, string>;
        perPayment?: Record<string, string>;
        fiatCap?: Record<string, string>;
        fiatPerPayment?: Record<string, string>;
        prices?: string;
        dir?: string;
        gateway?: string;
        json?: boolean;
      }) => {
        const { withDevice, gatewayUrl } = await import('../device-io.js');
        if (o.perPayment && !o.cap) throw new CliError('INVALID_ARGUMENT', '--per-payment needs --cap');
        const fiat = o.fiatCap ? await fiatRequest(o.fiatCap, o.fiatPerPayment, o.prices) : undefined;
        if (!fiat && (o.fiatPerPayment || o.prices))
          throw new CliError('INVALID_ARGUMENT', '--fiat-per-payment and --prices go with --fiat-cap');
        const r = await withDevice(o.deviceDir, (d) =>
          d.reserve(gatewayUrl(o), {
            keyId: o.key,
            count: o.count,
            ...(o.ttl ? { ttlMs: o.ttl * 1000 } : {}),
            ...(o.cosigners ? { cosigners: o.cosigners } : {}),
            ...(o.cap || fiat
              ? {
                  caps: {
                    caps: o.cap ?? {},
                    ...(o.perPayment ? { perPayment: o.perPayment } : {}),
                    ...(fiat ? { fiat } : {}),
                  },
                }
              : {}),
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
    .option('--message <hex>', 'message as hex (or --psbt)')
    .option(
      '--psbt <file>',
      "pay a Bitcoin PSBT (binary, base64 or hex): the message is the input's Taproot signature hash, computed from it",
    )
    .option(
      '--solana-tx <file>',
      'pay a Solana transaction (wire form, binary or base64; SOL or SPL TransferChecked): the message is its message bytes',
    )
    .option(
      '--input <n>',
      'the PSBT input this signature spends (with --psbt); the signer index (with --solana-tx)',
      int,
      0,
    )
    .option('--offline', 'sign offline against a reservation')
    .option(
      '--integrity <verdict>',
      "the app's device-integrity verdict, signed into the package: pass, fail or unknown, optionally ':detail' (required by co-signers whose reservations ask for one)",
    )
    .option('--out <file>', 'write the package here')
    .option('--qr', 'also show the package as a QR code (for a terminal; with --json as field "qr")')
    .option('--qr-svg <file>', 'write the package as a QR code in an SVG file')
    .action(
      async (o: {
        deviceDir: string;
        key: string;
        message?: string;
        psbt?: string;
        solanaTx?: string;
        input: number;
        offline?: boolean;
        integrity?: string;
        out?: string;
        qr?: boolean;
        qrSvg?: string;
        dir?: string;
        gateway?: string;
        json?: boolean;
      }) => {
        const { withDevice, gatewayUrl, fromHex, qrSvg, qrTerminal, readPsbt, readSolanaTx } = await import(
          '../device-io.js'
        );
        if ([o.message, o.psbt, o.solanaTx].filter((x) => x !== undefined).length !== 1)
          throw new CliError('INVALID_ARGUMENT', 'give one of --message <hex>, --psbt <file> or --solana-tx <file>');
        const message = o.message !== undefined ? fromHex(o.message, '--message') : undefined;
        const payment = o.psbt
          ? { chain: 'bitcoin', tx: readPsbt(o.psbt), input: o.input }
          : o.solanaTx
            ? { chain: 'solana', tx: readSolanaTx(o.solanaTx), input: o.input }
            : undefined;
        const integrity = o.integrity === undefined ? undefined : integrityVerdict(o.integrity);
        const r = await withDevice(o.deviceDir, async (d) => {
          const p = await d.signOffline({
            keyId: o.key,
            ...(message ? { message } : {}),
            ...(payment ? { payment } : {}),
            ...(integrity ? { integrity } : {}),
          });
          if (o.out) writeFileSync(o.out, p.bytes);
          if (o.qrSvg) writeFileSync(o.qrSvg, qrSvg(p.text));
          const base = {
            packageId: p.packageId,
            keyId: p.keyId,
            ...(p.payment ? { payment: p.payment } : {}),
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
      const { withDevice, gatewayUrl } = await import('../device-io.js');
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
      const { withDevice } = await import('../device-io.js');
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
        const { withDevice, gatewayUrl } = await import('../device-io.js');
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
  return device;
}

/** `--fiat-cap CUR=amount [--fiat-per-payment CUR=amount] --prices FILE` as the SDK takes it. */
async function fiatRequest(cap: Record<string, string>, per: Record<string, string> | undefined, prices?: string) {
  const [entry, ...more] = Object.entries(cap);
  if (!entry || more.length) throw new CliError('INVALID_ARGUMENT', '--fiat-cap names one currency (USD=50000)');
  const [currency, amount] = entry;
  if (per && (Object.keys(per).length !== 1 || per[currency] === undefined))
    throw new CliError('INVALID_ARGUMENT', `--fiat-per-payment must be in ${currency} (${currency}=20000)`);
  if (!prices) throw new CliError('INVALID_ARGUMENT', '--fiat-cap needs --prices: a snapshot the operators signed');
  const { readSignedPrices } = await import('../prices.js');
  const signed = readSignedPrices(prices);
  return {
    currency,
    cap: amount,
    ...(per ? { perPayment: per[currency] as string } : {}),
    prices: signed.snapshot,
    approvals: signed.approvals,
  };
}

/** `--integrity pass[:detail]` as the SDK takes it. */
function integrityVerdict(v: string): { verdict: 'pass' | 'fail' | 'unknown'; detail?: string } {
  const i = v.indexOf(':');
  const verdict = i < 0 ? v : v.slice(0, i);
  if (verdict !== 'pass' && verdict !== 'fail' && verdict !== 'unknown')
    throw new CliError('INVALID_ARGUMENT', '--integrity is pass, fail or unknown, optionally followed by :detail');
  return i < 0 ? { verdict } : { verdict, detail: v.slice(i + 1) };
}

/**
 * Commands on keys and the cluster: demo, keygen, sign, derive, keys, status, packages, audit
 * verify, certs. Each action loads what it needs when it runs.
 */
import { type Command, Option } from 'commander';
import { KEY_SUITE_IDS, SUITE_IDS, type SuiteId } from '@tessera/core/suite-ids';
import { int, list } from '../args.js';
import { out, withClient } from './output.js';
import type { EthPayment } from '../eth-tx.js';
import type { TronPayment } from '../tron-tx.js';

export function registerClusterCommands(program: Command): void {
  program
    .command('demo')
    .description('run DKG, sign and verify in one process (no cluster)')
    .addOption(new Option('--suite <suite>').choices([...SUITE_IDS]).default('ed25519'))
    .option('--json', 'JSON output')
    .action(async (o: { suite: SuiteId; json?: boolean }) => {
      const { printDemo, runDemo } = await import('../demo.js');
      const r = runDemo(o.suite);
      if (o.json) out(true, r, () => '');
      else printDemo(r);
      if (!r.verified) process.exitCode = 1;
    });

  program
    .command('keygen')
    .description('create a key by DKG among signer nodes (ecdsa-secp256k1: threshold ECDSA, DKLs23)')
    .addOption(new Option('--suite <suite>').choices([...KEY_SUITE_IDS]).default('ed25519'))
    .requiredOption('--threshold <t>', 'signers needed', int)
    .option('--participants <ids>', 'comma-separated participant ids (default: all connected)', list)
    .option('--dir <dir>', 'cluster directory')
    .option('--json', 'JSON output')
    .action(async (o: { suite: string; threshold: number; participants?: string[]; dir?: string; json?: boolean }) => {
      if (process.stderr.isTTY && !o.json) process.stderr.write('running DKG…\n');
      const { keygen } = await import('../commands.js');
      const k = await withClient(o.dir, (c) => keygen(c, o));
      out(
        !!o.json,
        k,
        () =>
          `key ${k.keyId}  ${k.suite} ${k.threshold}-of-${k.participants.length} (${k.participants.join(', ')})\npublic key ${k.publicKey}`,
      );
    });

  program
    .command('sign')
    .description('sign a message with a key')
    .requiredOption('--key <id>', 'key id')
    .option('--message <hex>', 'message as hex (ECDSA keys: the 32-byte digest, e.g. keccak256 of a transaction)')
    .option('--message-file <file>', 'message as raw bytes from a file')
    .option(
      '--eth-tx <file>',
      'an EIP-1559 transaction (JSON) to sign with an ECDSA key: prints the signed raw transaction',
    )
    .option(
      '--tron-tx <file>',
      'a TRON transaction (TronGrid/TronWeb JSON with raw_data_hex): a TRX or TRC-20 transfer from the ECDSA key; prints it signed',
    )
    .option('--psbt <file>', 'a Bitcoin PSBT (binary, base64 or hex): sign and finalise the input this key spends')
    .option('--input <n>', 'with --psbt: the input to sign (default 0)', int)
    .option('--signers <ids>', 'preferred signers, comma-separated', list)
    .option('--path <path>', 'sign with the HD child key at this path (m/0/5)')
    .option('--dir <dir>', 'cluster directory')
    .option('--json', 'JSON output')
    .action(
      async (o: {
        key: string;
        message?: string;
        messageFile?: string;
        ethTx?: string;
        tronTx?: string;
        psbt?: string;
        input?: number;
        signers?: string[];
        path?: string;
        dir?: string;
        json?: boolean;
      }) => {
        const { sign } = await import('../commands.js');
        const r = await withClient(o.dir, (c) => sign(c, o));
        out(
          !!o.json,
          r,
          () =>
            `signature ${r.signature}\nsigned by ${r.signers.join(', ')} for key ${r.keyId}${o.path ? ` at ${o.path} (${r.publicKey})` : ''}${
              'rawTransaction' in r
                ? `${ethPaymentLine(r.payment as EthPayment | null)}\nfrom ${r.from}\ntransaction ${r.hash}\nraw ${r.rawTransaction}`
                : ''
            }${tronLines(r as { payment?: TronPayment; txID?: string })}${psbtLines(r as { psbt?: string; transaction?: string; txid?: string })}`,
        );
      },
    );

  program
    .command('derive')
    .description(
      "an HD child key (non-hardened, public derivation) and its address, derived locally from the key's public record",
    )
    .requiredOption('--key <id>', 'key id')
    .requiredOption('--path <path>', 'derivation path, e.g. m/0/5')
    .option('--testnet', 'Bitcoin testnet address (tb1p…)')
    .option('--dir <dir>', 'cluster directory')
    .option('--json', 'JSON output')
    .action(async (o: { key: string; path: string; testnet?: boolean; dir?: string; json?: boolean }) => {
      const { derive } = await import('../commands.js');
      const r = await withClient(o.dir, (c) =>
        derive(c, { key: o.key, path: o.path, network: o.testnet ? 'testnet' : 'mainnet' }),
      );
      out(!!o.json, r, () =>
        [
          `${r.path}  ${r.publicKey}`,
          `address ${r.address}`,
          ...Object.entries(r.addresses ?? {}).map(([chain, a]) => `${chain.padEnd(7)} ${a}`),
        ].join('\n'),
      );
    });

  program
    .command('keys')
    .description('list keys')
    .option('--dir <dir>', 'cluster directory')
    .option('--json', 'JSON output')
    .action(async (o: { dir?: string; json?: boolean }) => {
      const { keys } = await import('../commands.js');
      const ks = await withClient(o.dir, keys);
      out(
        !!o.json,
        ks,
        () =>
          ks
            .map((k) => `${k.keyId}  ${k.suite.padEnd(12)} ${k.threshold}-of-${k.participants.length}  ${k.publicKey}`)
            .join('\n') || '(no keys)',
      );
    });

  program
    .command('status')
    .description('cluster health')
    .option('--dir <dir>', 'cluster directory')
    .option('--json', 'JSON output')
    .action(async (o: { dir?: string; json?: boolean }) => {
      const { status } = await import('../commands.js');
      const s = await withClient(o.dir, status);
      out(!!o.json, s, () =>
        [
          `coordinator ${s.coordinator.address} pid ${s.coordinator.pid} keys ${s.coordinator.keys} metrics ${s.coordinator.metrics}`,
          ...s.signers.map(
            (x) =>
              `  ${x.id.padEnd(12)} ${x.healthy ? 'healthy' : 'DOWN   '} keys ${x.keys} pool ${x.pooledCommitments} ${x.metrics}`,
          ),
          ...(s.offline
            ? [
                `offline payments: ${s.offline.completed} completed, ${s.offline.refused} refused, ${s.offline.pendingOnDevices} waiting on devices; success ${
                  Object.entries(s.offline.successRate)
                    .map(([c, r]) => `${c} ${(r * 100).toFixed(1)}%`)
                    .join(', ') || '—'
                }; allowance used ${(s.offline.allowanceUtilisation * 100).toFixed(1)}%; reuse attempts ${s.offline.compromiseIndicators.reservationReuse}, culprits ${s.offline.compromiseIndicators.culprits}, past cap ${s.offline.compromiseIndicators.packagesPastCap}`,
              ]
            : []),
        ].join('\n'),
      );
    });

  program
    .command('packages')
    .description('offline packages as the cluster decided them (completed, refused with why), newest first')
    .option('--device <id>', 'one device only')
    .addOption(new Option('--state <state>', 'one state only').choices(['completed', 'refused']))
    .option('--limit <n>', 'at most this many (1-1000)', int, 100)
    .option('--dir <dir>', 'cluster directory')
    .option('--json', 'JSON output')
    .action(async (o: { device?: string; state?: string; limit: number; dir?: string; json?: boolean }) => {
      const { packages } = await import('../commands.js');
      const r = await withClient(o.dir, (c) =>
        packages(c, {
          ...(o.device ? { device: o.device } : {}),
          ...(o.state ? { state: o.state } : {}),
          limit: o.limit,
        }),
      );
      out(!!o.json, r, () =>
        [
          ...r.packages.map(
            (p) =>
              `${p.at}  ${p.state.padEnd(9)} ${p.packageId}  ${p.device}  key ${p.keyId}${p.code ? `  ${p.code}` : ''}`,
          ),
          ...(r.truncated ? ['… more: raise --limit'] : []),
          ...(r.packages.length ? [] : ['no offline packages yet']),
        ].join('\n'),
      );
    });

  const audit = program.command('audit').description('audit logs');
  audit
    .command('verify')
    .description('verify the hash-chained audit log of the coordinator and every signer')
    .option('--dir <dir>', 'cluster directory')
    .option('--json', 'JSON output')
    .action(async (o: { dir?: string; json?: boolean }) => {
      const { auditVerify } = await import('../commands.js');
      const r = await withClient(o.dir, auditVerify);
      out(!!o.json, r, () =>
        r.processes
          .map(
            (p) =>
              `${p.id.padEnd(12)} ${p.ok ? `OK      ${p.count} entries, head ${p.head.slice(0, 16)}…` : `FAILED  ${p.reason} at entry ${p.problemSeq}`}`,
          )
          .join('\n'),
      );
      if (!r.ok) process.exitCode = 1;
    });

  program
    .command('certs')
    .description('create a dev certificate authority and certificates (ECDSA P-256) for mTLS')
    .requiredOption('--out <dir>', 'output directory')
    .requiredOption('--names <names>', 'certificate names (CN), comma-separated', list)
    .option('--hosts <hosts>', 'extra DNS names or IPs for the certificates', list)
    .option('--force', 'reissue existing certificates')
    .option('--json', 'JSON output')
    .action(async (o: { out: string; names: string[]; hosts?: string[]; force?: boolean; json?: boolean }) => {
      const { createDevPki } = await import('@tessera/runtime');
      const r = await createDevPki(o.out, o.names, {
        ...(o.hosts ? { hosts: o.hosts } : {}),
        ...(o.force ? { force: true } : {}),
      });
      out(!!o.json, r, () =>
        [`CA ${r.ca}`, ...Object.entries(r.certs).map(([n, f]) => `${n.padEnd(12)} ${f.cert}`)].join('\n'),
      );
    });
}

/** What `sign --psbt` adds to its text output: the signed transaction, or the PSBT still to finish. */
function ethPaymentLine(p: EthPayment | null | undefined): string {
  return p ? `\npays ${p.amount} ${p.asset} to ${p.to} (at most ${p.maxFee} wei of gas)` : '';
}

function tronLines(r: { payment?: TronPayment; txID?: string; transaction?: unknown }): string {
  const p = r.payment;
  if (!p || !r.txID) return '';
  return `\npays ${p.amount} ${p.asset} from ${p.from} to ${p.to} (fee limit ${p.feeLimit} sun)\ntransaction ${r.txID}\nsigned ${JSON.stringify(r.transaction)}`;
}

function psbtLines(r: { psbt?: string; transaction?: string; txid?: string }): string {
  if (r.psbt === undefined) return '';
  return r.transaction ? `\ntransaction ${r.txid}\nraw ${r.transaction}` : `\npsbt ${r.psbt}`;
}

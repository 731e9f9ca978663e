/**
 * `tessera kek …`: key-encryption keys for the signer and coordinator stores. A KEK is named as
 * `file:<path>`, `env:<NAME>` (64 hex characters) or an RFC 7512 `pkcs11:` URI (an AES key inside
 * an HSM; see docs/OPERATIONS.md, "KEKs in an HSM").
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { out } from './output.js';

/** The KEK functions, loaded when a `kek` command runs. */
const store = () => import('@tessera/store');

export function registerKekCommands(program: Command): void {
  const kek = program.command('kek').description('key-encryption keys: create, rotate, check');

  kek
    .command('generate')
    .description('write a new random KEK file (64 hex characters, mode 0600) for kekFile / file:<path>')
    .requiredOption('--out <file>', 'file to create (refused if it exists)')
    .option('--json', 'JSON output')
    .action(async (o: { out: string; json?: boolean }) => {
      const { generateKekHex } = await store();
      writeFileSync(o.out, `${generateKekHex()}\n`, { mode: 0o600, flag: 'wx' });
      out(
        !!o.json,
        { file: o.out, kek: `file:${o.out}` },
        () => `KEK written to ${o.out} (use kekFile or file:${o.out})`,
      );
    });

  kek
    .command('create')
    .description('create a non-extractable AES-256 KEK inside a PKCS#11 token (the key never leaves it)')
    .requiredOption('--kek <uri>', 'pkcs11:token=<label>;object=<key label>?module-path=<lib>&pin-source=file:<path>')
    .option('--json', 'JSON output')
    .action(async (o: { kek: string; json?: boolean }) => {
      const { createPkcs11Kek } = await store();
      const r = createPkcs11Kek(o.kek);
      out(!!o.json, r, () => `created ${r.id} (non-extractable, sensitive); set kekPkcs11 to the same URI`);
    });

  kek
    .command('rotate')
    .description('re-wrap a stopped store’s data key under a new KEK (one synced write; no data is rewritten)')
    .requiredOption('--data-dir <dir>', 'the store (a stopped signer’s or coordinator’s dataDir)')
    .requiredOption('--from <kek>', 'the KEK it is under now: file:<path>, env:<NAME> or pkcs11:<URI>')
    .requiredOption('--to <kek>', 'the new KEK')
    .option('--json', 'JSON output')
    .action(async (o: { dataDir: string; from: string; to: string; json?: boolean }) => {
      const { openKek, rotateKek } = await store();
      const from = openKek(o.from);
      const to = openKek(o.to);
      try {
        const r = await rotateKek(o.dataDir, from, to);
        out(!!o.json, { dataDir: o.dataDir, ...r }, () =>
          r.already
            ? `${o.dataDir} is already under ${r.to}; nothing changed`
            : `${o.dataDir}: data key re-wrapped from ${r.from} to ${r.to}; point the daemon's config at the new KEK`,
        );
      } finally {
        from.close?.();
        to.close?.();
      }
    });

  kek
    .command('check')
    .description('check that a KEK opens a stopped store')
    .requiredOption('--data-dir <dir>', 'the store')
    .requiredOption('--kek <kek>', 'file:<path>, env:<NAME> or pkcs11:<URI>')
    .option('--json', 'JSON output')
    .action(async (o: { dataDir: string; kek: string; json?: boolean }) => {
      const { openKek, SealedStore } = await store();
      const k = openKek(o.kek);
      try {
        const store = await SealedStore.open(o.dataDir, k, { createIfMissing: false });
        const kekId = store.kekId;
        await store.close();
        out(!!o.json, { dataDir: o.dataDir, kek: kekId, opens: true }, () => `${o.dataDir} opens with ${kekId}`);
      } finally {
        k.close?.();
      }
    });
}

/** `tessera prices …`: operator-signed price snapshots for fiat caps (../prices.ts). */
import type { Command } from 'commander';
import { list } from '../args.js';
import { out } from './output.js';

export function registerPricesCommands(program: Command): void {
  const prices = program
    .command('prices')
    .description('price snapshots signed by operators: what fiat caps on offline payments are valued with');

  prices
    .command('sign')
    .description(
      'sign a price table as an operator (a new snapshot, taken now unless it says takenAt), or add your signature to a signed snapshot',
    )
    .requiredOption('--in <file>', 'a table { currency, prices: { ASSET: { per, fiat } } } or a signed snapshot')
    .requiredOption('--approve-with <files>', 'operator key files signing it', list)
    .option('--out <file>', 'the signed snapshot (default: --in)')
    .option('--json', 'JSON output')
    .action(async (o: { in: string; approveWith: string[]; out?: string; json?: boolean }) => {
      const { signPrices, writeSignedPrices } = await import('../prices.js');
      const r = signPrices(o.in, o.approveWith);
      const file = o.out ?? o.in;
      writeSignedPrices(file, r.file);
      out(
        !!o.json,
        {
          file,
          currency: r.file.currency,
          takenAt: r.file.takenAt,
          assets: Object.keys(r.file.prices),
          signers: r.signers,
        },
        () =>
          `wrote ${file}: ${r.file.currency} prices of ${Object.keys(r.file.prices).join(', ')} taken ${r.file.takenAt}, signed by ${r.signers.length} operator(s)`,
      );
    });
}

/**
 * Price snapshots from the command line (issue 19's fiat caps). Operators write the table they
 * stand behind and sign it, each on their own machine; a device reserving with a fiat cap passes
 * the signed file to its co-signers, which check the signatures against their pinned operator
 * keys and its age before they grant the cap:
 *
 *   tessera prices sign --in prices.json --approve-with alice.operator.json --out usd.json
 *   tessera prices sign --in usd.json --approve-with bob.operator.json        # adds, in place
 *   tessera device reserve --key K --fiat-cap USD=50000 --prices usd.json
 *
 * A table (`prices.json`): `{ "currency": "USD", "prices": { "BTC": { "per": "100000000",
 * "fiat": "9700000" } } }` — `fiat` minor units buy `per` base units; `takenAt` (ms) defaults to
 * now. The signed file keeps the table readable beside its exact bytes (`snapshot`, hex) and
 * the operators' signatures (`approvals`, hex).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import {
  approvePriceSnapshot,
  decodePriceSnapshot,
  encodePriceSnapshot,
  fromHex,
  openEnvelope,
  PayloadKind,
  type PriceSnapshot,
  priceSnapshotFromJson,
  toHex,
} from '@tessera/core';
import { CliError } from './errors.js';
import { loadOperator } from './operators.js';

/** A signed snapshot file. */
export interface SignedPricesFile {
  currency: string;
  takenAt: string;
  prices: Record<string, { per: string; fiat: string }>;
  snapshot: string;
  approvals: string[];
}

function readJson(file: string): unknown {
  if (!existsSync(file)) throw new CliError('CONFIG', `no file ${file}`);
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CliError('INVALID_ARGUMENT', `${file} is not JSON: ${(e as Error).message}`);
  }
}

function describe(s: PriceSnapshot, snapshot: Uint8Array, approvals: string[]): SignedPricesFile {
  return {
    currency: s.currency,
    takenAt: new Date(s.takenAt).toISOString(),
    prices: Object.fromEntries(s.prices.map((p) => [p.asset, { per: p.per.toString(), fiat: p.fiat.toString() }])),
    snapshot: toHex(snapshot),
    approvals,
  };
}

/**
 * Reads a signed snapshot file: its exact bytes and signatures. The readable fields must say
 * what the bytes say (a hand-edited price is refused, not silently ignored).
 */
export function readSignedPrices(file: string): {
  snapshot: Uint8Array;
  approvals: Uint8Array[];
  file: SignedPricesFile;
} {
  const j = readJson(file) as Partial<SignedPricesFile>;
  if (typeof j.snapshot !== 'string' || !Array.isArray(j.approvals))
    throw new CliError(
      'INVALID_ARGUMENT',
      `${file} is not a signed price snapshot (snapshot, approvals): \`tessera prices sign\``,
    );
  const snapshot = fromHex(j.snapshot, 'snapshot');
  const s = decodePriceSnapshot(snapshot);
  const approvals = j.approvals.map((a) => String(a));
  const canonical = describe(s, snapshot, approvals);
  if (
    JSON.stringify([j.currency, j.takenAt, j.prices]) !==
    JSON.stringify([canonical.currency, canonical.takenAt, canonical.prices])
  )
    throw new CliError('INVALID_ARGUMENT', `${file}: the readable prices differ from the signed snapshot`);
  return { snapshot, approvals: approvals.map((a) => fromHex(a, 'approval')), file: canonical };
}

/**
 * Signs a table (a new snapshot, taken now unless it says when) or adds approvals to a signed
 * file. Returns the signed file and the operators' keys (hex) among its approvals.
 */
export function signPrices(
  input: string,
  operatorFiles: readonly string[],
  now = Date.now(),
): { file: SignedPricesFile; signers: string[] } {
  const j = readJson(input) as { snapshot?: unknown };
  const { snapshot, approvals } =
    typeof j.snapshot === 'string'
      ? (() => {
          const r = readSignedPrices(input);
          return { snapshot: r.snapshot, approvals: r.file.approvals };
        })()
      : { snapshot: encodePriceSnapshot(priceSnapshotFromJson(j, now)), approvals: [] as string[] };
  const all = [...approvals];
  for (const f of operatorFiles) {
    const a = toHex(approvePriceSnapshot(loadOperator(f), snapshot));
    if (!all.includes(a)) all.push(a);
  }
  const signers = all.flatMap((a) => {
    try {
      const env = openEnvelope(fromHex(a, 'approval'), PayloadKind.PRICE_SNAPSHOT);
      return toHex(env.payload) === toHex(snapshot) ? [toHex(env.sender)] : [];
    } catch {
      return [];
    }
  });
  return { file: describe(decodePriceSnapshot(snapshot), snapshot, all), signers };
}

export function writeSignedPrices(file: string, f: SignedPricesFile): void {
  writeFileSync(file, `${JSON.stringify(f, null, 2)}\n`);
}

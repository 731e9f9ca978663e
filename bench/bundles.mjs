/**
 * Browser bundle sizes of the device SDK and the web apps (esbuild, minified, ESM, gzip -9), as
 * issue 21 sets them: the full SDK <= 80 KB gzip and the merchant's `checkPackage` <= 25 KB gzip.
 * Baseline in the same run: noble's Ed25519 alone (the least a package check must carry).
 *
 *   node bench/bundles.mjs        (after tsc -b; bench.mjs includes it)
 */
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { browserBundle } from '../scripts/build-apps.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const ENTRIES = [
  ['noble-ed25519', "export { ed25519 } from '@noble/curves/ed25519.js';", null],
  ['sdk-full', "export * from '@tessera/device';", 80],
  ['sdk-checkPackage', "export { checkPackage } from '@tessera/device';", 25],
  ['app-wallet', null, null],
  ['app-console', null, null],
];

async function size(contents, entry) {
  const js = await browserBundle(entry ? { entry } : { contents });
  return { bytes: js.length, gzip: gzipSync(js, { level: 9 }).length };
}

/** Every bundle's size, and the targets it has. */
export async function bundleRows() {
  const out = [];
  for (const [name, contents, targetKb] of ENTRIES) {
    const app = name.startsWith('app-') ? `${ROOT}apps/${name.slice(4)}/src/main.ts` : null;
    const s = await size(contents, app);
    out.push({ name, ...s, targetGzipKb: targetKb });
  }
  const base = out[0].gzip;
  for (const r of out) r.vsBaseline = Math.round((r.gzip / base) * 100) / 100;
  return out;
}

export function printBundles(rows) {
  console.log(
    `\n${'bundle'.padEnd(18)} ${'min KB'.padStart(8)} ${'gzip KB'.padStart(8)} ${'× noble-ed25519'.padStart(16)}`,
  );
  for (const r of rows)
    console.log(
      `${r.name.padEnd(18)} ${(r.bytes / 1024).toFixed(1).padStart(8)} ${(r.gzip / 1024).toFixed(1).padStart(8)} ${`${r.vsBaseline.toFixed(2)}×`.padStart(16)}`,
    );
}

export function bundleTargets(rows) {
  return rows
    .filter((r) => r.targetGzipKb)
    .map((r) => ({
      what: `${r.name} gzip`,
      measured: `${(r.gzip / 1024).toFixed(1)} KB`,
      target: `<= ${r.targetGzipKb} KB`,
      met: r.gzip <= r.targetGzipKb * 1024,
    }));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const rows = await bundleRows();
  printBundles(rows);
  for (const t of bundleTargets(rows))
    console.log(`  ${t.met ? 'met    ' : 'NOT met'} ${t.what}: ${t.measured} (target ${t.target})`);
}

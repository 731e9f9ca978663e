/**
 * Browser bundle sizes of the device SDK and the web apps (esbuild, minified, ESM, gzip -9), as
 * issue 21 sets them: the full SDK <= 80 KB gzip and the merchant's package check <= 25 KB gzip.
 * Baseline in the same run: noble's Ed25519 alone (the least a package check must carry: the
 * reservations are signed with Ed25519 identity keys).
 *
 * The merchant's check comes two ways: `checkEd25519Package` (one file, one curve) and
 * `checkPackage` (any suite; built with code splitting, each suite's curve a chunk loaded when a
 * package of that suite arrives). For the latter a row per suite gives what a page downloads to
 * check one package: the entry, the suite's chunk and every chunk they import, each gzipped.
 *
 *   node bench/bundles.mjs        (after tsc -b; bench.mjs includes it)
 */
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { browserBundle, browserChunks } from '../scripts/build-apps.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const ENTRIES = [
  ['noble-ed25519', "export { ed25519 } from '@noble/curves/ed25519.js';", null],
  ['sdk-full', "export * from '@tessera/device';", 80],
  ['merchant-ed25519', "export { checkEd25519Package } from '@tessera/device';", 25],
  ['app-wallet', null, null],
  ['app-console', null, null],
];

async function size(contents, entry) {
  const js = await browserBundle(entry ? { entry } : { contents });
  return { bytes: js.length, gzip: gzipSync(js, { level: 9 }).length };
}

/** Chunk files of the any-suite check that serve the curve of each suite (its `./curves/` module). */
const SUITE_CHUNKS = [
  ['ed25519', null],
  ['secp256k1', 'curves/secp256k1.js'],
  ['p256', 'curves/p256.js'],
];

/** What a page downloads to check a package of each suite with `checkPackage` (split build). */
async function anySuiteRows() {
  const chunks = await browserChunks("export { checkPackage } from '@tessera/device';");
  const byPath = new Map(chunks.map((c) => [c.path, c]));
  const closure = (start) => {
    const seen = new Set();
    const visit = (p) => {
      if (seen.has(p)) return;
      seen.add(p);
      for (const i of byPath.get(p)?.staticImports ?? []) visit(i);
    };
    for (const p of start) visit(p);
    return [...seen].map((p) => byPath.get(p));
  };
  const entry = chunks.find((c) => c.entryPoint === '<stdin>');
  return SUITE_CHUNKS.map(([suite, module]) => {
    const extra = module ? chunks.find((c) => c.entryPoint?.endsWith(module)) : null;
    if (module && !extra) throw new Error(`no chunk for ${module}`);
    const files = closure([entry.path, ...(extra ? [extra.path] : [])]);
    return {
      name: `merchant-any/${suite}`,
      bytes: files.reduce((a, f) => a + f.bytes, 0),
      gzip: files.reduce((a, f) => a + f.gzip, 0),
      files: files.length,
      targetGzipKb: null,
    };
  });
}

/** Every bundle's size, and the targets it has. */
export async function bundleRows() {
  const out = [];
  for (const [name, contents, targetKb] of ENTRIES) {
    const app = name.startsWith('app-') ? `${ROOT}apps/${name.slice(4)}/src/main.ts` : null;
    const s = await size(contents, app);
    out.push({ name, ...s, files: 1, targetGzipKb: targetKb });
    if (name === 'merchant-ed25519') out.push(...(await anySuiteRows()));
  }
  const base = out[0].gzip;
  for (const r of out) r.vsBaseline = Math.round((r.gzip / base) * 100) / 100;
  return out;
}

export function printBundles(rows) {
  console.log(
    `\n${'bundle'.padEnd(22)} ${'files'.padStart(5)} ${'min KB'.padStart(8)} ${'gzip KB'.padStart(8)} ${'× noble-ed25519'.padStart(16)}`,
  );
  for (const r of rows)
    console.log(
      `${r.name.padEnd(22)} ${String(r.files).padStart(5)} ${(r.bytes / 1024).toFixed(1).padStart(8)} ${(r.gzip / 1024).toFixed(1).padStart(8)} ${`${r.vsBaseline.toFixed(2)}×`.padStart(16)}`,
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

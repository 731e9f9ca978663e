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
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { browserBundle, browserChunks, buildApp, staticClosure } from '../scripts/build-apps.mjs';

const ENTRIES = [
  ['noble-ed25519', "export { ed25519 } from '@noble/curves/ed25519.js';", null],
  ['sdk-full', "export * from '@tessera/device';", null],
  ['merchant-ed25519', "export { checkEd25519Package } from '@tessera/core/merchant';", 25],
  ['app-wallet', null, null],
  ['app-console', null, null],
];

async function size(contents) {
  const js = await browserBundle({ contents });
  return { bytes: js.length, gzip: gzipSync(js, { level: 9 }).length };
}

/** Chunk files of the any-suite check that serve the curve of each suite (its `./curves/` module). */
const SUITE_CHUNKS = [
  ['ed25519', null],
  ['secp256k1', 'curves/secp256k1.js'],
  ['p256', 'curves/p256.js'],
];

const sum = (files, k) => files.reduce((a, f) => a + f[k], 0);

/**
 * The whole SDK in a code-split build: what a page downloads to open a wallet, pay offline and
 * sync (the entry and its static chunks: the target), and every chunk, also those it imports on
 * first use (backup KDFs and Shamir pieces, the DKG and refresh/reshare participants, the
 * merchant's check). `sdk-full` above is the same code as one file.
 */
export async function sdkSplit() {
  const chunks = await browserChunks("export * from '@tessera/device';");
  const entry = chunks.find((c) => c.entryPoint === '<stdin>');
  const initial = staticClosure(chunks, [entry.path]);
  const lazy = chunks.filter((c) => !initial.includes(c));
  return { chunks, initial, lazy };
}

async function sdkSplitRows() {
  const { chunks, initial } = await sdkSplit();
  return [
    {
      name: 'sdk-split/initial',
      bytes: sum(initial, 'bytes'),
      gzip: sum(initial, 'gzip'),
      files: initial.length,
      targetGzipKb: 80,
    },
    {
      name: 'sdk-split/all-chunks',
      bytes: sum(chunks, 'bytes'),
      gzip: sum(chunks, 'gzip'),
      files: chunks.length,
      targetGzipKb: null,
    },
  ];
}

/** What a page downloads to check a package of each suite with `checkPackage` (split build). */
async function anySuiteRows() {
  const chunks = await browserChunks("export { checkPackage } from '@tessera/core/merchant';");
  const closure = (start) => staticClosure(chunks, start);
  const entry = chunks.find((c) => c.entryPoint === '<stdin>');
  return SUITE_CHUNKS.map(([suite, module]) => {
    const extra = module ? chunks.find((c) => c.entryPoint?.endsWith(module)) : null;
    if (module && !extra) throw new Error(`no chunk for ${module}`);
    const files = closure([entry.path, ...(extra ? [extra.path] : [])]);
    return {
      name: `merchant-any/${suite}`,
      bytes: sum(files, 'bytes'),
      gzip: sum(files, 'gzip'),
      files: files.length,
      targetGzipKb: null,
    };
  });
}

/** Every bundle's size, and the targets it has. */
export async function bundleRows() {
  const out = [];
  for (const [name, contents, targetKb] of ENTRIES) {
    if (name.startsWith('app-')) {
      // As scripts/build-apps.mjs builds it for `tessera dev`: what the page downloads when it opens.
      const dir = mkdtempSync(join(tmpdir(), 'tessera-bundle-'));
      try {
        const a = await buildApp(name.slice(4), dir);
        out.push({ name, bytes: a.bytes, gzip: a.gzip, files: a.files, targetGzipKb: null });
        if (a.all.files > a.files)
          out.push({
            name: `${name}/all-chunks`,
            bytes: a.all.bytes,
            gzip: a.all.gzip,
            files: a.all.files,
            targetGzipKb: null,
          });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      continue;
    }
    out.push({ name, ...(await size(contents)), files: 1, targetGzipKb: targetKb });
    if (name === 'sdk-full') out.push(...(await sdkSplitRows()));
    if (name === 'merchant-ed25519') out.push(...(await anySuiteRows()));
  }
  const base = out[0].gzip;
  for (const r of out) r.vsBaseline = Math.round((r.gzip / base) * 100) / 100;
  return out;
}

export function printBundles(rows) {
  console.log(
    `\n${'bundle'.padEnd(24)} ${'files'.padStart(5)} ${'min KB'.padStart(8)} ${'gzip KB'.padStart(8)} ${'× noble-ed25519'.padStart(16)}`,
  );
  for (const r of rows)
    console.log(
      `${r.name.padEnd(24)} ${String(r.files).padStart(5)} ${(r.bytes / 1024).toFixed(1).padStart(8)} ${(r.gzip / 1024).toFixed(1).padStart(8)} ${`${r.vsBaseline.toFixed(2)}×`.padStart(16)}`,
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

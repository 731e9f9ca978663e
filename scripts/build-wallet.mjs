#!/usr/bin/env node
/**
 * Builds the browser wallet (apps/wallet) into apps/wallet/dist: one minified ES module bundle
 * (esbuild; `@tessera/*` resolve to the workspace packages' built dist, `level` to IndexedDB),
 * the page and its stylesheet. `tessera dev` serves that directory. Run after `tsc -b`.
 *
 *   node scripts/build-wallet.mjs [outDir]
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const APP = join(ROOT, 'apps', 'wallet');

/** Builds into `outDir` (default apps/wallet/dist); returns the bundle's sizes. */
export async function buildWallet(outDir = join(APP, 'dist')) {
  mkdirSync(outDir, { recursive: true });
  const r = await build({
    entryPoints: [join(APP, 'src', 'main.ts')],
    absWorkingDir: ROOT,
    bundle: true,
    minify: true,
    write: false,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    conditions: ['browser'],
    logLevel: 'silent',
  });
  const js = r.outputFiles[0]?.contents;
  if (!js) throw new Error('esbuild produced no wallet bundle');
  writeFileSync(join(outDir, 'wallet.js'), js);
  copyFileSync(join(APP, 'index.html'), join(outDir, 'index.html'));
  copyFileSync(join(APP, 'wallet.css'), join(outDir, 'wallet.css'));
  return { dir: outDir, bytes: js.length, gzip: gzipSync(js).length };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = await buildWallet(process.argv[2]);
  process.stdout.write(
    `wallet built in ${out.dir}: ${Math.round(out.bytes / 1024)} KB, ${Math.round(out.gzip / 1024)} KB gzip\n`,
  );
}

#!/usr/bin/env node
/**
 * Builds the two web apps — the browser wallet (apps/wallet) and the operator console
 * (apps/console) — into <outDir>/wallet and <outDir>/console (default apps/dist): per app one
 * minified ES module bundle (esbuild; `@tessera/*` resolve to the workspace packages' built dist,
 * `level` to IndexedDB), its page and its stylesheet. `tessera dev` serves both. Run after `tsc -b`.
 *
 *   node scripts/build-apps.mjs [outDir]
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const APPS = ['wallet', 'console'];

/**
 * One minified ES module for browsers (the settings every web bundle of the project uses): from
 * an entry file, or from `contents` (an ES module's text) resolved at the repository root.
 */
export async function browserBundle({ entry, contents }) {
  const r = await build({
    ...(entry ? { entryPoints: [entry] } : { stdin: { contents, resolveDir: ROOT, loader: 'js' } }),
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
  if (!js) throw new Error(`esbuild produced no bundle for ${entry ?? 'its input'}`);
  return js;
}

/**
 * The same settings with code splitting: what a page downloads at first, and what each module it
 * imports on demand (`import()`) adds. Returns the chunks, each with its gzip size, the chunks it
 * imports statically and the module a dynamic import of it names (`entryPoint`).
 */
export async function browserChunks(contents) {
  const r = await build({
    stdin: { contents, resolveDir: ROOT, loader: 'js' },
    absWorkingDir: ROOT,
    bundle: true,
    minify: true,
    write: false,
    splitting: true,
    outdir: join(ROOT, '.chunks'),
    metafile: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    conditions: ['browser'],
    logLevel: 'silent',
  });
  const files = new Map(r.outputFiles.map((f) => [f.path, f.contents]));
  return Object.entries(r.metafile.outputs).map(([path, o]) => {
    const js = files.get(join(ROOT, path));
    if (!js) throw new Error(`esbuild reported ${path} but produced no such file`);
    return {
      path,
      bytes: js.length,
      gzip: gzipSync(js, { level: 9 }).length,
      staticImports: o.imports.filter((i) => i.kind === 'import-statement').map((i) => i.path),
      dynamicImports: o.imports.filter((i) => i.kind === 'dynamic-import').map((i) => i.path),
      entryPoint: o.entryPoint ?? null,
    };
  });
}

/** Builds one app into `outDir`; returns its bundle's sizes. */
export async function buildApp(app, outDir) {
  const src = join(ROOT, 'apps', app);
  mkdirSync(outDir, { recursive: true });
  const js = await browserBundle({ entry: join(src, 'src', 'main.ts') });
  writeFileSync(join(outDir, `${app}.js`), js);
  copyFileSync(join(src, 'index.html'), join(outDir, 'index.html'));
  copyFileSync(join(src, `${app}.css`), join(outDir, `${app}.css`));
  return { app, dir: outDir, bytes: js.length, gzip: gzipSync(js).length };
}

/** Builds every app into `<outDir>/<app>` (default apps/dist). */
export async function buildApps(outDir = join(ROOT, 'apps', 'dist')) {
  const out = [];
  for (const app of APPS) out.push(await buildApp(app, join(outDir, app)));
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const a of await buildApps(process.argv[2]))
    process.stdout.write(
      `${a.app} built in ${a.dir}: ${Math.round(a.bytes / 1024)} KB, ${Math.round(a.gzip / 1024)} KB gzip\n`,
    );
}

#!/usr/bin/env node
/**
 * Builds the two web apps — the browser wallet (apps/wallet) and the operator console
 * (apps/console) — into <outDir>/wallet and <outDir>/console (default apps/dist): per app its
 * minified ES module and the chunks it imports (esbuild, code splitting; `@tessera/*` resolve to
 * the workspace packages' built dist, `level` to IndexedDB), its page and its stylesheet.
 * `tessera dev` serves both. Run after `tsc -b`.
 *
 *   node scripts/build-apps.mjs [outDir]
 */
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const APPS = ['wallet', 'console'];

/** The esbuild settings every web bundle of the project uses: minified ES modules for browsers. */
const BROWSER = {
  absWorkingDir: ROOT,
  bundle: true,
  minify: true,
  write: false,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  conditions: ['browser'],
  logLevel: 'silent',
};

/**
 * One minified ES module for browsers (the settings every web bundle of the project uses): from
 * an entry file, or from `contents` (an ES module's text) resolved at the repository root.
 */
export async function browserBundle({ entry, contents }) {
  const r = await build({
    ...(entry ? { entryPoints: [entry] } : { stdin: { contents, resolveDir: ROOT, loader: 'js' } }),
    ...BROWSER,
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
    ...BROWSER,
    splitting: true,
    outdir: join(ROOT, '.chunks'),
    metafile: true,
  });
  const files = new Map(r.outputFiles.map((f) => [f.path, f.contents]));
  return Object.entries(r.metafile.outputs).map(([path, o]) => {
    const js = files.get(join(ROOT, path));
    if (!js) throw new Error(`esbuild reported ${path} but produced no such file`);
    return {
      path,
      js,
      bytes: js.length,
      gzip: gzipSync(js, { level: 9 }).length,
      inputs: Object.keys(o.inputs),
      staticImports: o.imports.filter((i) => i.kind === 'import-statement').map((i) => i.path),
      dynamicImports: o.imports.filter((i) => i.kind === 'dynamic-import').map((i) => i.path),
      entryPoint: o.entryPoint ?? null,
    };
  });
}

/** The chunks `start` (paths) needs before it runs: they and every chunk they import statically. */
export function staticClosure(chunks, start) {
  const byPath = new Map(chunks.map((c) => [c.path, c]));
  const seen = new Set();
  const visit = (p) => {
    if (seen.has(p)) return;
    seen.add(p);
    for (const i of byPath.get(p)?.staticImports ?? []) visit(i);
  };
  for (const p of start) visit(p);
  return [...seen].map((p) => byPath.get(p));
}

/**
 * Builds one app into `outDir` with code splitting: `<app>.js` (the page's module) and
 * `chunks/*.js`, the chunks it imports — statically, or on first use (the SDK's backup KDFs,
 * its DKG and refresh/reshare participants, the merchant's check). Returns the sizes of what the
 * page downloads when it opens (`bytes`, `gzip`: the module and its static chunks) and of all.
 */
export async function buildApp(app, outDir) {
  const src = join(ROOT, 'apps', app);
  rmSync(join(outDir, 'chunks'), { recursive: true, force: true });
  mkdirSync(join(outDir, 'chunks'), { recursive: true });
  const r = await build({
    entryPoints: { [app]: join(src, 'src', 'main.ts') },
    ...BROWSER,
    splitting: true,
    outdir: outDir,
    entryNames: '[name]',
    chunkNames: 'chunks/[name]-[hash]',
    metafile: true,
  });
  const files = new Map(r.outputFiles.map((f) => [f.path, f.contents]));
  for (const [path, js] of files) writeFileSync(path, js);
  copyFileSync(join(src, 'index.html'), join(outDir, 'index.html'));
  copyFileSync(join(src, `${app}.css`), join(outDir, `${app}.css`));
  const outputs = r.metafile.outputs;
  const abs = (p) => join(ROOT, p);
  const initial = new Set();
  const visit = (p) => {
    if (initial.has(p)) return;
    initial.add(p);
    for (const i of outputs[p]?.imports ?? []) if (i.kind === 'import-statement') visit(i.path);
  };
  visit(Object.keys(outputs).find((p) => outputs[p].entryPoint));
  const size = (paths) => {
    const list = [...paths].map((p) => files.get(abs(p)));
    return {
      bytes: list.reduce((a, f) => a + f.length, 0),
      gzip: list.reduce((a, f) => a + gzipSync(f, { level: 9 }).length, 0),
    };
  };
  return {
    app,
    dir: outDir,
    files: initial.size,
    ...size(initial),
    all: { files: Object.keys(outputs).length, ...size(Object.keys(outputs)) },
  };
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
      `${a.app} built in ${a.dir}: ${Math.round(a.gzip / 1024)} KB gzip when the page opens (${a.files} files), ${Math.round(a.all.gzip / 1024)} KB in all ${a.all.files}\n`,
    );
}

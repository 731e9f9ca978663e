/**
 * Browser-test harness: bundles an entry for the browser (esbuild, straight from the packages'
 * sources), serves it from memory on loopback and drives Debian's headless chromium through
 * playwright-core. The browser is installed by `bash scripts/test-deps.sh` (apt `chromium`);
 * `npx playwright install` is not used (CI has no access to Playwright's download CDN).
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { builtinModules } from 'node:module';
import { relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, formatMessages, type Message, type Plugin } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Debian's chromium (a wrapper script around /usr/lib/chromium/chromium). */
export const CHROMIUM = '/usr/bin/chromium';

const rel = (p: string): string => (p.startsWith('/') ? relative(ROOT, p) || p : p);

/**
 * The `@tessera/*` aliases of vitest.config.ts, read from that file itself so the browser bundle
 * and the Node tests always resolve the same sources (packages/<pkg>/src, never a stale dist/).
 */
async function tesseraAliases(): Promise<Map<string, string>> {
  // A computed specifier keeps this off tsc's import graph; vitest transforms the .ts config.
  const configUrl = pathToFileURL(`${ROOT}/vitest.config.ts`).href;
  const mod = (await import(configUrl)) as { default: { resolve?: { alias?: unknown } } };
  const alias = mod.default.resolve?.alias;
  const entries: [string, string][] = Array.isArray(alias)
    ? (alias as { find: unknown; replacement: string }[]).flatMap((a) =>
        typeof a.find === 'string' ? [[a.find, a.replacement] as [string, string]] : [],
      )
    : Object.entries((alias ?? {}) as Record<string, string>);
  const out = new Map(entries.filter(([k]) => k.startsWith('@tessera/')));
  if (!out.has('@tessera/core'))
    throw new Error('vitest.config.ts: no @tessera/core alias found (harness reads resolve.alias)');
  return out;
}

function aliasPlugin(aliases: Map<string, string>): Plugin {
  return {
    name: 'tessera-aliases',
    setup(b) {
      b.onResolve({ filter: /^@tessera\// }, (args) => {
        const target = aliases.get(args.path);
        if (target) return { path: target };
        return {
          errors: [{ text: `"${args.path}" has no alias in vitest.config.ts (imported by ${rel(args.importer)})` }],
        };
      });
    },
  };
}

const BUILTINS = new Set(builtinModules.filter((m) => !m.startsWith('_')));
const SKIP = Symbol('tessera-no-builtins');

/**
 * Any import of a Node builtin is an error naming the importing module, unless the importing
 * package itself maps it away for browsers (package.json `"browser": { "fs": false }`, as
 * some packages do for an optional, try/catch-guarded `require("fs")`) or an npm package of that
 * name (a polyfill such as `buffer`) is installed and resolves.
 */
function noNodeBuiltins(): Plugin {
  return {
    name: 'tessera-no-node-builtins',
    setup(b) {
      b.onResolve({ filter: /^(node:|[a-z_]+(\/|$))/ }, async (args) => {
        if (args.pluginData === SKIP) return undefined;
        const isNodeScheme = args.path.startsWith('node:');
        const name = isNodeScheme ? args.path.slice(5) : args.path;
        if (!isNodeScheme && !BUILTINS.has(name)) return undefined;
        const r = await b.resolve(args.path, {
          kind: args.kind,
          importer: args.importer,
          resolveDir: args.resolveDir,
          pluginData: SKIP,
        });
        // Resolvable without us: a browser-field `false` mapping (esbuild substitutes an empty
        // "(disabled)" module) or an installed polyfill. Let esbuild's own resolution proceed.
        if (r.errors.length === 0 && !r.external && !isNodeScheme) return undefined;
        return {
          errors: [
            {
              text: `browser bundle imports Node builtin "${args.path}" from ${rel(args.importer)} — an SDK bug: code that ships to browsers must not depend on Node builtins`,
            },
          ],
        };
      });
    },
  };
}

async function format(kind: 'error' | 'warning', msgs: Message[]): Promise<string> {
  return (await formatMessages(msgs, { kind, color: false })).join('\n');
}

/** Builtin references that survived bundling (e.g. an unresolvable `require` left for runtime). */
function leftoverBuiltins(js: string): string[] {
  const found = new Set<string>();
  const re = /(?:\brequire|__require|\bimport)\s*\(\s*["']([^"']+)["']\s*\)|\bfrom\s*["']([^"']+)["']/g;
  for (const m of js.matchAll(re)) {
    const spec = m[1] ?? m[2] ?? '';
    if (spec.startsWith('node:') || BUILTINS.has(spec)) found.add(spec);
  }
  return [...found];
}

/**
 * Bundles a TS/JS entry for the browser (ESM, es2022, no source map) with the same `@tessera/*`
 * aliases as vitest.config.ts and the `browser` export condition; `minify` as a page ships it.
 * Throws if the bundle needs a Node builtin, naming the importing module. Returns the JS text.
 * Warnings go to stderr.
 */
export async function bundleForBrowser(entry: string, opts: { minify?: boolean } = {}): Promise<string> {
  const aliases = await tesseraAliases();
  let result;
  try {
    result = await build({
      entryPoints: [entry],
      absWorkingDir: ROOT,
      bundle: true,
      write: false,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      sourcemap: false,
      minify: opts.minify ?? false,
      conditions: ['browser'],
      logLevel: 'silent',
      plugins: [aliasPlugin(aliases), noNodeBuiltins()],
    });
  } catch (e) {
    const errors = (e as { errors?: Message[] }).errors;
    if (!errors?.length) throw e;
    throw new Error(`bundling ${rel(entry)} for the browser failed:\n${await format('error', errors)}`);
  }
  if (result.warnings.length)
    process.stderr.write(`bundleForBrowser(${rel(entry)}) warnings:\n${await format('warning', result.warnings)}\n`);
  const out = result.outputFiles[0];
  if (!out) throw new Error(`esbuild produced no output for ${rel(entry)}`);
  const leftovers = leftoverBuiltins(out.text);
  if (leftovers.length)
    throw new Error(
      `browser bundle of ${rel(entry)} still references Node builtins at runtime: ${leftovers.join(', ')}`,
    );
  return out.text;
}

const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  json: 'application/json; charset=utf-8',
  map: 'application/json; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
  svg: 'image/svg+xml',
  wasm: 'application/wasm',
};

/**
 * The policy every test page is served under: scripts only from the page's own origin and no
 * `eval`/`new Function` ('unsafe-eval' absent), as a wallet or console page would ship. The core
 * encodes by reflection over its schemas (protobuf-es), so it needs no generated code at run time.
 */
export const STRICT_CSP =
  "default-src 'self'; script-src 'self'; connect-src *; img-src 'self' data:; object-src 'none'; base-uri 'none'";

/**
 * Serves `files` (path → content) from memory on 127.0.0.1, a free port; `/` is `/index.html`.
 * Every response carries {@link STRICT_CSP}.
 */
export async function serveStatic(
  files: Record<string, string | Uint8Array>,
): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const key = path === '/' ? '/index.html' : path;
    const body = Object.hasOwn(files, key) ? files[key] : undefined;
    if ((req.method !== 'GET' && req.method !== 'HEAD') || body === undefined) {
      res
        .writeHead(body === undefined ? 404 : 405, { 'content-type': 'text/plain; charset=utf-8' })
        .end(body === undefined ? 'not found' : 'method not allowed');
      return;
    }
    const ext = key.slice(key.lastIndexOf('.') + 1).toLowerCase();
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[ext] ?? 'application/octet-stream',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      'content-security-policy': STRICT_CSP,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** Launches headless Debian chromium. A missing browser is an error, never a skip. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} not found: browser tests need Debian's chromium. Install it (as root) with: bash scripts/test-deps.sh`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * Opens `url` in a new page. Console messages (`[console.<type>] ...`), uncaught page errors
 * (`[pageerror] ...`) and failed requests (`[requestfailed] ...`) are collected into `logs`.
 */
export async function openPage(browser: Browser, url: string): Promise<{ page: Page; logs: string[] }> {
  const page = await browser.newPage();
  const logs: string[] = [];
  page.on('console', (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.stack ?? e.message}`));
  page.on('requestfailed', (r) => logs.push(`[requestfailed] ${r.url()}: ${r.failure()?.errorText ?? 'unknown'}`));
  await page.goto(url);
  return { page, logs };
}

/** The entries of `logs` (from {@link openPage}) that are errors. */
export function errorLogs(logs: readonly string[]): string[] {
  return logs.filter(
    (l) => l.startsWith('[pageerror]') || l.startsWith('[requestfailed]') || l.startsWith('[console.error]'),
  );
}

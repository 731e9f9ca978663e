/**
 * docs/ARCHITECTURE.md draws the packages as the imports are: the dependency block there is
 * compared with the `@tessera/*` imports of every `packages/<name>/src` file, and each package's
 * package.json declares what it imports (plus, for the CLI, the signer it starts as a process).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const packages = readdirSync(join(root, 'packages')).filter((p) => statSync(join(root, 'packages', p)).isDirectory());

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The `@tessera/*` packages a package's sources import (static, dynamic and type imports). */
function imported(pkg: string): string[] {
  const found = new Set<string>();
  for (const f of sources(join(root, 'packages', pkg, 'src'))) {
    for (const m of readFileSync(f, 'utf8').matchAll(/(?:from|import\()\s*'@tessera\/([a-z-]+)/g))
      if (m[1] !== pkg) found.add(m[1]!);
  }
  return [...found].sort();
}

/** The block in docs/ARCHITECTURE.md: `name → a, b` per line, `(nothing)` for none. */
function drawn(): Map<string, string[]> {
  const doc = readFileSync(join(root, 'docs/ARCHITECTURE.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Packages and dependency direction'));
  const block = /```\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  const graph = new Map<string, string[]>();
  for (const line of block.split('\n').filter((l) => l.includes('→'))) {
    const [name, deps] = line.split('→').map((x) => x.trim());
    graph.set(
      name!,
      deps === '(nothing)'
        ? []
        : deps!
            .split(',')
            .map((d) => d.trim())
            .sort(),
    );
  }
  return graph;
}

describe('package graph', () => {
  it('docs/ARCHITECTURE.md names every package and exactly the packages each one imports', () => {
    const graph = drawn();
    expect([...graph.keys()].sort()).toEqual([...packages].sort());
    for (const pkg of packages) expect(graph.get(pkg), `${pkg} in docs/ARCHITECTURE.md`).toEqual(imported(pkg));
  });

  it('each package.json declares the packages its sources import, and nothing more', () => {
    for (const pkg of packages) {
      const json = JSON.parse(readFileSync(join(root, 'packages', pkg, 'package.json'), 'utf8')) as {
        dependencies?: Record<string, string>;
      };
      const declared = Object.keys(json.dependencies ?? {})
        .filter((d) => d.startsWith('@tessera/'))
        .map((d) => d.slice('@tessera/'.length))
        .sort();
      expect(declared, `${pkg}/package.json`).toEqual(imported(pkg));
    }
  });

  it('there are no cycles and core imports no other package', () => {
    const graph = drawn();
    expect(graph.get('core')).toEqual([]);
    const visiting = new Set<string>();
    const visit = (p: string, path: string[]): void => {
      expect(visiting.has(p), `cycle ${[...path, p].join(' → ')}`).toBe(false);
      visiting.add(p);
      for (const d of graph.get(p) ?? []) visit(d, [...path, p]);
      visiting.delete(p);
    };
    for (const p of graph.keys()) visit(p, []);
  });
});

describe('licence', () => {
  it('LICENSE is the licence every package.json names', () => {
    const text = readFileSync(join(root, 'LICENSE'), 'utf8');
    const names = ['.', ...packages.map((p) => `packages/${p}`)].map(
      (d) => (JSON.parse(readFileSync(join(root, d, 'package.json'), 'utf8')) as { license?: string }).license,
    );
    expect(new Set(names)).toEqual(new Set(['Apache-2.0']));
    expect(text).toMatch(/Apache License\s+Version 2\.0, January 2004/);
  });
});

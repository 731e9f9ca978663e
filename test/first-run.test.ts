/**
 * A first run as a new user makes it (README): the workspace commands exist on the first
 * `npm ci`, and the CLI's version, usage errors and exit codes are as documented.
 *
 * npm links a workspace's `bin` entries while it installs, before `prepare` builds dist/: a bin
 * that points into dist/ is not linked on a fresh clone's first `npm ci` (`npx tessera` then
 * fails with "could not determine executable to run"). Every bin must therefore be a file a
 * fresh clone has: tracked by git, executable, with a shebang.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const tracked = new Set(execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' }).split('\n'));
const workspaces = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { workspaces: string[] })
  .workspaces;
const version = (JSON.parse(readFileSync(join(root, 'packages/cli/package.json'), 'utf8')) as { version: string })
  .version;

function run(bin: string, ...args: string[]) {
  const r = spawnSync(join(root, 'node_modules/.bin', bin), args, { encoding: 'utf8', cwd: root, timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('first run', () => {
  it('every workspace command is a file a fresh clone has (tracked, executable, with a shebang), so the first `npm ci` links it', () => {
    const bins: string[] = [];
    for (const ws of workspaces) {
      const pkg = JSON.parse(readFileSync(join(root, ws, 'package.json'), 'utf8')) as { bin?: Record<string, string> };
      for (const [name, target] of Object.entries(pkg.bin ?? {})) {
        const rel = join(ws, target);
        bins.push(name);
        expect(tracked.has(rel), `${name} → ${rel} is not in git`).toBe(true);
        expect(statSync(join(root, rel)).mode & 0o111, `${rel} is not executable`).not.toBe(0);
        expect(readFileSync(join(root, rel), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
      }
    }
    expect(bins.sort()).toEqual(['tessera', 'tessera-coordinator', 'tessera-signer']);
  });

  it('the linked commands run: --version, --help (exit 0) for the CLI and both daemons', () => {
    expect(run('tessera', '--version')).toMatchObject({ code: 0, out: `${version}\n` });
    for (const bin of ['tessera-signer', 'tessera-coordinator']) {
      const h = run(bin, '--help');
      expect(h.code, h.err).toBe(0);
      expect(h.out).toMatch(/--config <file>/);
      expect(run(bin, '--version')).toMatchObject({ code: 0, out: `${version}\n` });
    }
  });

  it('usage errors exit 2 with one line (JSON with --json); a malformed number is refused, not read as 0', () => {
    const bad = run('tessera', 'keygen', '--threshold', 'abc');
    expect(bad.code).toBe(2);
    expect(bad.err.trim().split('\n')).toHaveLength(1);
    expect(bad.err).toMatch(/expected a whole number, got "abc".*\[USAGE\]/);
    const json = run('tessera', 'keygen', '--threshold', 'abc', '--json');
    expect(json.code).toBe(2);
    expect(JSON.parse(json.err)).toEqual({
      error: { code: 'USAGE', message: expect.stringContaining('whole number'), culprits: [] },
    });
    expect(run('tessera', 'no-such-command').code).toBe(2);
    expect(run('tessera-signer', '--no-such-flag').code).toBe(2);
  });

  it('an unreachable coordinator is one line naming the address and what to check (exit 1, JSON with --json)', () => {
    const dir = fileURLToPath(new URL('./fixtures/unreachable', import.meta.url));
    const r = run('tessera', 'keys', '--dir', dir, '--json');
    expect(r.code).toBe(1);
    const e = (JSON.parse(r.err) as { error: { code: string; message: string } }).error;
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toMatch(/cannot reach the coordinator at 127\.0\.0\.1:1: is the cluster running/);
    expect(e.message).not.toMatch(/ECONNREFUSED|No connection established/);
  });
});

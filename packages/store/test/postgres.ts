/**
 * A real PostgreSQL server for tests: Debian's postgresql (scripts/test-deps.sh installs it),
 * initialised in a temp directory and run as an unprivileged user (PostgreSQL refuses root) on a
 * free loopback port. `database()` hands out a fresh, empty database per call.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface TestPostgres {
  /** Connection string of the server's `postgres` database. */
  url: string;
  /** A new empty database; its connection string. */
  database(): Promise<string>;
  stop(): Promise<void>;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  const v = versions.find((x) => existsSync(join(root, x, 'bin', 'initdb')));
  if (!v) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql (run scripts/test-deps.sh)');
  return join(root, v, 'bin');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

let n = 0;

export async function startPostgres(): Promise<TestPostgres> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'tessera-pg-'));
  // PostgreSQL will not run as root: as root, run it as `nobody` in a directory it owns.
  const root = process.getuid?.() === 0;
  const asUser = root ? { uid: 65534, gid: 65534 } : {};
  if (root) chownSync(dir, 65534, 65534);
  const data = join(dir, 'data');
  const init = spawnSync(
    join(bin, 'initdb'),
    ['-D', data, '-A', 'trust', '-U', 'tessera', '-E', 'UTF8', '--locale=C', '--no-sync'],
    { ...asUser, encoding: 'utf8', cwd: dir },
  );
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const port = await freePort();
  const server: ChildProcess = spawn(
    join(bin, 'postgres'),
    [
      ...['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
      // No flush to disk: the tests never crash this server or the machine (they kill the
      // coordinators and stores that use it), so what they check — transactions, locks, the
      // lease, what a second connection reads — is unchanged, and each test's CREATE DATABASE
      // no longer waits for an fsync of the copied template.
      ...['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
    ],
    { ...asUser, cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const log: string[] = [];
  server.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
  process.once('exit', () => server.kill('SIGKILL'));
  const url = `postgresql://tessera@127.0.0.1:${port}/postgres`;
  for (const until = Date.now() + 30_000; ; ) {
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      await c.end();
      break;
    } catch {
      if (server.exitCode !== null || Date.now() > until) throw new Error(`postgres did not start: ${log.join('')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    async database() {
      const name = `t${process.pid}_${++n}_${Math.random().toString(36).slice(2, 8)}`;
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`CREATE DATABASE ${name}`);
      await c.end();
      return url.replace(/\/postgres$/, `/${name}`);
    },
    async stop() {
      if (server.exitCode === null) {
        const exited = new Promise((r) => server.once('exit', r));
        server.kill('SIGINT'); // fast shutdown
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A `tessera dev` cluster driven as an operator and a phone drive it: the CLI (`tessera …
 * --json`) as child processes, the dev cluster (coordinator + 3 signer processes, each its own
 * LevelDB) as a supervised child process, and the CLI's own client in this process for polling.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type Client, openClient, status } from '@tessera/cli';

export const BIN = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));

/** Resolves when `child` has exited, including when it already had. */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

/** With --json an error is `{"error":{code,message,culprits}}` on stderr: as "message [CODE]". */
function errorLine(stderr: string): string {
  try {
    const e = (JSON.parse(stderr) as { error: { code: string; message: string } }).error;
    return `${e.message} [${e.code}]`;
  } catch {
    return stderr;
  }
}

/** Runs the CLI with --json; parses its output. */
export function cli<T = Record<string, unknown>>(...args: string[]): { code: number | null; json: T; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args, '--json'], { encoding: 'utf8', timeout: 120_000 });
  let json = {} as T;
  try {
    json = JSON.parse(r.stdout) as T;
  } catch {
    /* error output is on stderr */
  }
  return { code: r.status, json, err: errorLine(r.stderr) };
}

/** The CLI's --json output; throws with the error line if it failed. */
export function ok<T = Record<string, unknown>>(...args: string[]): T {
  const r = cli<T>(...args);
  if (r.code !== 0) throw new Error(`tessera ${args.join(' ')} failed (${r.code}): ${r.err}`);
  return r.json;
}

export interface DevStatus {
  coordinator: { pid: number };
  devices: { id: string; linked: boolean }[];
  signers: { id: string; healthy: boolean; pid?: number }[];
}

/** `tessera dev` on data dir `dir` (port 0, no wallet, no proof). */
export class DevCluster {
  #proc: ChildProcess | undefined;

  constructor(readonly dir: string) {}

  get running(): boolean {
    return !!this.#proc;
  }

  async start(): Promise<void> {
    const p = spawn(
      process.execPath,
      [BIN, 'dev', '--dir', this.dir, '--port', '0', '--gateway-port', '0', '--no-wallet', '--no-prove', '--json'],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TESSERA_LOG_LEVEL: 'error' } },
    );
    this.#proc = p;
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: p.stdout! }).on('line', (l) => {
        if ((JSON.parse(l) as { event: string }).event.startsWith('serving')) resolve();
      });
      p.once('exit', (c) => reject(new Error(`tessera dev exited ${c}`)));
    });
  }

  async stop(): Promise<void> {
    const p = this.#proc;
    this.#proc = undefined;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill('SIGTERM');
    });
  }

  /** The CLI's client for this cluster, in this process. */
  async with<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    const c = openClient(this.dir);
    try {
      return await fn(c);
    } finally {
      c.close();
    }
  }

  /** Until the coordinator answers and every signer is linked (none of them `exceptPid`, a killed one). */
  async healthy(exceptPid?: number): Promise<DevStatus> {
    for (let i = 0; i < 150; i++) {
      const s = await this.with((c) => status(c)).catch(() => undefined);
      if (
        s &&
        s.signers.length === 3 &&
        s.signers.every((x) => x.healthy && x.pid && x.pid !== exceptPid) &&
        s.coordinator.pid !== exceptPid
      )
        return s as DevStatus;
      await new Promise((res) => setTimeout(res, 200));
    }
    throw new Error('cluster did not become healthy');
  }
}

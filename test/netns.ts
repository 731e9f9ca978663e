/**
 * A small multi-host lab on Linux network namespaces, for tests that must run over a real
 * network path (not loopback): one namespace hosts a Linux bridge, every node gets its own
 * namespace joined to the bridge by a veth pair, with `lo` up and an address 10.213.0.N/24 that
 * exists only inside these namespaces. Nothing is configured in the root namespace: veth pairs
 * are created directly between the bridge namespace and the node namespaces, and no route is
 * added anywhere. `destroy()` kills every process and deletes every namespace (which removes the
 * veths and the bridge with them); an `exit` hook does the same if the test process dies first.
 *
 * Needs root (CAP_NET_ADMIN + CAP_SYS_ADMIN) and iproute2. There is no skipping: `createLab`
 * throws a clear error when the host cannot do it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const dist = (pkg: string, file = 'index.js') => join(ROOT, 'packages', pkg, 'dist', file);

/** The subnet of the lab; used only on interfaces inside the lab's own namespaces. */
export const LAB_NET = '10.213.0';

/** Runs `ip …` synchronously; throws with the command and its stderr. */
export function ip(...args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`\`ip ${args.join(' ')}\` failed: ${(err.stderr ?? '').trim() || err.message}`);
  }
}

/** Throws (never skips) when this host cannot create network namespaces. */
export function requireNetns(): void {
  const why =
    'this test builds network namespaces (ip netns) and must run as root on Linux with iproute2; it does not skip';
  if (process.platform !== 'linux') throw new Error(`${why}: platform is ${process.platform}`);
  if (process.getuid?.() !== 0) throw new Error(`${why}: running as uid ${process.getuid?.()}, not root`);
  try {
    execFileSync('ip', ['-V'], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(`${why}: cannot run \`ip\` (${(e as Error).message})`);
  }
}

export interface LabProc {
  name: string;
  child: ChildProcess;
  /** The first stdout line, parsed as JSON (the daemons' ready line). */
  ready: Promise<Record<string, unknown>>;
  stderr: string[];
  exited: Promise<number | null>;
}

export interface Lab {
  id: string;
  /** A scratch directory (configs, PKI, data dirs), removed by destroy(). */
  dir: string;
  bridgeNs: string;
  ns(node: string): string;
  addr(node: string): string;
  /** The bridge-side end of `node`'s veth (in the bridge namespace). */
  veth(node: string): string;
  /** Pulls `node`'s cable: its bridge port goes down, frames to and from it are dropped. */
  cut(node: string): void;
  restore(node: string): void;
  /** Spawns `node <args>` inside `node`'s namespace. */
  spawnNode(node: string, name: string, args: string[], env?: NodeJS.ProcessEnv): LabProc;
  procs: LabProc[];
  destroy(): Promise<void>;
}

const live = new Set<{ namespaces: string[]; procs: LabProc[]; dir: string }>();
let exitHook = false;
/** Last resort when the worker exits without afterAll: synchronous kill + netns del. */
function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const l of live) {
      for (const p of l.procs)
        if (p.child.exitCode === null && p.child.signalCode === null)
          try {
            p.child.kill('SIGKILL');
          } catch {
            /* gone */
          }
      for (const ns of [...l.namespaces].reverse())
        try {
          execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
        } catch {
          /* gone */
        }
      rmSync(l.dir, { recursive: true, force: true });
    }
  });
}

/** Creates the bridge namespace and one namespace per node; node i gets 10.213.0.(i+1). */
export function createLab(nodes: string[]): Lab {
  requireNetns();
  installExitHook();
  const id = randomBytes(3).toString('hex');
  const bridgeNs = `tsr-${id}-br`;
  const namespaces: string[] = [];
  const procs: LabProc[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'tessera-netns-'));
  const state = { namespaces, procs, dir };
  live.add(state);
  const nsOf = (node: string) => {
    if (!nodes.includes(node)) throw new Error(`unknown lab node ${node}`);
    return `tsr-${id}-${node}`;
  };
  const vethOf = (node: string) => `v-${node}`.slice(0, 15);
  const addrOf = (node: string) => `${LAB_NET}.${nodes.indexOf(node) + 1}`;

  const nsDel = (ns: string) => {
    try {
      ip('netns', 'del', ns);
    } catch (e) {
      if (!/No such file|not exist/i.test((e as Error).message)) throw e;
    }
  };

  let destroyed: Promise<void> | undefined;
  const destroy = (): Promise<void> => {
    destroyed ??= (async () => {
      const errors: string[] = [];
      await Promise.all(
        procs.map(async (p) => {
          if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
          await Promise.race([p.exited, new Promise((r) => setTimeout(r, 5_000).unref())]);
        }),
      );
      for (const ns of [...namespaces].reverse()) {
        try {
          nsDel(ns);
        } catch (e) {
          errors.push((e as Error).message);
        }
      }
      live.delete(state);
      rmSync(dir, { recursive: true, force: true });
      if (errors.length) throw new Error(`lab cleanup failed: ${errors.join('; ')}`);
    })();
    return destroyed;
  };

  const add = (ns: string) => {
    try {
      ip('netns', 'add', ns);
    } catch (e) {
      throw new Error(
        `cannot create network namespace ${ns} (needs root/CAP_SYS_ADMIN; this test does not skip): ${(e as Error).message}`,
      );
    }
    namespaces.push(ns);
  };

  try {
    add(bridgeNs);
    ip('-n', bridgeNs, 'link', 'set', 'lo', 'up');
    ip('-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', bridgeNs, 'link', 'set', 'br0', 'up');
    for (const node of nodes) {
      const ns = nsOf(node);
      add(ns);
      // Both ends are created outside the root namespace: one in the bridge ns, one in the node's.
      ip('-n', bridgeNs, 'link', 'add', vethOf(node), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      ip('-n', bridgeNs, 'link', 'set', vethOf(node), 'master', 'br0');
      ip('-n', bridgeNs, 'link', 'set', vethOf(node), 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'addr', 'add', `${addrOf(node)}/24`, 'dev', 'eth0');
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
    }
  } catch (e) {
    // Setup failed half way: remove what exists, then fail loudly with the original cause.
    for (const ns of [...namespaces].reverse())
      try {
        nsDel(ns);
      } catch {
        /* the cause below matters more */
      }
    live.delete(state);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  return {
    id,
    dir,
    bridgeNs,
    ns: nsOf,
    addr: addrOf,
    veth: vethOf,
    cut: (node) => void ip('-n', bridgeNs, 'link', 'set', vethOf(node), 'down'),
    restore: (node) => void ip('-n', bridgeNs, 'link', 'set', vethOf(node), 'up'),
    spawnNode(node, name, args, env = {}) {
      const child = spawn('ip', ['netns', 'exec', nsOf(node), process.execPath, ...args], {
        env: { ...process.env, TESSERA_LOG_LEVEL: 'warn', ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const stderr: string[] = [];
      child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
        const rl = createInterface({ input: child.stdout! });
        rl.once('line', (line) => {
          try {
            resolve(JSON.parse(line) as Record<string, unknown>);
          } catch (e) {
            reject(new Error(`${name}: bad ready line ${JSON.stringify(line)}: ${(e as Error).message}`));
          }
        });
        child.once('exit', (code) =>
          reject(new Error(`${name} (in ${nsOf(node)}) exited with ${code}: ${stderr.join('')}`)),
        );
      });
      ready.catch(() => {}); // observed by whoever awaits it
      const p: LabProc = { name, child, ready, stderr, exited };
      procs.push(p);
      return p;
    },
    procs,
    destroy,
  };
}

/**
 * A gRPC API client of the coordinator living in a lab namespace: a child process reading one
 * JSON request per stdin line and answering one JSON line on stdout. Bytes travel as hex
 * (`{ $hex }`); a Sign request carries its signed intent envelope as `intentHex`.
 */
const CLIENT_SCRIPT = `
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
const [runtimeUrl, coreUrl, cfgFile] = process.argv.slice(2);
const { loadTessera, unary, channelCredentials } = await import(runtimeUrl);
const { decodeMessage } = await import(coreUrl);
const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
const { Coordinator } = loadTessera();
const client = new Coordinator(cfg.address, channelCredentials(cfg.tls));
const enc = (v) => v instanceof Uint8Array ? { $hex: Buffer.from(v).toString('hex') }
  : Array.isArray(v) ? v.map(enc)
  : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, enc(x)]))
  : typeof v === 'bigint' ? String(v) : v;
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
// Bytes in a request travel as {$hex}.
const unhex = (v) => Array.isArray(v) ? v.map(unhex)
  : v && typeof v === 'object' ? (typeof v.$hex === 'string' && Object.keys(v).length === 1 ? Buffer.from(v.$hex, 'hex') : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unhex(x)])))
  : v;
createInterface({ input: process.stdin }).on('line', async (line) => {
  const { id, method, req: raw, intentHex, deadlineMs } = JSON.parse(line);
  try {
    const req = unhex(raw);
    const body = intentHex ? { ...req, intent: decodeMessage('Envelope', Buffer.from(intentHex, 'hex')) } : req;
    out({ id, ok: true, res: enc(await unary(client, method, body, { deadlineMs })) });
  } catch (e) {
    out({ id, ok: false, error: { code: e.code, status: e.status, message: e.message } });
  }
});
process.stdin.on('end', () => { client.close(); process.exit(0); });
out({ ready: true, pid: process.pid });
`;

/** Bytes in a request as {$hex} (the remote client script turns them back). */
const hexBytes = (v: unknown): unknown =>
  v instanceof Uint8Array
    ? { $hex: Buffer.from(v).toString('hex') }
    : Array.isArray(v)
      ? v.map(hexBytes)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, hexBytes(x)]))
        : v;

export class RemoteCallError extends Error {
  constructor(
    readonly method: string,
    readonly code: string | undefined,
    message: string,
  ) {
    super(`${method}: ${code ?? 'ERROR'}: ${message}`);
  }
}

export interface LabClient {
  call<Res = Record<string, unknown>>(
    method: string,
    req: unknown,
    opts?: { deadlineMs?: number; intent?: Uint8Array },
  ): Promise<Res>;
}

const dec = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(dec);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.$hex === 'string' && Object.keys(o).length === 1) return Buffer.from(o.$hex, 'hex');
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, dec(x)]));
  }
  return v;
};

export async function startClient(
  lab: Lab,
  node: string,
  cfg: { address: string; tls: { ca: string; cert: string; key: string } },
): Promise<LabClient> {
  const script = join(lab.dir, 'api-client.mjs');
  const cfgFile = join(lab.dir, 'api-client.json');
  writeFileSync(script, CLIENT_SCRIPT);
  writeFileSync(cfgFile, JSON.stringify(cfg));
  const p = lab.spawnNode(node, 'api-client', [
    script,
    pathToFileURL(dist('runtime')).href,
    pathToFileURL(dist('core')).href,
    cfgFile,
  ]);
  await p.ready;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; method: string }>();
  let next = 1;
  const rl = createInterface({ input: p.child.stdout! });
  rl.on('line', (line) => {
    const m = JSON.parse(line) as {
      id: number;
      ok: boolean;
      res?: unknown;
      error?: { code?: string; message: string };
    };
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    if (m.ok) w.resolve(dec(m.res));
    else w.reject(new RemoteCallError(w.method, m.error?.code, m.error?.message ?? ''));
  });
  p.child.once('exit', (code) => {
    for (const w of waiting.values()) w.reject(new Error(`api client exited with ${code}: ${p.stderr.join('')}`));
    waiting.clear();
  });
  return {
    call<Res>(method: string, req: unknown, opts: { deadlineMs?: number; intent?: Uint8Array } = {}) {
      const id = next++;
      return new Promise<Res>((resolve, reject) => {
        waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, method });
        p.child.stdin!.write(
          JSON.stringify({
            id,
            method,
            req: hexBytes(req),
            deadlineMs: opts.deadlineMs ?? 20_000,
            ...(opts.intent ? { intentHex: Buffer.from(opts.intent).toString('hex') } : {}),
          }) + '\n',
        );
      });
    },
  };
}

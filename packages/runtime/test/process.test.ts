import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// onShutdown calls process.exit, so it runs in a child process against the compiled module
// (`tsc -b` builds dist/ before the tests, as for the other multi-process tests).
const dist = fileURLToPath(new URL('../dist/process.js', import.meta.url));

function run(script: string, signals: NodeJS.Signals[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let sent = false;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!sent && out.includes('ready\n')) {
        sent = true;
        signals.forEach((s, i) => setTimeout(() => child.kill(s), i * 100));
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child did not exit; out=${out} err=${err}`));
    }, 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

describe('onShutdown (child process)', () => {
  it('runs against the built package (npm test builds it first)', () => {
    expect(existsSync(dist), `${dist} is missing: run \`npx tsc -b\``).toBe(true);
  });

  it('runs handlers in reverse order on SIGTERM, then exits 0', async () => {
    const r = await run(
      `import { onShutdown } from ${JSON.stringify(dist)};
       onShutdown(async () => { await new Promise(r => setTimeout(r, 50)); console.log('first'); });
       onShutdown(() => { console.log('second'); });
       const off = onShutdown(() => { console.log('unregistered'); });
       off();
       onShutdown(() => { throw new Error('boom'); });
       setInterval(() => {}, 1000);
       console.log('ready');`,
      ['SIGTERM'],
    );
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n')).toEqual(['ready', 'second', 'first']);
    expect(r.err).toContain('boom');
  });

  it('bounds a hanging handler by its timeout', async () => {
    const r = await run(
      `import { onShutdown } from ${JSON.stringify(dist)};
       onShutdown(() => { console.log('after'); });
       onShutdown(() => new Promise(() => {}), { timeoutMs: 200 });
       setInterval(() => {}, 1000);
       console.log('ready');`,
      ['SIGINT'],
    );
    expect(r.code).toBe(0);
    expect(r.out).toContain('after');
    expect(r.err).toContain('timed out');
  });

  it('a second signal exits immediately with 1', async () => {
    const r = await run(
      `import { onShutdown } from ${JSON.stringify(dist)};
       onShutdown(() => new Promise(() => {}), { timeoutMs: 15000 });
       setInterval(() => {}, 1000);
       console.log('ready');`,
      ['SIGTERM', 'SIGTERM'],
    );
    expect(r.code).toBe(1);
  });
});

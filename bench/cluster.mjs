/**
 * A dev cluster (coordinator + n signer processes over mTLS, as `tessera dev` runs it) for the
 * cluster rows of the benchmark, and a closed-loop load generator with a given concurrency.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createSignIntent, decodeMessage, getSuite } from '@tessera/core';
import { admitDevice, devOperatorFiles, keygen, openClient, startDev } from '@tessera/cli';
import { Device } from '@tessera/device';

export async function startBenchCluster(n) {
  const dir = join(mkdtempSync(join(tmpdir(), 'tessera-bench-')), '.tessera');
  const up = async () => {
    const d = await startDev({
      dir,
      signers: n,
      port: 0,
      gatewayPort: 0,
      signerPolicy: { devices: { maxReservations: 5000 } },
    });
    const c = openClient(dir);
    for (let i = 0; i < 600; i++) {
      const s = await c.call('Status', {}).catch(() => undefined);
      if (s && s.participants.filter((p) => p.connected && !p.device).length >= n) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    return { d, c };
  };
  let { d: dev, c: client } = await up();
  /** The load generator (this process), the coordinator and the signer processes. */
  const processes = async () => {
    const st = await client.call('Status', {});
    return [
      { role: 'client', pid: process.pid },
      { role: 'coordinator', pid: st.pid },
      ...st.participants.filter((p) => p.pid && !p.device).map((p) => ({ role: 'signer', pid: p.pid })),
    ];
  };
  return {
    dir,
    /** Stops the processes, runs `fn` on the stopped cluster's data, starts them again. */
    async whileStopped(fn) {
      client.close();
      await dev.stop();
      const out = await fn(dir);
      ({ d: dev, c: client } = await up());
      return out;
    },
    keygen: (suite, t) => keygen(client, { suite, threshold: t }),
    /**
     * Closed loop: `conc` requesters each sign back to back, first for `warmupMs` (fresh
     * processes have cold JITs and empty pools; the flow baseline is warm), then for a window of
     * `durationMs`, extended until `minCompleted` signatures completed in it (at most `maxMs`).
     */
    async throughput(suiteId, keyId, conc, durationMs, warmupMs = 1500, { minCompleted = 0, maxMs = durationMs } = {}) {
      const suite = getSuite(suiteId);
      const msg = new Uint8Array(32).fill(9);
      const one = async () => {
        const intent = createSignIntent(client.requester, {
          suite,
          keyId,
          message: msg,
          requestId: new Uint8Array(randomBytes(16)),
          notAfter: Date.now() + 60_000,
        });
        await client.call('Sign', { intent: decodeMessage('Envelope', intent), signers: [] });
      };
      // One continuous closed loop: warm-up and window follow each other without draining the
      // pipeline in between, and the requesters start spread over the warm-up. Started together,
      // requests that share the cores finish together: at c64 on 7-of-10 the cluster then worked
      // in ~4 s waves, and a 5 s window counted one wave or two.
      const pids = await processes();
      const start = performance.now() + warmupMs;
      const end = start + durationMs;
      // CPU over the window itself, per signature completed in it (steady state on both sides).
      let cpu0, cpu1;
      let stopped = false;
      let windowEnd;
      const lat = [];
      const errors = {};
      // Throughput counts the signatures completed inside the window; latencies (and errors) are
      // those of the requests started inside it (the ones still in flight at its end drain at
      // falling concurrency; at c64 that tail is seconds).
      let inWindow = 0;
      const mark = setTimeout(() => (cpu0 = cpuMs(pids)), warmupMs);
      const stop = () => {
        stopped = true;
        windowEnd = performance.now();
        cpu1 = cpuMs(pids);
      };
      const check = setInterval(() => {
        const now = performance.now();
        if (!stopped && now >= end && (inWindow >= minCompleted || now >= start + maxMs)) stop();
      }, 10);
      await Promise.all(
        Array.from({ length: conc }, async (_, i) => {
          await new Promise((r) => setTimeout(r, (i * warmupMs) / conc));
          while (!stopped) {
            const t = performance.now();
            try {
              await one();
              const done = performance.now();
              if (t >= start) lat.push(done - t);
              if (done >= start && !stopped) inWindow++;
            } catch (e) {
              if (t < start) continue;
              errors[e.code ?? 'ERROR'] = (errors[e.code ?? 'ERROR'] ?? 0) + 1;
              if (process.env.BENCH_DEBUG && !errors._first) errors._first = e.message;
            }
          }
        }),
      );
      clearTimeout(mark);
      clearInterval(check);
      const ms = windowEnd - start;
      const s = lat.sort((a, b) => a - b);
      const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
      // Where the machine's CPU went, per signature: what bounds the cluster rows.
      const per = (role) =>
        pids.filter((x) => x.role === role).reduce((a, x) => a + (cpu1.get(x.pid) - cpu0.get(x.pid)), 0) /
        Math.max(1, inWindow);
      const cpu = {
        cpuClientMs: per('client'),
        cpuCoordinatorMs: per('coordinator'),
        cpuSignersMs: per('signer'),
        coresUsed: [...cpu1].reduce((a, [pid, v]) => a + v - cpu0.get(pid), 0) / ms,
      };
      return {
        opsPerSec: (inWindow / ms) * 1000,
        p50Ms: q(0.5) ?? 0,
        p99Ms: q(0.99) ?? 0,
        n: lat.length,
        inWindow,
        errors,
        cpu,
        latencies: s,
        ms,
      };
    },
    /**
     * offline-sync: a device with `count` packages signed offline reconnects; measures the time
     * from the start of its sync to the last completion (packages/s), and bytes per package.
     */
    async offlineSync(suiteId, count) {
      const deviceUrl = JSON.parse((await import('node:fs')).readFileSync(join(dir, 'client.json'), 'utf8')).deviceUrl;
      const d = await Device.open({
        location: join(dir, '..', `device-${suiteId}`),
        storageKey: new Uint8Array(randomBytes(32)),
      });
      try {
        await d.init(`bench-phone-${suiteId}`);
        const { token } = await client.call('IssueEnrolmentToken', { ttlMs: 600_000, label: 'bench' });
        await d.enrol(deviceUrl, token);
        await admitDevice(client, `bench-phone-${suiteId}`, devOperatorFiles(dir));
        const key = await d.keygen(deviceUrl, { suite: suiteId, threshold: 2, with: ['signer-1', 'signer-2'] });
        // An ECDSA key reserves presignatures the phone makes with its co-signer (at most 64 a call).
        const per = suiteId === 'ecdsa-secp256k1' ? 64 : 256;
        const reserveStart = performance.now();
        for (let left = count; left > 0; left -= per)
          await d.reserve(deviceUrl, { keyId: key.keyId, count: Math.min(per, left) });
        const reserveMs = performance.now() - reserveStart;
        let bytes = 0;
        const signStart = performance.now();
        for (let i = 0; i < count; i++) {
          const msg = new Uint8Array(32);
          new DataView(msg.buffer).setUint32(0, i);
          bytes += (await d.signOffline({ keyId: key.keyId, message: msg })).bytes.length;
        }
        const signMs = performance.now() - signStart;
        const t0 = performance.now();
        const r = await d.sync(deviceUrl);
        const ms = performance.now() - t0;
        if (r.completed.length !== count)
          throw new Error(
            `offline-sync: ${r.completed.length}/${count} completed (${JSON.stringify(r.pending[0] ?? r.failed[0])})`,
          );
        return {
          sync: {
            opsPerSec: (count / ms) * 1000,
            p50Ms: ms / count,
            p99Ms: ms / count,
            lastCompletionMs: ms,
            packages: count,
            bytesPerPackage: bytes / count,
          },
          reserve: { opsPerSec: (count / reserveMs) * 1000, p50Ms: reserveMs / count, p99Ms: reserveMs / count },
          sign: {
            opsPerSec: (count / signMs) * 1000,
            p50Ms: signMs / count,
            p99Ms: signMs / count,
            bytesPerPackage: bytes / count,
          },
        };
      } finally {
        await d.close();
      }
    },
    /** Resident memory of the signer processes (largest) and of the coordinator, in MB (from /proc). */
    async signerRss() {
      const st = await client.call('Status', {});
      const rss = (pid) => {
        try {
          const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
          return m ? Math.round(Number(m[1]) / 1024) : 0;
        } catch {
          return 0;
        }
      };
      return {
        maxMb: Math.max(0, ...st.participants.filter((p) => p.pid).map((p) => rss(p.pid))),
        coordinatorMb: rss(st.pid),
      };
    },
    async stop() {
      client.close();
      await dev.stop();
      rmSync(join(dir, '..'), { recursive: true, force: true });
    },
  };
}

/** CPU time (user + system, ms) of each process so far, from /proc (Linux). */
function cpuMs(pids) {
  const tick = 10; // USER_HZ = 100 on Linux
  return new Map(
    pids.map(({ pid }) => {
      try {
        const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
        return [pid, (Number(f[11]) + Number(f[12])) * tick];
      } catch {
        return [pid, 0];
      }
    }),
  );
}

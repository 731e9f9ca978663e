/**
 * The console's KPI history: the console server samples the coordinator's offline KPIs (the same
 * figures `tessera status` shows) every `everyMs` and keeps the last 24 hours, in memory and in
 * `<cluster dir>/console-kpis.jsonl`, so the chart shows the day so far whenever a page opens and
 * after the console restarts. A sample lost in a crash (the file is appended without fsync) is a
 * gap in a chart, nothing more; Prometheus keeps the authoritative series.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from './client.js';
import { status } from './commands.js';

export interface KpiSample {
  at: number;
  completed: number;
  refused: number;
  pendingOnDevices: number;
  allowanceUtilisation: number;
  successRate: Record<string, number>;
  syncLatencyMeanSeconds: number | null;
}

const DAY_MS = 24 * 3_600_000;

export function kpiHistory(c: Client, every: number) {
  const everyMs = Math.max(100, every);
  const file = join(c.dir, 'console-kpis.jsonl');
  const samples: KpiSample[] = [];
  const cutoff = () => Date.now() - DAY_MS;
  let written = 0;
  if (existsSync(file))
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line) written++;
      try {
        const s = JSON.parse(line) as KpiSample;
        if (typeof s.at === 'number' && typeof s.completed === 'number' && s.at >= cutoff()) samples.push(s);
      } catch {
        // a torn last line after a crash: skipped
      }
    }
  const sample = async () => {
    const k = (await status(c).catch(() => undefined))?.offline;
    if (!k) return;
    const s: KpiSample = {
      at: Date.now(),
      completed: k.completed,
      refused: k.refused,
      pendingOnDevices: k.pendingOnDevices,
      allowanceUtilisation: k.allowanceUtilisation,
      successRate: k.successRate,
      syncLatencyMeanSeconds: k.syncLatencyMeanSeconds,
    };
    samples.push(s);
    while (samples.length && (samples[0] as KpiSample).at < cutoff()) samples.shift();
    // Appended; rewritten to the kept day once the file holds twice as many lines.
    if (++written > 2 * samples.length) {
      writeFileSync(file, samples.map((x) => JSON.stringify(x)).join('\n') + '\n');
      written = samples.length;
    } else appendFileSync(file, JSON.stringify(s) + '\n');
  };
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void sample().finally(() => (running = false));
  }, everyMs);
  timer.unref();
  return {
    list: () => ({ everyMs, samples: [...samples] }),
    stop: () => clearInterval(timer),
  };
}

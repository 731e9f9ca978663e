/**
 * Graceful shutdown on SIGTERM / SIGINT.
 */

interface Entry {
  handler: () => Promise<void> | void;
  timeoutMs: number;
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;
const entries: Entry[] = [];
let installed = false;
let shuttingDown = false;

function runWithTimeout(e: Entry): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      process.stderr.write(`shutdown handler timed out after ${e.timeoutMs} ms\n`);
      resolve();
    }, e.timeoutMs);
    Promise.resolve()
      .then(() => e.handler())
      .then(
        () => resolve(),
        (err: unknown) => {
          process.stderr.write(`shutdown handler failed: ${err instanceof Error ? err.message : String(err)}\n`);
          resolve();
        },
      )
      .finally(() => clearTimeout(timer));
  });
}

function onSignal(): void {
  if (shuttingDown) {
    // Second signal: the operator wants out now.
    process.exit(1);
  }
  shuttingDown = true;
  void (async () => {
    for (const e of [...entries].reverse()) await runWithTimeout(e);
    process.exit(0);
  })();
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const s of SIGNALS) process.on(s, onSignal);
}

function uninstall(): void {
  if (!installed || shuttingDown) return;
  installed = false;
  for (const s of SIGNALS) process.off(s, onSignal);
}

/**
 * Registers `handler` to run on SIGTERM/SIGINT. On the first signal every registered handler
 * runs, in reverse registration order, one at a time, each bounded by its own timeout
 * (default 10 s; a handler that throws or times out is reported on stderr and skipped), then
 * the process exits with 0. A second signal during shutdown exits at once with 1.
 * Returns a function that unregisters the handler (the signal listeners are removed with the
 * last handler, restoring Node's default behaviour).
 */
export function onShutdown(handler: () => Promise<void> | void, opts: { timeoutMs?: number } = {}): () => void {
  const entry: Entry = { handler, timeoutMs: opts.timeoutMs ?? 10_000 };
  entries.push(entry);
  install();
  return () => {
    const i = entries.indexOf(entry);
    if (i >= 0) entries.splice(i, 1);
    if (entries.length === 0) uninstall();
  };
}

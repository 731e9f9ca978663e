/**
 * Long protocol steps as generators that yield between units of work (one base OT each): run to
 * the end at once ({@link drain}), or with a pause every few units ({@link drainAsync}) so that a
 * node's event loop keeps answering its link (gRPC keepalives, other tasks) while a key's
 * pairwise setup — seconds of CPU — runs.
 */
export function drain<T>(steps: Generator<void, T>): T {
  let r = steps.next();
  while (!r.done) r = steps.next();
  return r.value;
}

type Timers = { setImmediate?: (f: () => void) => unknown; setTimeout: (f: () => void, ms: number) => unknown };

/** Yields to the event loop (after I/O callbacks: a waiting keepalive is answered). */
export const yieldToEventLoop = (): Promise<void> =>
  new Promise((resolve) => {
    const t = globalThis as unknown as Timers;
    if (t.setImmediate) t.setImmediate(resolve);
    else t.setTimeout(resolve, 0);
  });

export async function drainAsync<T>(
  steps: Generator<void, T>,
  pause: () => Promise<void> = yieldToEventLoop,
  every = 8,
): Promise<T> {
  let n = 0;
  let r = steps.next();
  while (!r.done) {
    if (++n % every === 0) await pause();
    r = steps.next();
  }
  return r.value;
}

/**
 * In-process mutual exclusion keyed by string. Serialises async critical sections that share a
 * key; different keys run concurrently. Cross-process exclusion comes from LevelDB's directory
 * lock (only one process can open a store).
 */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  /** Run `fn` once every earlier `run` with the same `key` has settled; resolves to its result. */
  async run<T>(key: string, fn: () => Promise<T> | T): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.#tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }

  /** Number of keys with a holder or waiters (for tests). */
  get size(): number {
    return this.#tails.size;
  }
}

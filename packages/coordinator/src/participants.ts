/**
 * The participants the coordinator knows: those linked now (their handles), every id it has
 * ever seen linked or in a stored roster (to tell "unknown" from "offline"), and those that
 * timed out lately (tried last for a while, so one slow peer does not cost every request a
 * full task deadline).
 */
import type { ParticipantHandle } from './types.js';

/** How long a participant that timed out is tried last. */
export const SLOW_FOR_MS = 60_000;

export class Participants {
  readonly #handles = new Map<string, ParticipantHandle>();
  readonly #known = new Set<string>();
  readonly #slowUntil = new Map<string, number>();

  constructor(private readonly clock: () => number) {}

  /** Records a (re)linked participant; a newer handle replaces the older one. */
  link(h: ParticipantHandle): void {
    this.#handles.set(h.info.id, h);
    this.#slowUntil.delete(h.info.id);
    this.#known.add(h.info.id);
  }

  /** Forgets the link of `id` (only if `handle`, when given, is still its link); true if it was linked. */
  unlink(id: string, handle?: ParticipantHandle): boolean {
    if (handle && this.#handles.get(id) !== handle) return false;
    return this.#handles.delete(id);
  }

  get(id: string): ParticipantHandle | undefined {
    return this.#handles.get(id);
  }

  linked(id: string): boolean {
    return this.#handles.has(id);
  }

  /** Ids linked now, sorted. */
  connected(): string[] {
    return [...this.#handles.keys()].sort();
  }

  handles(): ParticipantHandle[] {
    return [...this.#handles.values()];
  }

  /** Marks `id` as seen (linked once, or named in a stored roster). */
  know(id: string): void {
    this.#known.add(id);
  }

  isKnown(id: string): boolean {
    return this.#known.has(id);
  }

  /** `id` did not answer in time: it goes last for {@link SLOW_FOR_MS}. */
  markSlow(id: string): void {
    this.#slowUntil.set(id, this.clock() + SLOW_FOR_MS);
  }

  /** `ids` in the same order, except that those that timed out lately go last. */
  fastFirst(ids: readonly string[]): string[] {
    const now = this.clock();
    const slow = (id: string) => Number((this.#slowUntil.get(id) ?? 0) > now);
    return [...ids].sort((a, b) => slow(a) - slow(b));
  }
}

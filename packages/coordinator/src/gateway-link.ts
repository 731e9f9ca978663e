/**
 * The device gateway's participant links: a device's half of the link is a long poll, so the
 * coordinator's end ({@link DeviceLink}) queues tasks until the device's next poll and settles
 * each call when a later poll carries its result. {@link DeviceLinks} holds the linked devices
 * (registered with the coordinator while they poll, unlinked when idle or on a bye) and the
 * pending-package count each device last reported.
 */
import {
  decodeLinkResult,
  type LinkResult,
  type LinkTask,
  type ParticipantPublic,
  type WireDevicePoll,
} from '@tessera/core';
import type { Logger } from 'pino';
import type { Coordinator } from './coordinator.js';
import { GatewayError } from './gateway-http.js';
import { CoordinatorError, type ParticipantHandle } from './types.js';

/** Longest a poll waits for tasks (ms). */
export const MAX_WAIT_MS = 20_000;

/** The device's end of the link, as the coordinator sees it: tasks wait for the next poll. */
export class DeviceLink implements ParticipantHandle {
  readonly device = true;
  readonly connectedSince = Date.now();
  readonly #queue: LinkTask[] = [];
  readonly #pending = new Map<
    number,
    { resolve: (r: LinkResult) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  #waiter: (() => void) | undefined;
  #next = 1;
  #closed = false;
  lastPoll = Date.now();

  constructor(readonly info: ParticipantPublic) {}

  call(task: Omit<LinkTask, 'taskId'>, timeoutMs: number): Promise<LinkResult> {
    if (this.#closed) return Promise.reject(new CoordinatorError('UNAVAILABLE', `${this.info.id} is not linked`));
    const taskId = this.#next++;
    return new Promise<LinkResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(taskId);
        reject(new CoordinatorError('UNAVAILABLE', `${this.info.id} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(taskId, { resolve, reject, timer });
      this.#queue.push({ taskId, ...task } as LinkTask);
      this.#wake();
    });
  }

  deliver(results: LinkResult[]): void {
    for (const r of results) {
      const p = this.#pending.get(Number(r.taskId));
      if (!p) continue;
      this.#pending.delete(Number(r.taskId));
      clearTimeout(p.timer);
      p.resolve(r);
    }
  }

  /** Waits up to `waitMs` for tasks (a newer poll ends an older one's wait). */
  async take(waitMs: number): Promise<LinkTask[]> {
    this.lastPoll = Date.now();
    this.#wake();
    if (this.#queue.length === 0 && waitMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => done(), waitMs);
        const done = () => {
          clearTimeout(timer);
          if (this.#waiter === done) this.#waiter = undefined;
          resolve();
        };
        this.#waiter = done;
      });
    }
    this.lastPoll = Date.now();
    return this.#queue.splice(0);
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  close(why: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake();
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new CoordinatorError('UNAVAILABLE', `${this.info.id} unlinked: ${why}`));
    }
    this.#pending.clear();
  }
}

/** The devices linked through the gateway, and the pending-package count each last reported. */
export class DeviceLinks {
  readonly #links = new Map<string, DeviceLink>();
  readonly #pending = new Map<string, number>();

  constructor(
    private readonly c: {
      coordinator: Coordinator;
      log?: Logger | undefined;
      /** A device that has not polled for this long (plus a poll's longest wait) is unlinked (ms). */
      idleMs: number;
      /** Most devices with state here at once. */
      maxClients: number;
    },
  ) {}

  /** Refuses a device new to the per-device maps when they are full (revoked devices' entries are dropped first). */
  admit(id: string): void {
    if (this.#pending.has(id) || this.#links.has(id) || this.#pending.size < this.c.maxClients) return;
    this.#dropForgotten();
    if (this.#pending.size >= this.c.maxClients)
      throw new GatewayError('RESOURCE_EXHAUSTED', 'the gateway tracks too many devices; retry later');
  }

  /**
   * A poll of device `info` (admitted): delivers the results it carries and waits for tasks; a
   * bye delivers them and unlinks the device instead (its pending count is kept).
   */
  async poll(info: ParticipantPublic, p: WireDevicePoll): Promise<LinkTask[]> {
    if (p.bye) {
      const l = this.#links.get(info.id);
      if (l) {
        l.deliver(p.results.map((r) => decodeLinkResult(r)));
        this.#links.delete(info.id);
        l.close('device went offline');
        this.c.coordinator.unregister(info.id, l);
      }
      this.#pending.set(info.id, p.pending);
      return [];
    }
    const link = this.#linkOf(info);
    this.#pending.set(info.id, p.pending);
    link.deliver(p.results.map((r) => decodeLinkResult(r)));
    return link.take(Math.min(Math.max(0, p.waitMs), MAX_WAIT_MS));
  }

  #linkOf(info: ParticipantPublic): DeviceLink {
    let l = this.#links.get(info.id);
    if (!l) {
      l = new DeviceLink(info);
      this.#links.set(info.id, l);
      this.c.coordinator.register(l);
      this.c.log?.info({ device: info.id }, 'device linked');
    }
    return l;
  }

  /** Unlinks the devices idle too long; forgets the pending counts of devices neither linked nor enrolled. */
  sweep(now: number): void {
    for (const [id, l] of this.#links) {
      if (now - l.lastPoll > this.c.idleMs + MAX_WAIT_MS) {
        this.#links.delete(id);
        l.close('idle');
        this.c.coordinator.unregister(id, l);
        this.c.log?.info({ device: id }, 'device unlinked (idle)');
      }
    }
    this.#dropForgotten();
  }

  #dropForgotten(): void {
    for (const id of this.#pending.keys())
      if (!this.#links.has(id) && !this.c.coordinator.device(id)) this.#pending.delete(id);
  }

  /** Unlinks every device. */
  closeAll(why: string): void {
    for (const [id, l] of this.#links) {
      l.close(why);
      this.c.coordinator.unregister(id, l);
    }
    this.#links.clear();
  }

  /** Ids of the linked devices, sorted. */
  linked(): string[] {
    return [...this.#links.keys()].sort();
  }

  /** Offline packages waiting on devices, as each device last reported. */
  pendingByDevice(): Map<string, number> {
    return new Map(this.#pending);
  }

  get linkedCount(): number {
    return this.#links.size;
  }

  /** Devices whose pending-package count is kept (linked, or offline after a bye). */
  get deviceCount(): number {
    return this.#pending.size;
  }
}

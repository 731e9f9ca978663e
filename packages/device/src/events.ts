/**
 * What a device tells its app as it happens: the link to the cluster going up or down, sync
 * progress, each queued package completed or refused, the offline allowance running low, and a
 * key moving to a new epoch (a refresh or reshare caught up while linked). A listener that throws
 * is ignored: an app's bug never stops a sync half-way.
 */

export interface DeviceEvents {
  /** The participant link ({@link Device.connect}) reached the gateway (`up`) or lost it. */
  link: { up: boolean };
  /** One queued package was tried in a sync: `done` of `total`, with its outcome so far. */
  sync: { done: number; total: number; packageId: string; state: 'completed' | 'pending' | 'failed' };
  /** The cluster completed a package (its signature verified here) or refused it for good. */
  package: {
    packageId: string;
    keyId: string;
    state: 'completed' | 'refused';
    signature?: string;
    code?: string;
  };
  /** After an offline payment or a lapse: `remaining` unused reservations, at or below the app's threshold. */
  allowance: { keyId: string; remaining: number };
  /** A risk rule is near its limit (velocity: `count` payments in the last hour of `limit`). */
  risk: { rule: 'velocity'; count: number; limit: number };
  /** A key's share moved to `epoch` (refresh or reshare applied on this device). */
  lifecycle: { keyId: string; epoch: number; previous: number };
}

export type DeviceEventType = keyof DeviceEvents;
export type DeviceListener<K extends DeviceEventType> = (event: DeviceEvents[K]) => void;

/** A small typed emitter (no dependency: the SDK stays small in a browser bundle). */
export class DeviceEmitter {
  readonly #listeners = new Map<DeviceEventType, Set<(e: never) => void>>();

  /** Adds `listener`; the returned function removes it. */
  on<K extends DeviceEventType>(type: K, listener: DeviceListener<K>): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener as (e: never) => void);
    return () => this.off(type, listener);
  }

  off<K extends DeviceEventType>(type: K, listener: DeviceListener<K>): void {
    this.#listeners.get(type)?.delete(listener as (e: never) => void);
  }

  emit<K extends DeviceEventType>(type: K, event: DeviceEvents[K]): void {
    for (const l of [...(this.#listeners.get(type) ?? [])]) {
      try {
        (l as DeviceListener<K>)(event);
      } catch {
        // The app's listener failed; the device's own work goes on.
      }
    }
  }
}

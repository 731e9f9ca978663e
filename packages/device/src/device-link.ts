/**
 * The device's link to the cluster (`Device.connect / disconnect / keygen`): at most one open at
 * a time, the gateway it went to (told goodbye when it closes), and the DKGs the device agreed to
 * join while it is open (link.ts takes the tasks).
 */
import { decodeMessage, encodeMessage, getSuite, groupPublicKey, toHex, type SuiteId } from '@tessera/core';
import type { GatewayUrl } from './enrolment.js';
import { DeviceError } from './errors.js';
import type { GatewayClient } from './gateway-client.js';
import { type DeviceKeyInfo, type Holdings, keyInfo } from './holdings.js';
import { type Link, type LinkTaskContext, LinkTasks, openLink, sayBye } from './link.js';

/** What the link needs of its device. */
export interface DeviceLinkContext extends LinkTaskContext, Pick<Holdings, 'keyIds' | 'key' | 'pending'> {
  /** A client for `url`, naming the cluster that URL enrolled this device in. */
  gateway(url: GatewayUrl): GatewayClient;
}

export class DeviceLink {
  readonly #ctx: DeviceLinkContext;
  readonly #tasks: LinkTasks;
  #link: Link | undefined;
  #opening: Promise<void> | undefined;
  /** Calls running that opened the link for themselves (it closes when the last one ends). */
  #borrowers = 0;
  #url: GatewayUrl | undefined;

  constructor(ctx: DeviceLinkContext) {
    this.#ctx = ctx;
    this.#tasks = new LinkTasks(ctx);
  }

  get connected(): boolean {
    return this.#link !== undefined;
  }

  /** Opens the link unless one is open (or opening); `acceptKeygen` counts while it stays open. */
  async connect(url: GatewayUrl, opts: { acceptKeygen?: boolean } = {}): Promise<void> {
    if (this.#link) return;
    // Two calls at once open one link, not two polling side by side.
    if (this.#opening) return this.#opening;
    this.#opening = this.#open(url, opts).finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  async #open(url: GatewayUrl, opts: { acceptKeygen?: boolean }): Promise<void> {
    this.#url = url;
    if (opts.acceptKeygen) {
      this.#tasks.acceptKeygen++;
      this.#tasks.acceptFromOthers++;
    }
    const ctx = this.#ctx;
    this.#link = await openLink(
      ctx.gateway(url),
      async () => ({ keys: await ctx.keyIds(), pending: await ctx.pending() }),
      this.#ctx.events,
      (t) => this.#tasks.handle(t),
      () => {
        if (opts.acceptKeygen) {
          this.#tasks.acceptKeygen--;
          this.#tasks.acceptFromOthers--;
        }
      },
    );
  }

  /**
   * Runs `fn` with the link open: opened for it if none is, and closed after the last such call
   * ends (calls that run at once share one link; a link the app opened stays open).
   */
  async #linked<T>(url: GatewayUrl, fn: () => Promise<T>): Promise<T> {
    const temporary = !this.#link || this.#borrowers > 0;
    if (temporary) this.#borrowers++;
    try {
      await this.connect(url);
      return await fn();
    } finally {
      if (temporary && --this.#borrowers === 0) await this.disconnect();
    }
  }

  /** Closes the link, if open, and tells the gateway it went to. */
  async disconnect(): Promise<void> {
    const l = this.#link;
    this.#link = undefined;
    if (!l) return;
    l.stop();
    await l.done;
    // Tell the cluster at once, so no session waits for a device that is gone (best effort).
    if (this.#url) await sayBye(this.#ctx.gateway(this.#url), await this.#ctx.pending());
  }

  /**
   * Runs `call` (an ECDSA reserve call for `keyId`) with the link open, taking the presigning
   * tasks of that key under the session ids `sessions` (hex) meanwhile, and no others: the device
   * presigns only for its own request, under ids it drew.
   */
  async presigning<T>(
    url: GatewayUrl,
    keyId: string,
    sessions: ReadonlySet<string>,
    call: () => Promise<T>,
  ): Promise<T> {
    const allowed = this.#tasks.presignFor;
    const mine = [...sessions].map((s) => `${keyId}.${s}`);
    for (const id of mine) allowed.add(id);
    try {
      return await this.#linked(url, call);
    } finally {
      for (const id of mine) allowed.delete(id);
    }
  }

  /** Whether a reserve call running now allows presigning session `session` (hex) on `keyId`. */
  presignRunning(keyId: string, session: string): boolean {
    return this.#tasks.presignFor.has(`${keyId}.${session}`);
  }

  /** Asks the cluster for a DKG with this device, linked meanwhile, and checks the key it made. */
  async keygen(url: GatewayUrl, req: { suite: SuiteId; threshold: number; with?: string[] }): Promise<DeviceKeyInfo> {
    this.#tasks.acceptKeygen++;
    for (const id of req.with ?? []) this.#tasks.keygenWith.add(id);
    try {
      return await this.#linked(url, async () => {
        const info = decodeMessage(
          'KeyInfo',
          await this.#ctx.gateway(url).call(
            'keygen',
            encodeMessage('KeygenRequest', {
              suite: getSuite(req.suite).wireId,
              threshold: req.threshold,
              participants: req.with ?? [],
            }),
            120_000,
          ),
        );
        const rec = await this.#ctx.key(info.keyId);
        if (toHex(groupPublicKey(rec.key)) !== toHex(info.publicKey))
          throw new DeviceError(
            'CONFIRMATION_MISMATCH',
            'the cluster reports another public key than this device derived',
          );
        return keyInfo(rec);
      });
    } finally {
      this.#tasks.acceptKeygen--;
      if (this.#tasks.acceptKeygen === 0) this.#tasks.keygenWith.clear();
    }
  }
}

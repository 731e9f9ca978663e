/**
 * The device's client of the coordinator's device gateway: each call a DEVICE_CALL envelope
 * signed by the device identity (fresh timestamp, single-use nonce, the cluster it is for), POSTed with `fetch`
 * (Node 20+, browsers, React Native). Failures become {@link DeviceError}s with the server's
 * stable code, or UNAVAILABLE when the cluster cannot be reached.
 *
 * A client may be given several gateway URLs — one per coordinator replica; only the leading
 * replica serves, the others refuse connections. A call goes to the replica that answered last
 * and moves on to the next one when the connection is refused (nothing was sent, so any call
 * may move on) or, for a call that is safe to repeat (`poll`, `submit`, `keys`, `packages`), when the
 * connection broke or timed out. Every attempt is a freshly signed envelope.
 */
import {
  PayloadKind,
  asErrorCode,
  encodeMessage,
  signEnvelope,
  type ParticipantIdentity,
  type Rng,
} from '@tessera/core';
import { DeviceError } from './errors.js';
import { TransportError, fetchTransport, type Transport } from './transport.js';

export type GatewayOp = 'enrol' | 'poll' | 'keygen' | 'reserve' | 'submit' | 'keys' | 'packages';

/** Calls the cluster answers the same way however often they arrive (a package completes once). */
const REPEATABLE: ReadonlySet<GatewayOp> = new Set(['poll', 'submit', 'keys', 'packages']);

/**
 * The gateway URLs of `url`: a list, or one string of comma-separated URLs (every coordinator
 * replica's gateway). Each is `http(s)://host[:port]`, kept without a trailing slash.
 */
export function gatewayUrls(url: string | readonly string[]): string[] {
  const list = (typeof url === 'string' ? url.split(',') : [...url]).map((u) => String(u).trim()).filter(Boolean);
  if (list.length === 0) throw new DeviceError('INVALID_ARGUMENT', 'no gateway URL given');
  for (const u of list)
    if (!/^https?:\/\/[^/]+/.test(u))
      throw new DeviceError('INVALID_ARGUMENT', `gateway URL must be http(s)://host:port, got "${u.slice(0, 80)}"`);
  return list.map((u) => u.replace(/\/+$/, ''));
}

type Attempt = { status: number; bytes: Uint8Array } | { failed: 'not-sent' | 'broken' | 'timeout' };

export class GatewayClient {
  readonly urls: readonly string[];
  /**
   * `clusterId`: the cluster this gateway serves, as its enrolment answer named it (calls name it,
   * so a call captured here is refused by any other cluster); empty before enrolment.
   * `leader`: which of `urls` answered last, shared by the clients of one device so that the
   * next call starts there. `transport`: how bytes reach the gateway (default `fetch`).
   */
  constructor(
    url: string | readonly string[],
    private readonly identity: ParticipantIdentity,
    private readonly rng: Rng,
    private readonly clock: () => number,
    private readonly clusterId = '',
    private readonly leader: { index: number } = { index: 0 },
    private readonly transport: Transport = fetchTransport,
  ) {
    this.urls = gatewayUrls(url);
  }

  /** The URL calls go to first (the replica that answered last). */
  get url(): string {
    return this.urls[this.leader.index % this.urls.length] as string;
  }

  async call(op: GatewayOp, body: Uint8Array, timeoutMs = 30_000, signal?: AbortSignal): Promise<Uint8Array> {
    const n = this.urls.length;
    const start = this.leader.index % n;
    let last: Attempt = { failed: 'not-sent' };
    for (let i = 0; i < n; i++) {
      const at = (start + i) % n;
      last = await this.#attempt(this.urls[at] as string, op, body, timeoutMs, signal);
      if ('status' in last) {
        this.leader.index = at;
        return this.#answer(last.status, last.bytes, this.urls[at] as string);
      }
      if (last.failed !== 'not-sent' && !REPEATABLE.has(op)) {
        // It may have arrived: the caller decides whether to ask again (the next call starts at the next replica).
        if (n > 1) this.leader.index = (at + 1) % n;
        break;
      }
    }
    const where = n === 1 ? (this.urls[0] as string) : this.urls.join(', ');
    throw new DeviceError(
      'UNAVAILABLE',
      'failed' in last && last.failed === 'timeout'
        ? `cannot reach the cluster at ${where}: no answer within ${timeoutMs} ms`
        : `cannot reach the cluster at ${where}`,
    );
  }

  async #attempt(
    url: string,
    op: GatewayOp,
    body: Uint8Array,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<Attempt> {
    const payload = encodeMessage('DeviceCall', {
      version: 1,
      device: this.identity.id,
      op,
      issuedAt: this.clock(),
      nonce: this.rng(16),
      body,
      clusterId: this.clusterId,
    });
    const envelope = signEnvelope(this.identity, PayloadKind.DEVICE_CALL, payload);
    if (signal?.aborted) throw new DeviceError('CANCELLED', 'call cancelled');
    const ctl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, timeoutMs);
    const onAbort = () => ctl.abort();
    signal?.addEventListener('abort', onAbort);
    try {
      const res = await this.transport({ url: `${url}/v1/device/${op}`, body: envelope, signal: ctl.signal });
      return { status: res.status, bytes: res.body };
    } catch (e) {
      if (signal?.aborted) throw new DeviceError('CANCELLED', 'call cancelled');
      if (timedOut) return { failed: 'timeout' };
      return { failed: e instanceof TransportError && !e.sent ? 'not-sent' : 'broken' };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  #answer(status: number, bytes: Uint8Array, url: string): Uint8Array {
    if (status >= 200 && status < 300) return bytes;
    let detail: { code?: unknown; message?: unknown; culprits?: unknown } = {};
    try {
      detail = JSON.parse(new TextDecoder().decode(bytes)) as typeof detail;
    } catch {
      /* not a Tessera gateway answer */
    }
    const code =
      typeof detail.code === 'string' && /^[A-Z][A-Z_]{1,39}$/.test(detail.code)
        ? asErrorCode(detail.code)
        : status >= 500
          ? 'UNAVAILABLE'
          : 'INTERNAL';
    throw new DeviceError(
      code,
      typeof detail.message === 'string' ? detail.message.slice(0, 500) : `gateway ${url} answered HTTP ${status}`,
      Array.isArray(detail.culprits) ? detail.culprits.map(String) : [],
    );
  }
}

/**
 * The device's client of the coordinator's device gateway: each call a DEVICE_CALL envelope
 * signed by the device identity (fresh timestamp, single-use nonce, the cluster it is for), POSTed with `fetch`
 * (Node 20+, browsers, React Native). Failures become {@link DeviceError}s with the server's
 * stable code, or UNAVAILABLE when the cluster cannot be reached.
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

export type GatewayOp = 'enrol' | 'poll' | 'keygen' | 'reserve' | 'submit' | 'keys';

export class GatewayClient {
  readonly url: string;
  /**
   * `clusterId`: the cluster this gateway serves, as its enrolment answer named it (calls name it,
   * so a call captured here is refused by any other cluster); empty before enrolment.
   */
  constructor(
    url: string,
    private readonly identity: ParticipantIdentity,
    private readonly rng: Rng,
    private readonly clock: () => number,
    private readonly clusterId = '',
  ) {
    if (!/^https?:\/\/[^/]+/.test(String(url)))
      throw new DeviceError(
        'INVALID_ARGUMENT',
        `gateway URL must be http(s)://host:port, got "${String(url).slice(0, 80)}"`,
      );
    this.url = String(url).replace(/\/+$/, '');
  }

  async call(op: GatewayOp, body: Uint8Array, timeoutMs = 30_000, signal?: AbortSignal): Promise<Uint8Array> {
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
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    const onAbort = () => ctl.abort();
    signal?.addEventListener('abort', onAbort);
    let res: Response;
    try {
      res = await fetch(`${this.url}/v1/device/${op}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf' },
        body: envelope as Uint8Array<ArrayBuffer>,
        signal: ctl.signal,
      });
    } catch {
      throw new DeviceError('UNAVAILABLE', `cannot reach the cluster at ${this.url}`);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await res.arrayBuffer());
    } catch {
      throw new DeviceError('UNAVAILABLE', `the connection to ${this.url} broke`);
    }
    if (res.ok) return bytes;
    let detail: { code?: unknown; message?: unknown; culprits?: unknown } = {};
    try {
      detail = JSON.parse(new TextDecoder().decode(bytes)) as typeof detail;
    } catch {
      /* not a Tessera gateway answer */
    }
    const code =
      typeof detail.code === 'string' && /^[A-Z][A-Z_]{1,39}$/.test(detail.code)
        ? asErrorCode(detail.code)
        : res.status >= 500
          ? 'UNAVAILABLE'
          : 'INTERNAL';
    throw new DeviceError(
      code,
      typeof detail.message === 'string' ? detail.message.slice(0, 500) : `gateway answered HTTP ${res.status}`,
      Array.isArray(detail.culprits) ? detail.culprits.map(String) : [],
    );
  }
}

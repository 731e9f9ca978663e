/**
 * The device gateway: plain HTTP POSTs carrying protobuf, for devices (phones, browsers) that
 * can neither serve nor hold a gRPC stream. Every call is a DEVICE_CALL envelope signed by the
 * device's identity key, fresh (issued within ±5 minutes), for this cluster (its cluster id) and
 * used once (its nonce is remembered, but only once the call is authenticated: an enrolment
 * whose token was accepted, or a call signed by an enrolled device's key). The device's half of
 * the participant link is a long poll: each poll carries the results of earlier tasks and
 * returns new ones, so a device takes part in DKGs like a node.
 *
 * Routes: POST /v1/device/{enrol|poll|keygen|reserve|submit|keys}. Replies: the op's response
 * message (200, application/x-protobuf) or the ErrorDetail JSON ({code, message, culprits})
 * with an HTTP status for its class. CORS is open: authentication is the signature, never a
 * cookie.
 *
 * Per-client state is bounded: calls per device (after authentication) and enrolments plus
 * refused calls per remote address are rate limited (RATE_LIMITED, 429, with Retry-After), and
 * the nonce ledger and per-device maps have hard caps (RESOURCE_EXHAUSTED, 429, rather than
 * growing). Behind a TLS proxy every device shares the proxy's address: size `addressRate` for it.
 *
 * This module checks each call (the envelope, freshness, cluster, replay, rates) and wires the
 * parts: `gateway-http.ts` (routes, body reading, replies and their statuses, the server),
 * `gateway-limits.ts` (rate-limit buckets, the nonce ledger), `gateway-link.ts` (the devices'
 * long-poll links) and `gateway-ops.ts` (what an authenticated device may ask).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  PayloadKind,
  decodeMessage,
  encodeMessage,
  equalBytes,
  openEnvelope,
  participantFromWire,
  toHex,
} from '@tessera/core';
import type { Logger } from 'pino';
import type { Coordinator } from './coordinator.js';
import {
  GatewayError,
  OPS,
  allowCors,
  errorDetail,
  limited,
  listen,
  opOf,
  readBody,
  replyError,
  replyOk,
} from './gateway-http.js';
import { DeviceLinks } from './gateway-link.js';
import { ClientBuckets, ReplayLedger, type RateLimit } from './gateway-limits.js';
import { deviceOp } from './gateway-ops.js';

export type { RateLimit } from './gateway-limits.js';

export interface GatewayOptions {
  coordinator: Coordinator;
  host?: string;
  port: number;
  log?: Logger;
  clock?: () => number;
  /** A device that has not polled for this long is unlinked (ms). */
  idleMs?: number;
  onCall?: (op: string, code: string, ms: number) => void;
  /** Serve HTTPS with this certificate (PEM); without it, plain HTTP (loopback / behind a TLS proxy). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Calls per enrolled device, counted once the call is authenticated (default 50/s, burst 1000). */
  deviceRate?: RateLimit;
  /**
   * Enrolments and refused calls (malformed, unauthenticated, stale, replayed, another cluster's)
   * per remote address (default 100/s, burst 2000). An address out of tokens is refused at once,
   * before its body is read.
   */
  addressRate?: RateLimit;
  /**
   * Key generations one device may start (a DKG is work for every node of the key): default 10
   * per hour, burst 5. Beyond it RATE_LIMITED (429), before any DKG message is sent.
   */
  keygenRate?: RateLimit;
  /** Most nonces of accepted calls remembered at once, each for 10 minutes (default 200,000). */
  maxReplayNonces?: number;
  /** Most addresses, and most devices, with per-client state at once (default 100,000 each). */
  maxClients?: number;
}

/** Sizes of the gateway's per-client state (for tests and metrics). */
export interface GatewayStats {
  /** Nonces of accepted calls remembered (replay protection). */
  replayNonces: number;
  /** Remote addresses with a partly drained rate-limit bucket. */
  addresses: number;
  /** Devices with a partly drained rate-limit bucket. */
  rateLimitedDevices: number;
  /** Devices whose pending-package count is kept (linked, or offline after a bye). */
  devices: number;
  linked: number;
}

export interface StartedGateway {
  url: string;
  port: number;
  close(): Promise<void>;
  /** Devices currently linked (polling). */
  linked(): string[];
  /** Offline packages waiting on devices, as each linked device last reported. */
  pendingByDevice(): Map<string, number>;
  stats(): GatewayStats;
  /** HTTPS only: serves new connections with this certificate (a reload). False on plain HTTP. */
  setTls(tls: { cert: string | Buffer; key: string | Buffer }): boolean;
}

/** A call must be issued within this much of the gateway's clock (ms). */
const SKEW_MS = 5 * 60_000;

const DEFAULT_DEVICE_RATE: RateLimit = { perSecond: 50, burst: 1000 };
const DEFAULT_ADDRESS_RATE: RateLimit = { perSecond: 100, burst: 2000 };
const DEFAULT_KEYGEN_RATE: RateLimit = { perSecond: 10 / 3600, burst: 5 };

export async function startDeviceGateway(opts: GatewayOptions): Promise<StartedGateway> {
  const { coordinator, log } = opts;
  const clock = opts.clock ?? Date.now;
  const clusterId = coordinator.clusterId;
  const maxClients = opts.maxClients ?? 100_000;
  const links = new DeviceLinks({ coordinator, log, idleMs: opts.idleMs ?? 30_000, maxClients });
  const replay = new ReplayLedger(opts.maxReplayNonces ?? 200_000);
  const addresses = new ClientBuckets(opts.addressRate ?? DEFAULT_ADDRESS_RATE, maxClients);
  const deviceBuckets = new ClientBuckets(opts.deviceRate ?? DEFAULT_DEVICE_RATE, maxClients);
  const keygenBuckets = new ClientBuckets(opts.keygenRate ?? DEFAULT_KEYGEN_RATE, maxClients);

  const sweep = setInterval(() => {
    links.sweep(Date.now());
    replay.sweep(clock());
    addresses.sweep();
    deviceBuckets.sweep();
    keygenBuckets.sweep();
  }, 5_000);
  sweep.unref();

  async function handle(op: string, body: Uint8Array, addr: string): Promise<Uint8Array> {
    const ctx = { admitted: false, charged: false };
    try {
      return await serve(op, body, addr, ctx);
    } catch (e) {
      // A refusal before the call was admitted costs its sender's address a token.
      if (!ctx.admitted && !ctx.charged) addresses.take(addr);
      throw e;
    }
  }

  async function serve(
    op: string,
    body: Uint8Array,
    addr: string,
    ctx: { admitted: boolean; charged: boolean },
  ): Promise<Uint8Array> {
    const env = openEnvelope(body, PayloadKind.DEVICE_CALL);
    const call = decodeMessage('DeviceCall', env.payload);
    if (call.version !== 1) throw new GatewayError('UNSUPPORTED_VERSION', `device call version ${call.version}`);
    if (call.op !== op) throw new GatewayError('INVALID_ARGUMENT', `call is for ${call.op}, posted to ${op}`);
    if (Math.abs(call.issuedAt - clock()) > SKEW_MS)
      throw new GatewayError('UNAUTHENTICATED', 'call is stale or from the future (check the device clock)');
    if (call.nonce.length !== 16) throw new GatewayError('INVALID_ARGUMENT', 'call nonce must be 16 bytes');
    const nonceKey = `${call.device}/${toHex(call.nonce)}`;
    if (replay.has(nonceKey)) throw new GatewayError('UNAUTHENTICATED', 'call replayed');
    const wrongCluster = () =>
      new GatewayError(
        'WRONG_CLUSTER',
        `call is for cluster "${call.clusterId.slice(0, 64)}", this is cluster "${clusterId}" (enrol the device here)`,
      );
    if (op === 'enrol') {
      // Every enrolment costs its address a token: the token check reads the store.
      ctx.charged = true;
      const r = addresses.take(addr);
      if (r !== 'ok') throw limited(r, addresses, addr, 'address');
      const e = decodeMessage('DeviceEnrol', call.body);
      if (!e.participant) throw new GatewayError('INVALID_ARGUMENT', 'missing participant');
      const info = participantFromWire(e.participant);
      if (info.id !== call.device || !equalBytes(info.signKey, env.sender))
        throw new GatewayError('UNAUTHENTICATED', 'enrolment not signed by the enrolling identity');
      if (call.clusterId !== '' && call.clusterId !== clusterId) throw wrongCluster();
      if (!replay.reserve(clock())) throw new GatewayError('RESOURCE_EXHAUSTED', 'too many recent calls; retry later');
      try {
        await coordinator.enrolDevice(e.token, info, e.deviceClass);
      } catch (err) {
        replay.release();
        throw err;
      }
      // Remembered only now that the token was accepted: refused enrolments leave nothing behind.
      replay.commit(nonceKey, clock() + 2 * SKEW_MS);
      return encodeMessage('DeviceEnrolled', { device: info.id, coordinator: 'tessera', clusterId });
    }
    const info = coordinator.device(call.device);
    if (!info) throw new GatewayError('UNAUTHENTICATED', `device ${call.device.slice(0, 64)} is not enrolled`);
    if (!equalBytes(info.signKey, env.sender))
      throw new GatewayError('UNAUTHENTICATED', 'call not signed by the enrolled device key');
    if (call.clusterId !== clusterId) throw wrongCluster();
    // Authenticated, fresh and for this cluster: from here on the device's own budget pays.
    ctx.admitted = true;
    const r = deviceBuckets.take(info.id);
    if (r !== 'ok') throw limited(r, deviceBuckets, info.id, 'device');
    if (!replay.reserve(clock())) throw new GatewayError('RESOURCE_EXHAUSTED', 'too many recent calls; retry later');
    replay.commit(nonceKey, clock() + 2 * SKEW_MS);
    return deviceOp({ coordinator, links, keygenBuckets }, op, info, call.body, body);
  }

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    allowCors(res);
    if (req.method === 'OPTIONS') return void res.writeHead(204).end();
    const t0 = Date.now();
    const addr = req.socket.remoteAddress ?? 'unknown';
    const op = opOf(req.url);
    const fail = (e: unknown) => {
      const detail = errorDetail(e, log);
      opts.onCall?.(op || 'unknown', detail.code, Date.now() - t0);
      replyError(res, e, detail);
    };
    if (req.method !== 'POST' || !OPS.has(op))
      return fail(new GatewayError('NOT_FOUND', 'POST /v1/device/{enrol|poll|keygen|reserve|submit|keys}'));
    if (!addresses.allows(addr)) {
      fail(
        new GatewayError(
          'RATE_LIMITED',
          'too many calls from this address; retry later',
          addresses.retryAfterSeconds(addr),
        ),
      );
      req.resume();
      return;
    }
    readBody(
      req,
      (body) =>
        handle(op, body, addr)
          .then((out) => {
            opts.onCall?.(op, 'OK', Date.now() - t0);
            replyOk(res, out);
          })
          .catch(fail),
      fail,
    );
  };
  const { server, url, port } = await listen(opts, listener);
  return {
    url,
    port,
    linked: () => links.linked(),
    pendingByDevice: () => links.pendingByDevice(),
    setTls(tls) {
      if (!('setSecureContext' in server)) return false;
      (server as import('node:https').Server).setSecureContext({ cert: tls.cert, key: tls.key });
      return true;
    },
    stats: () => ({
      replayNonces: replay.size,
      addresses: addresses.size,
      rateLimitedDevices: deviceBuckets.size,
      devices: links.deviceCount,
      linked: links.linkedCount,
    }),
    async close() {
      clearInterval(sweep);
      links.closeAll('gateway closing');
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

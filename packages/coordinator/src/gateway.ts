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
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import {
  PayloadKind,
  TesseraError,
  type ErrorCode,
  decodeLinkResult,
  decodeMessage,
  encodeLinkTask,
  encodeMessage,
  equalBytes,
  getSuite,
  isTesseraError,
  openEnvelope,
  participantFromWire,
  suiteByWireId,
  toHex,
  type LinkResult,
  type LinkTask,
  type ParticipantPublic,
} from '@tessera/core';
import type { Logger } from 'pino';
import { CoordinatorError, type Coordinator, type KeyInfo, type ParticipantHandle } from './coordinator.js';
import { ClientBuckets, ReplayLedger, type RateLimit } from './gateway-limits.js';

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
}

const OPS = new Set(['enrol', 'poll', 'keygen', 'reserve', 'submit', 'keys']);
const MAX_BODY = 1 << 20;
const SKEW_MS = 5 * 60_000;
const MAX_WAIT_MS = 20_000;

const STATUS: Record<string, number> = {
  INVALID_ARGUMENT: 400,
  DECODE: 400,
  WRONG_SUITE: 400,
  UNSUPPORTED_VERSION: 400,
  BAD_SIGNATURE: 401,
  UNAUTHENTICATED: 401,
  POLICY_DENIED: 403,
  NOT_FOUND: 404,
  RESERVATION_USED: 409,
  RESERVATION_EXPIRED: 409,
  RESERVATION_UNKNOWN: 409,
  RESERVATION_INVALID: 409,
  WRONG_CLUSTER: 403,
  BAD_SIGNATURE_SHARE: 422,
  PAYLOAD_TOO_LARGE: 413,
  RESOURCE_EXHAUSTED: 429,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  NO_QUORUM: 503,
  UNEXPECTED_MESSAGE: 400,
  NO_ALLOWANCE: 409,
  INVALID_STATE: 409,
  CONFIRMATION_MISMATCH: 409,
  EQUIVOCATION: 409,
  INTERNAL: 500,
};
/** A typed refusal not in the table is the caller's input: 400. Only INTERNAL is a 500. */
const statusOf = (code: string) => STATUS[code] ?? 400;

class GatewayError extends TesseraError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly retryAfterSeconds = 0,
  ) {
    super(code, message);
  }
}

const DEFAULT_DEVICE_RATE: RateLimit = { perSecond: 50, burst: 1000 };
const DEFAULT_ADDRESS_RATE: RateLimit = { perSecond: 100, burst: 2000 };
const DEFAULT_KEYGEN_RATE: RateLimit = { perSecond: 10 / 3600, burst: 5 };

/** The device's end of the link, as the coordinator sees it: tasks wait for the next poll. */
class DeviceLink implements ParticipantHandle {
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

function keyInfoWire(k: KeyInfo) {
  return {
    keyId: k.keyId,
    suite: getSuite(k.suite).wireId,
    threshold: k.threshold,
    participants: k.participants,
    publicKey: k.publicKey,
    epoch: k.epoch,
    createdAt: k.createdAt,
  };
}

export async function startDeviceGateway(opts: GatewayOptions): Promise<StartedGateway> {
  const { coordinator, log } = opts;
  const clock = opts.clock ?? Date.now;
  const idleMs = opts.idleMs ?? 30_000;
  const clusterId = coordinator.clusterId;
  const maxClients = opts.maxClients ?? 100_000;
  const links = new Map<string, DeviceLink>();
  const replay = new ReplayLedger(opts.maxReplayNonces ?? 200_000);
  const pending = new Map<string, number>();
  const addresses = new ClientBuckets(opts.addressRate ?? DEFAULT_ADDRESS_RATE, maxClients);
  const deviceBuckets = new ClientBuckets(opts.deviceRate ?? DEFAULT_DEVICE_RATE, maxClients);
  const keygenBuckets = new ClientBuckets(opts.keygenRate ?? DEFAULT_KEYGEN_RATE, maxClients);

  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [id, l] of links) {
      if (now - l.lastPoll > idleMs + MAX_WAIT_MS) {
        links.delete(id);
        l.close('idle');
        coordinator.unregister(id, l);
        log?.info({ device: id }, 'device unlinked (idle)');
      }
    }
    replay.sweep(clock());
    addresses.sweep();
    deviceBuckets.sweep();
    for (const id of pending.keys()) if (!links.has(id) && !coordinator.device(id)) pending.delete(id);
  }, 5_000);
  sweep.unref();

  /** Refuses a device new to the per-device maps when they are full (revoked devices' entries are dropped first). */
  const admitDevice = (id: string): void => {
    if (pending.has(id) || links.has(id) || pending.size < maxClients) return;
    for (const d of pending.keys()) if (!links.has(d) && !coordinator.device(d)) pending.delete(d);
    if (pending.size >= maxClients)
      throw new GatewayError('RESOURCE_EXHAUSTED', 'the gateway tracks too many devices; retry later');
  };

  const limited = (r: 'limited' | 'full', buckets: ClientBuckets, key: string, who: string): GatewayError =>
    r === 'full'
      ? new GatewayError('RESOURCE_EXHAUSTED', 'the gateway tracks too many clients; retry later')
      : new GatewayError(
          'RATE_LIMITED',
          `too many calls from this ${who}; retry later`,
          buckets.retryAfterSeconds(key),
        );

  const linkOf = (info: ParticipantPublic): DeviceLink => {
    let l = links.get(info.id);
    if (!l) {
      l = new DeviceLink(info);
      links.set(info.id, l);
      coordinator.register(l);
      log?.info({ device: info.id }, 'device linked');
    }
    return l;
  };

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
        await coordinator.enrolDevice(e.token, info);
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
    switch (op) {
      case 'poll': {
        const p = decodeMessage('DevicePoll', call.body);
        admitDevice(info.id);
        if (p.bye) {
          const l = links.get(info.id);
          if (l) {
            l.deliver(p.results.map((r) => decodeLinkResult(r)));
            links.delete(info.id);
            l.close('device went offline');
            coordinator.unregister(info.id, l);
          }
          pending.set(info.id, p.pending);
          return encodeMessage('DeviceTasks', { tasks: [] });
        }
        const link = linkOf(info);
        pending.set(info.id, p.pending);
        link.deliver(p.results.map((r) => decodeLinkResult(r)));
        const tasks = await link.take(Math.min(Math.max(0, p.waitMs), MAX_WAIT_MS));
        return encodeMessage('DeviceTasks', { tasks: tasks.map(encodeLinkTask) });
      }
      case 'keygen': {
        const k = decodeMessage('KeygenRequest', call.body);
        const kr = keygenBuckets.take(info.id);
        if (kr !== 'ok') throw limited(kr, keygenBuckets, info.id, 'device (key generations)');
        const suite = suiteByWireId(k.suite);
        if (!suite) throw new GatewayError('INVALID_ARGUMENT', `unknown suite number ${k.suite}`);
        // No participants named: the device and every connected signer node (as the CLI's help says).
        const others = k.participants.length
          ? k.participants
          : coordinator.connected().filter((id) => !coordinator.device(id));
        const participants = [...new Set([info.id, ...others])];
        return encodeMessage(
          'KeyInfo',
          keyInfoWire(await coordinator.keygen({ suite: suite.id, threshold: k.threshold, participants })),
        );
      }
      case 'reserve': {
        const r = decodeMessage('DeviceReserve', call.body);
        const out = await coordinator.reserve(info.id, {
          keyId: r.keyId,
          count: r.count,
          cosigners: r.cosigners,
          ttlMs: r.ttlMs,
        });
        return encodeMessage('DeviceReserved', {
          slots: out.slots.map((s) => ({ reservations: s })),
          errors: out.errors,
        });
      }
      case 'submit': {
        const r = decodeMessage('SubmitPackageRequest', call.body);
        return encodeMessage('SubmitPackageResponse', await coordinator.completePackage(r.package));
      }
      case 'keys':
        return encodeMessage('DeviceKeys', { keys: coordinator.keysOf(info.id).map(keyInfoWire) });
      default:
        throw new GatewayError('NOT_FOUND', `no operation ${op}`);
    }
  }

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'content-type');
    res.setHeader('Access-Control-Max-Age', '600');
    if (req.method === 'OPTIONS') return void res.writeHead(204).end();
    const t0 = Date.now();
    const addr = req.socket.remoteAddress ?? 'unknown';
    const m = /^\/v1\/device\/([a-z]+)$/.exec(req.url ?? '');
    const op = m?.[1] ?? '';
    const fail = (e: unknown) => {
      const known =
        e instanceof GatewayError ||
        e instanceof CoordinatorError ||
        isTesseraError(e) ||
        (typeof (e as { code?: unknown })?.code === 'string' && /^[A-Z][A-Z_]+$/.test((e as { code: string }).code));
      const code = known ? (e as { code: string }).code : 'INTERNAL';
      const message = known ? (e as Error).message : 'internal error';
      const culprits = known ? [...((e as { culprits?: readonly string[] }).culprits ?? [])] : [];
      if (!known) log?.error({ err: (e as Error)?.message }, 'device gateway failure');
      if (e instanceof GatewayError && e.retryAfterSeconds > 0)
        res.setHeader('retry-after', String(e.retryAfterSeconds));
      opts.onCall?.(op || 'unknown', code, Date.now() - t0);
      res
        .writeHead(statusOf(code), { 'content-type': 'application/json' })
        .end(JSON.stringify({ code, message, culprits }));
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
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        fail(new GatewayError('PAYLOAD_TOO_LARGE', `body exceeds ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY) return;
      handle(op, new Uint8Array(Buffer.concat(chunks)), addr)
        .then((out) => {
          opts.onCall?.(op, 'OK', Date.now() - t0);
          res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(out);
        })
        .catch(fail);
    });
    req.on('error', () => {});
  };
  const server: Server = opts.tls
    ? createTlsServer({ cert: opts.tls.cert, key: opts.tls.key }, listener)
    : createServer(listener);
  server.requestTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const host = opts.host && opts.host !== '0.0.0.0' && opts.host !== '::' ? opts.host : '127.0.0.1';
  return {
    url: `${opts.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    linked: () => [...links.keys()].sort(),
    pendingByDevice: () => new Map(pending),
    stats: () => ({
      replayNonces: replay.size,
      addresses: addresses.size,
      rateLimitedDevices: deviceBuckets.size,
      devices: pending.size,
      linked: links.size,
    }),
    async close() {
      clearInterval(sweep);
      for (const [id, l] of links) {
        l.close('gateway closing');
        coordinator.unregister(id, l);
      }
      links.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

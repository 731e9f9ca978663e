/**
 * The device gateway: plain HTTP POSTs carrying protobuf, for devices (phones, browsers) that
 * can neither serve nor hold a gRPC stream. Every call is a DEVICE_CALL envelope signed by the
 * device's identity key, fresh (issued within ±5 minutes) and used once (its nonce is
 * remembered). The device's half of the participant link is a long poll: each poll carries the
 * results of earlier tasks and returns new ones, so a device takes part in DKGs like a node.
 *
 * Routes: POST /v1/device/{enrol|poll|keygen|reserve|submit|keys}. Replies: the op's response
 * message (200, application/x-protobuf) or the ErrorDetail JSON ({code, message, culprits})
 * with an HTTP status for its class. CORS is open: authentication is the signature, never a
 * cookie.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import {
  PayloadKind,
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
}

export interface StartedGateway {
  url: string;
  port: number;
  close(): Promise<void>;
  /** Devices currently linked (polling). */
  linked(): string[];
  /** Offline packages waiting on devices, as each linked device last reported. */
  pendingByDevice(): Map<string, number>;
}

const OPS = new Set(['enrol', 'poll', 'keygen', 'reserve', 'submit', 'keys']);
const MAX_BODY = 1 << 20;
const SKEW_MS = 5 * 60_000;
const MAX_WAIT_MS = 20_000;

const STATUS: Record<string, number> = {
  INVALID_ARGUMENT: 400, DECODE: 400, WRONG_SUITE: 400, UNSUPPORTED_VERSION: 400, BAD_SIGNATURE: 401, UNAUTHENTICATED: 401,
  POLICY_DENIED: 403, NOT_FOUND: 404, RESERVATION_USED: 409, RESERVATION_EXPIRED: 409, RESERVATION_UNKNOWN: 409, RESERVATION_INVALID: 409,
  BAD_SIGNATURE_SHARE: 422, PAYLOAD_TOO_LARGE: 413, RESOURCE_EXHAUSTED: 429, RATE_LIMITED: 429, UNAVAILABLE: 503, NO_QUORUM: 503,
  UNEXPECTED_MESSAGE: 400, NO_ALLOWANCE: 409, INVALID_STATE: 409, CONFIRMATION_MISMATCH: 409, EQUIVOCATION: 409, INTERNAL: 500,
};
/** A typed refusal not in the table is the caller's input: 400. Only INTERNAL is a 500. */
const statusOf = (code: string) => STATUS[code] ?? 400;

class GatewayError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** The device's end of the link, as the coordinator sees it: tasks wait for the next poll. */
class DeviceLink implements ParticipantHandle {
  readonly device = true;
  readonly connectedSince = Date.now();
  readonly #queue: LinkTask[] = [];
  readonly #pending = new Map<number, { resolve: (r: LinkResult) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
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
  return { keyId: k.keyId, suite: getSuite(k.suite).wireId, threshold: k.threshold, participants: k.participants, publicKey: k.publicKey, epoch: k.epoch, createdAt: k.createdAt };
}

export async function startDeviceGateway(opts: GatewayOptions): Promise<StartedGateway> {
  const { coordinator, log } = opts;
  const clock = opts.clock ?? Date.now;
  const idleMs = opts.idleMs ?? 30_000;
  const links = new Map<string, DeviceLink>();
  const seen = new Map<string, number>();
  const pending = new Map<string, number>();

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
    for (const [n, exp] of seen) if (exp < clock()) seen.delete(n);
  }, 5_000);
  sweep.unref();

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

  async function handle(op: string, body: Uint8Array): Promise<Uint8Array> {
    const env = openEnvelope(body, PayloadKind.DEVICE_CALL);
    const call = decodeMessage('DeviceCall', env.payload);
    if (call.version !== 1) throw new GatewayError('UNSUPPORTED_VERSION', `device call version ${call.version}`);
    if (call.op !== op) throw new GatewayError('INVALID_ARGUMENT', `call is for ${call.op}, posted to ${op}`);
    if (Math.abs(call.issuedAt - clock()) > SKEW_MS) throw new GatewayError('UNAUTHENTICATED', 'call is stale or from the future (check the device clock)');
    if (call.nonce.length !== 16) throw new GatewayError('INVALID_ARGUMENT', 'call nonce must be 16 bytes');
    const nonceKey = `${call.device}/${toHex(call.nonce)}`;
    if (seen.has(nonceKey)) throw new GatewayError('UNAUTHENTICATED', 'call replayed');
    if (op === 'enrol') {
      const e = decodeMessage('DeviceEnrol', call.body);
      if (!e.participant) throw new GatewayError('INVALID_ARGUMENT', 'missing participant');
      const info = participantFromWire(e.participant);
      if (info.id !== call.device || !equalBytes(info.signKey, env.sender)) throw new GatewayError('UNAUTHENTICATED', 'enrolment not signed by the enrolling identity');
      seen.set(nonceKey, clock() + 2 * SKEW_MS);
      await coordinator.enrolDevice(e.token, info);
      return encodeMessage('DeviceEnrolled', { device: info.id, coordinator: 'tessera' });
    }
    const info = coordinator.device(call.device);
    if (!info) throw new GatewayError('UNAUTHENTICATED', `device ${call.device.slice(0, 64)} is not enrolled`);
    if (!equalBytes(info.signKey, env.sender)) throw new GatewayError('UNAUTHENTICATED', 'call not signed by the enrolled device key');
    seen.set(nonceKey, clock() + 2 * SKEW_MS);
    switch (op) {
      case 'poll': {
        const p = decodeMessage('DevicePoll', call.body);
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
        const suite = suiteByWireId(k.suite);
        if (!suite) throw new GatewayError('INVALID_ARGUMENT', `unknown suite number ${k.suite}`);
        const participants = [...new Set([info.id, ...k.participants])];
        return encodeMessage('KeyInfo', keyInfoWire(await coordinator.keygen({ suite: suite.id, threshold: k.threshold, participants })));
      }
      case 'reserve': {
        const r = decodeMessage('DeviceReserve', call.body);
        const out = await coordinator.reserve(info.id, { keyId: r.keyId, count: r.count, cosigners: r.cosigners, ttlMs: r.ttlMs });
        return encodeMessage('DeviceReserved', { slots: out.slots.map((s) => ({ reservations: s })), errors: out.errors });
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
    const m = /^\/v1\/device\/([a-z]+)$/.exec(req.url ?? '');
    const op = m?.[1] ?? '';
    const fail = (e: unknown) => {
      const known = e instanceof GatewayError || e instanceof CoordinatorError || isTesseraError(e) || typeof (e as { code?: unknown })?.code === 'string' && /^[A-Z][A-Z_]+$/.test((e as { code: string }).code);
      const code = known ? (e as { code: string }).code : 'INTERNAL';
      const message = known ? (e as Error).message : 'internal error';
      const culprits = known ? [...(((e as { culprits?: readonly string[] }).culprits) ?? [])] : [];
      if (!known) log?.error({ err: (e as Error)?.message }, 'device gateway failure');
      opts.onCall?.(op || 'unknown', code, Date.now() - t0);
      res.writeHead(statusOf(code), { 'content-type': 'application/json' }).end(JSON.stringify({ code, message, culprits }));
    };
    if (req.method !== 'POST' || !OPS.has(op)) return fail(new GatewayError('NOT_FOUND', 'POST /v1/device/{enrol|poll|keygen|reserve|submit|keys}'));
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
      handle(op, new Uint8Array(Buffer.concat(chunks)))
        .then((out) => {
          opts.onCall?.(op, 'OK', Date.now() - t0);
          res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(out);
        })
        .catch(fail);
    });
    req.on('error', () => {});
  };
  const server: Server = opts.tls ? createTlsServer({ cert: opts.tls.cert, key: opts.tls.key }, listener) : createServer(listener);
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

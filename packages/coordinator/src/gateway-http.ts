/**
 * The device gateway's HTTP framing: routes (POST /v1/device/{op}), open CORS, a request body
 * read up to its cap, replies (the op's protobuf with 200, or the ErrorDetail JSON
 * `{code, message, culprits}` with the HTTP status of its code and, when rate limited,
 * Retry-After), and the listening server (HTTP, or HTTPS with a certificate).
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { TesseraError, isTesseraError, type ErrorCode } from '@tessera/core';
import type { Logger } from 'pino';
import type { ClientBuckets } from './gateway-limits.js';
import { CoordinatorError } from './types.js';

/** The operations a device may post. */
export const OPS = new Set(['enrol', 'poll', 'keygen', 'reserve', 'submit', 'keys', 'packages']);
/** Largest request body (bytes). */
export const MAX_BODY = 1 << 20;

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
  BAD_MULTIPLICATION: 422,
  BAD_COMMITMENT: 422,
  PAYLOAD_TOO_LARGE: 413,
  RESOURCE_EXHAUSTED: 429,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  NO_QUORUM: 503,
  UNEXPECTED_MESSAGE: 400,
  NO_ALLOWANCE: 409,
  OVER_ALLOWANCE: 409,
  PAYMENT_MISMATCH: 400,
  INVALID_STATE: 409,
  CONFIRMATION_MISMATCH: 409,
  EQUIVOCATION: 409,
  INTERNAL: 500,
};
/** A typed refusal not in the table is the caller's input: 400. Only INTERNAL is a 500. */
export const statusOf = (code: string) => STATUS[code] ?? 400;

/** A refusal of the gateway itself (with the seconds a rate-limited client should wait). */
export class GatewayError extends TesseraError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly retryAfterSeconds = 0,
  ) {
    super(code, message);
  }
}

/** The refusal of a call a client's bucket did not admit: rate limited, or too many clients tracked. */
export function limited(r: 'limited' | 'full', buckets: ClientBuckets, key: string, who: string): GatewayError {
  return r === 'full'
    ? new GatewayError('RESOURCE_EXHAUSTED', 'the gateway tracks too many clients; retry later')
    : new GatewayError('RATE_LIMITED', `too many calls from this ${who}; retry later`, buckets.retryAfterSeconds(key));
}

/** Open CORS: authentication is the call's signature, never a cookie. */
export function allowCors(res: ServerResponse): void {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
  res.setHeader('Access-Control-Allow-Headers', 'content-type');
  res.setHeader('Access-Control-Max-Age', '600');
}

/** The op a request posts to (`/v1/device/{op}`), or '' for any other path. */
export function opOf(url: string | undefined): string {
  return /^\/v1\/device\/([a-z]+)$/.exec(url ?? '')?.[1] ?? '';
}

/** An error as the ErrorDetail a client is told: typed refusals as they are, anything else INTERNAL (and logged). */
export function errorDetail(e: unknown, log?: Logger): { code: string; message: string; culprits: string[] } {
  const known =
    e instanceof GatewayError ||
    e instanceof CoordinatorError ||
    isTesseraError(e) ||
    (typeof (e as { code?: unknown })?.code === 'string' && /^[A-Z][A-Z_]+$/.test((e as { code: string }).code));
  const code = known ? (e as { code: string }).code : 'INTERNAL';
  const message = known ? (e as Error).message : 'internal error';
  const culprits = known ? [...((e as { culprits?: readonly string[] }).culprits ?? [])] : [];
  if (!known) log?.error({ err: (e as Error)?.message }, 'device gateway failure');
  return { code, message, culprits };
}

/** Answers with the ErrorDetail JSON, the HTTP status of its code and, for a rate-limited call, Retry-After. */
export function replyError(
  res: ServerResponse,
  e: unknown,
  detail: { code: string; message: string; culprits: string[] },
): void {
  if (e instanceof GatewayError && e.retryAfterSeconds > 0) res.setHeader('retry-after', String(e.retryAfterSeconds));
  res.writeHead(statusOf(detail.code), { 'content-type': 'application/json' }).end(JSON.stringify(detail));
}

/** Answers with the op's response message. */
export function replyOk(res: ServerResponse, body: Uint8Array): void {
  res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(body);
}

/**
 * Reads a request body of at most {@link MAX_BODY} bytes into `done`; a larger one is refused
 * through `fail` (PAYLOAD_TOO_LARGE) as soon as it is past the cap, and the request destroyed.
 */
export function readBody(
  req: IncomingMessage,
  done: (body: Uint8Array) => void,
  fail: (e: GatewayError) => void,
): void {
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
    done(new Uint8Array(Buffer.concat(chunks)));
  });
  req.on('error', () => {});
}

/** Starts the server (HTTPS with `tls`, else HTTP) on `host` (default loopback) and `port` (0: any free one). */
export async function listen(
  opts: { host?: string | undefined; port: number; tls?: { cert: string | Buffer; key: string | Buffer } | undefined },
  listener: RequestListener,
): Promise<{ server: Server; url: string; port: number }> {
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
  return { server, url: `${opts.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`, port };
}

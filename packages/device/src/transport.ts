/**
 * How the device SDK reaches the device gateway: one POST of bytes, bytes back. The default is
 * `fetch` (Node 20+, browsers, React Native); an app can pass its own (a native HTTP stack, a
 * test double, a proxy). A transport resolves with whatever HTTP status the gateway answered and
 * rejects only when there is no answer — with {@link TransportError} `sent: false` when it knows
 * nothing left the device (the gateway client may then try another coordinator replica even for
 * a call that must not be repeated).
 */

export interface TransportRequest {
  /** `https://host:port/v1/device/<op>` */
  readonly url: string;
  /** The signed DEVICE_CALL envelope. */
  readonly body: Uint8Array;
  /** Aborted on the call's deadline or the caller's cancellation. */
  readonly signal: AbortSignal;
}

export interface TransportResponse {
  readonly status: number;
  readonly body: Uint8Array;
}

export type Transport = (request: TransportRequest) => Promise<TransportResponse>;

/** No answer from the gateway; `sent: false` when the request certainly never left. */
export class TransportError extends Error {
  constructor(
    readonly sent: boolean,
    message: string,
  ) {
    super(message);
    this.name = 'TransportError';
  }
}

/** Connection errors raised before anything was sent (Node's fetch names them in `cause.code`). */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/** The default transport: `fetch`. */
export const fetchTransport: Transport = async ({ url, body, signal }) => {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf' },
      body: body as Uint8Array<ArrayBuffer>,
      signal,
    });
    // The body is read here too, so a connection that breaks mid-answer counts as no answer.
    return { status: res.status, body: new Uint8Array(await res.arrayBuffer()) };
  } catch (e) {
    if (signal.aborted) throw e;
    const code = (e as { cause?: { code?: unknown } }).cause?.code;
    throw new TransportError(!(typeof code === 'string' && NOT_SENT.has(code)), 'no answer from the gateway');
  }
};

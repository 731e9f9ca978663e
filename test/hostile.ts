/**
 * A hostile coordinator for tests: a gRPC server of our own that speaks ParticipantLink to REAL
 * signer processes. It answers each link's challenge like the real coordinator, records the
 * hellos, and then sends whatever tasks a test likes, to whichever linked signer it names.
 */
import { randomBytes } from 'node:crypto';
import type { LinkResult } from '@tessera/core';
import { loadTessera, serverCredentials, startServer, type StartedServer } from '@tessera/runtime';

export interface HelloMsg {
  participant: { id: string; signKey: Uint8Array; encKey: Uint8Array };
  signature: Uint8Array;
  metricsUrl: string;
  pid: number;
  keys: string[];
}

export interface Hostile {
  server: StartedServer;
  /** Every link opened so far: the challenge nonce sent and the hello received. */
  links: { nonce: Uint8Array; hello?: HelloMsg }[];
  /** The first hello (resolves once a signer has authenticated). */
  hello: Promise<{ nonce: Uint8Array; hello: HelloMsg }>;
  /** Resolves once `id` has linked. */
  linked(id: string): Promise<HelloMsg>;
  /** Writes one task (only the given oneof field set, as the real coordinator does) to the first linked signer and awaits its result. */
  send(body: Record<string, unknown>): Promise<LinkResult>;
  /** The same, to signer `id`. */
  sendTo(id: string, body: Record<string, unknown>): Promise<LinkResult>;
}

type Stream = import('@tessera/runtime').grpc.ServerDuplexStream<
  { hello?: HelloMsg | null; result?: LinkResult | null },
  Record<string, unknown>
>;

export async function startHostileCoordinator(
  tls: Parameters<typeof serverCredentials>[0],
  taskTimeoutMs = 10_000,
): Promise<Hostile> {
  const t = loadTessera();
  const links: Hostile['links'] = [];
  const pending = new Map<
    number,
    { resolve: (r: LinkResult) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  const streams = new Map<string, Stream>();
  const waiters = new Map<string, ((h: HelloMsg) => void)[]>();
  const hellos = new Map<string, HelloMsg>();
  let first: string | undefined;
  let nextTask = 1;
  let onHello!: (h: { nonce: Uint8Array; hello: HelloMsg }) => void;
  const hello = new Promise<{ nonce: Uint8Array; hello: HelloMsg }>((r) => (onHello = r));

  const Connect = (call: Stream) => {
    const link: Hostile['links'][number] = { nonce: new Uint8Array(randomBytes(32)) };
    links.push(link);
    call.write({ challenge: { nonce: link.nonce, coordinator: 'hostile' } });
    call.on('data', (msg: { hello?: HelloMsg | null; result?: LinkResult | null }) => {
      if (!link.hello) {
        if (!msg.hello) return;
        link.hello = msg.hello;
        const id = msg.hello.participant.id;
        streams.set(id, call);
        hellos.set(id, msg.hello);
        first ??= id;
        onHello({ nonce: link.nonce, hello: msg.hello });
        for (const w of waiters.get(id) ?? []) w(msg.hello);
        waiters.delete(id);
        return;
      }
      const r = msg.result;
      if (!r) return;
      const p = pending.get(Number(r.taskId));
      if (!p) return;
      pending.delete(Number(r.taskId));
      clearTimeout(p.timer);
      p.resolve(r);
    });
    call.on('end', () => call.end());
    call.on('error', () => {});
  };

  const server = await startServer({
    port: 0,
    credentials: serverCredentials(tls),
    services: [
      { definition: t.participantLinkService, implementation: { Connect }, name: 'tessera.v1.ParticipantLink' },
    ],
  });

  const sendTo = (id: string, body: Record<string, unknown>): Promise<LinkResult> => {
    const s = streams.get(id);
    if (!s) return Promise.reject(new Error(`${id} is not linked`));
    const taskId = nextTask++;
    return new Promise<LinkResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(taskId);
        reject(
          new Error(
            `task ${taskId} (${Object.keys(body).join(',')}) to ${id} got no result within ${taskTimeoutMs} ms`,
          ),
        );
      }, taskTimeoutMs);
      pending.set(taskId, { resolve, reject, timer });
      s.write({ task: { taskId, ...body } });
    });
  };

  return {
    server,
    links,
    hello,
    linked(id) {
      const h = hellos.get(id);
      if (h) return Promise.resolve(h);
      return new Promise((r) => waiters.set(id, [...(waiters.get(id) ?? []), r]));
    },
    send: (body) => (first ? sendTo(first, body) : Promise.reject(new Error('the signer is not linked'))),
    sendTo,
  };
}

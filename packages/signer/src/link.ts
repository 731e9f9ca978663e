/**
 * The signer's outbound link: dials the coordinator, answers its challenge with a hello signed
 * by the node's identity key, then serves tasks through the {@link SignerEngine}. Reconnects
 * with capped exponential backoff. The node needs no inbound port.
 */
import { LINK_DST, concatBytes, participantToWire, utf8ToBytes, type LinkResult, type LinkTask } from '@tessera/core';
import { type grpc, loadTessera } from '@tessera/runtime';
import type { Logger } from 'pino';
import type { SignerEngine } from './engine.js';

export interface LinkOptions {
  engine: SignerEngine;
  /**
   * host:port of the coordinator; several, comma-separated, for replicas sharing one PostgreSQL
   * (only the leader listens: a failed dial moves on to the next address).
   */
  address: string;
  credentials: grpc.ChannelCredentials;
  metricsUrl?: string;
  log?: Logger;
  /** Called whenever the link goes up or down. */
  onState?: (connected: boolean) => void;
}

interface LinkDownMsg {
  challenge?: { nonce: Uint8Array } | null;
  task?: LinkTask | null;
}

/** Strips the `body` discriminator so only the chosen oneof field is written. */
function resultMessage(r: LinkResult): Record<string, unknown> {
  const out: Record<string, unknown> = { taskId: r.taskId };
  if (r.body) out[r.body] = (r as unknown as Record<string, unknown>)[r.body];
  return out;
}

/** Runs the link until `stop()`; returns the stopper. */
export function runLink(opts: LinkOptions): { stop(): void; connected(): boolean } {
  const { ParticipantLink } = loadTessera();
  const addresses = opts.address
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  const clients = addresses.map(
    (address) =>
      new ParticipantLink(address, opts.credentials, {
        // Notice a dead coordinator within ~20 s, and reconnect promptly once it is back.
        'grpc.keepalive_time_ms': 15_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.keepalive_permit_without_calls': 1,
        'grpc.initial_reconnect_backoff_ms': 250,
        'grpc.max_reconnect_backoff_ms': 5_000,
      }),
  );
  let current = 0;
  let stopped = false;
  let up = false;
  let attempt = 0;
  let stream: grpc.ClientDuplexStream<Record<string, unknown>, LinkDownMsg> | undefined;
  let timer: NodeJS.Timeout | undefined;

  const connect = () => {
    if (stopped) return;
    const client = clients[current]!;
    const s = (
      client as unknown as { Connect(): grpc.ClientDuplexStream<Record<string, unknown>, LinkDownMsg> }
    ).Connect();
    stream = s;
    s.on('data', (msg: LinkDownMsg) => {
      if (msg.challenge) {
        void (async () => {
          await opts.engine.discardFreshNonces();
          const keys = await opts.engine.keys();
          s.write({
            hello: {
              participant: participantToWire(opts.engine.identity.public),
              signature: opts.engine.identity.sign(concatBytes(utf8ToBytes(LINK_DST), msg.challenge!.nonce)),
              metricsUrl: opts.metricsUrl ?? '',
              pid: process.pid,
              keys,
            },
          });
          attempt = 0;
          up = true;
          opts.onState?.(true);
          opts.log?.info({ coordinator: addresses[current] }, 'linked to coordinator');
        })().catch((e: unknown) => {
          opts.log?.error({ err: (e as Error).message }, 'hello failed');
          // Never leave the link half-open (the coordinator would wait for a hello for ever):
          // drop it and retry with backoff; the error repeats in the log while the store is broken.
          s.cancel();
        });
        return;
      }
      const task = msg.task;
      if (task)
        void opts.engine
          .handle({ ...task, taskId: Number(task.taskId) })
          .then((r) => s.write({ result: resultMessage(r) }));
    });
    const down = (why: string) => {
      if (stream !== s) return;
      stream = undefined;
      let backoff = true;
      if (up) opts.log?.warn({ why }, 'coordinator link lost');
      else {
        // A dial that never got linked tries the next address (a standby replica does not
        // listen); the backoff grows once per round of every address, so a replica that has just
        // taken over is found within a few hundred ms.
        current = (current + 1) % clients.length;
        backoff = current === 0;
      }
      up = false;
      opts.onState?.(false);
      if (stopped) return;
      const delay = Math.min(5_000, 100 * 2 ** (backoff ? attempt++ : attempt));
      timer = setTimeout(connect, delay);
    };
    s.on('error', (e: Error) => down(e.message));
    s.on('end', () => down('ended'));
  };
  connect();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      stream?.cancel();
      for (const c of clients) c.close();
    },
    connected: () => up,
  };
}

/**
 * gRPC wiring of the coordinator: the Coordinator API service and the ParticipantLink service
 * that signer nodes dial into. All protocol logic lives in {@link Coordinator}.
 */
import { randomBytes } from 'node:crypto';
import {
  LINK_DST,
  concatBytes,
  encodeMessage,
  encodeKeyRecord,
  equalBytes,
  participantFromWire,
  suiteByWireId,
  utf8ToBytes,
  verifyParticipantSignature,
  type LinkResult,
  type LinkTask,
  type WireEnvelope,
} from '@tessera/core';
import {
  TesseraRuntimeError,
  toServiceError,
  type grpc,
  handleUnary,
  loadTessera,
  peerCommonName,
  startServer,
  type StartedServer,
} from '@tessera/runtime';
import type { Logger } from 'pino';
import { type Coordinator, CoordinatorError, type ParticipantHandle } from './coordinator.js';
import { keyInfoToWire } from './types.js';

export interface CoordinatorServerOptions {
  coordinator: Coordinator;
  host?: string;
  port: number;
  credentials: grpc.ServerCredentials;
  /** If set, only these participant ids may link (an API client's certificate cannot join DKGs). */
  participants?: readonly string[];
  /** With mTLS: a participant's certificate CN must equal its participant id. */
  requirePeerName?: boolean;
  log?: Logger;
  metricsUrl?: string;
  version?: string;
}

/** Strips the proto-loader `body` discriminator so only the chosen oneof field is written. */
function taskMessage(taskId: number, task: Omit<LinkTask, 'taskId'>): Record<string, unknown> {
  const out: Record<string, unknown> = { taskId };
  if (task.body) out[task.body] = (task as Record<string, unknown>)[task.body];
  return out;
}

interface LinkUpMsg {
  hello?: {
    participant?: { id: string; signKey: Uint8Array; encKey: Uint8Array };
    signature: Uint8Array;
    metricsUrl: string;
    pid: number;
    keys: string[];
  } | null;
  result?: LinkResult | null;
}

/** Which participants may link now, and how to drop a linked one (a reloaded allowlist). */
interface LinkAdmission {
  allowed: readonly string[] | undefined;
  readonly links: Map<string, (why: string) => void>;
}

/** Serves one participant stream: challenge, authenticated hello, then tasks and results. */
function participantLink(opts: CoordinatorServerOptions, admission: LinkAdmission) {
  const { coordinator, log } = opts;
  return (call: grpc.ServerDuplexStream<LinkUpMsg, Record<string, unknown>>) => {
    const nonce = new Uint8Array(randomBytes(32));
    const pending = new Map<
      number,
      { resolve: (r: LinkResult) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
    >();
    let handle: ParticipantHandle | undefined;
    let nextTask = 1;
    let closed = false;
    const close = (why: string) => {
      if (closed) return;
      closed = true;
      for (const p of pending.values()) {
        clearTimeout(p.timer);
        p.reject(new CoordinatorError('UNAVAILABLE', `link closed: ${why}`));
      }
      pending.clear();
      if (handle) {
        if (admission.links.get(handle.info.id) === drop) admission.links.delete(handle.info.id);
        coordinator.unregister(handle.info.id, handle);
        log?.info({ participant: handle.info.id, why }, 'participant disconnected');
      }
    };
    const drop = (why: string) => {
      call.emit('error', toServiceError(new TesseraRuntimeError('UNAUTHENTICATED', why)));
      close(why);
      call.end();
    };
    call.write({ challenge: { nonce, coordinator: 'tessera' } });
    call.on('data', (msg: LinkUpMsg) => {
      if (closed) return;
      try {
        if (!handle) {
          const h = msg.hello;
          if (!h?.participant) throw new TesseraRuntimeError('UNAUTHENTICATED', 'expected hello');
          const info = participantFromWire(h.participant);
          if (!verifyParticipantSignature(info.signKey, concatBytes(utf8ToBytes(LINK_DST), nonce), h.signature))
            throw new TesseraRuntimeError('UNAUTHENTICATED', `hello of ${info.id} is not signed by its key`);
          // The hello proves possession of the key it carries; that key must also be the one this
          // cluster already knows for the id (a key's roster, an enrolled device), or anyone able
          // to dial as the id could displace the real participant with a key of its own.
          const known = coordinator.knownSignKey(info.id);
          if (known && !equalBytes(known, info.signKey))
            throw new TesseraRuntimeError(
              'UNAUTHENTICATED',
              `hello of ${info.id} carries a signing key other than the one its key roster names`,
            );
          if (admission.allowed && !admission.allowed.includes(info.id))
            throw new TesseraRuntimeError('UNAUTHENTICATED', `${info.id} is not an allowed participant`);
          if (opts.requirePeerName) {
            const cn = peerCommonName(call);
            if (cn !== info.id)
              throw new TesseraRuntimeError(
                'UNAUTHENTICATED',
                `certificate CN ${cn ?? '(none)'} does not match participant ${info.id}`,
              );
          }
          const self: ParticipantHandle = {
            info,
            connectedSince: Date.now(),
            ...(h.metricsUrl ? { metricsUrl: h.metricsUrl } : {}),
            ...(h.pid ? { pid: h.pid } : {}),
            call(task, timeoutMs) {
              if (closed) return Promise.reject(new CoordinatorError('UNAVAILABLE', `${info.id} is disconnected`));
              const taskId = nextTask++;
              return new Promise<LinkResult>((resolve, reject) => {
                const timer = setTimeout(() => {
                  pending.delete(taskId);
                  reject(new CoordinatorError('UNAVAILABLE', `${info.id} did not answer within ${timeoutMs} ms`));
                }, timeoutMs);
                pending.set(taskId, { resolve, reject, timer });
                call.write({ task: taskMessage(taskId, task) });
              });
            },
          };
          handle = self;
          coordinator.register(self);
          admission.links.set(info.id, drop);
          log?.info({ participant: info.id, pid: h.pid }, 'participant connected');
          return;
        }
        const r = msg.result;
        if (!r) return;
        const p = pending.get(Number(r.taskId));
        if (!p) return;
        pending.delete(Number(r.taskId));
        clearTimeout(p.timer);
        p.resolve(r);
      } catch (e) {
        log?.warn({ err: (e as Error).message }, 'participant link refused');
        call.emit('error', toServiceError(e));
        close('refused');
        call.end();
      }
    });
    call.on('end', () => {
      close('stream ended');
      call.end();
    });
    call.on('error', () => close('stream error'));
    call.on('cancelled', () => close('cancelled'));
  };
}

/** The running coordinator server. */
export interface StartedCoordinatorServer extends StartedServer {
  /**
   * Puts a reloaded participant allowlist in force (undefined = any participant with a valid
   * certificate): from now on only these ids may link, and linked participants no longer on it
   * are disconnected (UNAUTHENTICATED). Returns the ids it disconnected.
   */
  setParticipants(ids: readonly string[] | undefined): string[];
}

/** Starts the coordinator's gRPC server (API + participant link + health + reflection). */
export async function startCoordinatorServer(opts: CoordinatorServerOptions): Promise<StartedCoordinatorServer> {
  const { coordinator } = opts;
  const admission: LinkAdmission = { allowed: opts.participants, links: new Map() };
  const t = loadTessera();
  const onError = (e: unknown) =>
    opts.log?.debug({ code: (e as { code?: string }).code, err: (e as Error).message }, 'request failed');
  const api: grpc.UntypedServiceImplementation = {
    Keygen: handleUnary(
      async (req: { suite: number; threshold: number; participants: string[] }) => {
        const suite = suiteByWireId(req.suite);
        if (!suite) throw new TesseraRuntimeError('INVALID_ARGUMENT', `unknown suite number ${req.suite}`);
        return keyInfoToWire(
          await coordinator.keygen({ suite: suite.id, threshold: req.threshold, participants: req.participants }),
        );
      },
      { onError },
    ),
    Sign: handleUnary(
      async (req: { intent: WireEnvelope | null; signers: string[] }) => {
        if (!req.intent) throw new TesseraRuntimeError('INVALID_ARGUMENT', 'missing intent');
        const intent = encodeMessage('Envelope', req.intent);
        const r = await coordinator.sign(intent, req.signers);
        return {
          keyId: r.keyId,
          signature: r.signature,
          signers: r.signers,
          publicKey: r.publicKey,
          requestId: r.requestId,
        };
      },
      { onError },
    ),
    IssueEnrolmentToken: handleUnary(
      async (req: { ttlMs: number; label: string }) =>
        coordinator.issueEnrolmentToken(req.ttlMs || undefined, req.label),
      { onError },
    ),
    SubmitPackage: handleUnary(
      async (req: { package: Uint8Array }) => {
        if (!(req.package instanceof Uint8Array) || req.package.length === 0)
          throw new TesseraRuntimeError('INVALID_ARGUMENT', 'missing package');
        return coordinator.completePackage(new Uint8Array(req.package));
      },
      { onError },
    ),
    Refresh: handleUnary(
      async (req: { keyId: string; authorisation?: Uint8Array }) =>
        keyInfoToWire(
          await coordinator.refresh(
            String(req.keyId),
            ...(bytesOf(req.authorisation).length ? [bytesOf(req.authorisation)] : []),
          ),
        ),
      { onError },
    ),
    ListPackages: handleUnary(
      async (req: { device: string; state: string; limit: number }) =>
        coordinator.listPackages({
          device: String(req.device ?? ''),
          state: String(req.state ?? ''),
          limit: Number(req.limit ?? 0),
        }),
      { onError },
    ),
    RevokeDevice: handleUnary(
      async (req: { device: string; authorisation?: Uint8Array }) =>
        coordinator.revokeWithOperators(String(req.device), bytesOf(req.authorisation)),
      { onError },
    ),
    GetDevice: handleUnary(async (req: { device: string }) => coordinator.deviceAdmission(String(req.device)), {
      onError,
    }),
    AdmitDevice: handleUnary(
      async (req: { device: string; approvals: Uint8Array[] }) =>
        coordinator.admitDevice(
          String(req.device),
          (req.approvals ?? []).map((a) => new Uint8Array(a)),
        ),
      { onError },
    ),
    PrepareLifecycle: handleUnary(
      async (req: {
        keyId: string;
        operation: string;
        threshold: number;
        participants: string[];
        revoke: string[];
        ttlMs: number;
        allowThresholdDecrease: boolean;
        allowUnpinned: string[];
        anyEpoch: boolean;
      }) => ({
        authorisation: coordinator.prepareLifecycle({
          ...req,
          keyId: String(req.keyId),
          operation: String(req.operation),
          ttlMs: Number(req.ttlMs) || undefined,
        }),
      }),
      { onError },
    ),
    Reshare: handleUnary(
      async (req: {
        keyId: string;
        threshold: number;
        participants: string[];
        revoke: string[];
        authorisation?: Uint8Array;
      }) => {
        const k = await coordinator.reshare(String(req.keyId), {
          threshold: req.threshold,
          participants: req.participants,
          authorisation: bytesOf(req.authorisation),
        });
        for (const d of req.revoke ?? []) await coordinator.revokeDevice(d);
        return keyInfoToWire(k);
      },
      { onError },
    ),
    GetKey: handleUnary(
      async (req: { keyId: string }) => ({ keyRecord: encodeKeyRecord(coordinator.key(String(req.keyId))) }),
      { onError },
    ),
    ListKeys: handleUnary(async () => ({ keys: coordinator.keys().map(keyInfoToWire) }), { onError }),
    AuditVerify: handleUnary(async () => coordinator.auditAll(), { onError }),
    Status: handleUnary(
      async () => {
        const keys = coordinator.keys();
        const ids = new Set([
          ...coordinator.connected(),
          ...coordinator.devices(),
          ...keys.flatMap((k) => k.participants),
        ]);
        return {
          version: opts.version ?? '0.1.0',
          keys: keys.length,
          startedAt: coordinator.startedAt,
          metricsUrl: opts.metricsUrl ?? '',
          pid: process.pid,
          participants: [...ids].sort().map((id) => {
            const h = coordinator.participant(id);
            return {
              id,
              connected: !!h,
              connectedSince: h?.connectedSince ?? 0,
              keys: keys.filter((k) => k.participants.includes(id)).length,
              pooledCommitments: coordinator.poolSize(id),
              metricsUrl: h?.metricsUrl ?? '',
              pid: h?.pid ?? 0,
              device: !!coordinator.device(id),
            };
          }),
        };
      },
      { onError },
    ),
  };
  const server = await startServer({
    ...(opts.host ? { host: opts.host } : {}),
    // Ping every linked participant: a signer whose host vanished (no FIN) is noticed within
    // ~15 s and unregistered, instead of when the kernel gives up on the TCP connection.
    options: {
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    },
    port: opts.port,
    credentials: opts.credentials,
    services: [
      { definition: t.coordinatorService, implementation: api, name: 'tessera.v1.Coordinator' },
      {
        definition: t.participantLinkService,
        implementation: { Connect: participantLink(opts, admission) },
        name: 'tessera.v1.ParticipantLink',
      },
    ],
  });
  return Object.assign(server, {
    setParticipants(ids: readonly string[] | undefined): string[] {
      admission.allowed = ids;
      const dropped = ids ? [...admission.links.keys()].filter((id) => !ids.includes(id)) : [];
      for (const id of dropped) admission.links.get(id)?.('no longer an allowed participant (configuration reloaded)');
      return dropped;
    },
  });
}

/** A bytes field as grpc-js delivers it (a Buffer, or absent) as a plain Uint8Array. */
function bytesOf(b: Uint8Array | undefined | null): Uint8Array {
  return b instanceof Uint8Array ? new Uint8Array(b) : new Uint8Array(0);
}

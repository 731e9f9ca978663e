/**
 * gRPC plumbing: the tessera.v1 service definitions (loaded from core's generated descriptor),
 * a server with health and reflection, and a promisified unary call.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { HealthImplementation } from 'grpc-health-check';
import { ReflectionService } from '@grpc/reflection';
import { descriptor } from '@tessera/core/descriptor';
import { fromServiceError } from './errors.js';

export { grpc };

/** proto-loader options every Tessera process uses (bytes decode to Buffer, the default). */
export const LOADER_OPTIONS: protoLoader.Options = Object.freeze({
  keepCase: false,
  longs: Number,
  enums: Number,
  defaults: true,
  oneofs: true,
  arrays: true,
});

export interface TesseraServices {
  packageDefinition: protoLoader.PackageDefinition;
  Coordinator: grpc.ServiceClientConstructor;
  ParticipantLink: grpc.ServiceClientConstructor;
  coordinatorService: grpc.ServiceDefinition;
  participantLinkService: grpc.ServiceDefinition;
}

let loaded: TesseraServices | undefined;

/**
 * Loads tessera.v1 from core's descriptor (both proto files) via `protoLoader.fromJSON`.
 * Loaded once per process; later calls return the same objects.
 */
export function loadTessera(): TesseraServices {
  if (loaded !== undefined) return loaded;
  // The descriptor is a protobufjs JSON namespace; `as const` makes its literal types too narrow for INamespace.
  const packageDefinition = protoLoader.fromJSON(
    descriptor as unknown as Parameters<typeof protoLoader.fromJSON>[0],
    LOADER_OPTIONS,
  );
  const root = grpc.loadPackageDefinition(packageDefinition);
  const v1 = (root.tessera as grpc.GrpcObject | undefined)?.v1 as grpc.GrpcObject | undefined;
  const Coordinator = v1?.Coordinator as grpc.ServiceClientConstructor | undefined;
  const ParticipantLink = v1?.ParticipantLink as grpc.ServiceClientConstructor | undefined;
  if (Coordinator === undefined || ParticipantLink === undefined) {
    throw new Error('tessera.v1 descriptor lacks the Coordinator or ParticipantLink service');
  }
  loaded = Object.freeze({
    packageDefinition,
    Coordinator,
    ParticipantLink,
    coordinatorService: Coordinator.service,
    participantLinkService: ParticipantLink.service,
  });
  return loaded;
}

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

export interface StartedServer {
  server: grpc.Server;
  port: number;
  health: { setStatus(service: string, status: ServingStatus): void };
  /** Graceful shutdown: stop accepting, wait up to graceMs (default 5000) for calls, then force. */
  close(graceMs?: number): Promise<void>;
}

function hostPort(host: string, port: number): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${h}:${port}`;
}

/**
 * Starts a grpc.Server on host:port (default host 127.0.0.1; port 0 = ephemeral) with the given
 * services, the standard health service (every given service name and '' SERVING) and server
 * reflection over the tessera.v1 package definition.
 */
export async function startServer(opts: {
  host?: string;
  port: number;
  credentials: grpc.ServerCredentials;
  services: Array<{
    definition: grpc.ServiceDefinition;
    implementation: grpc.UntypedServiceImplementation;
    name: string;
  }>;
  /** Extra grpc-js channel options (keepalive, message sizes). */
  options?: grpc.ServerOptions;
}): Promise<StartedServer> {
  const server = new grpc.Server(opts.options);
  for (const s of opts.services) server.addService(s.definition, s.implementation);

  const statusMap: Record<string, ServingStatus> = { '': 'SERVING' };
  for (const s of opts.services) statusMap[s.name] = 'SERVING';
  const healthImpl = new HealthImplementation(statusMap);
  healthImpl.addToServer(server);
  new ReflectionService(loadTessera().packageDefinition).addToServer(server);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(hostPort(opts.host ?? '127.0.0.1', opts.port), opts.credentials, (err, p) =>
      err ? reject(err) : resolve(p),
    );
  });

  let closing: Promise<void> | undefined;
  const close = (graceMs = 5000): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      for (const name of Object.keys(statusMap)) healthImpl.setStatus(name, 'NOT_SERVING');
      let done = false;
      const timer = setTimeout(
        () => {
          if (done) return;
          done = true;
          server.forceShutdown();
          resolve();
        },
        Math.max(0, graceMs),
      );
      timer.unref();
      server.tryShutdown(() => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve();
      });
    });
    return closing;
  };

  return {
    server,
    port,
    health: {
      setStatus(service, status) {
        statusMap[service] = status;
        healthImpl.setStatus(service, status);
      },
    },
    close,
  };
}

type UnaryMethod = (
  req: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: unknown) => void,
) => grpc.ClientUnaryCall;

/** Default deadline of {@link unary}, ms. */
export const DEFAULT_DEADLINE_MS = 30_000;

/**
 * Promisified unary call of `method` (the method's name on the client, e.g. 'Status') with a
 * deadline (default 30 s). Rejects with a {@link RemoteError} (see errors.ts).
 */
export function unary<Req, Res>(
  client: grpc.Client,
  method: string,
  req: Req,
  opts: { deadlineMs?: number; metadata?: grpc.Metadata } = {},
): Promise<Res> {
  const fn = (client as unknown as Record<string, unknown>)[method];
  if (typeof fn !== 'function') {
    return Promise.reject(new TypeError(`client has no method ${JSON.stringify(method)}`));
  }
  const deadline = new Date(Date.now() + (opts.deadlineMs ?? DEFAULT_DEADLINE_MS));
  return new Promise<Res>((resolve, reject) => {
    (fn as UnaryMethod).call(client, req, opts.metadata ?? new grpc.Metadata(), { deadline }, (err, res) => {
      if (err) reject(fromServiceError(err));
      else resolve(res as Res);
    });
  });
}

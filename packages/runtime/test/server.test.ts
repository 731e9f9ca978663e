import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProtocolError, decodeErrorStatus } from '@tessera/core';
import {
  ERROR_DETAIL_KEY,
  RemoteError,
  STATUS_DETAILS_KEY,
  TesseraRuntimeError,
  channelCredentials,
  fromServiceError,
  grpc,
  handleUnary,
  loadTessera,
  serverCredentials,
  startServer,
  unary,
} from '@tessera/runtime';
import { healthClient, reflectionClient } from './helpers.js';

const t = loadTessera();
const STATUS = {
  version: '0.1.0-test',
  keys: 2,
  participants: [
    {
      id: 'signer-1',
      connected: true,
      connectedSince: 1_700_000_000_000,
      keys: 2,
      pooledCommitments: 7,
      metricsUrl: 'http://127.0.0.1:9/metrics',
      pid: 11,
      lastSeen: 1_700_000_000_500,
      device: false,
    },
  ],
  startedAt: 1_700_000_000_000,
  metricsUrl: '',
  pid: 4242,
};

let srv: Awaited<ReturnType<typeof startServer>>;
let client: grpc.Client;
const handlerErrors: unknown[] = [];

beforeAll(async () => {
  srv = await startServer({
    port: 0,
    credentials: serverCredentials(),
    services: [
      {
        name: 'tessera.v1.Coordinator',
        definition: t.coordinatorService,
        implementation: {
          Status: handleUnary(async () => STATUS),
          Sign: handleUnary(
            async () => {
              throw new ProtocolError('BAD_SIGNATURE_SHARE', 'signature share of p2 does not verify', ['p2']);
            },
            { onError: (e) => handlerErrors.push(e) },
          ),
          Keygen: handleUnary(async () => {
            throw new Error('secret-xyz');
          }),
          ListKeys: handleUnary(async (_req, call) => {
            const wait = Number(call.metadata.get('x-wait-ms')[0] ?? 0);
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
            throw new TesseraRuntimeError('NOT_FOUND', 'no key k9');
          }),
        },
      },
    ],
  });
  client = new t.Coordinator(`127.0.0.1:${srv.port}`, channelCredentials());
});

afterAll(async () => {
  client?.close();
  await srv?.close(1000);
});

async function failure(p: Promise<unknown>): Promise<RemoteError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(RemoteError);
  return e as RemoteError;
}

describe('startServer + unary', () => {
  it('serves the Coordinator service with the loader options (camelCase, longs as numbers, defaults)', async () => {
    const res = await unary<object, typeof STATUS>(client, 'Status', {});
    expect(res).toEqual(STATUS);
  });

  it('a core ProtocolError reaches the client as RemoteError ABORTED with code and culprits', async () => {
    const e = await failure(unary(client, 'Sign', { intent: null, signers: [] }));
    expect(e.code).toBe('BAD_SIGNATURE_SHARE');
    expect(e.status).toBe(grpc.status.ABORTED);
    expect(e.status).toBe(10);
    expect(e.culprits).toEqual(['p2']);
    expect(e.message).toBe('signature share of p2 does not verify');
    expect(e.toJSON()).toMatchObject({ code: 'BAD_SIGNATURE_SHARE', status: 10, culprits: ['p2'] });
    expect(handlerErrors).toHaveLength(1);
  });

  it('an unknown error is INTERNAL and its message never reaches the client', async () => {
    const e = await failure(unary(client, 'Keygen', { suite: 1, threshold: 2, participants: [] }));
    expect(e.status).toBe(grpc.status.INTERNAL);
    expect(e.code).toBe('INTERNAL');
    expect(e.message).toBe('internal error');
    for (const text of [e.message, String(e.stack), JSON.stringify(e), inspect(e, { depth: 10, showHidden: true })]) {
      expect(text).not.toContain('secret-xyz');
    }
    // The raw grpc error (details and trailing metadata) carries nothing either.
    const raw = await new Promise<grpc.ServiceError>((resolve) => {
      (client as unknown as Record<string, (req: unknown, cb: (err: grpc.ServiceError) => void) => void>).Keygen!.call(
        client,
        {},
        (err) => resolve(err),
      );
    });
    expect(raw.code).toBe(grpc.status.INTERNAL);
    expect(raw.details).not.toContain('secret-xyz');
    const bin = raw.metadata.get(ERROR_DETAIL_KEY)[0];
    expect(Buffer.isBuffer(bin)).toBe(true);
    expect(JSON.parse((bin as Buffer).toString('utf8'))).toEqual({
      code: 'INTERNAL',
      message: 'internal error',
      culprits: [],
    });
    expect(inspect(raw, { depth: 10 })).not.toContain('secret-xyz');
  });

  it('the error travels as a standard google.rpc.Status in grpc-status-details-bin (and v0.1 reads the same)', async () => {
    const raw = await new Promise<grpc.ServiceError>((resolve) => {
      (client as unknown as Record<string, (req: unknown, cb: (err: grpc.ServiceError) => void) => void>).Sign!.call(
        client,
        {},
        (err) => resolve(err),
      );
    });
    const bin = raw.metadata.get(STATUS_DETAILS_KEY)[0];
    expect(Buffer.isBuffer(bin)).toBe(true);
    expect(decodeErrorStatus(bin as Buffer)).toEqual({
      status: grpc.status.ABORTED,
      code: 'BAD_SIGNATURE_SHARE',
      message: 'signature share of p2 does not verify',
      culprits: ['p2'],
    });
    expect((bin as Buffer).includes(Buffer.from('type.googleapis.com/google.rpc.ErrorInfo'))).toBe(true);
    const legacy = raw.metadata.get(ERROR_DETAIL_KEY)[0] as Buffer;
    expect(JSON.parse(legacy.toString('utf8'))).toMatchObject({ code: 'BAD_SIGNATURE_SHARE', culprits: ['p2'] });

    // A client reads either trailer alone: a standard-only server and a v0.1 server.
    const only = (key: string) => {
      const m = new grpc.Metadata();
      m.set(key, raw.metadata.get(key)[0] as Buffer);
      return fromServiceError({ code: raw.code, details: 'x', metadata: m });
    };
    for (const key of [STATUS_DETAILS_KEY, ERROR_DETAIL_KEY]) {
      expect(only(key)).toMatchObject({ code: 'BAD_SIGNATURE_SHARE', status: grpc.status.ABORTED, culprits: ['p2'] });
    }
    // Another domain's ErrorInfo, or garbage, is not taken for Tessera's: the status decides.
    const junk = new grpc.Metadata();
    junk.set(STATUS_DETAILS_KEY, Buffer.from([0xff, 0x01, 0x02]));
    expect(fromServiceError({ code: grpc.status.NOT_FOUND, details: 'gone', metadata: junk })).toMatchObject({
      code: 'NOT_FOUND',
      culprits: [],
    });
  });

  it('a TesseraRuntimeError maps by its code (NOT_FOUND)', async () => {
    const e = await failure(unary(client, 'ListKeys', {}));
    expect(e).toMatchObject({ code: 'NOT_FOUND', status: grpc.status.NOT_FOUND, message: 'no key k9' });
  });

  it('unary enforces its deadline (DEADLINE)', async () => {
    const md = new grpc.Metadata();
    md.set('x-wait-ms', '2000');
    const started = Date.now();
    const e = await failure(unary(client, 'ListKeys', {}, { deadlineMs: 150, metadata: md }));
    expect(e.code).toBe('DEADLINE');
    expect(e.status).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('unary rejects an unknown method name', async () => {
    await expect(unary(client, 'NoSuchMethod', {})).rejects.toThrow(TypeError);
  });

  it('health: every service and "" are SERVING; setStatus changes it', async () => {
    const Health = healthClient();
    const h = new Health(`127.0.0.1:${srv.port}`, channelCredentials());
    try {
      expect(await unary(h, 'Check', { service: '' })).toEqual({ status: 'SERVING' });
      expect(await unary(h, 'Check', { service: 'tessera.v1.Coordinator' })).toEqual({ status: 'SERVING' });
      srv.health.setStatus('tessera.v1.Coordinator', 'NOT_SERVING');
      expect(await unary(h, 'Check', { service: 'tessera.v1.Coordinator' })).toEqual({ status: 'NOT_SERVING' });
      srv.health.setStatus('tessera.v1.Coordinator', 'SERVING');
      await expect(unary(h, 'Check', { service: 'nope' })).rejects.toMatchObject({ status: grpc.status.NOT_FOUND });
    } finally {
      h.close();
    }
  });

  it('reflection lists tessera.v1.Coordinator and serves its file descriptor', async () => {
    const Reflection = reflectionClient();
    const r = new Reflection(`127.0.0.1:${srv.port}`, channelCredentials());
    try {
      const ask = (req: object) =>
        new Promise<Record<string, unknown>>((resolve, reject) => {
          const stream = (
            r as unknown as { serverReflectionInfo(): grpc.ClientDuplexStream<object, Record<string, unknown>> }
          ).serverReflectionInfo();
          stream.once('data', (d: Record<string, unknown>) => {
            resolve(d);
            stream.end();
          });
          stream.once('error', reject);
          stream.write(req);
        });
      const list = await ask({ listServices: '' });
      const names = ((list.listServicesResponse as { service: Array<{ name: string }> }).service ?? []).map(
        (s) => s.name,
      );
      expect(names).toContain('tessera.v1.Coordinator');
      expect(names).toContain('tessera.v1.ParticipantLink');
      const file = await ask({ fileContainingSymbol: 'tessera.v1.Coordinator' });
      const protos =
        (file.fileDescriptorResponse as { fileDescriptorProto: Buffer[] } | undefined)?.fileDescriptorProto ?? [];
      expect(protos.length).toBeGreaterThan(0);
      expect(Buffer.concat(protos).toString('latin1')).toContain('Coordinator');
    } finally {
      r.close();
    }
  });
});

describe('close', () => {
  it('completes, and the port stops answering', async () => {
    const s = await startServer({
      port: 0,
      credentials: serverCredentials(),
      services: [
        {
          name: 'tessera.v1.Coordinator',
          definition: t.coordinatorService,
          implementation: { Status: handleUnary(async () => STATUS) },
        },
      ],
    });
    const c = new t.Coordinator(`127.0.0.1:${s.port}`, channelCredentials());
    try {
      await unary(c, 'Status', {});
      await s.close();
      await s.close(); // idempotent
      const e = await failure(unary(c, 'Status', {}, { deadlineMs: 3000 }));
      expect(e.status).toBe(grpc.status.UNAVAILABLE);
    } finally {
      c.close();
    }
  });

  it('forces shutdown after the grace period when a call hangs', async () => {
    const s = await startServer({
      port: 0,
      credentials: serverCredentials(),
      services: [
        {
          name: 'tessera.v1.Coordinator',
          definition: t.coordinatorService,
          implementation: { Status: handleUnary(() => new Promise<never>(() => {})) },
        },
      ],
    });
    const c = new t.Coordinator(`127.0.0.1:${s.port}`, channelCredentials());
    try {
      const pending = unary(c, 'Status', {}, { deadlineMs: 20_000 }).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 200));
      const started = Date.now();
      await s.close(300);
      expect(Date.now() - started).toBeLessThan(5000);
      const e = await pending;
      expect(e).toBeInstanceOf(RemoteError);
    } finally {
      c.close();
    }
  });
});

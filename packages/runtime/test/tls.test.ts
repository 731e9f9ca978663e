import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RemoteError,
  channelCredentials,
  createDevPki,
  grpc,
  handleUnary,
  loadTessera,
  peerCommonName,
  serverCredentials,
  startServer,
  unary,
  type TlsFiles,
} from '@tessera/runtime';
import { healthClient } from './helpers.js';

const Health = healthClient();

let dir: string;
let otherDir: string;
let certs: Record<string, TlsFiles>;
let rogue: TlsFiles;
let srv: Awaited<ReturnType<typeof startServer>>;
let addr: string;
const seenCn: Array<string | undefined> = [];

function fingerprint(path: string): string {
  return new X509Certificate(readFileSync(path)).fingerprint256;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-pki-'));
  otherDir = await mkdtemp(join(tmpdir(), 'tessera-pki-other-'));
  certs = (await createDevPki(dir, ['coordinator', 'signer-1'])).certs;
  rogue = (await createDevPki(otherDir, ['signer-1'])).certs['signer-1']!;
  const t = loadTessera();
  srv = await startServer({
    port: 0,
    credentials: serverCredentials(certs.coordinator),
    services: [
      {
        name: 'tessera.v1.Coordinator',
        definition: t.coordinatorService,
        implementation: {
          Status: handleUnary(async (_req, call) => {
            const cn = peerCommonName(call);
            seenCn.push(cn);
            return { version: cn ?? '', keys: 0, participants: [], startedAt: 0, metricsUrl: '', pid: process.pid };
          }),
        },
      },
    ],
  });
  addr = `127.0.0.1:${srv.port}`;
});

afterAll(async () => {
  await srv?.close(1000);
  await rm(dir, { recursive: true, force: true });
  await rm(otherDir, { recursive: true, force: true });
});

describe('createDevPki', () => {
  it('writes a CA and CA-signed leaves with the expected names, SANs and key modes', async () => {
    const ca = new X509Certificate(await readFile(join(dir, 'ca.pem')));
    expect(ca.ca).toBe(true);
    const leaf = new X509Certificate(await readFile(certs['signer-1']!.cert));
    expect(leaf.subject).toBe('CN=signer-1');
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.subjectAltName).toContain('DNS:localhost');
    expect(leaf.subjectAltName).toContain('DNS:signer-1');
    expect(leaf.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(leaf.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
    expect(leaf.publicKey.asymmetricKeyType).toBe('ec');
    for (const p of [join(dir, 'ca-key.pem'), certs['signer-1']!.key, certs.coordinator!.key]) {
      expect((await stat(p)).mode & 0o777).toBe(0o600);
    }
  });

  it('is idempotent: the CA and existing leaves are reused; force reissues leaves only', async () => {
    const caFp = fingerprint(join(dir, 'ca.pem'));
    const leafFp = fingerprint(certs['signer-1']!.cert);
    const again = await createDevPki(dir, ['signer-1', 'signer-2'], { hosts: ['10.1.2.3', 'node-a.internal'] });
    expect(fingerprint(again.ca)).toBe(caFp);
    expect(fingerprint(again.certs['signer-1']!.cert)).toBe(leafFp);
    const s2 = new X509Certificate(readFileSync(again.certs['signer-2']!.cert));
    expect(s2.subjectAltName).toContain('IP Address:10.1.2.3');
    expect(s2.subjectAltName).toContain('DNS:node-a.internal');

    const forced = await createDevPki(dir, ['signer-2'], { force: true });
    expect(fingerprint(forced.ca)).toBe(caFp);
    expect(fingerprint(forced.certs['signer-2']!.cert)).not.toBe(s2.fingerprint256);
  });

  it('rejects names that are not plain file names', async () => {
    await expect(createDevPki(dir, ['../evil'])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(createDevPki(dir, ['ca'])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('mTLS', () => {
  it('a client with a CA-signed certificate gets SERVING from the health service', async () => {
    const client = new Health(addr, channelCredentials(certs['signer-1']));
    try {
      const overall = await unary<{ service: string }, { status: string }>(
        client,
        'Check',
        { service: '' },
        { deadlineMs: 10_000 },
      );
      expect(overall.status).toBe('SERVING');
      const coord = await unary<{ service: string }, { status: string }>(client, 'Check', {
        service: 'tessera.v1.Coordinator',
      });
      expect(coord.status).toBe('SERVING');
    } finally {
      client.close();
    }
  });

  it('peerCommonName returns the verified client certificate CN in a handler', async () => {
    const { Coordinator } = loadTessera();
    const client = new Coordinator(addr, channelCredentials(certs['signer-1']));
    try {
      const res = await unary<object, { version: string; pid: number }>(client, 'Status', {}, { deadlineMs: 10_000 });
      expect(res.version).toBe('signer-1');
      expect(res.pid).toBe(process.pid);
      expect(seenCn).toContain('signer-1');
    } finally {
      client.close();
    }
  });

  it('a client without a certificate is refused (UNAVAILABLE)', async () => {
    const creds = grpc.credentials.createSsl(readFileSync(certs['signer-1']!.ca));
    const client = new Health(addr, creds);
    try {
      const err = await unary(client, 'Check', { service: '' }, { deadlineMs: 10_000 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RemoteError);
      expect((err as RemoteError).status).toBe(grpc.status.UNAVAILABLE);
      expect((err as RemoteError).code).toBe('UNAVAILABLE');
    } finally {
      client.close();
    }
  });

  it('a client whose certificate comes from another CA is refused', async () => {
    // Trusts the right CA for the server, but presents a leaf of another CA.
    const creds = grpc.credentials.createSsl(
      readFileSync(certs['signer-1']!.ca),
      readFileSync(rogue.key),
      readFileSync(rogue.cert),
    );
    const client = new Health(addr, creds);
    try {
      const err = await unary(client, 'Check', { service: '' }, { deadlineMs: 10_000 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RemoteError);
      expect((err as RemoteError).status).toBe(grpc.status.UNAVAILABLE);
    } finally {
      client.close();
    }
  });

  it('a client that trusts another CA refuses the server', async () => {
    const client = new Health(addr, channelCredentials(rogue));
    try {
      await expect(unary(client, 'Check', { service: '' }, { deadlineMs: 10_000 })).rejects.toMatchObject({
        status: grpc.status.UNAVAILABLE,
      });
    } finally {
      client.close();
    }
  });

  it('peerCommonName is undefined on an insecure server', async () => {
    const t = loadTessera();
    const seen: Array<string | undefined> = [];
    const plain = await startServer({
      port: 0,
      credentials: serverCredentials(),
      services: [
        {
          name: 'tessera.v1.Coordinator',
          definition: t.coordinatorService,
          implementation: {
            Status: handleUnary(async (_req, call) => {
              seen.push(peerCommonName(call));
              return {};
            }),
          },
        },
      ],
    });
    const client = new t.Coordinator(`127.0.0.1:${plain.port}`, channelCredentials());
    try {
      await unary(client, 'Status', {});
      expect(seen).toEqual([undefined]);
    } finally {
      client.close();
      await plain.close();
    }
  });
});

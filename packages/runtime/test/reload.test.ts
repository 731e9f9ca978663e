/**
 * Reload building blocks on real files: TLS material checks (one line naming the file at fault,
 * nothing secret), a live gRPC listener whose certificate is swapped through ReloadableTls, and
 * the reloader's refuse-and-keep behaviour.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { servedSerial } from './served-serial.js';
import pino from 'pino';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ReloadableTls,
  changedFields,
  configHash,
  createDevPki,
  createRegistry,
  grpc,
  readCertificateAndKey,
  readTlsMaterial,
  reloadMetrics,
  startReloader,
  type TlsFiles,
} from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-reload-'));
let pki: Awaited<ReturnType<typeof createDevPki>>;
let other: Awaited<ReturnType<typeof createDevPki>>;
const files = (name: string, p = pki): TlsFiles => p.certs[name]!;

beforeAll(async () => {
  pki = await createDevPki(join(dir, 'pki'), ['server', 'client']);
  other = await createDevPki(join(dir, 'other'), ['server']);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lines: string[] = [];
const log = pino(
  { level: 'info' },
  new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  }),
);

describe('TLS material checks', () => {
  it('accepts a certificate of the CA with its key, and says when it expires', () => {
    const m = readTlsMaterial(files('server'));
    expect(m.notAfter).toBeGreaterThan(Date.now() + 300 * 86_400_000);
    expect(m.serial).toMatch(/^[0-9A-F]+$/i);
  });

  it('refuses each fault with one line naming the file, never the key', () => {
    const cases: [TlsFiles, RegExp][] = [
      [{ ...files('server'), cert: join(dir, 'missing.pem') }, /^tls\.cert: cannot read .*missing\.pem \(ENOENT\)$/],
      [
        { ...files('server'), key: files('client').key },
        /^tls\.key: .*client-key\.pem is not the key of .*server\.pem$/,
      ],
      [{ ...files('server'), ca: other.ca }, /^tls\.cert: .*server\.pem is not issued by the CA in .*other.*ca\.pem$/],
      [{ ...files('server'), cert: files('server').key }, /^tls\.cert: .* is not a PEM certificate$/],
      [{ ...files('server'), key: files('server').cert }, /^tls\.key: .* is not a PEM private key$/],
    ];
    for (const [f, why] of cases) {
      let message = '';
      try {
        readTlsMaterial(f);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(why);
      expect(message).not.toContain('PRIVATE KEY');
      expect(message).not.toContain('\n');
    }
  });

  it('accepts a certificate of either CA of a bundle (a CA rotation in progress)', () => {
    const bundle = join(dir, 'bundle.pem');
    writeFileSync(bundle, Buffer.concat([readFileSync(pki.ca), readFileSync(other.ca)]));
    expect(readTlsMaterial({ ...files('server', other), ca: bundle }).serial).toMatch(/^[0-9A-F]+$/i);
    expect(readTlsMaterial({ ...files('server'), ca: bundle }).serial).toMatch(/^[0-9A-F]+$/i);
  });

  it('refuses an expired certificate (its notAfter in the past, by the clock given)', () => {
    const { notAfter } = readCertificateAndKey(pki.certs.server!);
    expect(() => readCertificateAndKey(pki.certs.server!, 'gateway.tls', notAfter + 1000)).toThrow(
      /^gateway\.tls\.cert: .* expired on /,
    );
  });
});

const servedTo = (port: number) => servedSerial('127.0.0.1', port, files('client'));

describe('ReloadableTls on a live gRPC listener', () => {
  it('new connections get the updated certificate; a client without a certificate is still refused', async () => {
    const tls = ReloadableTls.load(files('server'));
    const server = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', tls.serverCredentials(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    try {
      const first = await servedTo(port);
      expect(first.toUpperCase()).toBe(tls.current.serial.toUpperCase());
      await createDevPki(join(dir, 'pki'), ['server'], { force: true });
      const next = readTlsMaterial(files('server'));
      expect(next.serial).not.toBe(tls.current.serial);
      tls.update(next);
      expect((await servedTo(port)).toUpperCase()).toBe(next.serial.toUpperCase());
      // Client certificates are still required.
      await expect(
        new Promise((resolve, reject) => {
          const s = connect({
            host: '127.0.0.1',
            port,
            ca: readFileSync(pki.ca),
            servername: 'localhost',
            ALPNProtocols: ['h2'],
          });
          s.once('secureConnect', () => s.once('data', resolve).once('close', () => reject(new Error('closed'))));
          s.once('error', reject);
        }),
      ).rejects.toThrow();
    } finally {
      server.forceShutdown();
    }
  });
});

describe('startReloader', () => {
  it('applies a valid file, refuses an invalid one once (metric 0, old config kept), then applies the next valid one', async () => {
    const file = join(dir, 'cfg.json');
    writeFileSync(file, JSON.stringify({ limit: 1 }));
    const load = () => {
      const j = JSON.parse(readFileSync(file, 'utf8')) as { limit?: unknown };
      if (typeof j.limit !== 'number') throw new Error(`limit: expected a number, got ${JSON.stringify(j.limit)}`);
      return { limit: j.limit, port: 1 };
    };
    let inForce = 1;
    const registry = createRegistry();
    const r = startReloader(load(), {
      name: 'test-daemon',
      load,
      files: () => [file],
      apply: (next, prev) => {
        inForce = next.limit;
        return changedFields(prev, next).filter((f) => f === 'port');
      },
      log,
      metrics: reloadMetrics(registry),
      pollMs: 50,
    });
    try {
      const metric = async (name: string) =>
        new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(await registry.metrics())?.[1];
      expect(await metric('tessera_config_last_reload_successful')).toBe('1');
      expect(await registry.metrics()).toContain(
        `tessera_config_info{sha256="${configHash({ limit: 1, port: 1 })}"} 1`,
      );

      writeFileSync(file, JSON.stringify({ limit: 5 }));
      expect(await r.reload('test')).toEqual({ ok: true, restartNeeded: [] });
      expect(inForce).toBe(5);

      const before = lines.length;
      writeFileSync(file, JSON.stringify({ limit: 'lots' }));
      expect(await r.reload('test')).toEqual({ ok: false, error: 'limit: expected a number, got "lots"' });
      expect(inForce).toBe(5);
      expect(r.current).toEqual({ limit: 5, port: 1 });
      expect(await metric('tessera_config_last_reload_successful')).toBe('0');
      await new Promise((res) => setTimeout(res, 300)); // several polls: the same bad file is not retried
      const refused = lines.slice(before).filter((l) => l.includes('reload refused'));
      expect(refused).toHaveLength(1);
      expect(JSON.parse(refused[0]!).err).toBe('limit: expected a number, got "lots"');

      // The poll picks up the next change without a signal.
      writeFileSync(file, JSON.stringify({ limit: 7 }));
      for (let i = 0; i < 60 && inForce !== 7; i++) await new Promise((res) => setTimeout(res, 50));
      expect(inForce).toBe(7);
      expect(await metric('tessera_config_last_reload_successful')).toBe('1');
    } finally {
      r.stop();
    }
  });

  it('the config hash leaves out a PIN written into a PKCS#11 URI (the metric is public to scrapers)', () => {
    const uri = (pin: string) => ({ kekPkcs11: `pkcs11:token=t;object=o?module-path=/m.so&pin-value=${pin}` });
    expect(configHash(uri('123456'))).toBe(configHash(uri('654321')));
    expect(configHash(uri('123456'))).not.toBe(configHash({ ...uri('123456'), id: 'other' }));
  });

  it('an apply that throws changes nothing: the configuration in force stays', async () => {
    const file = join(dir, 'cfg2.json');
    writeFileSync(file, '{"a":1}');
    const load = () => JSON.parse(readFileSync(file, 'utf8')) as { a: number };
    const r = startReloader(load(), {
      name: 'test-daemon',
      load,
      files: () => [file],
      apply: (next) => {
        if (next.a > 1) throw new Error('a: too large');
        return [];
      },
      log,
      pollMs: 0,
    });
    writeFileSync(file, '{"a":2}');
    expect(await r.reload()).toEqual({ ok: false, error: 'a: too large' });
    expect(r.current).toEqual({ a: 1 });
    r.stop();
  });
});

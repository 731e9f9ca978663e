/**
 * mTLS for the cluster: a dev PKI generator and gRPC credentials.
 */
import { webcrypto, createPrivateKey } from 'node:crypto';
import { mkdir, readFile, rename, writeFile, chmod, access } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '@tessera/core';
import { grpc } from './grpc.js';

/** PEM file paths of a CA certificate and one identity's certificate + private key. */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

type X509 = typeof import('@peculiar/x509');
let x509Module: Promise<X509> | undefined;

/** Loads @peculiar/x509 lazily (daemons that never create a PKI skip it and its Reflect polyfill). */
function loadX509(): Promise<X509> {
  x509Module ??= (async () => {
    // @peculiar/x509 uses tsyringe, which needs a Reflect metadata polyfill loaded first.
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto as never); // node:crypto webcrypto is the WebCrypto @peculiar/x509 expects
    return x509;
  })();
  return x509Module;
}

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIG = { name: 'ECDSA', hash: 'SHA-256' } as const;
const YEAR_MS = 365.25 * 24 * 3600 * 1000;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** Writes via a temp file + rename, so a reader never sees half a file. */
async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, data, { mode });
  await chmod(tmp, mode);
  await rename(tmp, path);
}

function serial(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0]! & 0x7f) | 0x01; // positive, no leading zero byte
  return Buffer.from(b).toString('hex');
}

async function exportKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

async function importKeyPem(pem: string): Promise<webcrypto.CryptoKey> {
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, EC, true, ['sign']);
}

/**
 * Creates (or completes) a development PKI in `dir`:
 * - `ca.pem` / `ca-key.pem`: a self-signed ECDSA P-256 CA, valid 10 years;
 * - per name `<name>.pem` / `<name>-key.pem`: a leaf signed by the CA, CN = name,
 *   SAN = DNS:localhost, DNS:<name>, IP:127.0.0.1, IP:::1 and `opts.hosts` (IPs become IP SANs,
 *   others DNS SANs), EKU serverAuth + clientAuth, valid 10 years.
 * Private keys are written with mode 0600, the directory is created 0700.
 *
 * Idempotent: an existing CA is reused; an existing leaf is kept unless `force`, or unless it
 * is not signed by the CA in `dir` (then it is reissued: a leaf of another CA is useless here).
 * Not safe to run concurrently on one directory from several processes.
 */
export async function createDevPki(
  dir: string,
  names: string[],
  opts: { hosts?: string[]; force?: boolean } = {},
): Promise<{ ca: string; certs: Record<string, TlsFiles> }> {
  for (const n of names) {
    if (!NAME_RE.test(n) || n === 'ca' || n.endsWith('-key')) {
      throw new InvalidArgumentError(`invalid PKI name ${JSON.stringify(n)}: use [A-Za-z0-9._-], not 'ca' or '*-key'`);
    }
  }
  const x509 = await loadX509();
  await mkdir(dir, { recursive: true, mode: 0o700 });

  const caPath = join(dir, 'ca.pem');
  const caKeyPath = join(dir, 'ca-key.pem');
  let caCert: InstanceType<X509['X509Certificate']>;
  let caKey: webcrypto.CryptoKey;
  if ((await exists(caPath)) && (await exists(caKeyPath))) {
    caCert = new x509.X509Certificate(await readFile(caPath, 'utf8'));
    caKey = await importKeyPem(await readFile(caKeyPath, 'utf8'));
  } else {
    const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const now = Date.now();
    caCert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: 'CN=Tessera Dev CA',
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 10 * YEAR_MS),
      keys,
      signingAlgorithm: SIG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    caKey = keys.privateKey;
    await writeAtomic(caKeyPath, await exportKeyPem(caKey), 0o600);
    await writeAtomic(caPath, caCert.toString('pem') + '\n', 0o644);
  }

  const extraSans = (opts.hosts ?? []).map((h) => ({ type: isIp(h) ? ('ip' as const) : ('dns' as const), value: h }));
  const certs: Record<string, TlsFiles> = {};
  for (const name of names) {
    const certPath = join(dir, `${name}.pem`);
    const keyPath = join(dir, `${name}-key.pem`);
    certs[name] = { ca: caPath, cert: certPath, key: keyPath };
    if (!opts.force && (await exists(certPath)) && (await exists(keyPath))) {
      const existing = new x509.X509Certificate(await readFile(certPath, 'utf8'));
      if (
        existing.issuer === caCert.subject &&
        (await existing.verify({ publicKey: caCert.publicKey, signatureOnly: true }))
      ) {
        continue;
      }
    }
    const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const sans = [
      { type: 'dns' as const, value: 'localhost' },
      { type: 'dns' as const, value: name },
      { type: 'ip' as const, value: '127.0.0.1' },
      { type: 'ip' as const, value: '::1' },
      ...extraSans,
    ].filter((s, i, all) => all.findIndex((o) => o.type === s.type && o.value === s.value) === i);
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `CN=${name}`,
      issuer: caCert.subject,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 10 * YEAR_MS),
      publicKey: keys.publicKey,
      signingKey: caKey,
      signingAlgorithm: SIG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension(sans),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(caCert),
      ],
    });
    await writeAtomic(keyPath, await exportKeyPem(keys.privateKey), 0o600);
    await writeAtomic(certPath, cert.toString('pem') + '\n', 0o644);
  }
  return { ca: caPath, certs };
}

function isIp(h: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(h) || h.includes(':');
}

function readTls(tls: TlsFiles): { ca: Buffer; cert: Buffer; key: Buffer } {
  return { ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key) };
}

/**
 * Server credentials: mTLS with the client certificate REQUIRED and verified against `tls.ca`;
 * insecure when `tls` is undefined. Reads the files now (synchronously).
 */
export function serverCredentials(tls?: TlsFiles): grpc.ServerCredentials {
  if (tls === undefined) return grpc.ServerCredentials.createInsecure();
  const { ca, cert, key } = readTls(tls);
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], true);
}

/** Client credentials: mTLS presenting `tls.cert`, trusting `tls.ca`; insecure when undefined. */
export function channelCredentials(tls?: TlsFiles): grpc.ChannelCredentials {
  if (tls === undefined) return grpc.credentials.createInsecure();
  const { ca, cert, key } = readTls(tls);
  return grpc.credentials.createSsl(ca, key, cert);
}

/**
 * The CN of the call's verified client certificate, or undefined (insecure channel, no cert).
 * Reads `call.getAuthContext().sslPeerCertificate.subject.CN`: grpc-js (>= 1.10) fills
 * sslPeerCertificate only when the TLS socket is `authorized`, i.e. the chain verified against
 * the server's CA.
 */
export function peerCommonName(
  call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
): string | undefined {
  if (typeof call.getAuthContext !== 'function') return undefined;
  const ctx = call.getAuthContext();
  if (ctx.transportSecurityType !== 'ssl') return undefined;
  const cn: unknown = ctx.sslPeerCertificate?.subject?.CN;
  if (typeof cn === 'string') return cn;
  if (Array.isArray(cn) && typeof cn[0] === 'string') return cn[0];
  return undefined;
}

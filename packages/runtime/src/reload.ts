/**
 * Reload without restart: a daemon re-reads its configuration on SIGHUP, or when one of its files
 * changes (a Kubernetes ConfigMap or Secret update swaps the mounted files), validates all of it,
 * and only then puts it in force. Anything invalid is refused with one log line and the running
 * configuration stays as it was. What a daemon can apply in place (policies, allowlists, TLS
 * certificates) it applies; fields that only take effect at a restart are named in the log line.
 *
 * TLS certificates swap through grpc-js certificate providers ({@link ReloadableTls}): listeners
 * and channels take new certificates for every new connection; connections already open keep
 * theirs until they close.
 */
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { grpc } from './grpc.js';
import type { TlsFiles } from './tls.js';

type CaListener = (u: { caCertificate: Buffer } | null) => void;
type IdListener = (u: { certificate: Buffer; privateKey: Buffer } | null) => void;

/** PEM contents of a validated CA + identity, and when the identity certificate expires. */
export interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  /** The identity certificate's notAfter, ms since the epoch. */
  notAfter: number;
  /** Its serial number (hex), for logs. */
  serial: string;
}

function readPem(what: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new Error(`${what}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function parseCertificate(what: string, path: string, pem: Buffer): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new Error(`${what}: ${path} is not a PEM certificate`);
  }
}

/**
 * Reads and checks a certificate + private key: both parse, the key is the certificate's, the
 * certificate has not expired. Throws one line naming the file at fault (never the key's
 * contents). `what` names the config field in messages ("tls", "gateway.tls").
 */
export function readCertificateAndKey(
  files: { cert: string; key: string },
  what = 'tls',
  now = Date.now(),
): { cert: Buffer; key: Buffer; certificate: X509Certificate; notAfter: number; serial: string } {
  const cert = readPem(`${what}.cert`, files.cert);
  const key = readPem(`${what}.key`, files.key);
  const certificate = parseCertificate(`${what}.cert`, files.cert, cert);
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new Error(`${what}.key: ${files.key} is not a PEM private key`);
  }
  if (!certificate.checkPrivateKey(privateKey))
    throw new Error(`${what}.key: ${files.key} is not the key of ${files.cert}`);
  const notAfter = Date.parse(certificate.validTo);
  if (!(notAfter > now)) throw new Error(`${what}.cert: ${files.cert} expired on ${certificate.validTo}`);
  return { cert, key, certificate, notAfter, serial: certificate.serialNumber };
}

/**
 * Reads and checks a CA + certificate + key ({@link readCertificateAndKey}, and the certificate
 * is issued by the CA, or by one of the CAs of a bundle).
 */
export function readTlsMaterial(files: TlsFiles, what = 'tls', now = Date.now()): TlsMaterial {
  const ca = readPem(`${what}.ca`, files.ca);
  // A CA file may be a bundle (the old and the new CA during a CA rotation): any of them will do.
  const blocks = ca.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error(`${what}.ca: ${files.ca} is not a PEM certificate`);
  const cas = blocks.map((b) => parseCertificate(`${what}.ca`, files.ca, Buffer.from(b)));
  const leaf = readCertificateAndKey(files, what, now);
  if (!cas.some((c) => leaf.certificate.verify(c.publicKey)))
    throw new Error(`${what}.cert: ${files.cert} is not issued by the CA in ${files.ca}`);
  return { ca, cert: leaf.cert, key: leaf.key, notAfter: leaf.notAfter, serial: leaf.serial };
}

/**
 * mTLS material that can be replaced while serving: one object is both the CA and the identity
 * certificate provider of grpc-js's certificate-provider credentials. {@link update} hands
 * already-validated material to every listener (the listening server's secure context, the
 * channels' connectors), so new connections use it.
 */
export class ReloadableTls {
  #current: TlsMaterial;
  readonly #ca = new Set<CaListener>();
  readonly #id = new Set<IdListener>();
  readonly #provider: grpc.experimental.CertificateProvider;

  constructor(material: TlsMaterial) {
    this.#current = material;
    this.#provider = {
      // The first value is delivered asynchronously, as grpc-js's own file-watcher provider does:
      // its server credentials register their watcher only after adding these listeners, so a
      // value delivered synchronously would be lost and the listener would drop connections.
      addCaCertificateListener: (l) => {
        this.#ca.add(l);
        queueMicrotask(() => {
          if (this.#ca.has(l)) l({ caCertificate: this.#current.ca });
        });
      },
      removeCaCertificateListener: (l) => {
        this.#ca.delete(l);
      },
      addIdentityCertificateListener: (l) => {
        this.#id.add(l);
        queueMicrotask(() => {
          if (this.#id.has(l)) l({ certificate: this.#current.cert, privateKey: this.#current.key });
        });
      },
      removeIdentityCertificateListener: (l) => {
        this.#id.delete(l);
      },
    };
  }

  /** Reads and validates `files` ({@link readTlsMaterial}). */
  static load(files: TlsFiles): ReloadableTls {
    return new ReloadableTls(readTlsMaterial(files));
  }

  get current(): TlsMaterial {
    return this.#current;
  }

  /** Puts validated material in force for every new connection. */
  update(material: TlsMaterial): void {
    this.#current = material;
    for (const l of this.#ca) l({ caCertificate: material.ca });
    for (const l of this.#id) l({ certificate: material.cert, privateKey: material.key });
  }

  /** Server credentials: a client certificate is required and verified against the current CA. */
  serverCredentials(): grpc.ServerCredentials {
    return grpc.experimental.createCertificateProviderServerCredentials(this.#provider, this.#provider, true);
  }

  /** Channel credentials presenting the current certificate and trusting the current CA. */
  channelCredentials(): grpc.ChannelCredentials {
    return grpc.experimental.createCertificateProviderChannelCredentials(this.#provider, this.#provider);
  }
}

/** The reload metrics every daemon exports (see docs/OPERATIONS.md, "Reload without restart"). */
export interface ReloadMetrics {
  /** A reload finished: `ok` or refused; `hash` identifies the configuration now in force. */
  reloaded(ok: boolean, hash: string): void;
  /** The identity certificate in force for `cert` (e.g. "grpc", "gateway") expires at `notAfter` ms. */
  certificate(cert: string, notAfter: number): void;
}

export function reloadMetrics(registry: Registry): ReloadMetrics {
  const registers = [registry];
  const ok = new Gauge({
    name: 'tessera_config_last_reload_successful',
    help: '1 if the last configuration reload (or the start) succeeded, 0 if it was refused',
    registers,
  });
  const at = new Gauge({
    name: 'tessera_config_last_reload_success_timestamp_seconds',
    help: 'when the configuration in force was loaded (unix seconds)',
    registers,
  });
  const info = new Gauge({
    name: 'tessera_config_info',
    help: 'always 1; sha256 (first 16 hex) of the configuration in force',
    labelNames: ['sha256'],
    registers,
  });
  const expiry = new Gauge({
    name: 'tessera_tls_certificate_expiry_timestamp_seconds',
    help: 'notAfter of the TLS certificate in force (unix seconds), by use',
    labelNames: ['cert'],
    registers,
  });
  return {
    reloaded(success, hash) {
      ok.set(success ? 1 : 0);
      if (!success) return;
      at.set(Date.now() / 1000);
      info.reset();
      info.set({ sha256: hash }, 1);
    },
    certificate(cert, notAfter) {
      expiry.set({ cert }, Math.floor(notAfter / 1000));
    },
  };
}

/**
 * sha256 (first 16 hex) of a parsed configuration: what `tessera_config_info` shows. A PIN
 * written into a PKCS#11 URI (`pin-value=`) is left out: the metric is readable by whoever
 * scrapes it, and a short PIN would fall to a search over this hash.
 */
export function configHash(cfg: unknown): string {
  const text = JSON.stringify(cfg).replace(/pin-value=[^&"]*/g, 'pin-value=');
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** Top-level fields whose values differ between two configurations. */
export function changedFields(prev: Record<string, unknown>, next: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(prev), ...Object.keys(next)]);
  return [...keys].filter((k) => JSON.stringify(prev[k]) !== JSON.stringify(next[k])).sort();
}

export interface ReloaderOptions<T> {
  /** The daemon's name for log lines ("signer signer-1"). */
  name: string;
  /** Reads and validates the configuration (throws one line if invalid). */
  load(): T;
  /** The files whose contents, when changed, trigger a reload (the config file, TLS files…). */
  files(cfg: T): string[];
  /**
   * Checks `next` completely, then puts what can change in place in force. Throws to refuse
   * (nothing applied). Returns the fields that changed but take effect only at a restart.
   */
  apply(next: T, prev: T): string[];
  log: Logger;
  metrics?: ReloadMetrics;
  /** Poll the files every this many ms (0 = SIGHUP only). */
  pollMs: number;
}

export interface Reloader<T> {
  /** The configuration in force. */
  readonly current: T;
  /** Reloads now (as SIGHUP does); resolves with whether the new configuration was applied. */
  reload(reason?: string): Promise<{ ok: boolean; error?: string; restartNeeded?: string[] }>;
  stop(): void;
}

/**
 * Installs the SIGHUP handler and the file poll. Reloads never overlap; a poll that sees the same
 * file contents as the last attempt does nothing, so a refused file is reported once, not at
 * every poll.
 */
export function startReloader<T>(initial: T, opts: ReloaderOptions<T>): Reloader<T> {
  let current = initial;
  let running: Promise<unknown> = Promise.resolve();
  /** The files to watch: those of the configuration on disk if it parses, else of the one in force. */
  const watched = () => {
    try {
      return opts.files(opts.load());
    } catch {
      return opts.files(current);
    }
  };
  const fingerprint = (files: string[]) => {
    const h = createHash('sha256');
    for (const f of files) {
      h.update(`${f}\0`);
      try {
        h.update(readFileSync(f));
      } catch {
        h.update('\0missing');
      }
    }
    return h.digest('hex');
  };
  let seen = fingerprint(opts.files(initial));
  opts.metrics?.reloaded(true, configHash(initial));

  const attempt = (reason: string): Promise<{ ok: boolean; error?: string; restartNeeded?: string[] }> => {
    const run = running.then(() => {
      seen = fingerprint(watched());
      try {
        const next = opts.load();
        const restartNeeded = opts.apply(next, current);
        current = next;
        opts.metrics?.reloaded(true, configHash(next));
        opts.log.info(
          { reason, config: configHash(next), ...(restartNeeded.length ? { restartNeeded } : {}) },
          restartNeeded.length
            ? `configuration reloaded; ${restartNeeded.join(', ')} take effect at the next restart`
            : 'configuration reloaded',
        );
        return { ok: true, restartNeeded };
      } catch (e) {
        const error = (e as Error).message.replace(/\s+/g, ' ').trim();
        opts.metrics?.reloaded(false, '');
        opts.log.error(
          { reason, err: error },
          `${opts.name}: configuration reload refused, the previous one stays in force`,
        );
        return { ok: false, error };
      }
    });
    running = run;
    return run;
  };

  const onHup = () => void attempt('SIGHUP');
  process.on('SIGHUP', onHup);
  let timer: NodeJS.Timeout | undefined;
  if (opts.pollMs > 0) {
    timer = setInterval(() => {
      if (fingerprint(watched()) !== seen) void attempt('file changed');
    }, opts.pollMs);
    timer.unref();
  }
  return {
    get current() {
      return current;
    },
    reload: (reason = 'request') => attempt(reason),
    stop() {
      process.off('SIGHUP', onHup);
      if (timer) clearInterval(timer);
    },
  };
}

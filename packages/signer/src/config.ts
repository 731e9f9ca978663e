/** The signer node's configuration: a JSON file plus TESSERA_SIGNER_* environment overrides. */
import { z } from 'zod';

const hex64 = z.string().regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hex characters');
/** An HPKE recipient key: X25519 (64 hex) or X-Wing (2432 hex). */
const encKeyHex = z
  .string()
  .regex(/^(?:[0-9a-fA-F]{64}|[0-9a-fA-F]{2432})$/, 'expected 64 (X25519) or 2432 (X-Wing) hex characters');

export const SignerConfigSchema = z.object({
  /** Participant id ("signer-1"). */
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'participant id: 1-64 of A-Z a-z 0-9 . _ -'),
  /** LevelDB directory of this node. */
  dataDir: z.string().min(1),
  /** host:port of the coordinator. */
  coordinator: z.string().min(3).default('127.0.0.1:7400'),
  /** Key-encryption key: a file holding 64 hex characters, or the name of an env variable. */
  kekFile: z.string().optional(),
  kekEnv: z.string().optional(),
  /**
   * The KEK inside an HSM: an RFC 7512 PKCS#11 URI,
   * `pkcs11:token=<label>;object=<key label>?module-path=<library>&pin-source=file:<path>`.
   * Exactly one of kekFile, kekEnv, kekPkcs11 (none: the environment variable TESSERA_KEK).
   */
  kekPkcs11: z.string().startsWith('pkcs11:').optional(),
  /** mTLS files; without them the link is plaintext (dev only). */
  tls: z.object({ ca: z.string(), cert: z.string(), key: z.string() }).optional(),
  /** Prometheus metrics port (0 = ephemeral). */
  metricsPort: z.number().int().min(0).max(65535).default(0),
  /** Address the metrics/healthz HTTP server binds (0.0.0.0 to let a scraper reach it). */
  metricsHost: z.string().default('127.0.0.1'),
  /**
   * Reload: besides SIGHUP, the config file and TLS files are checked for changes this often
   * (seconds; 0 = SIGHUP only). A Kubernetes ConfigMap or Secret update is picked up this way.
   */
  reloadPollSeconds: z.number().min(0).default(30),
  policy: z
    .object({
      allowKeygen: z.boolean().default(true),
      requesters: z
        .array(
          z.object({
            id: z.string().min(1),
            publicKey: hex64,
            keys: z.array(z.string()).default(['*']),
            perMinute: z.number().int().min(0).optional(),
          }),
        )
        .default([]),
      /** Known DKG peers; when set, DKG rosters with anyone else are refused. */
      peers: z.array(z.object({ id: z.string().min(1), publicKey: hex64, encKey: encKeyHex })).optional(),
      /** Development only: DKG/lifecycle rosters the coordinator announces are accepted unpinned. */
      allowUnpinnedPeers: z.boolean().optional(),
      /** Operator keys that approve refresh/reshare, and how many of them must (M-of-N). */
      operators: z
        .object({ keys: z.array(hex64).min(1), approvals: z.number().int().min(1) })
        .refine((o) => o.approvals <= o.keys.length, 'operators.approvals cannot exceed the number of keys')
        .optional(),
      /** How long the previous epoch is kept after a refresh/reshare commits (ms). */
      epochRetentionMs: z.number().int().min(0).optional(),
      /** Offline co-signing for devices: on/off, per-device reservation cap, longest lifetime, revoked devices. */
      devices: z
        .object({
          allow: z.boolean().default(true),
          maxReservations: z.number().int().min(1).max(100_000).default(64),
          maxTtlMs: z
            .number()
            .int()
            .min(60_000)
            .default(7 * 24 * 3600_000),
          revoked: z.array(z.string().min(1)).default([]),
          /** Most a device may be allowed to pay per asset (base units, decimal strings); set: caps required. */
          maxCaps: z.record(z.string().min(1).max(64), z.string().regex(/^(0|[1-9][0-9]{0,77})$/)).optional(),
          /** Oldest operator-signed price snapshot a fiat cap is granted with, ms (at most 30 days). */
          maxPriceAgeMs: z
            .number()
            .int()
            .positive()
            .max(30 * 24 * 3600_000)
            .optional(),
          /** Complete only packages with the device's signed integrity verdict `pass`. */
          requireIntegrity: z.boolean().optional(),
          /** Most a device may hold in unspent caps on this node, over all its allowances, per asset; set: caps required. */
          maxDeviceCaps: z.record(z.string().min(1).max(64), z.string().regex(/^(0|[1-9][0-9]{0,77})$/)).optional(),
          /** Payees no device pays through this node; the only payees devices pay (addresses as payments read them). */
          denyTo: z.array(z.string().min(1).max(200)).max(100_000).optional(),
          allowTo: z.array(z.string().min(1).max(200)).max(100_000).optional(),
        })
        .optional(),
    })
    .default({ allowKeygen: true, requesters: [] }),
});
export type SignerConfig = z.infer<typeof SignerConfigSchema>;

/** The coordinator's configuration: a JSON file plus TESSERA_COORDINATOR_* environment overrides. */
import { z } from 'zod';

export const CoordinatorConfigSchema = z
  .object({
    /** LevelDB directory of the coordinator's state (the default store; one replica). */
    dataDir: z.string().min(1).optional(),
    /**
     * The state in PostgreSQL instead (several replicas, one leading: see OPERATIONS, "Coordinator
     * high availability"). The connection string from a file (a Kubernetes Secret) or an
     * environment variable; migrations are applied at start.
     */
    postgres: z
      .object({
        urlFile: z.string().optional(),
        urlEnv: z.string().optional(),
        /** Replicas with the same lease name share one leader (default `tessera-coordinator`). */
        lease: z.string().min(1).default('tessera-coordinator'),
      })
      .refine((p) => !!p.urlFile !== !!p.urlEnv, 'postgres: give exactly one of urlFile, urlEnv')
      .optional(),
    host: z.string().default('127.0.0.1'),
    /** gRPC port (0 = ephemeral; the chosen port is printed on stdout as JSON). */
    port: z.number().int().min(0).max(65535).default(7400),
    kekFile: z.string().optional(),
    kekEnv: z.string().optional(),
    /**
     * The KEK inside an HSM: an RFC 7512 PKCS#11 URI,
     * `pkcs11:token=<label>;object=<key label>?module-path=<library>&pin-source=file:<path>`.
     * Exactly one of kekFile, kekEnv, kekPkcs11 (none: the environment variable TESSERA_KEK).
     */
    kekPkcs11: z.string().startsWith('pkcs11:').optional(),
    /** mTLS files; participants' certificate CNs must then equal their participant ids. */
    tls: z.object({ ca: z.string(), cert: z.string(), key: z.string() }).optional(),
    metricsPort: z.number().int().min(0).max(65535).default(0),
    /** Address the metrics/healthz HTTP server binds (0.0.0.0 to let a scraper reach it). */
    metricsHost: z.string().default('127.0.0.1'),
    taskTimeoutMs: z.number().int().min(100).default(15_000),
    /** Admission control: most sign requests and package completions in progress; beyond it RESOURCE_EXHAUSTED at once. */
    maxInFlight: z.number().int().min(1).default(256),
    /** Decoded key records kept in memory (most recently used); every key is also kept encoded. */
    keyCacheSize: z.number().int().min(1).default(4096),
    /** This cluster's id, named in every device call; default: a random id created on first start and stored. */
    clusterId: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/)
      .optional(),
    /**
     * Reload: besides SIGHUP, the config file and the TLS and authorisation files it names are
     * checked for changes this often (seconds; 0 = SIGHUP only).
     */
    reloadPollSeconds: z.number().min(0).default(30),
    /** Participant ids allowed to link; unset = any participant with a valid certificate. Reloadable. */
    participants: z.array(z.string().min(1)).optional(),
    /** Scheduled proactive refresh: every key whose epoch is older than this many days is refreshed (checked hourly). */
    refreshEveryDays: z.number().positive().optional(),
    /**
     * The operators' standing refresh authorisation for scheduled refreshes: a request file from
     * `tessera authorise refresh --key '*' --any-epoch …` approved with `tessera approve`; signers
     * refuse refreshes without one.
     */
    refreshAuthorisationFile: z.string().optional(),
    /** The device gateway (HTTP long-poll for phones and browsers); off when unset. */
    gateway: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(7480),
        /** HTTPS certificate and key files (PEM); without them the gateway speaks plain HTTP. */
        tls: z.object({ cert: z.string(), key: z.string() }).optional(),
      })
      .optional(),
  })
  .refine((c) => !!c.dataDir !== !!c.postgres, {
    message: 'give exactly one of dataDir (LevelDB, one replica) or postgres (replicas sharing PostgreSQL)',
  });
export type CoordinatorConfig = z.infer<typeof CoordinatorConfigSchema>;

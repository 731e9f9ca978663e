/**
 * How the CLI finds and talks to a cluster: `<dir>/client.json` (written by `tessera dev`) names
 * the coordinator address, the mTLS files and the requester identity that signs intents. The
 * directory is `--dir`, else `$TESSERA_DIR`, else the nearest `.tessera/` at or above the cwd.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ParticipantIdentity, fromHex } from '@tessera/core';
import { channelCredentials, grpc, loadTessera, unary, type TlsFiles } from '@tessera/runtime';
import { CliError } from './errors.js';
import { resolveDir } from './dir.js';

export { CliError, resolveDir };

export interface ClientFile {
  coordinator: string;
  /** The coordinator's device gateway (HTTP) for `tessera device …`. */
  deviceUrl?: string;
  tls?: TlsFiles;
  requester: { id: string; signSecret: string; encSecret: string };
  /** The dev cluster's operator key file (relative to the cluster directory): approves lifecycle operations by default. */
  operator?: string;
}

export interface Client {
  dir: string;
  file: ClientFile;
  requester: ParticipantIdentity;
  call<Res = Record<string, unknown>>(method: string, req: unknown, deadlineMs?: number): Promise<Res>;
  close(): void;
}

export function openClient(dirOpt?: string): Client {
  const dir = resolveDir(dirOpt);
  const path = join(dir, 'client.json');
  if (!existsSync(path))
    throw new CliError(
      'CONFIG',
      `no cluster at ${dir} (missing client.json): start one with \`tessera dev\` or pass --dir`,
    );
  const file = JSON.parse(readFileSync(path, 'utf8')) as ClientFile;
  const requester = ParticipantIdentity.fromSecrets(
    file.requester.id,
    fromHex(file.requester.signSecret),
    fromHex(file.requester.encSecret),
  );
  const { Coordinator } = loadTessera();
  const client = new Coordinator(file.coordinator, channelCredentials(file.tls), {
    'grpc.ssl_target_name_override': 'coordinator',
  });
  return {
    dir,
    file,
    requester,
    call: <Res>(method: string, req: unknown, deadlineMs = 60_000) =>
      unary<unknown, Res>(client as grpc.Client, method, req, { deadlineMs }).catch((e: unknown): never => {
        throw unreachable(e, file.coordinator, dir) ?? e;
      }),
    close: () => client.close(),
  };
}

/**
 * A transport failure (nothing answered, as opposed to a coordinator's typed refusal) as one line
 * that says which address and what to check; undefined for any other error.
 */
function unreachable(e: unknown, address: string, dir: string): CliError | undefined {
  const err = e as { status?: number; message?: string; culprits?: readonly string[] };
  const transport =
    /No connection established|ECONNREFUSED|failed to connect|Name resolution failed|connect ETIMEDOUT|Deadline exceeded/i;
  if (
    (err.status !== grpc.status.UNAVAILABLE && err.status !== grpc.status.DEADLINE_EXCEEDED) ||
    !transport.test(err.message ?? '')
  )
    return undefined;
  return new CliError(
    'UNAVAILABLE',
    `cannot reach the coordinator at ${address}: is the cluster running (\`npm start\` or \`tessera dev\`)? Check the address in ${join(dir, 'client.json')} or pass --dir`,
  );
}

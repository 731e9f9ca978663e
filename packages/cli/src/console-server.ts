/**
 * The operator console's server (`tessera console`, and `tessera dev`): the console page
 * (apps/console) and a small JSON API over the operator's own cluster client (mTLS to the
 * coordinator, the operator key files for approvals). The browser never holds a cluster
 * credential: it holds a one-time login secret printed in the console URL's fragment (never sent
 * in a request line, so never in a log), sent as a bearer token on every API call. Loopback by
 * default; nothing is open on the network unless `--host` says so.
 *
 *   GET  /api/overview         signers, devices (admission), keys, audit, offline KPIs, the
 *                              50 newest package decisions
 *   POST /api/token            a one-time enrolment token for a device
 *   POST /api/devices/admit    { device }: the operators admit an enrolled device
 *   POST /api/devices/revoke   { device }: revoke it on every signer
 *   POST /api/devices/replace  { old, new }: reshare the old device's keys to the new one, revoke the old
 *   POST /api/keys/refresh     { keyId }: a refresh, approved by the operators
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';

import type { Client } from './client.js';
import { auditVerify, keys, lifecycle, packages, replaceDevice, status } from './commands.js';
import { admitDevice, approvers, authorisationFor } from './operators.js';
import { DEFAULT_APPS_DIR, readJson, send, startWebServer, type WebServer } from './web.js';

export interface ConsoleServer extends WebServer {
  /** The URL to open: the console with its login secret in the fragment. */
  loginUrl: string;
}

async function overview(c: Client) {
  const s = await status(c);
  const devices = await Promise.all(
    s.devices.map(async (d) => {
      const a = await c
        .call<{ participant: Uint8Array; approvals: Uint8Array[] }>('GetDevice', { device: d.id })
        .catch(() => undefined);
      return { ...d, enrolled: !!a, admitted: (a?.approvals.length ?? 0) > 0 };
    }),
  );
  const recent = await packages(c, { limit: 50 });
  return {
    at: Date.now(),
    packages: recent.packages,
    coordinator: s.coordinator,
    signers: s.signers,
    devices,
    keys: await keys(c),
    audit: await auditVerify(c),
    kpis: s.offline,
  };
}

const str = (v: unknown, what: string): string => {
  if (typeof v !== 'string' || !v || v.length > 200)
    throw Object.assign(new Error(`${what} must be a non-empty string`), { code: 'INVALID_ARGUMENT' });
  return v;
};

export async function serveConsole(opts: {
  client: Client;
  /** The built console (default apps/dist/console). */
  dir?: string;
  host?: string;
  port?: number;
  /** Operator key files that approve admissions, revocations and refreshes (default: the dev operator). */
  approveWith?: string[];
}): Promise<ConsoleServer> {
  const c = opts.client;
  const secret = Buffer.from(randomBytes(24).toString('base64url'));
  const authorised = (h: string | undefined) => {
    const got = Buffer.from(/^Bearer (\S+)$/.exec(h ?? '')?.[1] ?? '');
    return got.length === secret.length && timingSafeEqual(got, secret);
  };
  const files = () => approvers(c, opts.approveWith);
  const routes: Record<string, (body: Record<string, unknown>) => Promise<unknown>> = {
    'GET /api/overview': () => overview(c),
    'POST /api/token': async () => {
      const r = await c.call<{ token: string; expiresAt: number }>('IssueEnrolmentToken', {
        ttlMs: 3_600_000,
        label: 'console',
      });
      return { token: r.token, expiresAt: new Date(r.expiresAt).toISOString() };
    },
    'POST /api/devices/admit': async (b) => admitDevice(c, str(b.device, 'device'), files()),
    'POST /api/devices/revoke': async (b) => {
      const device = str(b.device, 'device');
      const authorisation = await authorisationFor(
        c,
        { keyId: '*', operation: 'revoke', revoke: [device] },
        {
          approveWith: files(),
        },
      );
      return {
        device,
        ...(await c.call<{ signers: string[]; refused: string[] }>('RevokeDevice', { device, authorisation })),
      };
    },
    'POST /api/devices/replace': async (b) =>
      replaceDevice(c, { old: str(b.old, 'old'), new: str(b.new, 'new'), approveWith: files() }),
    'POST /api/keys/refresh': async (b) => {
      const keyId = str(b.keyId, 'keyId');
      const r = await lifecycle(c, 'Refresh', {
        keyId,
        authorisation: await authorisationFor(c, { keyId, operation: 'refresh' }, { approveWith: files() }),
      });
      return { keyId: r.keyId, epoch: r.epoch, publicKey: r.publicKey };
    },
  };
  const server = await startWebServer({
    app: 'console',
    dir: opts.dir ?? join(DEFAULT_APPS_DIR, 'console'),
    ...(opts.host ? { host: opts.host } : {}),
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    handle: async (req, res, path) => {
      if (!path.startsWith('/api/')) return false;
      if (!authorised(req.headers.authorization)) {
        send(res, 401, {
          error: { code: 'UNAUTHENTICATED', message: 'open the console with the URL its server printed' },
        });
        return true;
      }
      const route = routes[`${req.method} ${path}`];
      if (!route) {
        send(res, 404, { error: { code: 'NOT_FOUND', message: `no ${req.method} ${path}` } });
        return true;
      }
      try {
        send(res, 200, await route(req.method === 'POST' ? await readJson(req) : {}));
      } catch (e) {
        const code = (e as { code?: string }).code ?? 'INTERNAL';
        const status =
          code === 'INVALID_ARGUMENT'
            ? 400
            : code === 'NOT_FOUND'
              ? 404
              : code === 'POLICY_DENIED'
                ? 403
                : code === 'INTERNAL'
                  ? 500
                  : 409;
        send(res, status, {
          error: {
            code,
            message: code === 'INTERNAL' ? 'internal error' : (e as Error).message,
            culprits: [...((e as { culprits?: readonly string[] }).culprits ?? [])],
          },
        });
      }
      return true;
    },
  });
  return { ...server, loginUrl: `${server.url}#login=${secret.toString()}` };
}

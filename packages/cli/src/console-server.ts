/**
 * The operator console's server (`tessera console`, and `tessera dev`): the console page
 * (apps/console) and a small JSON API over the operator's own cluster client (mTLS to the
 * coordinator, the operator key files for approvals). The browser never holds a cluster
 * credential, only a bearer token sent on every API call, which it gets one of two ways:
 * - the login secret printed in the console URL's fragment (never sent in a request line, so
 *   never in a log) — for whoever started the server; `--no-login-link` turns it off;
 * - a signed login: the operator signs a one-time challenge with their operator key (in the page;
 *   the key never leaves it) and gets a session token (8 h). Accepted keys: `--login-keys`, else
 *   the keys of the operators the server approves with.
 * Loopback by default; nothing is open on the network unless `--host` says so.
 *
 *   POST /api/login/challenge  (no token) a one-time challenge, valid 2 minutes
 *   POST /api/login            (no token) { publicKey, challenge, signature }: a session token
 *   GET  /api/overview         signers, devices (admission), keys, audit, offline KPIs, the
 *                              50 newest package decisions
 *   POST /api/token            a one-time enrolment token for a device
 *   POST /api/devices/admit    { device }: the operators admit an enrolled device
 *   POST /api/devices/revoke   { device }: revoke it on every signer
 *   POST /api/devices/replace  { old, new }: reshare the old device's keys to the new one, revoke the old
 *   POST /api/keys/refresh     { keyId }: a refresh, approved by the operators
 *   POST /api/keys/reshare     { keyId, threshold, participants }: a reshare, approved by the operators
 *   GET  /api/kpis/history     the offline KPIs sampled every 15 s over the last 24 h (console-kpis.ts)
 *   GET  /api/requests         with --collect-approvals (the server holds no operator key):
 *   POST /api/requests         { operation: admit|refresh|reshare|replace|revoke, keyId | device, … } → a
 *                              pending request (replace: { keyId, old, new, revoke }: a reshare of that
 *                              key; admit: { device }: its admission, approved like the rest)
 *   POST /api/requests/approve { id, approval }: an operator's approval, made in their page
 *   POST /api/requests/run     { id }: run it with the approvals collected (console-requests.ts)
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import {
  OPERATOR_LOGIN_CONTEXT,
  fromHex,
  operatorLoginMessage,
  toHex,
  verifyParticipantSignature,
} from '@tessera/core';

import type { Client } from './client.js';
import { auditVerify, keys, lifecycle, packages, replaceDevice, status } from './commands.js';
import { kpiHistory } from './console-kpis.js';
import { consoleRequests, parseReshare } from './console-requests.js';
import { CliError } from './errors.js';
import { admitDevice, approvers, authorisationFor, loadOperator } from './operators.js';
import { DEFAULT_APPS_DIR, readJson, send, startWebServer, type WebServer } from './web.js';

export interface ConsoleServer extends WebServer {
  /** The URL to open: the console with its login secret in the fragment. */
  loginUrl: string;
}

async function overview(c: Client, approvesItself: boolean) {
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
    approvesItself,
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
  /** Operator public keys (hex) that may sign in (default: the approving operators' keys). */
  loginKeys?: string[];
  /** Print no login link: operators sign in with their keys only. */
  noLoginLink?: boolean;
  /** Hold no operator key: every action becomes a request the operators approve in their pages. */
  collectApprovals?: boolean;
  /** How often the KPI history is sampled (default 15 s). */
  kpiEveryMs?: number;
}): Promise<ConsoleServer> {
  const c = opts.client;
  const operatorFiles = approvers(c, opts.approveWith);
  /** The key files that approve here; none with --collect-approvals (never the dev operator's by default). */
  const files = () => {
    if (opts.collectApprovals)
      throw new CliError(
        'POLICY_DENIED',
        'this console holds no operator key (--collect-approvals): ask for a request and approve it with your key',
      );
    return operatorFiles;
  };
  const keys = new Set(
    (opts.loginKeys ?? operatorFiles.map((f) => toHex(loadOperator(f).public.signKey))).map((k) => k.toLowerCase()),
  );
  if (keys.size === 0 && (opts.noLoginLink || opts.collectApprovals))
    throw new CliError(
      'CONFIG',
      'no operator could sign in to this console: pass --login-keys with the operators’ public keys (or --approve-with their key files)',
    );
  const login = signedLogin([...keys]);
  const requests = consoleRequests(c, () => keys);
  const history = kpiHistory(c, opts.kpiEveryMs ?? 15_000);
  const secret = opts.noLoginLink ? undefined : Buffer.from(randomBytes(24).toString('base64url'));
  const authorised = (h: string | undefined) => {
    const token = /^Bearer (\S+)$/.exec(h ?? '')?.[1] ?? '';
    const got = Buffer.from(token);
    if (secret && got.length === secret.length && timingSafeEqual(got, secret)) return true;
    return login.session(token);
  };
  /** The origins the page may be open at (signed into the login): the server's, and localhost for a loopback one. */
  let origins: string[] = [];
  const routes: Record<string, (body: Record<string, unknown>) => Promise<unknown>> = {
    'GET /api/overview': () => overview(c, !opts.collectApprovals && operatorFiles.length > 0),
    'GET /api/requests': async () => ({ requests: requests.list() }),
    'GET /api/kpis/history': async () => history.list(),
    'POST /api/requests': (b) => requests.create(b),
    'POST /api/requests/approve': async (b) => requests.approve(b),
    'POST /api/requests/run': (b) => requests.run(b),
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
    'POST /api/keys/reshare': async (b) => {
      const r = parseReshare(b);
      const k = await lifecycle(c, 'Reshare', {
        ...r,
        revoke: [],
        authorisation: await authorisationFor(c, { operation: 'reshare', ...r }, { approveWith: files() }),
      });
      return {
        keyId: k.keyId,
        epoch: k.epoch,
        threshold: k.threshold,
        participants: k.participants,
        publicKey: k.publicKey,
      };
    },
  };
  const server = await startWebServer({
    app: 'console',
    dir: opts.dir ?? join(DEFAULT_APPS_DIR, 'console'),
    ...(opts.host ? { host: opts.host } : {}),
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    handle: async (req, res, path) => {
      if (!path.startsWith('/api/')) return false;
      if (req.method === 'POST' && path === '/api/login/challenge') {
        send(res, 200, login.challenge());
        return true;
      }
      if (req.method === 'POST' && path === '/api/login') {
        const r = login.answer(origins, await readJson(req).catch(() => ({})));
        send(res, 'error' in r ? 401 : 200, r);
        return true;
      }
      if (!authorised(req.headers.authorization)) {
        send(res, 401, {
          error: {
            code: 'UNAUTHENTICATED',
            message: 'sign in with your operator key, or open the console with the URL its server printed',
          },
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
        const status = HTTP_STATUS[code] ?? 409;
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
  const u = new URL(server.url);
  origins = [u.origin, ...(u.hostname === '127.0.0.1' ? [`${u.protocol}//localhost:${u.port}`] : [])];
  return {
    ...server,
    close: async () => {
      history.stop();
      await server.close();
    },
    loginUrl: secret ? `${server.url}#login=${secret.toString()}` : server.url,
  };
}

/** HTTP status of an API error by code; anything else the cluster refuses is 409. */
const HTTP_STATUS: Readonly<Record<string, number>> = {
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  POLICY_DENIED: 403,
  RESOURCE_EXHAUSTED: 429,
  INTERNAL: 500,
};

const CHALLENGE_MS = 120_000;
const SESSION_MS = 8 * 3_600_000;
const MAX_OPEN = 64;

/**
 * The signed login's state: open challenges (one-time, 2 minutes, at most 64 — the oldest go
 * first) and sessions (8 h), kept by the SHA-256 of their token so a lookup compares no secret.
 */
function signedLogin(keys: readonly string[]) {
  const accepted = new Set(keys.map((k) => k.toLowerCase()));
  const challenges = new Map<string, number>();
  const sessions = new Map<string, { operator: string; expiresAt: number }>();
  const digest = (t: string) => createHash('sha256').update(t).digest('hex');
  const refuse = (message: string) => ({ error: { code: 'UNAUTHENTICATED', message } });
  return {
    challenge() {
      const now = Date.now();
      for (const [k, exp] of challenges) if (exp < now || challenges.size >= MAX_OPEN) challenges.delete(k);
      const challenge = toHex(randomBytes(32));
      challenges.set(challenge, now + CHALLENGE_MS);
      return { challenge, expiresAt: new Date(now + CHALLENGE_MS).toISOString(), context: OPERATOR_LOGIN_CONTEXT };
    },
    answer(origins: readonly string[], b: Record<string, unknown>) {
      const { publicKey, challenge, signature } = b;
      if (typeof publicKey !== 'string' || typeof challenge !== 'string' || typeof signature !== 'string')
        return refuse('send { publicKey, challenge, signature } as hex strings');
      const exp = challenges.get(challenge);
      challenges.delete(challenge); // one answer per challenge, right or wrong
      if (exp === undefined || exp < Date.now()) return refuse('unknown or expired challenge: ask for a new one');
      if (!accepted.has(publicKey.toLowerCase())) return refuse('this operator key may not sign in to this console');
      const ok = origins.some((origin) => {
        try {
          return verifyParticipantSignature(
            fromHex(publicKey, 'publicKey'),
            operatorLoginMessage(origin, challenge),
            fromHex(signature, 'signature'),
          );
        } catch {
          return false;
        }
      });
      if (!ok) return refuse('the signature does not verify for this challenge and console');
      const token = randomBytes(32).toString('base64url');
      const expiresAt = Date.now() + SESSION_MS;
      sessions.set(digest(token), { operator: publicKey.toLowerCase(), expiresAt });
      return { token, operator: publicKey.toLowerCase(), expiresAt: new Date(expiresAt).toISOString() };
    },
    session(token: string): boolean {
      if (!token) return false;
      const s = sessions.get(digest(token));
      if (!s) return false;
      if (s.expiresAt < Date.now()) {
        sessions.delete(digest(token));
        return false;
      }
      return true;
    },
  };
}

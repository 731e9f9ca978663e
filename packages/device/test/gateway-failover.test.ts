/**
 * The gateway client given every coordinator replica's URL, against real HTTP servers on
 * loopback: a refused connection moves any call on to the next replica (nothing was sent); a
 * connection that breaks after the call was sent moves on only a call the cluster answers the
 * same way however often it arrives (poll, submit, keys) — a keygen or reserve is not sent twice
 * behind the caller's back — and the next call starts at the replica that answered.
 */
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParticipantIdentity, openEnvelope, PayloadKind, decodeMessage } from '@tessera/core';
import { randomBytes } from 'node:crypto';
import { DeviceError, GatewayClient, gatewayUrls } from '../src/index.js';

const identity = ParticipantIdentity.generate('phone-failover');
const rng = (n = 32) => new Uint8Array(randomBytes(n));
const seen: { server: string; op: string; nonce: string }[] = [];
let leader: Server;
let breaker: Server;
let leaderUrl: string;
let breakerUrl: string;
let refusedUrl: string;

function listen(s: Server): Promise<string> {
  return new Promise((r) =>
    s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as { port: number }).port}`)),
  );
}

/** A server that records each call (op and the envelope's nonce) and then answers or drops it. */
function recording(name: string, answer: boolean): Server {
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const env = openEnvelope(new Uint8Array(Buffer.concat(chunks)), PayloadKind.DEVICE_CALL);
      const call = decodeMessage('DeviceCall', env.payload);
      seen.push({ server: name, op: call.op, nonce: Buffer.from(call.nonce).toString('hex') });
      if (!answer) return req.socket.destroy(); // the call arrived; the answer never does
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(Buffer.from(name));
    });
  });
}

beforeAll(async () => {
  leader = recording('leader', true);
  breaker = recording('breaker', false);
  leaderUrl = await listen(leader);
  breakerUrl = await listen(breaker);
  // A port nobody listens on: connections are refused.
  const probe = createTcpServer();
  refusedUrl = await new Promise<string>((r) =>
    probe.listen(0, '127.0.0.1', () => {
      const port = (probe.address() as { port: number }).port;
      probe.close(() => r(`http://127.0.0.1:${port}`));
    }),
  );
});

afterAll(() => {
  leader.close();
  breaker.close();
});

const decode = (b: Uint8Array) => new TextDecoder().decode(b);

describe('gateway failover across coordinator replicas', () => {
  it('parses a comma-separated list and refuses a bad URL in it with a typed error', () => {
    expect(gatewayUrls(' http://a:1/, https://b:2 ')).toEqual(['http://a:1', 'https://b:2']);
    expect(gatewayUrls(['http://a:1'])).toEqual(['http://a:1']);
    for (const bad of ['', ' , ', 'http://a:1,ftp://b', ['nope']])
      expect(() => gatewayUrls(bad)).toThrowError(DeviceError);
  });

  it('a refused connection moves any call on, and the next call starts at the replica that answered', async () => {
    const c = new GatewayClient([refusedUrl, leaderUrl], identity, rng, Date.now);
    seen.length = 0;
    expect(decode(await c.call('keygen', new Uint8Array(0)))).toBe('leader');
    expect(c.url).toBe(leaderUrl);
    expect(decode(await c.call('reserve', new Uint8Array(0)))).toBe('leader');
    expect(seen.map((s) => `${s.server}:${s.op}`)).toEqual(['leader:keygen', 'leader:reserve']);
  });

  it('a broken connection moves a repeatable call on, each attempt a freshly signed envelope', async () => {
    const c = new GatewayClient([breakerUrl, leaderUrl], identity, rng, Date.now);
    seen.length = 0;
    expect(decode(await c.call('submit', new Uint8Array(0)))).toBe('leader');
    expect(seen.map((s) => `${s.server}:${s.op}`)).toEqual(['breaker:submit', 'leader:submit']);
    expect(seen[0]?.nonce).not.toBe(seen[1]?.nonce);
  });

  it('a broken connection does not send a keygen twice; the caller sees UNAVAILABLE and the next call moves on', async () => {
    const shared = { index: 0 };
    const c = new GatewayClient([breakerUrl, leaderUrl], identity, rng, Date.now, '', shared);
    seen.length = 0;
    const e = await c.call('keygen', new Uint8Array(0)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DeviceError);
    expect((e as DeviceError).code).toBe('UNAVAILABLE');
    expect(seen.map((s) => `${s.server}:${s.op}`)).toEqual(['breaker:keygen']);
    // Another client of the same device starts where the last one left off.
    const next = new GatewayClient([breakerUrl, leaderUrl], identity, rng, Date.now, '', shared);
    expect(decode(await next.call('keygen', new Uint8Array(0)))).toBe('leader');
  });

  it('no replica reachable: one UNAVAILABLE naming every URL', async () => {
    const c = new GatewayClient([refusedUrl, breakerUrl], identity, rng, Date.now);
    const e = (await c.call('poll', new Uint8Array(0)).catch((x: unknown) => x)) as DeviceError;
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toContain(refusedUrl);
    expect(e.message).toContain(breakerUrl);
  });
});

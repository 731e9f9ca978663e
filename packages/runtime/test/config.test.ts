import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { TesseraRuntimeError, envName, loadConfig } from '@tessera/runtime';

const schema = z.object({
  nodeId: z.string().min(1),
  listen: z.object({ host: z.string().default('127.0.0.1'), port: z.number().int().min(0).max(65535) }),
  metricsPort: z.number().int().default(0),
  peers: z.array(z.string()).default([]),
  debug: z.boolean().default(false),
});

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, content: unknown): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}

function configError(f: () => unknown): TesseraRuntimeError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TesseraRuntimeError);
    expect((e as TesseraRuntimeError).code).toBe('CONFIG');
    expect((e as Error).message).not.toContain('\n');
    return e as TesseraRuntimeError;
  }
  throw new Error('expected a CONFIG error');
}

describe('loadConfig', () => {
  it('merges file, env (JSON-parsed when possible) and overrides, applying defaults', async () => {
    const f = await file('a.json', { nodeId: 'signer-1', listen: { host: '0.0.0.0', port: 7000 }, peers: ['a'] });
    const cfg = loadConfig(schema, {
      file: f,
      envPrefix: 'TESSERA_SIGNER_',
      env: {
        TESSERA_SIGNER_LISTEN: '{"port": 7001}',
        TESSERA_SIGNER_METRICS_PORT: '9100',
        TESSERA_SIGNER_DEBUG: 'true',
        TESSERA_SIGNER_PEERS: '["b","c"]',
        OTHER_NODE_ID: 'ignored',
      },
    });
    expect(cfg).toEqual({
      nodeId: 'signer-1',
      listen: { host: '0.0.0.0', port: 7001 }, // deep-merged: host kept from the file
      metricsPort: 9100,
      peers: ['b', 'c'],
      debug: true,
    });

    const over = loadConfig(schema, {
      file: f,
      envPrefix: 'T_',
      env: { T_NODE_ID: 'from-env' },
      overrides: { nodeId: 'cli', debug: undefined },
    });
    expect(over.nodeId).toBe('cli');
    expect(over.debug).toBe(false);
  });

  it('takes env text as a string for string fields, and non-JSON text as a string', () => {
    const cfg = loadConfig(schema, { envPrefix: 'X_', env: { X_NODE_ID: '0123', X_LISTEN: '{"port":1}' } });
    expect(cfg.nodeId).toBe('0123');
    const s = z.object({ mode: z.union([z.literal('a'), z.literal('b')]) });
    expect(loadConfig(s, { envPrefix: 'X_', env: { X_MODE: 'b' } })).toEqual({ mode: 'b' });
    expect(loadConfig(z.object({ n: z.number() }), { envPrefix: 'X_', env: { X_N: '42' } })).toEqual({ n: 42 });
  });

  it('reports every zod issue on one line with its path', async () => {
    const f = await file('bad.json', { nodeId: '', listen: { port: 'x' }, peers: [1] });
    const e = configError(() => loadConfig(schema, { file: f, envPrefix: 'NONE_', env: {} }));
    expect(e.message.startsWith(`invalid config ${f}: `)).toBe(true);
    expect(e.message).toContain('nodeId: ');
    expect(e.message).toContain('listen.port: ');
    expect(e.message).toContain('peers.0: ');
    expect(e.message.split('; ')).toHaveLength(3);
  });

  it('names the env prefix when there is no file', () => {
    const e = configError(() =>
      loadConfig(schema, { envPrefix: 'TESSERA_C_', env: { TESSERA_C_LISTEN: '{"port": 99999}' } }),
    );
    expect(e.message).toMatch(/^invalid config \(env TESSERA_C_\*\): /);
    expect(e.message).toContain('nodeId: ');
    expect(e.message).toContain('listen.port: ');
  });

  it('a missing file is a CONFIG error naming the file', () => {
    const missing = join(dir, 'nope.json');
    const e = configError(() => loadConfig(schema, { file: missing, envPrefix: 'X_', env: {} }));
    expect(e.message).toBe(`config file ${missing} not found`);
  });

  it('an unparsable file is a CONFIG error naming the file, without quoting its content', async () => {
    const f = await file('broken.json', '{"nodeId": "hunter2-secret", oops}');
    const e = configError(() => loadConfig(schema, { file: f, envPrefix: 'X_', env: {} }));
    expect(e.message).toContain(f);
    expect(e.message).toContain('not valid JSON');
    expect(e.message).not.toContain('hunter2');
    const arr = await file('array.json', '[1,2]');
    expect(configError(() => loadConfig(schema, { file: arr, envPrefix: 'X_', env: {} })).message).toContain(arr);
  });

  it('envName converts camelCase keys', () => {
    expect(envName('fooBar')).toBe('FOO_BAR');
    expect(envName('metricsURL')).toBe('METRICS_URL');
    expect(envName('tlsCAFile')).toBe('TLS_CA_FILE');
    expect(envName('port')).toBe('PORT');
  });
});

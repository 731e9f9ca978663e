import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@tessera/runtime';

function capture(level?: string) {
  const dest = new PassThrough();
  const chunks: string[] = [];
  dest.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  const log = createLogger('signer-test', { destination: dest, ...(level ? { level } : {}) });
  const lines = async () => {
    await new Promise((r) => setImmediate(r));
    return chunks
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  return { log, text: () => chunks.join(''), lines };
}

describe('createLogger', () => {
  it('redacts secret-bearing fields, top-level and nested', async () => {
    const c = capture();
    const share = 'aa11bb22cc33dd44';
    const signingShare = 'ee55ff66';
    c.log.info(
      {
        share,
        nested: { signingShare, keyId: 'k1' },
        task: { nonces: ['n0nce1'], kek: 'k3k', key: 'pr1v', secret: 's3cr3t' },
      },
      'stored share',
    );
    const [line] = await c.lines();
    for (const v of [share, signingShare, 'n0nce1', 'k3k', 'pr1v', 's3cr3t']) expect(c.text()).not.toContain(v);
    expect(line).toMatchObject({
      service: 'signer-test',
      msg: 'stored share',
      share: '<redacted>',
      nested: { signingShare: '<redacted>', keyId: 'k1' },
      task: { nonces: '<redacted>', kek: '<redacted>', key: '<redacted>', secret: '<redacted>' },
    });
    expect(line?.level).toBe(30);
    expect(line?.pid).toBe(process.pid);
  });

  it('honours the level option and TESSERA_LOG_LEVEL', async () => {
    const c = capture('warn');
    c.log.info('hidden');
    c.log.warn('shown');
    expect((await c.lines()).map((l) => l.msg)).toEqual(['shown']);

    const prev = process.env.TESSERA_LOG_LEVEL;
    process.env.TESSERA_LOG_LEVEL = 'debug';
    try {
      const d = capture();
      d.log.debug('dbg');
      expect((await d.lines()).map((l) => l.msg)).toEqual(['dbg']);
    } finally {
      if (prev === undefined) delete process.env.TESSERA_LOG_LEVEL;
      else process.env.TESSERA_LOG_LEVEL = prev;
    }
  });

  it('rejects an unknown level with CONFIG', () => {
    expect(() => createLogger('x', { level: 'loud', destination: new PassThrough() })).toThrow(
      expect.objectContaining({ code: 'CONFIG' }),
    );
  });
});

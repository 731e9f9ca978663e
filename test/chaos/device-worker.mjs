/**
 * A device (the Device SDK on its own sealed store) in a process of its own, so the chaos
 * driver can SIGKILL it like a phone whose app is killed. One JSON request per stdin line
 * (`{id, op, args}`), one JSON answer per stdout line (`{id, ok, res}` or `{id, ok: false,
 * error: {code, message}}`); the first line is `{ready, pid}`. Byte strings travel as hex.
 *
 *   node device-worker.mjs <store location> <storage key file (hex)>
 *
 * Runs the compiled SDK (packages/device/dist), like the daemons run from dist.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fromHex } from '@tessera/core';
import { Device } from '@tessera/device';

const [location, keyFile] = process.argv.slice(2);
if (!location || !keyFile) {
  process.stderr.write('usage: device-worker.mjs <location> <storage key file>\n');
  process.exit(2);
}
const device = await Device.open({ location, storageKey: fromHex(readFileSync(keyFile, 'utf8').trim()) });
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const ops = {
  init: (a) => device.init(a.id),
  enrol: (a) => device.enrol(a.url, a.token),
  keygen: (a) => device.keygen(a.url, { suite: a.suite, threshold: a.threshold, ...(a.with ? { with: a.with } : {}) }),
  reserve: (a) => device.reserve(a.url, { keyId: a.keyId, count: a.count }),
  sign: async (a) => {
    const p = await device.signOffline({ keyId: a.keyId, message: fromHex(a.message) });
    return { packageId: p.packageId, keyId: p.keyId, bytes: p.bytes.length };
  },
  sync: (a) => device.sync(a.url),
  queue: () => device.queue(),
  status: () => device.status(),
};

let closing = false;
async function close(code) {
  if (closing) return;
  closing = true;
  await device.close().catch(() => undefined);
  process.exit(code);
}

createInterface({ input: process.stdin }).on('line', async (line) => {
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    return;
  }
  const { id, op, args } = msg;
  if (op === 'close') {
    out({ id, ok: true, res: {} });
    await close(0);
    return;
  }
  const fn = ops[op];
  if (!fn) return out({ id, ok: false, error: { code: 'INVALID_ARGUMENT', message: `unknown op ${op}` } });
  try {
    out({ id, ok: true, res: await fn(args ?? {}) });
  } catch (e) {
    out({ id, ok: false, error: { code: typeof e?.code === 'string' ? e.code : 'INTERNAL', message: String(e?.message ?? e) } });
  }
});
// The driver went away: close the store cleanly and leave.
process.stdin.on('end', () => void close(0));
out({ ready: true, pid: process.pid });

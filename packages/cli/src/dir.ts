/**
 * Which cluster a command means: `--dir`, else `$TESSERA_DIR`, else the nearest `.tessera/` at or
 * above the cwd (where `tessera dev` writes `client.json`).
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export function resolveDir(dir?: string): string {
  if (dir) return resolve(dir);
  if (process.env.TESSERA_DIR) return resolve(process.env.TESSERA_DIR);
  let d = process.cwd();
  for (;;) {
    if (existsSync(join(d, '.tessera', 'client.json'))) return join(d, '.tessera');
    const up = dirname(d);
    if (up === d) return resolve('.tessera');
    d = up;
  }
}

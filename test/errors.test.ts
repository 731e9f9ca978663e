/**
 * One error vocabulary: every package's errors are `TesseraError`s whose code is in core's one
 * `ErrorCode` list, and docs/ERRORS.md (the codes as API) lists exactly that list.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ErrorCode, TesseraError, asErrorCode, isTesseraError } from '@tessera/core';
import { StoreError, StoreErrorCode } from '@tessera/store';
import { RemoteError, TesseraRuntimeError } from '@tessera/runtime';
import { SignerError } from '@tessera/signer';
import { CoordinatorError } from '@tessera/coordinator';
import { DeviceError } from '@tessera/device';
import { CliError } from '@tessera/cli';

const root = fileURLToPath(new URL('..', import.meta.url));
const codes = new Set(Object.keys(ErrorCode));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') && !p.endsWith('.gen.ts') ? [p] : [];
  });
}

describe('one error vocabulary', () => {
  it("every code a package raises (new XError('CODE', …), policy and store codes) is in ErrorCode", () => {
    const raised = new Map<string, string>();
    for (const pkg of readdirSync(join(root, 'packages'))) {
      for (const f of sources(join(root, 'packages', pkg, 'src'))) {
        const text = readFileSync(f, 'utf8');
        for (const m of text.matchAll(/(?:Error|Refusal)\(\s*'([A-Z][A-Z_]+)'/g))
          raised.set(m[1]!, f.slice(root.length));
      }
    }
    expect(raised.size).toBeGreaterThan(30);
    const unknown = [...raised].filter(([c]) => !codes.has(c));
    expect(unknown, 'codes raised but not in ErrorCode').toEqual([]);
    expect(Object.values(StoreErrorCode).filter((c) => !codes.has(c))).toEqual([]);
  });

  it('every package error is a TesseraError with its code and culprits; a foreign code becomes INTERNAL', () => {
    const made: TesseraError[] = [
      new SignerError('NONCE_REUSED', 'x', ['signer-2']),
      new CoordinatorError('NO_QUORUM', 'x', ['signer-3']),
      new DeviceError('WEAK_PASSWORD', 'x'),
      new CliError('USAGE', 'x'),
      new StoreError('STORE_CORRUPT', 'x'),
      new TesseraRuntimeError('CONFIG', 'x'),
      new RemoteError('POLICY_DENIED', 'x', 7, ['signer-1']),
    ];
    for (const e of made) {
      expect(e).toBeInstanceOf(TesseraError);
      expect(isTesseraError(e)).toBe(true);
      expect(codes.has(e.code)).toBe(true);
      expect(e.toJSON()).toMatchObject({ name: e.constructor.name, code: e.code, message: 'x' });
    }
    expect(made.map((e) => e.culprits.length)).toEqual([1, 1, 0, 0, 0, 0, 1]);
    expect(new CoordinatorError('SOMETHING_ELSE', 'x').code).toBe('INTERNAL');
    expect(asErrorCode('NONCE_REUSED')).toBe('NONCE_REUSED');
    expect(asErrorCode('toString')).toBe('INTERNAL');
  });

  it('docs/ERRORS.md lists exactly the codes of ErrorCode', () => {
    const doc = readFileSync(join(root, 'docs/ERRORS.md'), 'utf8');
    const listed = [...doc.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(listed.sort()).toEqual([...codes].sort());
  });
});

import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const pkg = (name: string) => fileURLToPath(new URL(`./packages/${name}/src/index.ts`, import.meta.url));

// Tests run against sources (aliases below), so a test never sees a stale build. Multi-process
// tests spawn the compiled daemons from dist/, which `npm test` builds first (`tsc -b`).
export default defineConfig({
  resolve: {
    alias: {
      // Must precede '@tessera/core': string aliases also match as a prefix ('@tessera/core/...').
      '@tessera/core/descriptor': fileURLToPath(new URL('./packages/core/src/wire/descriptor.gen.ts', import.meta.url)),
      '@tessera/core/merchant': fileURLToPath(new URL('./packages/core/src/merchant.ts', import.meta.url)),
      '@tessera/core/package-check': fileURLToPath(new URL('./packages/core/src/package-check.ts', import.meta.url)),
      '@tessera/core/package-payment': fileURLToPath(
        new URL('./packages/core/src/package-payment.ts', import.meta.url),
      ),
      '@tessera/core/suite-ids': fileURLToPath(new URL('./packages/core/src/suite-ids.ts', import.meta.url)),
      '@tessera/core': pkg('core'),
      '@tessera/ecdsa': pkg('ecdsa'),
      '@tessera/store': pkg('store'),
      '@tessera/runtime': pkg('runtime'),
      '@tessera/signer': pkg('signer'),
      '@tessera/coordinator': pkg('coordinator'),
      '@tessera/device': pkg('device'),
      '@tessera/cli': pkg('cli'),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two test files at a time on a 2-core machine (vitest's default there is one): most files
    // wait on child processes, gRPC and fsync, so two overlap well. Measured on fresh clones: one
    // file at a time 596 s, two 407–420 s (when the suite was smaller), two with isolate:false
    // below and 85 files 477 s (the whole .ci/run 8 min 55 s). Three ran in 456–529 s but failed
    // a test in three runs of six, each a wait inside a test that the heavier load outlasted (a
    // console reshare's outcome, a calibration reshare on a slowed link, a link challenge within
    // 5 s): two it is.
    maxWorkers: 2,
    // One module registry per worker, not per file: a file's imports (the protocol, gRPC, the
    // stores, through vite's module runner) are evaluated once per worker instead of once per file.
    // Every file still starts its own servers, stores and processes and stops them. Measured on a
    // fresh clone, same tree: vitest import time 115 s → 63 s, CPU (user + sys) 1,014 s → 881 s.
    isolate: false,
    reporters: ['default'],
  },
});

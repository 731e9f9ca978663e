/**
 * The pieces of a hostile-coordinator test: in-process signer engines (their own LevelDB), a
 * REAL signer process linked to the hostile coordinator (test/hostile.ts), and a DKG relayed
 * among them exactly as packages/coordinator does. Shared by malicious-coordinator.test (FROST)
 * and ecdsa-hostile.test.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import {
  ParticipantIdentity,
  PayloadKind,
  dkgSessionHashOfParams,
  encodeDkgParams,
  equalBytes,
  openEnvelope,
  type LinkResult,
  type LinkTask,
  type ParticipantPublic,
  type Suite,
} from '@tessera/core';
import { SealedStore, kekFromBytes } from '@tessera/store';
import { SignerEngine, type Policy } from '@tessera/signer';
import { SIGNER_BIN, startProcess, type Proc } from './harness.js';
import type { Hostile } from './hostile.js';

/** A DKG participant as the relay sees it: one task body in, one result out. */
export interface Participant {
  id: string;
  info: ParticipantPublic;
  call(kind: NonNullable<LinkTask['body']>, value: unknown): Promise<LinkResult>;
}

/** An in-process signer engine with its own LevelDB under `dir` (its store is pushed to `stores`). */
export async function localEngine(
  dir: string,
  id: string,
  policy: Policy,
  stores: SealedStore[],
): Promise<SignerEngine> {
  const d = mkdtempSync(join(dir, `${id}-`));
  const store = await SealedStore.open(d, kekFromBytes(new Uint8Array(randomBytes(32))));
  stores.push(store);
  return new SignerEngine({ identity: ParticipantIdentity.generate(id), store, policy });
}

let localTask = 1_000_000;
export const engineParticipant = (e: SignerEngine): Participant => ({
  id: e.id,
  info: e.identity.public,
  call: (kind, value) => e.handle({ taskId: localTask++, body: kind, [kind]: value } as LinkTask),
});

/** The real signer process as a participant: every task goes through the hostile coordinator. */
export const realParticipant = (hostile: Hostile, id: string, info: ParticipantPublic): Participant => ({
  id,
  info,
  call: (kind, value) => hostile.sendTo(id, { [kind]: value }),
});

/** Runs a DKG exactly as packages/coordinator does: dkgStart with the params, then bundles of rounds 1, 2, 3. */
export async function relayDkg(parts: Participant[], threshold: number, suite: Suite): Promise<LinkResult[]> {
  const params = encodeDkgParams({
    suite,
    sessionId: new Uint8Array(randomBytes(32)),
    threshold,
    participants: parts.map((p) => p.info),
  });
  const sessionHash = dkgSessionHashOfParams(params);
  const kinds = [PayloadKind.DKG_ROUND1, PayloadKind.DKG_ROUND2, PayloadKind.DKG_CONFIRM];
  let results = await Promise.all(parts.map((p) => p.call('dkgStart', { params })));
  for (const round of [1, 2, 3] as const) {
    results.forEach((r, i) => {
      expect(r.error?.code, `${parts[i]!.id} in round ${round}`).toBeUndefined();
      expect(r.body).toBe('envelope');
      // Every round message is signed by its sender's identity key (for the real signer: its hello key).
      expect(equalBytes(openEnvelope(r.envelope as Uint8Array, kinds[round - 1]!).sender, parts[i]!.info.signKey)).toBe(
        true,
      );
    });
    const envelopes = results.map((r) => r.envelope as Uint8Array);
    results = await Promise.all(parts.map((p) => p.call('dkgBundle', { sessionHash, round, envelopes })));
  }
  return results;
}

/** Starts a real signer process `id` (own LevelDB and KEK file under `dir`) dialling the hostile coordinator. */
export async function startRealSigner(opts: {
  dir: string;
  id: string;
  hostile: Hostile;
  tls: unknown;
  policy: Record<string, unknown>;
}): Promise<{ proc: Proc; config: { dataDir: string; kekFile: string } }> {
  const kekFile = join(opts.dir, `${opts.id}.kek`);
  writeFileSync(kekFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  const config = { dataDir: join(opts.dir, opts.id, 'data'), kekFile };
  const cfgFile = join(opts.dir, `${opts.id}.json`);
  writeFileSync(
    cfgFile,
    JSON.stringify({
      id: opts.id,
      dataDir: config.dataDir,
      coordinator: `127.0.0.1:${opts.hostile.server.port}`,
      kekFile,
      tls: opts.tls,
      policy: opts.policy,
    }),
  );
  const proc = startProcess(SIGNER_BIN, cfgFile);
  await proc.ready;
  return { proc, config };
}

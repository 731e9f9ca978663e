/**
 * Real parts for the coordinator's service tests: signer engines in this process, each on its
 * own LevelDB store in a temp dir, linked by direct calls (the multi-process tests run the same
 * engines behind gRPC). A link can be cut (`down`) or its answers rewritten (`tamper`), as a
 * faulty or hostile signer would.
 */
import { EcdsaService } from '../src/ecdsa.js';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ParticipantIdentity,
  createSignIntent,
  getSuite,
  toHex,
  type LinkResult,
  type LinkTask,
  type Rng,
  type SuiteId,
} from '@tessera/core';
import { SignerEngine } from '@tessera/signer';
import { AuditLog, SealedStore, kekFromBytes } from '@tessera/store';
import { afterAll } from 'vitest';
import { operators, standingRefresh } from '../../../test/authority.js';
import { KeyRegistry } from '../src/key-registry.js';
import { KeygenService } from '../src/keygen.js';
import { LifecycleService } from '../src/lifecycle.js';
import { OfflineService } from '../src/offline.js';
import { Participants } from '../src/participants.js';
import { CommitmentPools } from '../src/pools.js';
import { SigningService } from '../src/signing.js';
import type { CoordinatorEvent, ParticipantHandle } from '../src/types.js';

const dirs: string[] = [];
const stores: SealedStore[] = [];
afterAll(async () => {
  for (const s of stores) await s.close().catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A sealed LevelDB store in a fresh temp dir, closed and removed after the file's tests. */
export async function openStore(): Promise<SealedStore> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-coord-'));
  dirs.push(dir);
  const s = await SealedStore.open(dir, kekFromBytes(new Uint8Array(randomBytes(32))));
  stores.push(s);
  return s;
}

export type Tamper = (r: LinkResult, task: Omit<LinkTask, 'taskId'>) => LinkResult;

export interface Signers {
  readonly engines: SignerEngine[];
  readonly handles: ParticipantHandle[];
  readonly requester: ParticipantIdentity;
  /** Answers of a signer rewritten before the coordinator sees them. */
  readonly tamper: Map<string, Tamper>;
  /** Signers whose link fails every call. */
  readonly down: Set<string>;
  /** Tasks each signer was sent, by body. */
  readonly sent: Map<string, string[]>;
}

/** `n` signer engines (`signer-1`…) that accept DKG and signing for one requester. */
export async function signers(n: number): Promise<Signers> {
  const requester = ParticipantIdentity.generate('wallet-api');
  const tamper = new Map<string, Tamper>();
  const down = new Set<string>();
  const sent = new Map<string, string[]>();
  const engines: SignerEngine[] = [];
  for (let i = 1; i <= n; i++)
    engines.push(
      new SignerEngine({
        identity: ParticipantIdentity.generate(`signer-${i}`),
        store: await openStore(),
        policy: {
          allowKeygen: true,
          allowUnpinnedPeers: true,
          operators,
          requesters: [{ id: 'wallet-api', publicKey: toHex(requester.public.signKey), keys: ['*'] }],
        },
      }),
    );
  let taskId = 0;
  const handles = engines.map(
    (s): ParticipantHandle => ({
      info: s.identity.public,
      connectedSince: Date.now(),
      async call(task) {
        sent.set(s.id, [...(sent.get(s.id) ?? []), task.body ?? '']);
        if (down.has(s.id)) throw new Error('link down');
        const r = await s.handle({ ...task, taskId: ++taskId });
        return tamper.get(s.id)?.(r, task) ?? r;
      },
    }),
  );
  return { engines, handles, requester, tamper, down, sent };
}

/** An audit log on a fresh store (the services append to it). */
export async function auditLog(): Promise<{ store: SealedStore; audit: AuditLog }> {
  const store = await openStore();
  return { store, audit: new AuditLog(store) };
}

/** The coordinator's services over real signers, built from their components as the facade builds them. */
export async function services(
  s: Signers,
  opts: {
    maxAttempts?: number;
    batch?: number;
    cacheSize?: number;
    /** Which linked participants are devices (default: none). */
    isDevice?: (id: string) => boolean;
    /** The operators' admissions of a device (default: none). */
    admissions?: (id: string) => Promise<Uint8Array[]>;
    /** More handles to link besides the signers' (devices). */
    link?: readonly ParticipantHandle[];
  } = {},
) {
  const { store, audit } = await auditLog();
  const events: CoordinatorEvent[] = [];
  const onEvent = (e: CoordinatorEvent) => void events.push(e);
  const clock = Date.now;
  const rng = ((k = 32) => new Uint8Array(randomBytes(k))) as Rng;
  const timeout = 5_000;
  const participants = new Participants(clock);
  const registry = new KeyRegistry(store, opts.cacheSize);
  const pools = new CommitmentPools({ participants, registry, timeout, batch: opts.batch ?? 4, onEvent });
  const isDevice = opts.isDevice ?? (() => false);
  const ecdsa = new EcdsaService({
    rng,
    timeout,
    participants,
    epochOf: (keyId) => registry.summary(keyId)?.epoch,
    onEvent,
  });
  const keygen = new KeygenService({
    ecdsa,
    audit,
    clock,
    rng,
    timeout,
    participants,
    registry,
    pools,
    isDevice,
    admissions: opts.admissions ?? (async () => []),
    onEvent,
  });
  const signing = new SigningService({
    ecdsa,
    store,
    audit,
    clock,
    rng,
    timeout,
    maxAttempts: opts.maxAttempts ?? 3,
    participants,
    registry,
    pools,
    isDevice,
    onEvent,
  });
  const lifecycle = new LifecycleService({
    ecdsa,
    store,
    audit,
    clock,
    rng,
    timeout,
    standingRefresh: standingRefresh(),
    onEvent,
    participant: (id) => participants.get(id),
    device: () => undefined,
    key: (keyId) => registry.key(keyId),
    summary: (keyId) => registry.summary(keyId),
    keys: () => registry.keys(),
    keyIdsOf: (id) => registry.keyIdsOf(id),
    committed: (next) => {
      registry.set(next);
      for (const r of next.key.roster) participants.know(r.id);
      pools.dropKey(next.keyId);
    },
  });
  const offline = new OfflineService({
    store,
    audit,
    clock,
    timeout,
    participants,
    registry,
    isDevice,
    ecdsa,
    onEvent,
  });
  for (const h of [...s.handles, ...(opts.link ?? [])]) participants.link(h);
  return { store, audit, events, participants, registry, pools, keygen, signing, lifecycle, offline };
}

/** A sign intent of `s`'s requester. */
export function intent(s: Signers, suite: SuiteId, keyId: string, message: Uint8Array): Uint8Array {
  return createSignIntent(s.requester, {
    suite: getSuite(suite),
    keyId,
    message,
    requestId: new Uint8Array(randomBytes(16)),
    notAfter: Date.now() + 60_000,
  });
}

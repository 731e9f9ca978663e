/**
 * A signer's part in key generation (core's `DkgParticipant`): it joins a DKG only under its
 * policy — key generation allowed, peers pinned (or explicitly unpinned, for development), every
 * non-device participant one of its pinned peers, every device admitted by the operators — and
 * keeps the share it derives sealed in its vault, audited, before it states the key.
 */
import {
  DkgParticipant,
  checkDeviceAdmission,
  encodeKeyRecord,
  encodeKeyShareRecord,
  groupPublicKey,
  keyDigest,
  toHex,
  type KeyShareRecord,
  type LinkResult,
  type LinkTask,
  type ParticipantIdentity,
  type Rng,
} from '@tessera/core';
import type { AuditLog, ShareVault } from '@tessera/store';
import { SignerError } from './errors.js';
import { type Policy, unpinnedReason } from './policy.js';

/** What key generation needs of its signer. */
export interface KeygenContext {
  readonly identity: ParticipantIdentity;
  readonly rng: Rng;
  readonly clock: () => number;
  readonly vault: ShareVault;
  readonly audit: AuditLog;
  policy(): Policy;
  /** Whether `p` is one of the pinned peers (id, signing and encryption key). */
  pinned(p: { id: string; signKey: Uint8Array; encKey: Uint8Array }): boolean;
  /** Caches a key record just stored. */
  remember(rec: KeyShareRecord): void;
  onEvent(e: { type: 'keygen'; keyId: string }): void;
}

export class KeygenSigner {
  readonly #ctx: KeygenContext;
  readonly #dkg: DkgParticipant;

  constructor(ctx: KeygenContext) {
    this.#ctx = ctx;
    this.#dkg = new DkgParticipant(ctx.identity, ctx.rng);
  }

  /** Round one of a DKG the coordinator proposes, if this node's policy lets it join. */
  async start(paramsBytes: Uint8Array | undefined, admissions: readonly Uint8Array[]): Promise<Uint8Array> {
    if (!this.#ctx.policy().allowKeygen)
      throw new SignerError('POLICY_DENIED', 'this node does not take part in key generation');
    return this.#dkg.start(paramsBytes, (cfg) => {
      const policy = this.#ctx.policy();
      const why = unpinnedReason(policy);
      if (why) throw new SignerError('POLICY_DENIED', why);
      if (!policy.peers?.length) return; // allowUnpinnedPeers (development)
      const me = this.#ctx.identity.id;
      const unknown = cfg.participants.filter((p) => p.id !== me && !p.device && !this.#ctx.pinned(p));
      if (unknown.length)
        throw new SignerError(
          'POLICY_DENIED',
          `DKG roster has participants this node does not know: ${unknown.map((p) => p.id).join(', ')}`,
        );
      // Devices enrol at run time and cannot be pinned: each needs the operators' admission. They
      // are marked in the roster every participant confirms; only marked devices get reservations.
      for (const p of cfg.participants) if (p.device) checkDeviceAdmission(p, admissions, policy.operators);
    });
  }

  /** The next rounds; when the DKG is done, the share is sealed and audited before the key is stated. */
  async bundle(b: LinkTask['dkgBundle']): Promise<Omit<LinkResult, 'taskId'>> {
    const step = this.#dkg.bundle(b);
    if ('envelope' in step) return { body: 'envelope', envelope: step.envelope };
    const out = step.done;
    const keyId = out.keyId;
    const rec: KeyShareRecord = {
      keyId,
      epoch: 0,
      key: out.key,
      share: out.share,
      transcriptHash: out.transcriptHash,
      createdAt: this.#ctx.clock(),
    };
    await this.#ctx.vault.putShare(keyId, 0, encodeKeyShareRecord(rec));
    this.#ctx.remember(rec);
    await this.#ctx.audit.append({
      type: 'keygen',
      actor: this.#ctx.identity.id,
      data: {
        keyId,
        suite: out.key.suite.id,
        threshold: out.key.threshold,
        participants: out.key.roster.map((r) => r.id).join(','),
        publicKey: toHex(groupPublicKey(out.key)),
      },
    });
    this.#ctx.onEvent({ type: 'keygen', keyId });
    return {
      body: 'dkgDone',
      dkgDone: {
        keyId,
        keyDigest: keyDigest(out.key),
        keyRecord: encodeKeyRecord({ keyId, epoch: 0, key: out.key, createdAt: rec.createdAt }),
      },
    };
  }

  /** Drops a DKG session the coordinator gave up on. */
  abort(sessionHash: Uint8Array): void {
    this.#dkg.abort(sessionHash);
  }
}

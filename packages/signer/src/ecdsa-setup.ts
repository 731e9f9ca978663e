/**
 * The pairwise setup of an ECDSA key on a signer node: `@tessera/ecdsa`'s two-phase setup state
 * machine (setup-store.ts, the same one a device runs) over this node's sealed LevelDB (every
 * write synced) and its audit chain. Its refusals are the engine's typed errors.
 */
import type { KeyShareRecord, ParticipantIdentity, Rng } from '@tessera/core';
import { EcdsaSetups as SetupMachine, keyView, type EcdsaAnswer } from '@tessera/ecdsa';
import type { AuditLog, SealedKV } from '@tessera/store';

export type { EcdsaAnswer };
export { keyView as view };

export interface EcdsaSetupContext {
  readonly identity: ParticipantIdentity;
  readonly audit: AuditLog;
  readonly store: SealedKV;
  readonly rng: Rng;
  key(keyId: string): Promise<KeyShareRecord>;
}

/** The signer's setups: the shared machine with a synced store and the node's audit chain. */
export class EcdsaSetups extends SetupMachine {
  constructor(ctx: EcdsaSetupContext) {
    super({
      identity: ctx.identity,
      rng: ctx.rng,
      key: (keyId) => ctx.key(keyId),
      store: { get: (k) => ctx.store.get(k), batch: (ops) => ctx.store.batch([...ops], { sync: true }) },
      audit: async (entry) => void (await ctx.audit.append(entry)),
    });
  }
}

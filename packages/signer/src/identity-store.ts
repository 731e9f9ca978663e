/**
 * The node's identity in its sealed store: created on first start, read afterwards. The daemon
 * uses it at start (and `tessera-signer --init` prints its public keys); `tessera dev` reads its
 * signers' public keys the same way, in its own process, before it starts them.
 */
import { ParticipantIdentity, decodeIdentityRecord, encodeIdentityRecord, toHex } from '@tessera/core';
import { SealedStore, kekFromConfig, type SealedKV } from '@tessera/store';
import { loadConfig } from '@tessera/runtime';
import { SignerConfigSchema } from './config.js';

/** Loads the node's identity from its store, creating it on first start. */
export async function loadOrCreateIdentity(store: SealedKV, id: string): Promise<ParticipantIdentity> {
  const raw = await store.get('identity');
  if (raw) {
    const identity = decodeIdentityRecord(raw);
    raw.fill(0);
    if (identity.id !== id) throw new Error(`data directory belongs to participant ${identity.id}, not ${id}`);
    return identity;
  }
  const identity = ParticipantIdentity.generate(id);
  const record = encodeIdentityRecord(identity);
  await store.put('identity', record, { sync: true });
  record.fill(0);
  return identity;
}

/** A node's public keys, as peers pin them (what `tessera-signer --init` prints). */
export interface SignerPublicIdentity {
  id: string;
  signKey: string;
  encKey: string;
}

/**
 * Opens the store of the signer configured in `configFile` (it must not be running: LevelDB
 * holds one lock), creates or reads its identity and returns the public keys.
 */
export async function initSignerIdentity(configFile: string): Promise<SignerPublicIdentity> {
  const cfg = loadConfig(SignerConfigSchema, { file: configFile, envPrefix: 'TESSERA_SIGNER_' });
  const kek = kekFromConfig(cfg);
  const store = await SealedStore.open(cfg.dataDir, kek).finally(() => kek.close?.());
  try {
    const identity = await loadOrCreateIdentity(store, cfg.id);
    return { id: identity.id, signKey: toHex(identity.public.signKey), encKey: toHex(identity.public.encKey) };
  } finally {
    await store.close();
  }
}

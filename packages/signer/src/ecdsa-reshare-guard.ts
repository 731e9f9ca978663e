/**
 * A reshare may not give a device a share of an ECDSA key: a device joins an ECDSA key by its
 * keygen only (the pairwise setup a reshare's new roster needs runs while every member is linked,
 * and a phone that was offline during the reshare could not set its pairs up; not built). A
 * signer refuses such a step itself, whatever the coordinator says (the coordinator refuses it too).
 */
import { type GroupKey, type LinkTask, decodeKeyRecord, decodeReshareParams } from '@tessera/core';

/**
 * Whether reshare task `t` would give a device a share of an ECDSA key — the key `held` here, or
 * else the one the task's old key record describes.
 */
export function reshareGivesDevicesEcdsa(t: NonNullable<LinkTask['lifecycle']>, held: GroupKey | undefined): boolean {
  let given: GroupKey | undefined;
  try {
    given = t.oldKeyRecord?.length ? decodeKeyRecord(t.oldKeyRecord).key : undefined;
  } catch {
    // the lifecycle participant refuses a malformed record itself
  }
  // The params decode against the key they were made for: the task's old record (a catch-up of a
  // missed epoch) or the held one. Params that decode against neither are refused by the
  // lifecycle participant itself, which decodes them the same way.
  for (const old of [given, held])
    if (old?.suite.scheme === 'ecdsa')
      try {
        return decodeReshareParams(t.params, old).newParticipants.some((p) => p.device);
      } catch {}
  return false;
}

/**
 * Browser entry for core.browser.test.ts: a 2-of-3 ed25519 DKG and a threshold signature, all
 * inside the page with @tessera/core (bundled from source by test/browser/harness.ts). Exposes
 * `window.tesseraSmoke()`, which returns hex strings for Node to verify independently.
 */
import {
  ParticipantIdentity,
  getSuite,
  groupPublicKey,
  runLocalDkg,
  runLocalSign,
  toHex,
  utf8ToBytes,
} from '@tessera/core';

export interface SmokeResult {
  publicKey: string;
  message: string;
  signature: string;
}

async function tesseraSmoke(): Promise<SmokeResult> {
  const suite = getSuite('ed25519');
  const ids = ['signer-1', 'signer-2', 'device-1'].map((id) => ParticipantIdentity.generate(id));
  const out = runLocalDkg(suite, 2, ids);
  const keys = new Set([...out.values()].map((o) => toHex(groupPublicKey(o.key))));
  if (keys.size !== 1) throw new Error(`participants disagree on the group key: ${[...keys].join(', ')}`);
  const key = (
    out.get('signer-1') ??
    (() => {
      throw new Error('no DKG output for signer-1');
    })()
  ).key;
  const shares = new Map([...out].map(([id, o]) => [id, o.share] as const));
  const message = utf8ToBytes(`tessera browser smoke ${toHex(crypto.getRandomValues(new Uint8Array(8)))}`);
  // A quorum without signer-1, whose output supplied the key: any 2 of the 3 must do.
  const signature = runLocalSign(key, shares, ['signer-2', 'device-1'], message);
  return { publicKey: toHex(groupPublicKey(key)), message: toHex(message), signature: toHex(signature) };
}

(globalThis as unknown as { tesseraSmoke: typeof tesseraSmoke }).tesseraSmoke = tesseraSmoke;

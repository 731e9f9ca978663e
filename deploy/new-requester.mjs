#!/usr/bin/env node
/**
 * Creates an API requester identity for a deployed cluster (what `tessera dev` does for its own
 * dev cluster): signers only sign intents signed by a requester listed in their policy.
 *
 *   node deploy/new-requester.mjs [--out deploy/secrets] [--id ops-client]
 *                                 [--coordinator localhost:7400] [--force]
 *
 * Writes (mode 0600):
 *   <out>/client/client.json   for the CLI: `npx tessera status --dir <out>/client`
 *                              (coordinator address, mTLS files <out>/tls/client*.pem, the
 *                              requester's secret keys)
 *   <out>/signer-policy.env    TESSERA_SIGNER_POLICY=<policy JSON naming the requester's public
 *                              key>, read by the signers in deploy/compose.yaml (env_file)
 * and prints the requester entry (public only) to add to a signer policy elsewhere (Kubernetes:
 * the `requesters` list in deploy/k8s/signers.yaml).
 *
 * Run it from the repository after `npm ci` (it imports @tessera/core).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ParticipantIdentity, toHex } from '@tessera/core';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
const out = resolve(opt('out', 'deploy/secrets'));
const id = opt('id', 'ops-client');
const coordinator = opt('coordinator', 'localhost:7400');
const force = args.includes('--force');

const clientDir = join(out, 'client');
const clientFile = join(clientDir, 'client.json');
if (existsSync(clientFile) && !force) {
  process.stderr.write(
    `new-requester: ${clientFile} exists; pass --force to replace it (signers must then be given the new public key)\n`,
  );
  process.exit(1);
}
mkdirSync(clientDir, { recursive: true, mode: 0o700 });

const requester = ParticipantIdentity.generate(id);
const s = requester.exportSecrets();
const tlsDir = join(out, 'tls');
writeFileSync(
  clientFile,
  JSON.stringify(
    {
      coordinator,
      tls: { ca: join(tlsDir, 'ca.pem'), cert: join(tlsDir, 'client.pem'), key: join(tlsDir, 'client-key.pem') },
      requester: { id, signSecret: toHex(s.signSecret), encSecret: toHex(s.encSecret) },
    },
    null,
    2,
  ) + '\n',
  { mode: 0o600 },
);
s.signSecret.fill(0);
s.encSecret.fill(0);

const entry = { id, publicKey: toHex(requester.public.signKey), keys: ['*'] };
const policy = { allowKeygen: true, requesters: [entry] };
// Single quotes: Compose takes the value literally (no interpolation, no escapes).
writeFileSync(join(out, 'signer-policy.env'), `TESSERA_SIGNER_POLICY='${JSON.stringify(policy)}'\n`, { mode: 0o600 });

process.stdout.write(
  `${JSON.stringify({ clientFile, policyEnv: join(out, 'signer-policy.env'), requester: entry })}\n`,
);

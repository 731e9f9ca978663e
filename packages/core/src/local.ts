/**
 * In-process drivers: run a whole DKG or signing flow among participants held in one process,
 * routing every message exactly as a coordinator would (each participant sees the broadcast of
 * all the others). Used by the demo, tests and benchmarks; the cluster runs the same state
 * machines across processes.
 */
import { randomBytes } from '@noble/hashes/utils.js';
import type { Rng } from './bytes.js';
import { startDkg, type DkgConfig, type DkgOutput } from './dkg.js';
import type { ParticipantIdentity } from './identity.js';
import type { GroupKey, KeyShare } from './key.js';
import { commit, signShare, SigningSession, type NonceCommitment, type SigningNonces } from './sign.js';
import type { Suite } from './suites.js';

/**
 * Runs a complete DKG among `identities` (all participants) and returns each one's output.
 * `devices` names the participants recorded as devices in the key's roster.
 */
export function runLocalDkg(
  suite: Suite,
  threshold: number,
  identities: readonly ParticipantIdentity[],
  rng: Rng = randomBytes,
  devices: readonly string[] = [],
): Map<string, DkgOutput> {
  const participants = identities.map((i) => (devices.includes(i.id) ? { ...i.public, device: true } : i.public));
  const cfg: DkgConfig = { suite, sessionId: rng(32), threshold, participants };
  const r1 = identities.map((id) => startDkg(cfg, id, rng));
  const round1 = r1.map((x) => x.round1);
  const r2 = r1.map((x) => x.state.receiveRound1(round1));
  const round2 = r2.map((x) => x.round2);
  const r3 = r2.map((x) => x.state.receiveRound2(round2));
  const confirms = r3.map((x) => x.confirm);
  const out = new Map<string, DkgOutput>();
  r3.forEach((x, i) => out.set((identities[i] as ParticipantIdentity).id, x.state.receiveConfirmations(confirms)));
  return out;
}

/** Signs `message` with the quorum `signers` (participant id → share) and returns the signature. */
export function runLocalSign(
  key: GroupKey,
  shares: ReadonlyMap<string, KeyShare>,
  signers: readonly string[],
  message: Uint8Array,
  rng: Rng = randomBytes,
): Uint8Array {
  const nonces = new Map<string, SigningNonces>();
  const commitments: NonceCommitment[] = [];
  for (const s of signers) {
    const share = shares.get(s);
    if (!share) throw new Error(`no share for ${s}`);
    const c = commit(share, rng);
    nonces.set(s, c.nonces);
    commitments.push(c.commitment);
  }
  const session = new SigningSession(key, message, commitments);
  const sigShares = new Map<string, Uint8Array>();
  for (const s of signers)
    sigShares.set(s, signShare(shares.get(s) as KeyShare, key, nonces.get(s) as SigningNonces, commitments, message));
  return session.aggregate(sigShares);
}

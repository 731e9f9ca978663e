/**
 * Known-answer tests for every Tessera ciphersuite against the frost-rs test vectors
 * (packages/core/test/vectors/frost/<suite>/), exercised only through `suite.frost` (noble's
 * RFC 9591 FROST) and the suite's own fields (`Fn`, `Point`, `publicKey`, `verify`, sizes).
 *
 * Files per suite:
 * - vectors.json                 RFC 9591 Appendix E (secp256k1-tr: frost-rs's own values)
 * - vectors-big-identifier.json  same dealer key, signers with identifiers 129/256/257
 * - vectors_dkg.json             a 2-of-3 frost-rs DKG (round-1 packages, shares, final keys)
 * - elements.json                one group element that every decoder must reject
 * - repair-share.json            not used here
 *
 * What the vector fields mean (checked below, not assumed):
 * - Signing vectors: `verifying_key_key` is the *untweaked* trusted-dealer group key
 *   `group_secret_key·G`. For secp256k1-tr frost-rs signs with that key as is (no TapTweak; the key
 *   happens to be even-Y, so the BIP340 even-Y normalisation is a no-op too) and `final_output.sig`
 *   is the 64-byte BIP340 signature `x(R) || z` valid under the x-only key `x(verifying_key_key)`.
 *   noble's `trustedDealer` likewise never tweaks, so the flow needs no adjustment.
 * - DKG vectors: per participant, `signing_key` is the polynomial's constant term a_i0 and
 *   `coefficient` is a_i1 (frost-rs `check_dkg_keygen` builds the polynomial from exactly these).
 *   `signing_shares[j]` in participant i's entry is the round-2 share participant i *receives* from
 *   j, i.e. f_j(i) (frost-rs `build_round_2_package`). The ed25519 file also carries `secret`
 *   fields (top-level and per participant) that frost-rs never reads and that match nothing here.
 * - secp256k1-tr DKG: frost-rs's `post_dkg` hook Taproot-tweaks the DKG output with an empty merkle
 *   root, and so does noble's `adjustDKG`. So the vector's `verifying_key` is NOT the sum of the
 *   participants' `vss_commitments[0]` (call it P) but the BIP341 output key
 *   Q = evenY(P) + int(TapTweak(x(P)))·G, which may itself have odd Y (here it does: 03…);
 *   `signing_share` is ±s_i + t (negated when P has odd Y), `verifying_share` is its point.
 *   noble's round3 output matches the vector byte for byte; the relation is asserted explicitly.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import type {
  DKG_Round1,
  DKG_Round2,
  DKG_Secret,
  FrostPublic,
  FrostSecret,
  NonceCommitments,
  Nonces,
} from '@noble/curves/abstract/frost.js';
import { SUITE_IDS, getSuite, type Suite, type SuiteId } from '../src/suites.js';

// ---------------------------------------------------------------------------------------------
// Vector file shapes
// ---------------------------------------------------------------------------------------------

interface SigningVectors {
  config: { MAX_PARTICIPANTS: string; NUM_PARTICIPANTS: string; MIN_PARTICIPANTS: string };
  inputs: {
    participant_list: number[];
    group_secret_key: string;
    verifying_key_key: string;
    message: string;
    share_polynomial_coefficients: string[];
    participant_shares: { identifier: number; participant_share: string }[];
  };
  round_one_outputs: {
    outputs: {
      identifier: number;
      hiding_nonce_randomness: string;
      binding_nonce_randomness: string;
      hiding_nonce: string;
      binding_nonce: string;
      hiding_nonce_commitment: string;
      binding_nonce_commitment: string;
      binding_factor_input: string;
      binding_factor: string;
    }[];
  };
  round_two_outputs: { outputs: { identifier: number; sig_share: string }[] };
  final_output: { sig: string };
}

interface DkgParticipant {
  identifier: number;
  signing_key: string;
  coefficient: string;
  vss_commitments: string[];
  proof_of_knowledge: string;
  signing_shares: Record<string, string>;
  verifying_share: string;
  signing_share: string;
}

interface DkgVectors {
  config: { MAX_PARTICIPANTS: number; MIN_PARTICIPANTS: number };
  inputs: { verifying_key: string } & Record<string, unknown>;
}

const SIGNING_FILES = ['vectors.json', 'vectors-big-identifier.json'] as const;
type SigningFile = (typeof SIGNING_FILES)[number];

function vectorText(id: SuiteId, file: string): string {
  return readFileSync(new URL(`./vectors/frost/${id}/${file}`, import.meta.url), 'utf8');
}
function loadSigning(id: SuiteId, file: SigningFile): SigningVectors {
  return JSON.parse(vectorText(id, file)) as SigningVectors;
}
function loadDkg(id: SuiteId): DkgVectors {
  return JSON.parse(vectorText(id, 'vectors_dkg.json')) as DkgVectors;
}
function loadInvalidElement(id: SuiteId): string {
  const e = JSON.parse(vectorText(id, 'elements.json')) as { elements: { invalid_element: string } };
  return e.elements.invalid_element;
}

/** `noUncheckedIndexedAccess` helper: the value must be there. */
function must<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`missing ${what}`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Generic helpers (suite-agnostic, through the suite's fields only)
// ---------------------------------------------------------------------------------------------

const scalar = (s: Suite, hex: string): bigint => s.Fn.fromBytes(hexToBytes(hex));
const scalarHex = (s: Suite, n: bigint): string => bytesToHex(s.Fn.toBytes(n));
const baseMulHex = (s: Suite, n: bigint): string => bytesToHex(s.Point.BASE.multiply(n).toBytes());
const ident = (s: Suite, n: number): string => s.frost.Identifier.fromNumber(n);

/** Horner evaluation of coefficients (constant term first) at x, in the suite's scalar field. */
function polyEval(s: Suite, coeffs: readonly bigint[], x: bigint): bigint {
  let acc = s.Fn.ZERO;
  for (let i = coeffs.length - 1; i >= 0; i--) acc = s.Fn.add(s.Fn.mul(acc, x), must(coeffs[i], 'coefficient'));
  return acc;
}

/** An RNG that hands out the given byte strings in order and fails loudly on anything else. */
function scriptedRng(chunks: Uint8Array[]): (n?: number) => Uint8Array<ArrayBuffer> {
  let i = 0;
  return (n?: number): Uint8Array<ArrayBuffer> => {
    const next = chunks[i++];
    if (next === undefined) throw new Error('scripted rng exhausted');
    if (n !== undefined && n !== next.length) throw new Error(`scripted rng: asked ${n}, have ${next.length}`);
    return new Uint8Array(next);
  };
}

/**
 * Bytes that noble's `randomScalar` (mapHashToField: `(int(bytes) mod (n-1)) + 1`, field
 * endianness) maps to exactly the scalar `c`. Lets `trustedDealer` draw the vector's coefficients.
 */
function scalarPreimage(s: Suite, c: bigint, len: number): Uint8Array {
  let v = c - 1n;
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    out[s.Fn.isLE ? i : len - 1 - i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Length of the R part of an emitted signature (x-only 32 for BIP340, else elementBytes). */
const sigRBytes = (s: Suite): number => s.signatureBytes - s.scalarBytes;

/** `fn()` either throws or returns false: the input was never accepted. */
function expectRejected(fn: () => unknown): void {
  let result: unknown;
  try {
    result = fn();
  } catch {
    return;
  }
  expect(result).toBe(false);
}

// ---------------------------------------------------------------------------------------------
// Signing-vector flow
// ---------------------------------------------------------------------------------------------

interface SigningContext {
  v: SigningVectors;
  signers: { min: number; max: number };
  msg: Uint8Array;
  coefficients: bigint[];
  pub: FrostPublic;
  secrets: Map<number, FrostSecret>;
  signerIds: number[];
}

const contextCache = new WeakMap<SigningVectors, SigningContext>();

/** Built once per vector file (up to 257 verifying shares); tests never mutate it. */
function signingContext(s: Suite, v: SigningVectors): SigningContext {
  let ctx = contextCache.get(v);
  if (ctx === undefined) contextCache.set(v, (ctx = buildSigningContext(s, v)));
  return ctx;
}

function buildSigningContext(s: Suite, v: SigningVectors): SigningContext {
  const signers = { min: Number(v.config.MIN_PARTICIPANTS), max: Number(v.config.MAX_PARTICIPANTS) };
  const coefficients = [
    scalar(s, v.inputs.group_secret_key),
    ...v.inputs.share_polynomial_coefficients.map((h) => scalar(s, h)),
  ];
  // Public package as a dealer would publish it: VSS commitments a_k·G (commitments[0] is the group
  // key) and each participant's verifying share share_i·G, all from the vector's inputs.
  const verifyingShares: Record<string, Uint8Array> = {};
  const secrets = new Map<number, FrostSecret>();
  for (const p of v.inputs.participant_shares) {
    const id = ident(s, p.identifier);
    verifyingShares[id] = hexToBytes(baseMulHex(s, scalar(s, p.participant_share)));
    secrets.set(p.identifier, { identifier: id, signingShare: hexToBytes(p.participant_share) } as FrostSecret);
  }
  const pub = {
    signers,
    commitments: coefficients.map((c) => hexToBytes(baseMulHex(s, c))),
    verifyingShares,
  } as FrostPublic;
  return {
    v,
    signers,
    msg: hexToBytes(v.inputs.message),
    coefficients,
    pub,
    secrets,
    signerIds: v.inputs.participant_list,
  };
}

function roundOneFor(v: SigningVectors, id: number) {
  return must(
    v.round_one_outputs.outputs.find((o) => o.identifier === id),
    `round-one output ${id}`,
  );
}

/** Round one for every listed signer with the vector's nonce randomness. */
function commitAll(s: Suite, ctx: SigningContext): { nonces: Map<number, Nonces>; commitments: NonceCommitments[] } {
  const nonces = new Map<number, Nonces>();
  const commitments: NonceCommitments[] = [];
  for (const id of ctx.signerIds) {
    const r1 = roundOneFor(ctx.v, id);
    const rng = scriptedRng([hexToBytes(r1.hiding_nonce_randomness), hexToBytes(r1.binding_nonce_randomness)]);
    const out = s.frost.commit(must(ctx.secrets.get(id), `share ${id}`), rng);
    nonces.set(id, out.nonces);
    commitments.push(out.commitments);
  }
  return { nonces, commitments };
}

/** Full signing session: round one, signShare for each signer, aggregate. */
function runSigning(s: Suite, ctx: SigningContext) {
  const { nonces, commitments } = commitAll(s, ctx);
  const shares: Record<string, Uint8Array> = {};
  for (const id of ctx.signerIds) {
    const secret = must(ctx.secrets.get(id), `share ${id}`);
    shares[secret.identifier] = s.frost.signShare(
      secret,
      ctx.pub,
      must(nonces.get(id), 'nonces'),
      commitments,
      ctx.msg,
    );
  }
  const sig = s.frost.aggregate(ctx.pub, commitments, ctx.msg, shares);
  return { commitments, shares, sig };
}

function registerSigningTests(id: SuiteId, file: SigningFile): void {
  const s = getSuite(id);
  const v = loadSigning(id, file);

  it('participant_shares are the dealer polynomial [group_secret_key, ...coefficients] at each identifier', () => {
    const ctx = signingContext(s, v);
    expect(v.inputs.participant_shares.length).toBe(ctx.signers.max);
    for (const p of v.inputs.participant_shares) {
      expect(scalarHex(s, polyEval(s, ctx.coefficients, BigInt(p.identifier)))).toBe(p.participant_share);
    }
  });

  it('trustedDealer(group_secret_key, rng yielding the vector coefficients) reproduces every share, verifying share and the group key', () => {
    const ctx = signingContext(s, v);
    const len = 48; // noble asks getMinHashLength(n) = 48 bytes per scalar for these 252/256-bit orders
    const rng = scriptedRng(ctx.coefficients.slice(1).map((c) => scalarPreimage(s, c, len)));
    const ids = v.inputs.participant_shares.map((p) => ident(s, p.identifier));
    const deal = s.frost.trustedDealer(ctx.signers, ids, hexToBytes(v.inputs.group_secret_key), rng);
    expect(bytesToHex(must(deal.public.commitments[0], 'group key'))).toBe(v.inputs.verifying_key_key);
    expect(deal.public.commitments.map(bytesToHex)).toEqual(ctx.pub.commitments.map(bytesToHex));
    for (const p of v.inputs.participant_shares) {
      const pid = ident(s, p.identifier);
      const share = must(deal.secretShares[pid], `dealer share ${p.identifier}`);
      expect(bytesToHex(share.signingShare)).toBe(p.participant_share);
      expect(bytesToHex(must(deal.public.verifyingShares[pid], 'verifying share'))).toBe(
        baseMulHex(s, scalar(s, p.participant_share)),
      );
      expect(() => s.frost.validateSecret(share, deal.public)).not.toThrow();
    }
  });

  it('group verifying key: group_secret_key·G equals verifying_key_key, and every share passes VSS against it', () => {
    const ctx = signingContext(s, v);
    expect(baseMulHex(s, scalar(s, v.inputs.group_secret_key))).toBe(v.inputs.verifying_key_key);
    expect(bytesToHex(must(ctx.pub.commitments[0], 'group key'))).toBe(v.inputs.verifying_key_key);
    expect(hexToBytes(v.inputs.verifying_key_key).length).toBe(s.elementBytes);
    for (const secret of ctx.secrets.values()) expect(() => s.frost.validateSecret(secret, ctx.pub)).not.toThrow();
    // The shares of the listed signers interpolate back to the group secret.
    const subset = ctx.signerIds.map((i) => must(ctx.secrets.get(i), 'share'));
    expect(bytesToHex(s.frost.combineSecret(subset, ctx.signers))).toBe(v.inputs.group_secret_key);
  });

  it('commit() fed hiding_nonce_randomness then binding_nonce_randomness yields the vector nonces and commitments', () => {
    const ctx = signingContext(s, v);
    const { nonces, commitments } = commitAll(s, ctx);
    for (const sid of ctx.signerIds) {
      const r1 = roundOneFor(v, sid);
      const n = must(nonces.get(sid), 'nonces');
      const c = must(
        commitments.find((x) => x.identifier === ident(s, sid)),
        'commitment',
      );
      expect(bytesToHex(n.hiding)).toBe(r1.hiding_nonce);
      expect(bytesToHex(n.binding)).toBe(r1.binding_nonce);
      expect(bytesToHex(c.hiding)).toBe(r1.hiding_nonce_commitment);
      expect(bytesToHex(c.binding)).toBe(r1.binding_nonce_commitment);
    }
  });

  // noble does not expose binding factors (computed inside signShare/verifyShare/aggregate), so
  // they cannot be compared directly. What is checked instead, through public API only:
  //  - binding_factor_input starts with the group key and ends with the signer's identifier;
  //  - the vector's binding factors ρ_i reproduce noble's group commitment:
  //    R = Σ (D_i + ρ_i·E_i) equals the R that noble's aggregate() put into the signature.
  //    With independent E_i that pins noble's ρ_i to the vector's.
  it("vector binding factors reproduce the group commitment R in noble's aggregate signature (binding factors not exposed directly)", () => {
    const ctx = signingContext(s, v);
    const { sig } = runSigning(s, ctx);
    let R = s.Point.ZERO;
    for (const sid of ctx.signerIds) {
      const r1 = roundOneFor(v, sid);
      expect(r1.binding_factor_input.startsWith(v.inputs.verifying_key_key)).toBe(true);
      expect(r1.binding_factor_input.endsWith(scalarHex(s, BigInt(sid)))).toBe(true);
      const D = s.Point.fromBytes(hexToBytes(r1.hiding_nonce_commitment));
      const E = s.Point.fromBytes(hexToBytes(r1.binding_nonce_commitment));
      R = R.add(D).add(E.multiply(scalar(s, r1.binding_factor)));
    }
    // BIP340 signatures carry x(R) only (32 bytes): compare the x coordinate of compressed R.
    const rLen = sigRBytes(s);
    expect(bytesToHex(R.toBytes().slice(s.elementBytes - rLen))).toBe(bytesToHex(sig.slice(0, rLen)));
  });

  it('signShare reproduces every round-two sig_share', () => {
    const ctx = signingContext(s, v);
    const { shares } = runSigning(s, ctx);
    expect(Object.keys(shares).length).toBe(v.round_two_outputs.outputs.length);
    for (const r2 of v.round_two_outputs.outputs) {
      expect(bytesToHex(must(shares[ident(s, r2.identifier)], `share ${r2.identifier}`))).toBe(r2.sig_share);
    }
  });

  it('verifyShare accepts every vector sig_share and rejects a sig_share off by one', () => {
    const ctx = signingContext(s, v);
    const { commitments } = commitAll(s, ctx);
    for (const r2 of v.round_two_outputs.outputs) {
      const pid = ident(s, r2.identifier);
      expect(s.frost.verifyShare(ctx.pub, commitments, ctx.msg, pid, hexToBytes(r2.sig_share))).toBe(true);
      const bad = s.Fn.toBytes(s.Fn.add(scalar(s, r2.sig_share), s.Fn.ONE));
      expect(s.frost.verifyShare(ctx.pub, commitments, ctx.msg, pid, bad)).toBe(false);
    }
  });

  it('aggregate of the vector sig_shares is final_output.sig byte for byte', () => {
    const ctx = signingContext(s, v);
    const { commitments } = commitAll(s, ctx);
    const shares: Record<string, Uint8Array> = {};
    for (const r2 of v.round_two_outputs.outputs) shares[ident(s, r2.identifier)] = hexToBytes(r2.sig_share);
    const sig = s.frost.aggregate(ctx.pub, commitments, ctx.msg, shares);
    expect(sig.length).toBe(s.signatureBytes);
    expect(bytesToHex(sig)).toBe(v.final_output.sig);
    // And the end-to-end session (commit → signShare → aggregate) lands on the same bytes.
    expect(bytesToHex(runSigning(s, ctx).sig)).toBe(v.final_output.sig);
  });

  it("final_output.sig verifies under the suite's plain single-party verifier and suite.publicKey(verifying key)", () => {
    const sig = hexToBytes(v.final_output.sig);
    const msg = hexToBytes(v.inputs.message);
    const pk = s.publicKey(hexToBytes(v.inputs.verifying_key_key));
    expect(pk.length).toBe(s.publicKeyBytes);
    expect(s.verify(sig, msg, pk)).toBe(true);
    expect(s.frost.verify(sig, msg, hexToBytes(v.inputs.verifying_key_key))).toBe(true);
    // Negative controls: other message, flipped signature bit.
    expect(s.verify(sig, new Uint8Array([...msg, 0]), pk)).toBe(false);
    const flipped = sig.slice();
    flipped[flipped.length - 2]! ^= 1;
    expect(s.verify(flipped, msg, pk)).toBe(false);
  });

  if (file === 'vectors-big-identifier.json') {
    // KNOWN DATA DEFECT: the vendored secp256k1-tr/vectors-big-identifier.json is a byte-for-byte
    // copy of secp256k1-tr/vectors.json (signers 1 and 3, MAX 3). Upstream frost-rs
    // (frost-secp256k1-tr/tests/helpers/vectors-big-identifier.json) has real 129/256/257 vectors.
    // So for secp256k1-tr the big-identifier flow above only re-runs the small-identifier vector.
    // This test pins that fact so that re-vendoring the real file makes it fail here and the
    // exception gets removed, instead of the gap going unnoticed.
    it(
      id === 'secp256k1-tr'
        ? 'KNOWN GAP: vendored big-identifier file is a copy of vectors.json (no identifiers above 255 tested)'
        : 'signers really use identifiers above 255 (129, 256, 257)',
      () => {
        if (id === 'secp256k1-tr') {
          expect(vectorText(id, file)).toBe(vectorText(id, 'vectors.json'));
        } else {
          expect(v.inputs.participant_list).toEqual([129, 256, 257]);
          expect(v.round_two_outputs.outputs.map((o) => o.identifier)).toEqual([129, 256, 257]);
          // Identifier.fromNumber(256) is the scalar 256, not a truncated byte.
          expect(s.Fn.fromBytes(hexToBytes(ident(s, 256)))).toBe(256n);
        }
      },
    );
  }
}

// ---------------------------------------------------------------------------------------------
// DKG-vector flow
// ---------------------------------------------------------------------------------------------

interface DkgContext {
  v: DkgVectors;
  ids: number[];
  signers: { min: number; max: number };
  part: (i: number) => DkgParticipant;
  round1: (i: number) => DKG_Round1;
  freshSecret: (i: number) => DKG_Secret;
}

function dkgContext(s: Suite, v: DkgVectors): DkgContext {
  const signers = { min: v.config.MIN_PARTICIPANTS, max: v.config.MAX_PARTICIPANTS };
  const ids = Array.from({ length: signers.max }, (_, k) => k + 1);
  const part = (i: number) => must(v.inputs[String(i)] as DkgParticipant | undefined, `DKG participant ${i}`);
  const round1 = (i: number): DKG_Round1 =>
    ({
      identifier: ident(s, i),
      commitment: part(i).vss_commitments.map((h) => hexToBytes(h)),
      proofOfKnowledge: hexToBytes(part(i).proof_of_knowledge),
    }) as DKG_Round1;
  // noble's round-1 secret state rebuilt from the vector's polynomial [signing_key, coefficient].
  const freshSecret = (i: number): DKG_Secret => ({
    identifier: BigInt(part(i).identifier),
    coefficients: [scalar(s, part(i).signing_key), scalar(s, part(i).coefficient)],
    commitment: part(i).vss_commitments.map((h) => hexToBytes(h)) as DKG_Secret['commitment'],
    signers: { ...signers },
    step: 1,
  });
  return { v, ids, signers, part, round1, freshSecret };
}

/** Round 2 then round 3 for participant i, with the vector's round-1 and received round-2 packages. */
function dkgFinish(s: Suite, ctx: DkgContext, i: number) {
  const secret = ctx.freshSecret(i);
  const others = ctx.ids.filter((j) => j !== i);
  const r1 = others.map(ctx.round1);
  const sent = s.frost.DKG.round2(secret, r1);
  const received: DKG_Round2[] = others.map(
    (j) =>
      ({
        identifier: ident(s, j),
        signingShare: hexToBytes(must(ctx.part(i).signing_shares[String(j)], `share ${j}→${i}`)),
      }) as DKG_Round2,
  );
  const key = s.frost.DKG.round3(secret, r1, received);
  return { sent, key };
}

/** Sum of all participants' vss_commitments[0]: the untweaked DKG group key P. */
function untweakedGroupKey(s: Suite, ctx: DkgContext) {
  let P = s.Point.ZERO;
  for (const i of ctx.ids) P = P.add(s.Point.fromBytes(hexToBytes(must(ctx.part(i).vss_commitments[0], 'vss[0]'))));
  return P;
}

function registerDkgTests(id: SuiteId): void {
  const s = getSuite(id);
  const v = loadDkg(id);

  it('signing_key and coefficient are the polynomial behind vss_commitments', () => {
    const ctx = dkgContext(s, v);
    for (const i of ctx.ids) {
      const p = ctx.part(i);
      const poly = s.frost.utils.generateSecretPolynomial(ctx.signers, hexToBytes(p.signing_key), [
        scalar(s, p.coefficient),
      ]);
      expect(poly.commitment.map(bytesToHex)).toEqual(p.vss_commitments);
    }
  });

  it('round2 accepts every vector proof_of_knowledge and sends f_i(j) equal to the vector signing_shares', () => {
    const ctx = dkgContext(s, v);
    for (const i of ctx.ids) {
      // round2 validates each other participant's PoK and commitments and throws otherwise.
      const { sent } = dkgFinish(s, ctx, i);
      for (const j of ctx.ids.filter((x) => x !== i)) {
        const pkg = must(sent[ident(s, j)], `round2 ${i}→${j}`);
        expect(pkg.identifier).toBe(ident(s, i));
        // Participant j's `signing_shares[i]` is what j received from i.
        expect(bytesToHex(pkg.signingShare)).toBe(ctx.part(j).signing_shares[String(i)]);
      }
    }
  });

  it('round2 throws when one proof_of_knowledge has a flipped bit (in z or in R)', () => {
    const ctx = dkgContext(s, v);
    const pokLen = hexToBytes(ctx.part(2).proof_of_knowledge).length;
    expect(pokLen).toBe(s.signatureBytes);
    // Lowest bit of z (z ± 1 stays canonical), and a bit of R.
    const zLow = s.Fn.isLE ? pokLen - s.scalarBytes : pokLen - 1;
    for (const pos of [zLow, 5]) {
      const tampered = ctx.round1(2);
      const pok = tampered.proofOfKnowledge.slice();
      pok[pos]! ^= 1;
      const r1 = [{ ...tampered, proofOfKnowledge: pok } as DKG_Round1, ctx.round1(3)];
      expect(() => s.frost.DKG.round2(ctx.freshSecret(1), r1)).toThrow();
    }
    // Control: the untampered packages pass.
    expect(() => s.frost.DKG.round2(ctx.freshSecret(1), [ctx.round1(2), ctx.round1(3)])).not.toThrow();
  });

  it("round3 yields each participant's signing_share, verifying_share and the group verifying_key", () => {
    const ctx = dkgContext(s, v);
    for (const i of ctx.ids) {
      const { key } = dkgFinish(s, ctx, i);
      const p = ctx.part(i);
      expect(key.secret.identifier).toBe(ident(s, i));
      expect(bytesToHex(key.secret.signingShare)).toBe(p.signing_share);
      expect(bytesToHex(must(key.public.commitments[0], 'group key'))).toBe(v.inputs.verifying_key);
      for (const j of ctx.ids) {
        expect(bytesToHex(must(key.public.verifyingShares[ident(s, j)], `verifying share ${j}`))).toBe(
          ctx.part(j).verifying_share,
        );
      }
      // Internal consistency of the vector: verifying_share = signing_share·G.
      expect(baseMulHex(s, scalar(s, p.signing_share))).toBe(p.verifying_share);
    }
  });

  if (id === 'secp256k1-tr') {
    it('verifying_key is the Taproot-tweaked key Q = evenY(P) + int(TapTweak(x(P)))·G of the summed commitments P, and shares are ±s_i + t', () => {
      const ctx = dkgContext(s, v);
      const P = untweakedGroupKey(s, ctx);
      const Pb = P.toBytes();
      const pEven = Pb[0] === 0x02;
      const evenP = pEven ? P : P.negate();
      const t = s.Fn.create(BigInt('0x' + bytesToHex(schnorr.utils.taggedHash('TapTweak', Pb.slice(1)))));
      const Q = evenP.add(s.Point.BASE.multiply(t));
      expect(bytesToHex(Pb)).not.toBe(v.inputs.verifying_key);
      expect(bytesToHex(Q.toBytes())).toBe(v.inputs.verifying_key);
      for (const i of ctx.ids) {
        // Untweaked share s_i = Σ_j f_j(i): own f_i(i) plus the received shares.
        const p = ctx.part(i);
        const coeffs = [scalar(s, p.signing_key), scalar(s, p.coefficient)];
        let si = polyEval(s, coeffs, BigInt(i));
        for (const h of Object.values(p.signing_shares)) si = s.Fn.add(si, scalar(s, h));
        const adjusted = s.Fn.add(pEven ? si : s.Fn.neg(si), t);
        expect(scalarHex(s, adjusted)).toBe(p.signing_share);
      }
    });
  } else {
    it("verifying_key is the plain sum of every participant's vss_commitments[0] (no tweak)", () => {
      const ctx = dkgContext(s, v);
      expect(bytesToHex(untweakedGroupKey(s, ctx).toBytes())).toBe(v.inputs.verifying_key);
    });
  }

  it("DKG key packages sign (2 of 3) a signature the suite's plain verifier accepts under suite.publicKey(verifying_key)", () => {
    const ctx = dkgContext(s, v);
    const keys = [1, 2].map((i) => dkgFinish(s, ctx, i).key);
    const msg = new TextEncoder().encode('tessera rfc9591 dkg vector');
    const rounds = keys.map((k) => s.frost.commit(k.secret));
    const commitments = rounds.map((r) => r.commitments);
    const shares: Record<string, Uint8Array> = {};
    keys.forEach((k, n) => {
      shares[k.secret.identifier] = s.frost.signShare(
        k.secret,
        k.public,
        must(rounds[n], 'round').nonces,
        commitments,
        msg,
      );
    });
    const pub = must(keys[0], 'key').public;
    for (const [pid, share] of Object.entries(shares))
      expect(s.frost.verifyShare(pub, commitments, msg, pid, share)).toBe(true);
    const sig = s.frost.aggregate(pub, commitments, msg, shares);
    expect(sig.length).toBe(s.signatureBytes);
    expect(s.verify(sig, msg, s.publicKey(hexToBytes(v.inputs.verifying_key)))).toBe(true);
  });
}

// ---------------------------------------------------------------------------------------------
// Invalid element
// ---------------------------------------------------------------------------------------------

function registerElementTests(id: SuiteId): void {
  const s = getSuite(id);
  const bad = hexToBytes(loadInvalidElement(id));
  const sv = loadSigning(id, 'vectors.json');

  it('suite.Point.fromBytes rejects invalid_element, or (ed25519) decodes it to a point outside the prime-order subgroup', () => {
    expect(bad.length).toBe(s.elementBytes);
    if (id === 'ed25519') {
      // The ed25519 vector is a valid curve encoding with a torsion component: the bare decoder
      // accepts it, FROST's element deserialisation (subgroup check) must not (tests below).
      const P = ed25519.Point.fromBytes(bad);
      expect(P.isTorsionFree()).toBe(false);
    } else {
      expect(() => s.Point.fromBytes(bad)).toThrow();
    }
  });

  it('FROST rejects invalid_element as a nonce commitment, a verifying share, the group key and a signature R', () => {
    const ctx = signingContext(s, sv);
    const { commitments } = commitAll(s, ctx);
    const msg = ctx.msg;
    const r2 = must(sv.round_two_outputs.outputs[0], 'round two');
    const pid = ident(s, r2.identifier);
    const share = hexToBytes(r2.sig_share);
    expect(s.frost.verifyShare(ctx.pub, commitments, msg, pid, share)).toBe(true); // control
    const withBad = (field: 'hiding' | 'binding') =>
      commitments.map((c) => (c.identifier === pid ? ({ ...c, [field]: bad } as NonceCommitments) : c));
    expectRejected(() => s.frost.verifyShare(ctx.pub, withBad('hiding'), msg, pid, share));
    expectRejected(() => s.frost.verifyShare(ctx.pub, withBad('binding'), msg, pid, share));
    const badShares = { ...ctx.pub, verifyingShares: { ...ctx.pub.verifyingShares, [pid]: bad } } as FrostPublic;
    expectRejected(() => s.frost.verifyShare(badShares, commitments, msg, pid, share));
    const badGroup = { ...ctx.pub, commitments: [bad, ...ctx.pub.commitments.slice(1)] } as FrostPublic;
    expectRejected(() => s.frost.verifyShare(badGroup, commitments, msg, pid, share));
    const sig = hexToBytes(sv.final_output.sig);
    expectRejected(() => s.frost.verify(sig, msg, bad));
    // R as a full element (the TR suite's wire R is x-only, so feed the element via frost.verify's
    // decoder only where R is an element).
    if (sigRBytes(s) === s.elementBytes) {
      const badSig = new Uint8Array([...bad, ...sig.slice(s.elementBytes)]);
      expectRejected(() => s.frost.verify(badSig, msg, hexToBytes(sv.inputs.verifying_key_key)));
      expectRejected(() => s.verify(badSig, msg, s.publicKey(hexToBytes(sv.inputs.verifying_key_key))));
    }
  });

  it('DKG round2 throws when invalid_element appears in a round-1 commitment', () => {
    const ctx = dkgContext(s, loadDkg(id));
    for (const k of [0, 1]) {
      const r1 = ctx.round1(2);
      const commitment = r1.commitment.slice();
      commitment[k] = bad as (typeof commitment)[number];
      expect(() =>
        s.frost.DKG.round2(ctx.freshSecret(1), [{ ...r1, commitment } as DKG_Round1, ctx.round1(3)]),
      ).toThrow();
    }
  });
}

// ---------------------------------------------------------------------------------------------

describe.each(SUITE_IDS)('RFC 9591 FROST vectors, suite %s', (id) => {
  describe.each(SIGNING_FILES)('%s (trusted dealer + signing)', (file) => {
    registerSigningTests(id, file);
  });
  describe('vectors_dkg.json (3-party DKG)', () => {
    registerDkgTests(id);
  });
  describe('elements.json (invalid element)', () => {
    registerElementTests(id);
  });
});

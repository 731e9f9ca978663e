/**
 * HD derivation (src/hd.ts) and addresses (src/address.ts): threshold signing under derived keys,
 * known answers against @scure/bip32, BIP86, SLIP-0010 and @scure/btc-signer, path validation.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HDKey } from '@scure/bip32';
import { Address, NETWORK, p2tr, TEST_NETWORK } from '@scure/btc-signer';
import { base58 } from '@scure/base';
import { __TEST as secpInternals, schnorr } from '@noble/curves/secp256k1.js';
import type { FrostPublic } from '@noble/curves/abstract/frost.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE } from '@noble/curves/utils.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import {
  address,
  buildRoster,
  ckdPub,
  deriveKey,
  deriveShare,
  ErrorCode,
  extendedPublicKey,
  formatHdPath,
  getSuite,
  groupPublicKey,
  hdChainCode,
  hdRoot,
  InvalidArgumentError,
  KeyShare,
  parseHdPath,
  runLocalDkg,
  runLocalSign,
  solanaAddress,
  taprootAddress,
  taprootOutputKey,
  type GroupKey,
  type Suite,
  type SuiteId,
} from '../src/index.js';
import { identities, seededRng } from './helpers.js';

const MSG = new TextEncoder().encode('tessera hd test message');
const PATHS = ['m/0', 'm/0/5', 'm/1/2/3'];

interface Fixture {
  suite: Suite;
  key: GroupKey;
  shares: Map<string, KeyShare>;
}

const fixtures = new Map<SuiteId, Fixture>();
/** One 2-of-3 DKG per suite (seeded), shared by the tests of this file. */
function fixture(id: SuiteId): Fixture {
  let f = fixtures.get(id);
  if (!f) {
    const suite = getSuite(id);
    const rng = seededRng(`hd-${id}`);
    const out = runLocalDkg(suite, 2, identities(3, rng), rng);
    const shares = new Map<string, KeyShare>();
    let key: GroupKey | undefined;
    for (const [pid, o] of out) {
      shares.set(pid, o.share);
      key = o.key;
    }
    f = { suite, key: key as GroupKey, shares };
    fixtures.set(id, f);
  }
  return f;
}

function childShares(
  shares: ReadonlyMap<string, KeyShare>,
  tweak: Parameters<typeof deriveShare>[1],
): Map<string, KeyShare> {
  return new Map([...shares].map(([pid, s]) => [pid, deriveShare(s, tweak)]));
}

function expectInvalid(fn: () => unknown): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(InvalidArgumentError);
  expect((err as InvalidArgumentError).code).toBe(ErrorCode.INVALID_ARGUMENT);
}

// ---- threshold signing under derived keys ------------------------------------------------------

describe.each(['ed25519', 'secp256k1-tr', 'secp256k1', 'p256'] as const)('derived keys sign, suite %s', (id) => {
  it.each(PATHS)('2-of-3 DKG → derive %s → derived shares sign; plain verifier accepts the child key only', (path) => {
    const { suite, key, shares } = fixture(id);
    const d = deriveKey(key, path);
    expect(d.path).toBe(path);
    expect(d.publicKey).toHaveLength(suite.publicKeyBytes);
    expect(d.publicKey).toEqual(groupPublicKey(d.key));
    expect(d.key.threshold).toBe(2);
    expect(d.key.roster).toBe(key.roster);
    const cs = childShares(shares, d.tweak);
    // Every child share is consistent with the child package (noble's RFC 9591 vss_verify).
    for (const s of cs.values()) suite.frost.validateSecret(s.frostSecret(), d.key.public);
    // Every quorum signs for the child key; the result is a plain signature under the child key only.
    const ids = [...shares.keys()];
    for (const quorum of [
      [ids[0]!, ids[1]!],
      [ids[1]!, ids[2]!],
      [ids[2]!, ids[0]!],
    ]) {
      const sig = runLocalSign(d.key, cs, quorum, MSG, seededRng(`${id}${path}${quorum.join()}`));
      expect(sig).toHaveLength(suite.signatureBytes);
      expect(suite.verify(sig, MSG, d.publicKey)).toBe(true);
      expect(suite.verify(sig, MSG, groupPublicKey(key))).toBe(false);
    }
    // Parent shares do not produce a valid signature for the child key (aggregation blames them).
    expect(() => runLocalSign(d.key, shares, ids.slice(0, 2), MSG)).toThrow();
  });

  it("noble's own FROST (not the fast path) signs with the derived package and shares", () => {
    const { suite, key, shares } = fixture(id);
    const d = deriveKey(key, 'm/7/8');
    const secrets = [...childShares(shares, d.tweak).values()].slice(0, 2).map((s) => s.frostSecret());
    const rng = seededRng(`noble-${id}`);
    const round1 = secrets.map((s) => suite.frost.commit(s, rng));
    const list = round1.map((r) => r.commitments);
    const sigShares: Record<string, Uint8Array> = {};
    secrets.forEach(
      (s, i) => (sigShares[s.identifier] = suite.frost.signShare(s, d.key.public, round1[i]!.nonces, list, MSG)),
    );
    const sig = suite.frost.aggregate(d.key.public, list, MSG, sigShares);
    expect(suite.verify(sig, MSG, d.publicKey)).toBe(true);
  });

  it('is deterministic, path-sensitive, and honours a caller chain code', () => {
    const { key } = fixture(id);
    const a = deriveKey(key, 'm/0/5');
    const b = deriveKey(key, [0, 5]);
    expect(b.publicKey).toEqual(a.publicKey);
    expect(b.key.public).toEqual(a.key.public);
    expect(b.chainCode).toEqual(a.chainCode);
    expect(b.tweak).toEqual(a.tweak);
    const seen = new Set<string>([bytesToHex(groupPublicKey(key))]);
    for (const p of ['m/0', 'm/1', 'm/0/5', 'm/5/0', 'm/0/5/0', 'm/2147483647'])
      seen.add(bytesToHex(deriveKey(key, p).publicKey));
    expect(seen.size).toBe(7);
    const own = deriveKey(key, 'm/0/5', { chainCode: new Uint8Array(32).fill(7) });
    expect(own.publicKey).not.toEqual(a.publicKey);
    expect(hdChainCode(key)).toEqual(hdRoot(key).chainCode);
    expect(hdChainCode(key)).toHaveLength(32);
  });

  it('composes: deriving m/a/b equals deriving /b from the node at m/a (ckdPub)', () => {
    const { suite, key } = fixture(id);
    const full = deriveKey(key, 'm/3/4/5');
    const mid = ckdPub(suite, hdRoot(key), 'm/3');
    const rest = ckdPub(suite, mid, [4, 5]);
    expect(rest.publicKey).toEqual(full.internalKey);
    expect(rest.chainCode).toEqual(full.chainCode);
    expect(rest.depth).toBe(2);
    // τ is additive along the path.
    const all = ckdPub(suite, hdRoot(key), 'm/3/4/5');
    expect(suite.Fn.add(mid.tweak, rest.tweak)).toBe(all.tweak);
    if (id !== 'secp256k1-tr') {
      expect(full.internalKey).toEqual(full.key.public.commitments[0]);
      expect(full.tweak).toEqual({ suite: id, negate: false, add: all.tweak });
    }
  });
});

// ---- secp256k1: BIP32 known answers ---------------------------------------------------------------

describe('secp256k1 (BIP32) against @scure/bip32', () => {
  it('xpub of the group key decodes to (commitments[0], chain code); public derivation matches HDKey', () => {
    const { key } = fixture('secp256k1');
    const xpub = extendedPublicKey(key);
    expect(xpub.startsWith('xpub')).toBe(true);
    const hd = HDKey.fromExtendedKey(xpub);
    expect(hd.publicKey).toEqual(key.public.commitments[0]);
    expect(hd.chainCode).toEqual(hdChainCode(key));
    expect(
      HDKey.fromExtendedKey(extendedPublicKey(key, { network: 'testnet' }), { private: 0x04358394, public: 0x043587cf })
        .publicKey,
    ).toEqual(hd.publicKey);
    for (const p of [...PATHS, 'm/2147483647/0/1']) {
      const d = deriveKey(key, p);
      const ref = hd.derive(p);
      expect(d.publicKey).toEqual(ref.publicKey);
      expect(d.chainCode).toEqual(ref.chainCode);
      // The same through the constructor (no xpub round trip).
      expect(new HDKey({ publicKey: hdRoot(key).publicKey, chainCode: hdChainCode(key) }).derive(p).publicKey).toEqual(
        d.publicKey,
      );
    }
  });

  it('property: random non-hardened paths match HDKey (public key, chain code); derived shares pass vss_verify', () => {
    const { suite, key, shares } = fixture('secp256k1');
    const hd = HDKey.fromExtendedKey(extendedPublicKey(key));
    const anyShare = [...shares.values()][0]!;
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { minLength: 1, maxLength: 5 }), (idx) => {
        const path = formatHdPath(idx);
        const d = deriveKey(key, path);
        const ref = hd.derive(path);
        expect(d.publicKey).toEqual(ref.publicKey);
        expect(d.chainCode).toEqual(ref.chainCode);
        suite.frost.validateSecret(deriveShare(anyShare, d.tweak).frostSecret(), d.key.public);
      }),
      { numRuns: 25, seed: 20260601 },
    );
  });

  it('SLIP-0010 secp256k1 vector 1: public derivation m/0H → m/0H/1 and m/0H/1/2H → /2/1000000000', () => {
    const s = getSuite('secp256k1');
    const a = ckdPub(
      s,
      {
        publicKey: hexToBytes('035a784662a4a20a65bf6aab9ae98a6c068a81c52e4b032c0fb5400c706cfccc56'),
        chainCode: hexToBytes('47fdacbd0f1097043b78c63c20c34ef4ed9a111d980047ad16282c7ae6236141'),
      },
      'm/1',
    );
    expect(bytesToHex(a.publicKey)).toBe('03501e454bf00751f24b1b489aa925215d66af2234e3891c3b21a52bedb3cd711c');
    expect(bytesToHex(a.chainCode)).toBe('2a7857631386ba23dacac34180dd1983734e444fdbf774041578e9b6adb37c19');
    const b = ckdPub(
      s,
      {
        publicKey: hexToBytes('0357bfe1e341d01c69fe5654309956cbea516822fba8a601743a012a7896ee8dc2'),
        chainCode: hexToBytes('04466b9cc8e161e966409ca52986c584f07e9dc81f735db683c3ff6ec7b1503f'),
      },
      'm/2/1000000000',
    );
    expect(bytesToHex(b.publicKey)).toBe('022a471424da5e657499d1ff51cb43c47481a03b1e77f951fe64cec9f5a48f7011');
    expect(bytesToHex(b.chainCode)).toBe('c783e67b921d2beb8f6b389cc646d7263b4145701dadd2161548a8b078e65e9e');
  });
});

describe('p256 (SLIP-0010 nist256p1)', () => {
  const s = getSuite('p256');
  it('vector 1: m/0H → m/0H/1', () => {
    const r = ckdPub(
      s,
      {
        publicKey: hexToBytes('0384610f5ecffe8fda089363a41f56a5c7ffc1d81b59a612d0d649b2d22355590c'),
        chainCode: hexToBytes('3460cea53e6a6bb5fb391eeef3237ffd8724bf0a40e94943c98b83825342ee11'),
      },
      'm/1',
    );
    expect(bytesToHex(r.publicKey)).toBe('03526c63f8d0b4bbbf9c80df553fe66742df4676b241dabefdef67733e070f6844');
    expect(bytesToHex(r.chainCode)).toBe('4187afff1aafa8445010097fb99d23aee9f599450c7bd140b6826ac22ba21d0c');
  });
  it('derivation-retry vector: m/28578H → m/28578H/33941 (I_L ≥ n on the first try)', () => {
    const r = ckdPub(
      s,
      {
        publicKey: hexToBytes('02519b5554a4872e8c9c1c847115363051ec43e93400e030ba3c36b52a3e70a5b7'),
        chainCode: hexToBytes('e94c8ebe30c2250a14713212f6449b20f3329105ea15b652ca5bdfc68f6c65c2'),
      },
      'm/33941',
    );
    expect(bytesToHex(r.publicKey)).toBe('0235bfee614c0d5b2cae260000bb1d0d84b270099ad790022c1ae0b2e782efe120');
    expect(bytesToHex(r.chainCode)).toBe('9e87fe95031f14736774cd82f25fd885065cb7c358c1edf813c72af535e83071');
  });
});

// ---- secp256k1-tr: BIP32 + Taproot ----------------------------------------------------------------

// BIP86 test vectors (mnemonic "abandon ×11 about"), account 0 = m/86'/0'/0'.
const BIP86_ACCOUNT_XPRV =
  'xprv9xgqHN7yz9MwCkxsBPN5qetuNdQSUttZNKw1dcYTV4mkaAFiBVGQziHs3NRSWMkCzvgjEe3n9xV8oYywvM8at9yRqyaZVz6TYYhX98VjsUk';
const BIP86_ACCOUNT_XPUB =
  'xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ';
const BIP86 = [
  {
    path: 'm/0/0',
    internal: 'cc8a4bc64d897bddc5fbc2f670f7a8ba0b386779106cf1223c6fc5d7cd6fc115',
    output: 'a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c',
    address: 'bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr',
  },
  {
    path: 'm/0/1',
    internal: '83dfe85a3151d2517290da461fe2815591ef69f2b18a2ce63f01697a8b313145',
    output: 'a82f29944d65b86ae6b5e5cc75e294ead6c59391a1edc5e016e3498c67fc7bbb',
    address: 'bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh',
  },
  {
    path: 'm/1/0',
    internal: '399f1b2f4393f29a18c937859c5dd8a77350103157eb880f02e8c08214277cef',
    output: '882d74e5d0572d5a816cef0041a96b6c1de832f6f9676d9605c44d5e9a97d3dc',
    address: 'bc1p3qkhfews2uk44qtvauqyr2ttdsw7svhkl9nkm9s9c3x4ax5h60wqwruhk7',
  },
];

describe('secp256k1-tr: BIP32 on the output key, BIP86 tweak on the child', () => {
  it('BIP86 vectors from the account xpub: ckdPub → taprootOutputKey → taprootAddress', () => {
    const acct = HDKey.fromExtendedKey(BIP86_ACCOUNT_XPUB);
    for (const v of BIP86) {
      const n = ckdPub(getSuite('secp256k1-tr'), { publicKey: acct.publicKey!, chainCode: acct.chainCode! }, v.path);
      expect(bytesToHex(n.publicKey.subarray(1))).toBe(v.internal);
      expect(bytesToHex(taprootOutputKey(n.publicKey))).toBe(v.output);
      expect(bytesToHex(taprootOutputKey(n.publicKey.subarray(1)))).toBe(v.output);
      expect(taprootAddress(hexToBytes(v.output))).toBe(v.address);
    }
  });

  it('BIP86 end to end: a 2-of-3 key dealt from the account secret derives the BIP86 addresses and signs for them', () => {
    const suite = getSuite('secp256k1-tr');
    const acct = HDKey.fromExtendedKey(BIP86_ACCOUNT_XPRV);
    const rng = seededRng('bip86-dealer');
    const roster = buildRoster(
      suite,
      identities(3, rng).map((i) => i.public),
    );
    const deal = suite.frost.trustedDealer(
      { min: 2, max: 3 },
      roster.map((r) => r.identifier),
      acct.privateKey!,
      rng,
    );
    const key: GroupKey = { suite, threshold: 2, roster, public: deal.public };
    expect(key.public.commitments[0]).toEqual(acct.publicKey); // odd Y (03…): parity is part of the BIP32 root
    const shares = new Map(
      roster.map((r) => [r.id, new KeyShare(suite, r.identifier, deal.secretShares[r.identifier]!.signingShare)]),
    );
    for (const v of BIP86) {
      const d = deriveKey(key, v.path, { chainCode: acct.chainCode! });
      expect(bytesToHex(d.internalKey.subarray(1))).toBe(v.internal);
      expect(bytesToHex(d.publicKey)).toBe(v.output);
      expect(address(suite, d.publicKey)).toBe(v.address);
      const sig = runLocalSign(d.key, childShares(shares, d.tweak), [roster[0]!.id, roster[2]!.id], MSG, rng);
      expect(schnorr.verify(sig, MSG, hexToBytes(v.output))).toBe(true);
    }
  });

  it('DKG key: child = BIP86 output of HDKey(xpub).derive(path); address = btc-signer p2tr(child internal key)', () => {
    const { key } = fixture('secp256k1-tr');
    const hd = HDKey.fromExtendedKey(extendedPublicKey(key));
    expect(hd.publicKey).toEqual(key.public.commitments[0]);
    for (const p of PATHS) {
      const d = deriveKey(key, p);
      const ref = hd.derive(p);
      expect(d.internalKey).toEqual(ref.publicKey);
      expect(d.chainCode).toEqual(ref.chainCode);
      const pay = p2tr(ref.publicKey!.subarray(1));
      expect(d.publicKey).toEqual(pay.tweakedPubkey);
      expect(address('secp256k1-tr', d.publicKey)).toBe(pay.address);
      expect(address('secp256k1-tr', d.publicKey, 'testnet')).toBe(
        p2tr(ref.publicKey!.subarray(1), undefined, TEST_NETWORK).address,
      );
    }
  });

  it("the child package is exactly noble's frostTweakPublic/frostTweakSecret (empty merkle root) of the untweaked BIP32 child", () => {
    const { suite, key, shares } = fixture('secp256k1-tr');
    const { Fn, Point } = suite;
    let parities = 0;
    for (const p of ['m/0', 'm/1', 'm/2', 'm/3', 'm/4', 'm/5', 'm/0/5', 'm/1/2/3']) {
      const d = deriveKey(key, p);
      const tau = ckdPub(suite, hdRoot(key), p).tweak;
      const tauG = Point.BASE.multiply(tau);
      const untweaked = {
        signers: key.public.signers,
        commitments: key.public.commitments.map((c, i) => (i === 0 ? Point.fromBytes(c).add(tauG).toBytes() : c)),
        verifyingShares: Object.fromEntries(
          Object.entries(key.public.verifyingShares).map(([k, v]) => [k, Point.fromBytes(v).add(tauG).toBytes()]),
        ),
      } as FrostPublic;
      expect(untweaked.commitments[0]).toEqual(d.internalKey);
      expect(secpInternals.frostTweakPublic(untweaked, new Uint8Array(0))).toEqual(d.key.public);
      for (const s of shares.values()) {
        const raw = { identifier: s.identifier, signingShare: Fn.toBytes(Fn.add(Fn.fromBytes(s.signingShare()), tau)) };
        expect(secpInternals.frostTweakSecret(raw, untweaked, new Uint8Array(0)).signingShare).toEqual(
          deriveShare(s, d.tweak).signingShare(),
        );
      }
      parities |= d.tweak.negate ? 1 : 2;
    }
    expect(parities).toBe(3); // both parities of the child internal key were exercised
  });

  it('property: random paths — address equals p2tr of HDKey derivation, shares pass vss_verify', () => {
    const { suite, key, shares } = fixture('secp256k1-tr');
    const hd = HDKey.fromExtendedKey(extendedPublicKey(key));
    const anyShare = [...shares.values()][1]!;
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { minLength: 1, maxLength: 4 }), (idx) => {
        const d = deriveKey(key, idx);
        expect(address(suite, d.publicKey)).toBe(p2tr(hd.derive(d.path).publicKey!.subarray(1)).address);
        suite.frost.validateSecret(deriveShare(anyShare, d.tweak).frostSecret(), d.key.public);
      }),
      { numRuns: 20, seed: 20260602 },
    );
  });
});

// ---- ed25519 ---------------------------------------------------------------------------------------

describe('ed25519 (Tessera scheme)', () => {
  it('property: random paths — derived shares pass vss_verify; child key = parent + τ·B', () => {
    const { suite, key, shares } = fixture('ed25519');
    const anyShare = [...shares.values()][2]!;
    const parent = suite.Point.fromBytes(groupPublicKey(key));
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { minLength: 1, maxLength: 4 }), (idx) => {
        const d = deriveKey(key, idx);
        expect(d.tweak.negate).toBe(false);
        expect(suite.Point.fromBytes(d.publicKey).equals(parent.add(suite.Point.BASE.multiply(d.tweak.add)))).toBe(
          true,
        );
        suite.frost.validateSecret(deriveShare(anyShare, d.tweak).frostSecret(), d.key.public);
      }),
      { numRuns: 20, seed: 20260603 },
    );
  });

  it('matches the documented formula (independent recomputation) and a pinned vector', () => {
    const suite = getSuite('ed25519');
    // RFC 8032 §7.1 test 1 public key, and an arbitrary chain code.
    const A = hexToBytes('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    const c0 = sha256(new TextEncoder().encode('hd test chain code'));
    const L = ed25519.Point.Fn.ORDER;
    let P = ed25519.Point.fromBytes(A);
    let c = c0;
    let tau = 0n;
    for (const i of [0, 5, 2147483647]) {
      // I = HMAC-SHA512(c, A || ser32(i)); τ_i = int_LE(I_L) mod L; A_i = A + τ_i·B; c_i = I_R
      const I = hmac(sha512, c, new Uint8Array([...P.toBytes(), i >>> 24, (i >>> 16) & 255, (i >>> 8) & 255, i & 255]));
      const t = bytesToNumberLE(I.slice(0, 32)) % L;
      P = P.add(ed25519.Point.BASE.multiply(t));
      c = I.slice(32);
      tau = (tau + t) % L;
    }
    const r = ckdPub(suite, { publicKey: A, chainCode: c0 }, 'm/0/5/2147483647');
    expect(r.publicKey).toEqual(P.toBytes());
    expect(r.chainCode).toEqual(c);
    expect(r.tweak).toBe(tau);
    expect(bytesToHex(r.publicKey)).toBe('bd9a3deaf3026fc25817f827efa0928454da83b2da2ab59b1457382569b44a06');
    expect(bytesToHex(r.chainCode)).toBe('ab55459bf86af8287c58501c7f8328c63e19fdeb4ee828a900ae4c38675e0c14');
  });

  it('Solana address = base58 of the key, and round-trips', () => {
    const { key } = fixture('ed25519');
    const d = deriveKey(key, 'm/0/5');
    const a = address('ed25519', d.publicKey);
    expect(a).toBe(solanaAddress(d.publicKey));
    expect(a).toMatch(/^[1-9A-HJ-NP-Za-km-z]{32,44}$/);
    expect(base58.decode(a)).toEqual(d.publicKey);
    // 32 zero bytes is Solana's well-known System Program id.
    expect(solanaAddress(new Uint8Array(32))).toBe('11111111111111111111111111111111');
  });
});

// ---- addresses ------------------------------------------------------------------------------------

describe('addresses', () => {
  it('Taproot: networks, decoding with btc-signer, invalid keys', () => {
    const out = hexToBytes(BIP86[0]!.output);
    for (const [net, prefix, n] of [
      ['mainnet', 'bc1p', NETWORK],
      ['testnet', 'tb1p', TEST_NETWORK],
      ['signet', 'tb1p', TEST_NETWORK],
    ] as const) {
      const a = taprootAddress(out, net);
      expect(a.startsWith(prefix)).toBe(true);
      expect(Address(n).decode(a)).toEqual({ type: 'tr', pubkey: out });
    }
    expect(taprootAddress(out, 'regtest').startsWith('bcrt1p')).toBe(true);
    expectInvalid(() => taprootAddress(new Uint8Array(33)));
    // x = 5 is not on secp256k1 (5^3 + 7 = 132 is not a square mod p).
    const notOnCurve = new Uint8Array(32);
    notOnCurve[31] = 5;
    expectInvalid(() => taprootAddress(notOnCurve));
    expectInvalid(() => taprootAddress(out, 'moon' as never));
  });

  it('secp256k1 and p256 keys are shown as hex; bad keys rejected', () => {
    for (const id of ['secp256k1', 'p256'] as const) {
      const { key } = fixture(id);
      const pk = deriveKey(key, 'm/1').publicKey;
      expect(address(id, pk)).toBe(bytesToHex(pk));
      expectInvalid(() => address(id, pk.subarray(1)));
      expectInvalid(() => address(id, new Uint8Array(33)));
    }
    expectInvalid(() => address('ed25519', new Uint8Array(31)));
    expectInvalid(() => address('nope' as SuiteId, new Uint8Array(32)));
  });
});

// ---- paths and misuse -----------------------------------------------------------------------------

describe('paths and misuse', () => {
  it('parses and formats valid paths', () => {
    expect(parseHdPath('m/0/5')).toEqual([0, 5]);
    expect(parseHdPath('m/2147483647')).toEqual([2147483647]);
    expect(parseHdPath([1, 2, 3])).toEqual([1, 2, 3]);
    expect(formatHdPath([1, 2, 3])).toBe('m/1/2/3');
    expect(parseHdPath('m' + '/1'.repeat(255))).toHaveLength(255);
  });

  it.each([
    '',
    'm',
    'm/',
    'M/0',
    '0/1',
    '/0',
    'm//1',
    'm/0/',
    'm/01',
    'm/+1',
    'm/-1',
    'm/1.5',
    'm/ 1',
    'm/1 ',
    'm/0x10',
    'm/a',
    "m/0'",
    'm/0h',
    'm/0H',
    "m/1/2'/3",
    'm/2147483648',
    'm/4294967296',
    'm/99999999999999999999',
    'm' + '/0'.repeat(256),
  ])('rejects %j with INVALID_ARGUMENT', (path) => {
    expectInvalid(() => parseHdPath(path));
    expectInvalid(() => deriveKey(fixture('secp256k1').key, path));
  });

  it('rejects bad index arrays, bad chain codes, bad nodes, and tweaks of another suite', () => {
    const { key, shares } = fixture('secp256k1');
    for (const p of [[], [2 ** 31], [-1], [1.5], [Number.NaN], ['1'] as unknown as number[], new Array(256).fill(0)])
      expectInvalid(() => deriveKey(key, p));
    expectInvalid(() => deriveKey(key, 17 as never));
    expectInvalid(() => deriveKey(key, 'm/0', { chainCode: new Uint8Array(31) }));
    expectInvalid(() => ckdPub(key.suite, { publicKey: new Uint8Array(33), chainCode: new Uint8Array(32) }, 'm/0'));
    expectInvalid(() =>
      ckdPub(key.suite, { publicKey: hdRoot(key).publicKey.subarray(1), chainCode: new Uint8Array(32) }, 'm/0'),
    );
    const edTweak = deriveKey(fixture('ed25519').key, 'm/0').tweak;
    expectInvalid(() => deriveShare([...shares.values()][0]!, edTweak));
    expectInvalid(() => deriveShare([...shares.values()][0]!, { suite: 'secp256k1', negate: false, add: -1n }));
    expectInvalid(() => extendedPublicKey(fixture('ed25519').key));
  });

  it('a 255-level path derives (BIP32 depth limit)', () => {
    const { suite, key } = fixture('secp256k1');
    const path = 'm' + '/1'.repeat(255);
    expect(deriveKey(key, path).publicKey).toEqual(
      HDKey.fromExtendedKey(extendedPublicKey(key)).derive(path).publicKey,
    );
    expect(ckdPub(suite, hdRoot(key), path).depth).toBe(255);
  });

  it('default chain code = HMAC-SHA256("tessera/v1/hd-chaincode", lengthPrefixed(suite id, standard public key))', () => {
    for (const id of ['ed25519', 'secp256k1-tr', 'secp256k1', 'p256'] as const) {
      const { key } = fixture(id);
      const te = new TextEncoder();
      const u32 = (n: number) => new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
      const pk = groupPublicKey(key);
      const expected = hmac(
        sha256,
        te.encode('tessera/v1/hd-chaincode'),
        new Uint8Array([...u32(id.length), ...te.encode(id), ...u32(pk.length), ...pk]),
      );
      expect(hdChainCode(key)).toEqual(expected);
    }
  });

  it('derived shares stay redacted', () => {
    const { key, shares } = fixture('ed25519');
    const s = deriveShare([...shares.values()][0]!, deriveKey(key, 'm/0').tweak);
    expect(JSON.stringify(s)).toContain('<redacted>');
    expect(String(s)).toContain('<redacted>');
  });
});

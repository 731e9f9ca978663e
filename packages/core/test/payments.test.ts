/**
 * Payments and allowances (src/payment.ts, src/payments/bitcoin.ts, src/allowance.ts,
 * src/package-payment.ts; issue 19):
 * (1) the Bitcoin reader against @scure/btc-signer: the message is btc-signer's own BIP 341
 *     signature hash of the input; amount (outputs to others), fee and addresses; refusals;
 * (2) allowances: shapes, per-payment limit and cap at their edges, and a property: charging a
 *     random sequence of payments accepts exactly those that keep the running total within the cap;
 * (3) a capped 2-of-3 secp256k1-tr key end to end: the device pays a PSBT offline, the cluster's
 *     check and the merchant's both read the payment, the co-signer's share completes a BIP 340
 *     signature that btc-signer puts in the witness and that verifies over btc-signer's hash of the
 *     extracted transaction; each hostile case refused with the same code by both checks.
 */
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { ripemd160 } from '@noble/hashes/legacy.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { Address, NETWORK, OutScript, SigHash, Transaction } from '@scure/btc-signer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Allowance,
  ErrorCode,
  type GroupKey,
  type KeyShare,
  ParticipantIdentity,
  RESERVATION_NONCE_ID_BYTES,
  chargeAllowance,
  checkPackagePayment,
  commit,
  createOfflinePackage,
  decodeOfflinePackage,
  encodeKeyRecord,
  encodeOfflinePackage,
  getSuite,
  groupPublicKey,
  openReservation,
  packageCommitments,
  readPayment,
  runLocalDkg,
  txTotalName,
  txTotals,
  signReservation,
  signShare,
  type SignedReservation,
  type SigningNonces,
  type SuiteId,
  utf8ToBytes,
  validateAllowance,
  verifyOfflinePackage,
} from '../src/index.js';
import { checkEd25519Package, checkPackage } from '../src/merchant.js';

const NOW = 1_760_000_000_000;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** The error code `fn` throws (or rejects with), or 'ok'. */
async function codeOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
    return 'ok';
  } catch (e) {
    return String((e as { code?: string }).code ?? (e as Error).message);
  }
}

/** A Taproot output script paying to `xonly` (the key itself, as the threshold key signs). */
const trScript = (xonly: Uint8Array) => OutScript.encode({ type: 'tr', pubkey: xonly });
/** A valid x-only key of someone else (the payee). */
const OTHER = trScript(schnorr.getPublicKey(new Uint8Array(32).fill(7)));

/** A PSBT spending `inputs` (amounts in sats, the first to `own`) into `outputs`. */
function psbt(own: Uint8Array, inputs: bigint[], outputs: [Uint8Array, bigint][]): Uint8Array {
  const tx = new Transaction();
  inputs.forEach((amount, i) =>
    tx.addInput({
      txid: new Uint8Array(32).fill(i + 1),
      index: i,
      witnessUtxo: { script: i === 0 ? own : OTHER, amount },
    }),
  );
  for (const [script, amount] of outputs) tx.addOutput({ script, amount });
  return tx.toPSBT();
}

describe('the Bitcoin reader', () => {
  const own = trScript(schnorr.getPublicKey(new Uint8Array(32).fill(3)));

  it("derives btc-signer's own BIP 341 hash; amount leaves out change, fee is inputs minus outputs", () => {
    const bytes = psbt(
      own,
      [100_000n, 50_000n],
      [
        [OTHER, 120_000n],
        [own, 29_000n],
      ],
    );
    const r = readPayment({ chain: 'bitcoin', tx: bytes, input: 0 });
    const tx = Transaction.fromPSBT(bytes);
    expect(hex(r.message)).toBe(hex(tx.preimageWitnessV1(0, [own, OTHER], SigHash.DEFAULT, [100_000n, 50_000n])));
    expect(r.payment).toEqual({
      chain: 'bitcoin',
      asset: 'BTC',
      amount: 120_000n,
      fee: 1_000n,
      to: [Address(NETWORK).encode(OutScript.decode(OTHER))],
      tx: tx.id,
    });
  });

  it("a transaction spending two of the key's outputs: each input's package reads the same payment and transaction id, and signs its own hash", () => {
    const t = new Transaction();
    for (const i of [1, 2])
      t.addInput({ txid: new Uint8Array(32).fill(i), index: i, witnessUtxo: { script: own, amount: 60_000n } });
    t.addOutput({ script: OTHER, amount: 100_000n });
    t.addOutput({ script: own, amount: 19_000n });
    const bytes = t.toPSBT();
    const [a, b] = [0, 1].map((input) => readPayment({ chain: 'bitcoin', tx: bytes, input }));
    expect(a?.payment).toEqual(b?.payment);
    expect(a?.payment).toMatchObject({ amount: 100_000n, fee: 1_000n, tx: t.id });
    expect(hex(a?.message as Uint8Array)).not.toBe(hex(b?.message as Uint8Array));
    // Another transaction (one output moved by a satoshi) has another id.
    const other = new Transaction();
    for (const i of [1, 2])
      other.addInput({ txid: new Uint8Array(32).fill(i), index: i, witnessUtxo: { script: own, amount: 60_000n } });
    other.addOutput({ script: OTHER, amount: 100_001n });
    other.addOutput({ script: own, amount: 18_999n });
    expect(readPayment({ chain: 'bitcoin', tx: other.toPSBT(), input: 0 }).payment.tx).not.toBe(t.id);
  });

  it('refuses what it cannot read or what a key-path signature cannot spend, PAYMENT_MISMATCH', async () => {
    const ok = psbt(own, [10_000n], [[OTHER, 9_000n]]);
    const noUtxo = new Transaction();
    noUtxo.addInput({ txid: new Uint8Array(32).fill(1), index: 0 });
    noUtxo.addOutput({ script: OTHER, amount: 1n });
    const cases: [string, Uint8Array, number][] = [
      ['not a PSBT', utf8ToBytes('hello'), 0],
      ['an input it does not have', ok, 1],
      ['a negative input', ok, -1],
      ['an input without its UTXO', noUtxo.toPSBT(), 0],
      [
        'a P2PKH (legacy) input',
        psbt(OutScript.encode({ type: 'pkh', hash: new Uint8Array(20) }), [10_000n], [[OTHER, 1n]]),
        0,
      ],
      ['outputs above inputs', psbt(own, [10_000n], [[OTHER, 10_001n]]), 0],
    ];
    for (const [what, tx, input] of cases)
      expect(await codeOf(() => readPayment({ chain: 'bitcoin', tx, input })), what).toBe(ErrorCode.PAYMENT_MISMATCH);
    expect(await codeOf(() => readPayment({ chain: 'dogecoin', tx: ok, input: 0 }))).toBe(ErrorCode.PAYMENT_MISMATCH);
  });

  it('a P2WPKH input (an ECDSA key): the BIP 143 sighash btc-signer computes; only for the key whose hash it pays to', async () => {
    const pk = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true);
    const wpkh = OutScript.encode({ type: 'wpkh', hash: ripemd160(sha256(pk)) });
    const tx = psbt(
      wpkh,
      [50_000n],
      [
        [OTHER, 30_000n],
        [wpkh, 19_000n],
      ],
    );
    const r = readPayment({ chain: 'bitcoin', tx, input: 0 }, pk);
    expect(r.payment).toMatchObject({ amount: 30_000n, fee: 1_000n });
    // A v0 hash commits to the spent input's amount only: the payment names no transaction, so
    // each input's package counts whole (another package could claim the other amounts smaller).
    expect(r.payment.tx).toBeUndefined();
    const t = Transaction.fromPSBT(tx);
    expect(hex(r.message)).toBe(
      hex(t.preimageWitnessV0(0, OutScript.encode({ type: 'pkh', hash: ripemd160(sha256(pk)) }), SigHash.ALL, 50_000n)),
    );
    const other = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true);
    expect(await codeOf(() => readPayment({ chain: 'bitcoin', tx, input: 0 }, other))).toBe(ErrorCode.PAYMENT_MISMATCH);
    // A Taproot (x-only) key never spends a P2WPKH input.
    expect(await codeOf(() => readPayment({ chain: 'bitcoin', tx, input: 0 }, pk.subarray(1)))).toBe(
      ErrorCode.PAYMENT_MISMATCH,
    );
  });
});

describe('allowances', () => {
  const id = new Uint8Array(16).fill(1);
  const allowance = (caps: [string, string][], per: [string, string][] = []): Allowance => ({
    allowanceId: id,
    caps: caps.map(([asset, amount]) => ({ asset, amount })),
    perPayment: per.map(([asset, amount]) => ({ asset, amount })),
  });
  const pay = (amount: bigint, fee = 0n, asset = 'BTC') => ({ chain: 'bitcoin', asset, amount, fee, to: [] });

  it('shapes: asset names, decimal amounts, each asset once, per-payment limits only for capped assets', () => {
    expect(() => validateAllowance(allowance([['BTC', '100000']], [['BTC', '5000']]))).not.toThrow();
    for (const bad of [
      allowance([['BTC', '-1']]),
      allowance([['BTC', '01']]),
      allowance([['BTC', '1.5']]),
      allowance([['', '1']]),
      allowance([
        ['BTC', '1'],
        ['BTC', '2'],
      ]),
      allowance([['BTC', '1']], [['SOL', '1']]),
      { ...allowance([['BTC', '1']]), allowanceId: new Uint8Array(15) },
    ])
      expect(() => validateAllowance(bad)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    expect(() =>
      validateAllowance({ ...allowance([['BTC', '1']]), allowanceId: new Uint8Array(0) }, { request: true }),
    ).not.toThrow();
  });

  it('the edges: amount plus fee, at most the per-payment limit and the cap; an unlisted asset is refused', () => {
    const a = allowance([['BTC', '10000']], [['BTC', '4000']]);
    expect(chargeAllowance(a, pay(3_900n, 100n)).totals).toEqual({ BTC: 4_000n });
    expect(() => chargeAllowance(a, pay(3_901n, 100n))).toThrow(
      expect.objectContaining({ code: ErrorCode.OVER_ALLOWANCE }),
    );
    expect(chargeAllowance(a, pay(4_000n), () => 6_000n).totals).toEqual({ BTC: 10_000n });
    expect(() => chargeAllowance(a, pay(1n), () => 10_000n)).toThrow(
      expect.objectContaining({ code: ErrorCode.OVER_ALLOWANCE }),
    );
    expect(() => chargeAllowance(a, pay(1n, 0n, 'SOL'))).toThrow(
      expect.objectContaining({ code: ErrorCode.OVER_ALLOWANCE }),
    );
  });

  it('property: a sequence of payments is accepted exactly while the running total stays within the cap', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 12n }),
        fc.array(fc.tuple(fc.bigInt({ min: 0n, max: 10n ** 11n }), fc.bigInt({ min: 0n, max: 10n ** 6n })), {
          maxLength: 30,
        }),
        (cap, payments) => {
          const a = allowance([['BTC', cap.toString()]]);
          let spent = 0n;
          for (const [amount, fee] of payments) {
            const fits = spent + amount + fee <= cap;
            let accepted = true;
            try {
              spent = chargeAllowance(a, pay(amount, fee), () => spent).totals.BTC as bigint;
            } catch {
              accepted = false;
            }
            expect(accepted).toBe(fits);
            expect(spent <= cap).toBe(true);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("a transaction counts once: a second input's package of it adds only what it counts beyond the first's; the per-payment limit holds the whole payment", () => {
    const a = allowance([['BTC', '10000']], [['BTC', '6000']]);
    const tx = (amount: bigint, fee = 0n) => ({ ...pay(amount, fee), tx: 'aa'.repeat(32) });
    const first = chargeAllowance(a, tx(5_000n, 500n), () => 2_000n);
    expect(first).toEqual({ totals: { BTC: 7_500n }, byTx: { BTC: 5_500n } });
    expect(txTotals(tx(0n), first)).toEqual({ [txTotalName('aa'.repeat(32), 'BTC')]: 5_500n });
    // The same payment read from its other input: nothing more (a cap with 2,500 left would not
    // hold it a second time).
    expect(
      chargeAllowance(
        a,
        tx(5_000n, 500n),
        () => 7_500n,
        [],
        () => 5_500n,
      ),
    ).toEqual({
      totals: { BTC: 7_500n },
      byTx: { BTC: 5_500n },
    });
    // Read larger from another input (change to a sibling address counted as paid): the difference.
    expect(
      chargeAllowance(
        a,
        tx(5_900n, 100n),
        () => 7_500n,
        [],
        () => 5_500n,
      ).totals,
    ).toEqual({ BTC: 8_000n });
    expect(() =>
      chargeAllowance(
        a,
        tx(6_000n, 1n),
        () => 0n,
        [],
        () => 6_001n,
      ),
    ).toThrow(expect.objectContaining({ code: ErrorCode.OVER_ALLOWANCE }));
    // Without a transaction id every package counts whole.
    expect(
      chargeAllowance(
        a,
        pay(5_000n, 500n),
        () => 2_000n,
        [],
        () => 5_500n,
      ).totals,
    ).toEqual({ BTC: 7_500n });
  });

  it('property: packages of one transaction, in any order, count as its largest reading; across transactions the cap holds exactly', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 9n }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.bigInt({ min: 0n, max: 10n ** 8n })), { maxLength: 30 }),
        (cap, packages) => {
          const a = allowance([['BTC', cap.toString()]]);
          const totals: Record<string, bigint> = {};
          const largest = new Map<number, bigint>();
          for (const [t, amount] of packages) {
            const p = { ...pay(amount), tx: String(t) };
            const before = totals.BTC ?? 0n;
            const prior = largest.get(t) ?? 0n;
            const want = before + (amount > prior ? amount - prior : 0n);
            let accepted = true;
            try {
              const c = chargeAllowance(
                a,
                p,
                (n) => totals[n] ?? 0n,
                [],
                (n) => totals[txTotalName(p.tx, n)] ?? 0n,
              );
              Object.assign(totals, c.totals, txTotals(p, c));
              largest.set(t, amount > prior ? amount : prior);
            } catch {
              accepted = false;
            }
            expect(accepted).toBe(want <= cap);
            // What is spent is the sum of each accepted transaction's largest reading.
            expect(totals.BTC ?? 0n).toBe([...largest.values()].reduce((x, y) => x + y, 0n));
            expect((totals.BTC ?? 0n) <= cap).toBe(true);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('a capped secp256k1-tr key end to end', () => {
  const make = (suiteId: SuiteId) => {
    const suite = getSuite(suiteId);
    const ids = ['phone', 'signer-1', 'signer-2'].map((i) => ParticipantIdentity.generate(i));
    const out = runLocalDkg(suite, 2, ids, undefined, ['phone']);
    const key = (out.get('phone') as { key: GroupKey }).key;
    const share = (i: string) => (out.get(i) as { share: KeyShare }).share;
    return {
      suite,
      ids,
      key,
      share,
      record: encodeKeyRecord({ keyId: 'c0ffee00c0ffee00', epoch: 0, key, createdAt: NOW }),
    };
  };
  const k = make('secp256k1-tr');
  const xonly = groupPublicKey(k.key);
  const own = trScript(xonly);
  const caps = {
    allowanceId: new Uint8Array(16).fill(9),
    caps: [{ asset: 'BTC', amount: '50000' }],
    perPayment: [{ asset: 'BTC', amount: '30000' }],
  };

  function reserve(kk: typeof k, allowance: Allowance | null): { signed: SignedReservation; nonces: SigningNonces } {
    const { nonces, commitment } = commit(kk.share('signer-1'));
    const envelope = signReservation(kk.ids[1] as ParticipantIdentity, {
      suite: kk.suite,
      keyId: 'c0ffee00c0ffee00',
      epoch: 0,
      device: 'phone',
      signer: 'signer-1',
      nonceId: new Uint8Array(RESERVATION_NONCE_ID_BYTES).fill(5),
      hiding: commitment.hiding,
      binding: commitment.binding,
      expiresAt: NOW + 3600_000,
      allowance,
    });
    return { signed: openReservation(kk.key, envelope), nonces };
  }

  function pay(tx: Uint8Array, r = reserve(k, caps), message?: Uint8Array, kk = k) {
    const read = message ? undefined : readPayment({ chain: 'bitcoin', tx, input: 0 });
    const pkg = createOfflinePackage({
      key: kk.key,
      share: kk.share('phone'),
      keyId: 'c0ffee00c0ffee00',
      epoch: 0,
      device: 'phone',
      message: message ?? (read?.message as Uint8Array),
      reservations: [r.signed],
      createdAt: NOW,
      payment: { chain: 'bitcoin', tx, input: 0 },
    });
    return { pkg, read, r };
  }

  /** The cluster's verdict (what a co-signer checks before it spends its nonce) and the merchant's. */
  async function verdicts(bytes: Uint8Array, kk = k): Promise<[string, string]> {
    const cluster = await codeOf(() => {
      const p = decodeOfflinePackage(bytes);
      verifyOfflinePackage(kk.key, p, { keyId: 'c0ffee00c0ffee00', epoch: 0, now: NOW });
      checkPackagePayment({ ...p, suite: p.suite.id, publicKey: groupPublicKey(kk.key) });
    });
    return [cluster, await codeOf(() => checkPackage(kk.record, bytes, NOW))];
  }

  it('pays a PSBT: both checks read it; the aggregate goes into the witness and verifies over btc-signer’s hash of the extracted transaction', async () => {
    const tx = psbt(
      own,
      [40_000n],
      [
        [OTHER, 25_000n],
        [own, 14_000n],
      ],
    );
    const { pkg, r } = pay(tx);
    expect(pkg.cosigners[0]?.allowance).toEqual(caps);
    const session = verifyOfflinePackage(k.key, pkg, { keyId: 'c0ffee00c0ffee00', epoch: 0, now: NOW });
    expect(checkPackagePayment({ ...pkg, suite: 'secp256k1-tr', publicKey: xonly })?.payment).toMatchObject({
      amount: 25_000n,
      fee: 1_000n,
    });
    expect((await checkPackage(k.record, pkg.bytes, NOW)).payment).toEqual({
      chain: 'bitcoin',
      asset: 'BTC',
      amount: '25000',
      fee: '1000',
      to: [Address(NETWORK).encode(OutScript.decode(OTHER))],
      tx: Transaction.fromPSBT(tx).id,
    });
    const cosigner = signShare(k.share('signer-1'), k.key, r.nonces, packageCommitments(k.key, pkg), pkg.message);
    const sig = session.aggregate(
      new Map([
        ['phone', pkg.share],
        ['signer-1', cosigner],
      ]),
    );
    const t = Transaction.fromPSBT(tx);
    t.updateInput(0, { finalScriptWitness: [sig] });
    const raw = Transaction.fromRaw(t.extract(), { allowUnknownOutputs: true });
    const witness = raw.getInput(0).finalScriptWitness as Uint8Array[];
    const hash = raw.preimageWitnessV1(0, [own], SigHash.DEFAULT, [40_000n]);
    expect(schnorr.verify(witness[0] as Uint8Array, hash, xonly)).toBe(true);
    expect(schnorr.verify(witness[0] as Uint8Array, hash, schnorr.getPublicKey(new Uint8Array(32).fill(7)))).toBe(
      false,
    );
  });

  it('hostile packages: refused with the same code by the cluster’s check and the merchant’s', async () => {
    const tx = psbt(own, [40_000n], [[OTHER, 25_000n]]);
    const other = psbt(own, [40_000n], [[OTHER, 26_000n]]);
    const good = pay(tx).pkg;
    const cases: [string, Uint8Array, string, SuiteId?][] = [
      [
        'the transaction swapped for another',
        encodeOfflinePackage({ ...good, payment: { chain: 'bitcoin', tx: other, input: 0 } }),
        ErrorCode.PAYMENT_MISMATCH,
      ],
      [
        'a message that is not the transaction’s hash',
        pay(tx, undefined, new Uint8Array(32).fill(1)).pkg.bytes,
        ErrorCode.PAYMENT_MISMATCH,
      ],
      [
        'above the per-payment limit',
        pay(psbt(own, [40_000n], [[OTHER, 30_001n]])).pkg.bytes,
        ErrorCode.OVER_ALLOWANCE,
      ],
      [
        'no payment on a capped reservation (a copy stripped of it: not final, nobody named)',
        encodeOfflinePackage({ ...good, payment: null }),
        ErrorCode.FAILED_PRECONDITION,
      ],
      [
        'the allowance raised in the package',
        encodeOfflinePackage({
          ...good,
          cosigners: good.cosigners.map((c) => ({
            ...c,
            allowance: { ...caps, caps: [{ asset: 'BTC', amount: '5000000' }] },
          })),
        }),
        ErrorCode.RESERVATION_INVALID,
      ],
      [
        'the allowance dropped from the package',
        encodeOfflinePackage({ ...good, cosigners: good.cosigners.map((c) => ({ ...c, allowance: null })) }),
        ErrorCode.RESERVATION_INVALID,
      ],
    ];
    // Spending another key's output, or asking for another sighash type than the one signed.
    const notOurs = psbt(OTHER, [40_000n], [[OTHER, 25_000n]]);
    cases.push([
      'an input that is not this key’s',
      pay(notOurs, undefined, readPayment({ chain: 'bitcoin', tx: notOurs, input: 0 }).message).pkg.bytes,
      ErrorCode.PAYMENT_MISMATCH,
    ]);
    const all = Transaction.fromPSBT(tx);
    all.updateInput(0, { sighashType: SigHash.ALL });
    const allTx = all.toPSBT();
    cases.push([
      'SIGHASH_ALL asked for',
      pay(allTx, undefined, Transaction.fromPSBT(allTx).preimageWitnessV1(0, [own], SigHash.DEFAULT, [40_000n])).pkg
        .bytes,
      ErrorCode.PAYMENT_MISMATCH,
    ]);
    for (const [what, bytes, code] of cases) expect(await verdicts(bytes), what).toEqual([code, code]);
    // An uncapped reservation signs any message; a payment it carries is still read and must match.
    const free = pay(tx, reserve(k, null)).pkg;
    expect(await verdicts(free.bytes)).toEqual(['ok', 'ok']);
    const freeWrong = pay(tx, reserve(k, null), new Uint8Array(32).fill(2)).pkg;
    expect(await verdicts(freeWrong.bytes)).toEqual([ErrorCode.PAYMENT_MISMATCH, ErrorCode.PAYMENT_MISMATCH]);
  });

  it('the payment is not part of the package id: re-encoded (PSBT v2) or dropped, it is the same package', () => {
    const tx = psbt(own, [40_000n], [[OTHER, 25_000n]]);
    const { pkg } = pay(tx, reserve(k, null));
    const v2 = Transaction.fromPSBT(tx).toPSBT(2);
    expect(hex(v2)).not.toBe(hex(tx));
    for (const payment of [{ chain: 'bitcoin', tx: v2, input: 0 }, null]) {
      const again = decodeOfflinePackage(encodeOfflinePackage({ ...pkg, payment }));
      expect(hex(again.bytes)).not.toBe(hex(pkg.bytes));
      expect(again.packageId).toBe(pkg.packageId);
      expect(hex(again.digest)).toBe(hex(pkg.digest));
    }
  });

  it('an Ed25519 key signs no Bitcoin payment: PAYMENT_MISMATCH from both checks and from the one-suite merchant check', async () => {
    const e = make('ed25519');
    const tx = psbt(own, [40_000n], [[OTHER, 25_000n]]);
    const { pkg } = pay(tx, reserve(e, null), undefined, e);
    expect(await verdicts(pkg.bytes, e)).toEqual([ErrorCode.PAYMENT_MISMATCH, ErrorCode.PAYMENT_MISMATCH]);
    expect(await codeOf(() => checkEd25519Package(e.record, pkg.bytes, NOW))).toBe(ErrorCode.PAYMENT_MISMATCH);
  });
});

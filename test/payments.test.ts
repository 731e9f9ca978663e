/**
 * Offline payments with caps (issue 19), through the device SDK, the gateway, the coordinator and
 * signer engines with real LevelDB stores (in this process; test/payments-kill.test.ts does the
 * same with `tessera dev` processes and kill -9):
 *
 * - capped reservations: the co-signer signs the caps asked for into every reservation (its own
 *   id), grants none past its `maxCaps` policy, and once that policy is set completes nothing on
 *   an uncapped reservation it made before;
 * - the device pays Bitcoin PSBTs only, within the caps: a bare message or a payment past the
 *   per-payment limit or the cap is refused before anything is signed; the merchant's check reads
 *   the payment; the completed BIP 340 signature goes into the PSBT's witness (btc-signer) and
 *   verifies over btc-signer's hash of the extracted transaction; a used-up allowance does not
 *   block a later one (the device signs on the oldest slot whose allowance holds the payment);
 * - two copies of one phone (its directory copied: the same reservations and the same totals)
 *   each sign a package within the cap whose sum passes it: delivered in either order, exactly
 *   one completes, the other is refused OVER_ALLOWANCE and spends no nonce.
 */
import { cpSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { OutScript, SigHash, Transaction } from '@scure/btc-signer';
import {
  type SignatureBytes,
  getPublicKeyFromAddress,
  getTransactionDecoder,
  getTransactionEncoder,
  verifySignature,
} from '@solana/kit';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ParticipantIdentity,
  approvePriceSnapshot,
  decodeKeyRecord,
  decodeOfflinePackage,
  decodePriceSnapshot,
  encodeOfflinePackage,
  encodePriceSnapshot,
  PayloadKind,
  decodeMessage,
  encodeMessage,
  fromHex,
  openEnvelope,
  openReservation,
  signEnvelope,
} from '@tessera/core';
import { checkPackage } from '@tessera/core/merchant';
import { Device } from '@tessera/device';
import { operator, operators } from './authority.js';
import {
  cleanup,
  closers,
  deviceCluster,
  enrolled,
  observe,
  tempDir,
  withMetrics,
  type Cluster,
} from './device-harness.js';
import { offlineKpis } from '@tessera/cli';
import { solanaAddress, solanaTransfer } from './solana.js';

afterAll(cleanup);

/** The harness's signer policy, for `setPolicy` (which replaces it whole). */
const POLICY = { allowKeygen: true, allowUnpinnedPeers: true, operators, requesters: [] };

/** A payee's Taproot output (a valid x-only key). */
const PAYEE = OutScript.encode({ type: 'tr', pubkey: schnorr.getPublicKey(new Uint8Array(32).fill(7)) });

/** A PSBT spending one UTXO of `own` (amount + fee) to the payee. */
function psbt(own: Uint8Array, amount: bigint, fee: bigint): Uint8Array {
  const tx = new Transaction();
  tx.addInput({ txid: randomBytes(32), index: 0, witnessUtxo: { script: own, amount: amount + fee } });
  tx.addOutput({ script: PAYEE, amount });
  return tx.toPSBT();
}

async function refusal(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
    return 'ok';
  } catch (e) {
    return String((e as { code?: string }).code);
  }
}

async function phoneWithKey(c: Cluster, id: string) {
  const d = await enrolled(c, id);
  const info = await d.device.keygen(c.url, { suite: 'secp256k1-tr', threshold: 2, with: ['signer-1', 'signer-2'] });
  const own = OutScript.encode({ type: 'tr', pubkey: fromHex(info.publicKey) });
  return { ...d, info, own };
}

describe('offline payments with caps', () => {
  it('the device pays PSBTs within its caps; the merchant reads the payment; the signature spends the input', async () => {
    const c = await deviceCluster(3);
    const { device, info: key, own } = await phoneWithKey(c, 'phone-pay');
    const caps = { caps: { BTC: 50_000n }, perPayment: { BTC: 30_000n } };
    expect(await device.reserve(c.url, { keyId: key.keyId, count: 3, caps })).toMatchObject({ added: 3 });

    // Capped reservations pay transactions only, within the caps; a refusal signs nothing.
    expect(await refusal(() => device.signOffline({ keyId: key.keyId, message: new Uint8Array(32) }))).toBe(
      'OVER_ALLOWANCE',
    );
    expect(await refusal(() => device.signOffline({ keyId: key.keyId, payment: pay(own, 29_800n, 201n) }))).toBe(
      'OVER_ALLOWANCE',
    );
    const wrong = pay(own, 1_000n, 100n);
    expect(
      await refusal(() => device.signOffline({ keyId: key.keyId, payment: wrong, message: new Uint8Array(32) })),
    ).toBe('PAYMENT_MISMATCH');
    expect((await device.status()).queue.pending).toBe(0);

    const p = await device.signOffline({ keyId: key.keyId, payment: pay(own, 20_000n, 500n) });
    expect(p.payment).toMatchObject({ chain: 'bitcoin', asset: 'BTC', amount: '20000', fee: '500' });
    const checked = await checkPackage(await device.keyRecord(key.keyId), p.text);
    expect(checked.payment).toEqual(p.payment);
    // The journal says what was paid.
    expect((await device.journal()).find((e) => e.packageId === p.packageId)?.payment).toEqual(p.payment);
    // 20,500 used of 50,000: another 29,500 fits, 30,001 would not (per payment), 29,501 would pass the cap.
    expect(await refusal(() => device.signOffline({ keyId: key.keyId, payment: pay(own, 29_401n, 100n) }))).toBe(
      'OVER_ALLOWANCE',
    );
    // A fresh allowance pays it: the device signs on the oldest slot whose allowance holds it.
    await device.reserve(c.url, { keyId: key.keyId, count: 1, caps });
    const later = await device.signOffline({ keyId: key.keyId, payment: pay(own, 29_401n, 100n) });
    expect(later.payment).toMatchObject({ amount: '29401', fee: '100' });

    const s = await device.sync(c.url);
    expect(s.completed.map((x) => x.packageId)).toEqual([p.packageId, later.packageId]);
    const sig = fromHex((s.completed[0] as { signature: string }).signature);
    const queued = (await device.queue()).find((q) => q.packageId === p.packageId);
    const tx = Transaction.fromPSBT((lastPsbt.get(queued?.message ?? '') as Uint8Array) ?? new Uint8Array());
    tx.updateInput(0, { finalScriptWitness: [sig] });
    const raw = Transaction.fromRaw(tx.extract(), { allowUnknownOutputs: true });
    const hash = raw.preimageWitnessV1(0, [own], SigHash.DEFAULT, [20_500n]);
    expect(
      schnorr.verify(
        (raw.getInput(0).finalScriptWitness as Uint8Array[])[0] as Uint8Array,
        hash,
        fromHex(key.publicKey),
      ),
    ).toBe(true);
  });

  it('a Solana transfer signed offline by phone + cluster: the merchant reads it, the cap holds, the Solana library verifies the signature over the transaction', async () => {
    const c = await deviceCluster(3);
    const d = await enrolled(c, 'phone-sol');
    const key = await d.device.keygen(c.url, { suite: 'ed25519', threshold: 2, with: ['signer-1', 'signer-2'] });
    const caps = { caps: { SOL: 2_000_000n }, perPayment: { SOL: 1_500_000n } };
    expect(await d.device.reserve(c.url, { keyId: key.keyId, count: 2, caps })).toMatchObject({ added: 2 });
    const me = solanaAddress(fromHex(key.publicKey));
    const BOB = new Uint8Array(32).fill(2);
    const bob = solanaAddress(BOB);
    const { tx, payment } = solanaTransfer(fromHex(key.publicKey), BOB, 1_000_000n);
    // Past the per-payment limit: refused before anything is signed.
    const big = solanaTransfer(fromHex(key.publicKey), BOB, 1_500_000n).payment;
    expect(await refusal(() => d.device.signOffline({ keyId: key.keyId, payment: big }))).toBe('OVER_ALLOWANCE');
    const p = await d.device.signOffline({ keyId: key.keyId, payment });
    expect(p.payment).toEqual({ chain: 'solana', asset: 'SOL', amount: '1000000', fee: '5000', to: [bob] });
    expect((await checkPackage(await d.device.keyRecord(key.keyId), p.text)).payment).toEqual(p.payment);
    const s = await d.device.sync(c.url);
    expect(s.completed.map((x) => x.packageId)).toEqual([p.packageId]);
    const sig = fromHex((s.completed[0] as { signature: string }).signature);
    // The Solana library's own check, over the transaction's message bytes, with the key as an address.
    const pub = await getPublicKeyFromAddress(me);
    expect(await verifySignature(pub, sig as SignatureBytes, tx.messageBytes)).toBe(true);
    const signed = getTransactionDecoder().decode(
      getTransactionEncoder().encode({ ...tx, signatures: { ...tx.signatures, [me]: sig as SignatureBytes } }),
    );
    expect(Buffer.from(signed.signatures[me] as Uint8Array).toString('hex')).toBe(Buffer.from(sig).toString('hex'));
    // 1,005,000 of the 2,000,000 cap used: another 999,999 plus its fee would pass it.
    const again = solanaTransfer(fromHex(key.publicKey), BOB, 999_999n).payment;
    expect(await refusal(() => d.device.signOffline({ keyId: key.keyId, payment: again }))).toBe('OVER_ALLOWANCE');
  });

  it('a co-signer grants no caps above its policy, and with maxCaps set reserves nothing uncapped', async () => {
    const c = await deviceCluster(3, { maxCaps: { BTC: '100000' } });
    const { device, info: key } = await phoneWithKey(c, 'phone-policy');
    const one = { keyId: key.keyId, count: 1, cosigners: ['signer-1'] };
    // Refused by the co-signer's own policy: POLICY_DENIED reaches the device (not a retry).
    expect(await refusal(() => device.reserve(c.url, one))).toBe('POLICY_DENIED');
    expect(await refusal(() => device.reserve(c.url, { ...one, caps: { caps: { BTC: 100_001n } } }))).toBe(
      'POLICY_DENIED',
    );
    expect(await refusal(() => device.reserve(c.url, { ...one, caps: { caps: { SOL: 1n } } }))).toBe('POLICY_DENIED');
    expect((await device.reserve(c.url, { ...one, caps: { caps: { BTC: 100_000n } } })).added).toBe(1);
  });

  it('a device holds at most maxDeviceCaps in unspent caps on a node, over all its allowances; what the node counted as spent frees room', async () => {
    const c = await deviceCluster(3, { maxDeviceCaps: { BTC: '150000' } });
    const { device, info: key, own } = await phoneWithKey(c, 'phone-total');
    const on1 = (cap: bigint) => ({
      keyId: key.keyId,
      count: 1,
      cosigners: ['signer-1'],
      caps: { caps: { BTC: cap } },
    });
    expect(await refusal(() => device.reserve(c.url, { keyId: key.keyId, count: 1, cosigners: ['signer-1'] }))).toBe(
      'POLICY_DENIED',
    );
    // Two reservations on the first allowance: after one payment it can still pay.
    expect((await device.reserve(c.url, { ...on1(100_000n), count: 2 })).added).toBe(2);
    // 100,000 + 60,000 would pass 150,000; 50,000 fits.
    expect(await refusal(() => device.reserve(c.url, on1(60_000n)))).toBe('POLICY_DENIED');
    expect((await device.reserve(c.url, on1(50_000n))).added).toBe(1);
    // A payment of 30,000 + 500 on the first allowance, completed: 69,500 + 50,000 unspent. (An
    // allowance with no unused reservation left can pay nothing more and no longer counts.)
    const p = await device.signOffline({ keyId: key.keyId, payment: pay(own, 30_000n, 500n) });
    expect((await device.sync(c.url)).completed.map((x) => x.packageId)).toEqual([p.packageId]);
    expect(await refusal(() => device.reserve(c.url, on1(30_501n)))).toBe('POLICY_DENIED');
    expect((await device.reserve(c.url, on1(30_500n))).added).toBe(1);
  });

  it("the co-signer's own deny list, evaluated again at completion: a payment to a denied payee is refused (POLICY_DENIED, audited), nothing spent; others complete", async () => {
    const DENIED = new Uint8Array(32).fill(21);
    const c = await deviceCluster(3, { denyTo: [solanaAddress(DENIED)] });
    const d = await enrolled(c, 'phone-deny');
    const key = await d.device.keygen(c.url, { suite: 'ed25519', threshold: 2, with: ['signer-1', 'signer-2'] });
    await d.device.reserve(c.url, { keyId: key.keyId, count: 2, cosigners: ['signer-1'] });
    const pk = fromHex(key.publicKey);
    // The device has no rule against it: it signs, and the merchant's check (which knows no lists) passes it.
    const bad = await d.device.signOffline({ keyId: key.keyId, payment: solanaTransfer(pk, DENIED, 7n).payment });
    const s1 = c.signer('signer-1');
    const fresh = await s1.ledger.countFresh('r.');
    expect(await refusal(() => c.coordinator.completePackage(bad.bytes))).toBe('POLICY_DENIED');
    expect(await s1.ledger.countFresh('r.')).toBe(fresh);
    const refusals = [];
    for await (const e of s1.audit.entries()) if (e.type === 'refusal') refusals.push(e.data.code);
    expect(refusals).toContain('POLICY_DENIED');
    const ok = await d.device.signOffline({
      keyId: key.keyId,
      payment: solanaTransfer(pk, new Uint8Array(32).fill(22), 7n).payment,
    });
    const s = await d.device.sync(c.url);
    expect(s.completed.map((x) => x.packageId)).toEqual([ok.packageId]);
    expect(s.failed.map((x) => x.packageId)).toEqual([bad.packageId]);
  });

  it('caps set on a running node stop the uncapped reservations it made before: POLICY_DENIED at completion, nothing spent', async () => {
    const c = await deviceCluster(3);
    const { device, info: key } = await phoneWithKey(c, 'phone-later');
    await device.reserve(c.url, { keyId: key.keyId, count: 1, cosigners: ['signer-1'] });
    const p = await device.signOffline({ keyId: key.keyId, message: new Uint8Array(32).fill(1) });
    const s1 = c.signer('signer-1');
    s1.setPolicy({
      allowKeygen: true,
      allowUnpinnedPeers: true,
      operators,
      requesters: [],
      devices: { maxCaps: { BTC: '100000' } },
    });
    expect(await refusal(() => c.coordinator.completePackage(p.bytes))).toBe('POLICY_DENIED');
    expect(await s1.ledger.countFresh('r.')).toBe(1);
  });

  it("a fiat cap valued with the operators' signed price snapshot: granted only with their signatures, fresh and within policy; the device, the merchant and the co-signer count dollars", async () => {
    const c = await deviceCluster(3, { maxCaps: { '@fiat:USD': '30000', BTC: '1000000' } });
    const ph = await phoneWithKey(c, 'phone-fiat');
    const { device, info: key, own } = ph;
    // $97,000.00 per bitcoin.
    const table = (takenAt: number) =>
      encodePriceSnapshot({
        currency: 'USD',
        takenAt,
        prices: [{ asset: 'BTC', per: 100_000_000n, fiat: 9_700_000n }],
      });
    const snapshot = table(Date.now() - 60_000);
    const signed = [approvePriceSnapshot(operator, snapshot)];
    const fiat = (cap: bigint, prices = snapshot, approvals = signed) => ({
      keyId: key.keyId,
      count: 3,
      cosigners: ['signer-1'],
      caps: { caps: { BTC: 1_000_000n }, fiat: { currency: 'USD', cap, perPayment: 20_000n, prices, approvals } },
    });
    // Unsigned, signed by someone the node does not pin, two days old, above the node's $300.00: refused.
    expect(await refusal(() => device.reserve(c.url, fiat(30_000n, snapshot, [])))).toBe('POLICY_DENIED');
    const rogue = ParticipantIdentity.generate('rogue-operator');
    expect(
      await refusal(() => device.reserve(c.url, fiat(30_000n, snapshot, [approvePriceSnapshot(rogue, snapshot)]))),
    ).toBe('POLICY_DENIED');
    const stale = table(Date.now() - 2 * 86_400_000);
    expect(
      await refusal(() => device.reserve(c.url, fiat(30_000n, stale, [approvePriceSnapshot(operator, stale)]))),
    ).toBe('POLICY_DENIED');
    expect(await refusal(() => device.reserve(c.url, fiat(30_001n)))).toBe('POLICY_DENIED');
    // Signed, and young enough to grant, but a day old within the next minute: nothing worth reserving.
    const ageing = table(Date.now() - 86_400_000 + 30_000);
    expect(
      await refusal(() => device.reserve(c.url, fiat(30_000n, ageing, [approvePriceSnapshot(operator, ageing)]))),
    ).toBe('POLICY_DENIED');
    // The node limits bitcoin itself: a fiat cap alone (which would let any amount of it through
    // up to $300.00) is refused; with a bitcoin cap of its own beside it, granted.
    const { caps: _btc, ...fiatOnly } = fiat(30_000n).caps;
    expect(await refusal(() => device.reserve(c.url, { ...fiat(30_000n), caps: fiatOnly }))).toBe('POLICY_DENIED');
    expect(await device.reserve(c.url, fiat(30_000n))).toMatchObject({ added: 3 });
    // The reservations end when the prices grow a day old (the node's maxPriceAgeMs), not in 7 days.
    const slots = (await device.status()).keys.find((k) => k.keyId === key.keyId);
    expect(slots?.nextExpiry).toBe(decodePriceSnapshot(snapshot).takenAt + 86_400_000);

    // 200,000 sat + 500 fee = $194.49 (a cent up); the per-payment limit is $200.00.
    expect(await refusal(() => device.signOffline({ keyId: key.keyId, payment: pay(own, 206_186n, 0n) }))).toBe(
      'OVER_ALLOWANCE',
    );
    const p = await device.signOffline({ keyId: key.keyId, payment: pay(own, 200_000n, 500n) });
    expect((await checkPackage(await device.keyRecord(key.keyId), p.text)).payment).toEqual(p.payment);
    // $105.51 left: 108,800 sat ($105.54) is past it, 108,700 ($105.44) fits.
    expect(await refusal(() => device.signOffline({ keyId: key.keyId, payment: pay(own, 108_800n, 0n) }))).toBe(
      'OVER_ALLOWANCE',
    );
    // A copy of the phone (the same reservations and totals) signs the remaining room too: the
    // co-signer, counting every package it completes, lets only one of the two through.
    await device.close();
    const copyDir = tempDir();
    cpSync(ph.dir, copyDir, { recursive: true });
    const again = await Device.open({ location: ph.dir, storageKey: ph.key });
    const clone = await Device.open({ location: copyDir, storageKey: ph.key });
    closers.push(
      () => again.close(),
      () => clone.close(),
    );
    const q = await again.signOffline({ keyId: key.keyId, payment: pay(own, 108_700n, 0n) });
    // The clone spends its copy of that slot on a payment it never delivers, then signs on the next.
    await clone.signOffline({ keyId: key.keyId, payment: pay(own, 1_000n, 0n) });
    const r = await clone.signOffline({ keyId: key.keyId, payment: pay(own, 50_000n, 0n) });
    expect(await refusal(() => c.coordinator.completePackage(p.bytes))).toBe('ok');
    expect(await refusal(() => c.coordinator.completePackage(r.bytes))).toBe('ok');
    expect(await refusal(() => c.coordinator.completePackage(q.bytes))).toBe('OVER_ALLOWANCE');
    // The refused one spent nothing: one of the three reserved nonces is still fresh.
    expect(await c.signer('signer-1').ledger.countFresh('r.')).toBe(1);
    // What completed is a BIP 340 signature over the payment's own signature hash.
    const done = await again.sync(c.url);
    const sig = done.completed.find((x) => x.packageId === p.packageId) as { signature: string; message: string };
    expect(schnorr.verify(fromHex(sig.signature), fromHex(sig.message), fromHex(key.publicKey))).toBe(true);
    expect(done.failed.map((x) => x.packageId)).toEqual([q.packageId]);
  });

  it('a co-signer that signs another price table into the allowance than the one asked for: the device keeps none of the reservations', async () => {
    const c = await deviceCluster(3);
    const { device, info: key } = await phoneWithKey(c, 'phone-prices');
    const table = (fiat: bigint) =>
      encodePriceSnapshot({
        currency: 'USD',
        takenAt: Date.now() - 60_000,
        prices: [{ asset: 'BTC', per: 100_000_000n, fiat }],
      });
    const fiat = (prices: Uint8Array) => ({
      currency: 'USD',
      cap: '30000',
      perPayment: '',
      prices,
      approvals: [approvePriceSnapshot(operator, prices)],
    });
    const asked = table(9_700_000n);
    // Genuine reservations of signer-1, but for bitcoin at $1.00: handed back for the device's request.
    const cheap = await c.signer('signer-1').reserve(key.keyId, 'phone-prices', 1, 3_600_000, {
      allowanceId: new Uint8Array(0),
      caps: [],
      perPayment: [],
      fiat: fiat(table(100n)),
    });
    c.tamper.set('signer-1', (r) => ({ ...r, reservations: { envelopes: cheap } }));
    const req = { keyId: key.keyId, count: 1, cosigners: ['signer-1'] };
    const f = fiat(asked);
    const caps = { fiat: { currency: 'USD', cap: 30_000n, prices: f.prices, approvals: f.approvals } };
    expect(await refusal(() => device.reserve(c.url, { ...req, caps }))).toBe('RESERVATION_INVALID');
    expect((await device.status()).keys.find((k) => k.keyId === key.keyId)?.allowance).toBe(0);
    c.tamper.delete('signer-1');
    expect((await device.reserve(c.url, { ...req, caps })).added).toBe(1);
  });

  it('a co-signer whose policy turns on requireIntegrity after it reserved: the device signs into the package the verdict it is given; none, fail, or claims a relay stripped are refused (audited, nothing spent); pass completes', async () => {
    const c = await deviceCluster(3);
    const d = await enrolled(c, 'phone-integrity');
    const key = await d.device.keygen(c.url, { suite: 'ed25519', threshold: 2, with: ['signer-1', 'signer-2'] });
    await d.device.reserve(c.url, { keyId: key.keyId, count: 4, cosigners: ['signer-1'] });
    const s1 = c.signer('signer-1');
    const fresh = await s1.ledger.countFresh('r.');
    const message = (n: number) => new Uint8Array(32).fill(n);
    const none = await d.device.signOffline({ keyId: key.keyId, message: message(1) });
    const failed = await d.device.signOffline({
      keyId: key.keyId,
      message: message(2),
      integrity: { verdict: 'fail', detail: 'play-integrity:NO_INTEGRITY' },
    });
    const passed = await d.device.signOffline({
      keyId: key.keyId,
      message: message(3),
      integrity: { verdict: 'pass', detail: 'play-integrity:MEETS_STRONG_INTEGRITY' },
    });
    const unknown = await d.device.signOffline({
      keyId: key.keyId,
      message: message(4),
      integrity: { verdict: 'unknown' },
    });
    s1.setPolicy({ ...POLICY, devices: { requireIntegrity: true } });
    // A signed verdict other than pass is final; no claims at all is not (another copy may carry them).
    expect(await refusal(() => c.coordinator.completePackage(none.bytes))).toBe('FAILED_PRECONDITION');
    expect(await refusal(() => c.coordinator.completePackage(failed.bytes))).toBe('POLICY_DENIED');
    expect(await refusal(() => c.coordinator.completePackage(unknown.bytes))).toBe('POLICY_DENIED');
    // A relay drops the claims, or swaps in another package's: the same package (same id), refused, not finally.
    const genuine = decodeOfflinePackage(passed.bytes);
    const stripped = encodeOfflinePackage({ ...genuine, claims: null });
    expect(decodeOfflinePackage(stripped).packageId).toBe(passed.packageId);
    expect(await refusal(() => c.coordinator.completePackage(stripped))).toBe('FAILED_PRECONDITION');
    const swapped = encodeOfflinePackage({ ...genuine, claims: decodeOfflinePackage(unknown.bytes).claims ?? null });
    expect(await refusal(() => c.coordinator.completePackage(swapped))).toBe('FAILED_PRECONDITION');
    expect(await s1.ledger.countFresh('r.')).toBe(fresh);
    const reasons: string[] = [];
    for await (const e of s1.audit.entries()) if (e.type === 'refusal') reasons.push(String(e.data.reason));
    expect(reasons.filter((r) => /device claims|integrity verdict/.test(r)).length).toBeGreaterThanOrEqual(5);
    // The genuine one, claims and all, completes: one reservation spent.
    const done = await c.coordinator.completePackage(passed.bytes);
    expect(ed25519.verify(done.signature, message(3), fromHex(key.publicKey))).toBe(true);
    expect(await s1.ledger.countFresh('r.')).toBe(fresh - 1);
    expect((await d.device.sync(c.url)).completed.map((x) => x.packageId)).toEqual([passed.packageId]);
  });

  /** The unused reservations (slots) the device holds for a key. */
  const slotsOf = async (device: Device, keyId: string) =>
    (await device.status()).keys.find((k) => k.keyId === keyId)?.allowance;

  it("a wallet that requires the app's verdict asks for the rule in its reservations: the co-signer signs it in, the merchant checks the claims, and the co-signer holds every copy to it with no policy of its own", async () => {
    const c = await deviceCluster(3);
    const e = await enrolled(c, 'phone-strict');
    const key = await e.device.keygen(c.url, { suite: 'ed25519', threshold: 2, with: ['signer-1', 'signer-2'] });
    await e.device.close();
    const d = await Device.open({ location: e.dir, storageKey: e.key, risk: { requireIntegrity: true } });
    closers.push(() => d.close());
    await d.reserve(c.url, { keyId: key.keyId, count: 3, cosigners: ['signer-1'] });
    const message = (n: number) => new Uint8Array(32).fill(n);
    // The wallet refuses before it signs: nothing used, nothing journalled as signed.
    for (const integrity of [undefined, { verdict: 'fail' as const }, { verdict: 'unknown' as const }])
      expect(
        await refusal(() =>
          d.signOffline({ keyId: key.keyId, message: message(1), ...(integrity ? { integrity } : {}) }),
        ),
      ).toBe('POLICY_DENIED');
    expect(await slotsOf(d, key.keyId)).toBe(3);
    expect((await d.journal()).filter((x) => x.kind === 'signed')).toEqual([]);
    const pass = { verdict: 'pass' as const, detail: 'app-attest:ok' };
    const paid = await d.signOffline({ keyId: key.keyId, message: message(2), integrity: pass });
    const other = await d.signOffline({ keyId: key.keyId, message: message(3), integrity: pass });
    const pkg = decodeOfflinePackage(paid.bytes);
    expect(pkg.cosigners.map((x) => x.allowance?.requireIntegrity)).toEqual([true]);
    // The merchant's offline check opens the device's claims: shown when they pass, else refused.
    const record = await d.keyRecord(key.keyId);
    expect((await checkPackage(record, paid.text)).integrity).toBe('pass');
    const stripped = encodeOfflinePackage({ ...pkg, claims: null });
    const swapped = encodeOfflinePackage({ ...pkg, claims: decodeOfflinePackage(other.bytes).claims ?? null });
    for (const copy of [stripped, swapped])
      expect(await refusal(() => checkPackage(record, copy))).toBe('FAILED_PRECONDITION');
    // The co-signer has no integrity policy: the rule it signed into its reservation holds.
    const s1 = c.signer('signer-1');
    const fresh = await s1.ledger.countFresh('r.');
    for (const copy of [stripped, swapped])
      expect(await refusal(() => c.coordinator.completePackage(copy))).toBe('FAILED_PRECONDITION');
    expect(await s1.ledger.countFresh('r.')).toBe(fresh);
    const done = await c.coordinator.completePackage(paid.bytes);
    expect(ed25519.verify(done.signature, message(2), fromHex(key.publicKey))).toBe(true);
    expect(await s1.ledger.countFresh('r.')).toBe(fresh - 1);
    // The app turns its rule off: the slot reserved under it still needs a pass (the wallet says
    // which co-signer asks), and new reservations do not carry the rule.
    await d.close();
    const free = await Device.open({ location: e.dir, storageKey: e.key });
    closers.push(() => free.close());
    const refused = await free.signOffline({ keyId: key.keyId, message: message(4) }).catch((x: Error) => x);
    expect(refused).toMatchObject({ code: 'POLICY_DENIED', message: expect.stringMatching(/co-signer signer-1/) });
    await free.reserve(c.url, { keyId: key.keyId, count: 1, cosigners: ['signer-1'] });
    expect(await slotsOf(free, key.keyId)).toBe(2);
    const bare = await free.signOffline({ keyId: key.keyId, message: message(4) });
    expect(decodeOfflinePackage(bare.bytes).cosigners[0]?.allowance ?? null).toBe(null);
  });

  it('a co-signer whose policy requires the verdict signs the rule into the reservations of a device that says it keeps them: the device then signs only with a pass (no package the co-signer would refuse later); a device of an earlier release (no flag) gets none', async () => {
    const c = await deviceCluster(3, { requireIntegrity: true });
    const d = await enrolled(c, 'phone-told');
    const key = await d.device.keygen(c.url, { suite: 'ed25519', threshold: 2, with: ['signer-1', 'signer-2'] });
    // The co-signer reads the flag from the device's own signed call, which the coordinator passes on.
    let call: Uint8Array | undefined;
    c.tamper.set('signer-1', (r, t) => {
      if (t.body === 'reserve') call = t.reserve?.deviceCall;
      return r;
    });
    // The app has no integrity rule of its own and asks for no caps.
    expect((await d.device.reserve(c.url, { keyId: key.keyId, count: 2, cosigners: ['signer-1'] })).added).toBe(2);
    c.tamper.delete('signer-1');
    expect(call?.length).toBeGreaterThan(0);
    const message = (n: number) => new Uint8Array(32).fill(n);
    for (const integrity of [undefined, { verdict: 'fail' as const }]) {
      const refused = await d.device
        .signOffline({ keyId: key.keyId, message: message(1), ...(integrity ? { integrity } : {}) })
        .catch((x: Error) => x);
      expect(refused).toMatchObject({ code: 'POLICY_DENIED', message: expect.stringMatching(/co-signer signer-1/) });
    }
    expect(await slotsOf(d.device, key.keyId)).toBe(2);
    expect((await d.device.journal()).filter((x) => x.kind === 'signed')).toEqual([]);
    const p = await d.device.signOffline({
      keyId: key.keyId,
      message: message(2),
      integrity: { verdict: 'pass', detail: 'app-attest:ok' },
    });
    expect(decodeOfflinePackage(p.bytes).cosigners.map((x) => x.allowance?.requireIntegrity)).toEqual([true]);
    expect((await checkPackage(await d.device.keyRecord(key.keyId), p.text)).integrity).toBe('pass');
    expect((await d.device.sync(c.url)).completed.map((x) => x.packageId)).toEqual([p.packageId]);
    // A reserve call without the flag (as a device of the previous release makes it): no rule.
    const old = await c.coordinator.reserve('phone-told', { keyId: key.keyId, count: 1, cosigners: ['signer-1'] });
    const rec = decodeKeyRecord(await d.device.keyRecord(key.keyId));
    expect(old.slots.flat().map((env) => openReservation(rec.key, env).allowance ?? null)).toEqual([null]);
    // The flag is the device's word, not the coordinator's: the device's own call (replayed) says
    // so; a call made up in the device's name, or the genuine one altered, reads as no.
    const s1 = c.signer('signer-1');
    const rule = async (deviceCall: Uint8Array) =>
      (await s1.reserve(key.keyId, 'phone-told', 1, 3_600_000, undefined, { deviceCall })).map(
        (env) => openReservation(rec.key, env).allowance?.requireIntegrity ?? false,
      );
    expect(await rule(call as Uint8Array)).toEqual([true]);
    const impostor = ParticipantIdentity.generate('phone-told');
    const madeUp = signEnvelope(
      impostor,
      PayloadKind.DEVICE_CALL,
      encodeMessage('DeviceCall', {
        ...decodeMessage('DeviceCall', openEnvelope(call as Uint8Array, PayloadKind.DEVICE_CALL).payload),
      }),
    );
    const altered = Uint8Array.from(call as Uint8Array);
    altered[altered.length - 1] = (altered[altered.length - 1] as number) ^ 1;
    for (const forged of [madeUp, altered]) expect(await rule(forged)).toEqual([false]);
  });

  it("a payment that spends two of the key's outputs is signed in one package per input and counts once against the cap, on the device and on the co-signer; the finalised transaction verifies", async () => {
    const c = await deviceCluster(3);
    const { device, info: key, own } = await phoneWithKey(c, 'phone-inputs');
    await device.reserve(c.url, {
      keyId: key.keyId,
      count: 3,
      cosigners: ['signer-1'],
      caps: { caps: { BTC: 50_000n } },
    });
    // Two UTXOs of 30,000; 40,000 to the payee, 19,000 back, 1,000 fee: 41,000 of the 50,000.
    const t = new Transaction();
    for (const i of [1, 2])
      t.addInput({ txid: randomBytes(32), index: i, witnessUtxo: { script: own, amount: 30_000n } });
    t.addOutput({ script: PAYEE, amount: 40_000n });
    t.addOutput({ script: own, amount: 19_000n });
    const tx = t.toPSBT();
    const [p0, p1] = [
      await device.signOffline({ keyId: key.keyId, payment: { chain: 'bitcoin', tx, input: 0 } }),
      await device.signOffline({ keyId: key.keyId, payment: { chain: 'bitcoin', tx, input: 1 } }),
    ];
    for (const p of [p0, p1]) {
      expect(p.payment).toMatchObject({ amount: '40000', fee: '1000', tx: t.id });
      expect((await checkPackage(await device.keyRecord(key.keyId), p.text)).payment).toEqual(p.payment);
    }
    // 9,001 more would pass the cap: the transaction was counted once, not twice (82,000 > 50,000).
    expect(await refusal(() => device.signOffline({ keyId: key.keyId, payment: pay(own, 8_001n, 1_000n) }))).toBe(
      'OVER_ALLOWANCE',
    );
    const last = await device.signOffline({ keyId: key.keyId, payment: pay(own, 8_000n, 1_000n) });
    // The co-signer counts the same way: all three complete (50,000 of 50,000).
    const s = await device.sync(c.url);
    expect(s.completed.map((x) => x.packageId).sort()).toEqual([p0.packageId, p1.packageId, last.packageId].sort());
    const sigOf = (id: string) =>
      fromHex((s.completed.find((x) => x.packageId === id) as { signature: string }).signature);
    const signed = Transaction.fromPSBT(tx);
    signed.updateInput(0, { finalScriptWitness: [sigOf(p0.packageId)] });
    signed.updateInput(1, { finalScriptWitness: [sigOf(p1.packageId)] });
    const raw = Transaction.fromRaw(signed.extract(), { allowUnknownOutputs: true });
    expect(raw.id).toBe(t.id);
    for (const i of [0, 1]) {
      const hash = raw.preimageWitnessV1(i, [own, own], SigHash.DEFAULT, [30_000n, 30_000n]);
      const w = (raw.getInput(i).finalScriptWitness as Uint8Array[])[0] as Uint8Array;
      expect(schnorr.verify(w, hash, fromHex(key.publicKey))).toBe(true);
    }
  });

  for (const order of ['first, second', 'second, first'] as const)
    it(`two copies of one phone pay past the cap together: exactly one completes (delivered ${order}); the KPIs count the other once as past its cap`, async () => {
      const { registry, metrics } = withMetrics();
      const c = await deviceCluster(3, { onEvent: (e) => metrics.onEvent(e) });
      observe(metrics, c);
      const a = await phoneWithKey(c, `phone-${order.startsWith('first') ? 'ab' : 'ba'}`);
      await a.device.reserve(c.url, {
        keyId: a.info.keyId,
        count: 2,
        cosigners: ['signer-1'],
        caps: { caps: { BTC: 50_000n } },
      });
      // The copy: the same store (reservations, totals) in another directory.
      await a.device.close();
      const copyDir = tempDir();
      cpSync(a.dir, copyDir, { recursive: true });
      const phone = await Device.open({ location: a.dir, storageKey: a.key });
      const clone = await Device.open({ location: copyDir, storageKey: a.key });
      closers.push(
        () => phone.close(),
        () => clone.close(),
      );
      const first = await phone.signOffline({ keyId: a.info.keyId, payment: pay(a.own, 30_000n, 0n) });
      // The clone spends its first slot on a payment it never delivers, then signs on the second.
      await clone.signOffline({ keyId: a.info.keyId, payment: pay(a.own, 1_000n, 0n) });
      const second = await clone.signOffline({ keyId: a.info.keyId, payment: pay(a.own, 25_000n, 0n) });
      expect(first.packageId).not.toBe(second.packageId);
      const [x, y] = order === 'first, second' ? [first, second] : [second, first];
      expect(await refusal(() => c.coordinator.completePackage(x.bytes))).toBe('ok');
      expect(await refusal(() => c.coordinator.completePackage(y.bytes))).toBe('OVER_ALLOWANCE');
      // Refused, not spent: the co-signer's nonce of the refused package is still fresh.
      expect(await refusal(() => c.coordinator.completePackage(y.bytes))).toBe('OVER_ALLOWANCE');
      // The one that completed completes again to the same signature (counted once).
      expect(await refusal(() => c.coordinator.completePackage(x.bytes))).toBe('ok');
      const fresh = await c.signer('signer-1').ledger.countFresh(`r.`);
      expect(fresh).toBe(1);
      // A package past its cap is a compromise indicator (an honest phone never signs one): once.
      const k = offlineKpis(await registry.metrics());
      expect(k.compromiseIndicators).toEqual({ reservationReuse: 0, culprits: 0, packagesPastCap: 1 });
      expect(k.refused).toBe(1);
    });
});

/** The PSBT of each payment message signed (by the hex of its hash), to finalise it after the sync. */
const lastPsbt = new Map<string, Uint8Array>();

function pay(own: Uint8Array, amount: bigint, fee: bigint) {
  const tx = psbt(own, amount, fee);
  const hash = Transaction.fromPSBT(tx).preimageWitnessV1(0, [own], SigHash.DEFAULT, [amount + fee]);
  lastPsbt.set(Buffer.from(hash).toString('hex'), tx);
  return { chain: 'bitcoin', tx, input: 0 };
}

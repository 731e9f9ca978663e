/**
 * The TRON transaction reader behind `tessera sign --tron-tx`: transactions are built by TronWeb
 * (the TRON library: its JSON → protobuf encoder and its txID), read back here into the payment
 * they make; anything that is not one TRX or TRC-20 transfer is refused INVALID_ARGUMENT, and so
 * is every malformed input (fuzzed).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import fc from 'fast-check';
import { TronWeb, utils } from 'tronweb';
import { afterAll, describe, expect, it } from 'vitest';
import { fromHex, tronAddress } from '@tessera/core';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { checkTronSender, readTronPayment, readTronTx } from '../src/tron-tx.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-tron-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const key = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true);
const owner = TronWeb.address.toHex(tronAddress(key));
const payee = `41${'cd'.repeat(20)}`;
const USDT = 'TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t';

type Contract = { type: string; value: Record<string, unknown> };
/** A transaction as TronGrid returns it: raw_data, its protobuf bytes as hex, and the txID. */
function tronTx(contracts: Contract[], extra: Record<string, unknown> = {}) {
  const tx = {
    visible: false,
    txID: '',
    raw_data_hex: '',
    raw_data: {
      contract: contracts.map((c) => ({
        parameter: { value: c.value, type_url: `type.googleapis.com/protocol.${c.type}` },
        type: c.type,
      })),
      ref_block_bytes: 'abcd',
      ref_block_hash: '0123456789abcdef',
      expiration: 1_790_000_060_000,
      timestamp: 1_790_000_000_000,
      ...extra,
    },
  };
  const pb = utils.transaction.txJsonToPb(tx);
  tx.raw_data_hex = utils.transaction.txPbToRawDataHex(pb);
  tx.txID = utils.transaction.txPbToTxID(pb).replace(/^0x/, '');
  return tx;
}
const trx = (amount: number) => ({
  type: 'TransferContract',
  value: { amount, owner_address: owner, to_address: payee },
});
const transferData = (to: string, amount: bigint) =>
  `a9059cbb${'0'.repeat(24)}${to.slice(2)}${amount.toString(16).padStart(64, '0')}`;
const trc20 = (data: string, callValue?: number) => ({
  type: 'TriggerSmartContract',
  value: {
    data,
    owner_address: owner,
    contract_address: TronWeb.address.toHex(USDT),
    ...(callValue ? { call_value: callValue } : {}),
  },
});
const read = (tx: { raw_data_hex: string }) => readTronPayment(fromHex(tx.raw_data_hex));
const file = (content: unknown) => {
  const f = join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(f, typeof content === 'string' ? content : JSON.stringify(content));
  return f;
};

describe('TRON transactions (sign --tron-tx)', () => {
  it('a TRX transfer: amount in sun, payee and payer as T… addresses, the expiration', () => {
    expect(read(tronTx([trx(5_000_000)]))).toEqual({
      from: tronAddress(key),
      asset: 'TRX',
      amount: '5000000',
      to: TronWeb.address.fromHex(payee),
      feeLimit: '0',
      expiration: 1_790_000_060_000,
    });
  });

  it('a TRC-20 (USDT) transfer: the token contract as the asset, the payee and amount from the call data, the fee limit', () => {
    const p = read(tronTx([trc20(transferData(payee, 12_345_678_901_234_567_890n))], { fee_limit: 30_000_000 }));
    expect(p).toEqual({
      from: tronAddress(key),
      asset: `TRC20:${USDT}`,
      amount: '12345678901234567890',
      to: TronWeb.address.fromHex(payee),
      feeLimit: '30000000',
      expiration: 1_790_000_060_000,
    });
  });

  it('the file: txID checked against SHA-256 of raw_data_hex; the payer must be the key', () => {
    const tx = tronTx([trx(1)]);
    const ok = readTronTx(file(tx));
    expect(Buffer.from(ok.txID).toString('hex')).toBe(tx.txID);
    expect(() => checkTronSender(ok, key)).not.toThrow();
    const other = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true);
    expect(() => checkTronSender(ok, other)).toThrow(/pays from T.* this key's address is T/);
    expect(() => readTronTx(file({ ...tx, txID: '00'.repeat(32) }))).toThrow(/is not SHA-256 of raw_data_hex/);
    expect(() => readTronTx(file({ ...tx, signature: ['aa'] }))).toThrow(/already signed/);
    expect(() => readTronTx(file({ ...tx, raw_data_hex: undefined }))).toThrow(/raw_data_hex/);
    expect(() => readTronTx(file('{not json'))).toThrow(/not readable JSON/);
    // The JSON form must say what the bytes say (a wallet may broadcast the JSON form).
    const json = (patch: (v: Record<string, unknown>) => void) => {
      const t = structuredClone(tx);
      patch(t.raw_data.contract[0]?.parameter.value as Record<string, unknown>);
      return file(t);
    };
    expect(() => readTronTx(json((v) => (v.amount = 2)))).toThrow(/disagree \(amount\)/);
    expect(() => readTronTx(json((v) => (v.to_address = owner)))).toThrow(/disagree \(to_address\)/);
    expect(() => readTronTx(json((v) => (v.to_address = TronWeb.address.fromHex(payee))))).not.toThrow();
    const usdt = tronTx([trc20(transferData(payee, 9n))]);
    expect(readTronTx(file(usdt)).payment.amount).toBe('9');
    const usdtJson = structuredClone(usdt);
    (usdtJson.raw_data.contract[0]?.parameter.value as Record<string, unknown>).data = transferData(owner, 9n);
    expect(() => readTronTx(file(usdtJson))).toThrow(/disagree \(data\)/);
    expect(() => readTronTx(file({ ...tx, raw_data: { contract: [] } }))).toThrow(/disagree \(contract\)/);
  });

  it('anything but one transfer is refused INVALID_ARGUMENT, naming why', () => {
    // TronWeb's encoder writes one contract: a second one is appended as another field 11.
    const one = fromHex(tronTx([trx(1)]).raw_data_hex);
    const contract = utils.transaction
      .txJsonToPb(tronTx([trx(2)]))
      .getRawData()
      .getContractList()[0]
      .serializeBinary();
    const two = new Uint8Array([
      ...one,
      ...new BinaryWriter().tag(11, WireType.LengthDelimited).bytes(contract).finish(),
    ]);
    const cases: [{ raw_data_hex: string }, RegExp][] = [
      [{ raw_data_hex: Buffer.from(two).toString('hex') }, /one contract, this transaction has 2/],
      [
        { raw_data_hex: Buffer.from(new BinaryWriter().tag(8, WireType.Varint).int64(5).finish()).toString('hex') },
        /one contract, this transaction has 0/,
      ],
      [tronTx([trx(0)]), /TRX transfer of no amount/],
      [tronTx([trc20(transferData(payee, 0n))]), /TRC-20 transfer of no amount/],
      [tronTx([trc20(transferData(payee, 5n), 7)]), /also sends TRX/],
      [tronTx([trc20(`095ea7b3${transferData(payee, 5n).slice(8)}`)]), /not a TRC-20 transfer/], // approve()
      [tronTx([trc20(`${transferData(payee, 5n)}00`)]), /not a TRC-20 transfer/],
      [
        tronTx([
          { type: 'FreezeBalanceV2Contract', value: { owner_address: owner, frozen_balance: 5, resource: 'ENERGY' } },
        ]),
        /contract type 54 is not a payment/,
      ],
    ];
    // Fields that would do more than the printed payment: TRC-10 tokens sent along with the call, a
    // multi-signature permission, or a parameter of another type than the contract's.
    const withTokens = trc20(transferData(payee, 5n));
    Object.assign(withTokens.value, { call_token_value: 1_000_000_000, token_id: 1_002_000 });
    cases.push([tronTx([withTokens]), /TriggerSmartContract has field 5/]);
    const permission = tronTx([trx(1)]);
    const pb = utils.transaction.txJsonToPb({
      ...permission,
      raw_data: {
        ...permission.raw_data,
        contract: [{ ...permission.raw_data.contract[0], Permission_id: 2 } as never],
      },
    });
    cases.push([{ raw_data_hex: utils.transaction.txPbToRawDataHex(pb) }, /the contract has field 5/]);
    // (TronWeb writes the type URL from the type: this one is encoded by hand.)
    const value = new BinaryWriter()
      .tag(1, WireType.LengthDelimited)
      .bytes(fromHex(owner))
      .tag(2, WireType.LengthDelimited)
      .bytes(fromHex(payee))
      .tag(3, WireType.Varint)
      .int64(1)
      .finish();
    const any = new BinaryWriter()
      .tag(1, WireType.LengthDelimited)
      .string('type.googleapis.com/protocol.TriggerSmartContract')
      .tag(2, WireType.LengthDelimited)
      .bytes(value)
      .finish();
    const wrongType = new BinaryWriter()
      .tag(11, WireType.LengthDelimited)
      .bytes(new BinaryWriter().tag(1, WireType.Varint).int32(1).tag(2, WireType.LengthDelimited).bytes(any).finish())
      .finish();
    cases.push([
      { raw_data_hex: Buffer.from(wrongType).toString('hex') },
      /is type.googleapis.com\/protocol.TriggerSmartContract, not type.googleapis.com\/protocol.TransferContract/,
    ]);
    // A field of another wire type (skipped unread by a lenient reader) is refused too.
    const fixed = new Uint8Array([...one, ...new BinaryWriter().tag(14, WireType.Bit64).fixed64(7).finish()]);
    cases.push([{ raw_data_hex: Buffer.from(fixed).toString('hex') }, /field 14 has wire type 1/]);
    for (const [tx, why] of cases) {
      let err: unknown;
      try {
        read(tx);
      } catch (e) {
        err = e;
      }
      expect((err as { code?: string })?.code, String(why)).toBe('INVALID_ARGUMENT');
      expect((err as Error).message).toMatch(why);
    }
  });

  it('fuzz: random bytes and mutated transactions give a payment or INVALID_ARGUMENT, never another error', () => {
    const base = fromHex(tronTx([trc20(transferData(payee, 5n))], { fee_limit: 1 }).raw_data_hex);
    const verdict = (b: Uint8Array) => {
      try {
        readTronPayment(b);
        return 'ok';
      } catch (e) {
        return (e as { code?: string }).code ?? String(e);
      }
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        expect(['ok', 'INVALID_ARGUMENT']).toContain(verdict(b));
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 }), (i, v) => {
        const b = base.slice();
        b[i] = v;
        expect(['ok', 'INVALID_ARGUMENT']).toContain(verdict(b));
      }),
      { numRuns: 2000 },
    );
  });
});

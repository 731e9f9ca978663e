/**
 * The Solana payment reader (core/src/payments/solana.ts) against transactions built with the
 * Solana libraries themselves (@solana/kit, @solana-program/system and token): SOL and SPL
 * transfers read with their amounts, payees and fees, the message being the transaction's own
 * message bytes; anything whose effect is not known, or that does not spend from the key, refused
 * PAYMENT_MISMATCH.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  type Address,
  appendTransactionMessageInstructions,
  blockhash,
  compileTransaction,
  createNoopSigner,
  createTransactionMessage,
  getAddressDecoder,
  getTransactionEncoder,
  pipe,
  setTransactionMessageComputeUnitLimit,
  setTransactionMessageComputeUnitPrice,
  setTransactionMessageFeePayer,
  setTransactionMessageLifetimeUsingBlockhash,
} from '@solana/kit';
import { getCreateAccountInstruction, getTransferSolInstruction } from '@solana-program/system';
import { getTransferCheckedInstruction, getTransferInstruction } from '@solana-program/token';
import { describe, expect, it } from 'vitest';
import { ErrorCode, readPayment } from '../src/index.js';

const addr = (seed: number): Address => getAddressDecoder().decode(ed25519.getPublicKey(new Uint8Array(32).fill(seed)));
const KEY = ed25519.getPublicKey(new Uint8Array(32).fill(1));
const ME = getAddressDecoder().decode(KEY);
const me = createNoopSigner(ME);
const BOB = addr(2);
const MINT = addr(3);
const MY_TOKENS = addr(4);
const BOB_TOKENS = addr(5);

type Ix = Parameters<typeof appendTransactionMessageInstructions>[0][number];

/** A legacy transaction paid by the key, its wire form (empty signature slots). */
function wire(instructions: Ix[], opts: { price?: bigint; units?: number; payer?: Address } = {}): Uint8Array {
  let m = pipe(
    createTransactionMessage({ version: 'legacy' }),
    (x) => setTransactionMessageFeePayer(opts.payer ?? ME, x),
    (x) =>
      setTransactionMessageLifetimeUsingBlockhash(
        { blockhash: blockhash('11111111111111111111111111111111'), lastValidBlockHeight: 100n },
        x,
      ),
  );
  if (opts.units !== undefined) m = setTransactionMessageComputeUnitLimit(opts.units, m);
  if (opts.price !== undefined) m = setTransactionMessageComputeUnitPrice(opts.price, m);
  const tx = compileTransaction(appendTransactionMessageInstructions(instructions, m));
  return new Uint8Array(getTransactionEncoder().encode(tx));
}

const solTransfer = (amount: bigint, source = me) => getTransferSolInstruction({ source, destination: BOB, amount });
const splTransfer = (amount: bigint) =>
  getTransferCheckedInstruction({
    source: MY_TOKENS,
    mint: MINT,
    destination: BOB_TOKENS,
    authority: me,
    amount,
    decimals: 6,
  });

async function codeOf(f: () => unknown): Promise<string> {
  try {
    await f();
    return 'ok';
  } catch (e) {
    return String((e as { code?: string }).code);
  }
}

describe('the Solana reader', () => {
  it('a SOL transfer: amount, payee, the base fee, and the message bytes the key signs', () => {
    const tx = wire([solTransfer(1_500_000n)]);
    const r = readPayment({ chain: 'solana', tx, input: 0 }, KEY);
    expect(r.payment).toEqual({ chain: 'solana', asset: 'SOL', amount: 1_500_000n, fee: 5_000n, to: [BOB] });
    // The message is the transaction's own (what every Solana verifier checks a signature over).
    const decoded = compileTransaction(
      appendTransactionMessageInstructions(
        [solTransfer(1_500_000n)],
        pipe(
          createTransactionMessage({ version: 'legacy' }),
          (x) => setTransactionMessageFeePayer(ME, x),
          (x) =>
            setTransactionMessageLifetimeUsingBlockhash(
              { blockhash: blockhash('11111111111111111111111111111111'), lastValidBlockHeight: 100n },
              x,
            ),
        ),
      ),
    );
    expect(Buffer.from(r.message).toString('hex')).toBe(Buffer.from(decoded.messageBytes).toString('hex'));
  });

  it('a priority fee counts (price × limit, micro-lamports, rounded up); two SOL transfers add up', () => {
    const r = readPayment(
      { chain: 'solana', tx: wire([solTransfer(10n), solTransfer(20n)], { price: 1_000n, units: 300 }), input: 0 },
      KEY,
    );
    expect(r.payment).toMatchObject({ asset: 'SOL', amount: 30n, fee: 5_001n, to: [BOB, BOB] });
  });

  it('an SPL TransferChecked: asset SPL:<mint>, the fee (in SOL) not counted in the token', () => {
    const r = readPayment({ chain: 'solana', tx: wire([splTransfer(2_000_000n)]), input: 0 }, KEY);
    expect(r.payment).toEqual({ chain: 'solana', asset: `SPL:${MINT}`, amount: 2_000_000n, fee: 0n, to: [BOB_TOKENS] });
  });

  it('refuses what it cannot read or whose effect is not a transfer from the key, PAYMENT_MISMATCH', async () => {
    const other = createNoopSigner(addr(9));
    const cases: [string, Uint8Array, number, Uint8Array?][] = [
      ['not a transaction', new Uint8Array([1, 2, 3]), 0],
      ['an input past its signers', wire([solTransfer(1n)]), 1],
      ['a transfer from another account', wire([solTransfer(1n, other)]), 0],
      ['another key', wire([solTransfer(1n)]), 0, ed25519.getPublicKey(new Uint8Array(32).fill(8))],
      ['SOL and a token at once', wire([solTransfer(1n), splTransfer(1n)]), 0],
      [
        'an unchecked token transfer (no mint)',
        wire([getTransferInstruction({ source: MY_TOKENS, destination: BOB_TOKENS, authority: me, amount: 1n })]),
        0,
      ],
      [
        'a System instruction other than a transfer',
        wire([
          getCreateAccountInstruction({
            payer: me,
            newAccount: createNoopSigner(addr(6)),
            lamports: 1n,
            space: 0,
            programAddress: ME,
          }),
        ]),
        0,
      ],
      ['no transfer at all', wire([], { units: 1000 }), 0],
      ['too long', new Uint8Array(1233), 0],
    ];
    for (const [what, tx, input, key] of cases)
      expect(await codeOf(() => readPayment({ chain: 'solana', tx, input }, key ?? KEY)), what).toBe(
        ErrorCode.PAYMENT_MISMATCH,
      );
  });
});

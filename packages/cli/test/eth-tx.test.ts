/**
 * What `tessera sign --eth-tx` says an EIP-1559 transaction pays: the chain's coin, or an ERC-20
 * `transfer` decoded from its call data (encoded here by viem, the library the CLI serialises
 * with); any other call has no payment.
 */
import { encodeFunctionData, erc20Abi, getAddress } from 'viem';
import { describe, expect, it } from 'vitest';
import { ethPayment } from '../src/eth-tx.js';

const USDT_BSC = '0x55d398326f99059fF775485246999027B3197955';
const payee = getAddress(`0x${'ab'.repeat(20)}`);
const base = {
  type: 'eip1559' as const,
  chainId: 56,
  nonce: 1,
  gas: 60_000n,
  maxFeePerGas: 3_000_000_000n,
  maxPriorityFeePerGas: 1_000_000_000n,
};

describe('EVM payments (sign --eth-tx)', () => {
  it('the coin: value to the `to` address, the most gas can cost', () => {
    expect(ethPayment({ ...base, to: payee.toLowerCase() as `0x${string}`, value: 10n ** 15n })).toEqual({
      asset: 'native',
      amount: '1000000000000000',
      to: payee,
      maxFee: '180000000000000',
    });
  });

  it('an ERC-20 transfer: the token contract as the asset, payee and amount from the call', () => {
    const data = encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [payee, 25_000_000n] });
    expect(ethPayment({ ...base, to: USDT_BSC, value: 0n, data })).toEqual({
      asset: `ERC20:${USDT_BSC}`,
      amount: '25000000',
      to: payee,
      maxFee: '180000000000000',
    });
  });

  it('no payment for other calls, a transfer that also sends coin, or call data with more than the two words', () => {
    const transfer = encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [payee, 5n] });
    const approve = encodeFunctionData({ abi: erc20Abi, functionName: 'approve', args: [payee, 5n] });
    expect(ethPayment({ ...base, to: USDT_BSC, value: 0n, data: approve })).toBeUndefined();
    expect(ethPayment({ ...base, to: USDT_BSC, value: 1n, data: transfer })).toBeUndefined();
    expect(ethPayment({ ...base, to: USDT_BSC, value: 0n, data: `${transfer}00` })).toBeUndefined();
    expect(ethPayment({ ...base, to: USDT_BSC, value: 0n, data: '0xdeadbeef' })).toBeUndefined();
  });
});

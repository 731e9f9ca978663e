/**
 * Destination lists (issue 19): the payees a wallet or a co-signer pays only (`allowTo`) or never
 * (`denyTo`), matched against the payees read from a payment's transaction (addresses as core's
 * payment readers print them). One rule for both: the device checks its own lists before it
 * signs, a co-signer its lists again at completion. With either list a bare message is refused:
 * its payee cannot be known.
 */

export interface DestinationLists {
  readonly allowTo?: readonly string[];
  readonly denyTo?: readonly string[];
}

/** Whether `lists` has a list (then only transactions are paid). */
export const hasDestinationLists = (lists: DestinationLists): boolean => !!(lists.allowTo || lists.denyTo);

/**
 * Why `lists` refuse `payment` (undefined: a bare message), or undefined when they let it
 * through; `whose` names the lists' owner in the reason ("this wallet", "this node").
 */
export function destinationRefusal(
  lists: DestinationLists,
  payment: { readonly to: readonly string[] } | undefined,
  whose: string,
): string | undefined {
  if (!hasDestinationLists(lists)) return undefined;
  if (!payment) return `${whose} pays listed destinations only: a transaction, not a bare message`;
  for (const to of payment.to) {
    if (lists.denyTo?.includes(to)) return `destination ${to.slice(0, 100)} is on ${whose}'s deny list`;
    if (lists.allowTo && !lists.allowTo.includes(to))
      return `destination ${to.slice(0, 100)} is not on ${whose}'s allow list`;
  }
  return undefined;
}

/**
 * How this node keeps a device's FROST reservations in its nonce ledger: their ids (per device,
 * so a device's outstanding ones count by prefix) and the reservation each record carries.
 */
import { type Allowance, decodeMessage, encodeMessage, equalBytes, toHex } from '@tessera/core';
import { deviceSegment } from './lifecycle-store.js';

/**
 * Ledger id of a reservation: per device, so a device's outstanding reservations count by prefix.
 * The device id is hex-encoded: no character of an id can act as the separator, so device `a`'s
 * prefix never covers device `a.b`'s records.
 */
export function reservationLedgerId(device: string, keyId: string, nonceId: Uint8Array): string {
  return `r.${deviceSegment(device)}.${keyId}.${toHex(nonceId)}`;
}

/** Whether two allowances are the same (both absent, or equal encodings). */
export function sameAllowance(a: Allowance | null | undefined, b: Allowance | null | undefined): boolean {
  if (!a || !b) return !a && !b;
  return equalBytes(encodeMessage('Allowance', a as never), encodeMessage('Allowance', b as never));
}

/** The reservation a ledger record carries as its meta (written by this node). */
export function decodeMessageSafe(meta: Uint8Array):
  | {
      keyId: string;
      epoch: number;
      device: string;
      hiding: Uint8Array;
      binding: Uint8Array;
      expiresAt: number;
      allowance: Allowance | null;
    }
  | undefined {
  try {
    return decodeMessage('Reservation', meta);
  } catch {
    return undefined;
  }
}

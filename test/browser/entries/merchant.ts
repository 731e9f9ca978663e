/**
 * Browser entry for merchant.browser.test.ts: a payment terminal's page that checks offline
 * packages with nothing but `checkEd25519Package` from `@tessera/core/merchant` (what issue 21 limits to
 * 25 KB gzip). Exposes `window.merchantCheck(keyRecordHex, packageText, now)`.
 */
import { checkEd25519Package } from '@tessera/core/merchant';

export type MerchantVerdict = { ok: { packageId: string; device: string; message: string } } | { code: string };

function fromHex(h: string): Uint8Array {
  return Uint8Array.from(h.match(/../g) ?? [], (b) => Number.parseInt(b, 16));
}

async function merchantCheck(keyRecordHex: string, packageText: string, now: number): Promise<MerchantVerdict> {
  try {
    const r = await checkEd25519Package(fromHex(keyRecordHex), packageText, now);
    return { ok: { packageId: r.packageId, device: r.device, message: r.message } };
  } catch (e) {
    return { code: String((e as { code?: unknown }).code) };
  }
}

(globalThis as { merchantCheck?: typeof merchantCheck }).merchantCheck = merchantCheck;

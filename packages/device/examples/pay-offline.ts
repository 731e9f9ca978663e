/**
 * The device SDK from enrolment to a reconciled offline payment: the example the guide
 * (../README.md) walks through. test/device-sdk-example.test.ts runs it against a real cluster.
 */
import { checkPackage } from '@tessera/core/merchant'; // the merchant's side: its own module
import { Tessera, type DeviceErrorCode } from '@tessera/device';

export async function payOffline(opts: { gateway: string; token: string; storage: string }) {
  // 1. Open the wallet. In a browser `storage` is an IndexedDB name and the key a
  //    non-extractable CryptoKey the app keeps in IndexedDB; on a phone, a keystore adapter.
  const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
  const wallet = await Tessera.open({ gateway: opts.gateway, storage: opts.storage, key });
  wallet.on('allowance', (e) => console.log(`only ${e.remaining} offline payments left on ${e.keyId}`));
  wallet.on('package', (e) => console.log(`payment ${e.packageId}: ${e.state}`));

  // 2. Online: enrol with the operator's one-time token, create a 2-of-3 key with two signer
  //    nodes, and reserve an allowance of offline payments.
  await wallet.enrol(opts.token);
  const account = await wallet.createKey({ suite: 'ed25519', threshold: 2 });
  await wallet.reserve({ keyId: account.keyId, count: 5 });

  // 3. Offline: pay. The package is durable in the queue before `pay` returns; hand `text`
  //    (or `bytes`) to the merchant by QR code, NFC or a message.
  const payment = await wallet.pay({ keyId: account.keyId, message: new TextEncoder().encode('pay 12.50 to shop-7') });

  // 4. The merchant's terminal checks it offline with the key's public record.
  const checked = await checkPackage(await wallet.keyRecord(account.keyId), payment.text);

  // 5. Back online: deliver the queue (each package completes exactly once) and reconcile.
  const synced = await wallet.sync();
  const report = await wallet.reconcile();

  // 6. Errors carry a stable code.
  let refused: DeviceErrorCode | undefined;
  try {
    await wallet.pay({ keyId: 'no-such-key', message: new Uint8Array(32) });
  } catch (e) {
    refused = (e as { code: DeviceErrorCode }).code; // 'NOT_FOUND'
  }

  // 7. Back up the shares (never the reservations) under a password.
  const backup = await wallet.backup('correct horse battery staple 7');
  await wallet.close();
  return { account, payment, checked, synced, report, refused, backup };
}

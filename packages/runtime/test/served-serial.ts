/** The serial number of the certificate a new mTLS connection to host:port is served (test helper). */
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';
import type { TlsFiles } from '../src/index.js';

export function servedSerial(host: string, port: number, client: TlsFiles): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(
      {
        host,
        port,
        ca: readFileSync(client.ca),
        cert: readFileSync(client.cert),
        key: readFileSync(client.key),
        servername: 'localhost',
        ALPNProtocols: ['h2'],
      },
      () => {
        resolve(s.getPeerCertificate().serialNumber);
        s.destroy();
      },
    );
    s.once('error', reject);
  });
}

/** A signer's config (role: primary) for the tests: POP calgary-01 sending to the guard at `backupUrl`, over mTLS with `cert`. */
import type { CertFiles, TestPki } from './pki.ts';
import { makeHmacKey, writeKeyFile } from './signing.ts';

/** Without `signing_keys` in `overrides`, a fresh HMAC key of its own (the guard then checks no signature of it). */
export function signerConfig(pki: TestPki, backupUrl: string, cert: CertFiles, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    pop_id: 'calgary-01',
    role: 'primary',
    listen: { host: '127.0.0.1', port: 0 },
    backup: { id: 'zurich-01', url: backupUrl, ca_file: pki.caFile, server_name: 'localhost', timeout: '5s' },
    client_tls: { cert_file: cert.cert, key_file: cert.key },
    signing_keys: overrides.signing_keys ?? [writeKeyFile(makeHmacKey().text)],
    admin: { host: '127.0.0.1', port: 0 },
    ...overrides,
  };
}

// The certificates both client-trust suites verify (test/unit/tls/client-trust.test.ts on Node,
// test/deno/client_trust_test.ts on Deno): a root, an intermediate, an unrelated CA, and leaves.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DevCa } from '../../src/tls/dev-ca.ts';
import { parseCertificate } from '../../src/tls/x509.ts';

export const DAY = 86_400_000;
export const der = (pem: string) => new X509Certificate(pem).raw;
export const parsed = (pem: string) => parseCertificate(der(pem));
export const dir = mkdtempSync(join(tmpdir(), 'replguard-trust-'));
let n = 0;
/** Writes `content` to a new 0600 file in `dir` and returns its path. */
export const file = (content: string) => {
  const f = join(dir, `f${n++}.pem`);
  writeFileSync(f, content, { mode: 0o600 });
  return f;
};

export const root = DevCa.create('trust root');
export const inter = root.issueIntermediate('trust intermediate');
export const other = DevCa.create('some other CA');
export const now = Date.now();
export const leaf = root.issueClient('calgary-01');
export const viaInter = inter.issueClient('lima-04');

/**
 * Certificates generated per test run: a CA, a server certificate for loopback, client
 * certificates per POP, and the bad ones (another CA, expired, revoked via a CRL).
 * The CRL is made with the openssl CLI (node-forge cannot write CRLs).
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DevCa, type CertOptions } from '../../src/tls/dev-ca.ts';

export interface CertFiles {
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  ca: DevCa;
  caFile: string;
  server: CertFiles;
  client(pop: string, extra?: Partial<CertOptions>): CertFiles;
  /** A client certificate from an unrelated CA (same CN). */
  foreignClient(pop: string): CertFiles;
  /** Writes a CRL revoking the given certificate files; returns the CRL path. */
  crl(revoked: CertFiles[]): string;
}

let counter = 0;

/** What a loopback TLS client of the guard presents: trust in the test CA, the client certificate if any. */
export function clientTls(caFile: string, cert?: CertFiles): { servername: string; ca: Buffer; cert?: Buffer; key?: Buffer } {
  return { servername: 'localhost', ca: readFileSync(caFile), ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}) };
}

/**
 * The wire-format body a POP sends (the body contract wants `source_pop` to be the
 * authenticated POP): named after the certificate's CN, calgary-01 without a certificate.
 */
export function wireBody(cert?: CertFiles, extra: Record<string, unknown> = {}): string {
  const cn = cert ? /CN=([^\n,]+)/.exec(new X509Certificate(readFileSync(cert.cert)).subject)?.[1] : undefined;
  return JSON.stringify({ source_pop: cn ?? 'calgary-01', entries: [{ id: 1 }], timestamp: Math.floor(Date.now() / 1000), ...extra });
}

export function makePki(pops: string[] = ['calgary-01']): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-pki-'));
  const ca = DevCa.create('replguard test CA');
  const write = (name: string, content: string, mode: number) => {
    const file = join(dir, name);
    writeFileSync(file, content, { mode });
    chmodSync(file, mode);
    return file;
  };
  const caFile = write('ca.crt', ca.certPem, 0o644);
  const caKey = write('ca.key', ca.keyPem, 0o600);
  const issued = ca.issueServer(['localhost']);
  const server = { cert: write('server.crt', issued.certPem, 0o644), key: write('server.key', issued.keyPem, 0o600) };
  const client = (pop: string, extra: Partial<CertOptions> = {}) => {
    const c = ca.issueClient(pop, extra);
    const n = `${pop}-${counter++}`;
    return { cert: write(`${n}.crt`, c.certPem, 0o644), key: write(`${n}.key`, c.keyPem, 0o600) };
  };
  for (const pop of pops) client(pop);
  let foreignCa: DevCa | undefined;
  return {
    dir,
    ca,
    caFile,
    server,
    client,
    foreignClient(pop) {
      foreignCa ??= DevCa.create('some other CA');
      const c = foreignCa.issueClient(pop);
      const n = `foreign-${pop}-${counter++}`;
      return { cert: write(`${n}.crt`, c.certPem, 0o644), key: write(`${n}.key`, c.keyPem, 0o600) };
    },
    crl(revoked) {
      return writeCrl(dir, { cert: caFile, key: caKey }, revoked.map((r) => r.cert));
    },
  };
}

/**
 * A CRL signed with `ca`'s key (the openssl CLI: node-forge cannot write CRLs) that revokes the
 * given certificate files; returns its path. `days` is its validity (nextUpdate), `md` the digest.
 */
export function writeCrl(dir: string, ca: CertFiles, revokedCertFiles: readonly string[], options: { days?: number; md?: string } = {}): string {
  const db = join(dir, `crl-db-${counter++}`);
  execFileSync('mkdir', ['-p', db]);
  writeFileSync(join(db, 'index.txt'), '');
  writeFileSync(join(db, 'crlnumber'), '01\n');
  const conf = join(db, 'ca.cnf');
  writeFileSync(conf, [
    '[ ca ]', 'default_ca = test', '[ test ]', `dir = ${db}`, 'database = $dir/index.txt',
    'crlnumber = $dir/crlnumber', `default_md = ${options.md ?? 'sha256'}`, `default_crl_days = ${options.days ?? 30}`,
    `certificate = ${ca.cert}`, `private_key = ${ca.key}`, '',
  ].join('\n'));
  for (const cert of revokedCertFiles) execFileSync('openssl', ['ca', '-config', conf, '-revoke', cert], { stdio: 'ignore' });
  const out = join(dir, `revoked-${counter++}.crl`);
  execFileSync('openssl', ['ca', '-config', conf, '-gencrl', '-out', out], { stdio: 'ignore' });
  return out;
}

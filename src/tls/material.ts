/**
 * The server's TLS material, read and checked as a set: PEM parses, the key matches the
 * certificate, the certificate is in its validity period, the CA bundle parses, and every CRL
 * parses and is signed by a CA of the bundle. Problems are ConfigProblems (operator-facing).
 * The result feeds `tls.createServer` and, on reload, `server.setSecureContext`, and carries
 * the guard's own client verifier (client-trust.ts).
 *
 * The CRL is never handed to the runtime: Deno's `node:tls` ignores `crl` (a revoked certificate
 * would be accepted), so revocation is decided by client-trust.ts on both runtimes alike. That
 * also keeps OpenSSL from refusing a certificate of an issuer the CRL file does not cover with
 * UNABLE_TO_GET_CRL before the guard could name the precise reason.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { ConfigError, type ConfigProblem } from '../config/errors.ts';
import { checkReadableFile, checkSecretFile } from '../config/files.ts';
import type { Config } from '../config/schema.ts';
import { createClientTrust, type ClientTrust } from './client-trust.ts';
import { loadCrlIndex, type CrlIndex } from './crl.ts';
import { TLS12_CIPHER_STRING } from './policy.ts';
import { parseCertificate, type ParsedCertificate } from './x509.ts';

export interface TlsMaterial {
  /** For tls.createServer / setSecureContext. */
  readonly secureContext: SecureContextOptions;
  readonly serverCertificate: X509Certificate;
  readonly caCertificates: readonly X509Certificate[];
  /** Verifies client certificate chains against the CA bundle and the CRLs of this set. */
  readonly clientTrust: ClientTrust;
  /** The CRLs' validity, by issuer (for metrics and warnings); undefined without tls.crl_file. */
  readonly crls: CrlIndex | undefined;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Splits a PEM bundle into certificates; throws with a readable message when none parse. */
export function parseCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new Error('no PEM certificate found');
  return blocks.map((b) => new X509Certificate(b));
}

export function loadTlsMaterial(tls: Config['tls'], now: number = Date.now()): TlsMaterial {
  const problems: ConfigProblem[] = [];
  const read = (path: string, keyPath: string, secret = false): string | undefined => {
    // At every load, not only at start-up: who may change a trust anchor or key (config/files.ts).
    const unsafe = secret ? checkSecretFile(path, keyPath) : checkReadableFile(path, keyPath);
    if (unsafe) {
      problems.push(unsafe);
      return undefined;
    }
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      problems.push({ path: keyPath, message: `${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
      return undefined;
    }
  };

  const certPem = read(tls.cert_file, 'tls.cert_file');
  const keyPem = read(tls.key_file, 'tls.key_file', true);
  const caPem = read(tls.client_ca_file, 'tls.client_ca_file');
  const crlPem = tls.crl_file !== undefined ? read(tls.crl_file, 'tls.crl_file') : undefined;

  let chain: X509Certificate[] = [];
  if (certPem !== undefined) {
    try {
      chain = parseCertificates(certPem);
    } catch (err) {
      problems.push({ path: 'tls.cert_file', message: `${tls.cert_file}: not a PEM certificate chain (${(err as Error).message})` });
    }
  }
  const leaf = chain[0];
  if (leaf) {
    if (Date.parse(leaf.validTo) <= now) problems.push({ path: 'tls.cert_file', message: `${tls.cert_file}: the server certificate expired on ${leaf.validTo}; renew it` });
    if (Date.parse(leaf.validFrom) > now) problems.push({ path: 'tls.cert_file', message: `${tls.cert_file}: the server certificate is not valid until ${leaf.validFrom}` });
  }
  if (keyPem !== undefined) {
    try {
      const key = createPrivateKey(keyPem);
      if (leaf && !leaf.checkPrivateKey(key)) {
        problems.push({ path: 'tls.key_file', message: `${tls.key_file} does not match the certificate in tls.cert_file` });
      }
    } catch (err) {
      problems.push({ path: 'tls.key_file', message: `${tls.key_file}: not an unencrypted PEM private key (${(err as Error).message})` });
    }
  }
  let caCertificates: X509Certificate[] = [];
  let anchors: ParsedCertificate[] = [];
  if (caPem !== undefined) {
    try {
      caCertificates = parseCertificates(caPem);
      anchors = caCertificates.map((ca) => parseCertificate(ca.raw));
      for (const ca of anchors) {
        if (!ca.isCa) problems.push({ path: 'tls.client_ca_file', message: `${tls.client_ca_file}: "${ca.subjectText}" is not a CA certificate` });
      }
    } catch (err) {
      problems.push({ path: 'tls.client_ca_file', message: `${tls.client_ca_file}: not a PEM CA bundle (${(err as Error).message})` });
    }
  }
  let crls: CrlIndex | undefined;
  if (crlPem !== undefined && anchors.length > 0) {
    try {
      crls = loadCrlIndex(crlPem, anchors);
    } catch (err) {
      problems.push({ path: 'tls.crl_file', message: `${tls.crl_file}: ${(err as Error).message}` });
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const secureContext: SecureContextOptions = {
    cert: certPem,
    key: keyPem,
    ca: caPem,
    minVersion: tls.min_version,
    // TLS 1.2 (opt-in only): forward-secret AEAD suites. TLS 1.3 suites are all AEAD.
    ciphers: TLS12_CIPHER_STRING,
    honorCipherOrder: true,
  };
  // OpenSSL is the judge of the set as a whole (e.g. a CRL it cannot parse).
  try {
    createSecureContext(secureContext);
  } catch (err) {
    throw new ConfigError([{ path: 'tls', message: `the TLS material is refused by OpenSSL: ${(err as Error).message}` }]);
  }
  return { secureContext, serverCertificate: leaf!, caCertificates, clientTrust: createClientTrust(anchors, crls), crls };
}

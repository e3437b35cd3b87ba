/**
 * The signer's TLS client to the backup's guard (docs/security.md, findings: certificate validation): the chain is always verified
 * against backup.ca_file (`rejectUnauthorized` is fixed to true; no config key can turn it off),
 * the certificate must carry backup.server_name (or the URL's host), and, when pins are given,
 * its SHA-256 must be one of them. TLS 1.3 unless 1.2 is named.
 *
 * The identity check runs in `checkServerIdentity`, which Node calls only after the chain
 * verified, and only on full handshakes: session resumption is turned off
 * (`maxCachedSessions: 0`), so every connection is checked against the names and pins in force.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { Agent } from 'node:https';
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { PrimaryConfig } from '../config/primary-schema.ts';
import type { Reason } from '../pipeline/reasons.ts';
import { TLS12_CIPHER_STRING } from '../tls/policy.ts';
import type { ClientTlsMaterial } from './material.ts';

/** Where and whom the signer connects to, from `backup:`. */
export interface BackupTarget {
  readonly hostname: string;
  readonly port: number;
  /** The `host` header (the URL's host and port as written). */
  readonly host: string;
  /** The name the certificate must carry; also the SNI unless it is an IP address. */
  readonly serverName: string;
  /** Lower-case hex SHA-256 pins; empty: chain and name only. */
  readonly pins: readonly string[];
  readonly minVersion: 'TLSv1.3' | 'TLSv1.2';
}

export function backupTarget(backup: PrimaryConfig['backup']): BackupTarget {
  const url = new URL(backup.url);
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  return {
    hostname,
    port: Number(url.port || 443),
    host: url.host,
    serverName: backup.server_name ?? hostname,
    pins: backup.pin_sha256,
    minVersion: backup.min_tls_version,
  };
}

/** The error code of a certificate whose SHA-256 is not pinned. */
export const PIN_MISMATCH = 'ERR_REPLGUARD_PIN_MISMATCH';

/**
 * Name check (RFC 6125, as Node implements it) and then the pins. Returns an Error (the
 * handshake then fails, closed) or undefined.
 */
export function verifyBackupIdentity(target: Pick<BackupTarget, 'serverName' | 'pins'>, cert: PeerCertificate): Error | undefined {
  const nameError = checkServerIdentity(target.serverName, cert);
  if (nameError) return nameError;
  if (target.pins.length === 0) return undefined;
  // Pins and fingerprints are public values: a plain comparison is fine here.
  const sha256 = createHash('sha256').update(cert.raw).digest('hex');
  if (target.pins.includes(sha256)) return undefined;
  return Object.assign(new Error(`the certificate's SHA-256 ${sha256} is not among backup.pin_sha256`), { code: PIN_MISMATCH, sha256, cert });
}

/** OpenSSL's verification results, and Node's name check: the certificate is not acceptable. */
const CERT_ERRORS = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED', 'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_CHAIN_TOO_LONG', 'CERT_REVOKED',
  'INVALID_CA', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'HOSTNAME_MISMATCH', 'ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_TLS_CERT_ALTNAME_FORMAT',
]);

/** The reason for a failed connection: a refused certificate, or undefined (a connection failure, retried). */
export function classifyTlsError(err: NodeJS.ErrnoException): Reason | undefined {
  if (err.code === PIN_MISMATCH) return 'SIGNER_BACKUP_PIN_MISMATCH';
  if (err.code !== undefined && CERT_ERRORS.has(err.code)) return 'SIGNER_BACKUP_CERT_INVALID';
  return undefined;
}

/**
 * A keep-alive agent for one generation of TLS material. A reload of the CA or the client
 * certificate makes a new agent; the old one's idle connections are closed.
 */
export function createBackupAgent(target: BackupTarget, material: ClientTlsMaterial): Agent {
  return new Agent({
    keepAlive: true,
    maxSockets: 64,
    maxFreeSockets: 8,
    scheduling: 'lifo',
    maxCachedSessions: 0,
    ca: material.ca,
    ...(material.cert !== undefined && material.key !== undefined ? { cert: material.cert, key: material.key } : {}),
    ...(isIP(target.serverName) === 0 ? { servername: target.serverName } : {}),
    minVersion: target.minVersion,
    // TLS 1.2 (opt-in only): forward-secret AEAD suites, as the guard offers. TLS 1.3 suites are all AEAD.
    ciphers: TLS12_CIPHER_STRING,
    rejectUnauthorized: true,
    checkServerIdentity: (_host: string, cert: PeerCertificate) => verifyBackupIdentity(target, cert),
  });
}

/** What the audit log says about the guard's certificate (subject and SHA-256 of the leaf). */
export interface ServerCertificateInfo {
  readonly subject: string;
  readonly sha256: string;
  /** The certificate's notAfter, epoch ms (for the expiry metric; not in the audit event). */
  readonly notAfterMs: number;
}

export function serverCertificateInfo(cert: PeerCertificate | undefined): ServerCertificateInfo | undefined {
  if (!cert?.raw) return undefined;
  try {
    const x509 = new X509Certificate(cert.raw);
    return { subject: x509.subject.replace(/\n/g, ', '), sha256: createHash('sha256').update(cert.raw).digest('hex'), notAfterMs: Date.parse(x509.validTo) };
  } catch {
    return undefined;
  }
}

/**
 * Reading the client certificate once per TLS connection, and naming why a chain failed.
 * `getPeerCertificate()` costs ~22 µs, so it is called once at `secureConnection` and the
 * result lives on the socket for every request of the connection.
 */
import type { TLSSocket } from 'node:tls';
import type { PeerCertificateInfo } from '../pipeline/context.ts';
import type { Reason } from '../pipeline/reasons.ts';

export function readPeerCertificate(socket: TLSSocket): PeerCertificateInfo | undefined {
  const cert = socket.getPeerCertificate();
  if (!cert || !cert.raw || Object.keys(cert).length === 0) return undefined;
  const cn = cert.subject?.CN;
  const commonNames = cn === undefined ? [] : Array.isArray(cn) ? cn : [cn];
  const sans = parseSubjectAltName(cert.subjectaltname ?? '');
  return {
    subject: formatName(cert.subject as unknown as Record<string, string | string[]> | undefined),
    commonNames,
    dnsSans: sans.filter((s) => s.type === 'DNS').map((s) => s.value),
    uriSans: sans.filter((s) => s.type === 'URI').map((s) => s.value),
    sha256: (cert.fingerprint256 ?? '').replace(/:/g, '').toLowerCase(),
    notAfterMs: Date.parse(cert.valid_to),
  };
}

function formatName(name: Record<string, string | string[]> | undefined): string {
  if (!name) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(name)) {
    for (const v of Array.isArray(value) ? value : [value]) parts.push(`${key}=${v}`);
  }
  return parts.join(', ');
}

/**
 * Parses Node's `subjectaltname` string: `DNS:a, URI:spiffe://x, DNS:"b, c"`. Since the fix
 * for CVE-2021-44532, Node writes a value that contains a separator or quote as a JSON
 * string, so a certificate cannot smuggle a second name into one entry.
 */
export function parseSubjectAltName(text: string): Array<{ type: string; value: string }> {
  const out: Array<{ type: string; value: string }> = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon === -1) break;
    const type = text.slice(i, colon);
    let value: string;
    let next: number;
    if (text[colon + 1] === '"') {
      let end = colon + 2;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(text.slice(colon + 1, end + 1)) as string;
      } catch {
        return out; // unparseable: stop rather than guess; no name from it will match
      }
      next = end + 1;
    } else {
      const sep = text.indexOf(', ', colon + 1);
      next = sep === -1 ? text.length : sep;
      value = text.slice(colon + 1, next);
    }
    out.push({ type, value });
    i = text.startsWith(', ', next) ? next + 2 : next + 1;
  }
  return out;
}

/** The reason for a failed chain, from OpenSSL's verify code (`socket.authorizationError`). */
export function classifyAuthorizationError(code: string | undefined, hasCertificate: boolean): Reason {
  if (!hasCertificate) return 'TLS_CLIENT_CERT_MISSING';
  switch (code) {
    case 'CERT_HAS_EXPIRED':
      return 'TLS_CLIENT_CERT_EXPIRED';
    case 'CERT_NOT_YET_VALID':
      return 'TLS_CLIENT_CERT_NOT_YET_VALID';
    case 'CERT_REVOKED':
      return 'TLS_CLIENT_CERT_REVOKED';
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'CERT_UNTRUSTED':
    case 'CERT_SIGNATURE_FAILURE':
      return 'TLS_CLIENT_CERT_UNTRUSTED';
    default:
      return 'TLS_CLIENT_CERT_INVALID';
  }
}

/**
 * The negotiated protocol and cipher a connection may have, checked after every handshake on
 * both runtimes (guard/tls-gate.ts): Node.js applies `ciphers` itself, Deno's `node:tls`
 * ignores it, so the guard does not rely on either and refuses a connection outside the policy.
 *
 * TLS 1.3 by default; TLS 1.2 only when `tls.min_version: TLSv1.2`, and then only
 * forward-secret AEAD suites (ECDHE with AES-GCM or ChaCha20-Poly1305). Every TLS 1.3 suite is
 * an AEAD with forward secrecy.
 */

/** TLS 1.2 suites, as OpenSSL names them (for `ciphers`) and by their IANA names (getCipher().standardName). */
const TLS12_SUITES = [
  ['ECDHE-ECDSA-AES128-GCM-SHA256', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'],
  ['ECDHE-RSA-AES128-GCM-SHA256', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256'],
  ['ECDHE-ECDSA-AES256-GCM-SHA384', 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'],
  ['ECDHE-RSA-AES256-GCM-SHA384', 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384'],
  ['ECDHE-ECDSA-CHACHA20-POLY1305', 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256'],
  ['ECDHE-RSA-CHACHA20-POLY1305', 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256'],
] as const;

const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];

/** The OpenSSL cipher string for TLS 1.2 (Node applies it; it does not touch TLS 1.3 suites). */
export const TLS12_CIPHER_STRING = TLS12_SUITES.map(([openssl]) => openssl).join(':');

const ALLOWED_SUITES: ReadonlySet<string> = new Set([...TLS12_SUITES.flat(), ...TLS13_SUITES]);

export type MinVersion = 'TLSv1.3' | 'TLSv1.2';

/** Why a negotiated protocol and cipher are outside the policy, or undefined when they are inside. */
export function policyViolation(minVersion: MinVersion, protocol: string | null | undefined, cipher: { name?: string; standardName?: string } | undefined): string | undefined {
  const allowed = minVersion === 'TLSv1.2' ? ['TLSv1.2', 'TLSv1.3'] : ['TLSv1.3'];
  if (!protocol || !allowed.includes(protocol)) return `negotiated ${protocol ?? 'no protocol'}, below tls.min_version ${minVersion}`;
  const suite = cipher?.standardName ?? cipher?.name;
  const known = [cipher?.standardName, cipher?.name].some((n) => n !== undefined && ALLOWED_SUITES.has(n));
  if (!known) return `negotiated cipher ${suite ?? 'unknown'} is not a forward-secret AEAD suite of the policy`;
  return undefined;
}

/**
 * Who may connect: the client certificate chain checked against `tls.client_ca_file` and
 * `tls.crl_file` by the guard itself, the same way on Node.js and on Deno, right after the
 * handshake and before any HTTP byte of the connection is read (guard/tls-gate.ts).
 *
 * The runtime's TLS stack verifies the chain too (OpenSSL on Node, rustls on Deno) and both
 * verdicts must accept: this module is what makes the controls equal on both runtimes (Deno
 * ignores `crl`, and the two report failures with different codes), gives every refusal one
 * precise reason, and can re-judge a connection that is already open when the trust changes
 * (a CRL reload reaches keep-alive connections: `verify` is cheap enough to run again).
 *
 * Hand-written on purpose, and small: neither runtime exposes its verifier for a chain it did not
 * just receive, and no well-kept library verifies X.509 paths synchronously (pkijs and
 * @peculiar/x509 verify through WebCrypto, which is asynchronous). The ASN.1 is decoded by
 * `@peculiar/asn1-x509` (x509.ts) and signatures are checked by `node:crypto`.
 * Rules (RFC 5280 section 6, reduced to what a client-certificate check needs):
 *  - the path is built from the leaf through the certificates the client sent (at most
 *    MAX_PRESENTED) to a certificate of the CA bundle, and from there on through the bundle up
 *    to a self-issued root when the bundle holds it (so a bundle intermediate is itself checked
 *    against its root's CRL, validity and constraints), each link matched by name and verified
 *    by signature; no path: UNTRUSTED (another CA, self-signed, a forged signature). The
 *    signature work is bounded (MAX_SIGNATURE_CHECKS, and a certificate the client sent is
 *    never tried as an issuer with an RSA key over 8192 bits or an exponent over 65537), so a
 *    chain of decoys costs a bounded handshake;
 *  - every certificate of the path within its validity: EXPIRED / NOT_YET_VALID;
 *  - every issuer a CA (basicConstraints cA, keyCertSign when key usage is present, path
 *    length respected), the leaf not a CA, usable for TLS client authentication (extended key
 *    usage clientAuth or anyExtendedKeyUsage when present, digitalSignature or keyAgreement
 *    when key usage is present), no unknown critical extension: INVALID otherwise;
 *  - with CRLs configured: the leaf's issuer must have a current CRL (like OpenSSL's
 *    X509_V_FLAG_CRL_CHECK), and no certificate of the path may be listed in its issuer's CRL
 *    (the CRL verified with that very issuer certificate, not one that shares its name):
 *    REVOKED; a CRL past its nextUpdate, or not yet valid, refuses every client of that issuer:
 *    INVALID (fails closed, as OpenSSL does).
 */
import { createHash } from 'node:crypto';
import type { Reason } from '../pipeline/reasons.ts';
import type { CrlIndex } from './crl.ts';
import { KeyUsageFlags, parseCertificate, type ParsedCertificate } from './x509.ts';

/** Most certificates read from what the client sent (leaf included); the rest is ignored. */
export const MAX_PRESENTED = 10;
/** Longest path, leaf and anchor included. */
export const MAX_PATH = 8;
/** Most signature verifications one chain may cost (candidate issuers tried, all levels). */
export const MAX_SIGNATURE_CHECKS = 2 * MAX_PATH;
/** A client-sent issuer candidate with a bigger RSA key, or a bigger exponent, is not tried. */
const MAX_PRESENTED_RSA_BITS = 8192;
const MAX_RSA_EXPONENT = 65537n;

/**
 * How far a CRL's thisUpdate may lie ahead of this clock: a CRL published a moment ago by a CA
 * whose clock runs a little ahead is not refused (a future thisUpdate revokes nothing wrongly;
 * the signature is what makes the CRL authentic). Its nextUpdate gets no tolerance.
 */
const CRL_CLOCK_SKEW_MS = 5 * 60_000;

const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const EKU_ANY = '2.5.29.37.0';

export type ClientVerdict =
  | {
    readonly ok: true;
    readonly leaf: ParsedCertificate;
    readonly path: readonly ParsedCertificate[];
    /** The earliest notAfter of the path. */
    readonly notAfterMs: number;
    /** Until when this verdict holds without a new check: the earliest notAfter, or nextUpdate of a CRL consulted. */
    readonly validUntilMs: number;
  }
  | { readonly ok: false; readonly reason: Reason; readonly detail: string; readonly leaf: ParsedCertificate | undefined };

export interface ClientTrust {
  /** Verifies a presented chain (leaf first, DER) at `now` (ms). Never throws. */
  verify(chain: readonly Uint8Array[], now: number): ClientVerdict;
  /** Identifies the CA bundle and the CRLs: equal fingerprints mean equal verdicts. */
  readonly fingerprint: string;
  /** Whether CRLs are checked. */
  readonly checksRevocation: boolean;
}

export function createClientTrust(anchors: readonly ParsedCertificate[], crls: CrlIndex | undefined): ClientTrust {
  const bySubject = new Map<string, ParsedCertificate[]>();
  const anchorHashes = new Set<string>();
  for (const anchor of anchors) {
    const list = bySubject.get(anchor.subjectKey) ?? [];
    list.push(anchor);
    bySubject.set(anchor.subjectKey, list);
    anchorHashes.add(anchor.sha256);
  }
  const fingerprint = createHash('sha256')
    .update(JSON.stringify({
      anchors: [...anchorHashes].sort(),
      crls: crls ? [...crls].map(([k, v]) => [k, [...v.revoked].sort(), v.thisUpdateMs, v.nextUpdateMs ?? null]).sort() : null,
    }))
    .digest('hex');

  const refuse = (reason: Reason, detail: string, leaf: ParsedCertificate | undefined): ClientVerdict => ({ ok: false, reason, detail, leaf });

  const verifyChain = (chain: readonly Uint8Array[], now: number): ClientVerdict => {
    if (chain.length === 0) return refuse('TLS_CLIENT_CERT_MISSING', 'no client certificate', undefined);
    let presented: ParsedCertificate[];
    try {
      presented = chain.slice(0, MAX_PRESENTED).map((der) => parseCertificate(der));
    } catch (err) {
      return refuse('TLS_CLIENT_CERT_INVALID', `a presented certificate cannot be read (${(err as Error).message})`, undefined);
    }
    const leaf = presented[0]!;

    if (anchorHashes.has(leaf.sha256)) return refuse('TLS_CLIENT_CERT_INVALID', 'the client presented a CA certificate of tls.client_ca_file itself', leaf);

    // Path building: leaf -> (intermediates the client sent) -> a CA of the bundle -> (the
    // bundle, up to a self-issued root when it holds one). Every candidate issuer costs a
    // signature verification, so their number is bounded.
    const path: ParsedCertificate[] = [leaf];
    let current = leaf;
    let anchored = false;
    let checks = 0;
    const issuedBy = (candidate: ParsedCertificate) => {
      if (candidate.subjectKey !== current.issuerKey || path.includes(candidate) || checks >= MAX_SIGNATURE_CHECKS) return false;
      checks += 1;
      return safe(() => current.x509.checkIssued(candidate.x509) && current.x509.verify(candidate.x509.publicKey));
    };
    for (;;) {
      if (anchorHashes.has(current.sha256)) anchored = true;
      if (anchored && current.subjectKey === current.issuerKey) break; // a root of the bundle: the top
      let next = bySubject.get(current.issuerKey)?.find(issuedBy);
      // Above a bundle CA only the bundle extends the path; below it, what the client sent.
      if (!next && !anchored) next = presented.slice(1).filter(cheapToVerifyWith).find(issuedBy);
      if (!next && checks >= MAX_SIGNATURE_CHECKS) {
        return refuse('TLS_CLIENT_CERT_INVALID', `more than ${MAX_SIGNATURE_CHECKS} candidate issuers tried`, leaf);
      }
      if (!next) {
        if (anchored) break; // a bundle CA whose issuer the bundle does not hold: the anchor
        const named = bySubject.has(current.issuerKey) || presented.some((p) => p.subjectKey === current.issuerKey);
        return refuse('TLS_CLIENT_CERT_UNTRUSTED', current === leaf
          ? (named ? 'the certificate\'s signature does not verify with its issuer' : 'the certificate does not chain to tls.client_ca_file')
          : `the chain through ${current.subjectText} does not reach tls.client_ca_file`, leaf);
      }
      path.push(next);
      if (path.length > MAX_PATH) return refuse('TLS_CLIENT_CERT_INVALID', `the chain is longer than ${MAX_PATH} certificates`, leaf);
      current = next;
    }

    let notAfterMs = Infinity;
    for (const cert of path) {
      const which = cert === leaf ? 'the certificate' : `its issuer ${cert.subjectText}`;
      if (now < cert.notBeforeMs) return refuse('TLS_CLIENT_CERT_NOT_YET_VALID', `${which} is not valid before ${new Date(cert.notBeforeMs).toISOString()}`, leaf);
      if (now > cert.notAfterMs) return refuse('TLS_CLIENT_CERT_EXPIRED', `${which} expired at ${new Date(cert.notAfterMs).toISOString()}`, leaf);
      if (cert.unknownCritical.length > 0) return refuse('TLS_CLIENT_CERT_INVALID', `${which} has a critical extension this guard does not implement (${cert.unknownCritical.join(', ')})`, leaf);
      notAfterMs = Math.min(notAfterMs, cert.notAfterMs);
    }
    for (let i = 1; i < path.length; i++) {
      const issuer = path[i]!;
      if (!issuer.isCa) return refuse('TLS_CLIENT_CERT_INVALID', `${issuer.subjectText} is not a CA (basicConstraints)`, leaf);
      if (issuer.keyUsage !== undefined && (issuer.keyUsage & KeyUsageFlags.keyCertSign) === 0) return refuse('TLS_CLIENT_CERT_INVALID', `${issuer.subjectText} may not sign certificates (key usage)`, leaf);
      // pathLenConstraint: how many intermediates may follow this CA below it.
      if (issuer.pathLength !== undefined && i - 1 > issuer.pathLength) return refuse('TLS_CLIENT_CERT_INVALID', `the chain is longer than ${issuer.subjectText} allows`, leaf);
    }
    if (leaf.isCa) return refuse('TLS_CLIENT_CERT_INVALID', 'the client certificate is a CA certificate', leaf);
    if (leaf.extendedKeyUsage !== undefined && !leaf.extendedKeyUsage.includes(EKU_CLIENT_AUTH) && !leaf.extendedKeyUsage.includes(EKU_ANY)) {
      return refuse('TLS_CLIENT_CERT_INVALID', 'the certificate is not for TLS client authentication (extended key usage)', leaf);
    }
    if (leaf.keyUsage !== undefined && (leaf.keyUsage & (KeyUsageFlags.digitalSignature | KeyUsageFlags.keyAgreement)) === 0) {
      return refuse('TLS_CLIENT_CERT_INVALID', 'the certificate\'s key usage allows no TLS client signature', leaf);
    }

    let validUntilMs = notAfterMs;
    if (crls) {
      // Every certificate below the top of the path, against the CRL its issuer signed. A listed one is named
      // first (the most precise reason); then the leaf's issuer must have a current CRL.
      for (let i = 0; i < path.length - 1; i++) {
        const cert = path[i]!;
        const revocations = crls.get(path[i + 1]!.sha256);
        const which = cert === leaf ? 'the certificate' : `its issuer ${cert.subjectText}`;
        if (revocations?.revoked.has(cert.serial)) return refuse('TLS_CLIENT_CERT_REVOKED', `${which} (serial ${cert.serial}) is listed in the CRL of ${revocations.issuer}`, leaf);
      }
      for (let i = 0; i < path.length - 1; i++) {
        const cert = path[i]!;
        const revocations = crls.get(path[i + 1]!.sha256);
        if (!revocations) {
          if (cert === leaf) return refuse('TLS_CLIENT_CERT_INVALID', 'tls.crl_file has no CRL from the certificate\'s issuer', leaf);
          continue;
        }
        if (now + CRL_CLOCK_SKEW_MS < revocations.thisUpdateMs) return refuse('TLS_CLIENT_CERT_INVALID', `the CRL of ${revocations.issuer} is not valid yet`, leaf);
        if (revocations.nextUpdateMs !== undefined && now > revocations.nextUpdateMs) {
          return refuse('TLS_CLIENT_CERT_INVALID', `the CRL of ${revocations.issuer} expired at ${new Date(revocations.nextUpdateMs).toISOString()}; publish a new one`, leaf);
        }
        if (revocations.nextUpdateMs !== undefined) validUntilMs = Math.min(validUntilMs, revocations.nextUpdateMs);
      }
    }
    return { ok: true, leaf, path, notAfterMs, validUntilMs };
  };

  // Chains that verified, by their bytes: each handshake of a POP presents the same chain, and
  // decoding and checking it again cost more than the rest of the handshake's work in the guard.
  // A verdict depends only on the chain, this trust (a reload makes a new one) and the time,
  // and an accepted chain stays accepted from when it was checked until validUntilMs (its
  // earliest notAfter, a CRL's nextUpdate). Refusals are not kept: a flood of bad chains
  // cannot fill this.
  const accepted = new Map<string, { verdict: ClientVerdict & { ok: true }; at: number }>();

  return {
    fingerprint,
    checksRevocation: crls !== undefined,
    verify(chain, now) {
      if (chain.length === 0) return verifyChain(chain, now);
      const key = chainKey(chain);
      const known = accepted.get(key);
      if (known && now >= known.at && now <= known.verdict.validUntilMs) return known.verdict;
      const verdict = verifyChain(chain, now);
      if (verdict.ok) {
        if (accepted.size >= ACCEPTED_CHAINS_KEPT) accepted.clear();
        accepted.set(key, { verdict, at: now });
      } else if (known) {
        accepted.delete(key);
      }
      return verdict;
    },
  };
}

/** Accepted chains kept per trust; the list is emptied when full. */
const ACCEPTED_CHAINS_KEPT = 1024;

/** SHA-256 over the certificates a verdict reads (the first MAX_PRESENTED), each with its length. */
function chainKey(chain: readonly Uint8Array[]): string {
  const hash = createHash('sha256');
  const length = Buffer.alloc(4);
  for (const der of chain.slice(0, MAX_PRESENTED)) {
    length.writeUInt32BE(der.length);
    hash.update(length).update(der);
  }
  return hash.digest('hex');
}

/**
 * Whether a certificate the client sent may be tried as an issuer: the client chooses its key,
 * and an RSA key of 16384 bits with a huge exponent makes each verification cost milliseconds.
 * A runtime that does not report the key's details is bounded by MAX_SIGNATURE_CHECKS alone.
 */
function cheapToVerifyWith(candidate: ParsedCertificate): boolean {
  const details = safeDetails(candidate);
  if (details?.modulusLength !== undefined && details.modulusLength > MAX_PRESENTED_RSA_BITS) return false;
  if (details?.publicExponent !== undefined && details.publicExponent > MAX_RSA_EXPONENT) return false;
  return true;
}

function safeDetails(candidate: ParsedCertificate): { modulusLength?: number; publicExponent?: bigint } | undefined {
  try {
    return candidate.x509.publicKey.asymmetricKeyDetails;
  } catch {
    return undefined;
  }
}

function safe(check: () => boolean): boolean {
  try {
    return check();
  } catch {
    return false;
  }
}

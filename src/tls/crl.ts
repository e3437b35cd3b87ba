/**
 * Certificate revocation lists (RFC 5280 section 5), checked by the guard itself on every runtime.
 *
 * Node.js hands `crl` to OpenSSL; Deno's `node:tls` ignores it (a revoked certificate would be
 * accepted). So the guard never gives the CRL to the runtime and decides revocation the same way
 * on both: at load time every CRL is parsed (`@peculiar/asn1-x509`), its signature verified
 * (`node:crypto`) with the CA certificate of `tls.client_ca_file` that issued it, and its revoked
 * serial numbers indexed by the CA certificate that signed it; at each handshake the chain is looked up in that index
 * (client-trust.ts). Work at handshake time is a map lookup per certificate.
 *
 * Refused at load (an operator error naming the reason): a CRL that does not parse, one whose
 * issuer is not in the CA bundle or whose signature does not verify, a SHA-1 or RSASSA-PSS
 * signature, delta CRLs, partitioned or indirect CRLs (issuingDistributionPoint, certificateIssuer)
 * and any other critical extension this module does not implement: accepting one it cannot
 * evaluate would let a revoked certificate through.
 */
import { verify, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList } from '@peculiar/asn1-x509';
import { nameKey, serialHex, type ParsedCertificate } from './x509.ts';

/** The revocation state the CRLs of one issuer give. */
export interface IssuerRevocations {
  /** The issuer's subject, as text, for messages. */
  readonly issuer: string;
  /** Revoked serial numbers (serialHex form). */
  readonly revoked: ReadonlySet<string>;
  /** The newest thisUpdate and nextUpdate (ms) among this issuer's CRLs; nextUpdate undefined when none says. */
  readonly thisUpdateMs: number;
  readonly nextUpdateMs: number | undefined;
}

/**
 * Revocations by the CA certificate that signed them (its SHA-256, hex): two CAs that share a
 * name never share revocations, and a certificate is looked up with the issuer its path verified.
 */
export type CrlIndex = ReadonlyMap<string, IssuerRevocations>;

const PEM_CRL = /-----BEGIN X509 CRL-----([\s\S]+?)-----END X509 CRL-----/g;

/** Signature algorithms a CRL may be signed with, as `node:crypto.verify` arguments. */
const SIGNATURE_ALGORITHMS: Readonly<Record<string, string | null>> = {
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256 (DER signature, node's default encoding)
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.3.101.112': null, // Ed25519
  '1.3.101.113': null, // Ed448
};
const REFUSED_ALGORITHMS: Readonly<Record<string, string>> = {
  '1.2.840.113549.1.1.5': 'SHA-1 with RSA: re-issue the CRL with SHA-256 (openssl ca -gencrl -md sha256)',
  '1.2.840.10045.4.1': 'ECDSA with SHA-1: re-issue the CRL with SHA-256',
  '1.2.840.113549.1.1.10': 'RSASSA-PSS, which this guard does not verify for CRLs: sign the CRL with PKCS #1 v1.5, ECDSA or EdDSA',
};

/** CRL extensions evaluated (cRLNumber, authorityKeyIdentifier: informational). */
const KNOWN_CRL_EXTENSIONS: ReadonlySet<string> = new Set(['2.5.29.20', '2.5.29.35']);
/** CRL entry extensions evaluated (reasonCode, invalidityDate: informational). */
const KNOWN_ENTRY_EXTENSIONS: ReadonlySet<string> = new Set(['2.5.29.21', '2.5.29.24']);
const NAMED_EXTENSIONS: Readonly<Record<string, string>> = {
  '2.5.29.27': 'a delta CRL (deltaCRLIndicator); give the complete CRL',
  '2.5.29.28': 'a partitioned or indirect CRL (issuingDistributionPoint); give one complete CRL per CA',
  '2.5.29.29': 'an indirect CRL entry (certificateIssuer); give one complete CRL per CA',
};

/** The PEM blocks of a CRL file as DER; throws when there is none. */
export function crlBlocks(pem: string): Buffer[] {
  const blocks = [...pem.matchAll(PEM_CRL)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  if (blocks.length === 0) throw new Error('no PEM CRL ("-----BEGIN X509 CRL-----") found');
  return blocks;
}

/**
 * Parses and verifies every CRL of a PEM file against the CA certificates that may issue them.
 * Throws an Error naming the CRL (by its position) and the problem. Validity (thisUpdate in the
 * future, nextUpdate passed) is not a load error: it is judged at each handshake, so that an
 * expired CRL refuses clients (as OpenSSL does) rather than stopping a reload.
 */
export function loadCrlIndex(pem: string, issuers: readonly ParsedCertificate[]): CrlIndex {
  const index = new Map<string, { issuer: string; revoked: Set<string>; thisUpdateMs: number; nextUpdateMs: number | undefined }>();
  crlBlocks(pem).forEach((der, i) => {
    const at = `CRL ${i + 1}`;
    let crl: CertificateList;
    try {
      crl = AsnConvert.parse(der, CertificateList);
    } catch (err) {
      throw new Error(`${at} is not a DER X.509 CRL (${(err as Error).message})`);
    }
    const tbs = crl.tbsCertList;
    const algorithm = crl.signatureAlgorithm.algorithm;
    if (tbs.signature.algorithm !== algorithm) throw new Error(`${at}: its two signature algorithm fields differ`);
    const refused = REFUSED_ALGORITHMS[algorithm];
    if (refused !== undefined) throw new Error(`${at} is signed with ${refused}`);
    if (!(algorithm in SIGNATURE_ALGORITHMS)) throw new Error(`${at} is signed with an unsupported algorithm (${algorithm})`);
    for (const ext of tbs.crlExtensions ?? []) {
      const named = NAMED_EXTENSIONS[ext.extnID];
      if (named !== undefined) throw new Error(`${at} is ${named}`);
      if (ext.critical && !KNOWN_CRL_EXTENSIONS.has(ext.extnID)) throw new Error(`${at} has a critical extension this guard does not implement (${ext.extnID})`);
    }

    const issuerKey = nameKey(tbs.issuer);
    const candidates = issuers.filter((ca) => ca.subjectKey === issuerKey);
    if (candidates.length === 0) throw new Error(`${at} is issued by a CA that is not in tls.client_ca_file; add that CA or remove the CRL`);
    const tbsRaw = crl.tbsCertListRaw;
    if (!tbsRaw) throw new Error(`${at}: its signed part cannot be read`);
    // Every CA certificate of that name whose key verifies the CRL (a re-issued CA certificate
    // with the same key is the same issuer); one of another key is not.
    const signers = candidates.filter((ca) => verifies(algorithm, Buffer.from(tbsRaw), ca.x509.publicKey, Buffer.from(crl.signature)));
    if (signers.length === 0) throw new Error(`${at}: the signature does not verify with the key of ${candidates[0]!.subjectText}`);
    for (const signer of signers) {
      if (signer.keyUsage !== undefined && (signer.keyUsage & 64 /* cRLSign */) === 0) {
        throw new Error(`${at}: its issuer ${signer.subjectText} may not sign CRLs (its key usage lacks cRLSign)`);
      }
    }

    const serials: string[] = [];
    for (const revoked of tbs.revokedCertificates ?? []) {
      for (const ext of revoked.crlEntryExtensions ?? []) {
        const named = NAMED_EXTENSIONS[ext.extnID];
        if (named !== undefined) throw new Error(`${at} has ${named}`);
        if (ext.critical && !KNOWN_ENTRY_EXTENSIONS.has(ext.extnID)) throw new Error(`${at} has an entry with a critical extension this guard does not implement (${ext.extnID})`);
      }
      serials.push(serialHex(revoked.userCertificate));
    }
    const thisUpdateMs = tbs.thisUpdate.getTime().getTime();
    for (const signer of signers) {
      const entry = index.get(signer.sha256) ?? { issuer: signer.subjectText, revoked: new Set<string>(), thisUpdateMs: -Infinity, nextUpdateMs: undefined };
      for (const serial of serials) entry.revoked.add(serial);
      // Several CRLs of one issuer: every serial any of them lists stays revoked; the newest one
      // says when the set must be renewed.
      if (thisUpdateMs > entry.thisUpdateMs) {
        entry.thisUpdateMs = thisUpdateMs;
        entry.nextUpdateMs = tbs.nextUpdate?.getTime().getTime();
      }
      index.set(signer.sha256, entry);
    }
  });
  return index;
}

function verifies(algorithm: string, data: Buffer, key: KeyObject, signature: Buffer): boolean {
  try {
    return verify(SIGNATURE_ALGORITHMS[algorithm] ?? null, data, key, signature);
  } catch {
    return false;
  }
}

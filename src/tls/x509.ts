/**
 * One X.509 certificate, read from its DER bytes the same way on every runtime: the names the
 * guard decides on (subject CNs, DNS and URI SANs), the fields chain verification needs (issuer
 * and subject as DER, serial, validity, basic constraints, key usage, extended key usage) and a
 * `node:crypto` X509Certificate for signature checks.
 *
 * Why not the runtime's `getPeerCertificate()` fields: they differ between Node.js and Deno
 * (Deno's `X509Certificate.keyUsage` is the key usage, Node's the extended key usage; the
 * `subjectaltname` string is formatted by each runtime), and an identity decision must not
 * depend on a runtime's string formatting. The ASN.1 is decoded by `@peculiar/asn1-x509`;
 * signatures are verified by `node:crypto`.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  BasicConstraints, Certificate, ExtendedKeyUsage, KeyUsage, KeyUsageFlags, type Name, SubjectAlternativeName,
  id_ce_basicConstraints, id_ce_extKeyUsage, id_ce_keyUsage, id_ce_subjectAltName,
} from '@peculiar/asn1-x509';

/** id-at-commonName (RFC 5280 appendix A). */
const OID_COMMON_NAME = '2.5.4.3';

/** Short names of the usual attribute types, for the subject text (others are written as their OID). */
const ATTRIBUTE_NAMES: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN', '2.5.4.6': 'C', '2.5.4.7': 'L', '2.5.4.8': 'ST', '2.5.4.10': 'O', '2.5.4.11': 'OU',
  '2.5.4.5': 'serialNumber', '1.2.840.113549.1.9.1': 'emailAddress', '0.9.2342.19200300.100.1.25': 'DC', '0.9.2342.19200300.100.1.1': 'UID',
};

/**
 * A name as `CN=x, O=y` in the certificate's order, values as they are (the audit event escapes
 * them: audit/event.ts clip), the same text on every runtime.
 */
export function nameText(name: Name): string {
  const parts: string[] = [];
  for (const rdn of name) {
    for (const attribute of rdn) {
      const value = attribute.value.anyValue !== undefined ? `#${Buffer.from(attribute.value.anyValue).toString('hex')}` : attribute.value.toString();
      parts.push(`${ATTRIBUTE_NAMES[attribute.type] ?? attribute.type}=${value}`);
    }
  }
  return parts.join(', ');
}

/**
 * Extensions this module understands; a certificate marking any other extension critical is
 * refused (RFC 5280 section 4.2: "A certificate-using system MUST reject the certificate if it
 * encounters a critical extension it does not recognize"). Name constraints and policy
 * constraints are not evaluated here, so a critical one refuses the chain: fails closed.
 */
const KNOWN_EXTENSIONS: ReadonlySet<string> = new Set([
  id_ce_basicConstraints, id_ce_keyUsage, id_ce_extKeyUsage, id_ce_subjectAltName,
  '2.5.29.14', // subjectKeyIdentifier
  '2.5.29.35', // authorityKeyIdentifier
  '2.5.29.32', // certificatePolicies (informational here)
  '2.5.29.31', // cRLDistributionPoints
  '1.3.6.1.5.5.7.1.1', // authorityInfoAccess
]);

export interface ParsedCertificate {
  readonly der: Buffer;
  readonly x509: X509Certificate;
  /** Lowercase hex SHA-256 of the DER certificate. */
  readonly sha256: string;
  /** Lowercase hex of the serial number, without leading zero bytes. */
  readonly serial: string;
  /** Hex of the DER-encoded issuer and subject names (compared as bytes, like OpenSSL's lookup). */
  readonly issuerKey: string;
  readonly subjectKey: string;
  /** The subject as text, for the audit log only (never for a decision). */
  readonly subjectText: string;
  readonly commonNames: readonly string[];
  readonly dnsSans: readonly string[];
  readonly uriSans: readonly string[];
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  /** basicConstraints cA. */
  readonly isCa: boolean;
  /** basicConstraints pathLenConstraint, when given. */
  readonly pathLength: number | undefined;
  /** keyUsage bits, or undefined when the extension is absent (then any usage is allowed). */
  readonly keyUsage: number | undefined;
  /** extendedKeyUsage OIDs, or undefined when the extension is absent. */
  readonly extendedKeyUsage: readonly string[] | undefined;
  /** Critical extensions this module does not understand (the chain is then refused). */
  readonly unknownCritical: readonly string[];
}

export { KeyUsageFlags };

/** Lowercase hex without leading zero bytes: two encodings of one INTEGER compare equal. */
export function serialHex(bytes: ArrayBuffer | Uint8Array): string {
  const hex = Buffer.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)).toString('hex');
  const trimmed = hex.replace(/^(00)+/, '');
  return trimmed === '' ? '00' : trimmed;
}

/** Hex of a Name's DER encoding. */
export function nameKey(name: Name): string {
  return Buffer.from(AsnConvert.serialize(name)).toString('hex');
}

/** A Buffer over DER bytes from either runtime (Deno hands out a plain Uint8Array). */
export function asBuffer(raw: Uint8Array): Buffer {
  return Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
}

/** Parses a DER certificate; throws an Error saying why when it cannot be read. */
export function parseCertificate(raw: Uint8Array): ParsedCertificate {
  const der = asBuffer(raw);
  const x509 = new X509Certificate(der);
  const cert = AsnConvert.parse(der, Certificate);
  const tbs = cert.tbsCertificate;

  const commonNames: string[] = [];
  for (const rdn of tbs.subject) {
    for (const attribute of rdn) {
      if (attribute.type !== OID_COMMON_NAME) continue;
      // Only a string type names anyone; an ANY value (anyValue) is not a name.
      if (attribute.value.anyValue !== undefined) throw new Error('the subject CN is not a string');
      commonNames.push(attribute.value.toString());
    }
  }

  let isCa = false;
  let pathLength: number | undefined;
  let keyUsage: number | undefined;
  let extendedKeyUsage: string[] | undefined;
  const dnsSans: string[] = [];
  const uriSans: string[] = [];
  const unknownCritical: string[] = [];
  const seen = new Set<string>();
  for (const ext of tbs.extensions ?? []) {
    // RFC 5280 section 4.2: "A certificate MUST NOT include more than one instance of a
    // particular extension"; two SAN extensions could be read differently by two parsers.
    if (seen.has(ext.extnID)) throw new Error(`extension ${ext.extnID} appears twice`);
    seen.add(ext.extnID);
    const value = ext.extnValue.buffer;
    switch (ext.extnID) {
      case id_ce_basicConstraints: {
        const bc = AsnConvert.parse(value, BasicConstraints);
        isCa = bc.cA;
        pathLength = bc.pathLenConstraint;
        break;
      }
      case id_ce_keyUsage:
        keyUsage = AsnConvert.parse(value, KeyUsage).toNumber();
        break;
      case id_ce_extKeyUsage:
        extendedKeyUsage = [...AsnConvert.parse(value, ExtendedKeyUsage)];
        break;
      case id_ce_subjectAltName:
        for (const name of AsnConvert.parse(value, SubjectAlternativeName)) {
          if (name.dNSName !== undefined) dnsSans.push(name.dNSName);
          if (name.uniformResourceIdentifier !== undefined) uriSans.push(name.uniformResourceIdentifier);
        }
        break;
      default:
        if (ext.critical && !KNOWN_EXTENSIONS.has(ext.extnID)) unknownCritical.push(ext.extnID);
    }
  }

  return {
    der,
    x509,
    sha256: createHash('sha256').update(der).digest('hex'),
    serial: serialHex(tbs.serialNumber),
    issuerKey: nameKey(tbs.issuer),
    subjectKey: nameKey(tbs.subject),
    subjectText: nameText(tbs.subject),
    commonNames,
    dnsSans,
    uriSans,
    notBeforeMs: tbs.validity.notBefore.getTime().getTime(),
    notAfterMs: tbs.validity.notAfter.getTime().getTime(),
    isCa,
    pathLength,
    keyUsage,
    extendedKeyUsage,
    unknownCritical,
  };
}

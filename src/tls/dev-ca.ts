/**
 * A throwaway certificate authority for demos and tests (node-forge for the X.509 encoding,
 * node:crypto for the keys, which is ~50x faster than forge's pure-JS RSA key generation).
 * Never for production: the CA key sits on disk next to the certificates.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface Issued {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CertOptions {
  readonly commonName: string;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly uris?: readonly string[];
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** Which extended key usage the leaf carries. */
  readonly usage: 'server' | 'client';
}

function newKeyPair(): { forgeKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; keyPem: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pkcs1 = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(pkcs1) as forge.pki.rsa.PrivateKey;
  return {
    forgeKey,
    publicKey: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0]! &= 0x7f; // a positive INTEGER
  return bytes.toString('hex');
}

const DAY = 86_400_000;

export class DevCa {
  readonly certPem: string;
  readonly keyPem: string;
  private readonly cert: forge.pki.Certificate;
  private readonly key: forge.pki.rsa.PrivateKey;

  private constructor(cert: forge.pki.Certificate, key: forge.pki.rsa.PrivateKey, keyPem: string) {
    this.cert = cert;
    this.key = key;
    this.certPem = forge.pki.certificateToPem(cert);
    this.keyPem = keyPem;
  }

  static create(commonName = 'replguard demo CA', validDays = 3650): DevCa {
    return DevCa.caCertificate(commonName, validDays, undefined);
  }

  /** An intermediate CA signed by this one (for chains of more than one level). */
  issueIntermediate(commonName: string, validDays = 1825): DevCa {
    return DevCa.caCertificate(commonName, validDays, this);
  }

  /** A CA certificate: self-signed without `issuer`, else signed by it (with its key identifier). */
  private static caCertificate(commonName: string, validDays: number, issuer: DevCa | undefined): DevCa {
    const { forgeKey, publicKey, keyPem } = newKeyPair();
    const cert = forge.pki.createCertificate();
    cert.publicKey = publicKey;
    cert.serialNumber = serial();
    cert.validity.notBefore = new Date(Date.now() - 3_600_000);
    cert.validity.notAfter = new Date(Date.now() + validDays * DAY);
    const name = [{ name: 'commonName', value: commonName }, { name: 'organizationName', value: 'replguard demo' }];
    cert.setSubject(name);
    cert.setIssuer(issuer ? issuer.cert.subject.attributes : name);
    cert.setExtensions([
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier' },
      ...(issuer ? [{ name: 'authorityKeyIdentifier', keyIdentifier: issuer.cert.generateSubjectKeyIdentifier().getBytes() }] : []),
    ]);
    cert.sign(issuer ? issuer.key : forgeKey, forge.md.sha256.create());
    return new DevCa(cert, forgeKey, keyPem);
  }

  issue(options: CertOptions): Issued {
    const { publicKey, keyPem } = newKeyPair();
    const cert = forge.pki.createCertificate();
    cert.publicKey = publicKey;
    cert.serialNumber = serial();
    cert.validity.notBefore = options.notBefore ?? new Date(Date.now() - 3_600_000);
    cert.validity.notAfter = options.notAfter ?? new Date(Date.now() + 365 * DAY);
    cert.setSubject([{ name: 'commonName', value: options.commonName }]);
    cert.setIssuer(this.cert.subject.attributes);
    const altNames = [
      ...(options.dnsNames ?? []).map((value) => ({ type: 2, value })),
      ...(options.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
      ...(options.uris ?? []).map((value) => ({ type: 6, value })),
    ];
    cert.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: options.usage === 'server', clientAuth: options.usage === 'client' },
      ...(altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : []),
      { name: 'authorityKeyIdentifier', keyIdentifier: this.cert.generateSubjectKeyIdentifier().getBytes() },
    ]);
    cert.sign(this.key, forge.md.sha256.create());
    return { certPem: forge.pki.certificateToPem(cert), keyPem };
  }

  /** A server certificate for this machine's loopback names. */
  issueServer(names: readonly string[] = ['localhost']): Issued {
    return this.issue({ commonName: names[0] ?? 'localhost', dnsNames: names, ipAddresses: ['127.0.0.1', '::1'], usage: 'server' });
  }

  /** A client certificate naming a POP by CN, DNS SAN and a SPIFFE-style URI SAN. */
  issueClient(pop: string, extra: Partial<CertOptions> = {}): Issued {
    return this.issue({ commonName: pop, dnsNames: [pop], uris: [`spiffe://replguard.demo/pop/${pop}`], usage: 'client', ...extra });
  }
}

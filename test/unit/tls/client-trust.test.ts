// The guard's own client-certificate verification (tls/client-trust.ts, tls/crl.ts, tls/x509.ts):
// one precise reason per failure, on chains built by a real CA (node-forge) and CRLs written by
// the openssl CLI. The same checks run under Deno in test/deno/client_trust_test.ts.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { createClientTrust } from '../../../src/tls/client-trust.ts';
import { crlBlocks, loadCrlIndex } from '../../../src/tls/crl.ts';
import { DevCa } from '../../../src/tls/dev-ca.ts';
import { parseCertificate } from '../../../src/tls/x509.ts';
import { writeCrl } from '../../helpers/pki.ts';
import { DAY, der, dir, file, inter, leaf, now, other, parsed, root, viaInter } from '../../helpers/trust-fixtures.ts';

t.test('names and fields come from the DER, the same on every runtime', async (t) => {
  const p = parsed(leaf.certPem);
  t.same(p.commonNames, ['calgary-01']);
  t.same(p.dnsSans, ['calgary-01']);
  t.same(p.uriSans, ['spiffe://replguard.demo/pop/calgary-01']);
  t.equal(p.isCa, false);
  t.same(p.extendedKeyUsage, ['1.3.6.1.5.5.7.3.2']);
  t.equal(p.sha256, new X509Certificate(leaf.certPem).fingerprint256.replace(/:/g, '').toLowerCase());
  t.equal(p.serial, new X509Certificate(leaf.certPem).serialNumber.toLowerCase().replace(/^(00)+/, ''));
  t.equal(p.issuerKey, parsed(root.certPem).subjectKey, 'the issuer name is the root subject, byte for byte');
  const ca = parsed(root.certPem);
  t.equal(ca.isCa, true);
  t.ok(ca.keyUsage! & 32, 'keyCertSign');
  t.throws(() => parseCertificate(Buffer.from('not a certificate')));
});

t.test('chains: one reason per failure', async (t) => {
  const trust = createClientTrust([parsed(root.certPem)], undefined);
  const verify = (chain: string[], at = now) => trust.verify(chain.map(der), at);
  const reason = (v: ReturnType<typeof verify>) => (v.ok ? 'OK' : v.reason);

  const ok = verify([leaf.certPem]);
  t.equal(reason(ok), 'OK');
  t.equal(ok.ok && ok.path.length, 2, 'leaf and anchor');
  t.equal(reason(verify([leaf.certPem, root.certPem])), 'OK', 'the anchor sent along is fine');
  t.equal(reason(trust.verify([], now)), 'TLS_CLIENT_CERT_MISSING');
  t.equal(reason(verify([other.issueClient('calgary-01').certPem])), 'TLS_CLIENT_CERT_UNTRUSTED', 'another CA');
  t.equal(reason(verify([other.certPem])), 'TLS_CLIENT_CERT_UNTRUSTED', 'self-signed');
  t.equal(reason(verify([other.issueClient('calgary-01').certPem, other.certPem])), 'TLS_CLIENT_CERT_UNTRUSTED', 'a foreign root sent along is no anchor');
  t.equal(reason(verify([root.issueClient('calgary-01', { notBefore: new Date(now - 10 * DAY), notAfter: new Date(now - DAY) }).certPem])), 'TLS_CLIENT_CERT_EXPIRED');
  t.equal(reason(verify([root.issueClient('calgary-01', { notBefore: new Date(now + DAY), notAfter: new Date(now + 10 * DAY) }).certPem])), 'TLS_CLIENT_CERT_NOT_YET_VALID');
  t.equal(reason(verify([leaf.certPem], now + 400 * DAY)), 'TLS_CLIENT_CERT_EXPIRED', 'on the injected clock');
  t.equal(reason(verify([root.issueClient('calgary-01', { usage: 'server' }).certPem])), 'TLS_CLIENT_CERT_INVALID', 'a server certificate');
  t.equal(reason(verify([root.certPem])), 'TLS_CLIENT_CERT_INVALID', 'the CA certificate itself');

  // A leaf signed by the root's name with another key: found by name, refused by signature.
  const impostor = DevCa.create('trust root');
  const forged = verify([impostor.issueClient('calgary-01').certPem]);
  t.equal(reason(forged), 'TLS_CLIENT_CERT_UNTRUSTED');
  t.match(!forged.ok && forged.detail, /signature/);
  t.equal(reason(verify([impostor.issueClient('calgary-01').certPem, impostor.certPem])), 'TLS_CLIENT_CERT_UNTRUSTED', 'nor with its own root sent along');
});

t.test('intermediates: sent by the client, or in the bundle', async (t) => {
  const rootOnly = createClientTrust([parsed(root.certPem)], undefined);
  const v = rootOnly.verify([der(viaInter.certPem), der(inter.certPem)], now);
  t.ok(v.ok, 'leaf + intermediate sent, root in the bundle');
  t.equal(v.ok && v.path.length, 3);
  const missing = rootOnly.verify([der(viaInter.certPem)], now);
  t.equal(!missing.ok && missing.reason, 'TLS_CLIENT_CERT_UNTRUSTED', 'the intermediate not sent');
  const both = createClientTrust([parsed(root.certPem), parsed(inter.certPem)], undefined);
  t.ok(both.verify([der(viaInter.certPem)], now).ok, 'the intermediate in the bundle');
  // A client certificate (not a CA) used as an issuer.
  const notCa = parseCertificate(der(leaf.certPem));
  const trust = createClientTrust([notCa], undefined);
  const v2 = trust.verify([der(root.issueClient('x').certPem)], now);
  t.equal(!v2.ok && v2.reason, 'TLS_CLIENT_CERT_UNTRUSTED', 'a leaf in the bundle issues nothing');
  t.equal(createClientTrust([parsed(root.certPem)], undefined).fingerprint, rootOnly.fingerprint, 'the fingerprint names the set');
  t.not(both.fingerprint, rootOnly.fingerprint);
});

t.test('revocation: CRLs loaded, verified, and applied to the whole chain', async (t) => {
  const rootFiles = { cert: file(root.certPem), key: file(root.keyPem) };
  const interFiles = { cert: file(inter.certPem), key: file(inter.keyPem) };
  const revokedLeaf = root.issueClient('calgary-01');
  const revokedViaInter = inter.issueClient('lima-04');
  const anchors = [parsed(root.certPem), parsed(inter.certPem)];
  const crlRoot = readFileSync(writeCrl(dir, rootFiles, [file(revokedLeaf.certPem)]), 'utf8');
  const crlInter = readFileSync(writeCrl(dir, interFiles, [file(revokedViaInter.certPem)]), 'utf8');
  const index = loadCrlIndex(crlRoot + crlInter, anchors);
  t.equal(index.size, 2);
  const trust = createClientTrust(anchors, index);
  t.ok(trust.checksRevocation);
  const reason = (pems: string[], at = now) => {
    const v = trust.verify(pems.map(der), at);
    if (!v.ok) t.comment(v.detail);
    return v.ok ? 'OK' : v.reason;
  };
  t.equal(reason([leaf.certPem]), 'OK');
  t.equal(reason([viaInter.certPem]), 'OK');
  t.equal(reason([revokedLeaf.certPem]), 'TLS_CLIENT_CERT_REVOKED');
  t.equal(reason([revokedViaInter.certPem]), 'TLS_CLIENT_CERT_REVOKED', 'revoked by the intermediate\'s CRL');
  t.equal(reason([leaf.certPem], now + 31 * DAY), 'TLS_CLIENT_CERT_INVALID', 'the CRL is past its nextUpdate: everyone refused (fails closed)');
  const ok = trust.verify([der(leaf.certPem)], now);
  t.ok(ok.ok && ok.validUntilMs <= now + 31 * DAY, 'the verdict holds only until the CRL\'s nextUpdate');

  // The intermediate itself revoked by the root: every certificate below it is refused.
  const crlRootRevokingInter = readFileSync(writeCrl(dir, rootFiles, [interFiles.cert]), 'utf8');
  const trust2 = createClientTrust(anchors.slice(0, 1), loadCrlIndex(crlRootRevokingInter, anchors.slice(0, 1)));
  const v = trust2.verify([der(viaInter.certPem), der(inter.certPem)], now);
  t.equal(!v.ok && v.reason, 'TLS_CLIENT_CERT_REVOKED');

  // Only the root's CRL: a leaf of the intermediate (in the bundle) has no CRL from its issuer.
  const trust3 = createClientTrust(anchors, loadCrlIndex(crlRoot, anchors));
  const v3 = trust3.verify([der(viaInter.certPem)], now);
  t.equal(!v3.ok && v3.reason, 'TLS_CLIENT_CERT_INVALID');
  t.match(!v3.ok && v3.detail, /no CRL/);
  t.not(trust3.fingerprint, trust.fingerprint, 'another CRL set is another trust');
});

t.test('CRLs refused at load, with the reason', async (t) => {
  const rootFiles = { cert: file(root.certPem), key: file(root.keyPem) };
  const crl = readFileSync(writeCrl(dir, rootFiles, []), 'utf8');
  t.throws(() => loadCrlIndex(crl, [parsed(other.certPem)]), /not in tls\.client_ca_file/, 'an issuer outside the bundle');
  t.throws(() => loadCrlIndex('no crl here', [parsed(root.certPem)]), /no PEM CRL/);
  // Flip a byte of the signed part: the signature no longer verifies.
  const [block] = crlBlocks(crl);
  const tampered = Buffer.from(block!);
  tampered[tampered.length - 300] ^= 0x01;
  const pem = `-----BEGIN X509 CRL-----\n${tampered.toString('base64')}\n-----END X509 CRL-----\n`;
  t.throws(() => loadCrlIndex(pem, [parsed(root.certPem)]), /CRL 1/);
  // An impostor CA of the same name cannot sign a CRL for the real one.
  const impostor = DevCa.create('trust root');
  const forged = readFileSync(writeCrl(dir, { cert: file(impostor.certPem), key: file(impostor.keyPem) }, []), 'utf8');
  t.throws(() => loadCrlIndex(forged, [parsed(root.certPem)]), /does not verify/);
  t.throws(() => loadCrlIndex(readFileSync(writeCrl(dir, rootFiles, [], { md: 'sha1' }), 'utf8'), [parsed(root.certPem)]), /SHA-1/);
});

t.test('a bundle intermediate is itself checked against its root: CRL, validity, constraints', async (t) => {
  const rootFiles = { cert: file(root.certPem), key: file(root.keyPem) };
  const revokedInter = root.issueIntermediate('revoked intermediate');
  const leafBelow = revokedInter.issueClient('calgary-01');
  const anchors = [parsed(root.certPem), parsed(revokedInter.certPem)];
  const crl = readFileSync(writeCrl(dir, rootFiles, [file(revokedInter.certPem)]), 'utf8')
    + readFileSync(writeCrl(dir, { cert: file(revokedInter.certPem), key: file(revokedInter.keyPem) }, []), 'utf8');
  const trust = createClientTrust(anchors, loadCrlIndex(crl, anchors));
  const v = trust.verify([der(leafBelow.certPem)], now);
  t.equal(!v.ok && v.reason, 'TLS_CLIENT_CERT_REVOKED', "the intermediate in the bundle, revoked by the root's CRL: its leaves are refused");
  t.match(!v.ok && v.detail, /revoked intermediate/);
  const ok = createClientTrust(anchors, undefined).verify([der(leafBelow.certPem)], now);
  t.equal(ok.ok && ok.path.length, 3, 'the path reaches the root through the bundle');
  const alone = createClientTrust([parsed(revokedInter.certPem)], undefined).verify([der(leafBelow.certPem)], now);
  t.equal(alone.ok && alone.path.length, 2, 'an intermediate without its root in the bundle is the anchor');
});

t.test('two CAs of one name never share a CRL', async (t) => {
  const twin = DevCa.create('trust root'); // the same name as root, another key
  const anchors = [parsed(root.certPem), parsed(twin.certPem)];
  const crlOfRoot = readFileSync(writeCrl(dir, { cert: file(root.certPem), key: file(root.keyPem) }, []), 'utf8');
  const trust = createClientTrust(anchors, loadCrlIndex(crlOfRoot, anchors));
  t.ok(trust.verify([der(leaf.certPem)], now).ok, "root's leaf: its issuer's CRL is there");
  const v = trust.verify([der(twin.issueClient('calgary-01').certPem)], now);
  t.equal(!v.ok && v.reason, 'TLS_CLIENT_CERT_INVALID', "the twin's leaf: the root's CRL is not its issuer's");
  t.match(!v.ok && v.detail, /no CRL/);
});

t.test('an accepted chain is not decoded again while its verdict holds; time and a new trust still decide', async (t) => {
  const rootFiles = { cert: file(root.certPem), key: file(root.keyPem) };
  const later = root.issueClient('calgary-01', { notBefore: new Date(now + DAY), notAfter: new Date(now + 10 * DAY) });
  const trust = createClientTrust([parsed(root.certPem)], undefined);
  const first = trust.verify([der(later.certPem)], now + 2 * DAY);
  t.equal(first.ok, true);
  t.equal(trust.verify([der(later.certPem)], now + 3 * DAY), first, 'the same verdict, not a new check');
  t.not(trust.verify([der(later.certPem), der(root.certPem)], now + 3 * DAY), first, 'other bytes are another chain');
  const early = trust.verify([der(later.certPem)], now);
  t.equal(!early.ok && early.reason, 'TLS_CLIENT_CERT_NOT_YET_VALID', 'before the time it was accepted at: checked again');
  const expired = trust.verify([der(later.certPem)], now + 11 * DAY);
  t.equal(!expired.ok && expired.reason, 'TLS_CLIENT_CERT_EXPIRED', 'past its notAfter: checked again');
  // A reload builds a new trust: a CRL listing the certificate revokes it at once.
  const crl = readFileSync(writeCrl(dir, rootFiles, [file(later.certPem)]), 'utf8');
  const reloaded = createClientTrust([parsed(root.certPem)], loadCrlIndex(crl, [parsed(root.certPem)]));
  const revoked = reloaded.verify([der(later.certPem)], now + 3 * DAY);
  t.equal(!revoked.ok && revoked.reason, 'TLS_CLIENT_CERT_REVOKED');
  t.equal(trust.verify([der(later.certPem)], now + 3 * DAY).ok, true, 'the old trust is unchanged');
});

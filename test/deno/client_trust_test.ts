// The guard's own client-certificate verification under Deno (node:test + node:assert: tap does
// not run under Deno). Deno's node:tls ignores `crl` and `ciphers`, so tls/client-trust.ts,
// tls/crl.ts and tls/x509.ts are what enforces revocation and chain rules on this runtime: the
// same cases as test/unit/tls/client-trust.test.ts (Node), on Deno's node:crypto and buffers.
// Run: npm run test:deno
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createClientTrust } from '../../src/tls/client-trust.ts';
import { crlBlocks, loadCrlIndex } from '../../src/tls/crl.ts';
import { DevCa } from '../../src/tls/dev-ca.ts';
import { parseCertificate } from '../../src/tls/x509.ts';
import { writeCrl } from '../helpers/pki.ts';
import { DAY, der, dir, file, inter, leaf, now, other, parsed, root, viaInter } from '../helpers/trust-fixtures.ts';

test('deno: certificate fields come from the DER (raw is a Uint8Array here)', () => {
  const raw = new X509Certificate(leaf.certPem).raw;
  const p = parseCertificate(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength));
  assert.deepEqual(p.commonNames, ['calgary-01']);
  assert.deepEqual(p.dnsSans, ['calgary-01']);
  assert.deepEqual(p.uriSans, ['spiffe://replguard.demo/pop/calgary-01']);
  assert.deepEqual(p.extendedKeyUsage, ['1.3.6.1.5.5.7.3.2'], 'EKU from the DER, not from X509Certificate.keyUsage (which differs on Deno)');
  assert.equal(p.sha256, new X509Certificate(leaf.certPem).fingerprint256.replace(/:/g, '').toLowerCase());
  assert.equal(p.issuerKey, parsed(root.certPem).subjectKey);
  assert.equal(parsed(root.certPem).isCa, true);
  assert.throws(() => parseCertificate(Buffer.from('not a certificate')));
});

test('deno: chains, one reason per failure', () => {
  const trust = createClientTrust([parsed(root.certPem)], undefined);
  const reason = (pems: string[], at = now) => {
    const v = trust.verify(pems.map(der), at);
    return v.ok ? 'OK' : v.reason;
  };
  assert.equal(reason([leaf.certPem]), 'OK');
  assert.equal(reason([other.issueClient('calgary-01').certPem]), 'TLS_CLIENT_CERT_UNTRUSTED');
  assert.equal(reason([other.certPem]), 'TLS_CLIENT_CERT_UNTRUSTED', 'self-signed');
  assert.equal(reason([root.issueClient('calgary-01', { notBefore: new Date(now - 10 * DAY), notAfter: new Date(now - DAY) }).certPem]), 'TLS_CLIENT_CERT_EXPIRED');
  assert.equal(reason([root.issueClient('calgary-01', { notBefore: new Date(now + DAY), notAfter: new Date(now + 10 * DAY) }).certPem]), 'TLS_CLIENT_CERT_NOT_YET_VALID');
  assert.equal(reason([root.issueClient('calgary-01', { usage: 'server' }).certPem]), 'TLS_CLIENT_CERT_INVALID');
  assert.equal(reason([DevCa.create('trust root').issueClient('calgary-01').certPem]), 'TLS_CLIENT_CERT_UNTRUSTED', 'same issuer name, another key');
  const rootOnly = createClientTrust([parsed(root.certPem)], undefined);
  assert.ok(rootOnly.verify([der(viaInter.certPem), der(inter.certPem)], now).ok, 'an intermediate sent by the client');
  const missing = rootOnly.verify([der(viaInter.certPem)], now);
  assert.equal(!missing.ok && missing.reason, 'TLS_CLIENT_CERT_UNTRUSTED');
});

test('deno: CRLs verified and applied to the whole chain (what node:tls here would ignore)', () => {
  const rootFiles = { cert: file(root.certPem), key: file(root.keyPem) };
  const interFiles = { cert: file(inter.certPem), key: file(inter.keyPem) };
  const revokedLeaf = root.issueClient('calgary-01');
  const revokedViaInter = inter.issueClient('lima-04');
  const anchors = [parsed(root.certPem), parsed(inter.certPem)];
  const crl = readFileSync(writeCrl(dir, rootFiles, [file(revokedLeaf.certPem)]), 'utf8')
    + readFileSync(writeCrl(dir, interFiles, [file(revokedViaInter.certPem)]), 'utf8');
  const trust = createClientTrust(anchors, loadCrlIndex(crl, anchors));
  const reason = (pems: string[], at = now) => {
    const v = trust.verify(pems.map(der), at);
    return v.ok ? 'OK' : v.reason;
  };
  assert.equal(reason([leaf.certPem]), 'OK');
  assert.equal(reason([viaInter.certPem]), 'OK');
  assert.equal(reason([revokedLeaf.certPem]), 'TLS_CLIENT_CERT_REVOKED');
  assert.equal(reason([revokedViaInter.certPem]), 'TLS_CLIENT_CERT_REVOKED');
  assert.equal(reason([leaf.certPem], now + 31 * DAY), 'TLS_CLIENT_CERT_INVALID', 'a CRL past its nextUpdate fails closed');
  const revokingInter = readFileSync(writeCrl(dir, rootFiles, [interFiles.cert]), 'utf8');
  const trust2 = createClientTrust(anchors.slice(0, 1), loadCrlIndex(revokingInter, anchors.slice(0, 1)));
  const v = trust2.verify([der(viaInter.certPem), der(inter.certPem)], now);
  assert.equal(!v.ok && v.reason, 'TLS_CLIENT_CERT_REVOKED', 'a revoked intermediate');

  const [block] = crlBlocks(readFileSync(writeCrl(dir, rootFiles, []), 'utf8'));
  const tampered = Buffer.from(block!);
  tampered[tampered.length - 300]! ^= 0x01;
  assert.throws(() => loadCrlIndex(`-----BEGIN X509 CRL-----\n${tampered.toString('base64')}\n-----END X509 CRL-----\n`, [parsed(root.certPem)]), /CRL 1/, 'a tampered CRL');
  const impostor = DevCa.create('trust root');
  const forged = readFileSync(writeCrl(dir, { cert: file(impostor.certPem), key: file(impostor.keyPem) }, []), 'utf8');
  assert.throws(() => loadCrlIndex(forged, [parsed(root.certPem)]), /does not verify/, 'a CRL signed by another key');
});

test("deno: a bundle intermediate revoked by its root's CRL refuses its leaves", () => {
  const rootFiles = { cert: file(root.certPem), key: file(root.keyPem) };
  const revokedInter = root.issueIntermediate('revoked intermediate');
  const anchors = [parsed(root.certPem), parsed(revokedInter.certPem)];
  const crl = readFileSync(writeCrl(dir, rootFiles, [file(revokedInter.certPem)]), 'utf8')
    + readFileSync(writeCrl(dir, { cert: file(revokedInter.certPem), key: file(revokedInter.keyPem) }, []), 'utf8');
  const v = createClientTrust(anchors, loadCrlIndex(crl, anchors)).verify([der(revokedInter.issueClient('calgary-01').certPem)], now);
  assert.equal(!v.ok && v.reason, 'TLS_CLIENT_CERT_REVOKED');
});

import t from 'tap';
import { classifyAuthorizationError, parseSubjectAltName } from '../../../src/tls/peer-certificate.ts';

t.test("Node's subjectaltname format", async (t) => {
  t.same(parseSubjectAltName('DNS:calgary-01, URI:spiffe://x/calgary-01'), [
    { type: 'DNS', value: 'calgary-01' },
    { type: 'URI', value: 'spiffe://x/calgary-01' },
  ]);
  t.same(parseSubjectAltName(''), []);
  t.same(parseSubjectAltName('IP Address:127.0.0.1, DNS:a'), [{ type: 'IP Address', value: '127.0.0.1' }, { type: 'DNS', value: 'a' }]);
  // A value with a separator is JSON-quoted by Node: it must stay one name, not become two.
  t.same(parseSubjectAltName('DNS:"evil, DNS:calgary-01", URI:x'), [
    { type: 'DNS', value: 'evil, DNS:calgary-01' },
    { type: 'URI', value: 'x' },
  ]);
  t.same(parseSubjectAltName('DNS:"a\\"b"'), [{ type: 'DNS', value: 'a"b' }]);
  t.same(parseSubjectAltName('DNS:"unterminated'), [], 'unparseable quoted value: nothing is guessed');
});

t.test('verify codes map to reasons', async (t) => {
  t.equal(classifyAuthorizationError('UNABLE_TO_GET_ISSUER_CERT', false), 'TLS_CLIENT_CERT_MISSING');
  t.equal(classifyAuthorizationError('CERT_HAS_EXPIRED', true), 'TLS_CLIENT_CERT_EXPIRED');
  t.equal(classifyAuthorizationError('CERT_NOT_YET_VALID', true), 'TLS_CLIENT_CERT_NOT_YET_VALID');
  t.equal(classifyAuthorizationError('CERT_REVOKED', true), 'TLS_CLIENT_CERT_REVOKED');
  t.equal(classifyAuthorizationError('DEPTH_ZERO_SELF_SIGNED_CERT', true), 'TLS_CLIENT_CERT_UNTRUSTED');
  t.equal(classifyAuthorizationError('INVALID_PURPOSE', true), 'TLS_CLIENT_CERT_INVALID');
  t.equal(classifyAuthorizationError(undefined, true), 'TLS_CLIENT_CERT_INVALID');
});

// JWT policy: the RFC 8725 attack list (and beyond), one case each, against the real verifier
// and the real key loader. Malicious tokens that jose refuses to produce are built by hand.
import { createHmac, createPublicKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { calculateJwkThumbprint, exportJWK, SignJWT } from 'jose';
import { CLAIM_NAMESPACE } from '../../../src/auth/jwt-claims.ts';
import { checkVerificationJwk, jwkThumbprint, loadKeySet, loadRevokedIds, parseKeyFile, type KeySet } from '../../../src/auth/jwt-keys.ts';
import { createJwtVerifier } from '../../../src/auth/jwt-verify.ts';
import { ConfigError } from '../../../src/config/errors.ts';
import { Rejection } from '../../../src/pipeline/reasons.ts';

const NOW = 1_800_000_000; // seconds; the verifier's injected clock
const dir = mkdtempSync(join(tmpdir(), 'replguard-jwt-'));
const write = (name: string, text: string) => {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
};
const pem = (key: KeyObject) => key.export({ type: 'spki', format: 'pem' }).toString();
const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

// Keys, generated once for the file.
const calgary = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const denver = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 });
const idp = generateKeyPairSync('ed25519');
const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });

const keySet: KeySet = loadKeySet({
  issuer: ['replguard', 'https://idp.example'],
  public_keys: [
    { path: write('calgary.pub', pem(calgary.publicKey)), alg: 'ES256', pop: 'calgary-01' },
    { path: write('denver.pub', pem(denver.publicKey)), alg: 'ES256', pop: 'denver-02' },
    { path: write('calgary-rsa.pub', pem(rsa.publicKey)), alg: 'RS256', pop: 'calgary-01' },
    { path: write('idp.pub', pem(idp.publicKey)), alg: 'EdDSA', issuer: 'https://idp.example' },
  ],
}, new Set(['calgary-01', 'denver-02'])).value;
const kid = (key: KeyObject) => jwkThumbprint(createPublicKey(key));
const revoked = new Set(['revoked-jti']);
const verifier = createJwtVerifier({
  keys: () => keySet,
  revoked: () => revoked,
  issuers: ['replguard', 'https://idp.example'],
  audience: 'zurich-01',
  maxTokenAgeMs: 3_600_000,
  clockToleranceMs: 30_000,
  peerIds: new Set(['calgary-01', 'denver-02']),
  now: () => NOW * 1000,
});

const baseClaims = (): Record<string, unknown> => ({
  iss: 'replguard',
  sub: 'calgary-01',
  aud: 'zurich-01',
  iat: NOW - 60,
  exp: NOW + 600,
  jti: 'jti-1',
  [CLAIM_NAMESPACE]: { routes: ['POST /api/replication/apply'] },
});

function sign(claims: Record<string, unknown>, options: { key?: KeyObject; alg?: string; header?: Record<string, unknown> } = {}): Promise<string> {
  const key = options.key ?? calgary.privateKey;
  const alg = options.alg ?? 'ES256';
  return new SignJWT(claims).setProtectedHeader({ alg, kid: kid(key), ...options.header }).sign(key);
}

/** Signs an arbitrary header and payload by hand with the POP's ES256 key (what jose refuses to write). */
function signRaw(header: Record<string, unknown>, payloadText: string, key: KeyObject = calgary.privateKey): string {
  const input = `${b64(header)}.${b64(payloadText)}`;
  return `${input}.${cryptoSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

/** The same 6-bit group with its lowest bit flipped: in a final character those bits are unused. */
function flipLowBit(ch: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  return alphabet[alphabet.indexOf(ch) ^ 1]!;
}

async function reasonOf(token: string): Promise<string> {
  try {
    await verifier.verify(token);
    return 'ACCEPTED';
  } catch (err) {
    if (err instanceof Rejection) return err.reason;
    throw err;
  }
}

t.test('a well-formed token of a configured POP is accepted', async (t) => {
  const verified = await verifier.verify(await sign(baseClaims()));
  t.equal(verified.sub, 'calgary-01');
  t.equal(verified.jti, 'jti-1');
  t.same([...verified.routes], ['POST /api/replication/apply']);
  t.equal(verified.validUntilMs, (NOW + 600) * 1000 + 30_000, 'cached until exp (plus tolerance), the earlier of exp and iat + max age');
  t.equal(await reasonOf(await sign(baseClaims(), { key: rsa.privateKey, alg: 'RS256' })), 'ACCEPTED', 'RS256 with the POP’s RSA key');
  t.equal(await reasonOf(await sign({ ...baseClaims(), sub: 'denver-02', iss: 'https://idp.example' }, { key: idp.privateKey, alg: 'EdDSA' })), 'ACCEPTED', 'an issuer-bound key signs for any configured POP');
  t.equal(await reasonOf(await sign({ ...baseClaims(), aud: ['other', 'zurich-01'] })), 'ACCEPTED', 'aud as a list that names us');
});

t.test('RFC 8725 and beyond: one refusal per attack', async (t) => {
  const claims = baseClaims();
  const header = b64({ alg: 'ES256', kid: kid(calgary.privateKey) });
  const payload = b64(claims);
  const good = await sign(claims);
  const goodSig = good.split('.')[2]!;
  const hmac = (alg: string, secret: string) => {
    const h = b64({ alg, typ: 'JWT' });
    return `${h}.${payload}.${createHmac('sha256', secret).update(`${h}.${payload}`).digest('base64url')}`;
  };
  const cases: Array<[string, Promise<string> | string, string]> = [
    ['alg none', `${b64({ alg: 'none' })}.${payload}.`, 'AUTH_JWT_HEADER_REFUSED'],
    ['alg None (case variant)', `${b64({ alg: 'None' })}.${payload}.${goodSig}`, 'AUTH_JWT_HEADER_REFUSED'],
    ['RS256 -> HS256 with the public key as the HMAC secret', hmac('HS256', pem(rsa.publicKey)), 'AUTH_JWT_HEADER_REFUSED'],
    ['unknown kid', sign(claims, { header: { kid: 'no-such-key' } }), 'AUTH_JWT_KEY_UNKNOWN'],
    ['kid path injection', sign(claims, { header: { kid: '../../../../dev/null' } }), 'AUTH_JWT_KEY_UNKNOWN'],
    ['kid SQL injection', sign(claims, { header: { kid: "x' UNION SELECT 'secret' --" } }), 'AUTH_JWT_KEY_UNKNOWN'],
    ['jku header', sign(claims, { header: { jku: 'https://attacker.example/jwks.json' } }), 'AUTH_JWT_HEADER_REFUSED'],
    ['x5u header', sign(claims, { header: { x5u: 'https://attacker.example/cert.pem' } }), 'AUTH_JWT_HEADER_REFUSED'],
    ['embedded jwk (signed with the attacker’s own key)', exportJWK(attacker.publicKey).then((jwk) => sign(claims, { key: attacker.privateKey, header: { jwk, kid: undefined } })), 'AUTH_JWT_HEADER_REFUSED'],
    ['embedded x5c', sign(claims, { header: { x5c: ['MIIB'] } }), 'AUTH_JWT_HEADER_REFUSED'],
    ['expired', sign({ ...claims, iat: NOW - 700, exp: NOW - 100 }), 'AUTH_JWT_EXPIRED'],
    ['nbf in the future', sign({ ...claims, nbf: NOW + 300 }), 'AUTH_JWT_NOT_YET_VALID'],
    ['iat in the future', sign({ ...claims, iat: NOW + 300, exp: NOW + 900 }), 'AUTH_JWT_NOT_YET_VALID'],
    ['older than max_token_age (exp still ahead)', sign({ ...claims, iat: NOW - 7200, exp: NOW + 600 }), 'AUTH_JWT_TOO_OLD'],
    ['wrong iss', sign({ ...claims, iss: 'someone-else' }), 'AUTH_JWT_CLAIM_INVALID'],
    ['wrong aud', sign({ ...claims, aud: 'oslo-03' }), 'AUTH_JWT_CLAIM_INVALID'],
    ['revoked jti', sign({ ...claims, jti: 'revoked-jti' }), 'AUTH_JWT_REVOKED'],
    ['a key of another POP, named by kid', sign(claims, { key: denver.privateKey }), 'AUTH_JWT_KEY_NOT_BOUND'],
    ['a key of another POP, no kid', sign(claims, { key: denver.privateKey, header: { kid: undefined } }), 'AUTH_JWT_SIGNATURE_INVALID'],
    ['RSA 1024 key (not configurable, so its token cannot verify)', signRaw({ alg: 'RS256' }, JSON.stringify(claims), rsa1024.privateKey), 'AUTH_JWT_SIGNATURE_INVALID'],
    ['crit header', signRaw({ alg: 'ES256', kid: kid(calgary.privateKey), crit: ['replguard-ext'], 'replguard-ext': 1 }, JSON.stringify(claims)), 'AUTH_JWT_HEADER_REFUSED'],
    ['b64 = false', signRaw({ alg: 'ES256', kid: kid(calgary.privateKey), b64: false, crit: ['b64'] }, JSON.stringify(claims)), 'AUTH_JWT_HEADER_REFUSED'],
    ['nested JWT (cty: JWT)', sign(claims).then((inner) => signRaw({ alg: 'ES256', cty: 'JWT', kid: kid(calgary.privateKey) }, inner)), 'AUTH_JWT_HEADER_REFUSED'],
    ['typ other than JWT', sign(claims, { header: { typ: 'at+jwt' } }), 'AUTH_JWT_HEADER_REFUSED'],
    ['1 MB token', `${header}.${'A'.repeat(1024 * 1024)}.${goodSig}`, 'AUTH_JWT_MALFORMED'],
    ['duplicate claim (sub twice, validly signed)', signRaw({ alg: 'ES256', kid: kid(calgary.privateKey) }, JSON.stringify(claims).replace('"sub":"calgary-01"', '"sub":"denver-02","sub":"calgary-01"')), 'AUTH_JWT_MALFORMED'],
    ['duplicate header member', `${b64('{"alg":"ES256","alg":"none"}')}.${payload}.${goodSig}`, 'AUTH_JWT_MALFORMED'],
    ['malformed base64 (standard alphabet, padding)', `${header}.${payload}=.${goodSig}`, 'AUTH_JWT_MALFORMED'],
    ['non-canonical base64url (unused bits set)', `${header}.${payload}.${goodSig.slice(0, -1)}${flipLowBit(goodSig.at(-1)!)}`, 'AUTH_JWT_MALFORMED'],
    ['4 segments', `${good}.${goodSig}`, 'AUTH_JWT_MALFORMED'],
    ['2 segments', `${header}.${payload}`, 'AUTH_JWT_MALFORMED'],
    ['exp as a string', sign({ ...claims, exp: String(NOW + 600) }), 'AUTH_JWT_CLAIM_INVALID'],
    ['tampered payload (sub changed, signature kept)', `${header}.${b64({ ...claims, sub: 'denver-02' })}.${goodSig}`, 'AUTH_JWT_KEY_NOT_BOUND'],
    ['tampered payload (routes widened, signature kept)', `${header}.${b64({ ...claims, [CLAIM_NAMESPACE]: { routes: ['DELETE /api/replication/apply'] } })}.${goodSig}`, 'AUTH_JWT_SIGNATURE_INVALID'],
    ['alg switched to another allowed one for the same kid', `${b64({ alg: 'ES384', kid: kid(calgary.privateKey) })}.${payload}.${goodSig}`, 'AUTH_JWT_KEY_UNKNOWN'],
    ['sub names no configured peer (issuer key)', sign({ ...claims, sub: 'tokyo-05', iss: 'https://idp.example' }, { key: idp.privateKey, alg: 'EdDSA' }), 'AUTH_JWT_PEER_UNKNOWN'],
    ['issuer-bound key used with another iss', sign({ ...claims, iss: 'replguard' }, { key: idp.privateKey, alg: 'EdDSA' }), 'AUTH_JWT_KEY_NOT_BOUND'],
    ['routes claim missing', sign(Object.fromEntries(Object.entries(claims).filter(([k]) => k !== CLAIM_NAMESPACE))), 'AUTH_JWT_CLAIM_INVALID'],
    ['routes claim entry not normalised', sign({ ...claims, [CLAIM_NAMESPACE]: { routes: ['POST /api/../admin'] } }), 'AUTH_JWT_CLAIM_INVALID'],
    ['cnf with a confirmation method we cannot check', sign({ ...claims, cnf: { jkt: 'abc' } }), 'AUTH_JWT_CLAIM_INVALID'],
  ];
  for (const claim of ['iss', 'aud', 'sub', 'exp', 'iat', 'jti']) {
    const without = { ...claims };
    delete without[claim];
    cases.push([`missing ${claim}`, sign(without), 'AUTH_JWT_CLAIM_INVALID']);
  }
  for (const [name, token, reason] of cases) {
    t.equal(await reasonOf(await token), reason, name);
  }
});

t.test('the key loader', async (t) => {
  const refuse = (name: string, text: string, alg: Parameters<typeof parseKeyFile>[1], pattern: RegExp) => {
    t.throws(() => parseKeyFile(text, alg), pattern, name);
  };
  refuse('RSA 1024', pem(rsa1024.publicKey), 'RS256', /at least 2048/);
  refuse('RSA exponent 3', pem(generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 }).publicKey), 'RS256', /exponent 3/);
  refuse('an EC key declared RS256', pem(calgary.publicKey), 'RS256', /cannot verify RS256/);
  refuse('a P-256 key declared ES384', pem(calgary.publicKey), 'ES384', /curve P-256 cannot verify ES384/);
  refuse('an RSA key declared EdDSA', pem(rsa.publicKey), 'EdDSA', /cannot verify EdDSA/);
  refuse('a private key', calgary.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'ES256', /private key/);
  refuse('a symmetric JWK', JSON.stringify({ kty: 'oct', k: 'c2VjcmV0' }), 'ES256', /symmetric/);
  refuse('a JWK with use enc', JSON.stringify({ ...(await exportJWK(calgary.publicKey)), use: 'enc' }), 'ES256', /"use"/);
  refuse('a JWK declaring another alg', JSON.stringify({ ...(await exportJWK(calgary.publicKey)), alg: 'ES384' }), 'ES256', /declares alg/);
  refuse('a JWK with an x5u reference', JSON.stringify({ ...(await exportJWK(calgary.publicKey)), x5u: 'https://x.example' }), 'ES256', /x5u/);
  refuse('nothing usable', 'hello', 'ES256', /no PEM/);
  const rsaPss = generateKeyPairSync('rsa-pss', { modulusLength: 2048 });
  refuse('an RSASSA-PSS-only key', pem(rsaPss.publicKey), 'PS256', /rsaEncryption/);

  const [loaded] = parseKeyFile(pem(calgary.publicKey), 'ES256');
  t.equal(loaded!.kid, await calculateJwkThumbprint(await exportJWK(calgary.publicKey)), 'kid of a PEM key = jose’s RFC 7638 thumbprint');

  const problemPaths = (load: () => unknown): string[] => {
    try {
      load();
      return [];
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return err.problems.map((p) => p.path);
    }
  };
  t.same(problemPaths(() => loadKeySet({
    issuer: ['replguard'],
    public_keys: [
      { path: join(dir, 'calgary.pub'), alg: 'ES256', pop: 'calgary-01' },
      { path: join(dir, 'calgary.pub'), alg: 'ES256', pop: 'denver-02' },
    ],
  }, new Set(['calgary-01', 'denver-02']))), ['auth.jwt.public_keys[1].path'], 'one key bound to two POPs is refused');
  t.same(problemPaths(() => loadKeySet({ issuer: ['replguard'], public_keys: [{ path: join(dir, 'calgary.pub'), alg: 'ES256', pop: 'oslo-03' }] }, new Set(['calgary-01']))),
    ['auth.jwt.public_keys[0].pop'], 'a key bound to a POP that is not a peer');
  t.same(problemPaths(() => loadKeySet({ issuer: ['replguard'], public_keys: [{ path: join(dir, 'idp.pub'), alg: 'EdDSA', issuer: 'https://other.example' }] }, new Set())),
    ['auth.jwt.public_keys[0].issuer'], 'a key bound to an issuer that is not accepted');
  t.same(problemPaths(() => loadKeySet({ issuer: ['replguard'], public_keys: [{ path: join(dir, 'missing.pub'), alg: 'ES256', pop: 'calgary-01' }] }, new Set(['calgary-01']))),
    ['auth.jwt.public_keys[0].path'], 'a missing key file');
  t.ok(checkVerificationJwk(await exportJWK(idp.publicKey) as Record<string, unknown>, 'EdDSA'), 'Ed25519 for EdDSA');
});

t.test('the revoked-id list', async (t) => {
  const file = write('revoked.txt', '# revoked after the laptop loss\nabc-123\n\n  def-456  # trailing comment\n');
  t.same([...loadRevokedIds(file).value].sort(), ['abc-123', 'def-456']);
  t.same([...loadRevokedIds(undefined).value], []);
  t.throws(() => loadRevokedIds(write('bad.txt', `ok\n${'x'.repeat(300)}\n`)), ConfigError);
});

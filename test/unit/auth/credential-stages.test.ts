// The bearer and jwt stages composed in-process with both methods listed: one Authorization
// value, classified by shape, judged by exactly one of them.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { SignJWT } from 'jose';
import { createAuthorizationStage } from '../../../src/auth/authorization.ts';
import { createBearerVerifier } from '../../../src/auth/bearer.ts';
import { CLAIM_NAMESPACE } from '../../../src/auth/jwt-claims.ts';
import { createJwtCredential } from '../../../src/auth/jwt.ts';
import { jwkThumbprint } from '../../../src/auth/jwt-keys.ts';
import { createUrlTokenStage } from '../../../src/auth/url-token.ts';
import { generateToken } from '../../../src/cli/gen-token.ts';
import { parseConfig } from '../../../src/guard/config.ts';
import { createOperationalLog } from '../../../src/log/operational.ts';
import { newConnection, newRequestContext, type RequestContext } from '../../../src/pipeline/context.ts';
import { Rejection } from '../../../src/pipeline/reasons.ts';
import { compose } from '../../../src/pipeline/stage.ts';

const dir = mkdtempSync(join(tmpdir(), 'replguard-stages-'));
const write = (name: string, text: string, mode = 0o600) => {
  const file = join(dir, name);
  writeFileSync(file, text, { mode });
  return file;
};
const secret = generateToken();
const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
write('cert.pem', 'x', 0o644);
write('calgary.pub', keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(), 0o644);
write('token', `${secret}\n`);
const configText = `
pop_id: zurich-01
role: backup
tls: { cert_file: cert.pem, key_file: token, client_ca_file: cert.pem }
upstream: { url: "http://127.0.0.1:9" }
routes: [{ method: POST, path: /api/replication/apply }]
auth:
  methods: [bearer, jwt]
  reload_interval: 0
  jwt:
    public_keys: [{ path: calgary.pub, alg: ES256, pop: calgary-01 }]
peers:
  - { id: calgary-01, cert: { cn: calgary-01 }, token_files: [token] }
`;
const { config } = parseConfig(configText, join(dir, 'replguard.yaml'));
const log = createOperationalLog('error', new Writable({ write: (_c, _e, done) => done() }) as never);
const authorization = createAuthorizationStage({ bearer: createBearerVerifier(config, { log }), jwt: createJwtCredential(config, { log }) });
t.teardown(() => authorization.close());
const run = compose([createUrlTokenStage(), authorization], ['path']); // the test sets the routed path

function context(headers: string[], url = '/api/replication/apply'): RequestContext {
  return newRequestContext({
    id: 'test', req: { rawHeaders: headers, method: 'POST', url, headers: {} } as unknown as IncomingMessage,
    res: undefined as never, conn: newConnection({ remoteAddress: '127.0.0.1', remotePort: 1, tlsVersion: 'TLSv1.3' }),
    startedAt: 0, path: '/api/replication/apply',
  });
}

/** A JWT that the jwt stage accepts for calgary-01. */
function mint(): Promise<string> {
  return new SignJWT({
    iss: 'replguard', sub: 'calgary-01', aud: 'zurich-01', jti: 'j2', [CLAIM_NAMESPACE]: { routes: ['POST /api/replication/apply'] },
  }).setProtectedHeader({ alg: 'ES256', kid: jwkThumbprint(keys.publicKey) }).setIssuedAt().setExpirationTime('5m').sign(keys.privateKey);
}

async function outcome(ctx: RequestContext): Promise<string> {
  try {
    await run(ctx);
    return 'ok';
  } catch (err) {
    if (err instanceof Rejection) return err.reason;
    throw err;
  }
}

t.test('a shared secret is judged by bearer only, a JWT by jwt only', async (t) => {
  const s = context(['Authorization', `Bearer ${secret}`]);
  t.equal(await outcome(s), 'ok');
  t.same(s.credentials, ['bearer']);
  t.equal(s.pop, 'calgary-01');

  const token = await new SignJWT({
    iss: 'replguard', sub: 'calgary-01', aud: 'zurich-01', jti: 'j1', [CLAIM_NAMESPACE]: { routes: ['POST /api/replication/apply'] },
  }).setProtectedHeader({ alg: 'ES256', kid: jwkThumbprint(keys.publicKey) }).setIssuedAt().setExpirationTime('5m').sign(keys.privateKey);
  const j = context(['authorization', `Bearer ${token}`]);
  t.equal(await outcome(j), 'ok');
  t.same(j.credentials, ['jwt']);
  t.equal(j.jti, 'j1');

  const notJwt = context(['authorization', `Bearer ${secret.slice(0, 20)}.${secret.slice(20)}.x`]);
  t.equal(await outcome(notJwt), 'AUTH_JWT_MALFORMED', 'a dotted value is a JWT, never compared with the secrets');
  t.same(notJwt.credentials, ['jwt']);
  t.equal(await outcome(context(['authorization', `Bearer ${generateToken()}`])), 'AUTH_BEARER_INVALID');
  t.equal(await outcome(context([])), 'AUTH_CREDENTIAL_MISSING');
  t.equal(await outcome(context(['authorization', `Bearer ${secret}`], `/api/replication/apply?x=${token}`)), 'AUTH_TOKEN_IN_QUERY', 'a JWT in any query parameter');
  t.equal(await outcome(context(['authorization', `Bearer ${secret}`], '/api/replication/apply?Access-Token=abc')), 'AUTH_TOKEN_IN_QUERY');
});

t.test('a credential anywhere in the URL is refused with the code of where it is, before the credentials are read', async (t) => {
  const token = await mint();
  const cases: Array<[string, string]> = [
    [`/api/replication/${token}`, 'AUTH_TOKEN_IN_PATH'],
    [`/api/replication/${secret}`, 'AUTH_TOKEN_IN_PATH'],
    [`/api/replication/apply;access_token=${secret}`, 'AUTH_TOKEN_IN_PATH'],
    [`/api/replication/apply;x=${token}`, 'AUTH_TOKEN_IN_PATH'],
    [`/api/replication/${token.replaceAll('.', '%2E')}`, 'AUTH_TOKEN_IN_PATH'],
    [`/api/replication/apply?${token}`, 'AUTH_TOKEN_IN_QUERY'],
    [`/api/replication/apply?${secret}`, 'AUTH_TOKEN_IN_QUERY'],
    [`/api/replication/apply?access_token`, 'AUTH_TOKEN_IN_QUERY'],
    [`/api/replication/apply?x=1&jwt=${token}`, 'AUTH_TOKEN_IN_QUERY'],
    [`/api/replication/apply#access_token=${secret}`, 'AUTH_TOKEN_IN_FRAGMENT'],
    [`/api/replication/apply#${token}`, 'AUTH_TOKEN_IN_FRAGMENT'],
    [`/api/replication/apply#x?access_token=${secret}`, 'AUTH_TOKEN_IN_FRAGMENT'],
    [`/api/replication/apply?x=1#${token}`, 'AUTH_TOKEN_IN_FRAGMENT'],
    [`/api/replication/${token}?access_token=x#${token}`, 'AUTH_TOKEN_IN_PATH'],
  ];
  for (const [url, reason] of cases) {
    const ctx = context([], url);
    t.equal(await outcome(ctx), reason, url.slice(0, 60));
    t.same(ctx.credentials, [], 'no credential stage ran');
  }
  // Anything else is the route stage's to refuse.
  for (const url of ['/api/replication/apply?dry_run=1', `/api/replication/${randomUUID()}`, '/api/replication/apply#top', '/api/token/refresh']) {
    t.equal(await outcome(context([], url)), 'AUTH_CREDENTIAL_MISSING', `${url}: not a credential, so the next stage decides`);
  }
});

t.test('config rules for the credential methods', async (t) => {
  const problems = (text: string): string[] => {
    try {
      parseConfig(text, join(dir, 'replguard.yaml'));
      return [];
    } catch (err) {
      return (err as { problems: Array<{ path: string }> }).problems.map((p) => p.path);
    }
  };
  const base = configText.replace(/auth:[\s\S]*?peers:/, 'AUTH\npeers:');
  t.same(problems(base.replace('AUTH', 'auth: { methods: [bearer] }')), [], 'bearer alone: mtls is no longer required');
  t.same(problems(base.replace('AUTH', 'auth: { methods: [jwt] }')), ['auth.jwt'], 'jwt without auth.jwt');
  t.same(problems(base.replace('AUTH', 'auth: { methods: [jwt], jwt: { require_cert_binding: true, public_keys: [{ path: calgary.pub, alg: ES256, pop: calgary-01 }] } }')),
    ['auth.jwt.require_cert_binding'], 'binding needs mtls');
  t.same(problems(base.replace('AUTH', 'auth: { methods: [mtls, bearer] }').replace(', token_files: [token]', '')), ['peers[0].token_files'], 'bearer alone needs token files per peer');
  t.same(problems(base.replace('AUTH', 'auth: { methods: [jwt], jwt: { public_keys: [{ path: calgary.pub, alg: RS256, pop: calgary-01 }] } }')),
    ['auth.jwt.public_keys[0].path'], 'a key of the wrong type for its alg');
  t.same(problems(base.replace('AUTH', 'auth: { methods: [jwt], jwt: { public_keys: [{ path: calgary.pub, alg: HS256, pop: calgary-01 }] } }')),
    ['auth.jwt.public_keys[0].alg'], 'HS256 cannot even be configured');
  write('dotted', `${secret.slice(0, 30)}.${secret.slice(30)}\n`);
  t.same(problems(base.replace('AUTH', 'auth: { methods: [bearer] }').replace('token_files: [token]', 'token_files: [dotted]')), ['peers[0].token_files[0]'], 'a secret shaped like a JWT');
});

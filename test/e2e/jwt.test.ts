// JWTs through the real program, minted with the real `make-jwt`: good, bad, route not allowed,
// certificate binding, identity mismatch between certificate and token, revocation and key
// rotation by reload (SIGHUP).
import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CLAIM_NAMESPACE } from '../../src/auth/jwt-claims.ts';
import { credentialFingerprint } from '../../src/crypto/secret-compare.ts';
import { call } from '../helpers/client.ts';
import { baseConfig, runCli, startGuard, type GuardProcess } from '../helpers/guard.ts';
import { ecsProblems } from '../helpers/ecs.ts';
import { makePki } from '../helpers/pki.ts';
import { startBackup } from '../helpers/upstream.ts';

const pki = makePki([]);
const calgaryCert = pki.client('calgary-01');
const calgaryOtherCert = pki.client('calgary-01'); // same POP, another certificate
const denverCert = pki.client('denver-02');
const dir = mkdtempSync(join(tmpdir(), 'replguard-jwt-e2e-'));
mkdirSync(join(dir, 'calgary-keys'));

function keyPair(name: string, folder = dir): { key: string; pub: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = join(dir, `${name}.key`);
  writeFileSync(key, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const pub = join(folder, `${name}.pub`);
  const tmp = join(dir, `${name}.pub.tmp`);
  writeFileSync(tmp, publicKey.export({ type: 'spki', format: 'pem' }));
  renameSync(tmp, pub);
  return { key, pub };
}

const calgaryKey = keyPair('calgary-1', join(dir, 'calgary-keys'));
const denverKey = keyPair('denver');
const revokedFile = join(dir, 'revoked.txt');
writeFileSync(revokedFile, '# none yet\n');

async function makeJwt(key: string, pop: string, extra: string[] = []): Promise<string> {
  const out = join(dir, `token-${Math.random().toString(36).slice(2)}`);
  const result = await runCli(['make-jwt', '-k', key, '--pop', pop, '--audience', 'zurich-01', '--route', 'POST:/api/replication/apply', '-o', out, ...extra]);
  if (result.code !== 0) throw new Error(result.stderr);
  return readFileSync(out, 'utf8').trim();
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const count = (guard: GuardProcess) => guard.audit().filter((e) => e.event.action === 'replication-request').length;

t.test('JWT with mTLS', async (t) => {
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    routes: [{ method: 'POST', path: '/api/replication/apply' }, { method: 'POST', path: '/api/replication/other' }],
    auth: {
      methods: ['mtls', 'jwt'],
      reload_interval: '1h',
      jwt: {
        public_keys: [
          { path: join(dir, 'calgary-keys'), alg: 'ES256', pop: 'calgary-01' },
          { path: denverKey.pub, alg: 'ES256', pop: 'denver-02' },
        ],
        revoked_ids_file: revokedFile,
      },
    },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' } }, { id: 'denver-02', cert: { cn: 'denver-02' } }],
  }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  const token = await makeJwt(calgaryKey.key, 'calgary-01');
  const jti = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti as string;

  await t.test('a good token gets through (twice: the second from the cache)', async (t) => {
    const before = count(guard);
    t.equal((await call(guard.port, pki.caFile, { cert: calgaryCert, headers: bearer(token) })).status, 200);
    t.equal((await call(guard.port, pki.caFile, { cert: calgaryCert, headers: bearer(token) })).status, 200);
    const events = (await guard.waitForEvents((e) => e.event.action === 'replication-request', before + 2)).slice(before);
    for (const e of events) {
      t.equal(e.event.reason, 'FORWARDED');
      t.same(e.replguard.credentials, ['mtls', 'jwt']);
      t.equal(e.replguard.jti, jti);
      t.equal(e.replguard.token_fingerprint, credentialFingerprint(token));
    }
    t.notOk(backup.received().at(-1)!.headers.authorization, 'the token is not forwarded');
    t.notOk(JSON.stringify(guard.audit()).includes(token), 'the token is in no audit event');
  });

  await t.test('refusals, each with its reason', async (t) => {
    const before = count(guard);
    const forwarded = backup.received().length;
    const [h, p, s] = token.split('.') as [string, string, string];
    const bound = await makeJwt(calgaryKey.key, 'calgary-01', ['--bind-cert', calgaryCert.cert]);
    const denverToken = await makeJwt(denverKey.key, 'denver-02');
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`;
    const cases: Array<[string, { cert: typeof calgaryCert; token: string; path?: string }, number, string]> = [
      ['bad signature', { cert: calgaryCert, token: `${h}.${p}.${s.slice(0, -4)}${s.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}` }, 401, 'AUTH_JWT_SIGNATURE_INVALID'],
      ['alg none', { cert: calgaryCert, token: none }, 401, 'AUTH_JWT_HEADER_REFUSED'],
      ['a route the token does not list', { cert: calgaryCert, token, path: '/api/replication/other' }, 403, 'AUTH_ROUTE_NOT_ALLOWED'],
      ['certificate and token name different POPs', { cert: calgaryCert, token: denverToken }, 403, 'AUTH_IDENTITY_MISMATCH'],
      ['bound token, another certificate of the same POP', { cert: calgaryOtherCert, token: bound }, 401, 'AUTH_JWT_CERT_BINDING_MISMATCH'],
      ['not a JWT', { cert: calgaryCert, token: 'c2hhcmVkLXNlY3JldC1pcy1ub3QtYS1qd3QtYXQtYWxs' }, 401, 'AUTH_JWT_MALFORMED'],
    ];
    for (const [name, c, status] of cases) {
      const reply = await call(guard.port, pki.caFile, { cert: c.cert, headers: bearer(c.token), ...(c.path ? { path: c.path } : {}) });
      t.equal(reply.status, status, name);
    }
    const events = await guard.waitForEvents((e) => e.event.action === 'replication-request', before + cases.length);
    t.same(events.slice(before).map((e) => e.event.reason), cases.map((c) => c[3]));
    t.equal(backup.received().length, forwarded, 'nothing reached the upstream');

    const ok = await call(guard.port, pki.caFile, { cert: calgaryCert, headers: bearer(bound) });
    t.equal(ok.status, 200, 'the bound token with its own certificate');
    const thumbprint = createHash('sha256').update(new X509Certificate(readFileSync(calgaryCert.cert)).raw).digest('base64url');
    t.equal(JSON.parse(Buffer.from(bound.split('.')[1]!, 'base64url').toString()).cnf['x5t#S256'], thumbprint, 'make-jwt wrote the RFC 8705 thumbprint');
    const denverBody = JSON.stringify({ source_pop: 'denver-02', entries: [] });
    t.equal((await call(guard.port, pki.caFile, { cert: denverCert, headers: bearer(denverToken), body: denverBody })).status, 200, 'denver with its own certificate');
  });

  await t.test('revocation and key rotation take effect on SIGHUP', async (t) => {
    const reloaded = (source: string) => guard.operational().filter((l) => l.source === source && l.changed === true).length;
    const waitFor = async (cond: () => boolean) => {
      const end = Date.now() + 5000;
      while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      return cond();
    };
    // The token is in the verified cache by now; revoking it must still take effect.
    let base = reloaded('revoked JWT ids');
    writeFileSync(`${revokedFile}.tmp`, `# leaked in a ticket\n${jti}\n`);
    renameSync(`${revokedFile}.tmp`, revokedFile);
    guard.child.kill('SIGHUP');
    t.ok(await waitFor(() => reloaded('revoked JWT ids') > base), 'revoked ids reloaded');
    const before = count(guard);
    t.equal((await call(guard.port, pki.caFile, { cert: calgaryCert, headers: bearer(token) })).status, 401);
    t.equal((await guard.waitForEvents((e) => e.event.action === 'replication-request', before + 1))[before]!.event.reason, 'AUTH_JWT_REVOKED');

    // A second key for calgary-01 in its key folder; then the first one removed.
    base = reloaded('JWT public keys');
    const newKey = keyPair('calgary-2', join(dir, 'calgary-keys'));
    guard.child.kill('SIGHUP');
    t.ok(await waitFor(() => reloaded('JWT public keys') > base), 'keys reloaded');
    const oldKeyToken = await makeJwt(calgaryKey.key, 'calgary-01');
    const newKeyToken = await makeJwt(newKey.key, 'calgary-01');
    t.equal((await call(guard.port, pki.caFile, { cert: calgaryCert, headers: bearer(newKeyToken) })).status, 200, 'new key valid');
    t.equal((await call(guard.port, pki.caFile, { cert: calgaryCert, headers: bearer(oldKeyToken) })).status, 200, 'old key still valid (overlap)');
    base = reloaded('JWT public keys');
    unlinkSync(calgaryKey.pub);
    guard.child.kill('SIGHUP');
    t.ok(await waitFor(() => reloaded('JWT public keys') > base), 'keys reloaded again');
    const mark = count(guard);
    t.equal((await call(guard.port, pki.caFile, { cert: calgaryCert, headers: bearer(oldKeyToken) })).status, 401, 'removed key: refused');
    t.equal((await guard.waitForEvents((e) => e.event.action === 'replication-request', mark + 1))[mark]!.event.reason, 'AUTH_JWT_KEY_UNKNOWN');
    t.equal((await call(guard.port, pki.caFile, { cert: calgaryCert, headers: bearer(newKeyToken) })).status, 200, 'new key still valid');

    // An invalid key file keeps the old set in force.
    writeFileSync(join(dir, 'calgary-keys', 'broken.pub'), 'not a key');
    guard.child.kill('SIGHUP');
    t.ok(await waitFor(() => guard.operational().some((l) => l.source === 'JWT public keys' && l.log?.level === 'error')), 'refused and logged');
    t.equal((await call(guard.port, pki.caFile, { cert: calgaryCert, headers: bearer(newKeyToken) })).status, 200, 'the set in force is unchanged');
    unlinkSync(join(dir, 'calgary-keys', 'broken.pub'));
  });

  await t.test('every audit event written here is exact ECS (test/helpers/ecs.ts)', async (t) => {
    const events = guard.audit();
    t.ok(events.length > 0, `${events.length} events`);
    for (const e of events) t.same(ecsProblems(e), [], `${e.event.reason} (${e.event.action})`);
  });
});

t.test('make-jwt --claim prints the claim set for an external signer', async (t) => {
  const result = await runCli(['make-jwt', '--claim', '--pop', 'calgary-01', '--audience', 'zurich-01', '--route', 'POST:/api/replication/apply', '--ttl', '5m']);
  t.equal(result.code, 0);
  const claims = JSON.parse(result.stdout);
  t.equal(claims.sub, 'calgary-01');
  t.equal(claims.exp - claims.iat, 300);
  t.same(claims[CLAIM_NAMESPACE], { routes: ['POST /api/replication/apply'] });
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
  writeFileSync(join(dir, 'weak.key'), weak, { mode: 0o600 });
  const refused = await runCli(['make-jwt', '-k', join(dir, 'weak.key'), '--pop', 'calgary-01', '--audience', 'zurich-01', '--route', 'POST:/api/replication/apply']);
  t.equal(refused.code, 2, 'an RSA 1024 key cannot sign');
  t.match(refused.stderr, /at least 2048/);
});

// role: primary (the signer): its schema and defaults, its file checks, and cascade prevention
// in both directions (a key of the other role is refused, with the reason).
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { buildClaimSet } from '../../../src/auth/jwt-claims.ts';
import { mintJwt, parseMintKey } from '../../../src/auth/jwt-mint.ts';
import { generateToken } from '../../../src/cli/gen-token.ts';
import { configKeyPaths } from '../../../src/config/keys.ts';
import { ConfigError } from '../../../src/config/errors.ts';
import { parseConfig } from '../../../src/guard/config.ts';
import { parseRoleConfig } from '../../../src/cli/role-config.ts';
import { makePki } from '../../helpers/pki.ts';
import { makeEd25519Key, makeHmacKey, writeKeyFile } from '../../helpers/signing.ts';

const pki = makePki([]);
const cert = pki.client('calgary-01');
const other = pki.client('denver-02');
const hmac = writeKeyFile(makeHmacKey().text);
const ed = makeEd25519Key();
const jwtKey = writeKeyFile(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
const FILE = '/etc/replguard/primary.yaml';

function primary(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    pop_id: 'calgary-01',
    role: 'primary',
    backup: { id: 'zurich-01', url: 'https://zurich-01.example.net:8443', ca_file: pki.caFile },
    client_tls: { cert_file: cert.cert, key_file: cert.key },
    signing_keys: [hmac],
    ...overrides,
  };
}

function problems(config: Record<string, unknown> | string): Array<{ path: string; message: string }> {
  try {
    parseRoleConfig(typeof config === 'string' ? config : YAML.stringify(config), FILE);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
}

t.test('defaults: loopback 127.0.0.1:8080, TLS 1.3, 5 retries, no credential', async (t) => {
  const loaded = parseRoleConfig(YAML.stringify(primary()), FILE);
  t.equal(loaded.role, 'primary');
  if (loaded.role !== 'primary') return;
  const c = loaded.config;
  t.same(c.listen, { host: '127.0.0.1', port: 8080, unsafe_listen_non_loopback: false });
  t.same(c.backup, { id: 'zurich-01', url: 'https://zurich-01.example.net:8443', ca_file: pki.caFile, pin_sha256: [], min_tls_version: 'TLSv1.3', timeout: 30_000 });
  t.same(c.retry, { max_retries: 5 });
  t.same(c.credentials, {});
  t.equal(c.reload_interval, 60_000);
  t.equal(c.limits.max_body_bytes, 10 * 1024 * 1024);
  t.match(c.limits, { max_json_depth: 32, max_json_keys_per_object: 1000, max_json_values: 200_000 }, 'the guard\'s JSON bounds');
  const jwt = parseRoleConfig(YAML.stringify(primary({ credentials: { jwt: { key_file: jwtKey } } })), FILE);
  t.same(jwt.role === 'primary' && jwt.config.credentials.jwt, { key_file: jwtKey, ttl: 60_000, issuer: 'replguard', bind_cert: false });
  t.same(problems(primary({ signing_keys: [writeKeyFile(`whsk_${Buffer.from(ed.privateKey.export({ format: 'jwk' }).d!, 'base64url').toString('base64')}`)] })), [], 'a whsk_ key signs');
  t.same(problems(primary({ signing_keys: [writeKeyFile(ed.privatePem)] })), [], 'a PEM Ed25519 key signs');
});

t.test('cascade prevention: the role decides which keys exist, and the message says why', async (t) => {
  const guardKeys = { peers: [{ id: 'a', cert: { cn: 'a' } }], routes: [{ method: 'POST', path: '/x' }], upstream: { url: 'http://127.0.0.1:1' } };
  const refused = problems(primary(guardKeys));
  for (const key of ['peers', 'routes', 'upstream']) {
    const p = refused.find((x) => x.path === key);
    t.match(p?.message, /a guard key \(role: backup\); the signer never accepts inbound replication \(cascade prevention\)/, key);
  }
  const backupText = YAML.stringify({
    pop_id: 'zurich-01', role: 'backup',
    tls: { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.caFile },
    upstream: { url: 'http://127.0.0.1:8080' }, routes: [{ method: 'POST', path: '/api/replication/apply' }],
    backup: { id: 'geneva-01', url: 'https://geneva.example', ca_file: pki.caFile },
    signing_keys: [hmac],
    listen: { unsafe_listen_non_loopback: true },
  });
  const backupProblems = problems(backupText);
  for (const key of ['backup', 'signing_keys', 'listen.unsafe_listen_non_loopback']) {
    t.match(backupProblems.find((x) => x.path === key)?.message, /a signer key \(role: primary\); a backup only receives replication and never sends it on \(cascade prevention\)/, key);
  }
  t.match(problems(primary({ lisen: {} })).find((p) => p.path === 'lisen')?.message, /did you mean 'listen'/, 'a plain typo is still a typo');
  const token = problems(primary({ admin: { host: '127.0.0.1', token_file: '/etc/replguard/admin-token' } })).find((p) => p.path === 'admin.token_file');
  t.match(token?.message, /the signer's admin listener serves only \/healthz and \/readyz: it has no ban administration/, 'admin.token_file: not a cascade, but no use to the signer');
  t.notMatch(token?.message, /cascade/);
  let refusedAt: string | undefined;
  try {
    parseConfig(YAML.stringify(primary()), FILE);
  } catch (err) {
    if (err instanceof ConfigError) refusedAt = err.problems[0]!.path;
  }
  t.equal(refusedAt, 'role', 'the guard loader refuses a signer config');
});

t.test('refused settings name the key', async (t) => {
  const expired = writeKeyFile(await mintJwt(parseMintKey(readFileSync(jwtKey)), { ...buildClaimSet({ issuer: 'replguard', pop: 'calgary-01', audience: 'zurich-01', routes: ['POST /api/replication/apply'], ttlSeconds: 60, now: 1_000_000 }) }));
  const wrongSub = writeKeyFile(await mintJwt(parseMintKey(readFileSync(jwtKey)), buildClaimSet({ issuer: 'replguard', pop: 'denver-02', audience: 'zurich-01', routes: ['POST /api/replication/apply'], ttlSeconds: 600, now: Math.floor(Date.now() / 1000) })));
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['a non-loopback listener without the unsafe flag', primary({ listen: { host: '0.0.0.0' } }), 'listen.host'],
    ['plain http to the backup', primary({ backup: { id: 'zurich-01', url: 'http://zurich-01.example.net', ca_file: pki.caFile } }), 'backup.url'],
    ['a path in the backup URL', primary({ backup: { id: 'zurich-01', url: 'https://z.example/api', ca_file: pki.caFile } }), 'backup.url'],
    ['credentials in the backup URL', primary({ backup: { id: 'zurich-01', url: 'https://u:p@z.example', ca_file: pki.caFile } }), 'backup.url'],
    ['a bad pin', primary({ backup: { id: 'zurich-01', url: 'https://z.example', ca_file: pki.caFile, pin_sha256: ['abcd'] } }), 'backup.pin_sha256[0]'],
    ['replicating to itself', primary({ backup: { id: 'calgary-01', url: 'https://z.example', ca_file: pki.caFile } }), 'backup.id'],
    ['no skip-verification option exists', primary({ backup: { id: 'zurich-01', url: 'https://z.example', ca_file: pki.caFile, insecure_skip_verify: true } }), 'backup.insecure_skip_verify'],
    ['a CA file that is a leaf certificate', primary({ backup: { id: 'zurich-01', url: 'https://z.example', ca_file: cert.cert } }), 'backup.ca_file'],
    ['two credentials at once', primary({ credentials: { token_file: hmac, jwt: { key_file: jwtKey } } }), 'credentials'],
    ['no client certificate and no credential', primary({ client_tls: undefined }), 'client_tls'],
    ['client key of another certificate', primary({ client_tls: { cert_file: cert.cert, key_file: other.key } }), 'client_tls.key_file'],
    ['a world-readable signing key', primary({ signing_keys: [writeKeyFile(makeHmacKey().text, 0o644)] }), 'signing_keys[0]'],
    ['a public key cannot sign', primary({ signing_keys: [writeKeyFile(ed.whpk)] }), 'signing_keys[0]'],
    ['no signing key', primary({ signing_keys: [] }), 'signing_keys'],
    ['more retries than the table', primary({ retry: { max_retries: 6 } }), 'retry.max_retries'],
    ['a weak bearer secret', primary({ credentials: { token_file: writeKeyFile('password1234') } }), 'credentials.token_file'],
    ['an empty bearer file', primary({ credentials: { token_file: writeKeyFile('') } }), 'credentials.token_file'],
    ['a bearer secret past its not_after', primary({ credentials: { token_file: writeKeyFile(`${generateToken()}\nnot_after: 2020-01-31T00:00:00Z`) } }), 'credentials.token_file'],
    ['a bearer file with a second line that is not a not_after', primary({ credentials: { token_file: writeKeyFile(`${generateToken()}\nexpires soon`) } }), 'credentials.token_file'],
    ['a JWT key that is an HMAC secret', primary({ credentials: { jwt: { key_file: hmac } } }), 'credentials.jwt.key_file'],
    ['a world-readable JWT key', primary({ credentials: { jwt: { key_file: writeKeyFile(readFileSync(jwtKey, 'utf8'), 0o644) } } }), 'credentials.jwt.key_file'],
    ['an algorithm the key cannot make', primary({ credentials: { jwt: { key_file: jwtKey, alg: 'RS256' } } }), 'credentials.jwt.key_file'],
    ['a ttl over an hour', primary({ credentials: { jwt: { key_file: jwtKey, ttl: '2h' } } }), 'credentials.jwt.ttl'],
    ['bind_cert without a client certificate', primary({ client_tls: undefined, credentials: { jwt: { key_file: jwtKey, bind_cert: true } } }), 'credentials.jwt.bind_cert'],
    ['an expired static JWT', primary({ credentials: { jwt_token_file: expired } }), 'credentials.jwt_token_file'],
    ['a static JWT of another POP', primary({ credentials: { jwt_token_file: wrongSub } }), 'credentials.jwt_token_file'],
    ['a static JWT that is not one', primary({ credentials: { jwt_token_file: writeKeyFile('not-a-jwt') } }), 'credentials.jwt_token_file'],
  ];
  for (const [name, config, path] of cases) {
    const found = problems(config);
    t.ok(found.some((p) => p.path === path), `${name}: ${path} (got ${found.map((p) => p.path).join(', ') || 'none'})`);
  }
  t.same(problems(primary({ listen: { host: '0.0.0.0', unsafe_listen_non_loopback: true } })), [], 'the named risk is accepted');
  t.same(problems(primary({ credentials: { token_file: writeKeyFile(`${generateToken()}\nnot_after: 2999-01-31T00:00:00Z`) } })), [], 'a bearer secret before its not_after is accepted');
});

t.test('relative paths start at the config file\'s folder', async (t) => {
  const loaded = parseRoleConfig(YAML.stringify(primary({ backup: { id: 'zurich-01', url: 'https://z.example', ca_file: 'ca.crt' } })), join(pki.dir, 'primary.yaml'));
  t.equal(loaded.role === 'primary' && loaded.config.backup.ca_file, pki.caFile);
});

t.test('docs/signer.md documents every signer key (parity)', async (t) => {
  const doc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'signer.md'), 'utf8');
  for (const path of configKeyPaths('primary')) t.ok(doc.includes(`\`${path}\``), `docs/signer.md documents \`${path}\``);
});

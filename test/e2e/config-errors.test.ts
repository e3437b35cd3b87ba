// Every kind of bad config yields its own problem with the key path, and exit code 2,
// both from `check-config` and from `serve` (which refuses to start).
import t from 'tap';
import { chmodSync, copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { makePki } from '../helpers/pki.ts';
import { baseConfig, runCli, writeConfig } from '../helpers/guard.ts';

const pki = makePki([]);
const good = () => baseConfig(pki, 'http://127.0.0.1:8080');

async function check(config: Record<string, unknown> | string) {
  const file = typeof config === 'string' ? (() => {
    const f = join(mkdtempSync(join(tmpdir(), 'replguard-cfg-')), 'c.yaml');
    writeFileSync(f, config);
    return f;
  })() : writeConfig(config);
  return runCli(['check-config', '-c', file]);
}

t.test('a good config passes', async (t) => {
  const r = await check(good());
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /ok \(role backup, 1 peers\)/);
});

t.test('each kind of bad input: its own message with the key path, exit 2', async (t) => {
  const world = join(mkdtempSync(join(tmpdir(), 'replguard-key-')), 'server.key');
  copyFileSync(pki.server.key, world);
  chmodSync(world, 0o644);
  const notPem = join(mkdtempSync(join(tmpdir(), 'replguard-pem-')), 'server.crt');
  writeFileSync(notPem, 'hello');
  const otherKey = pki.client('x');

  const cases: Array<[string, Record<string, unknown> | string, RegExp]> = [
    ['unknown top-level key, with a suggestion', { ...good(), lisen: { port: 1 } }, /lisen: unknown key; did you mean 'listen'\?/],
    ['unknown nested key', { ...good(), tls: { ...(good().tls as object), min_verison: 'TLSv1.3' } }, /tls\.min_verison: unknown key; did you mean 'min_version'\?/],
    ['wrong type, no coercion', { ...good(), listen: { host: '127.0.0.1', port: '8443' } }, /listen\.port: expected number, received string/],
    ['missing required key', (() => { const c = good(); delete c.upstream; return c; })(), /upstream: required key is missing/],
    ['bad duration', { ...good(), upstream: { url: 'http://127.0.0.1:8080', timeout: '30 parsecs' } }, /upstream\.timeout: not a duration/],
    ['bad size', { ...good(), limits: { max_body_bytes: '10 MegaBytes' } }, /limits\.max_body_bytes: not a size/],
    ['bad enum', { ...good(), tls: { ...(good().tls as object), min_version: 'TLSv1.1' } }, /tls\.min_version: /],
    ['role from config only, and only known roles', { ...good(), role: 'BACKUP' }, /role: /],
    ['missing file', { ...good(), tls: { ...(good().tls as object), client_ca_file: '/nonexistent/ca.crt' } }, /tls\.client_ca_file: \/nonexistent\/ca\.crt does not exist/],
    ['world-readable private key', { ...good(), tls: { ...(good().tls as object), key_file: world } }, /tls\.key_file: .* readable by others .*chmod 600/],
    ['not a PEM certificate', { ...good(), tls: { ...(good().tls as object), cert_file: notPem } }, /tls\.cert_file: .*not a PEM certificate/],
    ['key does not match the certificate', { ...good(), tls: { ...(good().tls as object), key_file: otherKey.key } }, /tls\.key_file: .*does not match the certificate/],
    ['a peer selector must name exactly one field', { ...good(), peers: [{ id: 'a', cert: { cn: 'a', dns_san: 'a' } }] }, /peers\[0\]\.cert: name exactly one of cn, dns_san or uri_san/],
    ['duplicate peer ids', { ...good(), peers: [{ id: 'a', cert: { cn: 'a' } }, { id: 'a', cert: { cn: 'b' } }] }, /peers\[1\]\.id: "a" is already used by peers\[0\]/],
    ['one certificate name for two peers', { ...good(), peers: [{ id: 'a', cert: { cn: 'x' } }, { id: 'b', cert: { cn: 'x' } }] }, /peers\[1\]\.cert: cn "x" also names peers\[0\]/],
    ['bad pin', { ...good(), peers: [{ id: 'a', cert: { cn: 'a' }, cert_sha256: ['abc'] }] }, /peers\[0\]\.cert_sha256\[0\]: not a SHA-256 fingerprint/],
    ['route path not normalised', { ...good(), routes: [{ method: 'POST', path: '/api/../apply' }] }, /routes\[0\]\.path: .*not a normalised absolute path/],
    ['plaintext upstream off-host', { ...good(), upstream: { url: 'http://10.1.2.3:8080' } }, /upstream\.url: 10\.1\.2\.3 is not a loopback address.*unsafe_allow_plaintext_upstream_host/],
    ['https upstream not supported', { ...good(), upstream: { url: 'https://127.0.0.1:8080' } }, /upstream\.url: only http:\/\//],
    ['a forwarded header that looks like the guard\'s own', { ...good(), upstream: { url: 'http://127.0.0.1:8080', forward_headers: ['X_Replguard_Source_Pop'] } }, /upstream\.forward_headers\[0\]: .*looks like, a header the guard writes itself/],
    ['a forwarded identity header', { ...good(), upstream: { url: 'http://127.0.0.1:8080', forward_headers: ['traceparent', 'Client-Cert'] } }, /upstream\.forward_headers\[1\]: .*identity/],
    ['duplicate YAML keys', 'pop_id: a\npop_id: b\n', /YAML DUPLICATE_KEY/],
    ['a guard config turned primary: its guard keys are refused as cascade risks', { ...good(), role: 'primary' }, /peers: a guard key \(role: backup\); the signer never accepts inbound replication \(cascade prevention\)/],
  ];
  for (const [name, config, expected] of cases) {
    const r = await check(config);
    t.equal(r.code, 2, `${name}: exit 2`);
    t.match(r.stderr, expected, name);
  }
});

t.test('every problem is reported at once', async (t) => {
  const r = await check({ ...good(), lisen: 1, listen: { port: 'x' }, upstream: { url: 'http://127.0.0.1:1', timeout: 'soon' } });
  t.equal(r.code, 2);
  t.match(r.stderr, /lisen: unknown key/);
  t.match(r.stderr, /listen\.port: /);
  t.match(r.stderr, /upstream\.timeout: not a duration/);
});

t.test('serve refuses to start on a bad config, with exit 2', async (t) => {
  const r = await runCli(['serve', '-c', writeConfig({ ...good(), role: 'guard' })]);
  t.equal(r.code, 2);
  t.match(r.stderr, /role: /);
});

t.test('serve refuses a weak shared secret: the key, the file, the estimate, how to make one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-weak-'));
  const secretFile = (name: string, content: string) => {
    const f = join(dir, name);
    writeFileSync(f, content, { mode: 0o600 });
    return f;
  };
  const passphrase = 'CorrectHorseBatteryStapleIsMyPassword';
  const peerToken = secretFile('calgary.token', `${passphrase}\n`);
  const adminToken = secretFile('admin.token', 'qwertyuiopasdfghjklzxcvbnmqwertyuiop\n');
  const r = await runCli(['serve', '-c', writeConfig({
    ...good(),
    auth: { methods: ['mtls', 'bearer'] },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, token_files: [peerToken] }],
    admin: { host: '127.0.0.1', port: 0, token_file: adminToken },
  })]);
  t.equal(r.code, 2, 'refuses to start');
  const estimate = (key: string, file: string) => new RegExp(
    `${key.replace(/[.[\]]/g, '\\$&')}: ${file}: weak secret: estimated at \\d+ bits by a conservative estimate, at least 128 are required \\(.+\\); \`replguard gen-token --out FILE\` makes one`,
  );
  t.match(r.stderr, estimate('peers[0].token_files[0]', peerToken), 'the peer token');
  t.match(r.stderr, /peers\[0\]\.token_files\[0\]: .*dictionary words/);
  t.match(r.stderr, estimate('admin.token_file', adminToken), 'the admin token');
  t.notOk(r.stderr.includes(passphrase) || r.stderr.includes('qwerty'), 'no secret printed');
});

t.test('CLI usage errors are operator errors', async (t) => {
  t.equal((await runCli(['serve'])).code, 2, 'serve without -c');
  t.equal((await runCli(['no-such-command'])).code, 2);
  const unknownFlag = await runCli(['check-config', '--config-file', 'x']);
  t.equal(unknownFlag.code, 2);
  t.match(unknownFlag.stderr, /unknown option --config-file; did you mean --config\?/);
  const missing = await runCli(['check-config', '-c', '/nonexistent.yaml']);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /cannot read config file \/nonexistent\.yaml: ENOENT/);
});

t.test('version lists every runtime dependency', async (t) => {
  const r = await runCli(['version']);
  t.equal(r.code, 0);
  const pkg = JSON.parse((await import('node:fs')).readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8'));
  t.match(r.stdout, new RegExp(`^replguard ${pkg.version.replace(/\./g, '\\.')} `));
  for (const dep of Object.keys(pkg.dependencies)) t.match(r.stdout, new RegExp(`\\n  ${dep} \\d+\\.\\d+\\.\\d+`), dep);
});

t.test('dev-pki writes a usable PKI with private keys mode 0600', async (t) => {
  const { statSync } = await import('node:fs');
  const out = join(mkdtempSync(join(tmpdir(), 'replguard-devpki-')), 'pki');
  const r = await runCli(['dev-pki', '--out', out, '--pops', 'calgary-01,zurich-01']);
  t.equal(r.code, 0, r.stderr);
  for (const f of ['ca.crt', 'server.crt', 'calgary-01.crt', 'zurich-01.crt']) t.equal(statSync(join(out, f)).mode & 0o777, 0o644, f);
  for (const f of ['ca.key', 'server.key', 'calgary-01.key', 'zurich-01.key']) t.equal(statSync(join(out, f)).mode & 0o777, 0o600, f);
  const cfg = { ...good(), tls: { cert_file: join(out, 'server.crt'), key_file: join(out, 'server.key'), client_ca_file: join(out, 'ca.crt') } };
  t.equal((await check(cfg)).code, 0, 'a config over it passes check-config');
  t.equal((await runCli(['dev-pki', '--out', out, '--pops', 'bad pop'])).code, 2);
});

t.test('the shipped reference config passes the schema once its files exist', async (t) => {
  const { readFileSync } = await import('node:fs');
  const parsed = YAML.parse(readFileSync(join(import.meta.dirname, '..', '..', 'config', 'backup.yaml'), 'utf8'));
  parsed.tls = { ...parsed.tls, cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.caFile };
  const r = await check(parsed);
  t.equal(r.code, 0, r.stderr);
});

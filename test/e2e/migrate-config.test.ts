// migrate-config: the security review's secure example config (replication.yaml) becomes a
// replguard config of its role that check-config accepts once its files exist, listing what has
// no equivalent; check-config, given the old file, says for each old key where it moved.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { makePki } from '../helpers/pki.ts';
import { runCli } from '../helpers/guard.ts';

const pki = makePki([]);
const client = pki.client('calgary-01');

/** The review's "SECURE CONFIGURATION EXAMPLE", its paths pointed at this run's files. */
function reviewExample(role: 'primary' | 'backup', paths: { cert: string; key: string; ca: string; audit: string }): string {
  return `# /etc/clavitor/replication.yaml
pop_id: "${role === 'primary' ? 'calgary-01' : 'zurich-01'}"
region: "north-america"
role: "${role}"
backup_pop:
  id: "zurich-01"
  url: "https://zurich-01.clavitor.ai:8443" # TLS 1.3 only
# No auth_token_file here - use mTLS instead
auth:
  method: "mtls" # or "bearer"
  # For mTLS:
  mtls_cert: "${paths.cert}"
  mtls_key: "${paths.key}"
  mtls_ca: "${paths.ca}" # Verify backup cert
  # For bearer token:
  # token_file: "/etc/clavitor/replication.key"
  # token_rotation_interval: 86400 # 24 hours
replication:
  batch_size: 100
  max_retries: 5
  request_timeout: 30 # seconds
  max_request_age: 300 # 5 minutes (anti-replay)
security:
  audit_log: "${paths.audit}"
  rate_limit_per_minute: 60
  ban_after_failures: 10
  ban_duration: 3600 # 1 hour
`;
}

function write(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

t.test('a primary: migrated to a signer config that check-config accepts, with notes on what did not carry over', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-migrate-'));
  const old = write(dir, 'replication.yaml', reviewExample('primary', { cert: client.cert, key: client.key, ca: pki.caFile, audit: join(dir, 'replication.log') }));
  const out = join(dir, 'replguard.yaml');
  const r = await runCli(['migrate-config', old, '-o', out]);
  t.equal(r.code, 0, r.stderr);
  const migrated = YAML.parse(readFileSync(out, 'utf8'));
  t.same(migrated.backup, { id: 'zurich-01', url: 'https://zurich-01.clavitor.ai:8443', ca_file: pki.caFile, timeout: '30s' });
  t.same(migrated.client_tls, { cert_file: client.cert, key_file: client.key });
  t.same(migrated.retry, { max_retries: 5 });
  for (const key of ['region', 'replication.batch_size', 'replication.max_request_age', 'security.rate_limit_per_minute', 'security.audit_log', 'signing_keys']) {
    t.match(r.stderr, new RegExp(`^note: ${key.replace('.', '\\.')}[ :(]`, 'm'), `note: ${key}`);
  }
  // The one file replguard needs that the old format had none of: the signing key the note says how to make.
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', join(dir, 'calgary-01-signing.key')]);
  execFileSync('chmod', ['600', join(dir, 'calgary-01-signing.key')]);
  const check = await runCli(['check-config', '-c', out]);
  t.equal(check.code, 0, check.stderr);
  t.match(check.stdout, /ok \(role primary, backup zurich-01 at https:\/\/zurich-01\.clavitor\.ai:8443\)/);
});

t.test('a backup: migrated to a guard config that check-config accepts', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-migrate-'));
  const old = write(dir, 'replication.yaml', reviewExample('backup', { cert: pki.server.cert, key: pki.server.key, ca: pki.caFile, audit: join(dir, 'audit.ndjson') }));
  const r = await runCli(['migrate-config', old]);
  t.equal(r.code, 0, r.stderr);
  const migrated = YAML.parse(r.stdout);
  t.same(migrated.tls, { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.caFile });
  t.same(migrated.limits, { rate_per_minute: 60, ban_after_failures: 10, ban_duration: '1h' });
  t.same(migrated.replay, { max_age: '5m' });
  t.same(migrated.audit, { stdout: true, file: join(dir, 'audit.ndjson') });
  t.notOk('backup' in migrated, 'no backup: a backup never sends on');
  t.match(r.stderr, /^note: backup_pop: left out; a backup never sends replication on/m);
  t.match(r.stderr, /^note: peers: new/m);
  const check = await runCli(['check-config', '-c', write(dir, 'replguard.yaml', r.stdout)]);
  t.equal(check.code, 0, check.stderr);
  t.match(check.stderr, /warning: peers: no peers are configured/);
});

t.test('the review\'s example as printed there (its indentation lost) migrates the same', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-migrate-'));
  const nested = reviewExample('primary', { cert: client.cert, key: client.key, ca: pki.caFile, audit: '/var/log/x.log' });
  const flat = nested.split('\n').map((l) => l.trimStart()).join('\n');
  const a = await runCli(['migrate-config', write(dir, 'nested.yaml', nested)]);
  const b = await runCli(['migrate-config', write(dir, 'flat.yaml', flat)]);
  t.equal(b.code, 0, b.stderr);
  t.same(YAML.parse(b.stdout), YAML.parse(a.stdout));
});

t.test('check-config on the old file: each old key says where it moved', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-migrate-'));
  const paths = { cert: pki.server.cert, key: pki.server.key, ca: pki.caFile, audit: join(dir, 'a.log') };
  const backup = await runCli(['check-config', '-c', write(dir, 'b.yaml', reviewExample('backup', paths))]);
  t.equal(backup.code, 2);
  t.match(backup.stderr, /auth\.method: moved to auth\.methods, a list/);
  t.match(backup.stderr, /auth\.mtls_cert: moved to tls\.cert_file/);
  t.match(backup.stderr, /auth\.mtls_ca: moved to tls\.client_ca_file/);
  t.match(backup.stderr, /security: .*rate_limit_per_minute to limits\.rate_per_minute/);
  t.match(backup.stderr, /replication: .*max_request_age moved to replay\.max_age/);
  t.match(backup.stderr, /backup_pop: .*cascade prevention/);
  t.match(backup.stderr, /region: .*migrate-config/);
  const primary = await runCli(['check-config', '-c', write(dir, 'p.yaml', reviewExample('primary', paths))]);
  t.equal(primary.code, 2);
  t.match(primary.stderr, /backup_pop: moved to backup:/);
  t.match(primary.stderr, /auth: the signer's credentials moved: mtls_cert\/mtls_key to client_tls/);
  t.match(primary.stderr, /replication: max_retries moved to retry\.max_retries/);
});

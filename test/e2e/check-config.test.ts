// check-config: every problem of a config in one run (schema, files and cross-field rules
// together, each with its line), YAML syntax errors with line and column, warnings for what will
// hurt soon (a server certificate about to expire), and --print's effective config.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { makePki } from '../helpers/pki.ts';
import { baseConfig, runCli, writeConfig } from '../helpers/guard.ts';

const pki = makePki([]);
const good = () => baseConfig(pki, 'http://127.0.0.1:8080');

function writeText(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'replguard-cfg-')), 'c.yaml');
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

t.test('several mistakes of different phases: all of them in one run, each with its line', async (t) => {
  const text = [
    'pop_id: zurich-01',
    'role: backup',
    'lisen: { port: 1 }',
    'tls:',
    `  cert_file: ${pki.server.cert}`,
    `  key_file: ${pki.server.key}`,
    '  client_ca_file: /nonexistent/ca.crt',
    'upstream:',
    '  url: http://127.0.0.1:8080',
    '  timeout: soon',
    'routes:',
    '  - { method: POST, path: /api/replication/apply }',
    'store: { type: memory, url: "redis://127.0.0.1:6379/0" }',
    '',
  ].join('\n');
  const r = await runCli(['check-config', '-c', writeText(text)]);
  t.equal(r.code, 2);
  t.match(r.stderr, /lisen: unknown key; did you mean 'listen'\? \(line 3\)/, 'the schema: an unknown key');
  t.match(r.stderr, /upstream\.timeout: not a duration.*\(line 10\)/, 'the schema: a bad duration');
  t.match(r.stderr, /tls\.client_ca_file: \/nonexistent\/ca\.crt does not exist.*\(line 7\)/, 'the files, in the same run');
  t.match(r.stderr, /store\.url: only used with store\.type: redis.*\(line 13\)/, 'a cross-field rule, in the same run');
});

t.test('YAML syntax errors: every one, with line and column', async (t) => {
  const r = await runCli(['check-config', '-c', writeText('pop_id: a\nrole: backup\ntls:\n  cert_file: [x\n  key: "open\n')]);
  t.equal(r.code, 2);
  t.match(r.stderr, /YAML \w+ at line \d+, column \d+: /);
  t.notMatch(r.stderr, /line \?/);
  t.ok((r.stderr.match(/YAML \w+ at line/g) ?? []).length >= 2, 'more than the first');
});

t.test('a server certificate expiring within 14 days: a warning, still exit 0', async (t) => {
  const soon = pki.ca.issue({ commonName: 'localhost', dnsNames: ['localhost'], usage: 'server', notAfter: new Date(Date.now() + 5 * 86_400_000) });
  const dir = mkdtempSync(join(tmpdir(), 'replguard-soon-'));
  writeFileSync(join(dir, 'server.crt'), soon.certPem);
  writeFileSync(join(dir, 'server.key'), soon.keyPem, { mode: 0o600 });
  chmodSync(join(dir, 'server.key'), 0o600);
  const config = { ...good(), tls: { cert_file: join(dir, 'server.crt'), key_file: join(dir, 'server.key'), client_ca_file: pki.caFile } };
  const r = await runCli(['check-config', '-c', writeConfig(config)]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /warning: tls\.cert_file: .*the server certificate "CN=localhost" expires in [45] days .*renew it/);
  const fine = await runCli(['check-config', '-c', writeConfig(good())]);
  t.notMatch(fine.stderr, /tls\.cert_file/, 'a certificate valid for long: no warning');
});

t.test('--print: the effective config, defaults applied, units written, and it loads back the same', async (t) => {
  const r = await runCli(['check-config', '-c', writeConfig(good()), '--print']);
  t.equal(r.code, 0, r.stderr);
  const printed = YAML.parse(r.stdout) as Record<string, Record<string, unknown>>;
  t.equal(printed.upstream!.timeout, '2s', 'a duration with its unit');
  t.equal(printed.audit!.repeat_window, '10s', 'a default applied, with its unit');
  t.equal(printed.log!.level, 'info', 'a default applied');
  t.equal(printed.store!.type, 'memory');
  t.equal(printed.tls!.key_file, pki.server.key, 'a secret by its path');
  const again = await runCli(['check-config', '-c', writeText(r.stdout), '--print']);
  t.equal(again.code, 0, again.stderr);
  t.equal(again.stdout.split('\n').slice(1).join('\n'), r.stdout.split('\n').slice(1).join('\n'), 'printing the printed config changes nothing');
});

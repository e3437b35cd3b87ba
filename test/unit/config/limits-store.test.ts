// The limits and store keys: defaults, and the operator mistakes reported with their key path.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { generateToken } from '../../../src/cli/gen-token.ts';
import { ConfigError } from '../../../src/config/errors.ts';
import { parseConfig } from '../../../src/guard/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'replguard-limits-cfg-'));
for (const f of ['server.crt', 'ca.crt', 'redis-ca.crt']) writeFileSync(join(dir, f), 'x', { mode: 0o644 });
writeFileSync(join(dir, 'server.key'), 'x', { mode: 0o600 });
writeFileSync(join(dir, 'redis.pass'), `${generateToken()}\n`, { mode: 0o600 });
writeFileSync(join(dir, 'weak.pass'), 'CorrectHorseBatteryStapleIsMyPassword\n', { mode: 0o600 });
writeFileSync(join(dir, 'open.pass'), 'x', { mode: 0o644 });

const base = {
  pop_id: 'zurich-01', role: 'backup',
  tls: { cert_file: 'server.crt', key_file: 'server.key', client_ca_file: 'ca.crt' },
  upstream: { url: 'http://127.0.0.1:8080' },
  routes: [{ method: 'POST', path: '/api/replication/apply' }],
};
const parse = (extra: Record<string, unknown>) => parseConfig(YAML.stringify({ ...base, ...extra }), join(dir, 'replguard.yaml'));
const problems = (extra: Record<string, unknown>) => {
  try {
    parse(extra);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => p.path);
    throw err;
  }
};

t.test('defaults', async (t) => {
  const { limits, store } = parse({}).config;
  t.match(limits, {
    rate_per_minute: 60, rate_burst: 0, rate_burst_window: 600_000, address_rate_per_minute: 600,
    ban_after_failures: 10, failure_window: 600_000, ban_duration: 3_600_000, max_tracked_addresses: 50_000,
    max_json_depth: 32, max_json_keys_per_object: 1000, max_json_values: 200_000,
  });
  t.same(store, { type: 'memory', key_prefix: 'replguard:', command_timeout: 1000 });
});

t.test('a redis store; files resolved against the config folder', async (t) => {
  const { store } = parse({ store: { type: 'redis', url: 'rediss://redis.internal:6380/2', password_file: 'redis.pass', ca_file: 'redis-ca.crt', key_prefix: 'zurich:' } }).config;
  t.equal(store.password_file, join(dir, 'redis.pass'));
  t.equal(store.ca_file, join(dir, 'redis-ca.crt'));
});

t.test('operator mistakes, each with its key path', async (t) => {
  t.same(problems({ limits: { max_json_depth: 1 } }), ['limits.max_json_depth'], 'the body and its entries need depth 2');
  t.same(problems({ limits: { max_json_depth: 1001 } }), ['limits.max_json_depth']);
  t.same(problems({ limits: { max_json_keys_per_object: 3 } }), ['limits.max_json_keys_per_object'], 'the body has four keys of its own');
  t.same(problems({ limits: { max_json_values: 15 } }), ['limits.max_json_values']);
  t.same(problems({ limits: { max_json_values: '200000' } }), ['limits.max_json_values'], 'no coercion from a string');
  t.same(problems({ limits: { max_json_depth: 2.5 } }), ['limits.max_json_depth']);
  t.same(problems({ store: { type: 'redis' } }), ['store.url']);
  t.same(problems({ store: { type: 'redis', url: 'redis://:secret@127.0.0.1:6379' } }), ['store.url'], 'password in the URL');
  t.same(problems({ store: { type: 'redis', url: 'http://127.0.0.1:6379' } }), ['store.url']);
  t.same(problems({ store: { type: 'redis', url: 'redis://127.0.0.1:6379/x' } }), ['store.url']);
  t.same(problems({ store: { type: 'redis', url: 'redis://127.0.0.1', ca_file: 'redis-ca.crt' } }), ['store.ca_file'], 'a CA without TLS');
  t.same(problems({ store: { type: 'redis', url: 'redis://127.0.0.1', password_file: 'open.pass' } }), ['store.password_file'], 'a world-readable password file');
  t.same(problems({ store: { type: 'redis', url: 'redis://127.0.0.1', password_file: 'weak.pass' } }), ['store.password_file'], 'a weak password: a shared secret like the tokens');
  t.same(problems({ store: { url: 'redis://127.0.0.1' } }), ['store.url'], 'a URL with the memory store');
  t.same(problems({ store: { type: 'redis', url: 'redis://127.0.0.1', key_prefix: 'has space' } }), ['store.key_prefix']);
  t.same(problems({ limits: { ban_duration: '1500ms' } }), ['limits.ban_duration'], 'not whole seconds');
  t.same(problems({ limits: { failure_window: '0s' } }), ['limits.failure_window']);
  t.same(problems({ limits: { rate_per_minute: 0 } }), ['limits.rate_per_minute']);
  t.same(problems({ limits: { ban_after_failure: 3 } }), ['limits.ban_after_failure'], 'a typo is an error');
});

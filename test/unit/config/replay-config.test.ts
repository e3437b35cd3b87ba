// Config keys of signatures and replay: peers[].signing_keys and replay.*, and how they combine
// with auth.methods.
import { basename, dirname } from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { parseConfig } from '../../../src/guard/config.ts';
import { configProblems } from '../../helpers/config-problems.ts';
import { REPLAY_DEFAULTS } from '../../../src/config/schema.ts';
import { makeHmacKey, writeKeyFile } from '../../helpers/signing.ts';

const placeholder = writeKeyFile('not checked beyond readability');
const hmacFile = writeKeyFile(makeHmacKey().text);

function config(overrides: Record<string, unknown>, peer: Record<string, unknown> = {}): string {
  return YAML.stringify({
    pop_id: 'zurich-01',
    role: 'backup',
    tls: { cert_file: placeholder, key_file: placeholder, client_ca_file: placeholder },
    upstream: { url: 'http://127.0.0.1:8080' },
    routes: [{ method: 'POST', path: '/api/replication/apply' }],
    auth: { methods: ['mtls', 'signature'] },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, signing_keys: [hmacFile], ...peer }],
    ...overrides,
  });
}

const problems = (text: string) => configProblems(text);

t.test('signatures with keys: defaults apply, relative key paths resolve against the config folder', async (t) => {
  const { config: c } = parseConfig(config({}, { signing_keys: [basename(hmacFile)] }), `${dirname(hmacFile)}/replguard.yaml`);
  t.same(c.peers[0]!.signing_keys, [hmacFile]);
  t.equal(c.replay, undefined);
  t.same(REPLAY_DEFAULTS, { max_age: 300_000, max_nonces: 20_000, max_signature_entries: 8 });
  const explicit = parseConfig(config({ replay: { max_age: '2m', max_nonces: 5000, max_signature_entries: 2 } }), '/etc/replguard/replguard.yaml').config;
  t.same(explicit.replay, { max_age: 120_000, max_nonces: 5000, max_signature_entries: 2 });
});

t.test('refused combinations and values name the key', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['signature without keys for a peer', config({}, { signing_keys: [] }), 'peers[0].signing_keys'],
    ['keys without signature', config({ auth: { methods: ['mtls'] } }), 'peers[0].signing_keys'],
    ['replay without signature', config({ auth: { methods: ['mtls'] }, replay: {} }, { signing_keys: [] }), 'replay'],
    ['signature with nothing that names the POP', config({ auth: { methods: ['signature'] } }), 'auth.methods'],
    ['a world-readable HMAC secret', config({}, { signing_keys: [writeKeyFile(makeHmacKey().text, 0o644)] }), 'peers[0].signing_keys[0]'],
    ['a short HMAC secret', config({}, { signing_keys: [writeKeyFile(makeHmacKey(24).text)] }), 'peers[0].signing_keys[0]'],
    ['a missing key file', config({}, { signing_keys: ['/nonexistent/calgary.key'] }), 'peers[0].signing_keys[0]'],
    ['max_age of 0', config({ replay: { max_age: '0s' } }), 'replay.max_age'],
    ['max_age without a number', config({ replay: { max_age: 'five minutes' } }), 'replay.max_age'],
    ['max_nonces of 0', config({ replay: { max_nonces: 0 } }), 'replay.max_nonces'],
    ['max_nonces as a string', config({ replay: { max_nonces: '1000' } }), 'replay.max_nonces'],
    ['max_signature_entries of 0', config({ replay: { max_signature_entries: 0 } }), 'replay.max_signature_entries'],
    ['max_signature_entries of 9 (the scheme bound is 8)', config({ replay: { max_signature_entries: 9 } }), 'replay.max_signature_entries'],
    ['max_signature_entries of 1.5', config({ replay: { max_signature_entries: 1.5 } }), 'replay.max_signature_entries'],
    ['max_signature_entries as a string', config({ replay: { max_signature_entries: '4' } }), 'replay.max_signature_entries'],
    ['a typo under replay', config({ replay: { max_nonce: 10 } }), 'replay.max_nonce'],
  ];
  for (const [name, text, path] of cases) {
    const found = problems(text);
    t.ok(found.some((p) => p.path === path), `${name}: ${JSON.stringify(found)}`);
  }
  const typo = problems(config({ replay: { max_nonce: 10 } })).find((p) => p.path === 'replay.max_nonce');
  t.match(typo?.message, /did you mean 'max_nonces'/);
});

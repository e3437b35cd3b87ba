// upstream.forward_headers, upstream.relay_error_bodies and upstream.deduplicate: defaults, normalisation, refusals naming the key.
import t from 'tap';
import YAML from 'yaml';
import { parseConfig } from '../../../src/guard/config.ts';
import { configProblems } from '../../helpers/config-problems.ts';
import { makeHmacKey, writeKeyFile } from '../../helpers/signing.ts';

const placeholder = writeKeyFile('not checked beyond readability');

function config(upstream: Record<string, unknown>): string {
  return YAML.stringify({
    pop_id: 'zurich-01',
    role: 'backup',
    tls: { cert_file: placeholder, key_file: placeholder, client_ca_file: placeholder },
    upstream: { url: 'http://127.0.0.1:8080', ...upstream },
    routes: [{ method: 'POST', path: '/api/replication/apply' }],
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' } }],
  });
}

const problems = (text: string) => configProblems(text);

t.test('defaults: no extra forwarded header, error bodies replaced', async (t) => {
  const { config: c } = parseConfig(config({}), '/etc/replguard/replguard.yaml');
  t.same(c.upstream.forward_headers, []);
  t.equal(c.upstream.relay_error_bodies, false);
});

t.test('forward_headers are stored lower-case', async (t) => {
  const { config: c } = parseConfig(config({ forward_headers: ['X-Trace-Id', 'traceparent'], relay_error_bodies: true }), '/etc/replguard/replguard.yaml');
  t.same(c.upstream.forward_headers, ['x-trace-id', 'traceparent']);
  t.equal(c.upstream.relay_error_bodies, true);
});

t.test('refused names are operator errors naming the key and the entry', async (t) => {
  const names = ['X-Replguard-Source-Pop', 'x_forwarded_for', 'X-Forwarded_Proto', 'connection', 'authorization', 'client-cert', 'x trace', 'x_trace', 'content-type', 'x-a', 'X-A'];
  const found = problems(config({ forward_headers: names }));
  t.same(found.map((p) => p.path), names.map((_, i) => `upstream.forward_headers[${i}]`).filter((_, i) => i !== 9), 'every refused entry, each by its index');
  t.match(found[0]!.message, /guard writes itself/);
  t.match(found[8]!.message, /already forwarded/);
  t.same(problems(config({ forward_headers: 'x-a' })).map((p) => p.path), ['upstream.forward_headers'], 'a list, not a string');
  t.same(problems(config({ relay_error_bodies: 'yes' })).map((p) => p.path), ['upstream.relay_error_bodies'], 'no coercion');
});

t.test('upstream.deduplicate: defaults, and a window shorter than the nonce window is refused', async (t) => {
  const { config: off } = parseConfig(config({}), '/etc/replguard/replguard.yaml');
  t.equal(off.upstream.deduplicate, undefined, 'off by default');
  const { config: on } = parseConfig(config({ deduplicate: {} }), '/etc/replguard/replguard.yaml');
  t.same(on.upstream.deduplicate, { window: 3_600_000, max_batches: 10_000, max_answer_bytes: 4096 });
  const key = writeKeyFile(makeHmacKey().text);
  const signed = (window: string) => YAML.stringify({
    ...YAML.parse(config({ deduplicate: { window } })),
    auth: { methods: ['mtls', 'signature'] },
    replay: { max_age: '300s' },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, signing_keys: [key] }],
  });
  const short = problems(signed('599s')).filter((p) => p.path.startsWith('upstream.deduplicate'));
  t.same(short.map((p) => p.path), ['upstream.deduplicate.window']);
  t.match(short[0]!.message, /nonce window.*600s/);
  t.same(problems(signed('600s')).filter((p) => p.path.startsWith('upstream.deduplicate')), [], '2 x max_age is enough');
  t.same(problems(config({ deduplicate: { max_answer_bytes: '1MiB' } })).map((p) => p.path), ['upstream.deduplicate.max_answer_bytes']);
});

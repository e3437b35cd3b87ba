// upstream.forward_headers and upstream.relay_error_bodies: defaults, normalisation, refusals naming the key.
import t from 'tap';
import YAML from 'yaml';
import { parseConfig } from '../../../src/guard/config.ts';
import { configProblems } from '../../helpers/config-problems.ts';
import { writeKeyFile } from '../../helpers/signing.ts';

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

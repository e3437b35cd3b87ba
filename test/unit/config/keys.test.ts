import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configKeyPaths, keysUnder, suggestKey } from '../../../src/config/keys.ts';

t.test('key paths come from the schema', async (t) => {
  const paths = configKeyPaths();
  for (const p of ['pop_id', 'role', 'listen.port', 'tls.crl_file', 'peers[].cert.uri_san', 'peers[].cert_sha256', 'limits.max_body_bytes']) {
    t.ok(paths.includes(p), p);
  }
  t.same(keysUnder('listen').sort(), ['host', 'port']);
});

t.test('suggestions for typos only', async (t) => {
  t.equal(suggestKey('lisen', ['listen', 'limits']), 'listen');
  t.equal(suggestKey('min_verison', ['min_version', 'cert_file']), 'min_version');
  t.equal(suggestKey('completely_different', ['listen', 'tls']), undefined);
});

t.test('README documents every config key (parity)', async (t) => {
  const readme = readFileSync(join(import.meta.dirname, '..', '..', '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Configuration reference'));
  t.ok(section.length > 100, 'README has a Configuration reference section');
  for (const path of configKeyPaths()) {
    t.ok(section.includes(`\`${path}\``), `README documents \`${path}\``);
  }
});

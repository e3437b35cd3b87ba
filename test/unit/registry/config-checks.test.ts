// control_plane's checks (registry/config-checks.ts), as check-config and start-up run them: one
// source, registry_url's TLS material and cache, and the cache's folder. Asserted by key path.
import { chmodSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { controlPlaneSchema } from '../../../src/config/schema.ts';
import { generateRegistryKeyPair } from '../../../src/registry/keys.ts';
import { checkControlPlaneConfig } from '../../../src/registry/config-checks.ts';
import { makePki } from '../../helpers/pki.ts';
import { atomicWrite } from '../../helpers/reload.ts';

const pki = makePki([]);
const pop = pki.client('zurich-01');
const dir = mkdtempSync(join(tmpdir(), 'replguard-cp-checks-'));
const hqPub = atomicWrite(join(dir, 'hq.pub'), generateRegistryKeyPair('EdDSA').publicPem, 0o644);
const file = atomicWrite(join(dir, 'registry.jws'), 'x', 0o644);
const cacheDir = join(dir, 'cache');
mkdirSync(cacheDir, { mode: 0o700 });
const tls = { ca_file: pki.caFile, cert_file: pop.cert, key_file: pop.key };

const problems = (cp: Record<string, unknown>) => checkControlPlaneConfig({ control_plane: controlPlaneSchema.parse({ keys: [hqPub], ...cp }) }).problems.map((p) => p.path);

t.test('one source', async (t) => {
  t.same(problems({ registry_file: file }), [], 'a file');
  t.same(problems({ registry_url: 'https://hq.example.org/r.jws', tls, cache_file: join(cacheDir, 'r.cache') }), [], 'a URL with its TLS material and cache');
  t.same(problems({}), ['control_plane'], 'none');
  t.same(problems({ registry_file: file, registry_url: 'https://hq.example.org/r.jws', tls, cache_file: join(cacheDir, 'r.cache') }), ['control_plane.registry_url', 'control_plane.tls'], 'both (and tls with a file)');
});

t.test('registry_url needs https, tls and a cache', async (t) => {
  t.same(problems({ registry_url: 'http://hq.example.org/r.jws', tls, cache_file: join(cacheDir, 'r.cache') }), ['control_plane.registry_url']);
  t.same(problems({ registry_url: 'https://hq.example.org/r.jws', cache_file: join(cacheDir, 'r.cache') }), ['control_plane.tls']);
  t.same(problems({ registry_url: 'https://hq.example.org/r.jws', tls }), ['control_plane.cache_file']);
  t.same(problems({ registry_url: 'https://hq.example.org/r.jws', tls: { ...tls, key_file: pki.caFile }, cache_file: join(cacheDir, 'r.cache') }), ['control_plane.tls.key_file']);
});

t.test('the cache folder exists and only this user can write it', async (t) => {
  t.same(problems({ registry_file: file, cache_file: join(dir, 'missing', 'r.cache') }), ['control_plane.cache_file'], 'no folder');
  t.same(problems({ registry_file: file, cache_file: file }), ['control_plane.cache_file'], 'the registry file itself');
  const open = join(dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  t.same(problems({ registry_file: file, cache_file: join(open, 'r.cache') }), ['control_plane.cache_file'], 'a folder others can write');
});

// The "will hurt soon" checks with an injected clock: a CRL past its nextUpdate, certificates
// near their end (HQ's client certificate too), a signer's JWT made elsewhere that expired.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseRoleConfig } from '../../../src/cli/role-config.ts';
import { EXPIRY_WARNING_MS, soonWarnings } from '../../../src/cli/soon-checks.ts';
import { generateRegistryKeyPair } from '../../../src/registry/keys.ts';
import { loadTlsMaterial } from '../../../src/tls/material.ts';
import YAML from 'yaml';
import { makePki } from '../../helpers/pki.ts';
import { baseConfig } from '../../helpers/guard.ts';
import { atomicWrite } from '../../helpers/reload.ts';

const DAY = 86_400_000;
const pki = makePki([]);

t.test('a CRL past its nextUpdate is named, with the fix', async (t) => {
  const crl = pki.crl([]);
  const loaded = parseRoleConfig(YAML.stringify(baseConfig(pki, 'http://127.0.0.1:8080', { tls: { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.caFile, crl_file: crl } })), '/etc/replguard/c.yaml');
  if (loaded.role !== 'backup') throw new Error('backup expected');
  const now = Date.now();
  const fresh = loadTlsMaterial(loaded.config.tls, now);
  t.same(soonWarnings(loaded, { now, crls: fresh.crls }).filter((w) => w.path === 'tls.crl_file'), [], 'fresh: nothing');
  const later = now + 31 * DAY; // the test CRL's nextUpdate is 30 days on
  const warnings = soonWarnings(loaded, { now: later, crls: fresh.crls });
  t.match(warnings.find((w) => w.path === 'tls.crl_file')?.message, /past its nextUpdate .*publish one/);
});

t.test('certificates within the warning window: server and CA', async (t) => {
  const loaded = parseRoleConfig(YAML.stringify(baseConfig(pki, 'http://127.0.0.1:8080')), '/etc/replguard/c.yaml');
  t.same(soonWarnings(loaded, { now: Date.now() }), [], 'today: nothing');
  // DevCa's server certificate and CA expire at some point: look from just inside the window before the server's end.
  if (loaded.role !== 'backup') throw new Error('backup expected');
  const end = Date.parse(loadTlsMaterial(loaded.config.tls).serverCertificate.validTo);
  const warnings = soonWarnings(loaded, { now: end - EXPIRY_WARNING_MS + DAY });
  t.match(warnings.find((w) => w.path === 'tls.cert_file')?.message, /the server certificate "CN=localhost" expires in 13 days/);
  const after = soonWarnings(loaded, { now: end + DAY });
  t.match(after.find((w) => w.path === 'tls.cert_file')?.message, /expired on /);
});

t.test('the certificate this POP reaches HQ\'s registry with, within the warning window', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-soon-hq-'));
  const hqPub = atomicWrite(join(dir, 'hq.pub'), generateRegistryKeyPair('EdDSA').publicPem, 0o644);
  const client = pki.client('zurich-01');
  const controlPlane = { keys: [hqPub], registry_url: 'https://hq.example.org/registry.jws', tls: { ca_file: pki.caFile, cert_file: client.cert, key_file: client.key }, cache_file: join(dir, 'registry.cache') };
  const loaded = parseRoleConfig(YAML.stringify(baseConfig(pki, 'http://127.0.0.1:8080', { control_plane: controlPlane })), '/etc/replguard/c.yaml');
  t.same(soonWarnings(loaded, { now: Date.now() }).filter((w) => w.path.startsWith('control_plane')), [], 'today: nothing');
  const end = Date.parse(new X509Certificate(readFileSync(client.cert)).validTo);
  const warnings = soonWarnings(loaded, { now: end - EXPIRY_WARNING_MS + DAY });
  t.match(warnings.find((w) => w.path === 'control_plane.tls.cert_file')?.message, /the client certificate for HQ "CN=zurich-01" expires in 13 days/);
});

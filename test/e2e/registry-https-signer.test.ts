// Both roles under one HQ (control_plane.registry_url), through real sockets: primary (this test)
// -> the signer (the real program) -> the guard (the real program) -> the demo backup, and a small
// HQ (test/helpers/hq.ts) that both poll with their own client certificates. A registry from HQ
// that drops the backup from the primary's replicates_to stops the signer within a poll; the
// signer restarted while HQ is down serves from its cache.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { RegistryPayloadInput } from '../../src/registry/document.ts';
import { generateRegistryKeyPair, parseRegistrySigningKey } from '../../src/registry/keys.ts';
import { signRegistry } from '../../src/registry/verify.ts';
import { adminGet } from '../helpers/admin.ts';
import { baseConfig, startGuard, type AuditRecord, type GuardProcess } from '../helpers/guard.ts';
import { startHq } from '../helpers/hq.ts';
import { makePki, type CertFiles } from '../helpers/pki.ts';
import { primaryPost } from '../helpers/primary.ts';
import { atomicWrite, waitFor } from '../helpers/reload.ts';
import { makeEd25519Key, writeKeyFile } from '../helpers/signing.ts';
import { startBackup } from '../helpers/upstream.ts';

const pki = makePki([]);
const calgary = pki.client('calgary-01');
const zurich = pki.client('zurich-01');
const dir = mkdtempSync(join(tmpdir(), 'replguard-registry-https-signer-'));
const hqPair = generateRegistryKeyPair('EdDSA');
const hqKey = parseRegistrySigningKey(hqPair.privatePem);
const hqPublic = atomicWrite(join(dir, 'hq.pub'), hqPair.publicPem, 0o644);
const ed = makeEd25519Key();
const signKeyFile = writeKeyFile(ed.privatePem);
const verifyKeyFile = writeKeyFile(ed.whpk, 0o644);

const nowS = () => Math.floor(Date.now() / 1000);
const registry = (serial: number, replicatesTo: string[] = ['zurich-01']): RegistryPayloadInput => ({
  format: 1,
  serial,
  iat: nowS() - 5,
  exp: nowS() + 3600,
  pops: [
    { id: 'calgary-01', role: 'primary', replicates_to: replicatesTo, cert: { cn: 'calgary-01' } },
    { id: 'zurich-01', role: 'backup', cert: { cn: 'localhost' } },
    { id: 'oslo-01', role: 'backup', cert: { cn: 'oslo-01' } },
  ],
});
const controlPlane = (url: string, client: CertFiles) => ({
  keys: [hqPublic],
  registry_url: url,
  tls: { ca_file: pki.caFile, cert_file: client.cert, key_file: client.key, server_name: 'localhost' },
  cache_file: join(mkdtempSync(join(dir, 'c-')), 'registry.cache'),
  poll_interval: '1s',
  timeout: '3s',
});
const events = (p: GuardProcess, reason: string): AuditRecord[] => p.audit().filter((e) => e.event.reason === reason);
async function outcome(signer: GuardProcess): Promise<string> {
  const reply = await primaryPost(signer.port, JSON.stringify({ source_pop: 'calgary-01', entries: [{ id: 1 }] }));
  const id = reply.headers['x-replguard-request-id'];
  const [event] = await signer.waitForEvents((e) => e.event.action === 'replication-send' && e.replguard.request_id === id && e.replguard.final, 1);
  return `${reply.status} ${event!.event.reason}`;
}

t.test('signer and guard poll HQ with their own certificates; HQ drops the backup: the signer stops; HQ down at a restart: its cache serves', async (t) => {
  const backup = await startBackup();
  const hq = await startHq(pki);
  t.teardown(async () => {
    await hq.close();
    await backup.stop();
  });
  hq.publish(await signRegistry(registry(1), hqKey));
  const guard = await startGuard(baseConfig(pki, backup.url, {
    auth: { methods: ['mtls', 'signature'] },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, signing_keys: [verifyKeyFile] }],
    control_plane: controlPlane(hq.url, zurich),
  }));
  t.teardown(() => guard.stop());
  const signerConfig = {
    pop_id: 'calgary-01',
    role: 'primary',
    listen: { host: '127.0.0.1', port: 0 },
    backup: { id: 'zurich-01', url: `https://127.0.0.1:${guard.port}`, ca_file: pki.caFile, server_name: 'localhost', timeout: '5s' },
    client_tls: { cert_file: calgary.cert, key_file: calgary.key },
    signing_keys: [signKeyFile],
    retry: { max_retries: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    shutdown_timeout: '5s',
    control_plane: controlPlane(hq.url, calgary),
  };
  let signer = await startGuard(signerConfig);
  t.teardown(() => signer.stop());
  t.same(new Set(hq.requests().map((r) => r.cn)), new Set(['zurich-01', 'calgary-01']), 'HQ saw each POP by its certificate');
  t.equal(await outcome(signer), '200 SIGNER_DELIVERED');

  hq.publish(await signRegistry(registry(2, ['oslo-01']), hqKey));
  t.ok(await waitFor(() => events(signer, 'REGISTRY_SERVING_STOPPED').length === 1), 'the signer stopped, an alert');
  t.equal(events(signer, 'REGISTRY_SERVING_STOPPED')[0]!.replguard.registry.state, 'REGISTRY_BACKUP_NOT_LISTED');
  t.equal(await outcome(signer), '503 REGISTRY_BACKUP_NOT_LISTED');
  t.equal((await adminGet(signer.adminPort, '/readyz')).status, 503);

  hq.publish(await signRegistry(registry(3), hqKey));
  t.ok(await waitFor(() => events(signer, 'REGISTRY_SERVING_RESUMED').length === 1), 'HQ puts it back: the signer resumed');
  t.ok(await waitFor(() => events(guard, 'REGISTRY_UPDATED').some((e) => e.replguard.registry.serial === 3)), 'the guard has serial 3 too');
  await signer.stop();

  await hq.down();
  signer = await startGuard(signerConfig);
  const [started] = await signer.waitForEvents((e) => e.event.reason === 'REGISTRY_UPDATED', 1);
  t.same([started!.replguard.registry.serial, started!.replguard.registry.source], [3, 'cache'], 'the signer starts from its cache');
  t.equal(events(signer, 'REGISTRY_SOURCE_FAILED')[0]?.replguard.registry.refusal, 'REGISTRY_SOURCE_UNREACHABLE');
  t.equal(await outcome(signer), '200 SIGNER_DELIVERED', 'and delivers while HQ is down');
});

// Both roles under one HQ (control_plane.registry_url), through real sockets: primary (this test)
// -> the signer (the real program) -> the guard (the real program) -> the demo backup, and a small
// HQ (test/helpers/hq.ts) that both poll with their own client certificates. A registry from HQ
// that drops the backup from the primary's replicates_to stops the signer within a poll; the
// signer restarted while HQ is down serves from its cache.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { signRegistry } from '../../src/registry/verify.ts';
import { adminGet } from '../helpers/admin.ts';
import { baseConfig, startGuard, type GuardProcess } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { primaryPost } from '../helpers/primary.ts';
import { hqControlPlane, makeHqKey, registryEvents as events, registryPayload, startHqAndBackup } from '../helpers/registry.ts';
import { waitFor } from '../helpers/reload.ts';
import { makeEd25519Key, writeKeyFile } from '../helpers/signing.ts';

const pki = makePki([]);
const calgary = pki.client('calgary-01');
const zurich = pki.client('zurich-01');
const dir = mkdtempSync(join(tmpdir(), 'replguard-registry-https-signer-'));
const { key: hqKey, publicFile: hqPublic } = makeHqKey(dir);
const ed = makeEd25519Key();
const signKeyFile = writeKeyFile(ed.privatePem);
const verifyKeyFile = writeKeyFile(ed.whpk, 0o644);

// The signer checks the guard's certificate for localhost: zurich-01's registry entry names it so.
const registry = (serial: number, replicatesTo: string[] = ['zurich-01']) => registryPayload(serial, {
  pops: [
    { id: 'calgary-01', role: 'primary', replicates_to: replicatesTo, cert: { cn: 'calgary-01' } },
    { id: 'zurich-01', role: 'backup', cert: { cn: 'localhost' } },
    { id: 'oslo-01', role: 'backup', cert: { cn: 'oslo-01' } },
  ],
});
const controlPlane = (url: string, client: typeof calgary) => hqControlPlane(pki, url, hqPublic, client);
async function outcome(signer: GuardProcess): Promise<string> {
  const reply = await primaryPost(signer.port, JSON.stringify({ source_pop: 'calgary-01', entries: [{ id: 1 }] }));
  const id = reply.headers['x-replguard-request-id'];
  const [event] = await signer.waitForEvents((e) => e.event.action === 'replication-send' && e.replguard.request_id === id && e.replguard.final, 1);
  return `${reply.status} ${event!.event.reason}`;
}

t.test('signer and guard poll HQ with their own certificates; HQ drops the backup: the signer stops; HQ down at a restart: its cache serves', async (t) => {
  const { hq, backup } = await startHqAndBackup(t, pki);
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

// The signer (role: primary) under the control plane's registry, through real sockets: primary
// (this test) -> the signer (the real program) -> the guard (the real program, the same registry
// file) -> the demo backup. The signer starts only when the registry lists it as a primary that
// replicates to its backup.id (exit 2 otherwise); at run time a registry that drops that backup
// from its replicates_to, or makes it a backup, stops it from sending (503 to the primary, readyz
// false, an alert) until a registry confirms it again.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { RegistryPayloadInput } from '../../src/registry/document.ts';
import { generateRegistryKeyPair, parseRegistrySigningKey } from '../../src/registry/keys.ts';
import { signRegistry } from '../../src/registry/verify.ts';
import { adminGet } from '../helpers/admin.ts';
import { baseConfig, runCli, startGuard, writeConfig, type AuditRecord, type GuardProcess } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { primaryPost } from '../helpers/primary.ts';
import { atomicWrite, waitFor } from '../helpers/reload.ts';
import { makeEd25519Key, writeKeyFile } from '../helpers/signing.ts';
import { startBackup } from '../helpers/upstream.ts';
import { signerConfig as sharedSignerConfig } from '../helpers/signer-config.ts';

const pki = makePki([]);
const calgaryCert = pki.client('calgary-01');
const dir = mkdtempSync(join(tmpdir(), 'replguard-registry-signer-'));
const hq = generateRegistryKeyPair('ES256');
const hqKey = parseRegistrySigningKey(hq.privatePem);
const hqPublic = atomicWrite(join(dir, 'hq.pub'), hq.publicPem, 0o644);
const ed = makeEd25519Key();
const signKeyFile = writeKeyFile(ed.privatePem);
const verifyKeyFile = writeKeyFile(ed.whpk, 0o644);
const registryFile = join(dir, 'registry.jws');

const nowS = () => Math.floor(Date.now() / 1000);
const registry = (serial: number, calgary: Partial<RegistryPayloadInput['pops'][number]> = {}): RegistryPayloadInput => ({
  format: 1,
  serial,
  iat: nowS() - 5,
  exp: nowS() + 3600,
  pops: [
    { id: 'calgary-01', role: 'primary', replicates_to: ['zurich-01'], cert: { cn: 'calgary-01' }, ...calgary },
    { id: 'zurich-01', role: 'backup', cert: { cn: 'localhost' } },
    { id: 'oslo-01', role: 'backup', cert: { cn: 'oslo-01' } },
  ],
});
const writeRegistry = async (payload: RegistryPayloadInput) => atomicWrite(registryFile, await signRegistry(payload, hqKey), 0o644);
const controlPlane = { keys: [hqPublic], registry_file: registryFile, poll_interval: '1s' };

const signerConfig = (backupUrl: string) =>
  sharedSignerConfig(pki, backupUrl, calgaryCert, { signing_keys: [signKeyFile], retry: { max_retries: 0 }, shutdown_timeout: '5s', control_plane: controlPlane });

const batch = () => JSON.stringify({ source_pop: 'calgary-01', entries: [{ id: 1 }] });
const events = (p: GuardProcess, reason: string): AuditRecord[] => p.audit().filter((e) => e.event.reason === reason);
async function outcome(signer: GuardProcess): Promise<string> {
  const reply = await primaryPost(signer.port, batch());
  const id = reply.headers['x-replguard-request-id'];
  const [event] = await signer.waitForEvents((e) => e.event.action === 'replication-send' && e.replguard.request_id === id && e.replguard.final, 1);
  return `${reply.status} ${event!.event.reason}`;
}

t.test('start-up: the signer needs the registry to list it as a primary replicating to backup.id', async (t) => {
  const cases: Array<[string, RegistryPayloadInput, string]> = [
    ['zurich-01 not in its replicates_to', registry(1, { replicates_to: ['oslo-01'] }), 'REGISTRY_BACKUP_NOT_LISTED'],
    ['listed as a backup', registry(1, { role: 'backup', replicates_to: [] }), 'REGISTRY_ROLE_MISMATCH'],
  ];
  for (const [name, payload, code] of cases) {
    await writeRegistry(payload);
    const result = await runCli(['serve', '-c', writeConfig(signerConfig('https://127.0.0.1:9'))]);
    t.equal(result.code, 2, `${name}: exit 2`);
    t.match(result.stderr, code, `${name}: the reason is named`);
  }
});

t.test('run time: signer and guard under one registry; a registry that drops the backup stops the signer', async (t) => {
  await writeRegistry(registry(1));
  const backup = await startBackup();
  t.teardown(() => backup.stop());
  const guard = await startGuard(baseConfig(pki, backup.url, {
    auth: { methods: ['mtls', 'signature'] },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, signing_keys: [verifyKeyFile] }],
    control_plane: controlPlane,
  }));
  t.teardown(() => guard.stop());
  const signer = await startGuard(signerConfig(`https://127.0.0.1:${guard.port}`));
  t.teardown(() => signer.stop());

  t.equal(await outcome(signer), '200 SIGNER_DELIVERED');
  t.equal((await adminGet(signer.adminPort, '/readyz')).status, 200);

  // HQ moves calgary-01 to oslo-01: the signer stops sending to zurich-01; the guard still serves.
  await writeRegistry(registry(2, { replicates_to: ['oslo-01'] }));
  t.ok(await waitFor(() => events(signer, 'REGISTRY_SERVING_STOPPED').length === 1), 'the signer stopped, an alert');
  t.equal(events(signer, 'REGISTRY_SERVING_STOPPED')[0]!.replguard.registry.state, 'REGISTRY_BACKUP_NOT_LISTED');
  t.ok(await waitFor(() => events(guard, 'REGISTRY_UPDATED').some((e) => e.replguard.registry.serial === 2)), 'the guard took serial 2 too');
  t.equal(events(guard, 'REGISTRY_SERVING_STOPPED').length, 0, 'the guard is still a backup');
  const delivered = backup.received().length;
  t.equal(await outcome(signer), '503 REGISTRY_BACKUP_NOT_LISTED');
  t.equal((await adminGet(signer.adminPort, '/readyz')).status, 503);
  t.equal(backup.received().length, delivered, 'nothing was sent');

  // HQ puts it back.
  await writeRegistry(registry(3));
  t.ok(await waitFor(() => events(signer, 'REGISTRY_SERVING_RESUMED').length === 1), 'the signer resumed');
  t.equal(await outcome(signer), '200 SIGNER_DELIVERED');
  t.equal(backup.received().length, delivered + 1);
});

// Role confirmation by the control plane's signed registry (control_plane, registry file source),
// through the real guard: a registry that does not confirm the guard's role, or is refused, stops
// it at start-up with exit 2 and the reason; at run time a new registry that says otherwise stops
// serving (readyz false, every request 503 with the reason, on an open keep-alive connection too,
// an alert), a tampered, unknown-key or older document is refused and the one in force kept, and a
// registry past its expiry and grace fails closed until a newer one arrives.
import { mkdtempSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { RegistryPayloadInput } from '../../src/registry/document.ts';
import { generateRegistryKeyPair, parseRegistrySigningKey } from '../../src/registry/keys.ts';
import { signRegistry } from '../../src/registry/verify.ts';
import { adminGet } from '../helpers/admin.ts';
import { call } from '../helpers/client.ts';
import { baseConfig, runCli, startGuard, writeConfig, type AuditRecord, type GuardProcess } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { parsePrometheusText, sampleValue } from '../helpers/prometheus.ts';
import { nowS, registryPayload } from '../helpers/registry.ts';
import { atomicWrite, waitFor } from '../helpers/reload.ts';
import { startBackup } from '../helpers/upstream.ts';

const pki = makePki([]);
const calgary = pki.client('calgary-01');
const dir = mkdtempSync(join(tmpdir(), 'replguard-registry-e2e-'));
const hq = generateRegistryKeyPair('EdDSA');
const hqKey = parseRegistrySigningKey(hq.privatePem);
const hqPublic = atomicWrite(join(dir, 'hq.pub'), hq.publicPem, 0o644);
const stranger = parseRegistrySigningKey(generateRegistryKeyPair('ES256').privatePem);

const registry = registryPayload;
const asPrimary = (serial: number) => registry(serial, { pops: [{ id: 'zurich-01', role: 'primary', cert: { cn: 'zurich-01' } }] });

async function writeRegistry(file: string, payload: RegistryPayloadInput, key = hqKey): Promise<void> {
  atomicWrite(file, await signRegistry(payload, key), 0o644);
}

function guardConfig(upstream: string, registryFile: string, controlPlane: Record<string, unknown> = {}) {
  return baseConfig(pki, upstream, { control_plane: { keys: [hqPublic], registry_file: registryFile, poll_interval: '1s', ...controlPlane } });
}

const metric = async (guard: GuardProcess, name: string, labels: Record<string, string> = {}) => sampleValue(parsePrometheusText((await adminGet(guard.adminPort, '/metrics')).body), name, labels);
const registryEvents = (guard: GuardProcess, reason: string): AuditRecord[] => guard.audit().filter((e) => e.event.reason === reason);
const reasonOf = async (guard: GuardProcess, agent?: Agent): Promise<string> => {
  const before = guard.audit().length;
  const reply = await call(guard.port, pki.caFile, { cert: calgary, ...(agent ? { agent } : {}) });
  await guard.waitForEvents((e) => e.http !== undefined, guard.audit().slice(0, before).filter((e) => e.http !== undefined).length + 1);
  const event = guard.audit().filter((e) => e.http !== undefined).at(-1)!;
  return `${reply.status} ${event.event.reason}`;
};

t.test('start-up: the guard starts only when the registry confirms its pop_id and role (exit 2 otherwise)', async (t) => {
  const backup = await startBackup();
  t.teardown(() => backup.stop());
  const file = join(dir, 'start.jws');
  const cases: Array<[string, () => Promise<void>, string]> = [
    ['the registry says zurich-01 is a primary', () => writeRegistry(file, asPrimary(1)), 'REGISTRY_ROLE_MISMATCH'],
    ['the registry does not list zurich-01', () => writeRegistry(file, registry(1, { pops: [{ id: 'oslo-01', role: 'backup', cert: { cn: 'oslo-01' } }] })), 'REGISTRY_POP_UNLISTED'],
    ['signed by a key HQ does not hold', () => writeRegistry(file, registry(1), stranger), 'REGISTRY_KEY_UNKNOWN'],
    ['expired', () => writeRegistry(file, registry(1, { iat: nowS() - 7200, exp: nowS() - 60 })), 'REGISTRY_EXPIRED'],
    ['tampered (payload swapped under the signature)', async () => {
      const [h, , s] = (await signRegistry(registry(1), hqKey)).split('.');
      const forged = Buffer.from(JSON.stringify(asPrimary(1))).toString('base64url');
      atomicWrite(file, `${h}.${forged}.${s}`, 0o644);
    }, 'REGISTRY_SIGNATURE_INVALID'],
  ];
  for (const [name, write, code] of cases) {
    await write();
    const result = await runCli(['serve', '-c', writeConfig(guardConfig(backup.url, file))]);
    t.equal(result.code, 2, `${name}: exit 2`);
    t.match(result.stderr, code, `${name}: the reason is named`);
  }
});

t.test('run time: a registry that stops confirming the role stops serving, on open connections too; refused documents keep the one in force', async (t) => {
  const backup = await startBackup();
  t.teardown(() => backup.stop());
  const file = join(dir, 'run.jws');
  await writeRegistry(file, registry(5));
  const guard = await startGuard(guardConfig(backup.url, file));
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(async () => {
    agent.destroy();
    await guard.stop();
  });
  // stdout (audit) and stderr (the ready line) are two pipes: the event may be read just after.
  await guard.waitForEvents((e) => e.event.reason === 'REGISTRY_UPDATED', 1);
  t.equal(registryEvents(guard, 'REGISTRY_UPDATED')[0]?.replguard.registry.serial, 5, 'the start-up registry is audited');
  t.equal((await adminGet(guard.adminPort, '/readyz')).status, 200);
  t.equal(await reasonOf(guard, agent), '200 FORWARDED', 'served on a keep-alive connection');
  t.equal(await metric(guard, 'replguard_registry_serial'), 5, 'the serial in force is a metric');
  t.ok((await metric(guard, 'replguard_registry_expiry_seconds')) > 3000, 'and its expiry');

  // Refused: tampered, unknown key, older serial, the same serial with other content. Each is
  // audited once with its code and the guard keeps serving under serial 5.
  const refusals: Array<[string, () => Promise<void>]> = [
    ['REGISTRY_SIGNATURE_INVALID', async () => {
      const [h, , s] = (await signRegistry(registry(6), hqKey)).split('.');
      atomicWrite(file, `${h}.${Buffer.from(JSON.stringify(asPrimary(6))).toString('base64url')}.${s}`, 0o644);
    }],
    ['REGISTRY_KEY_UNKNOWN', () => writeRegistry(file, asPrimary(7), stranger)],
    ['REGISTRY_ROLLBACK', () => writeRegistry(file, asPrimary(4))],
    ['REGISTRY_SERIAL_REUSED', () => writeRegistry(file, asPrimary(5))],
  ];
  for (const [code, write] of refusals) {
    await write();
    t.ok(await waitFor(() => registryEvents(guard, 'REGISTRY_REFUSED').some((e) => e.replguard.registry.refusal === code)), `${code} audited`);
    const event = registryEvents(guard, 'REGISTRY_REFUSED').find((e) => e.replguard.registry.refusal === code)!;
    t.equal(event.event.kind, 'alert');
    t.equal(event.replguard.registry.serial, 5, 'the serial in force is kept');
    t.equal(await reasonOf(guard, agent), '200 FORWARDED', `${code}: still serving`);
  }

  // A verified registry that says zurich-01 is a primary: serving stops at once.
  await writeRegistry(file, asPrimary(8));
  t.ok(await waitFor(() => registryEvents(guard, 'REGISTRY_SERVING_STOPPED').length === 1), 'an alert: serving stopped');
  const stopped = registryEvents(guard, 'REGISTRY_SERVING_STOPPED')[0]!;
  t.equal(stopped.event.kind, 'alert');
  t.equal(stopped.replguard.registry.state, 'REGISTRY_ROLE_MISMATCH');
  const updated = registryEvents(guard, 'REGISTRY_UPDATED').at(-1)!;
  t.same([updated.replguard.registry.serial, updated.replguard.registry.previous_serial], [8, 5]);
  t.same(updated.replguard.registry.removed, ['calgary-01'], 'what changed is audited');
  t.same(updated.replguard.registry.changed, ['zurich-01']);
  t.equal((await adminGet(guard.adminPort, '/readyz')).status, 503, 'readyz false');
  t.equal(await metric(guard, 'replguard_registry_serial'), 8);
  t.equal(await metric(guard, 'replguard_registry_events_total', { reason: 'REGISTRY_REFUSED', refusal: 'REGISTRY_ROLLBACK' }), 1, 'each refusal counted by its code');
  t.equal(await metric(guard, 'replguard_registry_events_total', { reason: 'REGISTRY_SERVING_STOPPED', refusal: 'none' }), 1);
  t.equal(await reasonOf(guard, agent), '503 REGISTRY_ROLE_MISMATCH', 'refused on the connection opened before');
  t.equal(await reasonOf(guard), '503 REGISTRY_ROLE_MISMATCH', 'refused on a new connection');
  const forwarded = backup.received().length;

  // HQ corrects it: serving resumes.
  await writeRegistry(file, registry(9));
  t.ok(await waitFor(() => registryEvents(guard, 'REGISTRY_SERVING_RESUMED').length === 1), 'serving resumed');
  t.equal((await adminGet(guard.adminPort, '/readyz')).status, 200);
  t.equal(await reasonOf(guard, agent), '200 FORWARDED');
  t.equal(backup.received().length, forwarded + 1, 'nothing reached the backup while serving was stopped');
});

t.test('expiry: a warning before, alerts during the grace, then every request refused until a newer registry', async (t) => {
  const backup = await startBackup();
  t.teardown(() => backup.stop());
  const file = join(dir, 'expiry.jws');
  await writeRegistry(file, registry(1, { exp: nowS() + 7200 }));
  const guard = await startGuard(guardConfig(backup.url, file, { expiry_grace: '3s', expiry_warning: '1h' }));
  t.teardown(() => guard.stop());
  t.equal(registryEvents(guard, 'REGISTRY_EXPIRING').length, 0, 'no warning: it expires in 2h');
  // The next one expires 8 s from now, with a 3 s grace: inside the warning window at once.
  await writeRegistry(file, registry(2, { exp: nowS() + 8 }));
  t.ok(await waitFor(() => registryEvents(guard, 'REGISTRY_UPDATED').some((e) => e.replguard.registry.serial === 2)), 'serial 2 in force');
  t.ok(await waitFor(() => registryEvents(guard, 'REGISTRY_EXPIRING').length >= 1), 'warned before it expires');
  t.equal(await reasonOf(guard), '200 FORWARDED');
  t.ok(await waitFor(() => registryEvents(guard, 'REGISTRY_EXPIRING').some((e) => /expired at/.test(e.replguard.detail)), 30_000), 'an alert during the grace');
  t.ok(await waitFor(() => registryEvents(guard, 'REGISTRY_SERVING_STOPPED').length === 1, 30_000), 'serving stopped after the grace');
  t.equal(registryEvents(guard, 'REGISTRY_SERVING_STOPPED')[0]!.replguard.registry.state, 'REGISTRY_EXPIRED');
  t.equal(await reasonOf(guard), '503 REGISTRY_EXPIRED');
  t.equal((await adminGet(guard.adminPort, '/readyz')).status, 503);
  // An expired document is no way back; a newer, current one is.
  await writeRegistry(file, registry(3, { iat: nowS() - 7200, exp: nowS() - 1 }));
  t.ok(await waitFor(() => registryEvents(guard, 'REGISTRY_REFUSED').some((e) => e.replguard.registry.refusal === 'REGISTRY_EXPIRED')), 'an expired new document is refused');
  t.equal(await reasonOf(guard), '503 REGISTRY_EXPIRED');
  await writeRegistry(file, registry(4));
  t.ok(await waitFor(() => registryEvents(guard, 'REGISTRY_SERVING_RESUMED').length === 1), 'a newer registry: serving again');
  t.equal(await reasonOf(guard), '200 FORWARDED');
});

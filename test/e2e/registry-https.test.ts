// The registry from HQ over HTTPS (control_plane.registry_url), through real sockets: a small HQ
// (test/helpers/hq.ts) that requires a client certificate of the test CA -> the real guard. HQ
// refuses a POP without a certificate it trusts (the guard does not start); a trusted POP gets
// the registry, then 304s to its conditional polls; tampered, unknown-key and older documents and
// HQ errors are audited and the copy in force is kept, on disk too; with HQ down the copy in force
// serves until its exp plus grace, then every request is refused until HQ is back.
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { signRegistry } from '../../src/registry/verify.ts';
import { adminGet } from '../helpers/admin.ts';
import { call } from '../helpers/client.ts';
import { baseConfig, runCli, startGuard, writeConfig, type AuditRecord, type GuardProcess } from '../helpers/guard.ts';
import { makePki, type CertFiles } from '../helpers/pki.ts';
import { parsePrometheusText, sampleValue } from '../helpers/prometheus.ts';
import { cachedSerial, hqControlPlane, makeHqKey, nowS, registryEvents as events, registryPayload as registry, startHqAndBackup } from '../helpers/registry.ts';
import { waitFor } from '../helpers/reload.ts';

const pki = makePki([]);
const calgary = pki.client('calgary-01');
const zurich = pki.client('zurich-01');
const dir = mkdtempSync(join(tmpdir(), 'replguard-registry-https-'));
const { key: hqKey, publicFile: hqPublic } = makeHqKey(dir);
const { key: stranger } = makeHqKey(dir, 'ES256');
const asPrimary = (serial: number) => registry(serial, { pops: [{ id: 'zurich-01', role: 'primary', cert: { cn: 'zurich-01' } }] });

function guardConfig(upstream: string, url: string, client: CertFiles = zurich, controlPlane: Record<string, unknown> = {}) {
  return baseConfig(pki, upstream, { control_plane: hqControlPlane(pki, url, hqPublic, client, controlPlane) });
}

const reasonOf = async (guard: GuardProcess): Promise<string> => {
  const before = guard.audit().filter((e) => e.http !== undefined).length;
  const reply = await call(guard.port, pki.caFile, { cert: calgary });
  await guard.waitForEvents((e) => e.http !== undefined, before + 1);
  return `${reply.status} ${guard.audit().filter((e) => e.http !== undefined).at(-1)!.event.reason}`;
};

t.test('HQ requires this POP\'s client certificate: one it does not trust gets no registry, and the guard does not start', async (t) => {
  const { hq, backup } = await startHqAndBackup(t, pki);
  hq.publish(await signRegistry(registry(1), hqKey));
  const result = await runCli(['serve', '-c', writeConfig(guardConfig(backup.url, hq.url, pki.foreignClient('zurich-01')))]);
  t.equal(result.code, 2, 'exit 2');
  t.match(result.stderr, /control_plane\.registry_url/, 'the key is named');
  t.match(result.stderr, /REGISTRY_SOURCE_TLS/, 'and why');
  t.same(hq.requests(), [], 'HQ served nothing to a POP without a trusted certificate');
  const failed = result.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditRecord).filter((e) => e.event.reason === 'REGISTRY_SOURCE_FAILED');
  t.equal(failed.length, 1, 'the failure is audited');
  t.same([failed[0]?.event.kind, failed[0]?.replguard.registry.refusal], ['alert', 'REGISTRY_SOURCE_TLS']);
});

t.test('an HQ this POP must not trust (another name, another CA): no registry is taken from it, on either runtime', async (t) => {
  const { hq, backup } = await startHqAndBackup(t, pki);
  hq.publish(await signRegistry(registry(1), hqKey));
  const otherCa = makePki([]).caFile;
  const cases: Array<[string, Record<string, unknown>]> = [
    ['a certificate that does not name control_plane.tls.server_name', { server_name: 'hq.invalid' }],
    ['a certificate of another CA than control_plane.tls.ca_file', { ca_file: otherCa }],
  ];
  for (const [name, tls] of cases) {
    const controlPlane = hqControlPlane(pki, hq.url, hqPublic, zurich);
    const config = baseConfig(pki, backup.url, { control_plane: { ...controlPlane, tls: { ...(controlPlane.tls as Record<string, unknown>), ...tls } } });
    const result = await runCli(['serve', '-c', writeConfig(config)]);
    t.equal(result.code, 2, `${name}: exit 2`);
    t.match(result.stderr, /REGISTRY_SOURCE_TLS/, `${name}: refused at TLS`);
  }
  t.same(hq.requests(), [], 'HQ was never asked: no request went over an unverified connection');
});

t.test('polled with conditional requests: 304 keeps the copy, refused documents and HQ errors are audited and change nothing, HQ down serves until expiry', async (t) => {
  const { hq, backup } = await startHqAndBackup(t, pki);
  hq.publish(await signRegistry(registry(5), hqKey));
  const config = guardConfig(backup.url, hq.url, zurich, { expiry_grace: '2s', expiry_warning: '1s' });
  const cacheFile = (config.control_plane as { cache_file: string }).cache_file;
  const guard = await startGuard(config);
  t.teardown(() => guard.stop());
  const [first] = await guard.waitForEvents((e) => e.event.reason === 'REGISTRY_UPDATED', 1);
  t.same([first!.replguard.registry.serial, first!.replguard.registry.source], [5, 'url'], 'serial 5 from HQ in force');
  t.equal(hq.requests()[0]?.cn, 'zurich-01', 'HQ saw this POP\'s client certificate');
  t.equal(hq.requests()[0]?.ifNoneMatch, undefined, 'the first request is not conditional');
  t.equal(cachedSerial(cacheFile), 5, 'the cache holds it');
  t.equal(statSync(cacheFile).mode & 0o777, 0o600, 'mode 0600');
  t.equal(await reasonOf(guard), '200 FORWARDED');

  const etag = hq.etag();
  t.ok(await waitFor(() => hq.requests().filter((r) => r.status === 304).length >= 2), 'later polls are conditional and get 304');
  t.ok(hq.requests().slice(1).every((r) => r.ifNoneMatch === etag && r.status === 304), 'each with the ETag of the copy in force');
  t.equal(events(guard, 'REGISTRY_UPDATED').length, 1, 'a 304 changes nothing');

  const refusals: Array<[string, () => Promise<string>]> = [
    ['REGISTRY_SIGNATURE_INVALID', async () => {
      const [h, , s] = (await signRegistry(registry(6), hqKey)).split('.');
      return `${h}.${Buffer.from(JSON.stringify(asPrimary(6))).toString('base64url')}.${s}`;
    }],
    ['REGISTRY_KEY_UNKNOWN', () => signRegistry(asPrimary(7), stranger)],
    ['REGISTRY_ROLLBACK', () => signRegistry(asPrimary(4), hqKey)],
  ];
  for (const [code, make] of refusals) {
    hq.publish(await make());
    t.ok(await waitFor(() => events(guard, 'REGISTRY_REFUSED').some((e) => e.replguard.registry.refusal === code)), `${code} audited`);
    const refused = events(guard, 'REGISTRY_REFUSED').find((e) => e.replguard.registry.refusal === code)!;
    t.same([refused.event.kind, refused.replguard.registry.source, refused.replguard.registry.serial], ['alert', 'url', 5]);
    t.equal(await reasonOf(guard), '200 FORWARDED', `${code}: still serving under serial 5`);
    t.equal(cachedSerial(cacheFile), 5, `${code}: the cache still holds serial 5`);
  }
  t.equal(events(guard, 'REGISTRY_REFUSED').filter((e) => e.replguard.registry.refusal === 'REGISTRY_ROLLBACK').length, 1, 'one event per refused content, not one per poll');

  hq.failWith(500);
  t.ok(await waitFor(() => events(guard, 'REGISTRY_SOURCE_FAILED').some((e) => e.replguard.registry.refusal === 'REGISTRY_SOURCE_STATUS')), 'an HQ error is audited');
  t.equal(await reasonOf(guard), '200 FORWARDED', 'and changes nothing');
  hq.failWith(undefined);

  // A new registry that runs out soon: in force, cached; then HQ goes down.
  hq.publish(await signRegistry(registry(8, { exp: nowS() + 7 }), hqKey));
  t.ok(await waitFor(() => events(guard, 'REGISTRY_UPDATED').some((e) => e.replguard.registry.serial === 8)), 'serial 8 in force');
  t.equal(cachedSerial(cacheFile), 8, 'and cached');
  await hq.down();
  t.ok(await waitFor(() => events(guard, 'REGISTRY_SOURCE_FAILED').some((e) => e.replguard.registry.refusal === 'REGISTRY_SOURCE_UNREACHABLE')), 'HQ down is audited');
  t.equal(await reasonOf(guard), '200 FORWARDED', 'the copy in force serves while HQ is down');
  const metrics = parsePrometheusText((await adminGet(guard.adminPort, '/metrics')).body);
  t.equal(sampleValue(metrics, 'replguard_registry_events_total', { reason: 'REGISTRY_SOURCE_FAILED', refusal: 'REGISTRY_SOURCE_UNREACHABLE' }), 1, 'counted by its code');
  t.equal(sampleValue(metrics, 'replguard_registry_serial'), 8, 'serial 8 still in force');
  t.ok(await waitFor(() => events(guard, 'REGISTRY_SERVING_STOPPED').length === 1, 20_000), 'past exp and grace: serving stops');
  t.equal(events(guard, 'REGISTRY_SERVING_STOPPED')[0]!.replguard.registry.state, 'REGISTRY_EXPIRED');
  t.equal(events(guard, 'REGISTRY_SOURCE_FAILED').filter((e) => e.replguard.registry.refusal === 'REGISTRY_SOURCE_UNREACHABLE').length, 1, 'one event for the whole outage');
  t.equal(await reasonOf(guard), '503 REGISTRY_EXPIRED', 'fails closed');
  t.equal((await adminGet(guard.adminPort, '/readyz')).status, 503);

  hq.publish(await signRegistry(registry(9), hqKey));
  await hq.up();
  t.ok(await waitFor(() => events(guard, 'REGISTRY_SERVING_RESUMED').length === 1), 'HQ back with a newer registry: serving again');
  t.equal(await reasonOf(guard), '200 FORWARDED');
  t.equal(cachedSerial(cacheFile), 9);
});

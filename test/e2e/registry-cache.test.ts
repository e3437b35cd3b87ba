// The registry's on-disk cache (control_plane.cache_file) across restarts of the real guard, with
// a small HQ (test/helpers/hq.ts): HQ down at start-up, the cached copy serves (and HQ, back,
// takes over); an older document from HQ or from a file after a restart is a rollback, even when
// the cached newer one has expired (then the guard does not start); a cache that does not verify
// is refused, audited and never used; a cache that cannot be written is an alert, the new
// registry in force regardless.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { signRegistry } from '../../src/registry/verify.ts';
import { call } from '../helpers/client.ts';
import { baseConfig, runCli, startGuard, writeConfig, type AuditRecord, type GuardProcess } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { hqControlPlane, makeHqKey, nowS, registryEvents as events, registryPayload as registry, startHqAndBackup } from '../helpers/registry.ts';
import { atomicWrite, waitFor } from '../helpers/reload.ts';
import { startBackup } from '../helpers/upstream.ts';

const pki = makePki([]);
const calgary = pki.client('calgary-01');
const zurich = pki.client('zurich-01');
const dir = mkdtempSync(join(tmpdir(), 'replguard-registry-cache-'));
const { key: hqKey, publicFile: hqPublic } = makeHqKey(dir, 'ES256');

const freshCache = () => join(mkdtempSync(join(dir, 'c-')), 'registry.cache');
const urlSource = (url: string, cacheFile: string) => hqControlPlane(pki, url, hqPublic, zurich, { cache_file: cacheFile });
const auditOf = (stdout: string): AuditRecord[] => stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditRecord);
const inForce = (guard: GuardProcess) => events(guard, 'REGISTRY_UPDATED').at(-1)!.replguard.registry as { serial: number; source: string };
/** The guard, once its start-up events are all read (REGISTRY_UPDATED is the last of them). */
const started = async (guard: GuardProcess): Promise<GuardProcess> => {
  await guard.waitForEvents((e) => e.event.reason === 'REGISTRY_UPDATED', 1);
  return guard;
};
const forwarded = async (guard: GuardProcess) => (await call(guard.port, pki.caFile, { cert: calgary })).status;

t.test('HQ down at start-up: the cached registry serves; HQ back takes over; an older document from HQ after a restart is a rollback', async (t) => {
  const { hq, backup } = await startHqAndBackup(t, pki);
  const cacheFile = freshCache();
  const config = baseConfig(pki, backup.url, { control_plane: urlSource(hq.url, cacheFile) });

  hq.publish(await signRegistry(registry(3), hqKey));
  let guard = await started(await startGuard(config));
  t.same(inForce(guard), { ...inForce(guard), serial: 3, source: 'url' }, 'serial 3 from HQ');
  await guard.stop();

  await hq.down();
  guard = await started(await startGuard(config));
  t.teardown(() => guard.stop());
  const failed = events(guard, 'REGISTRY_SOURCE_FAILED');
  t.same(failed.map((e) => e.replguard.registry.refusal), ['REGISTRY_SOURCE_UNREACHABLE'], 'HQ down at start-up is audited');
  t.same([inForce(guard).serial, inForce(guard).source], [3, 'cache'], 'the cached serial 3 is in force');
  t.equal(await forwarded(guard), 200, 'and serves');

  hq.publish(await signRegistry(registry(4), hqKey));
  await hq.up();
  t.ok(await waitFor(() => inForce(guard).serial === 4), 'HQ back: serial 4 in force');
  t.equal(inForce(guard).source, 'url');
  await guard.stop();

  // HQ (or whoever answers in its name) now serves serial 2, validly signed and unexpired: after
  // the restart it is still older than serial 4, which the cache remembers.
  hq.publish(await signRegistry(registry(2), hqKey));
  guard = await started(await startGuard(config));
  const refused = events(guard, 'REGISTRY_REFUSED');
  t.same(refused.map((e) => [e.replguard.registry.refusal, e.replguard.registry.source]), [['REGISTRY_ROLLBACK', 'url']], 'the older document is refused at start-up');
  t.same([inForce(guard).serial, inForce(guard).source], [4, 'cache'], 'serial 4 stays in force');
  t.equal(await forwarded(guard), 200);
  // Polls see the same refused document: no new event for it.
  const polled = hq.requests().length;
  t.ok(await waitFor(() => hq.requests().length >= polled + 2), 'polled again');
  t.equal(events(guard, 'REGISTRY_REFUSED').length, 1, 'one event for one refused content');
});

t.test('the rollback floor outlives the cached copy: an expired newer cache still refuses an older document (no start)', async (t) => {
  const { hq, backup } = await startHqAndBackup(t, pki);
  const cacheFile = freshCache();
  // What a guard wrote while serial 10 was in force; it has expired since.
  atomicWrite(cacheFile, JSON.stringify({ replguard_registry_cache: 1, registry: await signRegistry(registry(10, { iat: nowS() - 7200, exp: nowS() - 60 }), hqKey) }), 0o600);
  hq.publish(await signRegistry(registry(9), hqKey));
  const result = await runCli(['serve', '-c', writeConfig(baseConfig(pki, backup.url, { control_plane: urlSource(hq.url, cacheFile) }))]);
  t.equal(result.code, 2, 'exit 2');
  t.match(result.stderr, /REGISTRY_ROLLBACK/, 'the reason');
  t.match(result.stderr, /serial 10/, 'and the floor');
  t.same(auditOf(result.stdout).filter((e) => e.event.reason === 'REGISTRY_REFUSED').map((e) => e.replguard.registry.refusal), ['REGISTRY_ROLLBACK']);
});

t.test('a file source after a restart: an older file is a rollback too, the cached newer one serves', async (t) => {
  const backup = await startBackup();
  t.teardown(() => backup.stop());
  const cacheFile = freshCache();
  const file = join(dir, 'file-source.jws');
  const config = baseConfig(pki, backup.url, { control_plane: { keys: [hqPublic], registry_file: file, cache_file: cacheFile, poll_interval: '1s' } });
  atomicWrite(file, await signRegistry(registry(6), hqKey), 0o644);
  let guard = await started(await startGuard(config));
  t.equal(inForce(guard).serial, 6);
  await guard.stop();
  atomicWrite(file, await signRegistry(registry(5), hqKey), 0o644);
  guard = await started(await startGuard(config));
  t.teardown(() => guard.stop());
  t.same(events(guard, 'REGISTRY_REFUSED').map((e) => [e.replguard.registry.refusal, e.replguard.registry.source]), [['REGISTRY_ROLLBACK', 'file']]);
  t.same([inForce(guard).serial, inForce(guard).source], [6, 'cache']);
  t.equal(await forwarded(guard), 200);
});

t.test('a cache that does not verify is refused and never used', async (t) => {
  const { hq, backup } = await startHqAndBackup(t, pki);
  const cacheFile = freshCache();
  const config = baseConfig(pki, backup.url, { control_plane: urlSource(hq.url, cacheFile) });
  hq.publish(await signRegistry(registry(20), hqKey));
  const guard = await started(await startGuard(config));
  await guard.stop();
  // Someone with access to the disk swaps the payload (serial 21, this POP a primary) under the signature.
  const cache = JSON.parse(readFileSync(cacheFile, 'utf8')) as { registry: string };
  const [h, , s] = cache.registry.split('.');
  const forged = Buffer.from(JSON.stringify(registry(21, { pops: [{ id: 'zurich-01', role: 'primary', cert: { cn: 'zurich-01' } }] }))).toString('base64url');
  atomicWrite(cacheFile, JSON.stringify({ ...cache, registry: `${h}.${forged}.${s}` }), 0o600);
  await hq.down();
  const result = await runCli(['serve', '-c', writeConfig(config)]);
  t.equal(result.code, 2, 'HQ down and no usable cache: no start');
  t.match(result.stderr, /REGISTRY_SOURCE_UNREACHABLE/);
  const refused = auditOf(result.stdout).filter((e) => e.event.reason === 'REGISTRY_REFUSED');
  t.same(refused.map((e) => [e.replguard.registry.refusal, e.replguard.registry.source]), [['REGISTRY_SIGNATURE_INVALID', 'cache']], 'the forged cache is audited');

  atomicWrite(cacheFile, 'not a cache', 0o600);
  await hq.up();
  const again = await started(await startGuard(config));
  t.teardown(() => again.stop());
  t.same(events(again, 'REGISTRY_REFUSED').map((e) => e.replguard.registry.refusal), ['REGISTRY_MALFORMED'], 'garbage is refused');
  t.same([inForce(again).serial, inForce(again).source], [20, 'url'], 'HQ serves; the cache is rewritten');
  t.match(readFileSync(cacheFile, 'utf8'), /"replguard_registry_cache":1/);
});

t.test('a cache that cannot be written: an alert, the new registry in force all the same, and the cache written again once it can be', async (t) => {
  const backup = await startBackup();
  t.teardown(() => backup.stop());
  const cacheFile = freshCache();
  const file = join(dir, 'file-source-unwritable.jws');
  const config = baseConfig(pki, backup.url, { control_plane: { keys: [hqPublic], registry_file: file, cache_file: cacheFile, poll_interval: '1s' } });
  atomicWrite(file, await signRegistry(registry(6), hqKey), 0o644);
  const guard = await started(await startGuard(config));
  t.teardown(() => guard.stop());
  // A folder where the cache file was: the atomic rename over it fails (root or not).
  rmSync(cacheFile);
  mkdirSync(cacheFile);
  writeFileSync(join(cacheFile, 'in-the-way'), 'x');
  atomicWrite(file, await signRegistry(registry(7), hqKey), 0o644);
  t.ok(await waitFor(() => events(guard, 'REGISTRY_CACHE_WRITE_FAILED').length === 1, 20_000), 'REGISTRY_CACHE_WRITE_FAILED written');
  const failed = events(guard, 'REGISTRY_CACHE_WRITE_FAILED')[0]!;
  t.equal(failed.event.kind, 'alert');
  t.equal(failed.replguard.registry.serial, 7, 'the new registry is the one in force');
  t.match(failed.replguard.detail, /registry\.cache: E[A-Z]+/, 'the file and the error code');
  // The cache is written before REGISTRY_UPDATED is: wait for that event rather than race it.
  t.ok(await waitFor(() => inForce(guard).serial === 7, 20_000), 'REGISTRY_UPDATED names serial 7');
  t.equal(await forwarded(guard), 200, 'serving goes on');
  rmSync(cacheFile, { recursive: true });
  const cached = () => {
    try {
      return typeof JSON.parse(readFileSync(cacheFile, 'utf8')).registry === 'string';
    } catch {
      return false;
    }
  };
  t.ok(await waitFor(cached, 20_000), 'the cache is written again at a later poll');
  t.equal(events(guard, 'REGISTRY_CACHE_WRITE_FAILED').length, 1, 'one alert for the outage, not one per poll');
});

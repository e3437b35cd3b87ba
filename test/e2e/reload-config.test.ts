// The config file reloads without a restart, under a steady stream of authorised requests: a
// removed peer is refused at its next request (also on a keep-alive connection opened before),
// an added route is served, a smaller body limit applies, an unknown key is refused with the
// config in force kept, and a changed listen.port is reported and kept while the rest applies.
import t from 'tap';
import YAML from 'yaml';
import { call } from '../helpers/client.ts';
import { baseConfig, startGuard } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { atomicWrite, keepAliveClient, reloadErrors, reloads, sighup, startTraffic, waitFor } from '../helpers/reload.ts';
import { startBackup } from '../helpers/upstream.ts';

const pki = makePki([]);
const calgary = pki.client('calgary-01');
const denver = pki.client('denver-02');
const APPLY = { method: 'POST', path: '/api/replication/apply' };
const OTHER = { method: 'POST', path: '/api/replication/other' };
const CALGARY = { id: 'calgary-01', cert: { cn: 'calgary-01' } };
const DENVER = { id: 'denver-02', cert: { cn: 'denver-02' } };

t.test('config reload under a steady stream', async (t) => {
  const backup = await startBackup();
  const base = baseConfig(pki, backup.url, { auth: { methods: ['mtls'], reload_interval: '1h' }, peers: [CALGARY, DENVER] });
  const guard = await startGuard(base);
  const rewrite = (changes: Record<string, unknown>) => atomicWrite(guard.configFile, YAML.stringify({ ...base, ...changes }), 0o644);
  const traffic = startTraffic(guard.port, pki.caFile, () => ({ cert: calgary }));
  t.teardown(async () => {
    await traffic.stop();
    await guard.stop();
    await backup.stop();
  });
  await traffic.more(3);
  const otherOutcomes = async (n: number) => (await guard.waitForEvents((e) => e.event.action === 'replication-request' && e.url?.path === OTHER.path, n)).map((e) => e.event.reason);
  const reasons = (pop: string) => guard.audit().filter((e) => e.event.action === 'replication-request' && e.tls?.client?.subject?.includes(pop)).map((e) => e.event.reason);

  await t.test('a removed peer is refused at its next request, on its open connection too', async (t) => {
    const open = keepAliveClient(guard.port, pki.caFile, denver);
    t.teardown(() => open.close());
    t.equal((await open.post()).status, 200, 'denver-02 served before');
    const count = reloads(guard, 'config').length;
    rewrite({ peers: [CALGARY] });
    t.ok(await waitFor(() => reloads(guard, 'config').length === count + 1), 'the file change reloaded the config');
    const next = await open.post();
    t.same([next.status, next.reused, next.connection], [403, true, 'close'], 'refused on the same keep-alive connection, which is closed');
    t.equal((await call(guard.port, pki.caFile, { cert: denver })).status, 403, 'and on a new one');
    await guard.waitForEvents((e) => e.event.reason === 'AUTH_PEER_UNKNOWN', 2);
    t.same(reasons('denver-02'), ['FORWARDED', 'AUTH_PEER_UNKNOWN', 'AUTH_PEER_UNKNOWN']);
  });

  await t.test('an added route is served; a smaller body limit applies', async (t) => {
    await call(guard.port, pki.caFile, { cert: calgary, path: OTHER.path });
    t.same(await otherOutcomes(1), ['ROUTE_NOT_FOUND'], 'not a route yet');
    const count = reloads(guard, 'config').length;
    rewrite({ peers: [CALGARY], routes: [APPLY, OTHER], limits: { max_body_bytes: '1KiB' } });
    await sighup(guard, 'config');
    t.ok(await waitFor(() => reloads(guard, 'config').length === count + 1), 'reloaded');
    // The demo backup itself answers 404 for any other path: "served" is the guard forwarding it.
    await call(guard.port, pki.caFile, { cert: calgary, path: OTHER.path });
    t.same(await otherOutcomes(2), ['ROUTE_NOT_FOUND', 'FORWARDED'], 'the new route is forwarded to the backup');
    const big = JSON.stringify({ source_pop: 'calgary-01', entries: [{ data: 'x'.repeat(2048) }] });
    t.equal((await call(guard.port, pki.caFile, { cert: calgary, body: big })).status, 413, 'a body over the new limit is refused');
  });

  await t.test('an unknown key: refused, the config in force kept, and retried on the next trigger', async (t) => {
    const errors = reloadErrors(guard, 'config').length;
    rewrite({ peers: [CALGARY, DENVER], routes: [APPLY], limits: { max_body_byte: '1MiB' } });
    await sighup(guard, 'config');
    t.ok(await waitFor(() => reloadErrors(guard, 'config').length > errors), 'an operational error');
    t.match(reloadErrors(guard, 'config').at(-1)!.problems, /limits\.max_body_byte: unknown key/, 'naming the key');
    t.equal(guard.child.exitCode, null, 'still running');
    await call(guard.port, pki.caFile, { cert: calgary, path: OTHER.path });
    t.same(await otherOutcomes(3), ['ROUTE_NOT_FOUND', 'FORWARDED', 'FORWARDED'], 'the route of the config in force is still served');
    t.equal((await call(guard.port, pki.caFile, { cert: denver })).status, 403, 'the peer list in force is unchanged');
    await sighup(guard, 'config');
    t.ok(await waitFor(() => reloadErrors(guard, 'config').length > errors + 1), 'refused again on the next trigger, not forgotten');
  });

  await t.test('listen.port changed: reported and kept, the rest applies', async (t) => {
    const count = reloads(guard, 'config').length;
    const warnings = () => guard.operational().filter((l) => l.source === 'config' && l.key === 'listen.port').length;
    rewrite({ listen: { host: '127.0.0.1', port: 1 }, peers: [CALGARY, DENVER], routes: [APPLY] });
    await sighup(guard, 'config');
    t.ok(await waitFor(() => reloads(guard, 'config').length === count + 1), 'reloaded');
    t.equal(warnings(), 1, 'listen.port reported with its key path');
    t.equal(guard.operational().filter((l) => l.source === 'config' && l.key === 'listen.port').at(-1)!.log.level, 'warn');
    t.equal((await call(guard.port, pki.caFile, { cert: calgary })).status, 200, 'still served on the port in force');
    t.equal((await call(guard.port, pki.caFile, { cert: denver })).status, 200, 'denver-02 is a peer again: the rest of the file applied');
    await sighup(guard, 'config');
    t.equal(warnings(), 1, 'an unchanged file is not reported again');
  });

  t.ok(await traffic.more(2));
  t.same(traffic.failures, [], 'no request of the stream failed');
  t.ok(traffic.sent() > 20, `the stream kept flowing (${traffic.sent()} requests)`);
});

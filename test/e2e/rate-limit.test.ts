// Rate limits through the real program: the 61st request of a POP in a minute is 429 with
// Retry-After; the burst allowance; the per-address limit before authentication.
import { Agent } from 'node:https';
import t from 'tap';
import { baseConfig, startGuard } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { post } from '../helpers/tls-client.ts';
import { startBackup } from '../helpers/upstream.ts';

t.test('rate limits', async (t) => {
  const pki = makePki([]);
  const calgary = pki.client('calgary-01');
  const denver = pki.client('denver-02');
  const peers = [{ id: 'calgary-01', cert: { cn: 'calgary-01' } }, { id: 'denver-02', cert: { cn: 'denver-02' } }];
  const backup = await startBackup();
  t.teardown(() => backup.stop());

  await t.test('defaults: 60 a minute per POP, the 61st is 429 with Retry-After', async (t) => {
    const guard = await startGuard(baseConfig(pki, backup.url, { peers, limits: {} }));
    t.teardown(() => guard.stop());
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());
    const before = backup.received().length;
    const statuses: number[] = [];
    for (let i = 0; i < 60; i++) statuses.push((await post(guard.port, pki.caFile, { cert: calgary, agent })).status);
    t.same([...new Set(statuses)], [200], '60 served');
    const over = await post(guard.port, pki.caFile, { cert: calgary, agent });
    t.equal(over.status, 429);
    const retryAfter = Number(over.headers['retry-after']);
    t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter} s`);
    t.same(JSON.parse(over.body).error, 'too_many_requests');
    const [event] = await guard.waitForEvents((e) => e.event.reason === 'LIMIT_RATE_EXCEEDED', 1);
    t.equal(event!.replguard.pop, 'calgary-01');
    t.equal(event!.http.response.status_code, 429);
    t.equal(backup.received().length, before + 60, 'the 61st never reached the backup');
    t.equal((await post(guard.port, pki.caFile, { cert: denver })).status, 200, 'another POP has its own budget');
  });

  await t.test('burst allowance on top, and the per-address limit before authentication', async (t) => {
    const guard = await startGuard(baseConfig(pki, backup.url, {
      peers,
      limits: { rate_per_minute: 2, rate_burst: 1, rate_burst_window: '1h', address_rate_per_minute: 5 },
    }));
    t.teardown(() => guard.stop());
    const a = (cert: typeof calgary, localAddress = '127.0.0.1') => post(guard.port, pki.caFile, { cert, localAddress }).then((r) => r.status);
    t.same([await a(calgary), await a(calgary), await a(calgary)], [200, 200, 200], 'two a minute plus one from the burst');
    t.equal(await a(calgary), 429);
    t.equal(await a(denver), 200, 'fifth request from this address');
    const over = await post(guard.port, pki.caFile, { cert: denver });
    t.equal(over.status, 429, 'sixth from this address, whichever POP');
    t.ok(Number(over.headers['retry-after']) >= 1);
    t.equal(await a(denver, '127.0.0.8'), 200, 'the same POP from another address');
    const reasons = (await guard.waitForAudit(7)).map((e) => e.event.reason);
    t.same(reasons, ['FORWARDED', 'FORWARDED', 'FORWARDED', 'LIMIT_RATE_EXCEEDED', 'FORWARDED', 'LIMIT_ADDRESS_RATE_EXCEEDED', 'FORWARDED']);
    t.notOk(guard.audit()[5]!.replguard.pop, 'the address limit comes before authentication');
  });
});

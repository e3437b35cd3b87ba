// Two guard replicas (the real program) sharing one real Redis: limits and bans are shared,
// a ban is started once and lifted from either admin listener; Redis stopped mid-run: 503 and
// not ready; Redis back: served again without a restart.
// A replay sent to the second replica is refused: the nonce store is shared too.
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { baseConfig, startGuard, type GuardProcess } from '../helpers/guard.ts';
import { admin } from '../helpers/admin-bans.ts';
import { makePki } from '../helpers/pki.ts';
import { post } from '../helpers/tls-client.ts';
import { startRedis } from '../helpers/redis.ts';
import { startBackup } from '../helpers/upstream.ts';
import { call } from '../helpers/client.ts';
import { makeHmacKey, writeKeyFile } from '../helpers/signing.ts';
import { parseSignKey } from '../../src/replay/keys.ts';
import { signatureHeaders } from '../../src/replay/signing.ts';


async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  let value = await fn();
  while (!ok(value) && Date.now() < deadline) {
    await sleep(100);
    value = await fn();
  }
  return value;
}

t.test('two guards sharing one Redis', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const pki = makePki([]);
  const calgary = pki.client('calgary-01');
  const denver = pki.client('denver-02');
  const backup = await startBackup();
  t.teardown(() => backup.stop());
  const config = baseConfig(pki, backup.url, {
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' } }, { id: 'denver-02', cert: { cn: 'denver-02' } }],
    limits: { rate_per_minute: 4 },
    store: { type: 'redis', url: redis.url, key_prefix: 'e2e:' },
  });
  const guards: GuardProcess[] = [await startGuard(config), await startGuard(config)];
  const [a, b] = guards as [GuardProcess, GuardProcess];
  t.teardown(async () => {
    for (const g of guards) await g.stop();
  });
  for (const g of guards) {
    const ready = await eventually(() => admin(g.adminPort, 'GET', '/readyz'), (r) => r.status === 200);
    t.equal(ready.status, 200, 'ready once Redis is connected');
  }

  await t.test('the POP rate limit is shared', async (t) => {
    const statuses = [];
    for (const g of [a, b, a, b, a]) statuses.push((await post(g.port, pki.caFile, { cert: denver })).status);
    t.same(statuses, [200, 200, 200, 200, 429], 'the fifth of rate_per_minute: 4, spread over both replicas');
  });

  await t.test('failures on both replicas ban the POP on both; lifted through either', async (t) => {
    for (let i = 0; i < 10; i++) {
      const g = i % 2 === 0 ? a : b;
      t.equal((await post(g.port, pki.caFile, { cert: calgary, localAddress: '127.0.0.2', path: '/api/replication/%2e%2e/apply' })).status, 400);
    }
    const isPopStart = (e: any) => e.event.reason === 'LIMIT_BAN_STARTED' && e.replguard.ban.key === 'pop:calgary-01';
    await eventually(async () => [...a.audit(), ...b.audit()].filter(isPopStart).length, (n) => n >= 1, 5000);
    await sleep(200);
    t.equal([...a.audit(), ...b.audit()].filter(isPopStart).length, 1, 'one ban, one start event across the replicas');

    const received = backup.received().length;
    for (const g of [a, b]) {
      const r = await post(g.port, pki.caFile, { cert: calgary, localAddress: '127.0.0.3' });
      t.ok(r.status === 0 || r.status === 403, `refused by each replica (${r.status || 'cut at the TLS layer'})`);
    }
    t.equal(backup.received().length, received, 'nothing of the banned POP reached the backup');

    const listed = await admin(b.adminPort, 'GET', '/bans');
    t.ok(listed.body.bans.some((x: any) => x.key === 'pop:calgary-01'), 'listed by either replica');
    t.equal((await admin(a.adminPort, 'DELETE', '/bans/pop:calgary-01')).status, 200);
    for (const g of [a, b]) {
      const r = await eventually(() => post(g.port, pki.caFile, { cert: calgary, localAddress: '127.0.0.3' }), (x) => x.status === 200, 5000);
      t.equal(r.status, 200, 'served again by each replica');
    }
  });

  await t.test('Redis stopped mid-run: 503 and not ready; Redis back: served again', async (t) => {
    await redis.stop();
    const received = backup.received().length;
    for (const g of [a, b]) {
      const ready = await eventually(() => admin(g.adminPort, 'GET', '/readyz'), (r) => r.status === 503, 5000);
      t.equal(ready.status, 503, 'not ready');
      const r = await post(g.port, pki.caFile, { cert: denver, localAddress: '127.0.0.9' });
      t.equal(r.status, 503);
      t.ok(Number(r.headers['retry-after']) >= 1, 'with Retry-After');
      const [event] = await g.waitForEvents((e) => e.event.reason === 'LIMIT_STORE_UNAVAILABLE', 1);
      t.equal(event!.event.kind, 'alert');
    }
    t.equal(backup.received().length, received, 'nothing forwarded without its checks');

    await redis.start();
    for (const g of [a, b]) {
      const ready = await eventually(() => admin(g.adminPort, 'GET', '/readyz'), (r) => r.status === 200);
      t.equal(ready.status, 200, 'ready again by itself');
      t.equal((await post(g.port, pki.caFile, { cert: denver, localAddress: '127.0.0.9' })).status, 200, 'served again');
    }
  });
});

t.test('a replay sent to the other replica is refused (shared nonces in Redis)', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const pki = makePki([]);
  const calgary = pki.client('calgary-01');
  const hmac = makeHmacKey();
  const key = parseSignKey(hmac.text);
  const backup = await startBackup();
  t.teardown(() => backup.stop());
  const config = baseConfig(pki, backup.url, {
    auth: { methods: ['mtls', 'signature'] },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, signing_keys: [writeKeyFile(hmac.text)] }],
    store: { type: 'redis', url: redis.url, key_prefix: 'e2e-replay:' },
  });
  const guards: GuardProcess[] = [await startGuard(config), await startGuard(config)];
  const [a, b] = guards as [GuardProcess, GuardProcess];
  t.teardown(async () => {
    for (const g of guards) await g.stop();
  });
  for (const g of guards) await eventually(() => admin(g.adminPort, 'GET', '/readyz'), (r) => r.status === 200);

  const id = 'e2e-cross-replica-replay-0001';
  const ts = String(Math.floor(Date.now() / 1000));
  const body = Buffer.from(JSON.stringify({ source_pop: 'calgary-01', entries: [{ id: 1 }], timestamp: Number(ts), nonce: id }));
  const headers = signatureHeaders([key], body, id, ts);
  t.equal((await call(a.port, pki.caFile, { cert: calgary, body, headers })).status, 200, 'accepted by replica A');
  const replay = await call(b.port, pki.caFile, { cert: calgary, body, headers });
  t.equal(replay.status, 401, 'the same request sent to replica B is refused');
  const [event] = await b.waitForEvents((e) => e.replguard?.request_id === replay.headers['x-replguard-request-id'], 1);
  t.equal(event!.event.reason, 'REPLAY_NONCE_REUSED');
  t.equal(backup.received().length, 1, 'the backup applied it once');
});

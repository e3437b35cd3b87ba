// The delivery records of upstream.deduplicate, in memory and in a real redis-server, held to
// the same rules: one claim wins, a released record of the same batch is claimable again, only
// a pending record of the same digest is settled, an expired record is gone; memory refuses when
// full rather than forgetting a live record; Redis stopped: the store is unavailable.
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { configSchema } from '../../../src/config/schema.ts';
import { createOperationalLog } from '../../../src/log/operational.ts';
import { createSharedState, loadRedisDriver } from '../../../src/store/create.ts';
import { MemoryDeliveryStore } from '../../../src/store/memory-deliveries.ts';
import { StoreUnavailableError, type DeliveryStore } from '../../../src/store/store.ts';
import { startRedis } from '../../helpers/redis.ts';

const log = createOperationalLog('error');

async function sameRules(t: Test, a: DeliveryStore, b: DeliveryStore, expire: (ms: number) => Promise<void>) {
  const key = `calgary-01:id:${Math.random().toString(36).slice(2)}`;
  const claims = await Promise.all([a.claim(key, 'd1', 60_000), b.claim(key, 'd1', 60_000)]);
  t.same(claims.map((c) => c.kind).sort(), ['claimed', 'existing'], 'of two replicas, one claims');
  t.same(await b.claim(key, 'd1', 60_000), { kind: 'existing', record: { state: 'pending', digest: 'd1' } });

  await b.settle(key, { state: 'answered', digest: 'other', status: 200 });
  t.same(await a.claim(key, 'd1', 60_000), { kind: 'existing', record: { state: 'pending', digest: 'd1' } }, 'another digest settles nothing');
  await a.settle(key, { state: 'released', digest: 'd1' });
  t.same(await b.claim(key, 'other', 60_000), { kind: 'existing', record: { state: 'released', digest: 'd1' } }, 'released: claimable by the same batch only');
  t.same(await b.claim(key, 'd1', 60_000), { kind: 'claimed' }, 'released: the same batch claims it again');
  await b.settle(key, { state: 'answered', digest: 'd1', status: 201, contentType: 'application/json', body: Buffer.from('{"ok":1}').toString('base64') });
  await a.settle(key, { state: 'unknown', digest: 'd1' });
  t.same(await a.claim(key, 'd1', 60_000), { kind: 'existing', record: { state: 'answered', digest: 'd1', status: 201, contentType: 'application/json', body: Buffer.from('{"ok":1}').toString('base64') } }, 'answered, and settled only once');

  const short = `${key}:short`;
  t.same(await a.claim(short, 'd2', 200), { kind: 'claimed' });
  await expire(400);
  t.same(await b.claim(short, 'other', 200), { kind: 'claimed' }, 'expired: gone, so anything claims the key');
}

t.test('memory', async (t) => {
  let clock = 1_000_000;
  const store = new MemoryDeliveryStore(2, () => clock);
  await sameRules(t, store, store, async (ms) => {
    clock += ms;
  });
  store.close();
  await t.rejects(store.claim('d', 'x', 1000), StoreUnavailableError, 'closed: unavailable');

  const small = new MemoryDeliveryStore(2, () => clock);
  t.same(await small.claim('a', 'x', 1000), { kind: 'claimed' });
  t.same(await small.claim('b', 'x', 1000), { kind: 'claimed' });
  t.same(await small.claim('c', 'x', 1000), { kind: 'full' }, 'full of live records: refused');
  t.same(await small.claim('a', 'x', 1000), { kind: 'existing', record: { state: 'pending', digest: 'x' } }, 'nothing was forgotten');
  clock += 1000;
  t.same(await small.claim('c', 'x', 1000), { kind: 'claimed' }, 'expired ones make room');
  t.equal(small.size, 1, 'both expired records purged');
});

t.test('redis, two replicas', async (t) => {
  const redis = await startRedis();
  const driver = await loadRedisDriver();
  const store = configSchema.shape.store.parse({ type: 'redis', url: redis.url, key_prefix: 'rg-deliveries:' });
  const limits = configSchema.shape.limits.parse({});
  const a = createSharedState({ limits, store }, { now: Date.now, log, redis: driver });
  const b = createSharedState({ limits, store }, { now: Date.now, log, redis: driver });
  t.teardown(async () => {
    await a.close();
    await b.close();
    await redis.stop();
  });
  for (let i = 0; i < 300 && !(a.ready() && b.ready()); i++) await sleep(50);
  t.ok(a.ready() && b.ready(), 'connected');
  await sameRules(t, a.deliveries, b.deliveries, (ms) => sleep(ms));
  await redis.stop();
  for (let i = 0; i < 300 && a.ready(); i++) await sleep(50);
  await t.rejects(a.deliveries.claim('calgary-01:id:x', 'd', 1000), StoreUnavailableError, 'Redis down: unavailable, never "claimed"');
});

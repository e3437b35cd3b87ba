// The Redis state against a real redis-server: two replicas' states share nonces (SET NX PX),
// counters and bans; one ban start and one ban end are reported across both; OOM under
// noeviction is "full"; Redis stopped: everything rejects and readiness is false; back: healed.
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { RateLimiterRes } from 'rate-limiter-flexible';
import t from 'tap';
import type { AuditEvent } from '../../../src/audit/event.ts';
import { configSchema } from '../../../src/config/schema.ts';
import { Bans } from '../../../src/limits/bans.ts';
import { createOperationalLog } from '../../../src/log/operational.ts';
import { createPeerIndex } from '../../../src/auth/mtls.ts';
import { newConnection, type ConnectionInfo } from '../../../src/pipeline/context.ts';
import { createSharedState, loadRedisDriver, type SharedState } from '../../../src/store/create.ts';
import { StoreUnavailableError } from '../../../src/store/store.ts';
import { startRedis } from '../../helpers/redis.ts';

const log = createOperationalLog('error');

function conn(address: string, withCert: boolean): ConnectionInfo {
  return newConnection({
    remoteAddress: address,
    remotePort: 40000,
    tlsVersion: 'TLSv1.3',
    peer: withCert ? { subject: 'CN=calgary-01', commonNames: ['calgary-01'], dnsSans: [], uriSans: [], sha256: 'ab'.repeat(32), notAfterMs: Date.now() + 86_400_000 } : undefined,
    verifiedTrust: withCert ? 'the trust in force' : undefined,
  });
}

async function until(pred: () => boolean | Promise<boolean>, ms = 15_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await pred()) return true;
    await sleep(50);
  }
  return false;
}

t.test('redis state shared by two replicas', async (t) => {
  const redis = await startRedis();
  const driver = await loadRedisDriver();
  t.teardown(() => redis.stop());
  const config = (_prefix = 'rg-test:') => configSchema.shape.limits.parse({ rate_per_minute: 3, ban_after_failures: 10 });
  const storeConfig = (prefix = 'rg-test:') => configSchema.shape.store.parse({ type: 'redis', url: redis.url, key_prefix: prefix });
  let skew = 0;
  const now = () => Date.now() + skew;
  const states: SharedState[] = [];
  const make = (prefix?: string) => {
    const s = createSharedState({ limits: config(), store: storeConfig(prefix) }, { now, log, redis: driver });
    states.push(s);
    return s;
  };
  const a = make();
  const b = make();
  const other = make('rg-other:');
  t.teardown(async () => {
    for (const s of states) await s.close();
  });
  t.ok(await until(() => a.ready() && b.ready() && other.ready()), 'connected');

  await t.test('a nonce recorded through one replica is a replay through the other', async (t) => {
    t.equal(await a.nonces!.recordNonce('msg-1', 60_000), 'recorded');
    t.equal(await b.nonces!.recordNonce('msg-1', 60_000), 'replayed');
    t.equal(await a.nonces!.recordNonce('msg-1', 60_000), 'replayed');
    t.equal(await b.nonces!.recordNonce('msg-2', 60_000), 'recorded');
    t.equal(await other.nonces!.recordNonce('msg-1', 60_000), 'recorded', 'another key_prefix is another deployment');
    const raw = new Redis(redis.url);
    t.teardown(() => raw.disconnect());
    const ttl = await raw.pttl('rg-test:nonce:msg-1');
    t.ok(ttl > 0 && ttl <= 60_000, `expires with its window (PTTL ${ttl})`);
    t.equal(await a.nonces!.nonceCount(), 2);
  });

  await t.test('rate counters are shared', async (t) => {
    await a.limiters.popRate.consume('pop:calgary-01');
    await b.limiters.popRate.consume('pop:calgary-01');
    await a.limiters.popRate.consume('pop:calgary-01');
    const over = await b.limiters.popRate.consume('pop:calgary-01').then(() => undefined, (e: unknown) => e);
    t.ok(over instanceof RateLimiterRes, 'the fourth, through the other replica, is over rate_per_minute: 3');
  });

  await t.test('failures on both replicas add up to one ban, started and ended once', async (t) => {
    const events: AuditEvent[] = [];
    const peers = [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, cert_sha256: [] }];
    const index = createPeerIndex(peers);
    const deps = { now, log, audit: { write: (e: AuditEvent) => void events.push(e), flush: () => undefined }, peers: () => index };
    const bansA = new Bans({ limits: config(), peers }, a, deps);
    const bansB = new Bans({ limits: config(), peers }, b, deps);
    for (let i = 0; i < 5; i++) {
      // A verified certificate's failures count against its POP; unauthenticated ones against the address.
      bansA.recordOutcome('AUTH_ROUTE_NOT_ALLOWED', conn('198.51.100.7', true), undefined);
      bansB.recordOutcome('AUTH_ROUTE_NOT_ALLOWED', conn('198.51.100.7', true), undefined);
      bansA.recordOutcome('AUTH_BEARER_INVALID', conn('198.51.100.7', false), undefined);
      bansB.recordOutcome('AUTH_BEARER_INVALID', conn('198.51.100.7', false), undefined);
    }
    t.ok(await until(() => events.filter((e) => e.event.reason === 'LIMIT_BAN_STARTED').length >= 2), 'bans started');
    await sleep(100);
    t.same(events.filter((e) => e.event.reason === 'LIMIT_BAN_STARTED').map((e) => e.replguard.ban!.key).sort(), ['addr:198.51.100.7', 'pop:calgary-01'], 'each reported once');
    t.equal((await bansB.check(['pop:calgary-01']))?.key, 'pop:calgary-01');
    t.equal((await bansA.list()).length, 2);
    await Promise.all([bansA.sweep(), bansB.sweep()]);
    t.ok(bansA.bannedAtHandshake(conn('203.0.113.1', true)), 'after a sweep both replicas know the POP ban at the handshake');
    t.ok(bansB.bannedAtHandshake(conn('203.0.113.1', true)));

    skew = 3_600_000 + 1000;
    await Promise.all([bansA.sweep(), bansB.sweep()]);
    t.same(events.filter((e) => e.event.reason === 'LIMIT_BAN_ENDED').map((e) => e.replguard.ban!.key).sort(), ['addr:198.51.100.7', 'pop:calgary-01'], 'each end reported once');
    t.equal(await bansA.check(['pop:calgary-01', 'addr:198.51.100.7']), undefined);
    t.notOk(bansB.bannedAtHandshake(conn('203.0.113.1', true)));
    skew = 0;
  });

  await t.test('a full Redis (maxmemory, noeviction) makes the nonce store refuse, not evict', async (t) => {
    const raw = new Redis(redis.url);
    t.teardown(async () => {
      await raw.config('SET', 'maxmemory', '0');
      raw.disconnect();
    });
    const info = await raw.info('memory');
    const used = Number(/used_memory:(\d+)/.exec(info)![1]);
    await raw.config('SET', 'maxmemory', String(used + 256 * 1024));
    let result = 'recorded';
    let n = 0;
    while (result === 'recorded' && n < 200_000) result = await a.nonces!.recordNonce(`fill-${n++}-${'x'.repeat(64)}`, 60_000);
    t.equal(result, 'full', `full after ${n} nonces`);
    t.equal(await raw.exists('rg-test:nonce:msg-1'), 1, 'the nonces already held are all still there');
    t.not(await a.nonces!.recordNonce('msg-1', 60_000), 'recorded', 'a known nonce is never recorded afresh');
  });

  await t.test('Redis stopped: everything fails closed and readiness is false; Redis back: healed', async (t) => {
    await redis.stop();
    t.ok(await until(() => !a.ready() && !b.ready()), 'not ready');
    const nonce = await a.nonces!.recordNonce('msg-9', 60_000).then(() => undefined, (e: unknown) => e);
    t.ok(nonce instanceof StoreUnavailableError, 'nonce store: StoreUnavailableError');
    const rate = await a.limiters.popRate.consume('pop:denver-02').then(() => undefined, (e: unknown) => e);
    t.ok(rate instanceof Error && !(rate instanceof RateLimiterRes), 'limiter: an error, not a verdict');
    const bans = new Bans({ limits: config(), peers: [] }, a, { now, log, audit: { write: () => undefined, flush: () => undefined }, peers: () => createPeerIndex([]) });
    t.rejects(bans.check(['addr:198.51.100.8']), 'ban check rejects');

    await redis.start();
    t.ok(await until(() => a.ready() && b.ready()), 'ready again without a restart');
    t.equal(await a.nonces!.recordNonce('msg-9', 60_000), 'recorded');
    t.equal(await b.nonces!.recordNonce('msg-9', 60_000), 'replayed');
  });
});

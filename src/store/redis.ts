/**
 * The shared state on Redis (ioredis), for several guard replicas in front of one backup:
 * nonces (`SET key 1 PX ttl NX`: atomic, first writer wins), ban records, and
 * rate-limiter-flexible's Redis limiters for rate and failure counters.
 *
 * Fails closed: the offline queue is off, so while Redis is unreachable every command rejects at
 * once (the request is refused with 503) instead of waiting; a command slower than
 * `store.command_timeout` rejects too. ioredis reconnects by itself, with a capped backoff, and
 * readiness follows the connection state.
 *
 * Every key starts with `store.key_prefix` (ioredis `keyPrefix`, applied to script keys too).
 * Layout: `nonce:<id>`; `ban:<key>` (a JSON record, expiring when the ban ends) with the index
 * `bans` (a sorted set of keys by end time, for listing and for reporting ends);
 * `rate-pop:`, `rate-pop-burst:`, `rate-addr:`, `fail-pop:`, `fail-addr:` (counters);
 * `delivery:<pop>:<batch>` (a JSON delivery record, expiring with upstream.deduplicate.window);
 * `sequence:<pop>:<epoch>` (an epoch's batch-number state, expiring with replay.sequence.retention).
 */
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import type { Config } from '../config/schema.ts';
import type { OperationalLog } from '../log/operational.ts';
import { parseBanRecord, type BanRecord, type BanStore } from './ban-store.ts';
import { decodeDeliveryRecord, encodeDeliveryRecord, StoreUnavailableError, type ClaimResult, type DeliveryRecord, type DeliveryStore, type NonceResult, type NonceStore, type SequenceStore } from './store.ts';
import { readPasswordFile } from '../config/files.ts';

type StoreConfig = Config['store'];

/** Reconnect backoff: 100 ms doubling to 2 s, forever (Redis coming back must heal the guard). */
function retryDelay(times: number): number {
  return Math.min(100 * 2 ** Math.min(times, 5), 2000);
}

export function connectRedis(config: StoreConfig, log: OperationalLog): Redis {
  const url = new URL(config.url!);
  const client = new Redis(config.url!, {
    keyPrefix: config.key_prefix,
    ...(config.password_file !== undefined ? { password: readPasswordFile(config.password_file) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: { servername: url.hostname, ...(config.ca_file !== undefined ? { ca: readFileSync(config.ca_file) } : {}) } } : {}),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: config.command_timeout,
    connectTimeout: Math.max(config.command_timeout, 2000),
    retryStrategy: retryDelay,
    connectionName: 'replguard',
  });
  // ioredis emits 'error' on every failed reconnect: log changes of state, not each attempt.
  let lastError: string | undefined;
  client.on('error', (err: NodeJS.ErrnoException) => {
    const code = err.code ?? err.message;
    if (code !== lastError) log.error({ store: 'redis', code }, 'redis unavailable: requests are refused with 503 until it is back');
    lastError = code;
  });
  client.on('ready', () => {
    log.info({ store: 'redis', host: url.host }, 'redis ready');
    lastError = undefined;
    checkEvictionPolicy(client, log);
  });
  return client;
}

/**
 * Nonces must never be evicted early (an evicted nonce is a replay let through), and every key
 * here has a TTL, so the volatile-* policies would pick exactly them. Only `noeviction` makes a
 * full Redis refuse writes instead; CONFIG may be disabled on managed Redis, so this only warns.
 */
function checkEvictionPolicy(client: Redis, log: OperationalLog): void {
  client.config('GET', 'maxmemory-policy').then(
    (reply) => {
      const policy = Array.isArray(reply) ? String(reply[1]) : undefined;
      if (policy !== undefined && policy !== 'noeviction') {
        log.warn({ store: 'redis', policy }, 'redis maxmemory-policy should be noeviction: another policy may evict nonces and let a replay through');
      }
    },
    () => undefined,
  );
}

function unavailable(err: unknown): StoreUnavailableError {
  return new StoreUnavailableError(`redis: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

export class RedisNonceStore implements NonceStore {
  constructor(private readonly client: Redis, private readonly keyPrefix: string) {}

  async recordNonce(key: string, ttlMs: number): Promise<NonceResult> {
    let reply: string | null;
    try {
      reply = await this.client.set(`nonce:${key}`, '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX');
    } catch (err) {
      // A full Redis under `noeviction` refuses writes with an OOM error: full, not a replay.
      if (/^OOM\b/.test((err as Error)?.message ?? '')) return 'full';
      throw unavailable(err);
    }
    return reply === 'OK' ? 'recorded' : 'replayed';
  }

  /** Walks the keyspace with SCAN (O(keys)); for occasional metrics, not per request. */
  async nonceCount(): Promise<number> {
    // SCAN's MATCH is not prefixed by ioredis: write the prefix out.
    const match = `${this.keyPrefix}nonce:*`;
    let cursor = '0';
    let count = 0;
    try {
      do {
        const [next, keys] = await this.client.scan(cursor, 'MATCH', match, 'COUNT', 1000);
        cursor = next;
        count += keys.length;
      } while (cursor !== '0');
    } catch (err) {
      throw unavailable(err);
    }
    return count;
  }

  async close(): Promise<void> {
    // The client is shared and closed by the state that owns it.
  }
}

// SET the record only if absent, and index it in the same step (one replica wins a race).
const ADD_BAN = `
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  return 1
end
return 0`;

// Remove from the index; only the caller that removed the index entry gets the record back.
const REMOVE_BAN = `
local record = redis.call('GET', KEYS[1])
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  return {record or '', score or '0'}
end
return false`;

type BanClient = Redis & {
  replguardAddBan(recordKey: string, indexKey: string, json: string, ttlMs: number, until: number, key: string): Promise<number>;
  replguardRemoveBan(recordKey: string, indexKey: string, key: string): Promise<[string, string] | null>;
};

export class RedisBanStore implements BanStore {
  private readonly client: BanClient;

  constructor(client: Redis, private readonly now: () => number) {
    client.defineCommand('replguardAddBan', { numberOfKeys: 2, lua: ADD_BAN });
    client.defineCommand('replguardRemoveBan', { numberOfKeys: 2, lua: REMOVE_BAN });
    this.client = client as BanClient;
  }

  async add(record: BanRecord): Promise<boolean> {
    const ttl = Math.max(1, record.until - this.now());
    try {
      return (await this.client.replguardAddBan(`ban:${record.key}`, 'bans', JSON.stringify(record), ttl, record.until, record.key)) === 1;
    } catch (err) {
      throw unavailable(err);
    }
  }

  async get(keys: readonly string[]): Promise<Array<BanRecord | undefined>> {
    if (keys.length === 0) return [];
    try {
      const values = await this.client.mget(...keys.map((k) => `ban:${k}`));
      return values.map((v, i) => {
        const r = parseBanRecord(v);
        return r && r.key === keys[i] ? r : undefined;
      });
    } catch (err) {
      throw unavailable(err);
    }
  }

  async list(limit: number): Promise<BanRecord[]> {
    try {
      const keys = await this.client.zrange('bans', '0', String(limit - 1));
      const records = await this.get(keys);
      return records.filter((r): r is BanRecord => r !== undefined);
    } catch (err) {
      throw err instanceof StoreUnavailableError ? err : unavailable(err);
    }
  }

  async remove(key: string): Promise<BanRecord | undefined> {
    let reply: [string, string] | null;
    try {
      reply = await this.client.replguardRemoveBan(`ban:${key}`, 'bans', key);
    } catch (err) {
      throw unavailable(err);
    }
    if (!reply) return undefined;
    // The record itself may have expired in Redis already; the index still knew its end.
    return parseBanRecord(reply[0]) ?? { key, since: 0, until: Number(reply[1]), failures: 0, reason: 'unknown' };
  }

  async expired(now: number, limit: number): Promise<string[]> {
    try {
      return await this.client.zrangebyscore('bans', '-inf', String(now), 'LIMIT', 0, limit);
    } catch (err) {
      throw unavailable(err);
    }
  }
}

// Claim a batch: absent -> pending (SET NX semantics); released with the
// same digest -> pending, keeping its expiry; otherwise the record goes back to the caller.
// One script, so two replicas can never both claim one batch.
const CLAIM_DELIVERY = `
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {'claimed'}
end
local ok, rec = pcall(cjson.decode, v)
if ok and type(rec) == 'table' and rec.state == 'released' and rec.digest == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
  return {'claimed'}
end
return {'existing', v}`;

// Settle: only the pending record of this digest is replaced, and its expiry stays.
const SETTLE_DELIVERY = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, rec = pcall(cjson.decode, v)
if ok and type(rec) == 'table' and rec.state == 'pending' and rec.digest == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
  return 1
end
return 0`;

type DeliveryClient = Redis & {
  replguardClaimDelivery(key: string, pending: string, ttlMs: number, digest: string): Promise<[string, string?]>;
  replguardSettleDelivery(key: string, record: string, digest: string): Promise<number>;
};

export class RedisDeliveryStore implements DeliveryStore {
  private readonly client: DeliveryClient;

  constructor(client: Redis) {
    client.defineCommand('replguardClaimDelivery', { numberOfKeys: 1, lua: CLAIM_DELIVERY });
    client.defineCommand('replguardSettleDelivery', { numberOfKeys: 1, lua: SETTLE_DELIVERY });
    this.client = client as DeliveryClient;
  }

  async claim(key: string, digest: string, ttlMs: number): Promise<ClaimResult> {
    let reply: [string, string?];
    try {
      reply = await this.client.replguardClaimDelivery(`delivery:${key}`, encodeDeliveryRecord({ state: 'pending', digest }), Math.max(1, Math.ceil(ttlMs)), digest);
    } catch (err) {
      if (/^OOM\b/.test((err as Error)?.message ?? '')) return { kind: 'full' };
      throw unavailable(err);
    }
    if (reply[0] === 'claimed') return { kind: 'claimed' };
    // A record this guard cannot read is treated as an outcome it cannot know: never delivered again.
    return { kind: 'existing', record: decodeDeliveryRecord(reply[1]) ?? { state: 'unknown', digest: '' } };
  }

  async settle(key: string, record: DeliveryRecord): Promise<void> {
    try {
      await this.client.replguardSettleDelivery(`delivery:${key}`, encodeDeliveryRecord(record), record.digest);
    } catch (err) {
      throw unavailable(err);
    }
  }
}

// Compare-and-set of one epoch's batch-number state (replay/sequence.ts): the logic stays in one
// place (TypeScript), Redis only makes the write conditional. ARGV: expected ('' with ARGV[4]
// '0' for absent), next, time to live (ms), whether an entry is expected.
const SEQUENCE_CAS = `
local v = redis.call('GET', KEYS[1])
if ARGV[4] == '0' then
  if v then return 0 end
elseif v ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`;

type SequenceClient = Redis & {
  replguardSequenceCas(key: string, expected: string, next: string, ttlMs: number, present: '0' | '1'): Promise<number>;
};

export class RedisSequenceStore implements SequenceStore {
  private readonly client: SequenceClient;

  constructor(client: Redis) {
    client.defineCommand('replguardSequenceCas', { numberOfKeys: 1, lua: SEQUENCE_CAS });
    this.client = client as SequenceClient;
  }

  async read(key: string): Promise<string | undefined> {
    try {
      return (await this.client.get(`sequence:${key}`)) ?? undefined;
    } catch (err) {
      throw unavailable(err);
    }
  }

  async compareAndSet(key: string, expected: string | undefined, next: string, ttlMs: number): Promise<boolean> {
    try {
      return (await this.client.replguardSequenceCas(`sequence:${key}`, expected ?? '', next, Math.max(1, Math.ceil(ttlMs)), expected === undefined ? '0' : '1')) === 1;
    } catch (err) {
      throw unavailable(err);
    }
  }
}

export interface CounterSpec {
  /** Key prefix inside the store (the store's own `key_prefix` comes first). */
  readonly name: string;
  readonly points: number;
  /** Seconds. */
  readonly duration: number;
}

/** A rate-limiter-flexible Redis limiter that refuses at once while Redis is not connected. */
export function redisLimiter(client: Redis, spec: CounterSpec): RateLimiterRedis {
  return new RateLimiterRedis({
    storeClient: client,
    keyPrefix: spec.name,
    points: spec.points,
    duration: spec.duration,
    rejectIfRedisNotReady: true,
  });
}

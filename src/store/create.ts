/**
 * Builds the state the stages share from `store: { type, url, key_prefix, ... }`: the nonce
 * store, the rate and failure counters (rate-limiter-flexible) and the ban records, in process
 * memory (default) or in Redis (shared between guard replicas).
 *
 * Memory bounds: counters and bans of authenticated POPs are kept in structures that are never
 * evicted (their keys are bounded by the peer list: only configured peers are ever counted as
 * POPs); counters and bans of client addresses are kept in LRUs of `limits.max_tracked_addresses`
 * entries each, so a flood of distinct addresses costs bounded memory and can evict only other
 * addresses, never a POP's counters. In Redis every counter key expires with its window.
 */
import { BurstyRateLimiter, RateLimiterMemory, type RateLimiterAbstract, type RateLimiterRes } from 'rate-limiter-flexible';
import { REPLAY_DEFAULTS, type Config } from '../config/schema.ts';
import type { OperationalLog } from '../log/operational.ts';
import type { BanStore } from './ban-store.ts';
import { MemoryNonceStore } from './memory.ts';
import { RateLimiterLru } from './lru-limiter.ts';
import { MemoryBanStore } from './memory-bans.ts';
import { MemoryDeliveryStore } from './memory-deliveries.ts';
import { MemorySequenceStore } from './memory-sequences.ts';
import type { CounterSpec } from './redis.ts';
import type { DeliveryStore, NonceStore, SequenceStore } from './store.ts';

export interface Limiters {
  /** Requests per authenticated POP (rate_per_minute, plus the burst allowance when configured). */
  readonly popRate: { consume(key: string): Promise<RateLimiterRes> };
  /** Requests per client address, before authentication. */
  readonly addressRate: RateLimiterAbstract;
  /** Failures per POP and per address within limits.failure_window. */
  readonly popFailures: RateLimiterAbstract;
  readonly addressFailures: RateLimiterAbstract;
}

export interface SharedState {
  readonly type: 'memory' | 'redis';
  /** The nonce store: in Redis with `type: redis`, else bounded by `replay.max_nonces` in memory. */
  readonly nonces: NonceStore;
  readonly limiters: Limiters;
  readonly bans: BanStore;
  /**
   * What was forwarded and answered, per batch (upstream.deduplicate): in Redis with
   * `type: redis`, else bounded by `upstream.deduplicate.max_batches` in memory.
   */
  readonly deliveries: DeliveryStore;
  /**
   * Each signer epoch's batch numbers (replay.sequence): in Redis with `type: redis`, else at
   * most MEMORY_EPOCHS_PER_POP epochs per POP in memory (that POP's least recently written forgotten first).
   */
  readonly sequences: SequenceStore;
  /** False while Redis is unreachable (readiness follows it); always true in memory. */
  ready(): boolean;
  close(): Promise<void>;
}

export interface SharedStateDeps {
  readonly now: () => number;
  readonly log: OperationalLog;
  /** The Redis driver (loadRedisDriver()), required with `store.type: redis` only. */
  readonly redis?: RedisDriver;
}

export type RedisDriver = typeof import('./redis.ts');

/**
 * ioredis costs about 20 MiB of heap once loaded: a guard whose store is in memory never loads
 * it. The caller awaits this before createSharedState when the config names Redis.
 */
export function loadRedisDriver(): Promise<RedisDriver> {
  return import('./redis.ts');
}

type LimitsConfig = Config['limits'];

/** rate-limiter-flexible counts in whole seconds (validate.ts makes the windows whole seconds). */
const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

function specs(limits: LimitsConfig) {
  return {
    popRate: { name: 'rate-pop', points: limits.rate_per_minute, duration: 60 },
    popBurst: { name: 'rate-pop-burst', points: limits.rate_burst, duration: seconds(limits.rate_burst_window) },
    addressRate: { name: 'rate-addr', points: limits.address_rate_per_minute, duration: 60 },
    // A penalty never refuses; `points` only matters to the reported remaining count.
    popFailures: { name: 'fail-pop', points: limits.ban_after_failures, duration: seconds(limits.failure_window) },
    addressFailures: { name: 'fail-addr', points: limits.ban_after_failures, duration: seconds(limits.failure_window) },
  } satisfies Record<string, CounterSpec>;
}

function buildLimiters(
  limits: LimitsConfig,
  make: { pop: (spec: CounterSpec) => RateLimiterAbstract; address: (spec: CounterSpec) => RateLimiterAbstract },
): Limiters {
  const s = specs(limits);
  const popMain = make.pop(s.popRate);
  return {
    popRate: limits.rate_burst > 0 ? new BurstyRateLimiter(popMain, make.pop(s.popBurst)) : popMain,
    addressRate: make.address(s.addressRate),
    popFailures: make.pop(s.popFailures),
    addressFailures: make.address(s.addressFailures),
  };
}

/** Memory bound of the delivery records when upstream.deduplicate is off (nothing is recorded then). */
const NO_DEDUP_BATCHES = 1;

/** Epochs whose batch numbers the memory store keeps per POP: a signer starts one per start. */
export const MEMORY_EPOCHS_PER_POP = 1000;

export function createSharedState(config: Readonly<Pick<Config, 'limits' | 'store' | 'replay'>> & { readonly upstream?: Pick<Config['upstream'], 'deduplicate'> }, deps: SharedStateDeps): SharedState {
  if (config.store.type === 'redis') {
    if (deps.redis === undefined) throw new Error('createSharedState: store.type is redis but the Redis driver was not loaded (await loadRedisDriver() first)');
    const { connectRedis, RedisBanStore, RedisDeliveryStore, RedisNonceStore, RedisSequenceStore, redisLimiter } = deps.redis;
    const client = connectRedis(config.store, deps.log);
    const redis = (spec: CounterSpec) => redisLimiter(client, spec);
    return {
      type: 'redis',
      nonces: new RedisNonceStore(client, config.store.key_prefix),
      limiters: buildLimiters(config.limits, { pop: redis, address: redis }),
      bans: new RedisBanStore(client, deps.now),
      deliveries: new RedisDeliveryStore(client),
      sequences: new RedisSequenceStore(client),
      ready: () => client.status === 'ready',
      async close() {
        try {
          await client.quit();
        } catch {
          client.disconnect();
        }
      },
    };
  }
  const maxKeys = config.limits.max_tracked_addresses;
  const nonces = new MemoryNonceStore({ maxNonces: (config.replay ?? REPLAY_DEFAULTS).max_nonces, now: deps.now });
  const deliveries = new MemoryDeliveryStore(config.upstream?.deduplicate?.max_batches ?? NO_DEDUP_BATCHES, deps.now);
  const sequences = new MemorySequenceStore(MEMORY_EPOCHS_PER_POP, deps.now);
  return {
    type: 'memory',
    nonces,
    limiters: buildLimiters(config.limits, {
      pop: (spec) => new RateLimiterMemory({ keyPrefix: spec.name, points: spec.points, duration: spec.duration }),
      address: (spec) => new RateLimiterLru({ keyPrefix: spec.name, points: spec.points, duration: spec.duration, maxKeys }),
    }),
    bans: new MemoryBanStore(maxKeys),
    deliveries,
    sequences,
    ready: () => true,
    close: async () => {
      await nonces.close();
      deliveries.close();
      sequences.close();
    },
  };
}

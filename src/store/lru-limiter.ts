/**
 * A rate-limiter-flexible limiter whose counters live in a bounded LRU (lru-cache).
 *
 * rate-limiter-flexible's own RateLimiterMemory keeps every key in an unbounded Map with a
 * timer per key, so a flood of distinct client addresses grows it for a whole window. This
 * store plugs lru-cache under the library's own consume/penalty/block logic (through its
 * documented store extension point, RateLimiterStoreAbstract, imported by path as its README
 * shows): at most `maxKeys` counters,
 * the least recently used evicted first. Used for client addresses only; authenticated POPs
 * are counted in a separate, never-evicted limiter, so a flood cannot reset a POP's counters.
 */
import { LRUCache } from 'lru-cache';
import { entryBound } from '../core/lru.ts';
import { RateLimiterRes } from 'rate-limiter-flexible';
import RateLimiterStoreAbstract from 'rate-limiter-flexible/lib/RateLimiterStoreAbstract.js';

interface Counter {
  value: number;
  /** Date.now() when the window ends; 0 for never. rate-limiter-flexible itself uses wall time. */
  expiresAt: number;
}

export interface LruLimiterOptions {
  keyPrefix: string;
  points: number;
  /** Seconds. */
  duration: number;
  /** Most keys held; the least recently used is evicted beyond it. */
  maxKeys: number;
}

export class RateLimiterLru extends RateLimiterStoreAbstract {
  private readonly cache: LRUCache<string, Counter>;

  constructor(options: LruLimiterOptions) {
    const cache = new LRUCache<string, Counter>(entryBound(options.maxKeys));
    super({ keyPrefix: options.keyPrefix, points: options.points, duration: options.duration, storeClient: cache });
    this.cache = cache;
  }

  /** Counters held now (for tests and metrics). */
  get size(): number {
    return this.cache.size;
  }

  private live(rlKey: string, now: number): Counter | undefined {
    const counter = this.cache.get(rlKey);
    if (counter && counter.expiresAt !== 0 && counter.expiresAt <= now) {
      this.cache.delete(rlKey);
      return undefined;
    }
    return counter;
  }

  // The four methods below are RateLimiterStoreAbstract's store interface.

  _upsert(rlKey: string, points: number, msDuration: number, forceExpire = false): Promise<Counter> {
    const now = Date.now();
    const counter = forceExpire ? undefined : this.live(rlKey, now);
    if (counter) {
      counter.value += points;
      return Promise.resolve({ ...counter });
    }
    const fresh: Counter = { value: points, expiresAt: msDuration > 0 ? now + msDuration : 0 };
    this.cache.set(rlKey, fresh);
    return Promise.resolve({ ...fresh });
  }

  _get(rlKey: string): Promise<Counter | null> {
    const counter = this.live(rlKey, Date.now());
    return Promise.resolve(counter ? { ...counter } : null);
  }

  _delete(rlKey: string): Promise<boolean> {
    return Promise.resolve(this.cache.delete(rlKey));
  }

  _getRateLimiterRes(_rlKey: string, changedPoints: number, counter: Counter): RateLimiterRes {
    const msBeforeNext = counter.expiresAt === 0 ? -1 : Math.max(counter.expiresAt - Date.now(), 0);
    return new RateLimiterRes(Math.max(this.points - counter.value, 0), msBeforeNext, counter.value, counter.value === changedPoints);
  }
}

/**
 * The in-memory nonce store (one guard process). Bounded: it holds at most `maxNonces` keys and
 * answers 'full' rather than evicting a nonce that is still live, because evicting one would
 * reopen exactly the replay it was recorded to stop. Expired nonces are purged as new ones
 * arrive. Every operation is O(1) amortised; memory is bounded by `maxNonces` times the key
 * size, and the stage bounds keys (a POP id of at most 63 and a webhook-id of at most 128
 * characters).
 *
 * Hand-written rather than lru-cache: lru-cache makes room by evicting the least recently used
 * entry, and has no way to refuse instead; its stale purge is a full scan.
 */
import { StoreUnavailableError, type NonceResult, type NonceStore } from './store.ts';

export interface MemoryNonceStoreOptions {
  /** Most nonces held at once (replay.max_nonces). */
  readonly maxNonces: number;
  /**
   * The wall clock in ms, the same one the timestamp window uses: if it steps forward, nonces
   * expire early exactly as their timestamps turn stale, so nothing slips between the two.
   */
  readonly now: () => number;
}

export class MemoryNonceStore implements NonceStore {
  readonly #max: number;
  readonly #now: () => number;
  /** key -> expiry (ms since the epoch). */
  readonly #expiries = new Map<string, number>();
  /**
   * The same keys in insertion order, as a queue (arrays plus a head index). The stage records
   * every nonce with the same time-to-live, so the head is always the next to expire and
   * purging from the front is exact. With mixed time-to-lives the purge stays safe (a live nonce
   * is never dropped) but may keep an expired one behind a longer-lived one for a while.
   * (Not the Map's own iteration order: V8 leaves a hole per deleted entry until the table is
   * rehashed, and every new iterator walks them, so front-purging a Map costs O(holes) per call.)
   */
  #queueKeys: string[] = [];
  #queueExpiries: number[] = [];
  #head = 0;
  #closed = false;

  constructor(options: MemoryNonceStoreOptions) {
    if (!Number.isSafeInteger(options.maxNonces) || options.maxNonces < 1) throw new RangeError('maxNonces must be a positive integer');
    this.#max = options.maxNonces;
    this.#now = options.now;
  }

  async recordNonce(key: string, ttlMs: number): Promise<NonceResult> {
    return this.recordNonceSync(key, ttlMs);
  }

  /** The same as recordNonce, without a promise (the memory store never waits). */
  recordNonceSync(key: string, ttlMs: number): NonceResult {
    if (this.#closed) throw new StoreUnavailableError('the nonce store is closed');
    if (!(ttlMs >= 1)) throw new RangeError('ttlMs must be at least 1 ms');
    const now = this.#now();
    const expiry = this.#expiries.get(key);
    if (expiry !== undefined) {
      if (expiry > now) return 'replayed';
      // Expired: forget it; its old queue slot is skipped when the purge reaches it.
      this.#expiries.delete(key);
    }
    this.#purge(now);
    if (this.#expiries.size >= this.#max) return 'full';
    this.#expiries.set(key, now + ttlMs);
    this.#queueKeys.push(key);
    this.#queueExpiries.push(now + ttlMs);
    return 'recorded';
  }

  async nonceCount(): Promise<number> {
    this.#purge(this.#now());
    return this.#expiries.size;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#expiries.clear();
    this.#queueKeys = [];
    this.#queueExpiries = [];
    this.#head = 0;
  }

  /** Drops expired nonces from the front of the queue; O(1) amortised per record. */
  #purge(now: number): void {
    while (this.#head < this.#queueKeys.length && this.#queueExpiries[this.#head]! <= now) {
      const key = this.#queueKeys[this.#head]!;
      // The key may have been re-recorded since this slot (then its expiry differs): keep it.
      if (this.#expiries.get(key) === this.#queueExpiries[this.#head]) this.#expiries.delete(key);
      this.#head += 1;
    }
    // Compact once the consumed prefix is at least half the queue: O(1) amortised.
    if (this.#head >= 1024 && this.#head * 2 >= this.#queueKeys.length) {
      this.#queueKeys = this.#queueKeys.slice(this.#head);
      this.#queueExpiries = this.#queueExpiries.slice(this.#head);
      this.#head = 0;
    }
  }
}

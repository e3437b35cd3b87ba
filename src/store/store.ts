/**
 * The state the stages share across requests (and, with Redis, across guard replicas).
 * Implementations: memory (default) and redis. Every method fails closed: a backend that cannot
 * answer rejects with StoreUnavailableError and the request is refused with 503, never forwarded.
 */

export type NonceResult =
  /** First sighting: recorded until the time-to-live passes. */
  | 'recorded'
  /** Seen before within its time-to-live: a replay. */
  | 'replayed'
  /** The bounded store is full of nonces that are all still live: refuse, never evict one. */
  | 'full';

export interface NonceStore {
  /** Atomically records `key` for `ttlMs` unless it is already recorded. */
  recordNonce(key: string, ttlMs: number): Promise<NonceResult>;
  /** Live nonces held now (for metrics and sizing). */
  nonceCount(): Promise<number>;
  close(): Promise<void>;
}

export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

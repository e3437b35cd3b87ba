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

/**
 * What the guard knows of one batch it forwarded (proxy/delivery.ts): `pending` from the moment
 * it claims the batch until the backup answers; `answered` with the backup's status and small
 * answer; `unknown` when the backup may or may not have applied it (a timeout, a connection
 * broken after the request was sent); `released` when it certainly did not (the connection was
 * refused, or the backup answered 429/503), so a retry may deliver it.
 */
export type DeliveryState = 'pending' | 'answered' | 'unknown' | 'released';

export interface DeliveryRecord {
  readonly state: DeliveryState;
  /** SHA-256 (hex) of the batch, to tell a retry of it from another batch under the same id. */
  readonly digest: string;
  /** The backup's status, when answered. */
  readonly status?: number;
  /** Its content type and body (base64), when answered and no larger than the configured bound. */
  readonly contentType?: string;
  readonly body?: string;
}

export type ClaimResult =
  /** This request delivers the batch (a new record, or a released one of the same digest). */
  | { readonly kind: 'claimed' }
  /** A record exists and is not claimable: the caller decides from it. */
  | { readonly kind: 'existing'; readonly record: DeliveryRecord }
  /** The bounded memory store is full of live records: refuse, never evict one. */
  | { readonly kind: 'full' };

export interface DeliveryStore {
  /**
   * Atomically: no record -> a pending one (digest) for `ttlMs`; a released record of the same
   * digest -> pending again (its expiry kept); anything else -> returned.
   */
  claim(key: string, digest: string, ttlMs: number): Promise<ClaimResult>;
  /** Replaces the pending record of `digest` by `record`, keeping its expiry; no-op otherwise. */
  settle(key: string, record: DeliveryRecord): Promise<void>;
}

/** The one text form of a record in every backend. */
export function encodeDeliveryRecord(record: DeliveryRecord): string {
  return JSON.stringify(record);
}

export function decodeDeliveryRecord(text: string | null | undefined): DeliveryRecord | undefined {
  if (typeof text !== 'string') return undefined;
  try {
    const v = JSON.parse(text) as DeliveryRecord;
    if (typeof v !== 'object' || v === null || typeof v.digest !== 'string') return undefined;
    if (!['pending', 'answered', 'unknown', 'released'].includes(v.state)) return undefined;
    return v;
  } catch {
    return undefined;
  }
}

/**
 * The batch-number state of each signer epoch (replay/sequence.ts), as opaque text: the caller
 * reads it, computes the next state, and writes it only if no one (another request, another
 * replica) changed it meanwhile. Keys are `<pop>:<epoch>`; every write restarts the entry's time
 * to live (replay.sequence.retention).
 */
export interface SequenceStore {
  read(key: string): Promise<string | undefined>;
  /** Writes `next` if the entry is still `expected` (undefined: absent); false if it changed. */
  compareAndSet(key: string, expected: string | undefined, next: string, ttlMs: number): Promise<boolean>;
}

/**
 * Delivery records in process memory (one guard): at most `maxBatches` at once, each expiring
 * after the time-to-live it was claimed with. Full of live records, a new batch is refused
 * ('full'), never admitted by forgetting another: a forgotten record is a batch delivered twice.
 * Expired records are purged when the store is full, oldest first (every record has the same
 * time-to-live, so the oldest is the next to expire); purging only then keeps the Map free of
 * the deleted-entry holes a purge on every claim would leave for each iteration to walk.
 */
import { StoreUnavailableError, type ClaimResult, type DeliveryRecord, type DeliveryStore } from './store.ts';

interface Entry {
  record: DeliveryRecord;
  readonly expiry: number;
}

export class MemoryDeliveryStore implements DeliveryStore {
  /** Insertion order is claim order: the head expires first. */
  readonly #entries = new Map<string, Entry>();
  #closed = false;

  constructor(private readonly maxBatches: number, private readonly now: () => number) {
    if (!Number.isSafeInteger(maxBatches) || maxBatches < 1) throw new RangeError('maxBatches must be a positive integer');
  }

  get size(): number {
    return this.#entries.size;
  }

  async claim(key: string, digest: string, ttlMs: number): Promise<ClaimResult> {
    if (this.#closed) throw new StoreUnavailableError('the delivery store is closed');
    const now = this.now();
    const found = this.#entries.get(key);
    if (found && found.expiry > now) {
      if (found.record.state === 'released' && found.record.digest === digest) {
        found.record = { state: 'pending', digest };
        return { kind: 'claimed' };
      }
      return { kind: 'existing', record: found.record };
    }
    if (found) this.#entries.delete(key);
    if (this.#entries.size >= this.maxBatches) this.#purge(now);
    if (this.#entries.size >= this.maxBatches) return { kind: 'full' };
    this.#entries.set(key, { record: { state: 'pending', digest }, expiry: now + ttlMs });
    return { kind: 'claimed' };
  }

  async settle(key: string, record: DeliveryRecord): Promise<void> {
    if (this.#closed) throw new StoreUnavailableError('the delivery store is closed');
    const found = this.#entries.get(key);
    if (found && found.expiry > this.now() && found.record.state === 'pending' && found.record.digest === record.digest) found.record = record;
  }

  close(): void {
    this.#closed = true;
    this.#entries.clear();
  }

  #purge(now: number): void {
    for (const [key, entry] of this.#entries) {
      if (entry.expiry > now) break;
      this.#entries.delete(key);
    }
  }
}

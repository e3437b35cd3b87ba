/**
 * Batch-number state in process memory (one guard): at most `maxEpochs` epochs, each expiring
 * after the time to live of its last write. Full, the epoch least recently written is forgotten:
 * this state detects and reports (it never decides a delivery alone; upstream.deduplicate does),
 * so forgetting costs a SEQUENCE_NEW_EPOCH event if that epoch sends again, never a batch.
 */
import { LRUCache } from 'lru-cache';
import { StoreUnavailableError, type SequenceStore } from './store.ts';

export class MemorySequenceStore implements SequenceStore {
  readonly #entries: LRUCache<string, string>;
  #closed = false;

  constructor(maxEpochs: number, now: () => number) {
    // lru-cache reads its clock through `perf`; this store's clock is the injected one.
    this.#entries = new LRUCache<string, string>({ max: maxEpochs, ttlAutopurge: false, ttl: 1, ttlResolution: 0, perf: { now } });
  }

  async read(key: string): Promise<string | undefined> {
    if (this.#closed) throw new StoreUnavailableError('the sequence store is closed');
    return this.#entries.get(key);
  }

  async compareAndSet(key: string, expected: string | undefined, next: string, ttlMs: number): Promise<boolean> {
    if (this.#closed) throw new StoreUnavailableError('the sequence store is closed');
    if (this.#entries.get(key) !== expected) return false;
    this.#entries.set(key, next, { ttl: Math.max(1, Math.ceil(ttlMs)) });
    return true;
  }

  close(): void {
    this.#closed = true;
    this.#entries.clear();
  }
}

/**
 * Batch-number state in process memory (one guard): at most `maxEpochsPerPop` epochs per POP,
 * each expiring after the time to live of its last write. Full, that POP's epoch least recently
 * written is forgotten, never another POP's (keys are `<pop>:<epoch>`, and POPs are configured
 * peers: their number is bounded). This state detects and reports (upstream.deduplicate decides
 * deliveries), so forgetting costs a SEQUENCE_NEW_EPOCH event if that epoch sends again.
 */
import { LRUCache } from 'lru-cache';
import { StoreUnavailableError, type SequenceStore } from './store.ts';

export class MemorySequenceStore implements SequenceStore {
  readonly #pops = new Map<string, LRUCache<string, string>>();
  #closed = false;

  constructor(private readonly maxEpochsPerPop: number, private readonly now: () => number) {}

  #epochs(key: string): LRUCache<string, string> {
    const pop = key.slice(0, Math.max(0, key.indexOf(':')));
    let epochs = this.#pops.get(pop);
    if (!epochs) {
      // lru-cache reads its clock through `perf`; this store's clock is the injected one.
      epochs = new LRUCache<string, string>({ max: this.maxEpochsPerPop, ttlAutopurge: false, ttl: 1, ttlResolution: 0, perf: { now: this.now } });
      this.#pops.set(pop, epochs);
    }
    return epochs;
  }

  async read(key: string): Promise<string | undefined> {
    if (this.#closed) throw new StoreUnavailableError('the sequence store is closed');
    return this.#epochs(key).get(key);
  }

  async compareAndSet(key: string, expected: string | undefined, next: string, ttlMs: number): Promise<boolean> {
    if (this.#closed) throw new StoreUnavailableError('the sequence store is closed');
    const epochs = this.#epochs(key);
    if (epochs.get(key) !== expected) return false;
    epochs.set(key, next, { ttl: Math.max(1, Math.ceil(ttlMs)) });
    return true;
  }

  close(): void {
    this.#closed = true;
    this.#pops.clear();
  }
}

/**
 * Ban records in process memory. POP bans sit in a plain map (its keys are bounded by the
 * configured peer list, since only authenticated POPs are ever banned as POPs) and are never
 * evicted; address bans sit in an LRU bounded by `limits.max_tracked_addresses`, so a flood of
 * distinct addresses cannot grow memory without bound.
 */
import { LRUCache } from 'lru-cache';
import { entryBound } from '../core/lru.ts';
import { isPopKey } from './client-key.ts';
import type { BanRecord, BanStore } from './ban-store.ts';

export class MemoryBanStore implements BanStore {
  private readonly pops = new Map<string, BanRecord>();
  private readonly addresses: LRUCache<string, BanRecord>;

  constructor(maxAddresses: number) {
    this.addresses = new LRUCache<string, BanRecord>(entryBound(maxAddresses));
  }

  /** Records held now (for tests and metrics). */
  get size(): number {
    return this.pops.size + this.addresses.size;
  }

  add(record: BanRecord): Promise<boolean> {
    const map = isPopKey(record.key) ? this.pops : this.addresses;
    if (map.has(record.key)) return Promise.resolve(false);
    map.set(record.key, record);
    return Promise.resolve(true);
  }

  get(keys: readonly string[]): Promise<Array<BanRecord | undefined>> {
    return Promise.resolve(this.getNow(keys));
  }

  readonly getNow = (keys: readonly string[]): Array<BanRecord | undefined> =>
    keys.map((k) => (isPopKey(k) ? this.pops.get(k) : this.addresses.get(k)));

  list(limit: number): Promise<BanRecord[]> {
    const out: BanRecord[] = [];
    for (const r of this.pops.values()) if (out.length < limit) out.push(r);
    for (const r of this.addresses.values()) if (out.length < limit) out.push(r);
    return Promise.resolve(out);
  }

  remove(key: string): Promise<BanRecord | undefined> {
    const map = isPopKey(key) ? this.pops : this.addresses;
    const record = map.get(key);
    if (record) map.delete(key);
    return Promise.resolve(record);
  }

  expired(now: number, limit: number): Promise<string[]> {
    const out: string[] = [];
    for (const map of [this.pops, this.addresses] as const) {
      for (const r of map.values()) {
        if (out.length >= limit) break;
        if (r.until <= now) out.push(r.key);
      }
    }
    return Promise.resolve(out);
  }
}

/**
 * Ban records, as the limits stage keeps them: in memory by default, in Redis when several
 * guard replicas share their bans. The decisions (when to ban, when a ban has ended) are made
 * in limits/bans.ts against its injected clock; a store only keeps and hands back records.
 * Every method rejects when the backend cannot answer (the caller fails closed).
 */

export interface BanRecord {
  /** `pop:<id>` or `addr:<address>` (store/client-key.ts). */
  readonly key: string;
  /** When the ban started and when it ends, ms since the epoch (the guard's clock). */
  readonly since: number;
  readonly until: number;
  /** Failures counted when it started. */
  readonly failures: number;
  /** The reason code of the failure that started it. */
  readonly reason: string;
}

export interface BanStore {
  /** Stores the record unless the key already has one; true when this call stored it. */
  add(record: BanRecord): Promise<boolean>;
  /** The records of these keys (expired ones included until removed), in order. */
  get(keys: readonly string[]): Promise<Array<BanRecord | undefined>>;
  /**
   * The same, answered at once, by a store whose records are in this process (memory): the
   * per-request ban check then costs no promise. Absent on a remote store (Redis).
   */
  readonly getNow?: (keys: readonly string[]) => Array<BanRecord | undefined>;
  /** Every record held, at most `limit`. */
  list(limit: number): Promise<BanRecord[]>;
  /**
   * Removes the key's record; returns it only when this call removed it, so that exactly one
   * guard replica reports the end of a ban.
   */
  remove(key: string): Promise<BanRecord | undefined>;
  /** Keys whose ban ended at or before `now`, at most `limit`. */
  expired(now: number, limit: number): Promise<string[]>;
}

/** Reads a stored record back, refusing anything that is not one (a Redis value is untrusted input). */
export function parseBanRecord(text: string | null | undefined): BanRecord | undefined {
  if (!text) return undefined;
  try {
    const r = JSON.parse(text) as Partial<BanRecord>;
    if (typeof r.key === 'string' && typeof r.since === 'number' && typeof r.until === 'number'
      && typeof r.failures === 'number' && typeof r.reason === 'string') {
      return { key: r.key, since: r.since, until: r.until, failures: r.failures, reason: r.reason };
    }
  } catch {
    // not JSON: not a record
  }
  return undefined;
}

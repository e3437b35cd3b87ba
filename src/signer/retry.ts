/**
 * The signer's retry schedule: after a failed attempt that may succeed later, wait 1 s, 5 s,
 * 25 s, 125 s, 625 s (RETRY_DELAYS_SECONDS, integers: the review found a float `math.Pow`
 * backoff, docs/security.md findings), at most `retry.max_retries` times. A `Retry-After` from the guard
 * replaces the table's delay when it is longer, up to the table's last entry, so that one
 * answer can never hold the primary's request open without bound.
 */
import { RETRY_DELAYS_SECONDS } from '../config/primary-schema.ts';

/** Answers of the backup's guard that say "later" (RFC 9110 15.6.3-15.6.5, RFC 6585 4). */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

/**
 * Of those, the ones after which the backup may have the batch (the guard forwarded it and the
 * backup timed out or broke off, or answered so itself): retried only when the guard
 * deduplicates (docs/signer.md#each-batch-reaches-the-backup-once). 429 and 503 say the batch
 * was not taken.
 */
export const MAYBE_DELIVERED_STATUSES: ReadonlySet<number> = new Set([502, 504]);

/** The header a guard with upstream.deduplicate sends on its answers (proxy/delivery.ts). */
export const GUARD_DEDUP_HEADER = 'x-replguard-dedup';

export function guardDeduplicates(headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
  return headers[GUARD_DEDUP_HEADER] === 'on';
}

/** The longest wait before one retry, in ms (the table's last entry). */
export const MAX_RETRY_DELAY_MS = RETRY_DELAYS_SECONDS[RETRY_DELAYS_SECONDS.length - 1]! * 1000;

/**
 * `Retry-After` (RFC 9110 section 10.2.3) in ms from now: delay-seconds (`1*DIGIT`) or an
 * HTTP-date. Undefined when absent or malformed (then the table applies).
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^[0-9]{1,10}$/.test(text)) return Number(text) * 1000;
  // IMF-fixdate (and the obsolete forms Date.parse also reads); a date in the past means now.
  if (!/^[A-Za-z]{3},? /.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/**
 * How long to wait before retry number `retry` (1 = the first retry), in ms: the table's entry,
 * or a longer Retry-After capped at MAX_RETRY_DELAY_MS.
 */
export function retryDelayMs(retry: number, retryAfterMs: number | undefined): number {
  const table = RETRY_DELAYS_SECONDS[Math.min(Math.max(retry, 1), RETRY_DELAYS_SECONDS.length) - 1]! * 1000;
  if (retryAfterMs === undefined || retryAfterMs <= table) return table;
  return Math.min(retryAfterMs, MAX_RETRY_DELAY_MS);
}

/**
 * How long the retries can hold one request of the primary open (ms): `schedule` when every
 * attempt fails at once and no Retry-After is longer than the table, `worst` when every attempt
 * runs into backup.timeout and every answer asks for the longest wait. Logged at start-up, to
 * compare with the primary's own client timeout.
 */
export function holdBoundsMs(maxRetries: number, attemptTimeoutMs: number): { schedule: number; worst: number } {
  let schedule = 0;
  for (let r = 1; r <= maxRetries; r++) schedule += retryDelayMs(r, undefined);
  return { schedule, worst: (maxRetries + 1) * attemptTimeoutMs + maxRetries * MAX_RETRY_DELAY_MS };
}

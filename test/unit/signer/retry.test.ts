// The retry schedule: the integer table, Retry-After honoured when longer and capped, and the
// hold bounds reported at start-up.
import t from 'tap';
import { RETRY_DELAYS_SECONDS } from '../../../src/config/primary-schema.ts';
import { holdBoundsMs, MAX_RETRY_DELAY_MS, parseRetryAfter, RETRYABLE_STATUSES, retryDelayMs } from '../../../src/signer/retry.ts';

t.test('the table, in integer milliseconds', async (t) => {
  t.same([...RETRY_DELAYS_SECONDS], [1, 5, 25, 125, 625]);
  t.same([1, 2, 3, 4, 5].map((r) => retryDelayMs(r, undefined)), [1000, 5000, 25_000, 125_000, 625_000]);
  t.ok([1, 2, 3, 4, 5].every((r) => Number.isInteger(retryDelayMs(r, undefined))));
  t.same([...RETRYABLE_STATUSES].sort(), [429, 502, 503, 504]);
});

t.test('Retry-After: used when longer, capped at the last entry', async (t) => {
  t.equal(retryDelayMs(1, 30_000), 30_000, 'longer than 1 s: honoured');
  t.equal(retryDelayMs(3, 2000), 25_000, 'shorter than the table: the table');
  t.equal(retryDelayMs(1, 10_000_000), MAX_RETRY_DELAY_MS, 'capped');
});

t.test('Retry-After parsing', async (t) => {
  const now = Date.parse('2026-11-22T10:00:00Z');
  t.equal(parseRetryAfter('120', now), 120_000);
  t.equal(parseRetryAfter(' 0 ', now), 0);
  t.equal(parseRetryAfter('Sun, 22 Nov 2026 10:01:00 GMT', now), 60_000);
  t.equal(parseRetryAfter('Sun, 22 Nov 2026 09:00:00 GMT', now), 0, 'a past date: now');
  for (const bad of ['-1', '1.5', 'soon', '', '99999999999', 'Xyz, nonsense']) t.equal(parseRetryAfter(bad, now), undefined, JSON.stringify(bad));
  t.equal(parseRetryAfter(undefined, now), undefined);
});

t.test('hold bounds', async (t) => {
  t.same(holdBoundsMs(5, 30_000), { schedule: 781_000, worst: 6 * 30_000 + 5 * 625_000 });
  t.same(holdBoundsMs(0, 30_000), { schedule: 0, worst: 30_000 });
  t.same(holdBoundsMs(2, 10_000), { schedule: 6000, worst: 3 * 10_000 + 2 * 625_000 });
});

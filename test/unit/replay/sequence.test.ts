// The batch-number state of one signer epoch (replay/sequence.ts): standing, claims, gaps after
// their window, the bounds (max_tracked, the clock list), release, and the text form.
import t from 'tap';
import { claim, decodeEpochState, EMPTY, encodeEpochState, MAX_CLOCKS, release, see, standing, sweep, type EpochState, type Gap } from '../../../src/replay/sequence.ts';

const policy = { gapWindowMs: 30_000, maxTracked: 100 };

/** Sees and claims each number at its time, collecting the gaps reported on the way. */
function deliver(state: EpochState, numbers: readonly number[], at: number, p = policy): { state: EpochState; gaps: Gap[] } {
  const gaps: Gap[] = [];
  for (const n of numbers) {
    const seen = see(state, n, at, p);
    const swept = sweep(claim(seen.state, n), at, p);
    gaps.push(...seen.gaps, ...swept.gaps);
    state = swept.state;
  }
  return { state, gaps };
}

t.test('in order: no gap, each number standing in order, then a duplicate', async (t) => {
  t.equal(standing(undefined, 1), 'new-epoch');
  const { state, gaps } = deliver(EMPTY, [1, 2, 3, 4], 0);
  t.same(gaps, []);
  t.same(state.claimed, [[1, 4]]);
  t.equal(standing(state, 5), 'in-order');
  t.equal(standing(state, 3), 'duplicate');
  t.equal(standing(state, 7), 'ahead');
  t.same(sweep(state, 10 * policy.gapWindowMs, policy).gaps, [], 'nothing missing: nothing to report, however late');
});

t.test('a dropped number is a gap once the window after a higher one passed, reported once', async (t) => {
  let { state, gaps } = deliver(EMPTY, [1, 2, 4, 5], 1000);
  t.same(gaps, []);
  t.equal(standing(state, 3), 'in-order', '3 is the lowest unclaimed: the next in order');
  t.equal(standing(state, 6), 'ahead');
  t.same(sweep(state, 1000 + policy.gapWindowMs - 1, policy).gaps, [], 'within the window: not yet');
  const swept = sweep(state, 1000 + policy.gapWindowMs, policy);
  t.same(swept.gaps, [[3, 3]]);
  t.same(sweep(swept.state, 1000 + 5 * policy.gapWindowMs, policy).gaps, [], 'reported once');
  state = swept.state;
  // Late after all: claimable, and no second report.
  t.equal(standing(state, 3), 'in-order');
  ({ state, gaps } = deliver(state, [3], 99_000));
  t.same(gaps, []);
  t.same(state.claimed, [[1, 5]]);
});

t.test('gap clocks: each jump starts its own window; the earliest missing are reported first', async (t) => {
  let { state } = deliver(EMPTY, [1, 3], 0); // 2 missing since 0
  ({ state } = deliver(state, [6], 20_000)); // 4, 5 missing since 20 s
  const first = sweep(state, 30_000, policy);
  t.same(first.gaps, [[2, 2]]);
  const second = sweep(first.state, 50_000, policy);
  t.same(second.gaps, [[4, 5]]);
});

t.test('a number arriving just as its window ends is not a gap', async (t) => {
  const { state } = deliver(EMPTY, [1, 3], 0);
  t.same(deliver(state, [2], policy.gapWindowMs).gaps, []);
});

t.test('a gap found by a later batch is reported with it', async (t) => {
  let { state } = deliver(EMPTY, [1, 3], 0);
  const { gaps } = deliver(state, [4], 31_000);
  t.same(gaps, [[2, 2]]);
  state = deliver(state, [2], 1).state;
  t.same(deliver(state, [4], 31_000).gaps, [], 'filled before the window: nothing');
});

t.test('max_tracked: numbers too far below the highest are forgotten, their missing ones reported then', async (t) => {
  const p = { gapWindowMs: 3_600_000, maxTracked: 16 };
  let { state } = deliver(EMPTY, [1, 2, 3], 0, p);
  const far = deliver(state, [30], 1, p);
  t.same(far.gaps, [[4, 14]], 'the missing numbers that fell below the floor (15 = 30 - 16 + 1)');
  state = far.state;
  t.equal(state.floor, 15);
  t.equal(standing(state, 3), 'below-lowest');
  t.equal(standing(state, 14), 'below-lowest');
  t.equal(standing(state, 15), 'in-order');
  t.same(sweep(state, 3_600_001, p).gaps, [[15, 29]], 'the rest after the window');
});

t.test('the clock list is bounded: the newest two merge keeping the earlier time', async (t) => {
  const p = { gapWindowMs: 30_000, maxTracked: 1000 };
  let state = EMPTY;
  for (let i = 0; i < MAX_CLOCKS + 10; i++) state = deliver(state, [2 * i + 2], i, p).state; // every odd number missing
  t.equal(state.clocks.length, MAX_CLOCKS);
  const clocks = state.clocks;
  for (let i = 1; i < clocks.length; i++) t.ok(clocks[i]![0] > clocks[i - 1]![0] && clocks[i]![1] >= clocks[i - 1]![1], 'increasing');
  const all = sweep(state, 10 * 3600_000, p).gaps;
  t.equal(all.reduce((sum, [a, b]) => sum + b - a + 1, 0), MAX_CLOCKS + 10, 'every missing number reported');
});

t.test('release: a withdrawn claim is missing again, and a gap if it never comes back', async (t) => {
  const { state } = deliver(EMPTY, [1, 2, 3], 0);
  const released = release(state, 2, 5000);
  t.same(released.claimed, [[1, 1], [3, 3]]);
  t.equal(standing(released, 2), 'in-order');
  t.same(release(released, 9, 5000), released, 'not claimed: unchanged');
  t.same(claim(released, 2).claimed, [[1, 3]], 'claimed again: merged');
  t.same(sweep(released, 5000 + policy.gapWindowMs - 1, policy).gaps, [], 'its window starts at the release');
  t.same(sweep(released, 5000 + policy.gapWindowMs, policy).gaps, [[2, 2]]);

  // The highest number released (its sender gave up), and the next one in order: still a gap.
  const last = release(deliver(EMPTY, [1, 2], 0).state, 2, 1000);
  const next = deliver(last, [3], 2000);
  t.same(next.gaps, []);
  t.same(sweep(next.state, 1000 + policy.gapWindowMs, policy).gaps, [[2, 2]]);

  // Covered by an earlier clock: that clock's time stands.
  const early = deliver(EMPTY, [1, 3, 2, 5], 0).state; // clocks [3, 0] and [5, 0]; 4 missing
  const covered = release(early, 2, 20_000);
  t.equal(covered.clocks.length, 2, 'no new clock');
  t.same(sweep(covered, policy.gapWindowMs, policy).gaps, [[2, 2], [4, 4]]);
});

t.test('text form: round trip, and anything else is no state', async (t) => {
  const { state } = deliver(EMPTY, [1, 2, 5], 7);
  t.same(decodeEpochState(encodeEpochState(state)), state);
  for (const bad of [undefined, '', 'null', '{}', '[1,2,3]', '[1,2,3,[[1]],[]]', '[-1,0,1,[],[]]', '[1.5,0,1,[],[]]', 'not json']) {
    t.equal(decodeEpochState(bad), undefined, String(bad));
  }
});

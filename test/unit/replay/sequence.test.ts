// The batch-number state of one signer epoch (replay/sequence.ts): standing, claims, gaps after
// their window, the bounds (max_tracked, the clock list), release, and the text form.
import t from 'tap';
import { claim, decodeEpochState, EMPTY, encodeEpochState, MAX_CLOCKS, MAX_RANGES, MAX_RELEASED, release, see, standing, startAt, sweep, type EpochState, type Gap } from '../../../src/replay/sequence.ts';

const policy = { gapWindowMs: 30_000, maxTracked: 100 };

/** Sees and claims each number at its time, collecting the gaps reported on the way. */
function deliver(state: EpochState, numbers: readonly number[], at: number, p = policy): { state: EpochState; gaps: Gap[] } {
  const gaps: Gap[] = [];
  for (const n of numbers) {
    const seen = see(state, n, at, p);
    const claimed = claim(seen.state, n);
    const swept = sweep(claimed.state, at, p);
    gaps.push(...seen.gaps, ...claimed.gaps, ...swept.gaps);
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

t.test('bounds: ranges, clocks and released numbers stay bounded whatever a POP sends', async (t) => {
  const p = { gapWindowMs: 3_600_000, maxTracked: 100_000 };
  // Every other number: one range per number, until the cap; the floor then rises and the holes below are reported.
  let state = EMPTY;
  const gaps: Gap[] = [];
  for (let n = 1; n <= 2 * (MAX_RANGES + 50); n += 2) {
    const r = deliver(state, [n], n, p);
    state = r.state;
    gaps.push(...r.gaps);
  }
  t.ok(state.claimed.length <= MAX_RANGES, `${state.claimed.length} ranges`);
  t.equal(gaps.length, 50, 'the holes below the risen floor, reported');
  t.ok(state.clocks.length <= MAX_CLOCKS, `${state.clocks.length} clocks`);
  t.ok(encodeEpochState(state).length < 16_384, `${encodeEpochState(state).length} bytes`);
  t.notSame(decodeEpochState(encodeEpochState(state)), 'unreadable', 'a bounded state is readable');

  // Releases of numbers claimed in order (the signer retrying through an outage): clocks stay bounded.
  let r2 = EMPTY;
  for (let n = 1; n <= 1000; n++) {
    r2 = deliver(r2, [n], n, p).state;
    r2 = release(r2, n, n).state;
    r2 = claim(r2, n).state;
  }
  t.ok(r2.clocks.length <= 1, `${r2.clocks.length} clocks after 1000 released and retried batches`);
  t.same(sweep(r2, 10 * 3_600_000, p).gaps, [], 'and nothing missing');

  // Released below the reported numbers: timed on their own, bounded; the oldest pushed out is reported at once.
  const fast = { gapWindowMs: 10, maxTracked: 100_000 };
  let r3 = deliver(EMPTY, [1, 100], 0, fast).state;
  for (let n = 2; n < 2 + MAX_RELEASED + 1; n++) r3 = claim(r3, n).state;
  r3 = sweep(r3, 10, fast).state; // the rest below 100 reported; reportedBelow is 100
  const pushed: Gap[] = [];
  for (let n = 2; n < 2 + MAX_RELEASED + 1; n++) {
    const r = release(r3, n, 30);
    r3 = r.state;
    pushed.push(...r.gaps);
  }
  t.ok(r3.released.length <= MAX_RELEASED);
  t.same(pushed, [[2, 2]], 'the oldest released number is reported when pushed out');
});

t.test('a released number the gap sweep already passed is still reported if it never comes back', async (t) => {
  const p = { gapWindowMs: 1000, maxTracked: 100 };
  let state = deliver(EMPTY, [1, 3], 0, p).state; // 2 missing since 0
  state = claim(see(state, 2, 999, p).state, 2).state; // just in time
  state = sweep(state, 1000, p).state; // the clock passes 2 while it is claimed
  state = release(state, 2, 1500).state; // then the backup answers 503 and the signer gives up
  t.same(sweep(state, 2499, p).gaps, []);
  t.same(sweep(state, 2500, p).gaps, [[2, 2]]);
});

t.test('a clock whose numbers were all claimed goes: it times nothing later', async (t) => {
  const p = { gapWindowMs: 900_000, maxTracked: 10_000 };
  let state = EMPTY;
  for (let i = 0; i < MAX_CLOCKS + 10; i++) state = deliver(state, [2 * i + 2, 2 * i + 1], 0, p).state; // reordered pairs
  t.equal(state.clocks.length, 0, 'every hole filled: no clock left');
  state = deliver(state, [1000], 1000, p).state;
  t.same(sweep(state, 1000 + p.gapWindowMs - 1, p).gaps, [], 'a later hole waits its whole window');
});

t.test('a new epoch starts at the first number seen', async (t) => {
  const { state, gaps } = deliver(startAt(500), [500, 501], 0);
  t.same(gaps, []);
  t.equal(standing(state, 499), 'below-lowest');
  t.same(sweep(state, 10 * 3_600_000, policy).gaps, []);
});

t.test('release: a withdrawn claim is missing again, and a gap if it never comes back', async (t) => {
  const { state } = deliver(EMPTY, [1, 2, 3], 0);
  const released = release(state, 2, 5000).state;
  t.same(released.claimed, [[1, 1], [3, 3]]);
  t.equal(standing(released, 2), 'in-order');
  t.same(release(released, 9, 5000).state, released, 'not claimed: unchanged');
  t.same(claim(released, 2).state.claimed, [[1, 3]], 'claimed again: merged');
  t.same(sweep(released, 5000 + policy.gapWindowMs - 1, policy).gaps, [], 'its window starts at the release');
  t.same(sweep(released, 5000 + policy.gapWindowMs, policy).gaps, [[2, 2]]);

  // The highest number released (its sender gave up), and the next one in order: still a gap.
  const last = release(deliver(EMPTY, [1, 2], 0).state, 2, 1000).state;
  const next = deliver(last, [3], 2000);
  t.same(next.gaps, []);
  t.same(sweep(next.state, 1000 + policy.gapWindowMs, policy).gaps, [[2, 2]]);

  // Covered by an earlier clock: that clock's time stands.
  const early = deliver(EMPTY, [1, 3, 2, 5], 0).state; // clock [5, 0]: 4 missing ([3, 0] went with 2's claim)
  const covered = release(early, 2, 20_000).state;
  t.equal(covered.clocks.length, 1, 'no new clock');
  t.same(sweep(covered, policy.gapWindowMs, policy).gaps, [[2, 2], [4, 4]]);
});

t.test('text form: round trip, and anything else is no state', async (t) => {
  const { state } = deliver(EMPTY, [1, 2, 5], 7);
  t.same(decodeEpochState(encodeEpochState(state)), state);
  for (const bad of ['', 'null', '{}', '[1,2,3]', '["s1",1,5,1,[[1]],[],[]]', '["s1",-1,0,1,[],[],[]]', '["s1",1.5,0,1,[],[],[]]', 'not json',
    '[1,5,1,[[1,5]],[]]', // the format before the version tag
    '["s1",1,10,1,[[5,10],[1,4]],[],[]]', // unsorted
    '["s1",1,10,1,[[9,2]],[],[]]', // inverted
    '["s1",1,10,1,[[1,3],[4,5]],[],[]]', // adjacent: not merged
    '["s1",1,10,1,[[1,11]],[],[]]', // above the highest
    '["s1",1,10,1,[],[[5,10],[3,20]],[]]', // clocks not increasing
    '["s1",1,10,1,[],[],[[4,0]]]', // released at or above reportedBelow
    `["s1",1,10,1,${JSON.stringify(Array.from({ length: MAX_RANGES + 1 }, () => [1, 1]))},[],[]]`, // too many ranges
    '["s1",1,10,1,[],[],[],7]', '["s2",1,10,1,[],[],[]]']) {
    t.equal(decodeEpochState(bad), 'unreadable', bad.slice(0, 60));
  }
});

/**
 * What the guard knows of one signer epoch's batch numbers (replay.sequence, issue 21 part 1;
 * docs/replay.md#batch-sequence): pure state and its transitions, so that the memory and the
 * Redis store keep the same state through one compare-and-set (store/store.ts SequenceStore)
 * instead of two copies of this logic (one in Lua).
 *
 * Per (POP, epoch): the numbers claimed (forwarded, or being forwarded) as sorted disjoint
 * ranges; the highest number seen; and gap clocks. A number is *missing* when it is not
 * claimed and a higher one was seen; it becomes a *gap* when it is still missing `gapWindow`
 * after the first higher one was seen. Because numbers are seen in time order, the moment a
 * number became missing grows with the number: one clock `[high, since]` is kept per jump
 * (a number seen more than one above the highest before), and every missing number below
 * `high` and at or above the previous clock's `high` became missing at `since`.
 *
 * The state is bounded: numbers more than `maxTracked` below the highest are forgotten (the
 * `floor` rises; a number below it is `below-lowest`), and a missing number that falls below the
 * floor before its window passed is reported as a gap then. At most MAX_CLOCKS clocks are kept:
 * past that, the two newest are merged (the earlier `since` wins: such a gap is reported early,
 * never late or not at all).
 */

/** Most gap clocks per epoch. */
export const MAX_CLOCKS = 64;

export interface EpochState {
  /** Numbers below this are forgotten. */
  readonly floor: number;
  /** Claimed numbers at or above `floor`: sorted, disjoint, non-adjacent [from, to] ranges. */
  readonly claimed: readonly (readonly [number, number])[];
  /** The highest number seen (claimed or not); 0 before any. */
  readonly high: number;
  /** Missing numbers below this were reported as gaps already. */
  readonly reportedBelow: number;
  /** Gap clocks [high, since ms], both increasing. */
  readonly clocks: readonly (readonly [number, number])[];
}

export interface SequencePolicy {
  readonly gapWindowMs: number;
  readonly maxTracked: number;
}

/** Where a number stands in its epoch before this request. */
export type Standing =
  /** The epoch's first batch this guard (or its replicas) sees. */
  | 'new-epoch'
  /** Every lower number of the epoch is claimed: the next in order. */
  | 'in-order'
  /** Some lower number is not claimed (yet): out of order. */
  | 'ahead'
  /** Claimed already: a batch number delivered (or being delivered) again. */
  | 'duplicate'
  /** More than maxTracked below the highest: the guard no longer knows. */
  | 'below-lowest';

/** Missing numbers [from, to] reported as one gap. */
export type Gap = readonly [number, number];

export const EMPTY: EpochState = { floor: 1, claimed: [], high: 0, reportedBelow: 1, clocks: [] };

export function standing(state: EpochState | undefined, n: number): Standing {
  if (state === undefined) return 'new-epoch';
  if (n < state.floor) return 'below-lowest';
  if (isClaimed(state, n)) return 'duplicate';
  return n === firstUnclaimed(state) ? 'in-order' : 'ahead';
}

export function isClaimed(state: EpochState, n: number): boolean {
  for (const [from, to] of state.claimed) {
    if (n < from) return false;
    if (n <= to) return true;
  }
  return false;
}

/** The lowest number at or above the floor that is not claimed. */
export function firstUnclaimed(state: EpochState): number {
  const first = state.claimed[0];
  return first !== undefined && first[0] === state.floor ? first[1] + 1 : state.floor;
}

/**
 * `n` was seen at `now` (whether or not it is claimed): the highest number and the gap clocks
 * move, and the floor rises past numbers too far below (their missing ones are the gaps
 * returned). Claim `n` next, if it is taken, and sweep after that: a number arriving just as its
 * window ends is not reported.
 */
export function see(state: EpochState, n: number, now: number, policy: SequencePolicy): { state: EpochState; gaps: Gap[] } {
  let { floor, claimed, high, reportedBelow, clocks } = state;
  if (n > high) {
    if (n > high + 1) {
      clocks = [...clocks, [n, now] as const];
      if (clocks.length > MAX_CLOCKS) {
        const last = clocks[clocks.length - 1]!;
        const before = clocks[clocks.length - 2]!;
        clocks = [...clocks.slice(0, -2), [last[0], before[1]] as const];
      }
    }
    high = n;
  }
  const gaps: Gap[] = [];
  // Numbers more than maxTracked below the highest are forgotten; their missing ones are gaps now.
  const lowest = Math.max(1, high - policy.maxTracked + 1);
  if (lowest > floor) {
    const from = Math.max(floor, reportedBelow);
    gaps.push(...missingIn({ floor, claimed, high, reportedBelow, clocks }, from, lowest - 1));
    reportedBelow = Math.max(reportedBelow, lowest);
    floor = lowest;
    claimed = claimed.flatMap(([a, b]) => (b < lowest ? [] : [[Math.max(a, lowest), b] as const]));
    clocks = clocks.filter(([h]) => h > lowest);
  }
  return { state: { floor, claimed, high, reportedBelow, clocks }, gaps };
}

/** `n` is claimed (it is being forwarded). */
export function claim(state: EpochState, n: number): EpochState {
  if (n < state.floor || isClaimed(state, n)) return state;
  const ranges = [...state.claimed.map(([a, b]) => [a, b] as [number, number]), [n, n] as [number, number]].sort((x, y) => x[0] - y[0]);
  const merged: [number, number][] = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push(r);
  }
  return { ...state, claimed: merged };
}

/**
 * `n`'s claim is withdrawn at `now`: it was not delivered and its sender will send it again. It
 * is missing from then on: a clock that already covers it keeps its (earlier) time, else a
 * clock starting now is added, so that a number its sender then gives up on is a gap too.
 */
export function release(state: EpochState, n: number, now: number): EpochState {
  if (!isClaimed(state, n)) return state;
  const claimed = state.claimed.flatMap(([a, b]): (readonly [number, number])[] => {
    if (n < a || n > b) return [[a, b]];
    return [...(a < n ? [[a, n - 1] as const] : []), ...(n < b ? [[n + 1, b] as const] : [])];
  });
  const covered = n < state.reportedBelow || state.clocks.some(([high]) => high > n);
  const clocks = covered ? state.clocks : [...state.clocks, [Math.max(state.high, n) + 1, now] as const];
  return { ...state, claimed, clocks };
}

/** Reports the missing numbers whose window passed; their clocks go. */
export function sweep(state: EpochState, now: number, policy: SequencePolicy): { state: EpochState; gaps: Gap[] } {
  let { reportedBelow, clocks } = state;
  const gaps: Gap[] = [];
  while (clocks.length > 0 && clocks[0]![1] + policy.gapWindowMs <= now) {
    const [high] = clocks[0]!;
    gaps.push(...missingIn(state, Math.max(reportedBelow, state.floor), high - 1));
    reportedBelow = Math.max(reportedBelow, high);
    clocks = clocks.slice(1);
  }
  if (gaps.length === 0 && clocks === state.clocks) return { state, gaps };
  return { state: { ...state, reportedBelow, clocks }, gaps };
}

/** The unclaimed ranges within [from, to]. */
function missingIn(state: EpochState, from: number, to: number): Gap[] {
  const gaps: Gap[] = [];
  let next = from;
  for (const [a, b] of state.claimed) {
    if (b < next) continue;
    if (a > to) break;
    if (a > next) gaps.push([next, Math.min(a - 1, to)]);
    next = b + 1;
  }
  if (next <= to) gaps.push([next, to]);
  return gaps;
}

/** The one text form in every store; undefined for text that is not a state (then the epoch starts over). */
export function encodeEpochState(state: EpochState): string {
  return JSON.stringify([state.floor, state.high, state.reportedBelow, state.claimed, state.clocks]);
}

export function decodeEpochState(text: string | undefined): EpochState | undefined {
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    if (!Array.isArray(v) || v.length !== 5) return undefined;
    const [floor, high, reportedBelow, claimed, clocks] = v as [unknown, unknown, unknown, unknown, unknown];
    const int = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
    const pairs = (x: unknown): x is [number, number][] => Array.isArray(x) && x.every((p) => Array.isArray(p) && p.length === 2 && int(p[0]) && int(p[1]));
    if (!int(floor) || !int(high) || !int(reportedBelow) || !pairs(claimed) || !pairs(clocks)) return undefined;
    return { floor, high, reportedBelow, claimed, clocks };
  } catch {
    return undefined;
  }
}

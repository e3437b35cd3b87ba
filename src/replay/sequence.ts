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
 * `high` and at or above the previous clock's `high` became missing at `since`. A clock whose
 * numbers were all claimed since is dropped, so that it times nothing later.
 *
 * A claim withdrawn (its sender will send the number again) makes the number missing from
 * then: a clock covers it, or, when the gaps below it were reported already, an entry of
 * `released` with its own time.
 *
 * The state is bounded, whatever a POP sends: numbers more than `maxTracked` below the highest
 * are forgotten (the `floor` rises; a number below it is `below-lowest`), at most MAX_RANGES
 * claimed ranges are kept (past that the floor rises to the oldest kept one), MAX_CLOCKS clocks
 * (past that the two newest merge under the earlier time) and MAX_RELEASED released numbers
 * (past that the oldest is reported now). Missing numbers the floor passes, or that are pushed
 * out, are reported as gaps at once: early, never late or not at all. Every number is at most
 * MAX_SEQUENCE (replay/batch-id.ts), so `high + 1` stays a safe integer.
 */
import { MAX_SEQUENCE } from './batch-id.ts';

/** Most gap clocks per epoch. */
export const MAX_CLOCKS = 64;
/** Most claimed ranges per epoch (one per hole a POP leaves): bounds the state's size and each request's work on it. */
export const MAX_RANGES = 256;
/** Most released numbers timed on their own. */
export const MAX_RELEASED = 64;

type Pair = readonly [number, number];

export interface EpochState {
  /** Numbers below this are forgotten. */
  readonly floor: number;
  /** Claimed numbers at or above `floor`: sorted, disjoint, non-adjacent [from, to] ranges. */
  readonly claimed: readonly Pair[];
  /** The highest number seen (claimed or not); floor - 1 before any. */
  readonly high: number;
  /** Missing numbers below this were reported as gaps already (or timed in `released`). */
  readonly reportedBelow: number;
  /** Gap clocks [high, since ms], both increasing. */
  readonly clocks: readonly Pair[];
  /** Numbers below reportedBelow whose claim was withdrawn: [number, since ms], by since. */
  readonly released: readonly Pair[];
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
export type Gap = Pair;

export interface Change {
  readonly state: EpochState;
  readonly gaps: Gap[];
}

/** The state of an epoch whose first number this guard sees is `n`: what came before is unknown to it, not missing. */
export function startAt(n: number): EpochState {
  return { floor: n, claimed: [], high: n - 1, reportedBelow: n, clocks: [], released: [] };
}

export const EMPTY: EpochState = startAt(1);

export function standing(state: EpochState | undefined, n: number): Standing {
  if (state === undefined) return 'new-epoch';
  if (n < state.floor) return 'below-lowest';
  if (isClaimed(state, n)) return 'duplicate';
  return n === firstUnclaimed(state) ? 'in-order' : 'ahead';
}

/** Index of the last range starting at or below `n`, or -1. */
function rangeAt(claimed: readonly Pair[], n: number): number {
  let lo = 0;
  let hi = claimed.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (claimed[mid]![0] <= n) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

export function isClaimed(state: EpochState, n: number): boolean {
  const i = rangeAt(state.claimed, n);
  return i >= 0 && n <= state.claimed[i]![1];
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
export function see(state: EpochState, n: number, now: number, policy: SequencePolicy): Change {
  let next = state;
  if (n > state.high) {
    const clocks = n > state.high + 1 ? withClock(state.clocks, [n, now]) : state.clocks;
    next = { ...state, high: n, clocks };
  }
  return raiseFloor(next, Math.max(1, next.high - policy.maxTracked + 1));
}

/** `n` is claimed (it is being forwarded). */
export function claim(state: EpochState, n: number): Change {
  if (n < state.floor || isClaimed(state, n)) return { state, gaps: [] };
  const claimed = [...state.claimed];
  const i = rangeAt(claimed, n);
  const joinsLeft = i >= 0 && claimed[i]![1] + 1 === n;
  const joinsRight = i + 1 < claimed.length && claimed[i + 1]![0] === n + 1;
  if (joinsLeft && joinsRight) claimed.splice(i, 2, [claimed[i]![0], claimed[i + 1]![1]]);
  else if (joinsLeft) claimed[i] = [claimed[i]![0], n];
  else if (joinsRight) claimed[i + 1] = [n, claimed[i + 1]![1]];
  else claimed.splice(i + 1, 0, [n, n]);
  const released = state.released.some(([r]) => r === n) ? state.released.filter(([r]) => r !== n) : state.released;
  let next: EpochState = { ...state, claimed, released };
  next = { ...next, clocks: liveClocks(next) };
  if (claimed.length <= MAX_RANGES) return { state: next, gaps: [] };
  // Too many holes: forget below the oldest range kept (its holes are reported now).
  return raiseFloor(next, claimed[claimed.length - MAX_RANGES]![0]);
}

/**
 * `n`'s claim is withdrawn at `now`: it was not delivered and its sender will send it again. It
 * is missing from then on: a clock that already covers it keeps its (earlier) time; else a clock
 * starting now is added, or, below numbers already reported, an entry of `released`.
 */
export function release(state: EpochState, n: number, now: number): Change {
  if (!isClaimed(state, n)) return { state, gaps: [] };
  const i = rangeAt(state.claimed, n);
  const [a, b] = state.claimed[i]!;
  const claimed = [...state.claimed];
  claimed.splice(i, 1, ...(a < n ? [[a, n - 1] as const] : []), ...(n < b ? [[n + 1, b] as const] : []));
  if (claimed.length > MAX_RANGES) return { state, gaps: [[n, n]] }; // cannot keep it apart: reported now, the claim stays
  const next: EpochState = { ...state, claimed };
  if (n < state.reportedBelow) {
    const released = [...state.released, [n, now] as const];
    const gaps: Gap[] = [];
    while (released.length > MAX_RELEASED) {
      const [oldest] = released.shift()!;
      gaps.push([oldest, oldest]);
    }
    return { state: { ...next, released }, gaps };
  }
  if (state.clocks.some(([high]) => high > n)) return { state: next, gaps: [] };
  return { state: { ...next, clocks: withClock(state.clocks, [Math.max(state.high, n) + 1, now]) }, gaps: [] };
}

/** Reports the missing numbers whose window passed; their clocks and released entries go. */
export function sweep(state: EpochState, now: number, policy: SequencePolicy): Change {
  let { reportedBelow, clocks, released } = state;
  const gaps: Gap[] = [];
  while (clocks.length > 0 && clocks[0]![1] + policy.gapWindowMs <= now) {
    const [high] = clocks[0]!;
    gaps.push(...missingIn(state, Math.max(reportedBelow, state.floor), high - 1));
    reportedBelow = Math.max(reportedBelow, high);
    clocks = clocks.slice(1);
  }
  while (released.length > 0 && released[0]![1] + policy.gapWindowMs <= now) {
    const [n] = released[0]!;
    if (n >= state.floor && !isClaimed(state, n)) gaps.push([n, n]);
    released = released.slice(1);
  }
  if (clocks === state.clocks && released === state.released) return { state, gaps };
  return { state: { ...state, reportedBelow, clocks, released }, gaps };
}

/** Adds a clock, merging the two newest past MAX_CLOCKS (the earlier time wins). */
function withClock(clocks: readonly Pair[], clock: Pair): Pair[] {
  const next = [...clocks, clock];
  if (next.length <= MAX_CLOCKS) return next;
  const last = next.pop()!;
  const before = next.pop()!;
  next.push([last[0], before[1]]);
  return next;
}

/** The clocks that still time a missing number. */
function liveClocks(state: EpochState): readonly Pair[] {
  let from = Math.max(state.reportedBelow, state.floor);
  let changed = false;
  const kept: Pair[] = [];
  for (const clock of state.clocks) {
    if (missingIn(state, from, clock[0] - 1).length > 0) kept.push(clock);
    else changed = true;
    from = Math.max(from, clock[0]);
  }
  return changed ? kept : state.clocks;
}

/** The floor rises to `lowest`: missing numbers below it not reported yet are the gaps returned. */
function raiseFloor(state: EpochState, lowest: number): Change {
  if (lowest <= state.floor) return { state, gaps: [] };
  const gaps = missingIn(state, Math.max(state.floor, state.reportedBelow), lowest - 1);
  for (const [n] of state.released) if (n < lowest && !isClaimed(state, n)) gaps.push([n, n]);
  const next: EpochState = {
    floor: lowest,
    high: Math.max(state.high, lowest - 1),
    reportedBelow: Math.max(state.reportedBelow, lowest),
    claimed: state.claimed.flatMap(([a, b]) => (b < lowest ? [] : [[Math.max(a, lowest), b] as const])),
    clocks: state.clocks.filter(([h]) => h > lowest),
    released: state.released.filter(([n]) => n >= lowest),
  };
  return { state: next, gaps };
}

/** The unclaimed ranges within [from, to]. */
function missingIn(state: EpochState, from: number, to: number): Gap[] {
  const gaps: Gap[] = [];
  if (from > to) return gaps;
  let next = from;
  const start = Math.max(0, rangeAt(state.claimed, from));
  for (let i = start; i < state.claimed.length; i++) {
    const [a, b] = state.claimed[i]!;
    if (b < next) continue;
    if (a > to) break;
    if (a > next) gaps.push([next, Math.min(a - 1, to)]);
    next = b + 1;
  }
  if (next <= to) gaps.push([next, to]);
  return gaps;
}

const FORMAT = 's1';

/** The one text form in every store. */
export function encodeEpochState(state: EpochState): string {
  return JSON.stringify([FORMAT, state.floor, state.high, state.reportedBelow, state.claimed, state.clocks, state.released]);
}

/**
 * A stored state, checked against every rule the transitions keep; `unreadable` for text that
 * breaks one (another version's, or a corrupted write). The caller refuses such an epoch's
 * batches rather than starting the epoch over: a reset would forget what was forwarded.
 */
export function decodeEpochState(text: string): EpochState | 'unreadable' {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'unreadable';
  }
  if (!Array.isArray(v) || v.length !== 7 || v[0] !== FORMAT) return 'unreadable';
  const [, floor, high, reportedBelow, claimed, clocks, released] = v as unknown[];
  const num = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0 && (x as number) <= MAX_SEQUENCE + 1;
  const pairs = (x: unknown, max: number): x is [number, number][] =>
    Array.isArray(x) && x.length <= max && x.every((p) => Array.isArray(p) && p.length === 2 && Number.isSafeInteger(p[0]) && Number.isSafeInteger(p[1]) && p[0] >= 0 && p[1] >= 0);
  if (!num(floor) || floor < 1 || !num(high) || high < floor - 1 || !num(reportedBelow) || reportedBelow < floor) return 'unreadable';
  if (!pairs(claimed, MAX_RANGES) || !pairs(clocks, MAX_CLOCKS) || !pairs(released, MAX_RELEASED)) return 'unreadable';
  for (let i = 0; i < claimed.length; i++) {
    const [a, b] = claimed[i]!;
    if (a > b || a < floor || b > high || (i > 0 && a <= claimed[i - 1]![1] + 1)) return 'unreadable';
  }
  for (let i = 0; i < clocks.length; i++) {
    const [h, since] = clocks[i]!;
    if (h > high + 1 || h <= floor || (i > 0 && (h <= clocks[i - 1]![0] || since < clocks[i - 1]![1]))) return 'unreadable';
  }
  for (let i = 0; i < released.length; i++) {
    const [n, since] = released[i]!;
    if (n < floor || n >= reportedBelow || (i > 0 && since < released[i - 1]![1])) return 'unreadable';
  }
  return { floor, high, reportedBelow, claimed, clocks, released };
}

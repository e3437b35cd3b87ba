/**
 * Options for an lru-cache holding at most `max` entries whose memory grows as it fills.
 *
 * With `max`, lru-cache allocates its key, value and link arrays for all `max` entries up front:
 * the guard's caches of client addresses (limits.max_tracked_addresses, 50,000 by default) held
 * about 9 MiB while empty. A size bound of 1 per entry (`maxSize`) bounds the count the same way
 * (the least recently used entry is evicted, and disposed, first) without the up-front arrays.
 */
export function entryBound(max: number): { readonly maxSize: number; readonly sizeCalculation: () => number } {
  return { maxSize: max, sizeCalculation: one };
}

const one = () => 1;

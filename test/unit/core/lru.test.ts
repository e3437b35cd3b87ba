// entryBound: an lru-cache bounded by entry count without allocating for every entry up front.
import { LRUCache } from 'lru-cache';
import t from 'tap';
import { entryBound } from '../../../src/core/lru.ts';

t.test('holds at most max entries, evicting (and disposing) the least recently used first', async (t) => {
  const evicted: string[] = [];
  const cache = new LRUCache<string, number>({ ...entryBound(3), dispose: (_v, key, reason) => { if (reason === 'evict') evicted.push(key); } });
  for (const k of ['a', 'b', 'c']) cache.set(k, 1);
  cache.get('a'); // b is now the least recently used
  cache.set('d', 1);
  t.equal(cache.size, 3);
  t.same([...cache.keys()].sort(), ['a', 'c', 'd']);
  t.same(evicted, ['b']);
  for (let i = 0; i < 100; i++) cache.set(`k${i}`, i);
  t.equal(cache.size, 3, 'still bounded after many inserts');
});

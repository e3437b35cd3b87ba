// The in-memory nonce store: records once, refuses when full instead of evicting, purges only
// what has expired, by an injected clock.
import t from 'tap';
import { MemoryNonceStore } from '../../../src/store/memory.ts';
import { StoreUnavailableError } from '../../../src/store/store.ts';

t.test('records, then reports replays until the time-to-live passes', async (t) => {
  let now = 1_000_000;
  const store = new MemoryNonceStore({ maxNonces: 10, now: () => now });
  t.equal(await store.recordNonce('calgary-01:aaaaaaaaaaaaaaaa', 600_000), 'recorded');
  t.equal(await store.recordNonce('calgary-01:aaaaaaaaaaaaaaaa', 600_000), 'replayed');
  t.equal(await store.recordNonce('zurich-01:aaaaaaaaaaaaaaaa', 600_000), 'recorded', 'keys are per POP');
  now += 599_999;
  t.equal(await store.recordNonce('calgary-01:aaaaaaaaaaaaaaaa', 600_000), 'replayed', 'one ms before expiry');
  now += 1;
  t.equal(await store.recordNonce('calgary-01:aaaaaaaaaaaaaaaa', 600_000), 'recorded', 'expired: a fresh sighting');
  t.equal(await store.nonceCount(), 1, 'zurich-01 expired at the same moment');
  t.equal(await store.recordNonce('calgary-01:aaaaaaaaaaaaaaaa', 600_000), 'replayed', 're-recorded with a new time-to-live');
});

t.test('full: refuses, evicts nothing, and frees room only as nonces expire', async (t) => {
  let now = 0;
  const store = new MemoryNonceStore({ maxNonces: 3, now: () => now });
  for (const k of ['a', 'b', 'c']) {
    t.equal(await store.recordNonce(k, 1000), 'recorded');
    now += 100;
  }
  t.equal(await store.recordNonce('d', 1000), 'full');
  t.equal(await store.recordNonce('a', 1000), 'replayed', 'a replay is still a replay when full');
  t.equal(await store.nonceCount(), 3);
  for (const k of ['a', 'b', 'c']) t.equal(await store.recordNonce(k, 1000), 'replayed', `${k} was not evicted`);
  now = 1000; // a expires
  t.equal(await store.recordNonce('d', 1000), 'recorded');
  t.equal(await store.recordNonce('e', 1000), 'full', 'b and c are still live');
  t.equal(await store.recordNonce('b', 1000), 'replayed');
});

t.test('steady state at capacity: expired nonces make room, the size stays bounded', async (t) => {
  let now = 0;
  const max = 5000;
  const store = new MemoryNonceStore({ maxNonces: max, now: () => now });
  let full = 0;
  for (let i = 0; i < 200_000; i++) {
    now += 1;
    if (store.recordNonceSync(`calgary-01:${i.toString(36).padStart(16, '0')}`, max) === 'full') full += 1;
  }
  t.equal(full, 0, 'one nonce per ms with a time-to-live of max ms never fills it');
  t.equal(await store.nonceCount(), max, 'exactly the live window');
});

t.test('mixed time-to-lives: a long-lived head never causes a live nonce to be dropped', async (t) => {
  let now = 0;
  const store = new MemoryNonceStore({ maxNonces: 3, now: () => now });
  t.equal(await store.recordNonce('long', 10_000), 'recorded');
  t.equal(await store.recordNonce('short', 10), 'recorded');
  now = 20;
  t.equal(await store.recordNonce('short', 10), 'recorded', 'expired short one re-recorded');
  t.equal(await store.recordNonce('long', 10_000), 'replayed');
  t.equal(await store.recordNonce('short', 10), 'replayed');
});

t.test('closed: fails closed with StoreUnavailableError', async (t) => {
  const store = new MemoryNonceStore({ maxNonces: 3, now: () => 0 });
  await store.close();
  await t.rejects(store.recordNonce('a', 1000), StoreUnavailableError);
  t.throws(() => new MemoryNonceStore({ maxNonces: 0, now: () => 0 }), RangeError);
  await t.rejects(new MemoryNonceStore({ maxNonces: 1, now: () => 0 }).recordNonce('a', 0), RangeError);
});

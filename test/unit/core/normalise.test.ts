import t from 'tap';
import { normalisePath, normaliseTarget } from '../../../src/core/normalise.ts';

t.test('accepted and normalised', async (t) => {
  t.equal(normalisePath('/api/replication/apply'), '/api/replication/apply');
  t.equal(normalisePath('/api/%72eplication/apply'), '/api/replication/apply', 'unreserved decoded');
  t.equal(normalisePath('/a/%7e'), '/a/~');
  t.equal(normalisePath('/a/%3a'), '/a/%3A', 'reserved kept, hex upper-cased');
  t.equal(normalisePath('/a/'), '/a/', 'trailing slash kept (matches no route)');
  t.equal(normalisePath('/'), '/');
  t.same(normaliseTarget('/a?b=c'), { ok: true, path: '/a', query: 'b=c' });
  t.same(normaliseTarget('/a?'), { ok: true, path: '/a', query: '' });
});

t.test('refused', async (t) => {
  for (const bad of ['', 'a', '*', 'http://x/a', '/a/../b', '/a/./b', '/..', '/.', '/a/..', '//a', '/a//b', '//',
    '/a%2Fb', '/a%2fb', '/a%5Cb', '/a%2e%2e/b', '/a/%2E', '/a\\b', '/a b', '/a%', '/a%4', '/a%zz', '/a%00', '/a%0a',
    '/é', '/a\u0000', '/a#frag', '/a"b', '/a<b>', '/a|b', '/a^b', '/a`b', '/a{b}']) {
    t.same(normaliseTarget(bad), { ok: false }, JSON.stringify(bad));
  }
});

import t from 'tap';
import { downstreamResponseHeaders, upstreamRequestHeaders } from '../../../src/proxy/headers.ts';

const identity = { pop: 'calgary-01', requestId: 'rid', certSha256: 'ab'.repeat(32), clientAddress: '192.0.2.1' };

function pairs(list: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < list.length; i += 2) out.push([list[i]!, list[i + 1]!]);
  return out;
}

t.test('client identity and hop-by-hop headers never reach the upstream', async (t) => {
  const raw = [
    'Host', 'evil.example', 'Content-Type', 'application/json', 'Content-Length', '999',
    'X-Replguard-Source-Pop', 'forged', 'x-replguard-request-id', 'forged', 'X-Forwarded-For', '203.0.113.1',
    'X-Forwarded-Host', 'evil', 'Forwarded', 'for=x', 'X-Real-IP', '203.0.113.1',
    'Connection', 'keep-alive, X-Secret-Hop', 'X-Secret-Hop', 'v', 'Keep-Alive', 'timeout=5', 'TE', 'trailers',
    'Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'Proxy-Authorization', 'Basic x', 'Trailer', 'x',
    'Authorization', 'Bearer secret', 'Expect', '100-continue', 'X-Custom', 'kept', 'X-Custom', 'twice',
  ];
  const out = pairs(upstreamRequestHeaders(raw, '127.0.0.1:8080', 12, identity, new Set(['authorization'])));
  const names = out.map(([n]) => n);
  t.same(out.filter(([n]) => n === 'x-custom'), [['x-custom', 'kept'], ['x-custom', 'twice']], 'duplicates kept in order');
  t.same(Object.fromEntries(out.filter(([n]) => n !== 'x-custom')), {
    host: '127.0.0.1:8080',
    'content-type': 'application/json',
    'content-length': '12',
    'x-replguard-source-pop': 'calgary-01',
    'x-replguard-request-id': 'rid',
    'x-replguard-client-cert-sha256': identity.certSha256,
    'x-forwarded-for': '192.0.2.1',
    'x-forwarded-proto': 'https',
  });
  t.equal(names.filter((n) => n === 'x-replguard-source-pop').length, 1, 'exactly one identity header');
});

t.test('response headers: hop-by-hop dropped, duplicates kept', async (t) => {
  t.same(downstreamResponseHeaders(['Content-Type', 'application/json', 'Connection', 'close', 'Set-Cookie', 'a', 'Set-Cookie', 'b', 'X-Replguard-Request-Id', 'spoof']), {
    'content-type': 'application/json',
    'set-cookie': ['a', 'b'],
  });
});

t.test('downstreamResponseHeaders takes the object form undici parses (lower-case names, repeated fields as arrays)', async (t) => {
  t.same(downstreamResponseHeaders({ 'content-type': 'application/json', connection: 'keep-alive', 'keep-alive': 'timeout=4', 'set-cookie': ['a', 'b'], 'x-replguard-request-id': 'spoof', 'transfer-encoding': 'chunked' }), {
    'content-type': 'application/json',
    'set-cookie': ['a', 'b'],
  });
});

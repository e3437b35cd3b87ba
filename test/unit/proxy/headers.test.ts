import t from 'tap';
import { Rejection } from '../../../src/pipeline/reasons.ts';
import {
  checkRequestHeaders, downstreamResponseHeaders, forwardHeaderProblem, isGuardHeaderLookalike, requestHeaderPolicy, upstreamRequestHeaders,
} from '../../../src/proxy/headers.ts';

const identity = { pop: 'calgary-01', requestId: 'rid', certSha256: 'ab'.repeat(32), clientAddress: '192.0.2.1' };
const CREDENTIALS = new Set(['authorization', 'webhook-id', 'webhook-timestamp', 'webhook-signature']);

function pairs(list: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < list.length; i += 2) out.push([list[i]!, list[i + 1]!]);
  return out;
}

/** Identity, routing and override headers a backup might trust, as the attack run sent them. */
const FORGED = [
  'X-Replguard-Source-Pop', 'x_replguard_source_pop', 'X_Replguard_Request_Id', 'x-replguard_client-cert-sha256', 'X-REPLGUARD-ANYTHING',
  'X-Forwarded-For', 'x_forwarded_for', 'X-Forwarded_Proto', 'X-Forwarded-Host', 'Forwarded', 'X-Real-IP', 'x_real_ip',
  'Client-Cert', 'Client-Cert-Chain', 'X-SSL-Client-Cert', 'X-SSL-Client-DN', 'X-Client-DN', 'X-Client-Verify', 'ssl_client_cert',
  'X-Remote-User', 'Remote-User', 'True-Client-IP', 'Via', 'X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override',
  'X-Original-URL', 'X-Rewrite-URL', 'X-Original-Method', 'Cookie', 'X-Custom',
];

t.test('only allow-listed client headers, then the guard\'s own, reach the upstream', async (t) => {
  const raw = [
    'Host', 'evil.example', 'Content-Type', 'application/json', 'Content-Length', '999', 'Accept', 'application/json',
    'User-Agent', 'primary/1', 'X-Request-Id', 'abc',
    ...FORGED.flatMap((name) => [name, 'forged']),
    'Connection', 'keep-alive, X-Secret-Hop', 'X-Secret-Hop', 'v', 'Keep-Alive', 'timeout=5', 'TE', 'trailers',
    'Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'Proxy-Authorization', 'Basic x', 'Trailer', 'x',
    'Authorization', 'Bearer secret', 'webhook-id', 'id', 'Expect', '100-continue',
  ];
  const { headers, dropped } = upstreamRequestHeaders(raw, '127.0.0.1:8080', 12, identity, requestHeaderPolicy(), CREDENTIALS);
  t.same(pairs(headers), [
    ['host', '127.0.0.1:8080'],
    ['content-type', 'application/json'],
    ['accept', 'application/json'],
    ['user-agent', 'primary/1'],
    ['x-request-id', 'abc'],
    ['content-length', '12'],
    ['x-replguard-source-pop', 'calgary-01'],
    ['x-replguard-request-id', 'rid'],
    ['x-replguard-client-cert-sha256', identity.certSha256],
    ['x-forwarded-for', '192.0.2.1'],
    ['x-forwarded-proto', 'https'],
  ]);
  // Every forged name plus X-Secret-Hop; hop-by-hop, Host, Content-Length, Expect and credentials are consumed, not counted.
  t.equal(dropped, FORGED.length + 1, 'dropped fields counted');
});

t.test('upstream.forward_headers extends the allow-list', async (t) => {
  const policy = requestHeaderPolicy(['x-trace-id']);
  const { headers, dropped } = upstreamRequestHeaders(['X-Trace-Id', 't1', 'x_trace_id', 't2', 'X-Other', 'o'], 'h', 0, identity, policy);
  t.same(pairs(headers).filter(([n]) => n === 'x-trace-id'), [['x-trace-id', 't1']], 'the exact name only, not its underscore spelling');
  t.equal(dropped, 2);
  const unsafe = requestHeaderPolicy(['x-replguard-source-pop', 'x_forwarded_for', 'client-cert']);
  t.same([...unsafe.forward].sort(), ['accept', 'content-type', 'user-agent', 'x-request-id'], 'a policy never forwards a refused name, even unvalidated');
});

t.test('forward_headers refusals', async (t) => {
  for (const name of [
    'x-replguard-source-pop', 'x_replguard_source_pop', 'x-replguard_extra', 'x-forwarded-for', 'x-forwarded_host', 'host', 'content-length', 'content_length',
    'connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'proxy-authorization', 'authorization', 'cookie', 'webhook-signature',
    'client-cert', 'x-ssl-client-cert', 'x-client-dn', 'x-remote-user', 'true-client-ip', 'via', 'forwarded', 'x-real-ip',
    'x-http-method-override', 'x-original-url', 'x-rewrite-url', 'content-encoding', 'expect',
    'x trace', 'x-trace:', '', 'x-tr\u00e4ce', 'x_trace',
  ]) {
    t.type(forwardHeaderProblem(name), 'string', `refused: ${JSON.stringify(name)}`);
  }
  for (const name of ['x-trace-id', 'traceparent', 'tracestate', 'idempotency-key']) t.equal(forwardHeaderProblem(name), undefined, `allowed: ${name}`);
  t.ok(isGuardHeaderLookalike('X_REPLGUARD_SOURCE_POP'));
  t.ok(isGuardHeaderLookalike('Content_Length'));
  t.notOk(isGuardHeaderLookalike('x-replguardian'));
});

function reasonOf(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof Rejection ? err.reason : 'not a Rejection';
  }
}

t.test('a singleton sent twice is HTTP_HEADER_DUPLICATE, a content coding is HTTP_CONTENT_ENCODING_UNSUPPORTED', async (t) => {
  const policy = requestHeaderPolicy(['x-trace-id']);
  const check = (raw: string[]) => reasonOf(() => checkRequestHeaders(raw, policy));
  t.equal(check(['Content-Type', 'application/json', 'Accept', 'a', 'X-Other', '1', 'X-Other', '2']), undefined, 'a header that is not forwarded may repeat');
  t.equal(check(['Content-Type', 'application/json', 'content-type', 'text/plain']), 'HTTP_HEADER_DUPLICATE');
  t.equal(check(['Content-Type', 'application/json', 'CONTENT-TYPE', 'application/json']), 'HTTP_HEADER_DUPLICATE', 'even the same value');
  t.equal(check(['User-Agent', 'a', 'user-agent', 'b']), 'HTTP_HEADER_DUPLICATE');
  t.equal(check(['X-Trace-Id', 'a', 'x-trace-id', 'b']), 'HTTP_HEADER_DUPLICATE', 'an operator-listed header too');
  t.equal(check(['Content-Encoding', 'identity', 'Content-Encoding', 'identity']), 'HTTP_HEADER_DUPLICATE');
  t.equal(check(['Content-Encoding', 'identity']), undefined);
  t.equal(check(['Content-Encoding', ' Identity ']), undefined);
  for (const coding of ['gzip', 'deflate', 'br', 'zstd', 'x-gzip', 'identity, gzip', 'GZIP', 'compress']) {
    t.equal(check(['Content-Encoding', coding]), 'HTTP_CONTENT_ENCODING_UNSUPPORTED', coding);
  }
});

t.test('response headers: an allow-list, less the names the Connection field lists', async (t) => {
  t.same(downstreamResponseHeaders([
    'Content-Type', 'application/json', 'Connection', 'close, ETag', 'ETag', '"x"', 'Server', 'backup/1.2', 'X-Powered-By', 'Express',
    'Set-Cookie', 'a', 'X-Replguard-Request-Id', 'spoof', 'Retry-After', '5', 'X-Debug', 'db=postgres://u:p@h', 'Cache-Control', 'private',
    'Vary', 'a', 'Vary', 'b',
  ]), {
    'content-type': 'application/json',
    'retry-after': '5',
    vary: ['a', 'b'],
  });
});

t.test('downstreamResponseHeaders takes the object form undici parses (lower-case names, repeated fields as arrays)', async (t) => {
  t.same(downstreamResponseHeaders({
    'content-type': 'application/json', connection: ['keep-alive', 'x-hop, content-language'], 'keep-alive': 'timeout=4', 'content-language': 'en',
    'set-cookie': ['a', 'b'], 'x-replguard-request-id': 'spoof', 'transfer-encoding': 'chunked', 'content-length': '2', server: 'x',
  }), {
    'content-type': 'application/json',
    'content-length': '2',
  });
});

// What crosses the guard, both ways, through real sockets: only allow-listed client headers
// reach the backup (forged identity, certificate, override headers in any spelling do not);
// repeated singletons are 400 and content codings 415; only allow-listed upstream headers reach
// the client, a 5xx's body is replaced by the generic one (audited), interim 1xx answers are skipped.
import t from 'tap';
import { gzipSync } from 'node:zlib';
import { baseConfig, startGuard } from '../helpers/guard.ts';
import { call } from '../helpers/client.ts';
import { makePki, wireBody } from '../helpers/pki.ts';
import { rawRequest } from '../helpers/tls-client.ts';
import { startAnsweringUpstream, startBackup } from '../helpers/upstream.ts';

const PATH = '/api/replication/apply';
const pki = makePki([]);
const cert = pki.client('calgary-01');

/** Headers a backup might trust or obey, each in its usual spelling and in case / `_` variants. */
const FORGED = [
  'X-Replguard-Source-Pop', 'x_replguard_source_pop', 'X_REPLGUARD_SOURCE_POP', 'x-replguard_source-pop', 'X-Replguard-Request-Id', 'x_replguard_request_id',
  'X-Replguard-Client-Cert-Sha256', 'x_replguard_client_cert_sha256', 'X-Replguard-Admin',
  'X-Forwarded-For', 'x_forwarded_for', 'X_Forwarded_For', 'X-Forwarded-Proto', 'x_forwarded_proto', 'X-Forwarded-Host', 'X-Forwarded-Client-Cert',
  'Forwarded', 'X-Real-IP', 'x_real_ip',
  'Client-Cert', 'Client-Cert-Chain', 'client_cert', 'X-SSL-Client-Cert', 'X-SSL-Client-DN', 'X-SSL-Client-Verify', 'X-Client-DN', 'X-Client-Cert', 'SSL_CLIENT_S_DN',
  'X-Remote-User', 'x_remote_user', 'Remote-User', 'True-Client-IP', 'X-Client-IP', 'CF-Connecting-IP', 'Via',
  'X-HTTP-Method-Override', 'x_http_method_override', 'X-HTTP-Method', 'X-Method-Override', 'X-Original-URL', 'X-Original-URI', 'X-Rewrite-URL', 'x_original_url',
  'Cookie', 'X-Anything-Else',
];

function head(lines: string[], body: string | Buffer): Buffer {
  const text = `POST ${PATH} HTTP/1.1\r\nHost: localhost\r\n${lines.map((l) => `${l}\r\n`).join('')}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`;
  return Buffer.concat([Buffer.from(text, 'latin1'), Buffer.from(body)]);
}

t.test('the upstream request is built from an allow-list', async (t) => {
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, { upstream: { url: backup.url, timeout: '2s', forward_headers: ['X-Trace-Id'] } }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });

  await t.test('forged identity, certificate and override headers never reach the backup, in any spelling', async (t) => {
    const body = wireBody(cert);
    const lines = ['Content-Type: application/json', 'User-Agent: replicator/2.1', 'Accept: application/json', 'X-Request-Id: corr-1', 'X-Trace-Id: t-1', 'x_trace_id: t-2',
      ...FORGED.map((name) => `${name}: forged`)];
    const reply = await rawRequest(guard.port, pki.caFile, head(lines, body), { cert });
    t.equal(reply.status, 200);
    const [seen] = backup.received();
    const names = Object.keys(seen!.headers).sort();
    t.same(names, [
      'accept', 'connection', 'content-length', 'content-type', 'host', 'user-agent',
      'x-forwarded-for', 'x-forwarded-proto', 'x-replguard-client-cert-sha256', 'x-replguard-request-id', 'x-replguard-source-pop',
      'x-request-id', 'x-trace-id',
    ], 'exactly the allow-list (defaults, upstream.forward_headers), the guard\'s own and undici\'s connection');
    t.notOk(Object.values(seen!.headers).includes('forged'), 'no forged value under any name');
    t.equal(seen!.headers['x-replguard-source-pop'], 'calgary-01');
    t.equal(seen!.headers['x-forwarded-for'], '127.0.0.1');
    t.equal(seen!.headers['x-trace-id'], 't-1', 'the listed name only, not its underscore spelling');
    t.equal(seen!.body.toString(), body);
    const [event] = await guard.waitForEvents((e) => e.event.reason === 'FORWARDED', 1);
    t.equal(event!.replguard.headers_dropped, FORGED.length + 1, 'every dropped client header counted (the forged ones and x_trace_id)');
  });

  await t.test('a singleton sent twice is refused before anything reaches the backup', async (t) => {
    const before = backup.received().length;
    const body = wireBody(cert);
    const cases: Array<[string, string[]]> = [
      ['Content-Type twice', ['Content-Type: application/json', 'Content-Type: text/plain']],
      ['Content-Type twice, same value', ['Content-Type: application/json', 'content-type: application/json']],
      ['User-Agent twice', ['Content-Type: application/json', 'User-Agent: a', 'User-Agent: b']],
      ['X-Request-Id twice', ['Content-Type: application/json', 'X-Request-Id: a', 'x-request-id: b']],
      ['a forward_headers name twice', ['Content-Type: application/json', 'X-Trace-Id: a', 'X-Trace-Id: b']],
      ['Content-Encoding twice', ['Content-Type: application/json', 'Content-Encoding: identity', 'Content-Encoding: identity']],
    ];
    for (const [name, lines] of cases) {
      const reply = await rawRequest(guard.port, pki.caFile, head(lines, body), { cert });
      t.equal(reply.status, 400, name);
      t.match(reply.text, /"error":"bad_request"/, `${name}: generic body`);
      t.ok(reply.closedByServer, `${name}: connection closed`);
    }
    const events = await guard.waitForEvents((e) => e.event.reason === 'HTTP_HEADER_DUPLICATE', cases.length);
    t.equal(events.length, cases.length, 'each audited as HTTP_HEADER_DUPLICATE');
    t.equal(backup.received().length, before, 'nothing reached the backup');
  });

  await t.test('a Content-Encoding other than identity is 415', async (t) => {
    const before = backup.received().length;
    const gz = gzipSync(wireBody(cert));
    for (const coding of ['gzip', 'GZip', 'deflate', 'br', 'identity, gzip']) {
      const reply = await rawRequest(guard.port, pki.caFile, head(['Content-Type: application/json', `Content-Encoding: ${coding}`], gz), { cert });
      t.equal(reply.status, 415, coding);
      t.match(reply.text, /"error":"unsupported_media_type"/, `${coding}: generic body`);
    }
    await guard.waitForEvents((e) => e.event.reason === 'HTTP_CONTENT_ENCODING_UNSUPPORTED', 5);
    t.equal(backup.received().length, before, 'nothing reached the backup');
    const plain = await rawRequest(guard.port, pki.caFile, head(['Content-Type: application/json', 'Content-Encoding: identity'], wireBody(cert)), { cert });
    t.equal(plain.status, 200, 'identity is the body as it is');
    t.notOk(backup.received().at(-1)!.headers['content-encoding'], 'and is not forwarded');
  });
});

const LEAK = 'Error: connect ECONNREFUSED\n    at Pool.connect (/srv/backup/node_modules/pg/lib/pool.js:45:11)\n  url: postgres://replicator:s3cr3t@db-7.internal:5432/prod';

t.test('the backup\'s answer: allow-listed headers, generic 5xx bodies, interim answers skipped', async (t) => {
  const answers = {
    '/leaky': (res: import('node:http').ServerResponse) => {
      const body = '{"applied":1}';
      res.writeHead(200, {
        server: 'backup/9.1 (Ubuntu)', 'x-powered-by': 'Express', 'x-backend-node': 'db-7.internal', 'set-cookie': 'sid=1',
        'cache-control': 'public, max-age=3600', connection: 'keep-alive, ETag, X-Backend-Node', etag: '"v1"', 'content-type': 'application/json', 'content-length': String(body.length),
      });
      res.end(body);
    },
    '/error500': (res: import('node:http').ServerResponse) => {
      res.writeHead(500, { server: 'backup/9.1', 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(LEAK)), 'x-debug': 'db-7' });
      res.end(LEAK);
    },
    '/error503': (res: import('node:http').ServerResponse) => {
      res.writeHead(503, { 'retry-after': '7', 'content-type': 'text/plain' });
      res.end(LEAK); // chunked: no declared length
    },
    '/continue': (res: import('node:http').ServerResponse) => {
      res.writeContinue();
      res.writeProcessing();
      res.writeEarlyHints({ link: '</style.css>; rel=preload' });
      res.writeContinue();
      const body = '{"applied":2}';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      res.end(body);
    },
  };
  const upstream = await startAnsweringUpstream(answers);
  const routes = Object.keys(answers).map((path) => ({ method: 'POST', path }));
  const guard = await startGuard(baseConfig(pki, upstream.url, { routes }));
  const relaying = await startGuard(baseConfig(pki, upstream.url, { routes, upstream: { url: upstream.url, timeout: '2s', relay_error_bodies: true } }));
  t.teardown(async () => {
    await guard.stop();
    await relaying.stop();
    await upstream.stop();
  });
  const event = async (g: typeof guard, requestId: unknown) => (await g.waitForEvents((e) => e.replguard?.request_id === requestId, 1))[0]!;

  await t.test('Server, X-Powered-By, Set-Cookie and the headers Connection names are not relayed', async (t) => {
    const reply = await call(guard.port, pki.caFile, { cert, path: '/leaky' });
    t.equal(reply.status, 200);
    t.equal(reply.body, '{"applied":1}');
    for (const name of ['server', 'x-powered-by', 'x-backend-node', 'set-cookie', 'etag']) t.notOk(reply.headers[name], `${name} not relayed`);
    t.equal(reply.headers['content-type'], 'application/json');
    t.equal(reply.headers['x-content-type-options'], 'nosniff', 'the guard\'s own headers are added');
    t.equal(reply.headers['cache-control'], 'no-store', 'and the backup\'s Cache-Control does not replace no-store');
    t.match(reply.headers['x-replguard-request-id'], /^[0-9a-f-]{36}$/);
    const e = await event(guard, reply.headers['x-replguard-request-id']);
    t.equal(e.event.reason, 'FORWARDED');
    t.equal(e.replguard.upstream_status, 200);
    t.equal(e.replguard.upstream_body_bytes, 13);
  });

  await t.test('an upstream 5xx is answered with its status and the generic body; the original is audited', async (t) => {
    for (const [path, status, error] of [['/error500', 500, 'internal_error'], ['/error503', 503, 'service_unavailable']] as const) {
      for (let i = 0; i < 2; i++) { // twice: the pooled connection to the upstream stays usable
        const reply = await call(guard.port, pki.caFile, { cert, path });
        t.equal(reply.status, status, path);
        t.same(JSON.parse(reply.body), { error, request_id: reply.headers['x-replguard-request-id'] }, `${path}: generic body`);
        t.notMatch(reply.body, /postgres|ECONNREFUSED|s3cr3t/);
        t.notOk(reply.headers.server);
        t.notOk(reply.headers['x-debug']);
        t.equal(reply.headers['content-type'], 'application/json');
        if (status === 503) t.equal(reply.headers['retry-after'], '7', 'Retry-After is kept');
        const e = await event(guard, reply.headers['x-replguard-request-id']);
        t.equal(e.event.reason, 'FORWARDED');
        t.equal(e.http.response.status_code, status);
        t.equal(e.http.response.body.bytes, Buffer.byteLength(reply.body), 'the bytes the client got');
        t.equal(e.replguard.upstream_status, status);
        t.equal(e.replguard.upstream_body_bytes, Buffer.byteLength(LEAK), 'the size of what the upstream sent');
      }
    }
  });

  await t.test('upstream.relay_error_bodies: true relays the 5xx body (headers still allow-listed)', async (t) => {
    const reply = await call(relaying.port, pki.caFile, { cert, path: '/error500' });
    t.equal(reply.status, 500);
    t.equal(reply.body, LEAK);
    t.notOk(reply.headers.server);
    t.notOk(reply.headers['x-debug']);
    const e = await event(relaying, reply.headers['x-replguard-request-id']);
    t.equal(e.replguard.upstream_status, 500);
    t.equal(e.http.response.body.bytes, Buffer.byteLength(LEAK));
  });

  await t.test('100 Continue, 102 and 103 before the answer: the final answer is relayed', async (t) => {
    for (let i = 0; i < 3; i++) {
      const reply = await call(guard.port, pki.caFile, { cert, path: '/continue' });
      t.equal(reply.status, 200, `request ${i + 1}`);
      t.equal(reply.body, '{"applied":2}');
      t.notOk(reply.headers.link, 'nothing of the interim answers');
      const e = await event(guard, reply.headers['x-replguard-request-id']);
      t.equal(e.event.reason, 'FORWARDED');
    }
    // And the connection is still good for an ordinary answer after them.
    t.equal((await call(guard.port, pki.caFile, { cert, path: '/leaky' })).status, 200);
  });
});

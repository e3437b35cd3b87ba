// Route allow-list, bad path forms, upstream failures and the generic error bodies.
import t from 'tap';
import { connect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { once } from 'node:events';
import { makePki } from '../helpers/pki.ts';
import { closedPortUrl, startBackup, startHangingUpstream } from '../helpers/upstream.ts';
import { baseConfig, startGuard } from '../helpers/guard.ts';
import { call } from '../helpers/client.ts';

const pki = makePki([]);
const pop = pki.client('calgary-01');

/** Sends a raw request line (so the path is not normalised by a client library). */
function rawRequest(port: number, target: string, method = 'POST'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(pki.caFile), cert: readFileSync(pop.cert), key: readFileSync(pop.key) }, () => {
      const body = JSON.stringify({ source_pop: 'calgary-01', entries: [] });
      socket.write(`${method} ${target} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
    });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d) => (data += d));
    socket.on('end', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      resolve({ status, body: data.slice(data.indexOf('\r\n\r\n') + 4) });
    });
    socket.on('error', reject);
  });
}

t.test('route allow-list and path normalisation', async (t) => {
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });

  const cases: Array<[string, string, number, string]> = [
    ['POST', '/api/replication/../replication/apply', 400, 'ROUTE_TARGET_INVALID'],
    ['POST', '/api/replication/./apply', 400, 'ROUTE_TARGET_INVALID'],
    ['POST', '/api//replication/apply', 400, 'ROUTE_TARGET_INVALID'],
    ['POST', '/api/replication%2Fapply', 400, 'ROUTE_TARGET_INVALID'],
    ['POST', '/api/replication%2fapply', 400, 'ROUTE_TARGET_INVALID'],
    ['POST', '/api/replication/%2e%2e/apply', 400, 'ROUTE_TARGET_INVALID'],
    ['POST', '/api/replication/%2E/apply', 400, 'ROUTE_TARGET_INVALID'],
    ['POST', '/api/replication\\apply', 400, 'ROUTE_TARGET_INVALID'],
    ['POST', '/api/replication/apply%', 400, 'ROUTE_TARGET_INVALID'],
    ['POST', 'http://localhost/api/replication/apply', 400, 'ROUTE_TARGET_INVALID'],
    ['POST', '/api/replication/apply?dry_run=1', 400, 'ROUTE_QUERY_NOT_ALLOWED'],
    ['POST', '/api/replication/apply?access_token=abc', 400, 'AUTH_TOKEN_IN_QUERY'],
    ['POST', '/api/replication/apply/', 404, 'ROUTE_NOT_FOUND'],
    ['POST', '/api/replication/APPLY', 404, 'ROUTE_NOT_FOUND'],
    ['POST', '/admin', 404, 'ROUTE_NOT_FOUND'],
    ['GET', '/api/replication/apply', 405, 'ROUTE_METHOD_NOT_ALLOWED'],
    ['DELETE', '/api/replication/apply', 405, 'ROUTE_METHOD_NOT_ALLOWED'],
    ['POST', '/api/%72eplication/apply', 200, 'FORWARDED'], // %72 is "r": an encoded unreserved character is decoded
  ];
  for (const [method, target, status, reason] of cases) {
    const reply = await rawRequest(guard.port, target, method);
    t.equal(reply.status, status, `${method} ${target}`);
    if (status !== 200) {
      t.notMatch(reply.body, /replication|apply|\.\.|access_token|dry_run|Error|at /, 'the body names nothing of the request');
    }
    const logged = target.split('?')[0]; // the query is never logged (it may hold a credential)
    const [event] = await guard.waitForEvents((e) => e.http?.request?.method === method && (e.url?.path === logged || e.url?.path === logged!.replace('%72', 'r')) && e.event.reason === reason, 1);
    t.equal(event!.event.reason, reason, `audited as ${reason}`);
  }
  const forwarded = backup.received();
  t.equal(forwarded.length, 1, 'only the decoded-unreserved request reached the backup');
  t.equal(forwarded[0]!.url, '/api/replication/apply', 'forwarded in normal form');
});

t.test('405 names the allowed methods', async (t) => {
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  const reply = await call(guard.port, pki.caFile, { cert: pop, method: 'PUT' });
  t.equal(reply.status, 405);
  t.equal(reply.headers.allow, 'POST');
});

t.test('upstream down: 502, generic', async (t) => {
  const guard = await startGuard(baseConfig(pki, await closedPortUrl()));
  t.teardown(() => guard.stop());
  const reply = await call(guard.port, pki.caFile, { cert: pop });
  t.equal(reply.status, 502);
  t.same(JSON.parse(reply.body), { error: 'bad_gateway', request_id: reply.headers['x-replguard-request-id'] });
  const [event] = await guard.waitForEvents((e) => e.event.reason === 'UPSTREAM_UNAVAILABLE', 1);
  t.equal(event!.http.response.status_code, 502);
  t.equal(event!.replguard.pop, 'calgary-01');
});

t.test('upstream hanging: 504 after upstream.timeout, generic', async (t) => {
  const upstream = await startHangingUpstream();
  const guard = await startGuard(baseConfig(pki, upstream.url, { upstream: { url: upstream.url, timeout: '1s' } }));
  t.teardown(async () => {
    await guard.stop();
    await upstream.stop();
  });
  const reply = await call(guard.port, pki.caFile, { cert: pop });
  t.equal(reply.status, 504);
  t.same(JSON.parse(reply.body), { error: 'gateway_timeout', request_id: reply.headers['x-replguard-request-id'] });
  t.equal(upstream.hits(), 1);
  await guard.waitForEvents((e) => e.event.reason === 'UPSTREAM_TIMEOUT', 1);
});

/** An upstream that answers each path its own way, at the socket level (malformed answers included). */
async function startScriptedUpstream(): Promise<{ url: string; stop(): Promise<void> }> {
  const big = Buffer.alloc(300 * 1024, 'x');
  const server = createNetServer((socket) => {
    let head = '';
    socket.on('data', (d) => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      if (head.length < end + 4 + length) return;
      const path = head.split(' ')[1];
      head = '';
      if (path === '/big') {
        socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: ${big.length}\r\n\r\n`);
        socket.write(big);
      } else if (path === '/chunked') {
        socket.write('HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nvary: accept\r\nvary: origin\r\n\r\n5\r\n{"ok"\r\n6\r\n:true}\r\n0\r\n\r\n');
      } else {
        socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc');
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

t.test('upstream answers are relayed as sent: large (streamed), chunked (coalesced); a malformed one is a generic 502', async (t) => {
  const upstream = await startScriptedUpstream();
  const config = baseConfig(pki, upstream.url);
  const guard = await startGuard({ ...config, routes: ['/big', '/chunked', '/malformed'].map((path) => ({ method: 'POST', path })) });
  t.teardown(async () => {
    await guard.stop();
    await upstream.stop();
  });
  const big = await call(guard.port, pki.caFile, { cert: pop, path: '/big' });
  t.equal(big.status, 200);
  t.equal(big.body.length, 300 * 1024, 'every byte of a response larger than the coalescing buffer');
  t.ok(/^x+$/.test(big.body), 'in order');
  t.equal(big.headers['content-length'], String(300 * 1024));
  const chunked = await call(guard.port, pki.caFile, { cert: pop, path: '/chunked' });
  t.equal(chunked.status, 201);
  t.equal(chunked.body, '{"ok":true}');
  t.equal(chunked.headers.vary, 'accept, origin', 'a repeated (allow-listed) field keeps its values');
  t.ok(chunked.headers['x-replguard-request-id'], 'the guard names the request');
  const malformed = await call(guard.port, pki.caFile, { cert: pop, path: '/malformed' });
  t.equal(malformed.status, 502);
  t.same(JSON.parse(malformed.body), { error: 'bad_gateway', request_id: malformed.headers['x-replguard-request-id'] });
  const events = await guard.waitForEvents((e) => e.event.action === 'replication-request', 3);
  t.same(events.map((e) => [e.url.path, e.event.reason, e.http.response.body.bytes]), [
    ['/big', 'FORWARDED', 300 * 1024],
    ['/chunked', 'FORWARDED', 11],
    ['/malformed', 'UPSTREAM_UNAVAILABLE', Buffer.byteLength(malformed.body)],
  ]);
});

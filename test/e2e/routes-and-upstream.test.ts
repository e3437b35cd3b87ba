// Route allow-list, bad path forms, upstream failures and the generic error bodies.
import t from 'tap';
import { connect } from 'node:tls';
import { readFileSync } from 'node:fs';
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

// The audit trail through the real program: every reason code the current stages can produce
// ends with exactly one well-formed ECS event on stdout and in audit.file (the same events),
// /metrics counts exactly those events, and no secret value reaches any log.
//
// This file drives every code of the transport, route, mTLS, body-limit and upstream layers
// (all but INTERNAL, which only an unexpected exception produces); the credential, signature
// and replay codes are driven by their own e2e files (bearer, jwt, signature, replay, ...),
// and the last test here checks that every code of the table is asserted by some e2e test.
import { randomBytes, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { REASONS } from '../../src/pipeline/reasons.ts';
import { adminGet } from '../helpers/admin.ts';
import { call } from '../helpers/client.ts';
import { ecsProblems } from '../helpers/ecs.ts';
import { baseConfig, startGuard, TEST_LIMITS } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { parsePrometheusText, sampleSum, sampleValue } from '../helpers/prometheus.ts';
import { rawTcp, rawTls } from '../helpers/raw-tls.ts';
import { findSecrets, needlesFromFile, referencedFiles } from '../helpers/secrets.ts';
import { startScriptedUpstream } from '../helpers/scripted-upstream.ts';

const DAY = 86_400_000;
const UNREACHABLE = new Set(['INTERNAL']);
/** The layers this file covers, by reason-code prefix. */
const COVERED_HERE = /^(FORWARDED|TLS_|HTTP_(?!FRAMING)|ROUTE_|AUTH_(PEER|CERT)_|AUTH_TOKEN_IN_QUERY$|BODY_(TOO_LARGE|INCOMPLETE)$|UPSTREAM_)/;

t.test('one event per request for every reachable reason, metrics to match, no secret in any log', async (t) => {
  const pki = makePki([]);
  const good = pki.client('calgary-01');
  const pinned = pki.client('lima-04');
  const pinnedOther = pki.client('lima-04');
  const certs = {
    unknownPop: pki.client('tokyo-05'),
    ambiguous: pki.client('calgary-01', { dnsNames: ['oslo-03.pops.example'], uris: [] }),
    expired: pki.client('calgary-01', { notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) }),
    notYet: pki.client('calgary-01', { notBefore: new Date(Date.now() + DAY), notAfter: new Date(Date.now() + 10 * DAY) }),
    wrongUsage: pki.client('calgary-01', { usage: 'server' }),
    revoked: pki.client('calgary-01'),
    foreign: pki.foreignClient('calgary-01'),
  };
  const crl = pki.crl([certs.revoked]);
  const upstream = await startScriptedUpstream();
  const auditFile = join(mkdtempSync(join(tmpdir(), 'replguard-audit-')), 'audit.ndjson');
  const config = baseConfig(pki, upstream.url, {
    tls: { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.caFile, crl_file: crl },
    upstream: { url: upstream.url, timeout: '1s' },
    routes: ['/api/replication/apply', '/hang', '/refuse', '/abort'].map((path) => ({ method: 'POST', path })),
    peers: [
      { id: 'calgary-01', cert: { cn: 'calgary-01' } },
      { id: 'oslo-03', cert: { dns_san: 'oslo-03.pops.example' } },
      { id: 'lima-04', cert: { cn: 'lima-04' }, cert_sha256: [new X509Certificate(readFileSync(pinned.cert)).fingerprint256] },
    ],
    limits: { ...TEST_LIMITS, max_body_bytes: '1KiB', header_timeout: '1s', handshake_timeout: '1s' },
    log: { level: 'debug' },
    audit: { stdout: true, file: auditFile },
  });
  const guard = await startGuard(config);
  t.teardown(async () => {
    await guard.stop();
    await upstream.stop();
  });

  // Credentials a client may send; the guard must never log them (bearer and signature
  // checks are other stages, but the values pass through this one).
  const sentSecrets = [randomBytes(32).toString('base64url'), `v1,${randomBytes(32).toString('base64')}`, randomBytes(32).toString('base64url')];
  const credentialHeaders = { authorization: `Bearer ${sentSecrets[0]}`, 'webhook-signature': sentSecrets[1]!, 'webhook-id': `msg_${randomBytes(16).toString('hex')}` };

  /** What each attempt should produce: the reason, and the request id when the client got an answer. */
  const expected: Array<{ reason: string; requestId?: string; status?: number }> = [];
  const replies: Array<{ reason: string; status: number; headers: Record<string, unknown>; body: string }> = [];
  const answered = async (reason: string, reply: Promise<{ status: number; headers: Record<string, unknown>; body: string }>) => {
    const r = await reply;
    expected.push({ reason, requestId: String(r.headers['x-replguard-request-id']), status: r.status });
    replies.push({ reason, ...r });
  };
  const post = (path: string, extra: Parameters<typeof call>[2] = {}) => call(guard.port, pki.caFile, { cert: good, path, ...extra });

  // HTTP outcomes.
  await answered('FORWARDED', post('/api/replication/apply', { headers: { ...credentialHeaders, 'user-agent': 'replicator/2.1' } }));
  await answered('ROUTE_TARGET_INVALID', post('/api/../api/replication/apply'));
  await answered('AUTH_TOKEN_IN_QUERY', post(`/api/replication/apply?access_token=${sentSecrets[2]}`));
  await answered('ROUTE_QUERY_NOT_ALLOWED', post('/api/replication/apply?dry_run=1'));
  await answered('ROUTE_NOT_FOUND', post('/nope'));
  await answered('ROUTE_METHOD_NOT_ALLOWED', post('/api/replication/apply', { method: 'GET' }));
  await answered('AUTH_PEER_UNKNOWN', call(guard.port, pki.caFile, { cert: certs.unknownPop }));
  await answered('AUTH_PEER_AMBIGUOUS', call(guard.port, pki.caFile, { cert: certs.ambiguous }));
  await answered('AUTH_CERT_PIN_MISMATCH', call(guard.port, pki.caFile, { cert: pinnedOther }));
  // Only the head: the guard refuses on the declared length and closes, and an unread body in its
  // receive buffer would turn that close into a reset that can overtake the 413.
  const tooLarge = await rawTls(guard.port, pki.caFile, { cert: good, send: ['POST /api/replication/apply HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2048\r\n\r\n'], ms: 5000 });
  const tooLargeId = /x-replguard-request-id: ([0-9a-f-]{36})/.exec(tooLarge.text)?.[1];
  t.match(tooLarge.text, /^HTTP\/1\.1 413 /, 'declared body over the limit: 413');
  expected.push({ reason: 'BODY_TOO_LARGE', requestId: tooLargeId, status: 413 });
  // Headers the backup could read differently (no body, so nothing unread is left behind the refusal).
  for (const [reason, status, line] of [
    ['HTTP_HEADER_DUPLICATE', 400, 'content-type: text/plain'],
    ['HTTP_CONTENT_ENCODING_UNSUPPORTED', 415, 'content-encoding: gzip'],
  ] as const) {
    const reply = await rawTls(guard.port, pki.caFile, { cert: good, send: [`POST /api/replication/apply HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n${line}\r\ncontent-length: 0\r\n\r\n`], ms: 5000 });
    t.match(reply.text, new RegExp(`^HTTP/1\\.1 ${status} `), `${reason}: ${status}`);
    expected.push({ reason, requestId: /x-replguard-request-id: ([0-9a-f-]{36})/.exec(reply.text)?.[1], status });
  }
  await answered('UPSTREAM_UNAVAILABLE', post('/refuse'));
  await answered('UPSTREAM_TIMEOUT', post('/hang'));
  // The upstream breaks off after the head: the client sees a 200 and then a cut connection.
  await post('/abort').catch(() => undefined);
  expected.push({ reason: 'UPSTREAM_ABORTED' });

  // Refused at the TLS layer: no HTTP request exists.
  for (const [reason, cert] of [
    ['TLS_CLIENT_CERT_MISSING', undefined],
    ['TLS_CLIENT_CERT_UNTRUSTED', certs.foreign],
    ['TLS_CLIENT_CERT_EXPIRED', certs.expired],
    ['TLS_CLIENT_CERT_NOT_YET_VALID', certs.notYet],
    ['TLS_CLIENT_CERT_REVOKED', certs.revoked],
    ['TLS_CLIENT_CERT_INVALID', certs.wrongUsage],
  ] as const) {
    await rawTls(guard.port, pki.caFile, { ...(cert ? { cert } : {}), ms: 5000 });
    expected.push({ reason });
  }
  await rawTls(guard.port, pki.caFile, { cert: good, tls: { maxVersion: 'TLSv1.2' }, ms: 5000 });
  expected.push({ reason: 'TLS_HANDSHAKE_FAILED' });
  // Bytes that are not TLS at all, and a client that never starts its handshake.
  await rawTcp(guard.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 5000);
  expected.push({ reason: 'TLS_HANDSHAKE_MALFORMED' });
  await rawTcp(guard.port, '', 5000);
  expected.push({ reason: 'TLS_HANDSHAKE_TIMEOUT' });

  // Refused by the HTTP parser or its timers.
  await rawTls(guard.port, pki.caFile, { cert: good, send: ['GARBAGE\r\n\r\n'], ms: 5000 });
  expected.push({ reason: 'HTTP_MALFORMED' });
  const expectation = await rawTls(guard.port, pki.caFile, { cert: good, send: ['POST /api/replication/apply HTTP/1.1\r\nhost: x\r\nexpect: 200-ok\r\ncontent-length: 2\r\n\r\n'], ms: 5000 });
  t.match(expectation.text, /^HTTP\/1\.1 417 [\s\S]*\r\nx-content-type-options: nosniff\r\n/, 'an unknown expectation: 417 with the security headers');
  expected.push({ reason: 'HTTP_EXPECTATION_FAILED', requestId: /x-replguard-request-id: ([0-9a-f-]{36})/.exec(expectation.text)?.[1], status: 417 });
  await rawTls(guard.port, pki.caFile, { cert: good, send: [`POST /api/replication/apply HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`], ms: 5000 });
  expected.push({ reason: 'HTTP_HEADERS_TOO_LARGE' });
  await rawTls(guard.port, pki.caFile, { cert: good, send: ['POST /api/replication/apply HTTP/1.1\r\nhost: x\r\n'], ms: 8000 });
  expected.push({ reason: 'HTTP_TIMEOUT' });
  await rawTls(guard.port, pki.caFile, {
    cert: good,
    send: ['POST /api/replication/apply HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"source":', 200],
    destroy: true,
  });
  expected.push({ reason: 'BODY_INCOMPLETE' });

  // A certificate that expires while its keep-alive connection is open.
  const soon = Date.now() + 3000;
  const shortLived = pki.client('calgary-01', { notAfter: new Date(soon) });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  await answered('FORWARDED', call(guard.port, pki.caFile, { cert: shortLived, agent }));
  while (Date.now() < soon + 1100) await sleep(100);
  // An empty body, for the same reason as above: this refusal closes the connection.
  await answered('AUTH_CERT_EXPIRED', call(guard.port, pki.caFile, { cert: shortLived, agent, body: '' }));

  const events = await guard.waitForAudit(expected.length, 10_000);

  await t.test('every reachable reason code was produced', async (t) => {
    const produced = new Set(expected.map((e) => e.reason));
    t.same(Object.keys(REASONS).filter((r) => COVERED_HERE.test(r) && !produced.has(r)).sort(), []);
  });

  await t.test('exactly one event per attempt, with the expected reason', async (t) => {
    t.equal(events.length, expected.length);
    t.same([...events.map((e) => e.event.reason)].sort(), expected.map((e) => e.reason).sort());
    for (const exp of expected.filter((e) => e.requestId)) {
      const matching = events.filter((e) => e.replguard.request_id === exp.requestId);
      t.equal(matching.length, 1, `${exp.reason}: one event for request ${exp.requestId}`);
      t.equal(matching[0]?.event.reason, exp.reason);
      t.equal(matching[0]?.http.response.status_code, exp.status, `${exp.reason}: the status the client saw`);
    }
  });

  await t.test('refusals tell the client nothing beyond a generic error and the request id (finding 9)', async (t) => {
    for (const r of replies) {
      t.equal(r.headers['x-content-type-options'], 'nosniff', `${r.reason} nosniff`);
      t.equal(r.headers['cache-control'], 'no-store', `${r.reason} no-store`);
      if (r.reason === 'FORWARDED') continue;
      t.same(Object.keys(JSON.parse(r.body)).sort(), ['error', 'request_id'], `${r.reason} body keys`);
      t.match(JSON.parse(r.body).error, /^[a-z_]+$/, `${r.reason} error name`);
      t.notMatch(r.body, /\/|tmp|Error|at /, `${r.reason}: no path, class name or stack`);
    }
  });

  await t.test('each event is well-formed ECS with the fields the issue lists', async (t) => {
    for (const e of events) {
      const reason = e.event.reason as keyof typeof REASONS;
      const where = `${reason}`;
      t.match(e['@timestamp'], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, where);
      t.equal(e.event.dataset, 'replguard.audit', where);
      t.same(ecsProblems(e), [], `${where}: exact ECS (@elastic/ecs's field list)`);
      t.same(Object.keys(e.log), ['level'], `${where}: no log.type (not an ECS field)`);
      t.equal(e.ecs.version, '8.11.0', where);
      t.equal(e.event.kind, REASONS[reason].alert ? 'alert' : 'event', `${where} kind`);
      t.equal(e.log.level, REASONS[reason].alert ? 'warn' : 'info', `${where} level`);
      t.equal(e.event.outcome, reason === 'FORWARDED' ? 'success' : 'failure', where);
      t.equal(e.source.ip, '127.0.0.1', where);
      t.ok(Number.isInteger(e.source.port) && e.source.port > 0, `${where} source.port`);
      t.ok(Array.isArray(e.event.category), where);
      if (e.event.action === 'tls-connection') {
        t.ok(REASONS[reason].kind === 'connection' || reason === 'TLS_HANDSHAKE_FAILED', `${where} is a connection reason`);
        continue;
      }
      t.equal(e.event.action, 'replication-request', where);
      t.match(e.replguard.request_id, /^[0-9a-f-]{36}$/, where);
      // A connection cut before any response (the upstream broke off first) has no http.response.
      if (reason === 'UPSTREAM_ABORTED' && e.http.response === undefined) t.pass(`${where}: cut before any response`);
      else t.ok(Number.isInteger(e.http.response.status_code), where);
      t.ok(Number.isInteger(e.http.request.body.bytes), where);
      if (!reason.startsWith('HTTP_')) {
        t.equal(e.tls.version, '1.3', where);
        t.equal(e.http.request.method, e.event.reason === 'ROUTE_METHOD_NOT_ALLOWED' ? 'GET' : 'POST', where);
        t.type(e.url.path, 'string', where);
        t.ok(e.event.duration >= 0, `${where} duration`);
        t.match(e.tls.client.hash.sha256, /^[0-9a-f]{64}$/, where);
        t.match(e.tls.client.subject, /^CN=/, where);
        // The connection's certificate is re-checked before the route (AUTH_CERT_EXPIRED); the
        // route and query stages run before the mTLS identity.
        t.same(e.replguard.credentials, reason.startsWith('ROUTE_') || reason === 'AUTH_TOKEN_IN_QUERY' || reason === 'AUTH_CERT_EXPIRED' ? undefined : ['mtls'], `${where} credentials`);
      }
    }
    const forwarded = events.find((e) => e.event.reason === 'FORWARDED' && e.user_agent)!;
    t.equal(forwarded.replguard.pop, 'calgary-01');
    t.equal(forwarded.user_agent.original, 'replicator/2.1');
    t.equal(forwarded.url.path, '/api/replication/apply');
    t.ok(forwarded.http.request.body.bytes > 0);
    t.ok(forwarded.http.response.body.bytes > 0);
    t.ok(forwarded.replguard.upstream_duration > 0, 'upstream time recorded');
    t.equal(forwarded.tls.client.not_after, new Date(new X509Certificate(readFileSync(good.cert)).validTo).toISOString());
    const untrusted = events.find((e) => e.event.reason === 'TLS_CLIENT_CERT_UNTRUSTED')!;
    t.equal(untrusted.tls.client.subject, 'CN=calgary-01', 'the unverified subject is logged for forensics');
  });

  await t.test('/metrics parses as Prometheus text and its counters match the events', async (t) => {
    const scrape = await adminGet(guard.adminPort, '/metrics');
    t.equal(scrape.status, 200);
    t.match(scrape.contentType, /^text\/plain; version=0\.0\.4/);
    const f = parsePrometheusText(scrape.body);
    const requests = events.filter((e) => e.event.action === 'replication-request');
    const refusals = events.filter((e) => e.event.action === 'tls-connection');
    t.equal(sampleSum(f, 'replguard_requests_total'), requests.length, 'one count per request event');
    t.equal(sampleSum(f, 'replguard_tls_refusals_total'), refusals.length);
    for (const reason of new Set(requests.map((e) => e.event.reason))) {
      const outcome = reason === 'FORWARDED' ? 'success' : 'failure';
      t.equal(sampleSum(f, 'replguard_requests_total', { reason, outcome }), requests.filter((e) => e.event.reason === reason).length, reason);
    }
    for (const reason of new Set(refusals.map((e) => e.event.reason))) {
      t.equal(sampleValue(f, 'replguard_tls_refusals_total', { reason }), refusals.filter((e) => e.event.reason === reason).length, reason);
    }
    t.equal(sampleValue(f, 'replguard_requests_total', { reason: 'FORWARDED', pop: 'calgary-01' }), 2);
    t.same(new Set(f.get('replguard_requests_total')!.samples.map((s) => s.labels.pop)), new Set(['calgary-01', 'unknown']), 'bounded POP label');
    t.equal(sampleSum(f, 'replguard_request_duration_seconds_count'), requests.filter((e) => e.event.duration !== undefined).length);
    t.equal(sampleValue(f, 'replguard_upstream_duration_seconds_count'), requests.filter((e) => e.replguard.upstream_duration !== undefined).length);
    const serverCert = new X509Certificate(readFileSync(pki.server.cert));
    const expiry = sampleValue(f, 'replguard_certificate_expiry_seconds', { source: 'tls.cert_file', sha256: serverCert.fingerprint256.replace(/:/g, '').toLowerCase() });
    const expected = (Date.parse(serverCert.validTo) - Date.now()) / 1000;
    t.ok(Math.abs(expiry - expected) < 60, `server certificate expiry ${expiry} s, computed ${expected} s`);
    t.ok(sampleValue(f, 'replguard_certificate_expiry_seconds', { source: 'tls.client_ca_file' }) > 0, 'the client CA');
    t.ok(sampleValue(f, 'replguard_peer_certificate_expiry_seconds', { pop: 'calgary-01' }) < 0, 'calgary-01 last used the certificate that expired');
    t.equal(sampleValue(f, 'replguard_reloads_total', { result: 'failure' }), 0);
  });

  await t.test('stdout and audit.file hold the same events; no secret in any log', async (t) => {
    await guard.stop();
    if (!guard.child.stdout!.readableEnded) await once(guard.child.stdout!, 'end');
    if (!guard.child.stderr!.readableEnded) await once(guard.child.stderr!, 'end');
    const { stdout: out, stderr: errText } = guard.output();
    const fileText = readFileSync(auditFile, 'utf8');
    t.same(fileText.split('\n').filter(Boolean).map((l) => JSON.parse(l)), out.split('\n').filter(Boolean).map((l) => JSON.parse(l)));
    const err = `${guard.operational().map((r) => JSON.stringify(r)).join('\n')}\n${errText}`;
    t.ok(err.includes('"log":{"level":"debug"') || err.includes('"dataset":"replguard.operational"'), 'the operational log was captured');

    const files = referencedFiles(config);
    t.ok(files.some((f) => f.key === 'tls.key_file'), 'the server key is among the scanned files');
    const needles = [
      ...files.filter((f) => f.file !== auditFile).flatMap((f) => needlesFromFile(f.file, f.key)),
      ...[good, pinned, shortLived, ...Object.values(certs)].flatMap((c) => needlesFromFile(c.key, 'a client key')),
      ...needlesFromFile(join(pki.dir, 'ca.key'), 'the CA key'),
      ...sentSecrets.map((value) => ({ source: 'a credential header', value })),
    ];
    t.ok(needles.length > 50, `${needles.length} secret fragments`);
    t.same(findSecrets(out, needles), [], 'stdout');
    t.same(findSecrets(fileText, needles), [], 'audit.file');
    t.same(findSecrets(err, needles), [], 'stderr');
  });
});

t.test('every reason code of the table is asserted by some test', async (t) => {
  // End-to-end files drive most codes through the real program; the JWT attack list and the
  // signature parser's malformed forms are unit tests of their stages (test/unit/).
  const { readdirSync } = await import('node:fs');
  const root = join(import.meta.dirname, '..');
  const files = readdirSync(root, { recursive: true }).map(String).filter((f) => f.endsWith('.test.ts'));
  const text = files.map((f) => readFileSync(join(root, f), 'utf8')).join('\n');
  const missing = Object.keys(REASONS).filter((r) => !UNREACHABLE.has(r) && !new RegExp(`['"\`]${r}['"\`]`).test(text));
  t.same(missing, [], 'codes no test names');
});

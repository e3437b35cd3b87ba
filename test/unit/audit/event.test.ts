import { Writable } from 'node:stream';
import t from 'tap';
import { createAuditLog } from '../../../src/audit/audit-log.ts';
import { banEvent, reloadEvent } from '../../../src/audit/control-events.ts';
import { clip, connectionEvent, MAX_CLIENT_STRING, requestEvent } from '../../../src/audit/event.ts';
import { signerEvent } from '../../../src/audit/signer-event.ts';
import { generateToken } from '../../../src/cli/gen-token.ts';
import { credentialFingerprint } from '../../../src/crypto/secret-compare.ts';
import { newConnection, newRequestContext, type RequestContext } from '../../../src/pipeline/context.ts';
import { ecsProblems } from '../../helpers/ecs.ts';

const HOSTILE = `evil\n{"event":{"reason":"FORWARDED"}}\r\u001b[31mred\u001b[0m %s %n %j ${'x'.repeat(64 * 1024)}`;

function context(over: Partial<RequestContext> = {}, headers: Record<string, string> = {}): RequestContext {
  const conn = newConnection({
    remoteAddress: '192.0.2.7',
    remotePort: 51234,
    tlsVersion: 'TLSv1.3',
    peer: { subject: 'CN=calgary-01', commonNames: ['calgary-01'], dnsSans: [], uriSans: [], sha256: 'ab'.repeat(32), notAfterMs: Date.parse('2031-02-03T04:05:06Z') },
  });
  // The request and response objects are only read for method, url and headers here.
  const ctx = newRequestContext({
    id: '00000000-0000-4000-8000-000000000001',
    req: { method: 'POST', url: '/api/replication/apply', headers } as RequestContext['req'],
    res: {} as RequestContext['res'],
    conn,
    startedAt: 0,
    path: '/api/replication/apply',
    pop: 'calgary-01',
  });
  ctx.credentials.push('mtls', 'bearer', 'signature');
  return Object.assign(ctx, {
    body: Buffer.from('{"entries":[1,2,3]}'),
    entries: 3,
    webhookId: 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W',
    webhookTimestamp: 1_800_000_000, // its signature verified
    jti: 'b9a4c7e0-jti',
    tokenFingerprint: 'sha256:0123456789abcdef',
    upstreamMs: 1.5,
  }, over);
}

t.test('clip keeps short strings, cuts long ones at MAX_CLIENT_STRING without splitting a character', async (t) => {
  t.equal(MAX_CLIENT_STRING, 256, 'the documented length (docs/audit.md)');
  t.equal(clip(undefined), undefined);
  t.equal(clip('abc'), 'abc');
  t.equal(clip('a'.repeat(256)), 'a'.repeat(256));
  t.equal(clip('a'.repeat(300)), `${'a'.repeat(256)}…`);
  const emoji = `${'a'.repeat(255)}😀tail`; // the pair straddles the cut
  const cut = clip(emoji)!;
  t.equal(cut, `${'a'.repeat(255)}…`);
  t.ok(cut.isWellFormed(), 'no lone surrogate');
});

t.test('clip writes controls, separators and bidi overrides as visible escapes', async (t) => {
  t.equal(clip('a\nb\rc\u001b[31md\u009b31m\u007f\u2028\u202eevil\u2066'), 'a\\u000ab\\u000dc\\u001b[31md\\u009b31m\\u007f\\u2028\\u202eevil\\u2066');
  t.equal(clip('tab\there'), 'tab\\u0009here');
  t.equal(clip('plain ascii, ümlauts and 😀 stay'), 'plain ascii, ümlauts and 😀 stay');
  const long = clip('\u001b'.repeat(1000))!;
  t.equal(long, `${'\\u001b'.repeat(256)}…`, 'cut first, then escaped: bounded by 6 x 256 + 1');
});

t.test('a forwarded request carries every field of the issue, under its ECS name', async (t) => {
  const e = requestEvent(context({}, { 'user-agent': 'replicator/2.1' }), 'FORWARDED', 200, 17, 3.25, undefined);
  t.same(e, {
    ecs: { version: '8.11.0' },
    event: { kind: 'event', category: ['network', 'web'], type: ['access', 'allowed'], action: 'replication-request', outcome: 'success', reason: 'FORWARDED', module: 'replguard', dataset: 'replguard.audit', duration: 3_250_000 },
    source: { ip: '192.0.2.7', port: 51234 },
    tls: { version: '1.3', version_protocol: 'tls', client: { subject: 'CN=calgary-01', hash: { sha256: 'ab'.repeat(32) }, not_after: '2031-02-03T04:05:06.000Z' } },
    http: { request: { method: 'POST', body: { bytes: 19 } }, response: { status_code: 200, body: { bytes: 17 } } },
    url: { path: '/api/replication/apply' },
    user_agent: { original: 'replicator/2.1' },
    replguard: {
      request_id: '00000000-0000-4000-8000-000000000001',
      pop: 'calgary-01',
      credentials: ['mtls', 'bearer', 'signature'],
      entries: 3,
      webhook_id: 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W',
      jti: 'b9a4c7e0-jti',
      token_fingerprint: 'sha256:0123456789abcdef',
      upstream_duration: 1_500_000,
    },
  });
});

t.test('an authentication failure is an alert; unknown fields are left out, not empty', async (t) => {
  const e = requestEvent(context({ pop: undefined, entries: undefined, webhookId: undefined, jti: undefined, tokenFingerprint: undefined, upstreamMs: undefined, body: undefined, credentials: ['mtls'] }), 'AUTH_PEER_UNKNOWN', 403, 60, 1, 'certificate names no configured peer');
  t.equal(e.event.kind, 'alert');
  t.equal(e.event.outcome, 'failure');
  t.same(e.event.type, ['denied']);
  t.same(e.event.category, ['authentication', 'network', 'web'], 'an authentication failure for SIEM rules written for ECS');
  t.same(e.replguard, { request_id: '00000000-0000-4000-8000-000000000001', credentials: ['mtls'], detail: 'certificate names no configured peer' });
  t.equal(e.http!.request.body.bytes, 0);
  t.notOk('user_agent' in e);
});

t.test('which refusals are authentication events', async (t) => {
  const category = (reason: Parameters<typeof requestEvent>[1]) => requestEvent(context({}), reason, 401, 0, 1, undefined).event.category;
  for (const reason of ['AUTH_BEARER_INVALID', 'AUTH_BEARER_EXPIRED', 'AUTH_JWT_SIGNATURE_INVALID', 'AUTH_TOKEN_IN_QUERY', 'TLS_CLIENT_CERT_REVOKED', 'SIGNATURE_MISMATCH'] as const) {
    t.same(category(reason), ['authentication', 'network', 'web'], reason);
  }
  for (const reason of ['FORWARDED', 'ROUTE_NOT_FOUND', 'LIMIT_RATE_EXCEEDED', 'REPLAY_NONCE_REUSED', 'BODY_NOT_JSON', 'UPSTREAM_TIMEOUT'] as const) {
    t.same(category(reason), ['network', 'web'], reason);
  }
});

t.test('the query string never reaches the log (it may carry a credential)', async (t) => {
  const ctx = context({ path: undefined });
  (ctx.req as { url: string }).url = '/api/replication/apply?access_token=s3cr3t';
  const e = requestEvent(ctx, 'ROUTE_QUERY_NOT_ALLOWED', 400, 60, 1, undefined);
  t.equal(e.url!.path, '/api/replication/apply');
  t.notMatch(JSON.stringify(e), /s3cr3t/);
});

t.test('a fragment never reaches the log either', async (t) => {
  const ctx = context({ path: undefined });
  (ctx.req as { url: string }).url = '/api/replication/apply#access_token=s3cr3t?x=1';
  const e = requestEvent(ctx, 'AUTH_TOKEN_IN_FRAGMENT', 400, 60, 1, undefined);
  t.equal(e.url!.path, '/api/replication/apply');
  t.notOk(e.replguard.redacted, 'nothing was cut: the fragment is never logged at all');
});

t.test('a credential in any client field is cut where it begins, and the field is named', async (t) => {
  const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjYWxnYXJ5LTAxIn0.c2lnbmF0dXJlc2lnbmF0dXJl';
  const secret = generateToken();
  const ctx = context({ path: undefined }, { 'user-agent': `replicator/2.1 (${secret})` });
  (ctx.req as { url: string }).url = `/api/replication/${jwt}?access_token=${secret}`;
  (ctx.req as { method: string }).method = `X${jwt}`;
  (ctx.conn as { peer: unknown }).peer = { ...ctx.conn.peer!, subject: `CN=calgary-01,OU=token=${secret}` };
  const e = requestEvent(ctx, 'AUTH_TOKEN_IN_PATH', 400, 60, 1, `source_pop "${jwt.slice(0, 64)}" is not the authenticated POP`);
  t.equal(e.url!.path, '/api/replication/[Redacted]');
  t.equal(e.user_agent!.original, 'replicator/2.1 ([Redacted]');
  t.equal(e.http!.request.method, '[Redacted]');
  t.equal(e.tls!.client!.subject, 'CN=calgary-01,[Redacted]', 'the whole attribute: "=" does not end a word');
  t.equal(e.replguard.detail, 'source_pop "[Redacted]');
  t.same(e.replguard.redacted, ['tls.client.subject', 'http.request.method', 'url.path', 'user_agent.original', 'replguard.detail']);
  const text = JSON.stringify(e);
  t.notOk(text.includes(secret) || text.includes(jwt.slice(0, 20)), 'neither credential is in the event');
});

t.test('what is not cut: a configured route, the nonce and the jti, the request id', async (t) => {
  // A route the route stage matched is the operator's text; the nonce and jti are ids the trail
  // must keep whole (replay forensics, revocation), and are not client text that may carry a credential.
  const nonce = 'aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF'; // 32 characters of base64url, as the signer makes them
  // The signature verified (the stage sets webhookTimestamp then): the nonce is the POP's signed data.
  const e = requestEvent(context({ webhookId: nonce, webhookTimestamp: 1_800_000_000, jti: nonce }), 'FORWARDED', 200, 0, 1, undefined);
  t.equal(e.replguard.webhook_id, nonce);
  t.equal(e.replguard.jti, nonce);
  t.equal(e.replguard.request_id, '00000000-0000-4000-8000-000000000001');
  t.equal(e.url!.path, '/api/replication/apply');
  t.notOk(e.replguard.redacted);
});

t.test('a webhook-id whose signature did not verify is client text: a bearer secret there is cut', async (t) => {
  const secret = generateToken();
  const e = requestEvent(context({ webhookId: secret, webhookTimestamp: undefined }), 'SIGNATURE_MISMATCH', 401, 0, 1, undefined);
  t.equal(e.replguard.webhook_id_fingerprint, credentialFingerprint(secret), 'its fingerprint is kept, to match it with the sender\'s record');
  t.notOk(JSON.stringify(e).includes(secret), 'the secret is in no field');
  t.ok(e.replguard.redacted?.includes('replguard.webhook_id'), 'and the cut is named');
});

t.test('every client-supplied string is clipped', async (t) => {
  const ctx = context({ path: undefined, webhookId: HOSTILE, jti: HOSTILE, tokenFingerprint: HOSTILE }, { 'user-agent': HOSTILE });
  (ctx.req as { url: string }).url = HOSTILE;
  (ctx.req as { method: string }).method = HOSTILE;
  (ctx.conn as { peer: unknown }).peer = { ...ctx.conn.peer!, subject: HOSTILE };
  const e = requestEvent(ctx, 'ROUTE_TARGET_INVALID', 400, 60, 1, HOSTILE);
  const clipped = clip(HOSTILE);
  for (const [name, value] of Object.entries({
    method: e.http!.request.method,
    path: e.url!.path,
    user_agent: e.user_agent!.original,
    subject: e.tls!.client!.subject,
    webhook_id: e.replguard.webhook_id,
    jti: e.replguard.jti,
    token_fingerprint: e.replguard.token_fingerprint,
    detail: e.replguard.detail,
  })) {
    t.equal(value, clipped, name);
  }
});

t.test('written through the audit log, a hostile event is one NDJSON line that parses back to the same values', async (t) => {
  const chunks: string[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { chunks.push(String(chunk)); done(); } });
  const log = createAuditLog(undefined, { stream: sink });
  const ctx = context({ webhookId: HOSTILE }, { 'user-agent': HOSTILE });
  log.write(requestEvent(ctx, 'FORWARDED', 200, 0, 1, undefined));
  log.write(reloadEvent('failure', 'SIGHUP', HOSTILE));
  const text = chunks.join('');
  const lines = text.split('\n');
  t.equal(lines.pop(), '', 'ends with a newline');
  t.equal(lines.length, 2, 'one line per event');
  t.notOk(/[\r\u001b]/.test(text), 'no raw CR or ESC byte in the output');
  const [req, reload] = lines.map((l) => JSON.parse(l));
  t.equal(req.user_agent.original, clip(HOSTILE));
  t.equal(req.replguard.webhook_id, clip(HOSTILE));
  t.equal(req.event.dataset, 'replguard.audit');
  t.same(Object.keys(req.log), ['level'], 'log.type is not ECS: only log.level');
  t.equal(req.log.level, 'info');
  t.match(req['@timestamp'], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.equal(reload.event.kind, 'alert');
  t.equal(reload.event.reason, 'CONFIG_RELOAD_FAILED');
  t.equal(reload.log.level, 'warn', 'alerts are written at warn');
  t.equal(reload.replguard.detail, clip(`SIGHUP: ${HOSTILE}`));
});

t.test('a successful reload is an ordinary event', async (t) => {
  const e = reloadEvent('success', 'file change', undefined);
  t.equal(e.event.kind, 'event');
  t.equal(e.event.reason, 'CONFIG_RELOADED');
  t.equal(e.event.action, 'config-reload');
  t.equal(e.replguard.detail, 'file change');
});

t.test('a reload that removed credentials is CREDENTIAL_REMOVED, an alert naming the key paths and the POP', async (t) => {
  const one = reloadEvent('success', 'SIGHUP', 'bearer tokens', [{ key: 'peers[0].token_files[1]', file: '/etc/t/b', pop: 'calgary-01' }]);
  t.equal(one.event.reason, 'CREDENTIAL_REMOVED');
  t.equal(one.event.kind, 'alert');
  t.equal(one.event.outcome, 'success');
  t.same(one.event.type, ['change', 'deletion']);
  t.same(one.replguard.removed, [{ key: 'peers[0].token_files[1]', file: '/etc/t/b', pop: 'calgary-01' }]);
  t.equal(one.replguard.pop, 'calgary-01', 'one POP: named');
  const two = reloadEvent('success', 'SIGHUP', 'JWT public keys', [
    { key: 'auth.jwt.public_keys[0].path', file: '/k/a', pop: 'calgary-01' },
    { key: 'auth.jwt.public_keys[1].path', file: '/k/b' },
  ]);
  t.equal(two.replguard.pop, undefined, 'several (or an issuer key): no single POP');
  t.equal(two.replguard.removed?.length, 2);
  t.equal(reloadEvent('failure', 'SIGHUP', 'x', [{ key: 'k', file: 'f' }]).event.reason, 'CONFIG_RELOAD_FAILED', 'a refusal is never a removal');
  t.equal(reloadEvent('success', 'SIGHUP', 'x', []).event.reason, 'CONFIG_RELOADED');
});

t.test("the signer's event cuts a credential from the primary's path the same way", async (t) => {
  const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjYWxnYXJ5LTAxIn0.c2ln';
  const e = signerEvent({
    reason: 'SIGNER_DELIVERED', durationMs: 1, client: { ip: '127.0.0.1', port: 5000 }, path: `/api/replication/apply;jwt=${jwt}`,
    requestId: 'r1', pop: 'calgary-01', backup: { id: 'zurich-01', address: '192.0.2.1', port: 8443 }, attempt: 1, maxAttempts: 6, final: true,
  });
  t.equal(e.url.path, '/api/replication/apply;[Redacted]');
  t.same(e.replguard.redacted, ['url.path']);
  const clean = signerEvent({ ...{ reason: 'SIGNER_DELIVERED', durationMs: 1, client: { ip: '127.0.0.1', port: 5000 }, requestId: 'r1', pop: 'calgary-01', backup: { id: 'zurich-01', address: '192.0.2.1', port: 8443 }, attempt: 1, maxAttempts: 6, final: true }, path: '/api/replication/apply' });
  t.equal(clean.url.path, '/api/replication/apply');
  t.notOk(clean.replguard.redacted);
});

// What the end-to-end ECS test (test/e2e/ecs-fields.test.ts) cannot provoke on purpose: an
// unknown port, a handshake that got nowhere, a primary that hung up before its answer.
t.test('unknown values are left out, never written as placeholders', async (t) => {
  const bare = connectionEvent(newConnection({ remoteAddress: '192.0.2.9', remotePort: 0 }), 'TLS_HANDSHAKE_TIMEOUT', undefined);
  t.same(bare.source, { ip: '192.0.2.9' }, 'no port 0');
  t.notOk('tls' in bare, 'no tls: {}');
  t.notOk('replguard' in bare, 'no replguard: {}');
  t.same(bare.event.category, ['network'], 'a timeout is no authentication');
  t.same(ecsProblems({ '@timestamp': new Date().toISOString(), ...bare }), []);

  const gone = signerEvent({
    reason: 'SIGNER_PRIMARY_GONE', durationMs: 1, client: { ip: '127.0.0.1', port: 0 }, path: undefined, requestId: 'r2', pop: 'calgary-01',
    backup: { id: 'zurich-01', address: '192.0.2.1', port: 8443 }, attempt: 2, maxAttempts: 6, final: true, status: 0, webhookId: '', detail: '',
  });
  t.notOk('status' in gone.replguard, 'nobody got a status: none is logged');
  t.notOk('url' in gone, 'no path: no url: {}');
  t.same(gone.source, { ip: '127.0.0.1' });
  t.notOk('webhook_id' in gone.replguard || 'detail' in gone.replguard, 'no empty strings');
  t.same(ecsProblems({ '@timestamp': new Date().toISOString(), ...gone }), []);

  const ban = banEvent('LIMIT_BAN_STARTED', { key: 'addr:192.0.2.9', since: 1, until: 2, failures: 3, reason: 'TLS_CLIENT_CERT_MISSING' });
  t.same(ban.source, { ip: '192.0.2.9' });
  t.same(ecsProblems({ '@timestamp': new Date().toISOString(), ...ban }), []);
});

t.test('the ECS checker itself: each kind of mistake is named', async (t) => {
  const ok = { '@timestamp': '2026-12-03T13:00:00.000Z', ecs: { version: '8.11.0' }, event: { kind: 'event', category: ['network'], type: ['connection'], outcome: 'failure', dataset: 'replguard.audit' } };
  t.same(ecsProblems(ok), []);
  const problems = (over: Record<string, unknown>) => ecsProblems({ ...ok, ...over }).join('\n');
  t.match(problems({ tls: {} }), /^tls: an empty object/m);
  t.match(problems({ source: { ip: '192.0.2.1', port: 0 } }), /^source\.port: a port outside/m);
  t.match(problems({ source: { ip: 'not-an-ip' } }), /^source\.ip: an ip must be/m);
  t.match(problems({ url: { path: '' } }), /^url\.path: an empty string/m);
  t.match(problems({ http: { response: { status_code: '200' } } }), /^http\.response\.status_code: a long must be an integer/m);
  t.match(problems({ log: { type: 'audit' } }), /^log\.type: not an ECS field/m);
  t.match(problems({ custom: { x: 1 } }), /^custom: not an ECS field set/m);
  t.match(problems({ replguard: { credentials: [] } }), /^replguard\.credentials: an empty array/m);
  t.match(problems({ replguard: { status: 0 } }), /^replguard\.status: an HTTP status outside/m);
  t.match(problems({ event: { ...ok.event, kind: 'incident' } }), /^event\.kind: "incident" is not an allowed value/m);
  t.match(problems({ event: { ...ok.event, category: 'network' } }), /^event\.category: ECS normalises this field to an array/m);
  t.match(problems({ event: { ...ok.event, category: ['authentication'], type: ['denied'] } }), /^event\.type: "denied" is expected by none of event\.category/m);
  t.match(problems({ event: { ...ok.event, start: '03/12/2026' } }), /^event\.start: a date must be an ISO 8601 string/m);
  t.match(ecsProblems({ ecs: ok.ecs, event: ok.event }).join('\n'), /^@timestamp: missing/m);
});

t.test('every event of a connection carries the same tls fields, each its own copy (built once per connection)', async (t) => {
  const secret = generateToken();
  const first = context({ path: undefined });
  (first.conn as { peer: unknown }).peer = { ...first.conn.peer!, subject: `CN=calgary-01,OU=token=${secret}` };
  const second = newRequestContext({ id: '00000000-0000-4000-8000-000000000002', req: first.req, res: first.res, conn: first.conn, startedAt: 0 });
  const a = requestEvent(first, 'FORWARDED', 200, 12, 1, undefined);
  a.tls!.client!.subject = 'changed by a consumer';
  a.tls!.client!.hash!.sha256 = 'changed';
  const b = requestEvent(second, 'FORWARDED', 200, 12, 1, undefined);
  t.equal(b.tls!.client!.subject, 'CN=calgary-01,[Redacted]');
  t.equal(b.tls!.client!.hash!.sha256, 'ab'.repeat(32));
  t.same(b.tls, { version: '1.3', version_protocol: 'tls', client: { subject: 'CN=calgary-01,[Redacted]', hash: { sha256: 'ab'.repeat(32) }, not_after: '2031-02-03T04:05:06.000Z' } });
  t.same(b.replguard!.redacted, ['tls.client.subject'], 'the subject is still named as cut');
});

// Log injection (finding 16): client-supplied text with newlines, carriage returns, ANSI escapes,
// 8-bit controls, bidi overrides, format strings and 64 KiB of padding, through the real
// program. Each attempt is exactly one NDJSON line that parses, no forged event appears, no raw
// control byte reaches the output, and every client string is clipped (MAX_CLIENT_STRING).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { clip, MAX_CLIENT_STRING } from '../../src/audit/event.ts';
import { DevCa } from '../../src/tls/dev-ca.ts';
import { baseConfig, startGuard, TEST_LIMITS } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { rawTls } from '../helpers/raw-tls.ts';
import { startScriptedUpstream } from '../helpers/scripted-upstream.ts';

/** A body the body contract accepts, so that what is forwarded depends on the head alone. */
const WIRE_BODY = JSON.stringify({ source_pop: 'calgary-01', entries: [] });
const FORGED = '{"@timestamp":"2030-01-01T00:00:00.000Z","event":{"kind":"event","reason":"FORWARDED","outcome":"success"},"replguard":{"pop":"calgary-01"}}';
const PAD = 'x'.repeat(64 * 1024);
/** A field is at most MAX_CLIENT_STRING code units, each escaped to at most 6 characters. */
const MAX_FIELD = 6 * MAX_CLIENT_STRING + 1;

t.test('hostile client text becomes one well-formed, clipped event per attempt', async (t) => {
  const pki = makePki([]);
  const good = pki.client('calgary-01');
  // Certificate names are client-chosen too (any CA for a refused certificate). 8 KiB, because a
  // much larger certificate no longer fits the TLS session ticket and the handshake fails.
  // ASCII only (8-bit text is the User-Agent case below), so the certificate's string type does not matter.
  const evilName = `calgary-01\n${FORGED}\r\u001b[31mred\u001b[0m %s %n %j ${'x'.repeat(8 * 1024)}`;
  const evilTrusted = pki.client('calgary-01', { commonName: evilName });
  const upstream = await startScriptedUpstream();
  const guard = await startGuard(baseConfig(pki, upstream.url, { limits: { ...TEST_LIMITS, max_header_bytes: '160KiB' } }));
  const stdout: string[] = [];
  guard.child.stdout!.on('data', (d) => stdout.push(String(d)));
  t.teardown(async () => {
    await guard.stop();
    await upstream.stop();
  });

  const head = (extra: string | Buffer, path = '/api/replication/apply') =>
    Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n`), Buffer.from(extra), Buffer.from(`content-length: ${WIRE_BODY.length}\r\nconnection: close\r\n\r\n${WIRE_BODY}`)]);
  const send = (data: Buffer, cert = good) => rawTls(guard.port, pki.caFile, { cert, send: [data], ms: 5000 });

  // Raw control characters in a header: the HTTP parser refuses each (one HTTP_MALFORMED event).
  await send(head(`user-agent: a\n${FORGED}\r\n`));
  await send(head('user-agent: a\rb\r\n'));
  await send(head('user-agent: \u001b[31mred\u001b[0m\r\n'));
  // What the parser lets through: printable text, format strings, 8-bit bytes (decoded as
  // Latin-1, so UTF-8 of U+202E brings C1 controls), JSON, 64 KiB. Forwarded, clipped.
  const uaBytes = Buffer.concat([Buffer.from('agent '), Buffer.from(`\u009b31m\u202e %s %n %j ${FORGED}`, 'utf8'), Buffer.from(PAD)]);
  await send(head(Buffer.concat([Buffer.from('user-agent: '), uaBytes, Buffer.from('\r\n')])));
  // A 64 KiB path of JSON-looking text.
  await send(head('', `/api/${encodeURI(FORGED)}${PAD}`));
  // The certificate's subject, trusted (an unknown POP) and untrusted (refused at the handshake).
  await send(head(''), evilTrusted);
  const foreignCa = DevCa.create('attacker CA');
  const dir = mkdtempSync(join(tmpdir(), 'replguard-evil-'));
  const issued = foreignCa.issueClient('calgary-01', { commonName: evilName });
  writeFileSync(join(dir, 'evil.crt'), issued.certPem);
  writeFileSync(join(dir, 'evil.key'), issued.keyPem, { mode: 0o600 });
  await send(head(''), { cert: join(dir, 'evil.crt'), key: join(dir, 'evil.key') });
  const attempts = 7;

  await guard.waitForAudit(attempts, 10_000);
  await guard.stop();
  const text = stdout.join('');
  const lines = text.split('\n');

  t.equal(lines.pop(), '', 'the output ends with a newline');
  t.equal(lines.length, attempts, 'one line per attempt, no forged line');
  t.notOk(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/.test(text), 'no raw control, separator or bidi character in the output');
  const events = lines.map((l) => JSON.parse(l));
  t.same(events.map((e) => e.event.reason), [
    'HTTP_MALFORMED', 'HTTP_MALFORMED', 'HTTP_MALFORMED',
    'FORWARDED', 'ROUTE_NOT_FOUND', 'AUTH_PEER_UNKNOWN', 'TLS_CLIENT_CERT_UNTRUSTED',
  ]);
  t.equal(events.filter((e) => e.event.reason === 'FORWARDED').length, 1, 'the forged FORWARDED text did not become an event');
  for (const line of lines) t.ok(line.length < 4 * MAX_FIELD, `line of ${line.length} characters: nothing of the 64 KiB got through`);

  const [, , , forwarded, notFound, unknown, untrusted] = events;
  t.equal(forwarded.user_agent.original, clip(uaBytes.toString('latin1')), 'User-Agent clipped and escaped');
  t.ok(forwarded.user_agent.original.length <= MAX_FIELD);
  t.match(forwarded.user_agent.original, /^agent Â\\u009b31mâ\\u0080®/, 'the 8-bit CSI is visible text');
  t.equal(notFound.url.path, clip(`/api/${encodeURI(FORGED)}${PAD}`), 'path clipped');
  t.equal(unknown.tls.client.subject, clip(`CN=${evilName}`), 'trusted certificate subject clipped and escaped');
  t.match(unknown.tls.client.subject, /^CN=calgary-01\\u000a\{"@timestamp"/, 'the newline is visible, not a line break');
  t.equal(untrusted.tls.client.subject, clip(`CN=${evilName}`), 'untrusted certificate subject clipped and escaped');
  t.equal(forwarded.http.response.status_code, 200);
  t.equal(upstream.hits('/api/replication/apply'), 1, 'only the printable request reached the upstream');
});

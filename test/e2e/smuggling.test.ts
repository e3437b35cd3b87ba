// Request smuggling and header limits through real sockets: every ambiguous framing is refused
// with 400, the connection is closed, and nothing of it reaches the upstream.
import t from 'tap';
import { baseConfig, startGuard } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { rawRequest } from '../helpers/tls-client.ts';
import { startBackup } from '../helpers/upstream.ts';

const PATH = '/api/replication/apply';
const BODY = '{"source_pop":"calgary-01","entries":[]}';
const SMUGGLED = `POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`;
const chunked = (body: string) => `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
const head = (lines: string[], version = '1.1') => `POST ${PATH} HTTP/${version}\r\nHost: localhost\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;

// [name, bytes, the reason the guard must give]
const FORMS: Array<[string, string, string]> = [
  ['duplicate Content-Length (same value)', head([`Content-Length: ${BODY.length}`, `Content-Length: ${BODY.length}`]) + BODY, 'HTTP_MALFORMED'],
  ['conflicting Content-Length', head(['Content-Length: 5', `Content-Length: ${BODY.length}`]) + BODY, 'HTTP_MALFORMED'],
  ['Content-Length list', head([`Content-Length: ${BODY.length}, ${BODY.length}`]) + BODY, 'HTTP_MALFORMED'],
  ['Content-Length with a sign', head([`Content-Length: +${BODY.length}`]) + BODY, 'HTTP_MALFORMED'],
  ['Transfer-Encoding with Content-Length (CL.TE)', `${head(['Content-Length: 4', 'Transfer-Encoding: chunked'])}0\r\n\r\n${SMUGGLED}`, 'HTTP_MALFORMED'],
  ['Content-Length with Transfer-Encoding (TE.CL)', head(['Transfer-Encoding: chunked', `Content-Length: ${SMUGGLED.length}`]) + chunked(SMUGGLED), 'HTTP_MALFORMED'],
  ['obsolete line folding', head(['X-Note: a', ' folded', `Content-Length: ${BODY.length}`]) + BODY, 'HTTP_MALFORMED'],
  ['obsolete folding of Transfer-Encoding', head(['Transfer-Encoding: gzip', ' , chunked']) + chunked(BODY), 'HTTP_MALFORMED'],
  ['"chunked, identity"', head(['Transfer-Encoding: chunked, identity']) + chunked(BODY), 'HTTP_MALFORMED'],
  ['two Transfer-Encoding fields', head(['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked']) + chunked(BODY), 'HTTP_MALFORMED'],
  ['bare LF line ends', `POST ${PATH} HTTP/1.1\nHost: localhost\nContent-Length: ${BODY.length}\n\n${BODY}`, 'HTTP_MALFORMED'],
  ['"gzip, chunked" (unsupported coding)', head(['Transfer-Encoding: gzip, chunked']) + chunked(BODY), 'HTTP_FRAMING_INVALID'],
  ['",chunked" (empty list element)', head(['Transfer-Encoding: ,chunked']) + chunked(BODY), 'HTTP_FRAMING_INVALID'],
  ['empty Transfer-Encoding beside Content-Length', head(['Transfer-Encoding: ', `Content-Length: ${BODY.length}`]) + BODY, 'HTTP_FRAMING_INVALID'],
  ['Transfer-Encoding on HTTP/1.0', head(['Transfer-Encoding: chunked'], '1.0') + chunked(BODY), 'HTTP_FRAMING_INVALID'],
  ['two Host fields', head(['Host: other.example', `Content-Length: ${BODY.length}`]) + BODY, 'HTTP_FRAMING_INVALID'],
  ['more header fields than limits.max_headers', head([...Array.from({ length: 70 }, (_, i) => `X-F${i}: 1`), 'Transfer-Encoding: gzip, chunked']) + chunked(BODY), 'HTTP_HEADERS_TOO_LARGE'],
  ['headers larger than limits.max_header_bytes', head([`X-Big: ${'a'.repeat(17 * 1024)}`, `Content-Length: ${BODY.length}`]) + BODY, 'HTTP_HEADERS_TOO_LARGE'],
];

t.test('request smuggling forms', async (t) => {
  const pki = makePki([]);
  const cert = pki.client('calgary-01');
  const backup = await startBackup();
  // Failures would ban this client after 10; this file is about framing, not bans.
  const guard = await startGuard(baseConfig(pki, backup.url, { limits: { ban_after_failures: 1000 } }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });

  await t.test('control: a well-framed chunked request is forwarded with a Content-Length', async (t) => {
    const reply = await rawRequest(guard.port, pki.caFile, head(['Content-Type: application/json', 'Transfer-Encoding: Chunked', 'Connection: close']) + chunked(BODY), { cert });
    t.equal(reply.status, 200);
    const [seen] = backup.received();
    t.equal(seen?.body.toString(), BODY);
    t.equal(seen?.headers['content-length'], String(BODY.length));
    t.notOk(seen?.headers['transfer-encoding']);
    const [event] = await guard.waitForEvents((e) => e.event.reason === 'FORWARDED', 1);
    t.equal(event!.http.response.status_code, 200);
  });

  for (const [name, bytes, reason] of FORMS) {
    await t.test(name, async (t) => {
      const before = guard.audit().length;
      const received = backup.received().length;
      const reply = await rawRequest(guard.port, pki.caFile, bytes, { cert });
      t.equal(reply.status, 400);
      t.ok(reply.closedByServer, 'the connection is closed');
      t.match(reply.text, /\r\nconnection: close\r\n/i);
      const events = await guard.waitForAudit(before + 1);
      const event = events[before];
      t.equal(events.length, before + 1, 'exactly one audit event');
      t.equal(event!.event.reason, reason);
      t.equal(event!.http.response.status_code, 400);
      t.equal(backup.received().length, received, 'nothing reached the upstream');
    });
  }

  t.equal(backup.received().length, 1, 'only the control request was ever forwarded');
  t.equal(guard.audit().length, FORMS.length + 1, 'one audit event per request, none twice');
});

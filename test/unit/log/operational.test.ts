// The operational log cuts credential-shaped text from errors (the one place client text can
// reach it) and leaves the program's own fields alone.
import { Writable } from 'node:stream';
import t from 'tap';
import { generateToken } from '../../../src/cli/gen-token.ts';
import { createOperationalLog } from '../../../src/log/operational.ts';

function capture() {
  const lines: Array<Record<string, any>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: createOperationalLog('info', sink as never), lines };
}

t.test('an error quoting a credential is written without it, message, stack and cause', async (t) => {
  const { log, lines } = capture();
  const secret = generateToken();
  const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjYWxnYXJ5LTAxIn0.c2ln';
  const err = new Error(`cannot parse /api/replication/${jwt}`, { cause: new Error(`token=${secret}`) });
  log.error({ err, request_id: 'r1' }, 'unexpected error in the request pipeline');
  log.warn({ err: `store said ${secret}` }, 'ban bookkeeping failed');
  const text = JSON.stringify(lines);
  t.notOk(text.includes(secret), 'no secret');
  t.notOk(text.includes(jwt.slice(0, 20)), 'no JWT');
  t.equal(lines[0]!.err.message, 'cannot parse /api/replication/[Redacted]');
  t.match(lines[0]!.err.stack, /^Error: cannot parse \/api\/replication\/\[Redacted\]\n\s+at /, 'the frames are kept');
  t.match(lines[0]!.err.stack, /\ncaused by: Error: \[Redacted\]\n/, 'the cause too');
  t.equal(lines[1]!.err, 'store said [Redacted]');
  t.equal(lines[0]!.request_id, 'r1');
});

t.test("the program's own fields are not touched", async (t) => {
  const { log, lines } = capture();
  const sha256 = 'cb14efbd0553a3efcc8eaba8ea46543a0291778c1f22a6ecc62eb33bc5c7af1e';
  log.info({ source: 'tls', certificate_sha256: sha256 }, 'new TLS handshakes use the reloaded certificate and trust');
  t.equal(lines[0]!.certificate_sha256, sha256);
});

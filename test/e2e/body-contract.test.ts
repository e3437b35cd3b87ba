// The body contract through the real guard: signed requests whose bodies the legacy backup must
// never see. Each is correctly signed, so only the body decides.
import t from 'tap';
import { parseSignKey } from '../../src/replay/keys.ts';
import { signatureHeaders } from '../../src/replay/signing.ts';
import { call } from '../helpers/client.ts';
import { baseConfig, startGuard } from '../helpers/guard.ts';
import { ecsProblems } from '../helpers/ecs.ts';
import { makePki } from '../helpers/pki.ts';
import { makeHmacKey, writeKeyFile } from '../helpers/signing.ts';
import { startBackup } from '../helpers/upstream.ts';

t.test('body contract', async (t) => {
  const pki = makePki([]);
  const cert = pki.client('calgary-01');
  const hmac = makeHmacKey();
  const key = parseSignKey(hmac.text);
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    auth: { methods: ['mtls', 'signature'] },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, signing_keys: [writeKeyFile(hmac.text)] }],
  }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });

  let n = 0;
  const send = (make: (id: string, ts: number) => string | Buffer, contentType = 'application/json') => {
    const id = `e2e-body-${String(n++).padStart(10, '0')}`;
    const ts = Math.floor(Date.now() / 1000);
    const made = make(id, ts);
    const body = typeof made === 'string' ? Buffer.from(made) : made;
    return call(guard.port, pki.caFile, { cert, body, headers: { ...signatureHeaders([key], body, id, String(ts)), 'content-type': contentType } });
  };

  const cases: Array<[string, (id: string, ts: number) => string | Buffer, number, string, string?]> = [
    ['source_pop of another POP', (id, ts) => JSON.stringify({ source_pop: 'zurich-01', entries: [], timestamp: ts, nonce: id }), 403, 'BODY_SOURCE_POP_MISMATCH'],
    ['no source_pop', (id, ts) => JSON.stringify({ entries: [], timestamp: ts, nonce: id }), 400, 'BODY_SOURCE_POP_MISSING'],
    ['duplicate source_pop (last wins in the backup\'s parser)', (id, ts) => `{"source_pop":"calgary-01","entries":[],"timestamp":${ts},"nonce":"${id}","source_pop":"zurich-01"}`, 400, 'BODY_DUPLICATE_KEY'],
    ['a duplicate key deep inside an entry', (id, ts) => `{"source_pop":"calgary-01","entries":[{"id":1,"id":2}],"timestamp":${ts},"nonce":"${id}"}`, 400, 'BODY_DUPLICATE_KEY'],
    ['a key repeated under another case (Go matches fields case-insensitively)', (id, ts) => `{"source_pop":"calgary-01","Source_Pop":"zurich-01","entries":[],"timestamp":${ts},"nonce":"${id}"}`, 400, 'BODY_DUPLICATE_KEY'],
    ['an array body', () => '[{"source_pop":"calgary-01"}]', 400, 'BODY_NOT_OBJECT'],
    ['a string body', () => '"calgary-01"', 400, 'BODY_NOT_OBJECT'],
    ['not JSON', () => 'source_pop=calgary-01', 400, 'BODY_NOT_JSON'],
    ['timestamp disagreeing with the header', (id, ts) => JSON.stringify({ source_pop: 'calgary-01', entries: [], timestamp: ts - 60, nonce: id }), 400, 'BODY_TIMESTAMP_MISMATCH'],
    ['nonce disagreeing with the header', (_id, ts) => JSON.stringify({ source_pop: 'calgary-01', entries: [], timestamp: ts, nonce: 'a-different-nonce-0000' }), 400, 'BODY_NONCE_MISMATCH'],
    ['a form content type', (id, ts) => JSON.stringify({ source_pop: 'calgary-01', entries: [], timestamp: ts, nonce: id }), 400, 'BODY_CONTENT_TYPE_INVALID', 'application/x-www-form-urlencoded'],
  ];

  await t.test('refused bodies never reach the backup', async (t) => {
    const before = backup.received().length;
    for (const [name, make, status, reason, contentType] of cases) {
      const reply = await send(make, contentType);
      t.equal(reply.status, status, name);
      const rid = reply.headers['x-replguard-request-id'];
      const [event] = await guard.waitForEvents((e) => e.replguard?.request_id === rid, 1);
      t.equal(event!.event.reason, reason, name);
    }
    t.equal(backup.received().length, before);
  });

  await t.test('the same contract met: forwarded, entry count audited', async (t) => {
    const reply = await send((id, ts) => JSON.stringify({ source_pop: 'calgary-01', entries: [{ id: 1 }, { id: 2 }, { id: 3 }], timestamp: ts, nonce: id }), 'application/json; charset=utf-8');
    t.equal(reply.status, 200);
    const rid = reply.headers['x-replguard-request-id'];
    const [event] = await guard.waitForEvents((e) => e.replguard?.request_id === rid, 1);
    t.equal(event!.replguard.entries, 3);
    t.equal(JSON.parse(reply.body).applied, 3, 'the backup applied three entries');
  });

  await t.test('every audit event written here is exact ECS (test/helpers/ecs.ts)', async (t) => {
    const events = guard.audit();
    t.ok(events.length > 0, `${events.length} events`);
    for (const e of events) t.same(ecsProblems(e), [], `${e.event.reason} (${e.event.action})`);
  });
});

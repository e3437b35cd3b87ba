// Freshness and replay through the real guard: a replay is refused and the backup applied the
// batch exactly once; stale and future timestamps; a full nonce store refuses (503) and evicts
// nothing. max_nonces is tiny here so that the store fills.
import t from 'tap';
import { parseSignKey } from '../../src/replay/keys.ts';
import { signatureHeaders } from '../../src/replay/signing.ts';
import { call, type Reply } from '../helpers/client.ts';
import { baseConfig, startGuard } from '../helpers/guard.ts';
import { ecsProblems } from '../helpers/ecs.ts';
import { makePki } from '../helpers/pki.ts';
import { makeHmacKey, writeKeyFile } from '../helpers/signing.ts';
import { startBackup } from '../helpers/upstream.ts';

t.test('replay protection', async (t) => {
  const pki = makePki([]);
  const cert = pki.client('calgary-01');
  const hmac = makeHmacKey();
  const key = parseSignKey(hmac.text);
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    auth: { methods: ['mtls', 'signature'] },
    replay: { max_age: '300s', max_nonces: 3 },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, signing_keys: [writeKeyFile(hmac.text)] }],
  }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });

  let n = 0;
  const request = (tsOffset = 0) => {
    const id = `e2e-replay-${String(n++).padStart(10, '0')}`;
    const ts = Math.floor(Date.now() / 1000) + tsOffset;
    const body = Buffer.from(JSON.stringify({ source_pop: 'calgary-01', entries: [{ id: n }], timestamp: ts, nonce: id }));
    return { id, body, headers: signatureHeaders([key], body, id, String(ts)) };
  };
  const send = (r: ReturnType<typeof request>) => call(guard.port, pki.caFile, { cert, body: r.body, headers: r.headers });
  const reasonOf = async (reply: Reply) => {
    const id = reply.headers['x-replguard-request-id'];
    const [event] = await guard.waitForEvents((e) => e.replguard?.request_id === id, 1);
    return event!;
  };
  const appliedWith = (id: string) => backup.received().filter((r) => JSON.parse(r.body.toString()).nonce === id).length;

  const first = request();
  await t.test('a replay of an accepted request is refused; the backup applied it exactly once', async (t) => {
    t.equal((await send(first)).status, 200);
    const again = await send(first);
    t.equal(again.status, 401);
    const event = await reasonOf(again);
    t.equal(event.event.reason, 'REPLAY_NONCE_REUSED');
    t.equal(event.event.kind, 'alert');
    t.equal(event.replguard.webhook_id, first.id);
    t.equal(appliedWith(first.id), 1);
  });

  await t.test('stale and future timestamps are refused and record no nonce', async (t) => {
    const stale = await send(request(-301));
    const future = await send(request(+301));
    t.equal(stale.status, 401);
    t.equal(future.status, 401);
    t.equal((await reasonOf(stale)).event.reason, 'REPLAY_TIMESTAMP_STALE');
    t.equal((await reasonOf(future)).event.reason, 'REPLAY_TIMESTAMP_FUTURE');
    // A minute from the edge, not seconds: its nonce must still be live in the next test, however
    // slow a loaded machine makes the steps between them.
    t.equal((await send(request(-240))).status, 200, 'inside the window, a minute from its edge');
  });

  await t.test('the full store refuses with 503 and evicts nothing', async (t) => {
    // Live now: `first` and the request 240 s old. One more fills the store (max_nonces: 3).
    t.equal((await send(request())).status, 200);
    const before = backup.received().length;
    const refused = await send(request());
    t.equal(refused.status, 503);
    t.same(JSON.parse(refused.body), { error: 'service_unavailable', request_id: refused.headers['x-replguard-request-id'] });
    const event = await reasonOf(refused);
    t.equal(event.event.reason, 'REPLAY_STORE_FULL');
    t.equal(event.event.kind, 'alert');
    const replay = await send(first);
    t.equal(replay.status, 401, 'the oldest nonce is still there');
    t.equal((await reasonOf(replay)).event.reason, 'REPLAY_NONCE_REUSED');
    t.equal(backup.received().length, before, 'nothing reached the backup');
  });

  await t.test('every audit event written here is exact ECS (test/helpers/ecs.ts)', async (t) => {
    const events = guard.audit();
    t.ok(events.length > 0, `${events.length} events`);
    for (const e of events) t.same(ecsProblems(e), [], `${e.event.reason} (${e.event.action})`);
  });
});

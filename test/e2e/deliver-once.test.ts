// Each batch reaches the backup once (upstream.deduplicate, issue 21 part 2), through real
// sockets: the guard and the signer are the real program (Node, or Deno with
// REPLGUARD_TEST_RUNTIME=deno), the backup an in-process server the test tells when to answer.
// - a retry of an answered batch gets the recorded answer (x-replguard-duplicate), not a second
//   delivery; one in flight 409; another batch under the same webhook-id stays a replay;
// - a backup slower than upstream.timeout: the signer retries the 504 and the batch still
//   reaches the backup once (the retry is refused: outcome unknown); without dedup the signer
//   does not retry the 504 at all;
// - the signer losing the guard's answer retries and gets the recorded answer;
// - two guard replicas on one Redis agree.
import { once } from 'node:events';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import t from 'tap';
import { parseSignKey } from '../../src/replay/keys.ts';
import { signatureHeaders } from '../../src/replay/signing.ts';
import { call, type Reply } from '../helpers/client.ts';
import { baseConfig, startGuard, type AuditRecord, type GuardProcess } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { primaryPost } from '../helpers/primary.ts';
import { startRedis } from '../helpers/redis.ts';
import { startScriptedBackup } from '../helpers/scripted-upstream.ts';
import { makeHmacKey, writeKeyFile } from '../helpers/signing.ts';
import { signerConfig as sharedSignerConfig } from '../helpers/signer-config.ts';

const pki = makePki([]);
const cert = pki.client('calgary-01');
const hmac = makeHmacKey();
const key = parseSignKey(hmac.text);
const guardKeyFile = writeKeyFile(hmac.text);
const signerKeyFile = writeKeyFile(hmac.text);

const DEDUP = { window: '1h', max_answer_bytes: '1KiB' };

function guardConfig(backupUrl: string, overrides: Record<string, unknown> = {}, upstream: Record<string, unknown> = {}): Record<string, unknown> {
  return baseConfig(pki, backupUrl, {
    auth: { methods: ['mtls', 'signature'] },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, signing_keys: [guardKeyFile] }],
    upstream: { url: backupUrl, timeout: '2s', deduplicate: DEDUP, ...upstream },
    ...overrides,
  });
}

let n = 0;
/** A signed batch; `again` resends the same batch (same webhook-id) at another time, as the signer's retries do. */
function batch(entries: unknown[] = [{ id: ++n, op: 'upsert' }]) {
  const id = `e2e-once-${String(++n).padStart(12, '0')}`;
  const at = (ts: number, list = entries) => {
    const body = Buffer.from(JSON.stringify({ source_pop: 'calgary-01', entries: list, timestamp: ts, nonce: id }));
    return { body, headers: signatureHeaders([key], body, id, String(ts)) };
  };
  const now = Math.floor(Date.now() / 1000);
  return { id, first: at(now), again: (offset: number) => at(now + offset), other: (list: unknown[]) => at(now, list) };
}

const send = (guard: GuardProcess, r: { body: Buffer; headers: Record<string, string> }) => call(guard.port, pki.caFile, { cert, body: r.body, headers: r.headers });
async function eventOf(guard: GuardProcess, reply: Reply): Promise<AuditRecord> {
  const id = reply.headers['x-replguard-request-id'];
  const [event] = await guard.waitForEvents((e) => e.replguard?.request_id === id, 1, 10_000);
  return event!;
}

t.test('one guard, memory store', async (t) => {
  const backup = await startScriptedBackup();
  const guard = await startGuard(guardConfig(backup.url));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });

  await t.test('a retry of an answered batch gets the recorded answer, not a second delivery', async (t) => {
    const b = batch();
    const first = await send(guard, b.first);
    t.equal(first.status, 200);
    t.equal(first.headers['x-replguard-dedup'], 'on', 'the guard says it deduplicates');
    t.notOk(first.headers['x-replguard-duplicate']);
    t.equal((await eventOf(guard, first)).event.reason, 'FORWARDED');

    const same = await send(guard, b.first);
    const later = await send(guard, b.again(7));
    for (const [name, reply] of [['the same bytes', same], ['the same batch at a later timestamp', later]] as const) {
      t.equal(reply.status, 200, name);
      t.equal(reply.headers['x-replguard-duplicate'], 'true', `${name}: marked`);
      t.equal(reply.body, first.body, `${name}: the backup's answer again`);
      t.equal(reply.headers['content-type'], 'application/json', `${name}: its content type`);
      const event = await eventOf(guard, reply);
      t.equal(event.event.reason, 'DELIVERY_DUPLICATE', name);
      t.equal(event.http.response.status_code, 200, `${name}: the recorded status`);
      t.equal(event.replguard.webhook_id, b.id, `${name}: the batch's webhook-id`);
    }
    t.equal(backup.count(b.first.body), 1, 'the backup got the batch once');
    t.equal(backup.count(b.again(7).body), 0, 'and never its retry');

    const other = await send(guard, b.other([{ id: 'changed' }]));
    t.equal(other.status, 401, 'another batch under the same webhook-id');
    t.equal((await eventOf(guard, other)).event.reason, 'REPLAY_NONCE_REUSED', 'stays a replay');
    t.equal(backup.count(b.other([{ id: 'changed' }]).body), 0, 'never delivered');
  });

  await t.test('a retry while the first is in flight: 409, never a second copy; then the answer', async (t) => {
    const b = batch();
    backup.set({ kind: 'hold' });
    const before = backup.bodies().length;
    const pending = send(guard, b.first);
    await backup.arrived(before + 1);
    const retry = await send(guard, b.again(1));
    t.equal(retry.status, 409);
    t.same(JSON.parse(retry.body), { error: 'conflict', request_id: retry.headers['x-replguard-request-id'] }, 'the generic body');
    t.equal((await eventOf(guard, retry)).event.reason, 'DELIVERY_IN_FLIGHT');
    backup.set({ kind: 'answer' });
    backup.release();
    const first = await pending;
    t.equal(first.status, 200);
    const after = await send(guard, b.again(2));
    t.equal(after.headers['x-replguard-duplicate'], 'true', 'answered now');
    t.equal(after.body, first.body);
    t.equal(backup.count(b.first.body), 1, 'delivered once');
  });

  await t.test('an upstream timeout leaves the outcome unknown: a retry is refused, not delivered again', async (t) => {
    const b = batch();
    backup.set({ kind: 'hold' });
    const first = await send(guard, b.first);
    t.equal(first.status, 504);
    t.equal(first.headers['x-replguard-dedup'], 'on', 'a 504 from a guard that deduplicates says so');
    t.equal((await eventOf(guard, first)).event.reason, 'UPSTREAM_TIMEOUT');
    const retry = await send(guard, b.again(3));
    t.equal(retry.status, 409);
    const event = await eventOf(guard, retry);
    t.equal(event.event.reason, 'DELIVERY_OUTCOME_UNKNOWN');
    t.equal(event.event.kind, 'alert', 'an operator checks the backup');
    backup.set({ kind: 'answer' });
    backup.release();
    t.equal(backup.count(b.first.body), 1, 'the backup got it once');
  });

  await t.test('a backup answering 503 did not take the batch: its retry is delivered', async (t) => {
    const b = batch();
    backup.set({ kind: 'status', status: 503 });
    t.equal((await send(guard, b.first)).status, 503);
    backup.set({ kind: 'answer' });
    const retry = await send(guard, b.again(1));
    t.equal(retry.status, 200);
    t.notOk(retry.headers['x-replguard-duplicate']);
    t.equal((await eventOf(guard, retry)).event.reason, 'FORWARDED');
    t.equal(backup.count(b.again(1).body), 1, 'delivered by the retry');
  });
});

t.test('unsigned requests: the batch is its body digest', async (t) => {
  const backup = await startScriptedBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, { upstream: { url: backup.url, timeout: '2s', deduplicate: DEDUP } }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  const body = JSON.stringify({ source_pop: 'calgary-01', entries: [{ id: 'unsigned-1' }] });
  const first = await call(guard.port, pki.caFile, { cert, body });
  const second = await call(guard.port, pki.caFile, { cert, body });
  const other = await call(guard.port, pki.caFile, { cert, body: JSON.stringify({ source_pop: 'calgary-01', entries: [{ id: 'unsigned-2' }] }) });
  t.equal(first.status, 200);
  t.equal(second.headers['x-replguard-duplicate'], 'true');
  t.equal((await eventOf(guard, second)).event.reason, 'DELIVERY_DUPLICATE');
  t.equal((await eventOf(guard, other)).event.reason, 'FORWARDED', 'another body is another batch');
  t.equal(backup.count(body), 1);
});

// --- the signer (role: primary) in front of the guard -------------------------------------

const signerConfig = (guardUrl: string, overrides: Record<string, unknown> = {}) =>
  sharedSignerConfig(pki, guardUrl, cert, { backup: { id: 'zurich-01', url: guardUrl, ca_file: pki.caFile, server_name: 'localhost', timeout: '10s' }, signing_keys: [signerKeyFile], retry: { max_retries: 2 }, shutdown_timeout: '5s', ...overrides });

const attemptsOf = async (signer: GuardProcess, requestId: string | string[] | undefined) => {
  const [last] = await signer.waitForEvents((e) => e.event.action === 'replication-send' && e.replguard.request_id === requestId && e.replguard.final, 1, 15_000);
  return signer.audit().filter((e) => e.event.action === 'replication-send' && e.replguard.request_id === requestId && e.replguard.attempt <= last!.replguard.attempt);
};

t.test('a backup slower than upstream.timeout receives the batch once while the signer retries', async (t) => {
  const backup = await startScriptedBackup();
  const guard = await startGuard(guardConfig(backup.url, {}, { timeout: '1s' }));
  const plainGuard = await startGuard(guardConfig(backup.url, {}, { timeout: '1s', deduplicate: undefined }));
  const signer = await startGuard(signerConfig(`https://127.0.0.1:${guard.port}`));
  const plainSigner = await startGuard(signerConfig(`https://127.0.0.1:${plainGuard.port}`));
  t.teardown(async () => {
    for (const p of [signer, plainSigner, guard, plainGuard]) await p.stop();
    await backup.stop();
  });
  backup.set({ kind: 'hold' });

  await t.test('a guard that deduplicates: the 504 is retried, the retry refused (outcome unknown)', async (t) => {
    const before = backup.bodies().length;
    const reply = await primaryPost(signer.port, JSON.stringify({ entries: [{ id: 'slow-1' }], timestamp: 0, nonce: '' }));
    t.equal(reply.status, 409, 'the guard\'s refusal, relayed');
    const attempts = await attemptsOf(signer, reply.headers['x-replguard-request-id']);
    t.same(attempts.map((e) => [e.replguard.attempt, e.event.reason, e.http?.response?.status_code]), [
      [1, 'SIGNER_BACKUP_UNAVAILABLE', 504],
      [2, 'SIGNER_BACKUP_REFUSED', 409],
    ], 'the 504 was retried once, and the retry refused');
    t.equal(new Set(attempts.map((e) => e.replguard.webhook_id)).size, 1, 'both attempts are one batch');
    const guardSide = await guard.waitForEvents((e) => e.replguard?.webhook_id === attempts[0]!.replguard.webhook_id, 2);
    t.same(guardSide.map((e) => e.event.reason), ['UPSTREAM_TIMEOUT', 'DELIVERY_OUTCOME_UNKNOWN']);
    t.equal(backup.bodies().length, before + 1, 'the backup received the batch once');
  });

  await t.test('a guard that does not: the 504 is not retried', async (t) => {
    const before = backup.bodies().length;
    const reply = await primaryPost(plainSigner.port, JSON.stringify({ entries: [{ id: 'slow-2' }] }));
    t.equal(reply.status, 502);
    const attempts = await attemptsOf(plainSigner, reply.headers['x-replguard-request-id']);
    t.same(attempts.map((e) => [e.replguard.attempt, e.event.reason, e.replguard.final]), [[1, 'SIGNER_BACKUP_UNAVAILABLE', true]]);
    t.match(attempts[0]!.replguard.detail, /does not deduplicate/);
    t.equal(backup.bodies().length, before + 1, 'the backup received the batch once');
  });
  backup.set({ kind: 'answer' });
  backup.release();

  await t.test('a backup answering 503 behind a guard that does not deduplicate: the retry has its own nonce and is delivered', async (t) => {
    const before = backup.bodies().length;
    backup.set({ kind: 'status', status: 503 });
    void backup.arrived(before + 1).then(() => backup.set({ kind: 'answer' }));
    const reply = await primaryPost(plainSigner.port, JSON.stringify({ entries: [{ id: 'busy-1' }] }));
    t.equal(reply.status, 200, 'delivered by the retry');
    const attempts = await attemptsOf(plainSigner, reply.headers['x-replguard-request-id']);
    t.same(attempts.map((e) => [e.replguard.attempt, e.event.reason]), [[1, 'SIGNER_BACKUP_UNAVAILABLE'], [2, 'SIGNER_DELIVERED']]);
    const [first, second] = attempts as [AuditRecord, AuditRecord];
    t.equal(second.replguard.webhook_id, `${first.replguard.webhook_id}_2`, 'the retry\'s own webhook-id, with the batch\'s number');
    t.equal(second.replguard.sequence, first.replguard.sequence);
    const guardSide = await plainGuard.waitForEvents((e) => e.replguard?.webhook_id === second.replguard.webhook_id, 1);
    t.equal(guardSide[0]!.event.reason, 'FORWARDED', 'not a replay');
    t.equal(backup.bodies().length, before + 2, 'the backup refused the first and applied the second');
  });
});

t.test('the signer loses the guard\'s answer: its retry gets the recorded answer', async (t) => {
  const backup = await startScriptedBackup();
  const guard = await startGuard(guardConfig(backup.url));
  // Between signer and guard: `pass` pipes both ways; `swallow` lets the request through and
  // cuts the connection when the answer comes back (once, then `pass` again).
  let mode: 'pass' | 'swallow' = 'pass';
  const sockets = new Set<Socket>();
  const relay = createNetServer((client) => {
    const upstream = netConnect(guard.port, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    client.pipe(upstream);
    let swallowing = false;
    upstream.on('data', (chunk: Buffer) => {
      // TLS records from the guard: after the handshake, the first application data is the answer.
      if (mode === 'swallow' && chunk[0] === 0x17 && armed) {
        swallowing = true;
        armed = false;
        mode = 'pass';
      }
      if (swallowing) {
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  let armed = false;
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  const port = (relay.address() as AddressInfo).port;
  const signer = await startGuard(signerConfig(`https://127.0.0.1:${port}`));
  t.teardown(async () => {
    await signer.stop();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => relay.close(() => resolve()));
    await guard.stop();
    await backup.stop();
  });

  const warm = await primaryPost(signer.port, JSON.stringify({ entries: [{ id: 'warm-up' }] }));
  t.equal(warm.status, 200, 'a first batch: the guard\'s answer says it deduplicates');

  // New connections only from here, so the swallow meets a fresh handshake.
  for (const s of sockets) s.destroy();
  mode = 'swallow';
  const before = backup.bodies().length;
  const primed = new Promise<void>((resolve) => {
    // Arm once the guard has the batch (the handshake's own records are past by then).
    void backup.arrived(before + 1).then(() => {
      armed = true;
      resolve();
    });
  });
  backup.set({ kind: 'hold' });
  const replyPromise = primaryPost(signer.port, JSON.stringify({ entries: [{ id: 'lost-answer' }] }));
  await primed;
  backup.set({ kind: 'answer' });
  backup.release();
  const reply = await replyPromise;
  t.equal(reply.status, 200, 'the primary gets the backup\'s answer');
  t.same(JSON.parse(reply.body), { applied: before + 1 }, 'the one from the one delivery');
  const attempts = await attemptsOf(signer, reply.headers['x-replguard-request-id']);
  t.same(attempts.map((e) => [e.replguard.attempt, e.event.reason]), [[1, 'SIGNER_BACKUP_UNREACHABLE'], [2, 'SIGNER_DELIVERED']], 'the lost answer was retried');
  const guardSide = await guard.waitForEvents((e) => e.replguard?.webhook_id === attempts[0]!.replguard.webhook_id, 2);
  t.same(guardSide.map((e) => e.event.reason), ['FORWARDED', 'DELIVERY_DUPLICATE']);
  t.equal(backup.bodies().length, before + 1, 'the backup received the batch once');
});

t.test('two guard replicas on one Redis agree', async (t) => {
  const redis = await startRedis();
  const backup = await startScriptedBackup();
  const config = guardConfig(backup.url, { store: { type: 'redis', url: redis.url, key_prefix: 'e2e-once:' } });
  const a = await startGuard(config);
  const b = await startGuard(config);
  t.teardown(async () => {
    await a.stop();
    await b.stop();
    await backup.stop();
    await redis.stop();
  });
  const ready = async (g: GuardProcess) => {
    for (let i = 0; i < 100; i++) {
      const probe = await send(g, batch().first);
      if (probe.status !== 503) return probe.status;
      await new Promise((r) => setTimeout(r, 100));
    }
    return 503;
  };
  t.equal(await ready(a), 200, 'replica a reaches Redis');
  t.equal(await ready(b), 200, 'replica b reaches Redis');

  const answered = batch();
  const first = await send(a, answered.first);
  t.equal(first.status, 200);
  const onB = await send(b, answered.again(2));
  t.equal(onB.headers['x-replguard-duplicate'], 'true', 'the other replica answers from the shared record');
  t.equal(onB.body, first.body);
  t.equal((await eventOf(b, onB)).event.reason, 'DELIVERY_DUPLICATE');
  t.equal(backup.count(answered.first.body), 1);

  const inFlight = batch();
  backup.set({ kind: 'hold' });
  const before = backup.bodies().length;
  const pending = send(a, inFlight.first);
  await backup.arrived(before + 1);
  const meanwhile = await send(b, inFlight.again(1));
  t.equal(meanwhile.status, 409);
  t.equal((await eventOf(b, meanwhile)).event.reason, 'DELIVERY_IN_FLIGHT', 'in flight on the other replica');
  backup.set({ kind: 'answer' });
  backup.release();
  t.equal((await pending).status, 200);
  t.equal(backup.count(inFlight.first.body), 1, 'delivered once');

  const replay = await send(b, inFlight.other([{ id: 'forged' }]));
  t.equal((await eventOf(b, replay)).event.reason, 'REPLAY_NONCE_REUSED', 'another batch under the id: a replay, on either replica');
});

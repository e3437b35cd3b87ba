// Batch numbers (replay.sequence, issue 21 part 1), through real sockets: the guard and the
// signer are the real program (Node, or Deno with REPLGUARD_TEST_RUNTIME=deno), the backup an
// in-process server.
// - order: report: a dropped number is reported as a gap after gap_window, once; a number sent
//   again under another webhook-id is a duplicate; both forwarded; the metrics count them;
// - order: refuse: a number ahead of a missing one is refused (503, the signer retries), a
//   duplicate 409; required refuses a webhook-id without a number;
// - the real signer: one epoch per start, numbers from 1, no gap across a restart; a batch the
//   signer gave up on is a gap its own audit explains (same epoch and number);
// - two guard replicas on one Redis: one epoch, one gap, a duplicate across replicas.
import t from 'tap';
import { parseSignKey } from '../../src/replay/keys.ts';
import { signatureHeaders } from '../../src/replay/signing.ts';
import { adminGet } from '../helpers/admin.ts';
import { call, type Reply } from '../helpers/client.ts';
import { baseConfig, startGuard, type AuditRecord, type GuardProcess } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { primaryPost } from '../helpers/primary.ts';
import { startRedis } from '../helpers/redis.ts';
import { startScriptedBackup } from '../helpers/scripted-upstream.ts';
import { signerConfig as sharedSignerConfig } from '../helpers/signer-config.ts';
import { makeHmacKey, writeKeyFile } from '../helpers/signing.ts';

const pki = makePki([]);
const cert = pki.client('calgary-01');
const hmac = makeHmacKey();
const key = parseSignKey(hmac.text);
const guardKeyFile = writeKeyFile(hmac.text);
const signerKeyFile = writeKeyFile(hmac.text);

function guardConfig(backupUrl: string, sequence: Record<string, unknown> = {}, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return baseConfig(pki, backupUrl, {
    auth: { methods: ['mtls', 'signature'] },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, signing_keys: [guardKeyFile] }],
    replay: { sequence: { gap_window: '1s', ...sequence } },
    ...overrides,
  });
}

let epochs = 0;
/** A fresh epoch id (32 hex digits), as a signer start makes one. */
const newEpoch = () => `${(++epochs).toString(16).padStart(8, '0')}${'ab'.repeat(12)}`;

/** A signed batch numbered `n` in `epoch`; `attempt` gives a retry's own webhook-id. */
function numbered(epoch: string, n: number, attempt?: number) {
  const id = `rs1_${epoch}_${n}${attempt !== undefined ? `_${attempt}` : ''}`;
  const ts = Math.floor(Date.now() / 1000);
  const body = Buffer.from(JSON.stringify({ source_pop: 'calgary-01', entries: [{ id, op: 'upsert' }], timestamp: ts, nonce: id }));
  return { id, body, headers: signatureHeaders([key], body, id, String(ts)) };
}

const send = (guard: GuardProcess, r: { body: Buffer; headers: Record<string, string> }) => call(guard.port, pki.caFile, { cert, body: r.body, headers: r.headers });
async function eventOf(guard: GuardProcess, reply: Reply): Promise<AuditRecord> {
  const id = reply.headers['x-replguard-request-id'];
  const [event] = await guard.waitForEvents((e) => e.replguard?.request_id === id && e.event.action === 'replication-request', 1, 10_000);
  return event!;
}
const findings = (guard: GuardProcess, reason: string, epoch: string) => guard.audit().filter((e) => e.event.action === 'batch-sequence' && e.event.reason === reason && e.replguard.epoch === epoch);
const waitFinding = (guard: GuardProcess, reason: string, epoch: string, count = 1) =>
  guard.waitForEvents((e) => e.event.action === 'batch-sequence' && e.event.reason === reason && e.replguard.epoch === epoch, count, 15_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('order: report', async (t) => {
  const backup = await startScriptedBackup();
  const guard = await startGuard(guardConfig(backup.url));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  const epoch = newEpoch();

  await t.test('a dropped number is a gap after gap_window, reported once', async (t) => {
    for (const n of [1, 2, 4]) {
      const reply = await send(guard, numbered(epoch, n));
      t.equal(reply.status, 200, `batch ${n} forwarded`);
      const event = await eventOf(guard, reply);
      t.equal(event.event.reason, 'FORWARDED');
      t.same([event.replguard.epoch, event.replguard.sequence], [epoch, n], 'the request event names the epoch and number');
    }
    const [start] = await waitFinding(guard, 'SEQUENCE_NEW_EPOCH', epoch);
    t.equal(start!.replguard.sequence, 1, 'the epoch starts at 1');
    t.equal(start!.event.kind, 'event');
    t.equal(start!.replguard.pop, 'calgary-01');
    const [gap] = await waitFinding(guard, 'SEQUENCE_GAP', epoch);
    t.same(gap!.replguard.gap, { from: 3, to: 3, count: 1 }, 'batch 3 is missing');
    t.equal(gap!.event.kind, 'alert', 'a gap is an alert');
    await sleep(2500); // two more sweeps
    t.equal(findings(guard, 'SEQUENCE_GAP', epoch).length, 1, 'reported once');
    t.equal(findings(guard, 'SEQUENCE_NEW_EPOCH', epoch).length, 1, 'one new epoch');
    const metrics = (await adminGet(guard.adminPort, '/metrics')).body;
    t.match(metrics, /replguard_sequence_missing_batches_total\{pop="calgary-01"\} 1\b/);
    t.match(metrics, /replguard_sequence_events_total\{reason="SEQUENCE_GAP",pop="calgary-01"\} 1\b/);
  });

  await t.test('a number sent again under another webhook-id: forwarded and reported as a duplicate', async (t) => {
    const again = numbered(epoch, 2, 2);
    const reply = await send(guard, again);
    t.equal(reply.status, 200, 'report only: forwarded');
    t.equal(backup.count(again.body), 1);
    const [dup] = await waitFinding(guard, 'SEQUENCE_DUPLICATE', epoch);
    t.equal(dup!.replguard.sequence, 2);
    t.equal(dup!.replguard.request_id, reply.headers['x-replguard-request-id'], 'names the request');
    t.equal(dup!.event.kind, 'alert');
  });

  await t.test('a webhook-id without a number is forwarded untracked', async (t) => {
    const id = 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W';
    const ts = Math.floor(Date.now() / 1000);
    const body = Buffer.from(JSON.stringify({ source_pop: 'calgary-01', entries: [], timestamp: ts, nonce: id }));
    const reply = await send(guard, { body, headers: signatureHeaders([key], body, id, String(ts)) });
    t.equal(reply.status, 200);
    const event = await eventOf(guard, reply);
    t.equal(event.replguard.sequence, undefined);
    t.equal(event.replguard.epoch, undefined);
  });
});

t.test('order: refuse', async (t) => {
  const backup = await startScriptedBackup();
  const guard = await startGuard(guardConfig(backup.url, { order: 'refuse', required: true }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  const epoch = newEpoch();
  t.equal((await send(guard, numbered(epoch, 1))).status, 200);

  const ahead = numbered(epoch, 3);
  const refused = await send(guard, ahead);
  t.equal(refused.status, 503, 'ahead of batch 2: refused for now');
  t.equal(refused.headers['retry-after'], '1', 'with Retry-After (the signer waits and retries)');
  t.equal((await eventOf(guard, refused)).event.reason, 'SEQUENCE_OUT_OF_ORDER');
  t.equal(backup.count(ahead.body), 0, 'never forwarded ahead');

  t.equal((await send(guard, numbered(epoch, 2))).status, 200, 'batch 2');
  const retry = numbered(epoch, 3, 2);
  t.equal((await send(guard, retry)).status, 200, 'the retry of 3, now in order');
  t.equal(backup.count(retry.body), 1);

  const dup = numbered(epoch, 2, 3);
  const again = await send(guard, dup);
  t.equal(again.status, 409, 'a number forwarded before');
  t.same(JSON.parse(again.body), { error: 'conflict', request_id: again.headers['x-replguard-request-id'] }, 'the generic body');
  const event = await eventOf(guard, again);
  t.equal(event.event.reason, 'SEQUENCE_REFUSED');
  t.equal(event.event.kind, 'alert');
  t.equal((await waitFinding(guard, 'SEQUENCE_DUPLICATE', epoch))[0]!.replguard.sequence, 2);
  t.equal(backup.count(dup.body), 0, 'never forwarded again');

  const id = 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W';
  const ts = Math.floor(Date.now() / 1000);
  const body = Buffer.from(JSON.stringify({ source_pop: 'calgary-01', entries: [], timestamp: ts, nonce: id }));
  const plain = await send(guard, { body, headers: signatureHeaders([key], body, id, String(ts)) });
  t.equal(plain.status, 400, 'required: a webhook-id without a number is refused');
  t.equal((await eventOf(guard, plain)).event.reason, 'SEQUENCE_MISSING');
});

t.test('the real signer: an epoch per start, and a gap its own audit explains', async (t) => {
  const backup = await startScriptedBackup();
  // Longer than the signer's first retry delay (1 s): a batch being retried is not lost yet.
  const guard = await startGuard(guardConfig(backup.url, { gap_window: '3s' }));
  const config = sharedSignerConfig(pki, `https://127.0.0.1:${guard.port}`, cert, {
    backup: { id: 'zurich-01', url: `https://127.0.0.1:${guard.port}`, ca_file: pki.caFile, server_name: 'localhost', timeout: '10s' },
    signing_keys: [signerKeyFile], retry: { max_retries: 0 }, shutdown_timeout: '5s',
  });
  let signer = await startGuard(config);
  t.teardown(async () => {
    await signer.stop();
    await guard.stop();
    await backup.stop();
  });
  const post = async (id: string) => primaryPost(signer.port, JSON.stringify({ entries: [{ id }] }));
  const guardEvent = async (reply: { headers: Record<string, string | string[] | undefined> }) => {
    const [sent] = await signer.waitForEvents((e) => e.event.action === 'replication-send' && e.replguard.request_id === reply.headers['x-replguard-request-id'] && e.replguard.final, 1, 15_000);
    return sent!;
  };

  t.equal((await post('one')).status, 200);
  backup.set({ kind: 'status', status: 503 });
  const lost = await post('two');
  t.equal(lost.status, 502, 'the backup refused it (503) and the signer gave up (no retries configured)');
  backup.set({ kind: 'answer' });
  const third = await post('three');
  t.equal(third.status, 200);
  const failed = await guardEvent(lost);
  t.not(failed.event.reason, 'SIGNER_DELIVERED');
  const epoch: string = failed.replguard.epoch;
  t.equal(failed.replguard.sequence, 2, 'the signer names the batch it failed to deliver');
  const thirdSent = await guardEvent(third);
  t.not(thirdSent.replguard.epoch, epoch, 'a batch the signer gave up on ends its epoch');
  t.equal(thirdSent.replguard.sequence, 1, 'the next one starts a new epoch at 1');
  const [gap] = await waitFinding(guard, 'SEQUENCE_GAP', epoch);
  t.same(gap!.replguard.gap, { from: 2, to: 2, count: 1 }, 'the guard reports the same number missing: a gap the signer explains');

  // A retry keeps its number: the first attempt's claim is withdrawn (503), the retry claims it.
  const retrying = await startGuard({ ...config, retry: { max_retries: 1 } });
  t.teardown(() => retrying.stop());
  const before = backup.bodies().length;
  backup.set({ kind: 'status', status: 503 });
  void backup.arrived(before + 1).then(() => backup.set({ kind: 'answer' }));
  const retried = await primaryPost(retrying.port, JSON.stringify({ entries: [{ id: 'retried' }] }));
  t.equal(retried.status, 200, 'delivered by the retry');
  const attempts = await retrying.waitForEvents((e) => e.event.action === 'replication-send' && e.replguard.request_id === retried.headers['x-replguard-request-id'], 2, 15_000);
  t.same(attempts.map((e) => [e.replguard.attempt, e.replguard.sequence]), [[1, 1], [2, 1]], 'both attempts carry batch 1 of the epoch');
  const retriedEpoch: string = attempts[0]!.replguard.epoch;
  const seen = await guard.waitForEvents((e) => e.replguard?.epoch === retriedEpoch && e.event.action === 'replication-request', 2, 15_000);
  t.same(seen.map((e) => [e.event.reason, e.replguard.upstream_status, e.replguard.sequence]), [['FORWARDED', 503, 1], ['FORWARDED', 200, 1]], 'the guard saw 1 twice: refused by the backup, then applied');

  await signer.stop();
  signer = await startGuard(config);
  const after = await post('four');
  t.equal(after.status, 200);
  const sent = await guardEvent(after);
  t.not(sent.replguard.epoch, epoch, 'a new epoch after the restart');
  t.equal(sent.replguard.sequence, 1, 'numbered from 1 again');
  t.equal((await post('five')).status, 200);
  const [start] = await waitFinding(guard, 'SEQUENCE_NEW_EPOCH', sent.replguard.epoch);
  t.equal(start!.replguard.sequence, 1);
  await sleep(4500); // past gap_window and a sweep
  t.same(findings(guard, 'SEQUENCE_GAP', sent.replguard.epoch), [], 'no gap in the new epoch');
  t.same(findings(guard, 'SEQUENCE_GAP', retriedEpoch), [], 'nor in the retried one');
  t.equal(guard.audit().filter((e) => e.event.action === 'batch-sequence' && e.event.reason === 'SEQUENCE_GAP').length, 1, 'and the restart itself is no gap');
  t.same(guard.audit().filter((e) => e.event.reason === 'SEQUENCE_DUPLICATE'), [], 'nor a duplicate');
});

t.test('two guard replicas on one Redis agree', async (t) => {
  const redis = await startRedis();
  const backup = await startScriptedBackup();
  const config = guardConfig(backup.url, {}, { store: { type: 'redis', url: redis.url, key_prefix: 'e2e-seq:' } });
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
      const probe = await send(g, numbered(newEpoch(), 1));
      if (probe.status !== 503) return probe.status;
      await sleep(100);
    }
    return 503;
  };
  t.equal(await ready(a), 200, 'replica a reaches Redis');
  t.equal(await ready(b), 200, 'replica b reaches Redis');

  const epoch = newEpoch();
  for (const [g, n] of [[a, 1], [b, 2], [a, 4], [b, 5]] as const) t.equal((await send(g, numbered(epoch, n))).status, 200, `batch ${n}`);
  const dup = await send(a, numbered(epoch, 5, 2));
  t.equal(dup.status, 200, 'report only');
  await Promise.race([waitFinding(a, 'SEQUENCE_GAP', epoch), waitFinding(b, 'SEQUENCE_GAP', epoch)]);
  await sleep(2500);
  const all = (reason: string) => [...findings(a, reason, epoch), ...findings(b, reason, epoch)];
  t.equal(all('SEQUENCE_NEW_EPOCH').length, 1, 'one new epoch across the replicas');
  t.same(all('SEQUENCE_GAP').map((e) => e.replguard.gap), [{ from: 3, to: 3, count: 1 }], 'one gap, reported by one replica');
  t.same(all('SEQUENCE_DUPLICATE').map((e) => e.replguard.sequence), [5], 'the duplicate sent to the other replica');
});

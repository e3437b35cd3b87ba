// The signer in-process against real TLS servers standing in for a guard's answers that are hard
// to provoke from a real one (503 with Retry-After, 429, a TLS 1.2-only or foreign-CA server),
// with an injected sleep and clock: retry decisions, Retry-After, shutdown and a primary that
// hangs up during a wait, and a signing key swapped by reload.
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import YAML from 'yaml';
import { Webhook } from 'standardwebhooks';
import { createAuditLog } from '../../../src/audit/audit-log.ts';
import { parseRoleConfig } from '../../../src/cli/role-config.ts';
import type { PrimaryConfig } from '../../../src/config/primary-schema.ts';
import { createOperationalLog } from '../../../src/log/operational.ts';
import { startSigner, type Sleep } from '../../../src/signer/signer.ts';
import { DevCa } from '../../../src/tls/dev-ca.ts';
import { makePki } from '../../helpers/pki.ts';
import { primaryPost as post } from '../../helpers/primary.ts';
import { makeHmacKey, writeKeyFile } from '../../helpers/signing.ts';

const pki = makePki([]);
const cert = pki.client('calgary-01');
const key = makeHmacKey();
const keyFile = writeKeyFile(key.text);
// The injected clock starts at a whole second of the real time (certificates are checked against it too).
const NOW = Math.floor(Date.now() / 1000) * 1000;

interface Seen { headers: Record<string, string | string[] | undefined>; body: Buffer }

/** A TLS server that answers from a script, one entry per request, and records what it got. */
async function startScripted(script: Array<{ status: number; headers?: Record<string, string> }>, tls: { cert?: string; key?: string; maxVersion?: 'TLSv1.2' } = {}) {
  const seen: Seen[] = [];
  const server: Server = createServer({
    cert: tls.cert ?? readFileSync(pki.server.cert), key: tls.key ?? readFileSync(pki.server.key),
    ...(tls.maxVersion ? { maxVersion: tls.maxVersion } : {}),
  }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: Buffer.concat(chunks) });
      const step = script[Math.min(seen.length - 1, script.length - 1)]!;
      res.writeHead(step.status, { 'content-type': 'application/json', 'x-replguard-request-id': `guard-${seen.length}`, ...step.headers });
      res.end(JSON.stringify({ n: seen.length }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as { port: number }).port, seen, stop: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

const events: Array<Record<string, any>> = [];
const audit = createAuditLog(undefined, { stream: new Writable({
  write(chunk: Buffer, _e, done) {
    for (const l of chunk.toString().split('\n').filter(Boolean)) events.push(JSON.parse(l));
    done();
  },
}) as never });
const log = createOperationalLog('fatal');

function config(port: number, overrides: Record<string, unknown> = {}): PrimaryConfig {
  const text = YAML.stringify({
    pop_id: 'calgary-01', role: 'primary', listen: { port: 0 }, admin: { port: 0 },
    backup: { id: 'zurich-01', url: `https://127.0.0.1:${port}`, ca_file: pki.caFile, server_name: 'localhost', timeout: '3s' },
    client_tls: { cert_file: cert.cert, key_file: cert.key }, signing_keys: [keyFile], shutdown_timeout: '2s', reload_interval: 0,
    ...overrides,
  });
  const loaded = parseRoleConfig(text, join(pki.dir, 'primary.yaml'));
  if (loaded.role !== 'primary') throw new Error('not primary');
  return loaded.config as PrimaryConfig;
}

const eventsOf = async (requestId: string) => {
  audit.flush();
  await new Promise((r) => setImmediate(r));
  return events.filter((e) => e.replguard.request_id === requestId);
};

t.test('429/503 are retried, 502 from a deduplicating guard too, Retry-After honoured when longer and capped; the answer is signed for the reference library', async (t) => {
  const guard = await startScripted([
    { status: 503, headers: { 'retry-after': '30' } },
    { status: 429, headers: { 'retry-after': '100000' } },
    { status: 502, headers: { 'x-replguard-dedup': 'on' } },
    { status: 200 },
  ]);
  const delays: number[] = [];
  let clock = NOW;
  const sleep: Sleep = async (ms) => {
    delays.push(ms);
    clock += ms;
  };
  t.teardown(() => guard.stop());
  const signer = await startSigner(config(guard.port), { audit, log, sleep, now: () => clock });
  t.teardown(() => signer.shutdown());
  const reply = await post(signer.port, '{"entries":[],"timestamp":1,"nonce":"x"}');
  t.equal(reply.status, 200);
  t.equal(reply.headers['x-replguard-backup-request-id'], 'guard-4');
  t.same(delays, [30_000, 625_000, 25_000], 'Retry-After 30 s > 1 s; 100000 s capped at 625 s; none: the table');
  const wh = new Webhook(key.text);
  guard.seen.forEach((s, i) => {
    const ts = Number(s.headers['webhook-timestamp']);
    t.equal(ts, Math.floor(NOW / 1000) + [0, 30, 655, 680][i]!, `attempt ${i + 1}: the injected clock`);
    const body = JSON.parse(s.body.toString());
    t.same(body, { source_pop: 'calgary-01', entries: [], timestamp: ts, nonce: s.headers['webhook-id'] }, `attempt ${i + 1}: body agrees with the headers`);
    // The reference library's own signature for these headers and bytes (its verify() would
    // also judge the injected clock against the real one).
    t.equal(s.headers['webhook-signature'], wh.sign(String(s.headers['webhook-id']), new Date(ts * 1000), s.body.toString()), `attempt ${i + 1}: what the reference library signs`);
    t.equal(s.headers['content-type'], 'application/json');
    t.notOk(s.headers.authorization, 'no credential configured: none sent');
  });
  const ids = guard.seen.map((s) => String(s.headers['webhook-id']));
  t.match(ids[0], /^rs1_[0-9a-f]{32}_1$/, 'the batch\'s id');
  t.same(ids, [ids[0], `${ids[0]}_2`, `${ids[0]}_3`, ids[0]], 'retries to a guard not known to deduplicate get ids of their own; after its 502 said x-replguard-dedup: on, the batch\'s id again');
  const mine = await eventsOf(String(reply.headers['x-replguard-request-id']));
  t.same(mine.map((e) => [e.event.reason, e.http?.response?.status_code, e.replguard.backup_request_id]), [
    ['SIGNER_BACKUP_UNAVAILABLE', 503, 'guard-1'], ['SIGNER_BACKUP_UNAVAILABLE', 429, 'guard-2'], ['SIGNER_BACKUP_UNAVAILABLE', 502, 'guard-3'], ['SIGNER_DELIVERED', 200, 'guard-4'],
  ]);
});

t.test('a refusal is relayed at once; retries exhausted on 503 is a 502', async (t) => {
  const refusing = await startScripted([{ status: 401 }]);
  const busy = await startScripted([{ status: 503 }]);
  const sleep: Sleep = async () => undefined;
  const a = await startSigner(config(refusing.port), { audit, log, sleep });
  const b = await startSigner(config(busy.port, { retry: { max_retries: 1 } }), { audit, log, sleep });
  t.teardown(async () => {
    await a.shutdown();
    await b.shutdown();
    await refusing.stop();
    await busy.stop();
  });
  const refused = await post(a.port, '{}');
  t.equal(refused.status, 401);
  t.same(JSON.parse(refused.body), { n: 1 }, 'the guard\'s answer, relayed');
  t.equal(refusing.seen.length, 1);
  t.same((await eventsOf(String(refused.headers['x-replguard-request-id']))).map((e) => e.event.reason), ['SIGNER_BACKUP_REFUSED']);
  const exhausted = await post(b.port, '{}');
  t.equal(exhausted.status, 502);
  t.equal(busy.seen.length, 2);
  const mine = await eventsOf(String(exhausted.headers['x-replguard-request-id']));
  t.same(mine.map((e) => [e.event.reason, e.replguard.final, e.replguard.status ?? null]), [['SIGNER_BACKUP_UNAVAILABLE', false, null], ['SIGNER_BACKUP_UNAVAILABLE', true, 502]]);
});

t.test('certificates the signer refuses, never retried', async (t) => {
  const foreign = DevCa.create('another CA').issueServer(['localhost']);
  const old = await startScripted([{ status: 200 }], { maxVersion: 'TLSv1.2' });
  const stranger = await startScripted([{ status: 200 }], { cert: foreign.certPem, key: foreign.keyPem });
  const sleep: Sleep = async () => {
    throw new Error('no retry expected');
  };
  const a = await startSigner(config(stranger.port), { audit, log, sleep });
  const b = await startSigner(config(old.port), { audit, log, sleep: async () => undefined });
  const c = await startSigner(config(old.port, { backup: { id: 'zurich-01', url: `https://127.0.0.1:${old.port}`, ca_file: pki.caFile, server_name: 'localhost', min_tls_version: 'TLSv1.2' } }), { audit, log, sleep });
  t.teardown(async () => {
    for (const s of [a, b, c]) await s.shutdown();
    await old.stop();
    await stranger.stop();
  });
  const r1 = await post(a.port, '{}');
  t.equal(r1.status, 502);
  t.same((await eventsOf(String(r1.headers['x-replguard-request-id']))).map((e) => e.event.reason), ['SIGNER_BACKUP_CERT_INVALID'], 'a certificate of another CA');
  t.equal(stranger.seen.length, 0);
  const r2 = await post(b.port, '{}');
  t.equal(r2.status, 502, 'TLS 1.2 only: no handshake with the default minimum');
  t.equal(old.seen.length, 0);
  t.equal((await post(c.port, '{}')).status, 200, 'TLS 1.2 when named');
});

t.test('a wait ends at once on shutdown (503) and when the primary hangs up', async (t) => {
  const busy = await startScripted([{ status: 503 }]);
  t.teardown(() => busy.stop());
  let waiting: () => void = () => undefined;
  const waited = new Promise<void>((r) => (waiting = r));
  const sleep: Sleep = (_ms, signal) => new Promise((_resolve, reject) => {
    waiting();
    signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
  });
  const signer = await startSigner(config(busy.port), { audit, log, sleep });
  const reply = post(signer.port, '{}');
  await waited;
  const stopping = signer.shutdown();
  const r = await reply;
  await stopping;
  t.equal(r.status, 503);
  t.same((await eventsOf(String(r.headers['x-replguard-request-id']))).map((e) => e.event.reason), ['SIGNER_BACKUP_UNAVAILABLE', 'SHUTTING_DOWN']);

  let waiting2: () => void = () => undefined;
  const waited2 = new Promise<void>((r2) => (waiting2 = r2));
  const signer2 = await startSigner(config(busy.port), {
    audit, log,
    sleep: (_ms, signal) => new Promise((_resolve, reject) => {
      waiting2();
      signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
    }),
  });
  t.teardown(() => signer2.shutdown());
  const before = busy.seen.length;
  const req = httpRequest({ host: '127.0.0.1', port: signer2.port, method: 'POST', path: '/api/replication/apply', agent: false });
  req.on('error', () => undefined);
  req.end('{}');
  await waited2;
  req.destroy();
  const end = Date.now() + 5000;
  while (!events.some((e) => e.event.reason === 'SIGNER_PRIMARY_GONE') && Date.now() < end) {
    audit.flush();
    await new Promise((r2) => setTimeout(r2, 20));
  }
  const gone = events.find((e) => e.event.reason === 'SIGNER_PRIMARY_GONE');
  t.ok(gone, 'audited');
  t.equal(gone?.replguard.final, true);
  t.equal(busy.seen.length, before + 1, 'no attempt after the primary left');
});

t.test('reload swaps the signing key; a bad new key keeps the old one', async (t) => {
  const guard = await startScripted([{ status: 200 }]);
  t.teardown(() => guard.stop());
  const file = writeKeyFile(key.text);
  const signer = await startSigner(config(guard.port, { signing_keys: [file] }), { audit, log });
  t.teardown(() => signer.shutdown());
  const next = makeHmacKey();
  writeFileSync(file, `${next.text}\n`);
  signer.reload('SIGHUP');
  await post(signer.port, '{}');
  const last = guard.seen.at(-1)!;
  t.doesNotThrow(() => new Webhook(next.text).verify(last.body.toString(), last.headers as Record<string, string>), 'signed with the new key');
  t.throws(() => new Webhook(key.text).verify(last.body.toString(), last.headers as Record<string, string>), 'not with the old one');
  writeFileSync(file, 'whsec_c2hvcnQ=\n');
  signer.reload('SIGHUP');
  await post(signer.port, '{}');
  const after = guard.seen.at(-1)!;
  t.doesNotThrow(() => new Webhook(next.text).verify(after.body.toString(), after.headers as Record<string, string>), 'a refused key file keeps the key in force');
});

t.test('502 and 504 from a guard that does not deduplicate: the backup may have the batch, never retried', async (t) => {
  for (const status of [502, 504]) {
    const guard = await startScripted([{ status }, { status: 200 }]);
    const signer = await startSigner(config(guard.port), { audit, log, sleep: async () => undefined });
    const reply = await post(signer.port, '{"entries":[]}');
    await signer.shutdown();
    await guard.stop();
    t.equal(reply.status, 502, `${status}: 502 to the primary`);
    t.equal(guard.seen.length, 1, `${status}: sent once`);
    const mine = await eventsOf(String(reply.headers['x-replguard-request-id']));
    t.same(mine.map((e) => [e.event.reason, e.replguard.final]), [['SIGNER_BACKUP_UNAVAILABLE', true]], `${status}: one final attempt`);
    t.match(mine[0]!.replguard.detail, /does not deduplicate/, `${status}: the event says why`);
  }
});

t.test('a guard that never answers: backup.timeout; retried only after the guard said it deduplicates', async (t) => {
  let hits = 0;
  let answerFirst = false;
  const hanging: Server = createServer({ cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key) }, (req, res) => {
    hits += 1; // accepts the request and never answers, unless told to answer one
    if (answerFirst) {
      answerFirst = false;
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-replguard-dedup': 'on', connection: 'close' });
        res.end('{}');
      });
    }
  });
  hanging.listen(0, '127.0.0.1');
  await once(hanging, 'listening');
  const port = (hanging.address() as { port: number }).port;
  const sleep: Sleep = async () => undefined;
  const signer = await startSigner(config(port, { backup: { id: 'zurich-01', url: `https://127.0.0.1:${port}`, ca_file: pki.caFile, server_name: 'localhost', timeout: '1s' }, retry: { max_retries: 1 } }), { audit, log, sleep });
  t.teardown(async () => {
    await signer.shutdown();
    hanging.closeAllConnections();
    await new Promise<void>((r) => hanging.close(() => r()));
  });
  const reply = await post(signer.port, '{}');
  t.equal(reply.status, 504);
  t.equal(hits, 1, 'sent, no answer: the guard may have forwarded it and never said it deduplicates, so no retry');
  const mine = await eventsOf(String(reply.headers['x-replguard-request-id']));
  t.same(mine.map((e) => [e.event.reason, e.replguard.final]), [['SIGNER_BACKUP_TIMEOUT', true]]);

  answerFirst = true;
  t.equal((await post(signer.port, '{}')).status, 200, 'an answer that says x-replguard-dedup: on');
  const again = await post(signer.port, '{}');
  t.equal(again.status, 504);
  t.equal(hits, 4, 'now the first attempt and one retry');
  const retried = await eventsOf(String(again.headers['x-replguard-request-id']));
  t.same(retried.map((e) => [e.event.reason, e.replguard.final]), [['SIGNER_BACKUP_TIMEOUT', false], ['SIGNER_BACKUP_TIMEOUT', true]]);
  t.equal(new Set(retried.map((e) => e.replguard.webhook_id)).size, 1, 'the retry carries the batch\'s webhook-id');
});

t.test('batches are numbered in an epoch: retries keep the number, a restart starts a new epoch', async (t) => {
  const guard = await startScripted([{ status: 503 }, { status: 200 }]);
  t.teardown(() => guard.stop());
  const numbers: Array<{ epoch: string; sequence: number; attempt: number }> = [];
  for (const run of [1, 2]) {
    const signer = await startSigner(config(guard.port), { audit, log, sleep: async () => undefined });
    for (let i = 0; i < 2; i++) {
      const reply = await post(signer.port, '{"entries":[]}');
      t.equal(reply.status, 200, `run ${run}, batch ${i + 1}`);
      for (const e of await eventsOf(String(reply.headers['x-replguard-request-id']))) {
        numbers.push({ epoch: e.replguard.epoch, sequence: e.replguard.sequence, attempt: e.replguard.attempt });
        const suffix = e.replguard.attempt > 1 ? `_${e.replguard.attempt}` : '';
        t.equal(e.replguard.webhook_id, `rs1_${e.replguard.epoch}_${e.replguard.sequence}${suffix}`, 'the webhook-id carries them, under the signature (a retry to a guard that does not deduplicate: with its attempt)');
      }
    }
    await signer.shutdown();
  }
  // The scripted guard answers 503 to its first request only: the very first batch was retried.
  t.same(numbers.map((n) => [n.sequence, n.attempt]), [[1, 1], [1, 2], [2, 1], [1, 1], [2, 1]], 'one number per batch, kept by its retry');
  const epochs = [...new Set(numbers.map((n) => n.epoch))];
  t.equal(epochs.length, 2, 'a new epoch at each start');
  for (const epoch of epochs) t.match(epoch, /^[0-9a-f]{32}$/);
  t.same(guard.seen.map((s) => s.headers['webhook-id']), numbers.map((n) => `rs1_${n.epoch}_${n.sequence}${n.attempt > 1 ? `_${n.attempt}` : ''}`), 'what the guard got');
});

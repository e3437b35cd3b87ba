// The signer end to end: an unmodified primary (this test, plain HTTP) -> the signer (the real
// program, role: primary) -> the guard (the real program: mtls + jwt bound to the certificate +
// signature) -> the demo backup. Then a relay between signer and guard that tampers with one
// byte, one that replays, and one that presents another certificate; and the guard going down
// while an in-process signer (with an injected sleep) retries on the schedule.
import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, request as httpsRequest, type Server as HttpsServer } from 'node:https';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { credentialFingerprint } from '../../src/crypto/secret-compare.ts';
import { createAuditLog } from '../../src/audit/audit-log.ts';
import { parseRoleConfig } from '../../src/cli/role-config.ts';
import type { PrimaryConfig } from '../../src/config/primary-schema.ts';
import { createOperationalLog } from '../../src/log/operational.ts';
import { startSigner } from '../../src/signer/signer.ts';
import { spawnSync } from 'node:child_process';
import { adminGet } from '../helpers/admin.ts';
import { parsePrometheusText, sampleValue } from '../helpers/prometheus.ts';
import { baseConfig, ROOT, startGuard as startReplguard, type AuditRecord, type GuardProcess } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { primaryPost, type PrimaryReply } from '../helpers/primary.ts';
import { makeEd25519Key, writeKeyFile } from '../helpers/signing.ts';
import { startBackup } from '../helpers/upstream.ts';
import YAML from 'yaml';

const pki = makePki([]);
const calgaryCert = pki.client('calgary-01');
const dir = mkdtempSync(join(tmpdir(), 'replguard-signer-e2e-'));
const write = (name: string, text: string, mode = 0o600) => {
  const file = join(dir, name);
  writeFileSync(file, text, { mode });
  return file;
};
// Certificates a relay may present: the guard's own (it holds the guard's key), another valid
// localhost certificate of the same CA, and a valid certificate for another name.
const impostor = pki.ca.issueServer(['localhost']);
const elsewhere = pki.ca.issue({ commonName: 'elsewhere.example', dnsNames: ['elsewhere.example'], usage: 'server' });
const guardCertPem = readFileSync(pki.server.cert, 'utf8');
const guardPin = createHash('sha256').update(new X509Certificate(guardCertPem).raw).digest('hex');

const jwtKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwtKeyFile = write('calgary-jwt.key', jwtKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
const jwtPubFile = write('calgary-jwt.pub', jwtKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString(), 0o644);
const ed = makeEd25519Key();
const signKeyFile = writeKeyFile(ed.privatePem);
const verifyKeyFile = writeKeyFile(ed.whpk, 0o644);

function guardConfig(upstreamUrl: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return baseConfig(pki, upstreamUrl, {
    auth: {
      methods: ['mtls', 'jwt', 'signature'],
      jwt: { public_keys: [{ path: jwtPubFile, alg: 'ES256', pop: 'calgary-01' }], require_cert_binding: true },
    },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, signing_keys: [verifyKeyFile] }],
    ...overrides,
  });
}

function signerConfig(backupUrl: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    pop_id: 'calgary-01',
    role: 'primary',
    listen: { host: '127.0.0.1', port: 0 },
    backup: { id: 'zurich-01', url: backupUrl, ca_file: pki.caFile, server_name: 'localhost', pin_sha256: [guardPin], timeout: '5s' },
    client_tls: { cert_file: calgaryCert.cert, key_file: calgaryCert.key },
    credentials: { jwt: { key_file: jwtKeyFile, ttl: '60s', bind_cert: true } },
    signing_keys: [signKeyFile],
    admin: { host: '127.0.0.1', port: 0 },
    shutdown_timeout: '5s',
    ...overrides,
  };
}

const sends = (_p: GuardProcess) => (e: AuditRecord) => e.event.action === 'replication-send';
const finalOf = async (signer: GuardProcess, reply: PrimaryReply) => {
  const id = reply.headers['x-replguard-request-id'];
  const [event] = await signer.waitForEvents((e) => sends(signer)(e) && e.replguard.request_id === id && e.replguard.final, 1);
  return event!;
};
const guardEvents = (guard: GuardProcess) => guard.audit().filter((e) => e.event.action === 'replication-request');

t.test('primary -> signer -> guard -> backup', async (t) => {
  const backup = await startBackup();
  const guard = await startReplguard(guardConfig(backup.url));
  const signer = await startReplguard(signerConfig(`https://127.0.0.1:${guard.port}`));
  t.teardown(async () => {
    await signer.stop();
    await guard.stop();
    await backup.stop();
  });

  await t.test('the batch arrives once, with the identity headers, the primary\'s bytes kept', async (t) => {
    const before = backup.received().length;
    // An integer above 2^53 and a float with a trailing zero: re-serialising would change both.
    const raw = '{"source_pop":"calgary-01","entries":[{"id":12345678901234567890,"weight":1.50,"op":"upsert"}],"timestamp":1700000000}';
    const reply = await primaryPost(signer.port, raw);
    t.equal(reply.status, 200, reply.body);
    t.same(JSON.parse(reply.body), { applied: 1, batch: before + 1 });
    const received = backup.received();
    t.equal(received.length, before + 1, 'delivered exactly once');
    const seen = received.at(-1)!;
    t.equal(seen.headers['x-replguard-source-pop'], 'calgary-01');
    t.ok(seen.headers['x-replguard-request-id']);
    t.notOk(seen.headers.authorization, 'the credential stops at the guard');
    t.notOk(seen.headers['webhook-signature'], 'the signature stops at the guard');
    const sent = seen.body.toString();
    t.match(sent, /"id":12345678901234567890,"weight":1\.50,"op":"upsert"/, 'entry bytes untouched');

    const event = await finalOf(signer, reply);
    t.equal(event.event.reason, 'SIGNER_DELIVERED');
    t.equal(event.event.outcome, 'success');
    t.equal(event.replguard.attempt, 1);
    t.equal(event.replguard.backup, 'zurich-01');
    t.equal(event.replguard.status, 200);
    t.equal(event.replguard.entries, 1);
    t.equal(event.tls.server.hash.sha256, guardPin, 'the guard\'s certificate is logged');
    const timestamp = JSON.parse(sent).timestamp as number;
    t.not(timestamp, 1700000000, 'the body timestamp is the signed webhook-timestamp');
    t.equal(sent, raw.replace('1700000000', String(timestamp)), 'nothing else changed');

    const [guardEvent] = await guard.waitForEvents((e) => e.replguard?.request_id === event.replguard.backup_request_id, 1);
    t.equal(guardEvent!.event.reason, 'FORWARDED');
    t.same(guardEvent!.replguard.credentials, ['mtls', 'jwt', 'signature']);
    t.equal(guardEvent!.replguard.webhook_id, event.replguard.webhook_id);
    t.equal(guardEvent!.replguard.jti, event.replguard.jti);
    t.equal(guardEvent!.replguard.token_fingerprint, event.replguard.token_fingerprint);
    t.equal(seen.headers['x-replguard-request-id'], event.replguard.backup_request_id);
  });

  await t.test('a large batch (signed off the main thread) arrives byte for byte and verifies at the guard', async (t) => {
    const before = backup.received().length;
    const raw = JSON.stringify({ source_pop: 'calgary-01', entries: [{ id: 1, op: 'upsert', blob: 'b'.repeat(4 * 1024 * 1024) }] });
    const reply = await primaryPost(signer.port, raw);
    t.equal(reply.status, 200, reply.body);
    t.equal(backup.received().length, before + 1);
    t.equal(backup.received().at(-1)!.body.toString(), raw);
    const event = await finalOf(signer, reply);
    t.equal(event.event.reason, 'SIGNER_DELIVERED');
    const [guardEvent] = await guard.waitForEvents((e) => e.replguard?.request_id === event.replguard.backup_request_id, 1);
    t.equal(guardEvent!.event.reason, 'FORWARDED');
  });

  await t.test('source_pop absent: set to this POP; every request a new id and token', async (t) => {
    const first = await primaryPost(signer.port, '{ "entries": [] }');
    const second = await primaryPost(signer.port, '{}');
    t.equal(first.status, 200, first.body);
    t.equal(second.status, 200, second.body);
    const bodies = backup.received().slice(-2).map((r) => r.body.toString());
    t.same(bodies, ['{"source_pop":"calgary-01", "entries": [] }', '{"source_pop":"calgary-01"}']);
    const [a, b] = [await finalOf(signer, first), await finalOf(signer, second)];
    t.not(a.replguard.webhook_id, b.replguard.webhook_id);
    t.not(a.replguard.jti, b.replguard.jti);
    // Both reached the guard: its events are in before the next test counts them.
    await guard.waitForEvents((e) => e.replguard?.webhook_id === b.replguard.webhook_id, 1);
  });

  await t.test('refused at the signer, nothing sent: another POP, not JSON, other routes', async (t) => {
    const guardBefore = guardEvents(guard).length;
    const received = backup.received().length;
    const cases: Array<[string, string, { method?: string; path?: string }, number, string]> = [
      ['another POP in the body', '{"source_pop":"denver-02","entries":[]}', {}, 403, 'BODY_SOURCE_POP_MISMATCH'],
      ['not JSON', 'entries=1', {}, 400, 'BODY_NOT_JSON'],
      ['a JSON array', '[]', {}, 400, 'BODY_NOT_OBJECT'],
      ['a repeated key', '{"entries":[],"Entries":[]}', {}, 400, 'BODY_DUPLICATE_KEY'],
      ['another path', '{}', { path: '/api/replication/other' }, 404, 'ROUTE_NOT_FOUND'],
      ['another method', '{}', { method: 'PUT' }, 405, 'ROUTE_METHOD_NOT_ALLOWED'],
    ];
    for (const [name, body, options, status, reason] of cases) {
      const reply = await primaryPost(signer.port, body, options);
      t.equal(reply.status, status, name);
      const event = await finalOf(signer, reply);
      t.equal(event.event.reason, reason, name);
      t.equal(event.replguard.attempt, 0, `${name}: no attempt`);
    }
    t.equal(guardEvents(guard).length, guardBefore, 'the guard saw none of them');
    t.equal(backup.received().length, received, 'the backup got none of them');
  });
});

/**
 * A TLS-terminating relay between the signer and the guard, trusted by the signer through the
 * test CA. It holds the guard's key (so a pin on the guard's certificate passes) and calgary's
 * client certificate, and does what its mode says.
 */
async function startRelay(guardPort: number) {
  let mode: 'tamper' | 'replay' | 'pass' = 'pass';
  let requests = 0;
  const sockets = new Set<Socket>();
  const forward = (method: string, path: string, headers: Record<string, string | string[] | undefined>, body: Buffer) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>((resolve, reject) => {
      const req = httpsRequest({
        host: '127.0.0.1', port: guardPort, servername: 'localhost', method, path, agent: false,
        ca: readFileSync(pki.caFile), cert: readFileSync(calgaryCert.cert), key: readFileSync(calgaryCert.key),
        headers: { ...headers, host: `localhost:${guardPort}`, 'content-length': body.length },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end(body);
    });
  const server: HttpsServer = createHttpsServer({ cert: guardCertPem, key: readFileSync(pki.server.key) }, (req, res) => {
    requests += 1;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      let body = Buffer.concat(chunks);
      const headers = { ...req.headers };
      if (mode === 'tamper') {
        body = Buffer.from(body);
        const at = body.indexOf('"op":"upsert"') + 6;
        body[at] = 'U'.charCodeAt(0); // upsert -> Upsert: one byte
      }
      const answer = await forward(req.method!, req.url!, headers, body);
      res.writeHead(answer.status, { 'content-type': String(answer.headers['content-type'] ?? 'application/json') });
      res.end(answer.body);
      if (mode === 'replay') await forward(req.method!, req.url!, headers, body);
    });
  });
  server.on('secureConnection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as { port: number }).port,
    requests: () => requests,
    /** Changes what the relay does and which certificate it presents; drops open connections. */
    async set(next: typeof mode, cert: { certPem: string; keyPem: string } = { certPem: guardCertPem, keyPem: readFileSync(pki.server.key, 'utf8') }) {
      mode = next;
      server.setSecureContext({ cert: cert.certPem, key: cert.keyPem });
      for (const s of sockets) s.destroy();
      await new Promise((r) => setTimeout(r, 50));
    },
    stop: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

t.test('relays between the signer and the guard', async (t) => {
  const backup = await startBackup();
  const guard = await startReplguard(guardConfig(backup.url));
  const relay = await startRelay(guard.port);
  const signer = await startReplguard(signerConfig(`https://127.0.0.1:${relay.port}`));
  t.teardown(async () => {
    await signer.stop();
    await relay.stop();
    await guard.stop();
    await backup.stop();
  });
  const batch = '{"source_pop":"calgary-01","entries":[{"id":7,"op":"upsert"}]}';

  await t.test('a relay that changes one body byte: the guard refuses it (signature), the signer relays the refusal', async (t) => {
    await relay.set('tamper');
    const before = backup.received().length;
    const reply = await primaryPost(signer.port, batch);
    t.equal(reply.status, 401);
    const event = await finalOf(signer, reply);
    t.equal(event.event.reason, 'SIGNER_BACKUP_REFUSED');
    t.equal(event.event.kind, 'alert');
    t.equal(event.replguard.attempt, 1, 'a refusal is not retried');
    // The signature did not verify: the guard logs the claimed nonce redacted, with its fingerprint.
    const [guardEvent] = await guard.waitForEvents((e) => e.replguard?.webhook_id_fingerprint === credentialFingerprint(event.replguard.webhook_id), 1);
    t.equal(guardEvent!.event.reason, 'SIGNATURE_MISMATCH');
    t.equal(backup.received().length, before, 'nothing reached the backup');
  });

  await t.test('a relay that replays the request: the copy is refused (nonce) and audited', async (t) => {
    await relay.set('replay');
    const before = backup.received().length;
    const reply = await primaryPost(signer.port, batch);
    t.equal(reply.status, 200);
    const event = await finalOf(signer, reply);
    t.equal(event.event.reason, 'SIGNER_DELIVERED');
    const [first, copy] = await guard.waitForEvents((e) => e.replguard?.webhook_id === event.replguard.webhook_id, 2);
    t.equal(first!.event.reason, 'FORWARDED');
    t.equal(copy!.event.reason, 'REPLAY_NONCE_REUSED');
    t.equal(backup.received().length, before + 1, 'applied once');
  });

  await t.test('a relay presenting another certificate: the signer refuses it before sending a byte', async (t) => {
    const cases: Array<[string, { certPem: string; keyPem: string }, string]> = [
      ['valid for localhost, same CA, not the pinned one', impostor, 'SIGNER_BACKUP_PIN_MISMATCH'],
      ['valid, same CA, for another name', elsewhere, 'SIGNER_BACKUP_CERT_INVALID'],
    ];
    for (const [name, cert, reason] of cases) {
      await relay.set('pass', cert);
      const seen = relay.requests();
      const reply = await primaryPost(signer.port, batch);
      t.equal(reply.status, 502, name);
      const event = await finalOf(signer, reply);
      t.equal(event.event.reason, reason, name);
      t.equal(event.event.kind, 'alert', name);
      t.equal(event.replguard.attempt, 1, `${name}: not retried`);
      t.equal(event.tls.server.hash.sha256, createHash('sha256').update(new X509Certificate(cert.certPem).raw).digest('hex'), `${name}: the certificate presented is logged`);
      t.equal(relay.requests(), seen, `${name}: the relay got no request`);
    }
    await relay.set('pass');
    t.equal((await primaryPost(signer.port, batch)).status, 200, 'the real certificate again: delivered');
  });
});

t.test('the guard down: retries on the schedule, delivered when it is back', async (t) => {
  const backup = await startBackup();
  const guard = await startReplguard(guardConfig(backup.url));
  // The signer talks to a TCP relay that keeps its port all along: "down" drops every
  // connection (as a dead guard's host would), "up" pipes to the guard. Stopping the guard and
  // restarting it on its old port instead would race other tests for that port.
  let guardUp = false;
  const relay = createNetServer((client) => {
    if (!guardUp) {
      client.destroy();
      return;
    }
    const upstream = netConnect(guard.port, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  const port = (relay.address() as AddressInfo).port;
  t.teardown(async () => {
    await new Promise<void>((resolve) => relay.close(() => resolve()));
    await guard.stop();
    await backup.stop();
  });

  const events: AuditRecord[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) events.push(JSON.parse(line) as AuditRecord);
      done();
    },
  });
  const audit = createAuditLog(undefined, { stream: sink as never });
  const log = createOperationalLog('warn');
  const configFor = (overrides: Record<string, unknown>) => {
    const loaded = parseRoleConfig(YAML.stringify(signerConfig(`https://127.0.0.1:${port}`, overrides)), join(dir, 'signer.yaml'));
    if (loaded.role !== 'primary') throw new Error('not a signer config');
    return loaded.config as PrimaryConfig;
  };

  await t.test('down for two attempts: waits 1 s and 5 s, then delivered', async (t) => {
    const delays: number[] = [];
    const signer = await startSigner(configFor({}), {
      audit, log,
      // The guard comes back during the second wait; the sleep itself does not wait.
      sleep: async (ms) => {
        delays.push(ms);
        if (delays.length === 2) guardUp = true;
      },
    });
    t.teardown(() => signer.shutdown());
    const before = backup.received().length;
    const reply = await primaryPost(signer.port, '{"entries":[{"id":1,"op":"upsert"}]}');
    t.equal(reply.status, 200, reply.body);
    t.same(delays, [1000, 5000], 'the integer schedule');
    t.equal(backup.received().length, before + 1, 'delivered once');
    audit.flush();
    await new Promise((r) => setImmediate(r));
    const mine = events.filter((e) => e.replguard.request_id === reply.headers['x-replguard-request-id']);
    t.same(mine.map((e) => [e.replguard.attempt, e.event.reason, e.replguard.retry_in_ms ?? null, e.replguard.final]), [
      [1, 'SIGNER_BACKUP_UNREACHABLE', 1000, false],
      [2, 'SIGNER_BACKUP_UNREACHABLE', 5000, false],
      [3, 'SIGNER_DELIVERED', null, true],
    ]);
    t.equal(new Set(mine.map((e) => e.replguard.webhook_id)).size, 3, 'every attempt its own webhook-id: this guard never said it deduplicates');
    t.equal(new Set(mine.map((e) => `${e.replguard.epoch}/${e.replguard.sequence}`)).size, 1, 'and one batch number for them all');
    t.equal(new Set(mine.map((e) => e.replguard.jti)).size, 3, 'and its own token');
    const [guardEvent] = await guard.waitForEvents((e) => e.replguard?.webhook_id === mine[2]!.replguard.webhook_id, 1);
    t.equal(guardEvent!.event.reason, 'FORWARDED');

    // The signer's /metrics counts the same attempts the audit trail shows, and promtool reads it.
    const scrape = await adminGet(signer.adminPort, '/metrics');
    t.equal(scrape.status, 200);
    const m = parsePrometheusText(scrape.body);
    t.equal(sampleValue(m, 'replguard_signer_attempts_total', { outcome: 'failure', reason: 'SIGNER_BACKUP_UNREACHABLE' }), 2);
    t.equal(sampleValue(m, 'replguard_signer_attempts_total', { outcome: 'success', reason: 'SIGNER_DELIVERED' }), 1);
    t.equal(sampleValue(m, 'replguard_signer_retries_total'), 2);
    t.equal(sampleValue(m, 'replguard_signer_deliveries_total', { outcome: 'success', reason: 'SIGNER_DELIVERED' }), 1, 'one delivery, after three attempts');
    t.equal(m.get('replguard_signer_deliveries_total')?.samples.length, 1, 'and no failed one');
    t.equal(sampleValue(m, 'replguard_signer_request_hold_seconds_count'), 1, 'one request held');
    t.equal(sampleValue(m, 'replguard_signer_requests_in_flight'), 0, 'none held now');
    const guardX509 = new X509Certificate(guardCertPem);
    t.equal(sampleValue(m, 'replguard_signer_guard_certificate_expiry_timestamp_seconds', { sha256: guardPin, subject: guardX509.subject.replace(/\n/g, ', ') }), Math.floor(Date.parse(guardX509.validTo) / 1000), 'the guard certificate\'s notAfter');
    const ownX509 = new X509Certificate(readFileSync(calgaryCert.cert));
    const ownSha = createHash('sha256').update(ownX509.raw).digest('hex');
    t.equal(sampleValue(m, 'replguard_signer_client_certificate_expiry_timestamp_seconds', { sha256: ownSha, subject: ownX509.subject.replace(/\n/g, ', ') }), Math.floor(Date.parse(ownX509.validTo) / 1000), 'its own client certificate\'s notAfter');
    const connections = sampleValue(m, 'replguard_signer_guard_connections_open');
    t.ok(Number.isInteger(connections) && connections >= 0 && connections <= 1, `connections to the guard: at most the one kept alive (${connections})`);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: scrape.body, encoding: 'utf8', timeout: 60_000 });
    t.equal(check.error, undefined, `promtool runs${check.error ? ` (apt-get install prometheus): ${check.error.message}` : ''}`);
    t.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);
    t.equal(m.get('replguard_build_info')?.samples[0]?.labels.role, 'primary', 'the signer\'s build_info names its role');
    t.ok(sampleValue(m, 'process_resident_memory_bytes') > 0, 'and the process metrics are served beside it');
    const documented = [...readFileSync(join(ROOT, 'docs', 'signer.md'), 'utf8').matchAll(/^\| `(replguard_[a-z_]+)` \| (counter|gauge|histogram) \|/gm)].map((x) => `${x[1]} ${x[2]}`);
    const served = [...scrape.body.matchAll(/^# TYPE (replguard_[a-z_]+) (\w+)$/gm)].map((x) => `${x[1]} ${x[2]}`);
    t.ok(documented.length >= 4, 'docs/signer.md\'s metrics table was read');
    t.same(served.sort(), documented.sort(), 'docs/signer.md names the metrics the signer serves, with their types');
  });

  await t.test('down for good: max_retries waits, then 502 to the primary', async (t) => {
    guardUp = false;
    const delays: number[] = [];
    const signer = await startSigner(configFor({ retry: { max_retries: 3 } }), { audit, log, sleep: async (ms) => void delays.push(ms) });
    t.teardown(() => signer.shutdown());
    const reply = await primaryPost(signer.port, '{"entries":[]}');
    t.equal(reply.status, 502);
    t.same(JSON.parse(reply.body), { error: 'bad_gateway', request_id: reply.headers['x-replguard-request-id'] }, 'the generic body');
    t.same(delays, [1000, 5000, 25_000]);
    audit.flush();
    await new Promise((r) => setImmediate(r));
    const mine = events.filter((e) => e.replguard.request_id === reply.headers['x-replguard-request-id']);
    t.same(mine.map((e) => [e.replguard.attempt, e.event.reason, e.replguard.final]), [
      [1, 'SIGNER_BACKUP_UNREACHABLE', false],
      [2, 'SIGNER_BACKUP_UNREACHABLE', false],
      [3, 'SIGNER_BACKUP_UNREACHABLE', false],
      [4, 'SIGNER_BACKUP_UNREACHABLE', true],
    ]);
    t.equal(mine.at(-1)!.replguard.status, 502);
    const ecs = mine.map((e) => {
      const r = e as unknown as { ecs?: { version?: string }; log?: { level?: string }; event: { type: string[]; module?: string; dataset?: string } };
      return [r.ecs?.version, r.event.module, r.event.dataset, r.event.type, r.log?.level];
    });
    t.same(ecs, [
      ['8.11.0', 'replguard', 'replguard.audit', ['connection', 'error'], 'info'],
      ['8.11.0', 'replguard', 'replguard.audit', ['connection', 'error'], 'info'],
      ['8.11.0', 'replguard', 'replguard.audit', ['connection', 'error'], 'info'],
      ['8.11.0', 'replguard', 'replguard.audit', ['connection', 'error'], 'warn'],
    ], 'the guard\'s envelope; no answer is an error, not a denial; the delivery that finally failed is a warning');
  });
});

// Bearer secrets through the real program: good, bad, missing, in the query, identity mismatch,
// bearer without mTLS, and rotation under a steady stream of requests with SIGHUP.
import { chmodSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { credentialFingerprint } from '../../src/crypto/secret-compare.ts';
import { generateToken } from '../../src/cli/gen-token.ts';
import { adminGet } from '../helpers/admin.ts';
import { call } from '../helpers/client.ts';
import { parsePrometheusText, sampleValue } from '../helpers/prometheus.ts';
import { baseConfig, runCli, startGuard, writeConfig, type AuditRecord, type GuardProcess } from '../helpers/guard.ts';
import { ecsProblems } from '../helpers/ecs.ts';
import { makePki } from '../helpers/pki.ts';
import { startBackup } from '../helpers/upstream.ts';

const pki = makePki([]);
const calgaryCert = pki.client('calgary-01');
const _denverCert = pki.client('denver-02');
const dir = mkdtempSync(join(tmpdir(), 'replguard-tokens-'));

/** Writes a token file the way an operator should: a temporary file renamed over it, mode 0600. */
function writeToken(name: string, content: string): string {
  const file = join(dir, name);
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return file;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const lastRequestEvent = async (guard: GuardProcess, before: number): Promise<AuditRecord> => {
  const events = await guard.waitForEvents((e) => e.event.action === 'replication-request', before + 1);
  return events[before]!;
};
const requestEvents = (guard: GuardProcess) => guard.audit().filter((e) => e.event.action === 'replication-request').length;

t.test('bearer with mTLS', async (t) => {
  const calgaryToken = generateToken();
  const denverToken = generateToken();
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    auth: { methods: ['mtls', 'bearer'], reload_interval: '1h' },
    peers: [
      { id: 'calgary-01', cert: { cn: 'calgary-01' }, token_files: [writeToken('calgary-a', `${calgaryToken}\n`), writeToken('calgary-b', '')] },
      { id: 'denver-02', cert: { cn: 'denver-02' }, token_files: [writeToken('denver-a', denverToken)] },
    ],
  }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });

  await t.test('the right secret gets through; the upstream never sees it', async (t) => {
    const before = requestEvents(guard);
    const reply = await call(guard.port, pki.caFile, { cert: calgaryCert, headers: bearer(calgaryToken) });
    t.equal(reply.status, 200);
    const event = await lastRequestEvent(guard, before);
    t.equal(event.event.reason, 'FORWARDED');
    t.same(event.replguard.credentials, ['mtls', 'bearer']);
    t.equal(event.replguard.pop, 'calgary-01');
    t.equal(event.replguard.token_fingerprint, credentialFingerprint(calgaryToken));
    const seen = backup.received().at(-1)!;
    t.notOk(seen.headers.authorization, 'Authorization is stripped before the upstream');
    t.notOk(JSON.stringify(guard.audit()).includes(calgaryToken), 'the secret is in no audit event');
  });

  await t.test('refusals, each with its reason', async (t) => {
    const before = requestEvents(guard);
    const forwarded = backup.received().length;
    const cases: Array<[Record<string, string | string[]>, string, number, string]> = [
      [bearer(generateToken()), '/api/replication/apply', 401, 'AUTH_BEARER_INVALID'],
      [{}, '/api/replication/apply', 401, 'AUTH_CREDENTIAL_MISSING'],
      [{ authorization: `Basic ${Buffer.from(`x:${calgaryToken}`).toString('base64')}` }, '/api/replication/apply', 400, 'AUTH_CREDENTIAL_MALFORMED'],
      [{ authorization: [`Bearer ${calgaryToken}`, `Bearer ${calgaryToken}`] }, '/api/replication/apply', 400, 'AUTH_CREDENTIAL_MALFORMED'],
      [bearer(denverToken), '/api/replication/apply', 403, 'AUTH_IDENTITY_MISMATCH'],
      [{}, `/api/replication/apply?access_token=${calgaryToken}`, 400, 'AUTH_TOKEN_IN_QUERY'],
      [{}, '/api/replication/apply?dry_run=1', 400, 'ROUTE_QUERY_NOT_ALLOWED'],
    ];
    for (const [headers, path, status, reason] of cases) {
      const reply = await call(guard.port, pki.caFile, { cert: calgaryCert, headers: headers as Record<string, string>, path });
      t.equal(reply.status, status, reason);
    }
    const events = await guard.waitForEvents((e) => e.event.action === 'replication-request', before + cases.length);
    t.same(events.slice(before).map((e) => e.event.reason), cases.map((c) => c[3]));
    const inQuery = events[before + 5]!;
    t.equal(inQuery.url.path, '/api/replication/apply', 'the query is not logged');
    t.equal(inQuery.event.kind, 'alert');
    t.notOk(JSON.stringify(guard.audit()).includes(calgaryToken), 'the secret is in no audit event, even from the query');
    t.equal(backup.received().length, forwarded, 'nothing reached the upstream');
  });

  await t.test('rotation under a steady stream: overlap, then the old secret refused after one reload', async (t) => {
    const next = generateToken();
    const agent = new Agent({ keepAlive: true, maxSockets: 2 });
    t.teardown(() => agent.destroy());
    let streamToken = calgaryToken;
    let stop = false;
    const failures: string[] = [];
    let sent = 0;
    const loop = async () => {
      while (!stop) {
        const token = streamToken;
        const reply = await call(guard.port, pki.caFile, { cert: calgaryCert, headers: bearer(token), agent });
        sent += 1;
        if (reply.status !== 200) failures.push(`${reply.status} with the ${token === calgaryToken ? 'old' : 'new'} secret`);
      }
    };
    const streams = [loop(), loop()];
    const reloads = () => guard.operational().filter((l) => l.source === 'bearer tokens' && l.changed === true).length;
    const sighup = async () => {
      const count = guard.operational().filter((l) => l.source === 'bearer tokens' && l.trigger === 'SIGHUP').length;
      guard.child.kill('SIGHUP');
      const end = Date.now() + 5000;
      while (guard.operational().filter((l) => l.source === 'bearer tokens' && l.trigger === 'SIGHUP').length === count && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const waitFor = async (cond: () => boolean) => {
      const end = Date.now() + 5000;
      while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      return cond();
    };

    // 1. The new secret goes into the free slot: both are valid.
    let base = reloads();
    writeToken('calgary-b', `${next}\n`);
    await sighup();
    t.ok(await waitFor(() => reloads() === base + 1), 'one reload took the new slot');
    t.equal((await call(guard.port, pki.caFile, { cert: calgaryCert, headers: bearer(next) })).status, 200, 'new secret valid');
    t.equal((await call(guard.port, pki.caFile, { cert: calgaryCert, headers: bearer(calgaryToken) })).status, 200, 'old secret still valid (overlap)');

    // 2. A bad edit is refused and changes nothing.
    const errors = guard.operational().filter((l) => l.source === 'bearer tokens' && l.log?.level === 'error').length;
    writeToken('calgary-a', 'password-password-password-passwd\n');
    await sighup();
    t.ok(await waitFor(() => guard.operational().filter((l) => l.source === 'bearer tokens' && l.log?.level === 'error').length > errors), 'weak secret: reload refused and logged');
    t.equal(guard.child.exitCode, null, 'still running');
    t.equal((await call(guard.port, pki.caFile, { cert: calgaryCert, headers: bearer(calgaryToken) })).status, 200, 'the old set stays in force');
    writeToken('calgary-a', `${calgaryToken}\n`);

    // 3. The primary moves to the new secret, then the old slot is emptied.
    streamToken = next;
    const sentBefore = sent;
    await waitFor(() => sent >= sentBefore + 4); // both loops are past their last old-secret request
    base = reloads();
    writeToken('calgary-a', '');
    await sighup();
    t.ok(await waitFor(() => reloads() === base + 1), 'one reload retired the old slot');
    const before = requestEvents(guard);
    const old = await call(guard.port, pki.caFile, { cert: calgaryCert, headers: bearer(calgaryToken) });
    t.equal(old.status, 401, 'the removed secret is refused after one reload');
    const events = await guard.waitForEvents((e) => e.event.action === 'replication-request' && e.event.reason === 'AUTH_BEARER_INVALID' && e.replguard.token_fingerprint === credentialFingerprint(calgaryToken), 1);
    t.ok(events.length === 1 && requestEvents(guard) > before);

    stop = true;
    await Promise.all(streams);
    t.ok(sent > 8, `the stream kept flowing (${sent} requests)`);
    t.same(failures, [], 'no request of the stream failed because of a reload');
  });

  await t.test('every audit event written here is exact ECS (test/helpers/ecs.ts)', async (t) => {
    const events = guard.audit();
    t.ok(events.length > 0, `${events.length} events`);
    for (const e of events) t.same(ecsProblems(e), [], `${e.event.reason} (${e.event.action})`);
  });
});

t.test('bearer without mTLS: no client certificate is asked for', async (t) => {
  const token = generateToken();
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    auth: { methods: ['bearer'] },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, token_files: [writeToken('solo', token)] }],
  }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  const ok = await call(guard.port, pki.caFile, { headers: bearer(token) });
  t.equal(ok.status, 200, 'no certificate, the right secret');
  t.equal(backup.received().at(-1)?.headers['x-replguard-source-pop'], 'calgary-01');
  const bad = await call(guard.port, pki.caFile, { headers: bearer(generateToken()) });
  t.equal(bad.status, 401);
  const events = await guard.waitForEvents((e) => e.event.action === 'replication-request', 2);
  t.same(events.map((e) => [e.event.reason, e.replguard.credentials]), [['FORWARDED', ['bearer']], ['AUTH_BEARER_INVALID', ['bearer']]]);
});

t.test('a secret past the not_after of its token file is refused with its own reason, and never bans', async (t) => {
  const expired = generateToken();
  const current = generateToken();
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    auth: { methods: ['mtls', 'bearer'] },
    peers: [{
      id: 'calgary-01',
      cert: { cn: 'calgary-01' },
      token_files: [writeToken('calgary-expired', `${expired}\nnot_after: 2020-01-31T00:00:00Z\n`), writeToken('calgary-current', `${current}\nnot_after: 2999-01-31T00:00:00Z\n`)],
    }],
  }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  // One kept-alive connection: the expiry is looked at per request, not per connection.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const attempts = 12; // more than any ban threshold of the base config
  for (let i = 0; i < attempts; i++) {
    const refused = await call(guard.port, pki.caFile, { cert: calgaryCert, headers: bearer(expired), agent });
    t.equal(refused.status, 401, `expired secret, attempt ${i + 1}`);
    t.notMatch(refused.body, /calgary-expired|not_after|expired|2020/, 'the client learns nothing about the file or its date');
  }
  const ok = await call(guard.port, pki.caFile, { cert: calgaryCert, headers: bearer(current), agent });
  t.equal(ok.status, 200, 'the secret that has not expired gets through on the same connection: the POP was not banned');
  const events = await guard.waitForEvents((e) => e.event.action === 'replication-request', attempts + 1);
  t.same(events.map((e) => e.event.reason), [...Array(attempts).fill('AUTH_BEARER_EXPIRED'), 'FORWARDED']);
  t.equal(events[0]!.event.kind, 'alert', 'an expired secret in use is an alert');
  t.notOk(JSON.stringify(guard.audit()).includes(expired), 'the secret is in no audit event');
  t.equal(backup.received().length, 1, 'only the current secret reached the upstream');
  const metrics = parsePrometheusText((await adminGet(guard.adminPort, '/metrics')).body);
  const expiry = (slot: string) => sampleValue(metrics, 'replguard_bearer_secret_expiry_timestamp_seconds', { pop: 'calgary-01', slot });
  t.equal(expiry('0'), Date.parse('2020-01-31T00:00:00Z') / 1000, 'the expired secret\'s not_after is a metric');
  t.equal(expiry('1'), Date.parse('2999-01-31T00:00:00Z') / 1000, 'and the current one\'s');
});

t.test('a token file whose second line is not a not_after stops start-up with the file and the fix', async (t) => {
  const file = writeConfig(baseConfig(pki, 'http://127.0.0.1:9', {
    auth: { methods: ['mtls', 'bearer'] },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, token_files: [writeToken('calgary-junk', `${generateToken()}\nexpires 2027\n`)] }],
  }));
  const result = await runCli(['check-config', '-c', file]);
  t.equal(result.code, 2);
  t.match(result.stderr, /peers\[0\]\.token_files\[0\]: .*calgary-junk: after the secret, only one line `not_after: <RFC 3339/);
});

t.test('weak or exposed secrets stop start-up with the file and the reason', async (t) => {
  const weak = writeToken('weak', 'correcthorsebatterystaplecorrecthorse\n');
  const exposed = join(dir, 'exposed');
  writeFileSync(exposed, generateToken(), { mode: 0o644 });
  chmodSync(exposed, 0o644);
  const file = writeConfig(baseConfig(pki, 'http://127.0.0.1:9', {
    auth: { methods: ['mtls', 'bearer'] },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, token_files: [weak, exposed] }],
  }));
  const result = await runCli(['check-config', '-c', file]);
  t.equal(result.code, 2);
  t.match(result.stderr, /peers\[0\]\.token_files\[0\]: .*weak: weak secret: estimated at \d+ bits .*at least 128 are required .*dictionary words/);
  t.match(result.stderr, /peers\[0\]\.token_files\[1\]: .*exposed is readable by others/);
  t.notOk(result.stderr.includes(readFileSync(exposed, 'utf8')), 'the secret is not printed');
});

t.test('gen-token writes a 0600 file and prints only the fingerprint', async (t) => {
  const out = join(dir, 'generated');
  const result = await runCli(['gen-token', '--out', out]);
  t.equal(result.code, 0);
  const token = readFileSync(out, 'utf8').trimEnd();
  t.match(token, /^[A-Za-z0-9_-]{43}$/);
  const { statSync } = await import('node:fs');
  t.equal(statSync(out).mode & 0o777, 0o600);
  t.notOk(result.stdout.includes(token));
  t.match(result.stdout, new RegExp(credentialFingerprint(token)));
  t.equal((await runCli(['gen-token', '--out', out])).code, 2, 'an existing file is not replaced without --force');
});

// Finding 5 (bearer secrets expire) on the operator's side and the signer's: `gen-token
// --not-after` writes the expiry line, check-config warns before it and names an expired one,
// and a signer whose own secret expires while it runs sends nothing (SIGNER_CREDENTIAL_EXPIRED)
// although the guard's copy of the same secret carries no expiry and would still accept it.
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { baseConfig, runCli, startGuard, writeConfig } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { primaryPost } from '../helpers/primary.ts';
import { makeEd25519Key, writeKeyFile } from '../helpers/signing.ts';
import { startBackup } from '../helpers/upstream.ts';
import { until } from '../helpers/wait.ts';
import { generateToken } from '../../src/cli/gen-token.ts';

const pki = makePki([]);
const calgaryCert = pki.client('calgary-01');
const dir = mkdtempSync(join(tmpdir(), 'replguard-bearer-expiry-'));
const path = (name: string) => join(dir, name);
const rfc3339 = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

t.test('gen-token --not-after', async (t) => {
  const at = rfc3339(Date.now() + 40 * 86_400_000);
  const r = await runCli(['gen-token', '--out', path('fixed.token'), '--not-after', at]);
  t.equal(r.code, 0, r.stderr);
  const lines = readFileSync(path('fixed.token'), 'utf8').split('\n');
  t.match(lines[0], /^[A-Za-z0-9_-]{43}$/, 'the secret alone on the first line');
  t.equal(lines[1], `not_after: ${at}`, 'the expiry as given, on the second');
  t.equal(statSync(path('fixed.token')).mode & 0o777, 0o600);
  t.match(r.stdout, new RegExp(`valid until ${at.replace('Z', '.000Z')}`));
  t.notOk(r.stdout.includes(lines[0]!), 'the secret is not printed');

  const relative = await runCli(['gen-token', '--out', path('relative.token'), '--not-after', '30d']);
  t.equal(relative.code, 0, relative.stderr);
  const line = readFileSync(path('relative.token'), 'utf8').split('\n')[1] ?? '';
  const left = Date.parse(line.replace('not_after: ', '')) - Date.now();
  t.ok(left > 29 * 86_400_000 && left <= 30 * 86_400_000, `30d from now (${line})`);

  for (const bad of ['yesterday', '30', '2020-01-01T00:00:00Z', '2027-13-45T00:00:00Z']) {
    const refused = await runCli(['gen-token', '--out', path('bad.token'), '--not-after', bad]);
    t.equal(refused.code, 2, `${bad}: exit 2`);
    t.match(refused.stderr, /replguard gen-token --not-after: /, `${bad}: the option named`);
  }
  t.throws(() => statSync(path('bad.token')), 'nothing written for a refused value');
});

t.test('check-config warns about a secret that expires within 7 days and names an expired one', async (t) => {
  const soon = path('soon.token');
  t.equal((await runCli(['gen-token', '--out', soon, '--not-after', '3d'])).code, 0);
  const later = path('later.token');
  t.equal((await runCli(['gen-token', '--out', later, '--not-after', '60d'])).code, 0);
  const expired = path('expired.token');
  const secret = readFileSync(later, 'utf8').split('\n')[0]!.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
  writeFileSync(expired, `${secret}\nnot_after: 2020-01-01T00:00:00Z\n`, { mode: 0o600 });
  chmodSync(expired, 0o600);
  const config = baseConfig(pki, 'http://127.0.0.1:8080', {
    auth: { methods: ['mtls', 'bearer'] },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, token_files: [soon, later, expired] }],
  });
  const r = await runCli(['check-config', '-c', writeConfig(config)]);
  t.equal(r.code, 0, `usable today: exit 0 (${r.stderr})`);
  t.match(r.stderr, /warning: peers\[0\]\.token_files\[0\]: .*the bearer secret of calgary-01 expires in 2 days/);
  t.match(r.stderr, /warning: peers\[0\]\.token_files\[2\]: .*expired at 2020-01-01T00:00:00\.000Z .*AUTH_BEARER_EXPIRED/);
  t.notMatch(r.stderr, /token_files\[1\]/, 'sixty days left: no warning');
});

t.test('a signer whose secret expires while it runs sends nothing', async (t) => {
  const ed = makeEd25519Key();
  const secret = generateToken();
  const backup = await startBackup();
  // The guard's copy has no expiry: were the signer to send, the guard would forward it.
  const guardToken = path('guard-copy.token');
  writeFileSync(guardToken, `${secret}\n`, { mode: 0o600 });
  const guard = await startGuard(baseConfig(pki, backup.url, {
    auth: { methods: ['mtls', 'bearer', 'signature'] },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, token_files: [guardToken], signing_keys: [writeKeyFile(ed.whpk, 0o644)] }],
  }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  // Valid when the signer loads it, past a few seconds later: the signer must check it per attempt.
  const notAfter = Math.ceil((Date.now() + 8000) / 1000) * 1000;
  const signerToken = path('signer.token');
  writeFileSync(signerToken, `${secret}\nnot_after: ${rfc3339(notAfter)}\n`, { mode: 0o600 });
  const signer = await startGuard({
    pop_id: 'calgary-01',
    role: 'primary',
    listen: { host: '127.0.0.1', port: 0 },
    backup: { id: 'zurich-01', url: `https://127.0.0.1:${guard.port}`, ca_file: pki.caFile, server_name: 'localhost', timeout: '5s' },
    client_tls: { cert_file: calgaryCert.cert, key_file: calgaryCert.key },
    credentials: { token_file: signerToken },
    signing_keys: [writeKeyFile(ed.privatePem)],
    admin: { host: '127.0.0.1', port: 0 },
    shutdown_timeout: '5s',
  });
  t.teardown(() => signer.stop());
  t.ok(Date.now() < notAfter, 'the signer started with its secret still valid');
  await until(() => Date.now() > notAfter + 250, 'the signer secret\'s not_after', 20_000);

  const reply = await primaryPost(signer.port, JSON.stringify({ source_pop: 'calgary-01', entries: [{ id: 1 }], timestamp: Math.floor(Date.now() / 1000) }));
  t.equal(reply.status, 503);
  t.notOk(reply.body.includes(signerToken), 'the primary is told nothing of the file');
  const id = reply.headers['x-replguard-request-id'];
  const [event] = await signer.waitForEvents((e) => e.event.action === 'replication-send' && e.replguard.request_id === id && e.replguard.final, 1);
  t.equal(event?.event.reason, 'SIGNER_CREDENTIAL_EXPIRED');
  t.equal(event?.event.kind, 'alert');
  t.equal(guard.audit().filter((e) => e.event.action === 'replication-request').length, 0, 'the guard was sent nothing');
  t.equal(backup.received().length, 0, 'nothing reached the backup');
});

// docs/audit.md's metrics table and the real program's /metrics (Node and Deno: the harness picks)
// name the same metrics with the same types, the way test/docs/reasons.test.ts keeps reasons in
// step; and the store metrics move with what the store holds.
import { spawnSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Agent } from 'node:https';
import { adminGet } from '../helpers/admin.ts';
import { call } from '../helpers/client.ts';
import { baseConfig, ROOT, startGuard, TEST_LIMITS } from '../helpers/guard.ts';
import { generateToken } from '../../src/cli/gen-token.ts';
import { makePki } from '../helpers/pki.ts';
import { primaryPost } from '../helpers/primary.ts';
import { signerConfig } from '../helpers/signer-config.ts';
import { parsePrometheusText, sampleValue } from '../helpers/prometheus.ts';
import { rawTcp } from '../helpers/raw-tls.ts';
import { RUNTIME } from '../helpers/runtime.ts';
import { startBackup } from '../helpers/upstream.ts';

const documented = new Map<string, string>();
const markdown = readFileSync(join(ROOT, 'docs', 'audit.md'), 'utf8');
for (const m of markdown.matchAll(/^\| `(replguard_[a-z_]+)` \| (counter|gauge|histogram) \|/gm)) documented.set(m[1]!, m[2]!);

t.test('every documented metric is served, and every served one documented', async (t) => {
  t.ok(documented.size >= 10, `the table was read (${documented.size} metrics)`);
  const pki = makePki([]);
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, { limits: { ...TEST_LIMITS, ban_after_failures: 2 } }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  const scrape = async () => (await adminGet(guard.adminPort, '/metrics')).body;
  const served = new Map<string, string>();
  for (const m of (await scrape()).matchAll(/^# TYPE (replguard_[a-z_]+) (\w+)$/gm)) served.set(m[1]!, m[2]!);
  t.same([...served].sort(), [...documented].sort(), 'the same names and types');

  // The runtime's own metrics (prom-client's defaults) and the build, under either runtime.
  const text = await scrape();
  const families = parsePrometheusText(text);
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_open_fds', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
    const value = sampleValue(families, name, {});
    t.ok(Number.isFinite(value) && value >= 0, `${name} is served with a value (${value})`);
  }
  t.ok(sampleValue(families, 'process_resident_memory_bytes', {}) > 1024 * 1024, 'resident memory is a real figure');
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const build = families.get('replguard_build_info')?.samples ?? [];
  t.equal(build.length, 1, 'one build_info series');
  t.same({ ...build[0]?.labels, runtime_version: undefined }, { version, role: 'backup', runtime: RUNTIME, runtime_version: undefined }, 'the version, the role and the runtime the harness started');
  t.match(build[0]?.labels.runtime_version ?? '', /^\d+\.\d+\.\d+/, 'and the runtime\'s version');
  // The scrape itself is a request to the admin listener, not to the TLS one: nothing is open.
  t.equal(sampleValue(families, 'replguard_connections_open', {}), 0, 'no TLS connection open');
  t.equal(sampleValue(families, 'replguard_requests_in_flight', {}), 0, 'no request in flight');
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  t.equal((await call(guard.port, pki.caFile, { cert: pki.client('calgary-01'), agent })).status, 200);
  const afterOne = parsePrometheusText(await scrape());
  t.equal(sampleValue(afterOne, 'replguard_connections_open', {}), 1, 'the kept-alive connection is open');
  t.equal(sampleValue(afterOne, 'replguard_connections_unauthenticated', {}), 0, 'and authenticated');
  t.equal(sampleValue(afterOne, 'replguard_requests_in_flight', {}), 0, 'its request is over');
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 60_000 });
  t.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);

  t.equal(sampleValue(parsePrometheusText(await scrape()), 'replguard_bans_active', {}), 0, 'no ban yet');
  for (let i = 0; i < 2; i++) await rawTcp(guard.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 3000, '127.0.0.41');
  await guard.waitForEvents((e) => e.event.reason === 'LIMIT_BAN_STARTED', 1);
  t.equal(sampleValue(parsePrometheusText(await scrape()), 'replguard_bans_active', {}), 1, 'one ban is counted');
  t.equal(sampleValue(parsePrometheusText(await scrape()), 'replguard_nonce_store_size', {}), 0, 'the nonce store is read');
  t.equal(sampleValue(parsePrometheusText(await scrape()), 'replguard_nonce_refusals_total', { cause: 'replayed' }), 0);
});

// The signer's counterpart, through the real program under the harness's runtime: docs/signer.md's
// table names what its /metrics serves, promtool reads it, and it carries the expiry of its own
// client certificate and its connections to the guard.
t.test('the signer: every documented metric is served, and every served one documented', async (t) => {
  const signerDocumented = new Map<string, string>();
  for (const m of readFileSync(join(ROOT, 'docs', 'signer.md'), 'utf8').matchAll(/^\| `(replguard_[a-z_]+)` \| (counter|gauge|histogram) \|/gm)) signerDocumented.set(m[1]!, m[2]!);
  t.ok(signerDocumented.size >= 8, `docs/signer.md's table was read (${signerDocumented.size} metrics)`);
  const pki = makePki([]);
  const calgary = pki.client('calgary-01');
  const tokenDir = mkdtempSync(join(tmpdir(), 'replguard-signer-metrics-'));
  const tokenFile = join(tokenDir, 'calgary.token');
  writeFileSync(tokenFile, `${generateToken()}\n`, { mode: 0o600 });
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    auth: { methods: ['mtls', 'bearer'] },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, token_files: [tokenFile] }],
  }));
  const signer = await startGuard(signerConfig(pki, `https://127.0.0.1:${guard.port}`, calgary, { credentials: { token_file: tokenFile } }));
  t.teardown(async () => {
    await signer.stop();
    await guard.stop();
    await backup.stop();
  });
  t.equal((await primaryPost(signer.port, '{"entries":[{"id":1}]}')).status, 200, 'delivered');
  const text = (await adminGet(signer.adminPort, '/metrics')).body;
  const served = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (replguard_[a-z_]+) (\w+)$/gm)) served.set(m[1]!, m[2]!);
  t.same([...served].sort(), [...signerDocumented].sort(), 'the same names and types');
  const families = parsePrometheusText(text);
  const own = new X509Certificate(readFileSync(calgary.cert));
  t.equal(
    sampleValue(families, 'replguard_signer_client_certificate_expiry_timestamp_seconds', { subject: own.subject.replace(/\n/g, ', '), sha256: createHash('sha256').update(own.raw).digest('hex') }),
    Math.floor(Date.parse(own.validTo) / 1000),
    'its client certificate\'s notAfter',
  );
  const connections = sampleValue(families, 'replguard_signer_guard_connections_open', {});
  t.ok(Number.isInteger(connections) && connections >= 0 && connections <= 1, `connections to the guard: at most the one kept alive (${connections})`);
  t.equal(sampleValue(families, 'replguard_signer_requests_in_flight', {}), 0, 'nothing held now');
  t.equal(families.get('replguard_build_info')?.samples[0]?.labels.runtime, RUNTIME);
  t.ok(sampleValue(families, 'process_resident_memory_bytes', {}) > 1024 * 1024, 'the process metrics are served beside them');
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 60_000 });
  t.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);
});

// Exact ECS through the real program: a guard and a signer (role: primary) serve accepted and
// refused requests of many reasons over real sockets (TLS refusals, routing, mTLS identity,
// bearer, signature, replay, body limits and contract, upstream failures, bans and their
// administration, a reload; the signer's delivery, local refusals, a guard that refuses and one
// that is not there), and every audit event any of them writes is checked against the ECS field
// list of the `@elastic/ecs` package (test/helpers/ecs.ts): field names, types, allowed values,
// `replguard.*` as the only custom namespace, and no empty object, array, string or placeholder.
import { chmodSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { generateToken } from '../../src/cli/gen-token.ts';
import { parseSignKey } from '../../src/replay/keys.ts';
import { signatureHeaders } from '../../src/replay/signing.ts';
import { admin, bearer } from '../helpers/admin-bans.ts';
import { call } from '../helpers/client.ts';
import { ecsProblems } from '../helpers/ecs.ts';
import { baseConfig, startGuard, TEST_LIMITS, type AuditRecord, type GuardProcess } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { primaryPost } from '../helpers/primary.ts';
import { rawTcp, rawTls } from '../helpers/raw-tls.ts';
import { startScriptedUpstream } from '../helpers/scripted-upstream.ts';
import { signerConfig } from '../helpers/signer-config.ts';
import { makeHmacKey, writeKeyFile } from '../helpers/signing.ts';
import { closedPortUrl } from '../helpers/upstream.ts';

const pki = makePki([]);
const calgary = pki.client('calgary-01');
const tokyo = pki.client('tokyo-05');
const foreign = pki.foreignClient('calgary-01');
const dir = mkdtempSync(join(tmpdir(), 'replguard-ecs-'));
/** Written as an operator should: a temporary file renamed over it, mode 0600. */
const secretFile = (name: string, text: string) => {
  const file = join(dir, name);
  writeFileSync(`${file}.tmp`, `${text}\n`, { mode: 0o600 });
  chmodSync(`${file}.tmp`, 0o600);
  renameSync(`${file}.tmp`, file);
  return file;
};
const token = generateToken();
const tokenFile = secretFile('calgary.token', token);
const wrongTokenFile = secretFile('wrong.token', generateToken());
const spareTokenFile = secretFile('calgary-next.token', generateToken());
const adminToken = generateToken();
const adminTokenFile = secretFile('admin.token', adminToken);
const key = makeHmacKey();
const keyFile = writeKeyFile(key.text);
const otherKey = makeHmacKey();

let n = 0;
const freshId = () => `e2e-ecs-${String(n++).padStart(12, '0')}`;
const now = () => Math.floor(Date.now() / 1000);

/** A signed body and its headers, with the POP's bearer secret. */
function signed(options: { ts?: number; pop?: string; signKey?: string } = {}) {
  const id = freshId();
  const ts = options.ts ?? now();
  const body = Buffer.from(JSON.stringify({ source_pop: options.pop ?? 'calgary-01', entries: [{ id: 1, op: 'upsert' }], timestamp: ts, nonce: id }));
  return { body, headers: { ...signatureHeaders([parseSignKey(options.signKey ?? key.text)], body, id, String(ts)), ...bearer(token) } };
}

/** Auth-failure codes (the guard's events must say `authentication` exactly for these). */
const AUTHENTICATION = /^(?:AUTH|TLS_CLIENT|SIGNATURE)_/;

t.test('every audit event of a guard and a signer is exact ECS', async (t) => {
  const upstream = await startScriptedUpstream();
  const guard = await startGuard(baseConfig(pki, upstream.url, {
    auth: { methods: ['mtls', 'bearer', 'signature'], reload_interval: '1h' },
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, token_files: [tokenFile, spareTokenFile], signing_keys: [keyFile] }],
    routes: ['/api/replication/apply', '/refuse', '/hang'].map((path) => ({ method: 'POST', path })),
    upstream: { url: upstream.url, timeout: '1s' },
    limits: { ...TEST_LIMITS, max_body_bytes: '1KiB' },
  }));
  // Bans: two counted failures ban, for one second; ban administration behind a token.
  const banning = await startGuard(baseConfig(pki, upstream.url, {
    limits: { ...TEST_LIMITS, ban_after_failures: 2, ban_duration: '1s' },
    admin: { host: '127.0.0.1', port: 0, token_file: adminTokenFile },
  }));
  const backupUrl = `https://127.0.0.1:${guard.port}`;
  const signer = (url: string, overrides: Record<string, unknown> = {}) => signerConfig(pki, url, calgary, { credentials: { token_file: tokenFile }, signing_keys: [keyFile], ...overrides });
  const [delivering, refusedSigner, lonelySigner, pinnedSigner] = await Promise.all([
    startGuard(signer(backupUrl)),
    startGuard(signer(backupUrl, { credentials: { token_file: wrongTokenFile } })),
    startGuard(signer((await closedPortUrl()).replace(/^http:/, 'https:'), { retry: { max_retries: 1 } })),
    startGuard(signer(backupUrl, { backup: { id: 'zurich-01', url: backupUrl, ca_file: pki.caFile, server_name: 'localhost', timeout: '5s', pin_sha256: ['ab'.repeat(32)] } })),
  ]);
  const processes: Record<string, GuardProcess> = { guard, banning, signer: delivering, refusedSigner, lonelySigner, pinnedSigner };
  t.teardown(async () => {
    await Promise.all(Object.values(processes).map((p) => p.stop()));
    await upstream.stop();
  });
  const send = (options: Parameters<typeof call>[2]) => call(guard.port, pki.caFile, { cert: calgary, ...options });
  const good = () => signed();

  // The guard: accepted, and refused at every layer.
  t.equal((await send(good())).status, 200, 'a signed request is forwarded');
  const replayed = good();
  t.equal((await send(replayed)).status, 200);
  t.equal((await send(replayed)).status, 401, 'the same request again is a replay');
  t.equal((await send({ ...signed(), path: '/refuse' })).status, 502);
  t.equal((await send({ ...signed(), path: '/hang' })).status, 504);
  t.equal((await send({ headers: {} })).status, 401, 'no Authorization');
  t.equal((await send({ headers: { authorization: 'Basic Y2FsZ2FyeTpwdw==' } })).status, 400);
  t.equal((await send({ headers: bearer(token) })).status, 401, 'no signature headers');
  t.equal((await send(signed({ signKey: otherKey.text }))).status, 401, 'signed with another key');
  t.equal((await send(signed({ ts: now() - 3600 }))).status, 401, 'stale');
  t.equal((await send(signed({ pop: 'denver-02' }))).status, 403, 'source_pop of another POP');
  t.equal((await send({ headers: bearer(token), body: 'x'.repeat(2048) })).status, 413);
  t.equal((await send({ ...signed(), path: '/nope' })).status, 404);
  t.equal((await send({ method: 'GET', headers: bearer(token) })).status, 405);
  t.equal((await send({ path: '/api/replication/apply?access_token=abc', headers: bearer(token) })).status, 400);
  t.equal((await send({ cert: tokyo, ...signed() })).status, 403, 'a certificate of no peer');
  await rawTls(guard.port, pki.caFile, { send: ['POST /api/replication/apply HTTP/1.1\r\n\r\n'], ms: 2000 });
  await rawTls(guard.port, pki.caFile, { cert: foreign, send: ['POST / HTTP/1.1\r\n\r\n'], ms: 2000 });
  await rawTcp(guard.port, 'GET / HTTP/1.1\r\nhost: x\r\n\r\n', 2000);
  await rawTls(guard.port, pki.caFile, { cert: calgary, send: ['NOT HTTP AT ALL\r\n\r\n'], ms: 2000 });
  t.equal((await admin(guard.adminPort, 'GET', '/bans')).status, 200);
  secretFile('calgary-next.token', generateToken());
  guard.child.kill('SIGHUP');
  await guard.waitForEvents((e) => e.event.action === 'config-reload', 1);

  // Bans and their administration.
  for (let i = 0; i < 3; i++) await rawTls(banning.port, pki.caFile, { send: ['x'], ms: 2000, tls: { localAddress: '127.0.0.4' } as never });
  await banning.waitForEvents((e) => e.event.reason === 'LIMIT_BAN_STARTED', 1);
  t.equal((await admin(banning.adminPort, 'GET', '/bans')).status, 401);
  t.equal((await admin(banning.adminPort, 'GET', '/bans', { headers: bearer(generateToken()) })).status, 401);
  t.equal((await admin(banning.adminPort, 'GET', '/bans', { headers: bearer(adminToken) })).status, 200);
  t.equal((await admin(banning.adminPort, 'DELETE', `/bans/${encodeURIComponent('addr:127.0.0.4')}`, { headers: bearer(adminToken) })).status, 200);
  for (let i = 0; i < 2; i++) await call(banning.port, pki.caFile, { cert: calgary, path: '/api/replication/../apply', localAddress: '127.0.0.5' });
  await banning.waitForEvents((e) => e.event.reason === 'LIMIT_BAN_ENDED', 1, 10_000);

  // The signer: delivered, refused before any attempt, refused by the guard, no guard, a wrong pin.
  const batch = JSON.stringify({ source_pop: 'calgary-01', entries: [{ id: 1, op: 'upsert' }] });
  t.equal((await primaryPost(delivering.port, batch)).status, 200, 'delivered');
  t.equal((await primaryPost(delivering.port, 'not json')).status, 400);
  t.equal((await primaryPost(delivering.port, batch, { path: '/elsewhere' })).status, 404);
  t.equal((await primaryPost(refusedSigner.port, batch)).status, 401, 'the guard\'s refusal is relayed');
  t.equal((await primaryPost(lonelySigner.port, batch)).status, 502);
  t.equal((await primaryPost(pinnedSigner.port, batch)).status, 502);
  // A signer writes a request's last event once its answer closed: wait for each of them.
  const finals = (e: AuditRecord) => e.replguard?.final === true;
  await Promise.all([delivering.waitForEvents(finals, 3), refusedSigner.waitForEvents(finals, 1), lonelySigner.waitForEvents(finals, 1), pinnedSigner.waitForEvents(finals, 1)]);

  const events = Object.entries(processes).flatMap(([name, p]) => p.audit().map((e): [string, AuditRecord] => [name, e]));
  const reasons = new Set(events.map(([, e]) => e.event.reason as string));
  for (const reason of [
    'FORWARDED', 'REPLAY_NONCE_REUSED', 'UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT', 'AUTH_CREDENTIAL_MISSING', 'AUTH_CREDENTIAL_MALFORMED',
    'AUTH_BEARER_INVALID', 'SIGNATURE_HEADERS_MISSING', 'SIGNATURE_MISMATCH', 'REPLAY_TIMESTAMP_STALE', 'BODY_SOURCE_POP_MISMATCH',
    'BODY_TOO_LARGE', 'ROUTE_NOT_FOUND', 'ROUTE_METHOD_NOT_ALLOWED', 'AUTH_TOKEN_IN_QUERY', 'AUTH_PEER_UNKNOWN', 'TLS_CLIENT_CERT_MISSING',
    'TLS_CLIENT_CERT_UNTRUSTED', 'TLS_HANDSHAKE_MALFORMED', 'HTTP_MALFORMED', 'CONFIG_RELOADED', 'LIMIT_BANS_LISTED', 'LIMIT_BAN_STARTED',
    'LIMIT_BAN_LIFTED', 'LIMIT_BAN_ENDED', 'ADMIN_TOKEN_MISSING', 'ADMIN_TOKEN_INVALID', 'ROUTE_TARGET_INVALID',
    'SIGNER_DELIVERED', 'BODY_NOT_JSON', 'SIGNER_BACKUP_REFUSED', 'SIGNER_BACKUP_UNREACHABLE', 'SIGNER_BACKUP_PIN_MISMATCH',
  ]) t.ok(reasons.has(reason), `an event of ${reason} was written and checked`);

  for (const [name, e] of events) {
    const where = `${name}: ${e.event.reason} (${e.event.action})`;
    t.same(ecsProblems(e), [], `${where} is exact ECS`);
    if (e.event.action === 'replication-request' || e.event.action === 'tls-connection') {
      t.equal(e.event.category.includes('authentication'), AUTHENTICATION.test(e.event.reason), `${where}: authentication exactly for failed credentials`);
    }
  }
  const unreachable = events.filter(([, e]) => e.event.reason === 'SIGNER_BACKUP_UNREACHABLE').map(([, e]) => e);
  t.equal(unreachable.length, 2, 'the attempt, then the retry');
  t.ok(unreachable.every((e) => e.event.type.includes('error')), 'no answer from the guard is an error, not a denial');
  t.equal(unreachable[0]!.replguard.retry_in_ms, 1000);
  const addressBan = events.find(([, e]) => e.event.reason === 'LIMIT_BAN_STARTED' && e.replguard.ban.key === 'addr:127.0.0.4')?.[1];
  t.same(addressBan?.source, { ip: '127.0.0.4' }, 'a banned address has no port: none is left as 0');
});

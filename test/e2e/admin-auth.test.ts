// Ban administration on the admin listener, through the real program (Node, or Deno with
// REPLGUARD_TEST_RUNTIME=deno): without admin.token_file only loopback callers list and lift
// bans; with it the token is required from every caller, loopback included (no token: refused;
// wrong token: refused and an alert; right token: done, audited with its fingerprint); a caller
// off loopback (an address of this machine's own interface, when it has one) is refused; health
// and metrics stay open; strict method, path and query handling; the token reloads on SIGHUP; a
// world-readable, weak or empty token file stops start-up with the key path. The signer's admin
// listener serves health only.
import { mkdtempSync, readFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { generateToken } from '../../src/cli/gen-token.ts';
import { credentialFingerprint } from '../../src/crypto/secret-compare.ts';
import { admin, bearer } from '../helpers/admin-bans.ts';
import { baseConfig, runCli, startGuard, writeConfig, type AuditRecord, type GuardProcess } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { atomicWrite, sighup } from '../helpers/reload.ts';
import { makeHmacKey, writeKeyFile } from '../helpers/signing.ts';
import { rawRequest } from '../helpers/tls-client.ts';

const pki = makePki([]);
const dir = mkdtempSync(join(tmpdir(), 'replguard-admin-'));
const UPSTREAM = 'http://127.0.0.1:9'; // never reached: these tests send no authorised replication

/** The first address of this machine's own interfaces that is not loopback (traffic to it never leaves the machine). */
function ownNonLoopbackAddress(family: 'IPv4' | 'IPv6'): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal || a.family !== family) continue;
      if (a.address.startsWith('169.254.') || /^fe80:/i.test(a.address)) continue; // link-local needs a zone
      return a.address;
    }
  }
  return undefined;
}

const adminEvents = (guard: GuardProcess) => guard.audit().filter((e) => e.event.action === 'bans-list' || e.event.action === 'ban-lift');
/** The audit event of the admin request whose answer carried `requestId`, or the newest one. */
async function eventOf(guard: GuardProcess, before: number): Promise<AuditRecord> {
  const [event] = (await guard.waitForEvents((e) => e.event.action === 'bans-list' || e.event.action === 'ban-lift', before + 1)).slice(before);
  return event!;
}

/** Ten refused handshakes from `address` (no client certificate) ban it under the product's defaults. */
async function banAddress(guard: GuardProcess, address: string): Promise<void> {
  for (let i = 0; i < 10; i++) await rawRequest(guard.port, pki.caFile, 'x', { localAddress: address, timeoutMs: 2000 });
  await guard.waitForEvents((e) => e.event.reason === 'LIMIT_BAN_STARTED' && e.replguard.ban?.key === `addr:${address}`, 1);
}

t.test('without admin.token_file: loopback callers administer bans', async (t) => {
  const guard = await startGuard(baseConfig(pki, UPSTREAM, { limits: {} }));
  t.teardown(() => guard.stop());
  await banAddress(guard, '127.0.0.4');

  await t.test('listed and lifted from loopback, audited with the caller', async (t) => {
    let before = adminEvents(guard).length;
    const list = await admin(guard.adminPort, 'GET', '/bans');
    t.equal(list.status, 200);
    t.same(list.body.bans.map((b: any) => b.key), ['addr:127.0.0.4']);
    const listed = await eventOf(guard, before);
    t.equal(listed.event.reason, 'LIMIT_BANS_LISTED');
    t.equal(listed.event.kind, 'event');
    t.equal(listed.source.ip, '127.0.0.1');
    t.same(listed.replguard.credentials, ['loopback']);
    t.notOk(listed.replguard.token_fingerprint);
    t.equal(listed.replguard.request_id, list.body.request_id);

    before = adminEvents(guard).length;
    const other = await admin(guard.adminPort, 'GET', '/bans', { localAddress: '127.0.0.9' });
    t.equal(other.status, 200, 'all of 127.0.0.0/8 is loopback');
    t.equal((await eventOf(guard, before)).source.ip, '127.0.0.9');

    before = adminEvents(guard).length;
    const lifted = await admin(guard.adminPort, 'DELETE', `/bans/${encodeURIComponent('addr:127.0.0.4')}`);
    t.equal(lifted.status, 200);
    t.equal(lifted.body.lifted.key, 'addr:127.0.0.4');
    const lift = await eventOf(guard, before);
    t.equal(lift.event.reason, 'LIMIT_BAN_LIFTED');
    t.equal(lift.event.kind, 'alert');
    t.same(lift.replguard.credentials, ['loopback']);
    t.equal(lift.replguard.ban.key, 'addr:127.0.0.4');
  });

  await t.test('strict methods, paths and queries; each refusal audited', async (t) => {
    const token = generateToken();
    const cases: Array<[string, string, number, string, string[] | undefined]> = [
      ['POST', '/bans', 405, 'ROUTE_METHOD_NOT_ALLOWED', ['loopback']],
      ['HEAD', '/bans', 405, 'ROUTE_METHOD_NOT_ALLOWED', ['loopback']],
      ['GET', '/bans/addr:127.0.0.4', 405, 'ROUTE_METHOD_NOT_ALLOWED', ['loopback']],
      ['DELETE', '/bans', 405, 'ROUTE_METHOD_NOT_ALLOWED', ['loopback']],
      ['GET', '/bans?verbose=1', 400, 'ROUTE_QUERY_NOT_ALLOWED', ['loopback']],
      ['DELETE', '/bans/addr:127.0.0.4?', 400, 'ROUTE_QUERY_NOT_ALLOWED', ['loopback']],
      ['GET', `/bans?access_token=${token}`, 400, 'AUTH_TOKEN_IN_QUERY', undefined],
      ['DELETE', '/bans/', 400, 'LIMIT_BAN_LIFTED', ['loopback']],
      ['DELETE', '/bans/..%2Fhealthz', 400, 'LIMIT_BAN_LIFTED', ['loopback']],
      ['DELETE', '/bans/addr:127.0.0.4', 404, 'LIMIT_BAN_LIFTED', ['loopback']],
    ];
    for (const [method, path, status, reason, credentials] of cases) {
      const before = adminEvents(guard).length;
      const reply = await admin(guard.adminPort, method, path);
      t.equal(reply.status, status, `${method} ${path}: ${status}`);
      const event = await eventOf(guard, before);
      t.equal(event.event.reason, reason, `${method} ${path}: ${reason}`);
      t.same(event.replguard.credentials, credentials, `${method} ${path}: caller`);
      t.notOk(JSON.stringify(event).includes('?'), 'the query is never logged');
      if (status === 405) t.equal(reply.headers.allow, path === '/bans' ? 'GET' : 'DELETE');
    }
    const tokenEvent = adminEvents(guard).find((e) => e.event.reason === 'AUTH_TOKEN_IN_QUERY')!;
    t.equal(tokenEvent.event.kind, 'alert', 'a credential in the URL is an alert');
    t.notOk(JSON.stringify(guard.audit()).includes(token), 'and is never logged');

    const before = adminEvents(guard).length;
    for (const path of ['/BANS', '/bans%2F', '//bans', '/bansx']) t.equal((await admin(guard.adminPort, 'GET', path)).status, 404, `${path}: 404`);
    t.equal(adminEvents(guard).length, before, 'paths that are not ban administration are not audited as such');
    t.equal((await admin(guard.adminPort, 'GET', '/healthz?x=1')).status, 200);
  });
});

t.test('with admin.token_file: the token, from every caller (loopback included)', async (t) => {
  const token = generateToken();
  const tokenFile = atomicWrite(join(mkdtempSync(join(dir, 'token-')), 'admin-token'), `${token}\n`);
  const guard = await startGuard(baseConfig(pki, UPSTREAM, { limits: {}, admin: { host: '127.0.0.1', port: 0, token_file: tokenFile } }));
  t.teardown(() => guard.stop());
  const listening = guard.operational().find((l) => l.message === 'guard listening')!;
  t.match(listening.ban_administration, credentialFingerprint(token), 'the start-up line names the token by fingerprint');

  await t.test('no token from loopback: refused (401) and audited, no alert', async (t) => {
    const before = adminEvents(guard).length;
    const reply = await admin(guard.adminPort, 'GET', '/bans');
    t.equal(reply.status, 401);
    t.same(Object.keys(reply.body).sort(), ['error', 'request_id'], 'the generic body');
    const event = await eventOf(guard, before);
    t.equal(event.event.reason, 'ADMIN_TOKEN_MISSING');
    t.equal(event.event.outcome, 'failure');
    t.equal(event.event.kind, 'event');
    t.equal(event.source.ip, '127.0.0.1');
    t.notOk('credentials' in event.replguard, 'no credential was checked');
    t.equal(event.replguard.request_id, reply.body.request_id);
  });

  await t.test('a wrong token: refused, an alert, audited with the presented fingerprint only', async (t) => {
    const wrong = generateToken();
    for (const [headers, fingerprint] of [
      [bearer(wrong), credentialFingerprint(wrong)],
      [{ authorization: `Basic ${Buffer.from(`admin:${token}`).toString('base64')}` }, undefined],
      [{ authorization: [`Bearer ${token}`, `Bearer ${token}`] }, undefined],
    ] as const) {
      const before = adminEvents(guard).length;
      const reply = await admin(guard.adminPort, 'DELETE', '/bans/addr:127.0.0.4', { headers: headers as Record<string, string | string[]> });
      t.equal(reply.status, 401);
      const event = await eventOf(guard, before);
      t.equal(event.event.reason, 'ADMIN_TOKEN_INVALID');
      t.equal(event.event.kind, 'alert');
      t.equal(event.event.action, 'ban-lift');
      t.notOk('credentials' in event.replguard, 'no credential was checked');
      t.equal(event.replguard.token_fingerprint, fingerprint);
    }
    t.notOk(JSON.stringify(guard.audit()).includes(wrong), 'no presented token is logged');
  });

  await t.test('the right token: listed and lifted, audited with its fingerprint', async (t) => {
    await banAddress(guard, '127.0.0.4');
    let before = adminEvents(guard).length;
    const list = await admin(guard.adminPort, 'GET', '/bans', { headers: bearer(token) });
    t.equal(list.status, 200);
    t.same(list.body.bans.map((b: any) => b.key), ['addr:127.0.0.4']);
    const listed = await eventOf(guard, before);
    t.equal(listed.event.reason, 'LIMIT_BANS_LISTED');
    t.same(listed.replguard.credentials, ['admin_token']);
    t.equal(listed.replguard.token_fingerprint, credentialFingerprint(token));

    before = adminEvents(guard).length;
    const lifted = await admin(guard.adminPort, 'DELETE', '/bans/addr:127.0.0.4', { headers: bearer(token) });
    t.equal(lifted.status, 200);
    const lift = await eventOf(guard, before);
    t.equal(lift.event.reason, 'LIMIT_BAN_LIFTED');
    t.equal(lift.event.kind, 'alert');
    t.same(lift.replguard.credentials, ['admin_token']);
    t.equal(lift.replguard.token_fingerprint, credentialFingerprint(token));
    t.equal(lift.replguard.ban.key, 'addr:127.0.0.4');
  });

  await t.test('health and metrics need no token', async (t) => {
    for (const path of ['/healthz', '/readyz']) t.equal((await admin(guard.adminPort, 'GET', path)).status, 200, path);
    const { adminGet } = await import('../helpers/admin.ts');
    t.equal((await adminGet(guard.adminPort, '/metrics')).status, 200, '/metrics');
  });

  await t.test('rotated with SIGHUP; a weak replacement is refused and the token in force kept', async (t) => {
    const next = generateToken();
    atomicWrite(tokenFile, next);
    await sighup(guard, 'admin token');
    t.equal((await admin(guard.adminPort, 'GET', '/bans', { headers: bearer(next) })).status, 200, 'the new token');
    t.equal((await admin(guard.adminPort, 'GET', '/bans', { headers: bearer(token) })).status, 401, 'the old one is refused');
    // The audit line (stdout) may arrive after the operational one sighup() waited for (stderr).
    t.ok((await guard.waitForEvents((e) => e.event.reason === 'CONFIG_RELOADED' && /admin token/.test(e.replguard.detail), 1)).length === 1, 'the reload is audited');

    atomicWrite(tokenFile, 'correcthorsebatterystaplecorrecthorse');
    await sighup(guard, 'admin token');
    const failed = await guard.waitForEvents((e) => e.event.reason === 'CONFIG_RELOAD_FAILED' && /admin token/.test(e.replguard.detail), 1);
    t.ok(failed.length > 0, 'the refused reload is audited');
    t.equal(failed[0]!.event.kind, 'alert');
    t.match(failed[0]!.replguard.detail, /admin\.token_file: .*weak secret/);
    t.equal((await admin(guard.adminPort, 'GET', '/bans', { headers: bearer(next) })).status, 200, 'the token in force stays in force');
    const logs = JSON.stringify(guard.audit()) + JSON.stringify(guard.operational());
    for (const secret of [token, next]) t.notOk(logs.includes(secret), 'no token in any log');
  });
});

t.test('a caller off loopback', async (t) => {
  const address = ownNonLoopbackAddress('IPv4');
  if (address === undefined) {
    t.skip('this machine has no non-loopback interface address; the decision is unit-tested with injected addresses (test/unit/server/admin-access.test.ts)');
    return;
  }
  const token = generateToken();
  const tokenFile = atomicWrite(join(mkdtempSync(join(dir, 'token-')), 'admin-token'), token);
  // Bound to every address, as the chart does for kubelet probes: loopback and the interface reach one listener.
  const open = await startGuard(baseConfig(pki, UPSTREAM, { admin: { host: '0.0.0.0', port: 0 } }));
  const withToken = await startGuard(baseConfig(pki, UPSTREAM, { admin: { host: '0.0.0.0', port: 0, token_file: tokenFile } }));
  t.teardown(async () => {
    await open.stop();
    await withToken.stop();
  });
  const from = { host: address, localAddress: address };

  await t.test(`without a token configured: ${address} is refused ban administration, an alert; health and metrics answer`, async (t) => {
    for (const [method, path] of [['GET', '/bans'], ['DELETE', '/bans/addr:127.0.0.4'], ['POST', '/bans'], ['GET', '/bans?x=1']] as const) {
      const before = adminEvents(open).length;
      const reply = await admin(open.adminPort, method, path, from);
      t.equal(reply.status, 403, `${method} ${path}`);
      const event = await eventOf(open, before);
      t.equal(event.event.reason, 'ADMIN_CALLER_NOT_LOOPBACK', 'refused before the method or query is looked at');
      t.equal(event.event.kind, 'alert');
      t.equal(event.source.ip, address);
      t.notOk('credentials' in event.replguard, 'no credential was checked');
    }
    const before = adminEvents(open).length;
    t.equal((await admin(open.adminPort, 'GET', '/bans', { headers: bearer(token) })).status, 200, 'the same listener, from loopback');
    t.same((await eventOf(open, before)).replguard.credentials, ['loopback']);
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const { request } = await import('node:http');
      const status = await new Promise<number>((resolve, reject) => {
        request({ host: address, localAddress: address, port: open.adminPort, path }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject).end();
      });
      t.equal(status, 200, `${path} from ${address}`);
    }
  });

  await t.test(`with a token configured: ${address} needs it, and is let in with it`, async (t) => {
    let before = adminEvents(withToken).length;
    t.equal((await admin(withToken.adminPort, 'GET', '/bans', from)).status, 401);
    const missing = await eventOf(withToken, before);
    t.equal(missing.event.reason, 'ADMIN_TOKEN_MISSING');
    t.equal(missing.source.ip, address);
    before = adminEvents(withToken).length;
    t.equal((await admin(withToken.adminPort, 'GET', '/bans', { ...from, headers: bearer(token) })).status, 200);
    const done = await eventOf(withToken, before);
    t.equal(done.event.reason, 'LIMIT_BANS_LISTED');
    t.equal(done.source.ip, address);
    t.same(done.replguard.credentials, ['admin_token']);
    t.equal(done.replguard.token_fingerprint, credentialFingerprint(token));
  });
});

t.test('a dual-stack listener (::): IPv4-mapped loopback and ::1 are loopback, an IPv6 interface address is not', async (t) => {
  const guard = await startGuard(baseConfig(pki, UPSTREAM, { admin: { host: '::', port: 0 } }));
  t.teardown(() => guard.stop());
  // Over an IPv6 socket, an IPv4 client's address arrives as ::ffff:127.0.0.1 (Node and Deno alike); it is logged as IPv4.
  for (const [host, logged] of [['127.0.0.1', '127.0.0.1'], ['::1', '::1']] as const) {
    const before = adminEvents(guard).length;
    t.equal((await admin(guard.adminPort, 'GET', '/bans', { host })).status, 200, `from ${host}`);
    const event = await eventOf(guard, before);
    t.equal(event.source.ip, logged);
    t.same(event.replguard.credentials, ['loopback']);
  }
  const address = ownNonLoopbackAddress('IPv6');
  if (address === undefined) {
    t.skip('no non-loopback IPv6 interface address here');
    return;
  }
  const before = adminEvents(guard).length;
  t.equal((await admin(guard.adminPort, 'GET', '/bans', { host: address, localAddress: address })).status, 403, `from ${address}`);
  const event = await eventOf(guard, before);
  t.equal(event.event.reason, 'ADMIN_CALLER_NOT_LOOPBACK');
  t.equal(event.source.ip, address);
});

t.test("the signer's admin listener (role: primary): health only, no ban administration for anyone", async (t) => {
  const calgary = pki.client('calgary-01');
  const signer = await startGuard({
    pop_id: 'calgary-01',
    role: 'primary',
    listen: { host: '127.0.0.1', port: 0 },
    backup: { id: 'zurich-01', url: 'https://127.0.0.1:9', ca_file: pki.caFile, server_name: 'localhost' },
    client_tls: { cert_file: calgary.cert, key_file: calgary.key },
    signing_keys: [writeKeyFile(makeHmacKey().text)],
    admin: { host: '127.0.0.1', port: 0 },
    shutdown_timeout: '5s',
  });
  t.teardown(() => signer.stop());
  t.equal((await admin(signer.adminPort, 'GET', '/healthz')).status, 200);
  t.equal((await admin(signer.adminPort, 'GET', '/readyz')).status, 200);
  for (const [method, path] of [['GET', '/bans'], ['DELETE', '/bans/pop:calgary-01']] as const) {
    t.equal((await admin(signer.adminPort, method, path)).status, method === 'GET' ? 404 : 405, `${method} ${path}`);
  }
  // The signer's own metrics (issue 17), with no ban administration beside them.
  const { adminGet } = await import('../helpers/admin.ts');
  t.equal((await adminGet(signer.adminPort, '/metrics')).status, 200, 'GET /metrics');
  t.equal(signer.audit().filter((e) => e.event.action === 'bans-list' || e.event.action === 'ban-lift').length, 0);
});

t.test('an unusable admin token file stops start-up, with the key path', async (t) => {
  const tokenDir = mkdtempSync(join(dir, 'bad-'));
  const config = (file: string) => writeConfig(baseConfig(pki, UPSTREAM, { admin: { host: '127.0.0.1', port: 0, token_file: file } }));
  const cases: Array<[string, string, RegExp]> = [
    ['world-readable', atomicWrite(join(tokenDir, 'exposed'), generateToken(), 0o644), /admin\.token_file: .*exposed is readable by others/],
    ['weak', atomicWrite(join(tokenDir, 'weak'), 'correcthorsebatterystaplecorrecthorse\n'), /admin\.token_file: .*weak: weak secret: estimated at \d+ bits .*dictionary words/],
    ['short', atomicWrite(join(tokenDir, 'short'), 'Zx81-Tq0'), /admin\.token_file: .*weak secret: estimated at \d+ bits .*it is 8 bytes long/],
    ['empty', atomicWrite(join(tokenDir, 'empty'), ''), /admin\.token_file: .*empty is empty/],
    ['missing', join(tokenDir, 'nonexistent'), /admin\.token_file: .*nonexistent does not exist/],
  ];
  for (const [name, file, expected] of cases) {
    const result = await runCli(['check-config', '-c', config(file)]);
    t.equal(result.code, 2, `${name}: check-config exits 2`);
    t.match(result.stderr, expected, `${name}: the key path and the reason`);
  }
  const exposed = cases[0]![1];
  t.notOk((await runCli(['check-config', '-c', config(exposed)])).stderr.includes(readFileSync(exposed, 'utf8')), 'the token is not printed');
  const serve = await runCli(['serve', '-c', config(exposed)]);
  t.equal(serve.code, 2, 'serve refuses to start');
  t.match(serve.stderr, /admin\.token_file: /);
});

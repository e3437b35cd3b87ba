// Bans through real sockets, with the guard in process so that its clock can be moved on:
// ten counted failures of a verified POP ban that POP, not its address (alert events); a banned POP is cut at the
// TLS layer and refused with 403 on a connection it already had, the ban ends on the injected
// clock (alert event) and the POP is served again; an address banned for failed handshakes,
// listed and lifted on the admin listener.
import { Agent } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { createAuditLog } from '../../src/audit/audit-log.ts';
import { loadConfig } from '../../src/guard/config.ts';
import { createOperationalLog } from '../../src/log/operational.ts';
import { startGuard } from '../../src/guard/guard.ts';
import { baseConfig, writeConfig, type AuditRecord } from '../helpers/guard.ts';
import { admin } from '../helpers/admin-bans.ts';
import { makePki } from '../helpers/pki.ts';
import { post, rawRequest } from '../helpers/tls-client.ts';
import { RUNTIME } from '../helpers/runtime.ts';
import { startBackup } from '../helpers/upstream.ts';

const HOUR = 3_600_000;


// The guard runs in this process (its clock is injected), so this file tests Node only; the
// connection-level ban behaviour is also in tls-gate.test.ts, which runs the real program on both.
t.test('bans', { skip: RUNTIME === 'deno' ? 'the guard runs in process here (injected clock): Node only' : false }, async (t) => {
  const pki = makePki([]);
  const calgary = pki.client('calgary-01');
  const denver = pki.client('denver-02');
  const backup = await startBackup();
  const config = loadConfig(writeConfig(baseConfig(pki, backup.url, {
    peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' } }, { id: 'denver-02', cert: { cn: 'denver-02' } }],
    limits: {},
  }))).config;

  const events: AuditRecord[] = [];
  const audit = createAuditLog(undefined, { stream: { write: (line: string) => void events.push(JSON.parse(line) as AuditRecord) } });
  let skew = 0;
  const guard = await startGuard(config, { audit, log: createOperationalLog('error'), now: () => Date.now() + skew });
  t.teardown(async () => {
    await guard.shutdown();
    await backup.stop();
  });
  const waitFor = async (pred: (e: AuditRecord) => boolean, count: number, ms = 5000) => {
    const deadline = Date.now() + ms;
    while (events.filter(pred).length < count && Date.now() < deadline) await sleep(20);
    return events.filter(pred);
  };
  const started = (key: string) => (e: AuditRecord) => e.event.reason === 'LIMIT_BAN_STARTED' && e.replguard.ban?.key === key;
  const ended = (key: string) => (e: AuditRecord) => e.event.reason === 'LIMIT_BAN_ENDED' && e.replguard.ban?.key === key;

  await t.test('failures that do not count (404s) ban nobody', async (t) => {
    for (let i = 0; i < 12; i++) {
      t.equal((await post(guard.port, pki.caFile, { cert: denver, localAddress: '127.0.0.7', path: '/nope' })).status, 404);
    }
    t.equal((await post(guard.port, pki.caFile, { cert: denver, localAddress: '127.0.0.7' })).status, 200);
    t.notOk(events.some((e) => e.event.reason === 'LIMIT_BAN_STARTED'));
  });

  await t.test('ten failed handshakes ban the address; the admin listener lists and lifts it', async (t) => {
    for (let i = 0; i < 10; i++) await rawRequest(guard.port, pki.caFile, 'x', { localAddress: '127.0.0.4', timeoutMs: 2000 });
    const [ban] = await waitFor(started('addr:127.0.0.4'), 1);
    t.ok(ban, 'ban started');
    t.equal(ban!.event.kind, 'alert');
    t.equal(ban!.source.ip, '127.0.0.4');
    t.equal(ban!.replguard.ban.failures, 10);
    t.equal(ban!.replguard.ban.trigger, 'TLS_CLIENT_CERT_MISSING');
    t.notOk(events.some(started('pop:denver-02')), 'no POP was known: none is banned');

    // An address ban is for unauthenticated traffic: a POP with a verified certificate behind
    // that (shared) address is served; a client without one is cut.
    t.equal((await post(guard.port, pki.caFile, { cert: denver, localAddress: '127.0.0.4' })).status, 200, 'a POP with a verified certificate from the banned address is served');
    const refused = await rawRequest(guard.port, pki.caFile, 'x', { localAddress: '127.0.0.4', timeoutMs: 2000 }).catch(() => ({ status: 0 }));
    t.equal(refused.status, 0, 'a client without a certificate from there is cut at the TLS layer');
    const [cut] = await waitFor((e) => e.event.reason === 'LIMIT_BANNED_CONNECTION', 1);
    t.equal(cut!.source.ip, '127.0.0.4');
    t.equal((await post(guard.port, pki.caFile, { cert: denver, localAddress: '127.0.0.5' })).status, 200, 'the same POP from elsewhere is served');

    const list = await admin(guard.adminPort, 'GET', '/bans');
    t.equal(list.status, 200);
    t.same(list.body.bans.map((b: any) => b.key), ['addr:127.0.0.4']);
    t.equal(list.body.bans[0].reason, 'TLS_CLIENT_CERT_MISSING');
    t.ok(events.some((e) => e.event.reason === 'LIMIT_BANS_LISTED' && e.source.ip === '127.0.0.1'), 'listing is audited');

    t.equal((await admin(guard.adminPort, 'DELETE', '/bans/not-a-key')).status, 400);
    const lifted = await admin(guard.adminPort, 'DELETE', `/bans/${encodeURIComponent('addr:127.0.0.4')}`);
    t.equal(lifted.status, 200);
    t.equal(lifted.body.lifted.key, 'addr:127.0.0.4');
    const [liftEvent] = await waitFor((e) => e.event.reason === 'LIMIT_BAN_LIFTED' && e.http.response.status_code === 200, 1);
    t.equal(liftEvent!.event.kind, 'alert');
    t.equal(liftEvent!.replguard.ban.key, 'addr:127.0.0.4');
    t.equal((await admin(guard.adminPort, 'DELETE', '/bans/addr:127.0.0.4')).status, 404, 'lifting twice: not banned any more');
    t.equal((await post(guard.port, pki.caFile, { cert: denver, localAddress: '127.0.0.4' })).status, 200, 'served again');
  });

  await t.test('ten failures of an authenticated POP ban it (not the address it shares) until the ban ends', async (t) => {
    // A keep-alive connection opened before the ban: its next request meets the step-2 check.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());
    t.equal((await post(guard.port, pki.caFile, { cert: calgary, localAddress: '127.0.0.6', agent })).status, 200);

    for (let i = 0; i < 10; i++) {
      const r = await post(guard.port, pki.caFile, { cert: calgary, localAddress: '127.0.0.2', path: '/api/replication/../apply' });
      t.equal(r.status, 400);
    }
    const [popBan] = await waitFor(started('pop:calgary-01'), 1);
    t.ok(popBan, 'the POP is banned');
    t.notOk(events.some(started('addr:127.0.0.2')), 'its address is not: the failures are the verified POP\'s');
    t.equal((await post(guard.port, pki.caFile, { cert: denver, localAddress: '127.0.0.2' })).status, 200, 'another POP behind that address is served');
    t.equal(popBan!.replguard.pop, 'calgary-01');
    t.equal(popBan!.replguard.ban.trigger, 'ROUTE_TARGET_INVALID');
    t.equal(Date.parse(popBan!.replguard.ban.until) - Date.parse(popBan!.replguard.ban.since), HOUR, 'limits.ban_duration defaults to 1h');

    const before = backup.received().length;
    t.equal((await post(guard.port, pki.caFile, { cert: calgary, localAddress: '127.0.0.3' })).status, 0, 'the banned POP is cut at the TLS layer from any address');
    const [cut] = await waitFor((e) => e.event.reason === 'LIMIT_BANNED_CONNECTION' && e.source.ip === '127.0.0.3', 1);
    t.match(cut!.replguard.detail, /^pop:calgary-01 /);
    const onOpen = await post(guard.port, pki.caFile, { cert: calgary, localAddress: '127.0.0.6', agent });
    t.equal(onOpen.status, 403, 'and refused with 403 on a connection it already had');
    const [refusal] = await waitFor((e) => e.event.reason === 'LIMIT_BANNED', 1);
    t.equal(refusal!.http.response.status_code, 403);
    t.equal(refusal!.replguard.pop, undefined, 'refused before authentication');
    t.equal((await post(guard.port, pki.caFile, { cert: denver, localAddress: '127.0.0.3' })).status, 200, 'another POP from the same address is served');
    t.equal(backup.received().length, before + 1, 'only that one reached the backup');

    skew = HOUR + 1000;
    const [popEnd] = await waitFor(ended('pop:calgary-01'), 1);
    t.ok(popEnd, 'ban ended event');
    t.equal(popEnd!.event.kind, 'alert');
    t.equal((await post(guard.port, pki.caFile, { cert: calgary, localAddress: '127.0.0.3' })).status, 200, 'served again once the ban has ended');
    t.equal(events.filter(ended('pop:calgary-01')).length, 1, 'the end is reported once');
  });
});

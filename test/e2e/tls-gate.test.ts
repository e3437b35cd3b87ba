// The TLS gate through the real program (Node and Deno: the harness picks), for what an attack
// run got through: one address holding every connection slot, banned and malformed clients that
// still cost a handshake and an audit line each, a POP behind a banned shared address, and the
// negotiated cipher. Assertions count events and metrics, never time.
import { connect as netConnect, type Socket } from 'node:net';
import { Agent } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { adminGet } from '../helpers/admin.ts';
import { baseConfig, startGuard, TEST_LIMITS, type AuditRecord, type GuardProcess } from '../helpers/guard.ts';
import { clientTls, makePki } from '../helpers/pki.ts';
import { parsePrometheusText, sampleValue } from '../helpers/prometheus.ts';
import { rawTcp } from '../helpers/raw-tls.ts';
import { post } from '../helpers/tls-client.ts';
import { startBackup } from '../helpers/upstream.ts';

const pki = makePki([]);
const calgary = pki.client('calgary-01');

/** A TCP connection that sends nothing; `closed` says whether the guard closed it within `ms`. */
function idle(port: number, localAddress: string): { socket: Socket; closedWithin(ms: number): Promise<boolean> } {
  const socket = netConnect({ host: '127.0.0.1', port, localAddress });
  socket.on('error', () => undefined);
  let closed = false;
  const done = new Promise<void>((resolve) => socket.once('close', () => {
    closed = true;
    resolve();
  }));
  return {
    socket,
    async closedWithin(ms) {
      await Promise.race([done, sleep(ms)]);
      return closed;
    },
  };
}

/** Refusal events of one reason from one address, and the refusals they stand for. */
function refusals(guard: GuardProcess, reason: string, ip: string): { events: AuditRecord[]; count: number } {
  const events = guard.audit().filter((e) => e.event.reason === reason && e.source?.ip === ip);
  // A plain event stands for itself; a summary for the `repeated` refusals it replaced.
  return { events, count: events.reduce((n, e) => n + (e.replguard.repeated ?? 1), 0) };
}

async function metric(guard: GuardProcess, reason: string): Promise<number> {
  const scrape = await adminGet(guard.adminPort, '/metrics');
  return sampleValue(parsePrometheusText(scrape.body), 'replguard_tls_refusals_total', { reason });
}

t.test('one address holding its cap of unauthenticated connections keeps no POP out', async (t) => {
  const backup = await startBackup();
  // 20 connections: 10 may be unauthenticated, 5 from one address.
  const guard = await startGuard(baseConfig(pki, backup.url, { limits: { ...TEST_LIMITS, max_connections: 20, handshake_timeout: '4s' } }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  // A POP's keep-alive connection from before the attack.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  t.equal((await post(guard.port, pki.caFile, { cert: calgary, localAddress: '127.0.0.9', agent })).status, 200);

  const held = Array.from({ length: 20 }, () => idle(guard.port, '127.0.0.5'));
  const cut = await Promise.all(held.map((h) => h.closedWithin(1000)));
  t.equal(cut.filter((c) => !c).length, 5, 'the address holds exactly its cap (max_unauthenticated_per_address: half of 10)');
  t.equal(cut.filter(Boolean).length, 15, 'the rest are cut at accept');
  // Reopened as they are cut, from the same address: still cut.
  const again = Array.from({ length: 10 }, () => idle(guard.port, '127.0.0.5'));
  t.same(await Promise.all(again.map((h) => h.closedWithin(1000))), Array(10).fill(true), 'reopened ones are cut too');

  t.equal((await post(guard.port, pki.caFile, { cert: calgary, localAddress: '127.0.0.10' })).status, 200, 'a POP from another address is served');
  t.equal((await post(guard.port, pki.caFile, { cert: calgary, localAddress: '127.0.0.9', agent })).status, 200, 'and on its open connection');

  // A second address fills the rest of the unauthenticated pool: new connections from anyone
  // else wait, but the POP's authenticated connection is not part of that pool.
  const second = Array.from({ length: 5 }, () => idle(guard.port, '127.0.0.6'));
  t.same(await Promise.all(second.map((h) => h.closedWithin(500))), Array(5).fill(false), 'a second address takes the other 5');
  const third = idle(guard.port, '127.0.0.7');
  t.ok(await third.closedWithin(1000), 'the unauthenticated pool is full: cut at accept');
  t.equal((await post(guard.port, pki.caFile, { cert: calgary, localAddress: '127.0.0.9', agent })).status, 200, 'the authenticated connection is still served');
  t.equal((await post(guard.port, pki.caFile, { cert: calgary, localAddress: '127.0.0.10' })).status, 200, 'and a new connection from an address a POP verified from lately');

  // The handshake deadline frees the slots.
  t.ok(await held[cut.indexOf(false)]!.closedWithin(6000), 'an idle connection is cut at limits.handshake_timeout');
  await sleep(200);
  t.equal((await post(guard.port, pki.caFile, { cert: calgary, localAddress: '127.0.0.10' })).status, 200, 'served again from a fresh connection');
  for (const h of [...held, ...again, ...second, third]) h.socket.destroy();

  const perAddress = refusals(guard, 'LIMIT_ADDRESS_CONNECTIONS_EXCEEDED', '127.0.0.5');
  t.equal(perAddress.events.length, 1, 'repeated refusals from one address are one event within the window');
  t.equal(await metric(guard, 'LIMIT_ADDRESS_CONNECTIONS_EXCEEDED'), 25, 'and each is counted in the metrics');
  t.equal(await metric(guard, 'LIMIT_CONNECTIONS_EXCEEDED'), 1);
  const timeouts = await guard.waitForEvents((e) => e.event.reason === 'TLS_HANDSHAKE_TIMEOUT', 1);
  t.ok(timeouts[0]!.source.port > 0, 'the refusal names the client port');
});

t.test('a banned address is cut at accept and audited by the window; a POP behind it is still served', async (t) => {
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    limits: { ...TEST_LIMITS, ban_after_failures: 3 },
    audit: { repeat_window: '3s' },
  }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  const attacker = '127.0.0.11';
  for (let i = 0; i < 3; i++) await rawTcp(guard.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 5000, attacker);
  const [ban] = await guard.waitForEvents((e) => e.event.reason === 'LIMIT_BAN_STARTED', 1);
  let timedOut = 0;
  t.equal(ban!.replguard.ban.key, `addr:${attacker}`, 'three malformed ClientHellos ban the address');
  t.equal(ban!.replguard.ban.trigger, 'TLS_HANDSHAKE_MALFORMED');

  // 300 TLS clients from the banned address: none gets a request in; almost none a handshake.
  const TOTAL = 300;
  let handshakes = 0;
  const started = Date.now();
  for (let i = 0; i < TOTAL; i += 20) {
    await Promise.all(Array.from({ length: 20 }, () => new Promise<void>((resolve) => {
      // No verified certificate (one would make this a POP, which an address ban does not cut).
      const socket = tlsConnect({ host: '127.0.0.1', port: guard.port, localAddress: attacker, ...clientTls(pki.caFile) });
      socket.once('secureConnect', () => {
        handshakes += 1;
      });
      socket.setTimeout(5000, () => { // the guard closes it; never hang the test on it
        timedOut += 1;
        socket.destroy();
      });
      socket.on('error', () => resolve());
      socket.once('close', () => resolve());
    })));
  }
  const seconds = Math.ceil((Date.now() - started) / 1000);
  t.equal(timedOut, 0, 'the guard closed every one of them');
  t.ok(handshakes <= seconds + 1, `${handshakes} handshakes in ${seconds} s: at most one a second gets past accept`);
  t.equal((await post(guard.port, pki.caFile, { cert: calgary, localAddress: '127.0.0.12' })).status, 200, 'a POP from another address is served meanwhile');

  // The window ends (and the next once-a-second sweep writes its summary).
  await guard.waitForEvents((e) => e.event.reason === 'LIMIT_BANNED_CONNECTION' && e.source?.ip === attacker && e.replguard.repeated > 0, 1, 8000);
  const cut = refusals(guard, 'LIMIT_BANNED_CONNECTION', attacker);
  const counted = await metric(guard, 'LIMIT_BANNED_CONNECTION');
  t.equal(cut.count, TOTAL, 'every client was refused, and the audit trail accounts for each');
  t.equal(counted, TOTAL, 'the metrics count each one (the probe handshake too)');
  t.ok(cut.events.length <= 2 * (seconds / 3 + 2), `in ${cut.events.length} events, not ${TOTAL}`);
  t.ok(cut.events.some((e) => e.replguard.repeated > 0 && e.event.start && e.event.end), 'a summary event says how many and when');
  t.equal(backup.received().length, 1, 'only the POP from the other address reached the backup');

  // A POP with a verified certificate behind the banned (shared) address gets through within a
  // second (the address's one handshake), and from then on at once.
  let status = 0;
  for (let i = 0; i < 30 && status !== 200; i++) {
    status = (await post(guard.port, pki.caFile, { cert: calgary, localAddress: attacker })).status;
    if (status !== 200) await sleep(100);
  }
  t.equal(status, 200, 'the POP behind the banned address is served');
  t.equal((await post(guard.port, pki.caFile, { cert: calgary, localAddress: attacker })).status, 200, 'and its next connection at once');
  // The address is exempt at accept now (a POP verified from it); the handshake still refuses
  // anything that is not TLS (Node closes, Deno sends an alert first): no HTTP answer either way.
  t.notMatch((await rawTcp(guard.port, 'GET / HTTP/1.1\r\n\r\n', 3000, attacker)).text, /HTTP\//, 'traffic without TLS from there is still refused');
});

t.test('the negotiated protocol and cipher: forward-secret AEAD only, the same on both runtimes', async (t) => {
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    tls: { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.caFile, min_version: 'TLSv1.2' },
  }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  const handshake = (options: Record<string, unknown>) => new Promise<{ ok: boolean; cipher?: string }>((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: guard.port, ...clientTls(pki.caFile, calgary), ...options });
    socket.once('secureConnect', () => {
      const cipher = socket.getCipher().standardName;
      socket.destroy();
      resolve({ ok: true, cipher });
    });
    socket.on('error', () => resolve({ ok: false }));
  });
  const ecdhe = await handshake({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' });
  t.same(ecdhe, { ok: true, cipher: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' }, 'TLS 1.2 with an ECDHE AEAD suite (tls.min_version: TLSv1.2)');
  t.notOk((await handshake({ maxVersion: 'TLSv1.2', ciphers: 'AES128-GCM-SHA256' })).ok, 'RSA key exchange (no forward secrecy): refused');
  t.notOk((await handshake({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-SHA256' })).ok, 'CBC: refused');
  t.ok((await handshake({})).ok, 'TLS 1.3');
  const refused = await guard.waitForEvents((e) => e.event.reason === 'TLS_HANDSHAKE_FAILED', 1);
  t.ok(refused.length >= 1, 'audited');
});

// Size limits and timeouts through real sockets: 413 declared and streamed (connection closed,
// nothing upstream), slowloris cut at the header timeout while another client is served, a
// silent TLS client cut too, and the connection cap.
import { connect as tcpConnect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { baseConfig, startGuard } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { collect, post, rawRequest, tlsConnect } from '../helpers/tls-client.ts';
import { startBackup } from '../helpers/upstream.ts';

const PATH = '/api/replication/apply';

t.test('limits and timeouts', async (t) => {
  const pki = makePki([]);
  const cert = pki.client('calgary-01');
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    limits: { max_body_bytes: '1KiB', header_timeout: '2s', handshake_timeout: '2s', request_timeout: '30s', max_connections: 4, ban_after_failures: 1000 },
  }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });
  const eventsAfter = (before: number) => guard.audit().slice(before);

  await t.test('a declared Content-Length over the limit: 413 before any body byte, connection closed', async (t) => {
    const before = guard.audit().length;
    // Only the head is sent: the answer must come without the body ever arriving.
    const reply = await rawRequest(guard.port, pki.caFile, `POST ${PATH} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1025\r\n\r\n`, { cert });
    t.equal(reply.status, 413);
    t.ok(reply.closedByServer);
    const [event] = await guard.waitForEvents((e) => eventsAfter(before).includes(e), 1);
    t.equal(event!.event.reason, 'BODY_TOO_LARGE');
    t.equal(backup.received().length, 0);
  });

  await t.test('a chunked body crossing the limit: 413, connection closed, nothing upstream', async (t) => {
    const before = guard.audit().length;
    const socket = await tlsConnect(guard.port, pki.caFile, { cert });
    const result = collect(socket, 8000);
    socket.write(`POST ${PATH} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n`);
    const chunk = `200\r\n${'x'.repeat(0x200)}\r\n`;
    for (let i = 0; i < 4 && !socket.destroyed; i++) {
      socket.write(chunk);
      await sleep(50);
    }
    const reply = await result;
    t.equal(reply.status, 413);
    t.ok(reply.closedByServer, 'closed without waiting for the end of the body');
    const [event] = await guard.waitForEvents((e) => eventsAfter(before).includes(e), 1);
    t.equal(event!.event.reason, 'BODY_TOO_LARGE');
    t.equal(backup.received().length, 0);
  });

  await t.test('slowloris: one header byte a second is cut at the header timeout; another client is served meanwhile', async (t) => {
    const before = guard.audit().length;
    const slow = await tlsConnect(guard.port, pki.caFile, { cert });
    const slowResult = collect(slow, 15_000);
    const text = `POST ${PATH} HTTP/1.1\r\nHost: localhost\r\nX-Slow: ${'a'.repeat(40)}\r\n`;
    let sent = 0;
    const drip = setInterval(() => {
      if (!slow.destroyed && sent < text.length) slow.write(text[sent++]!);
    }, 1000);
    t.teardown(() => clearInterval(drip));
    await sleep(1200);
    const other = await post(guard.port, pki.caFile, { cert });
    t.equal(other.status, 200, 'another client is served while the slow one drips');
    const reply = await slowResult;
    clearInterval(drip);
    t.ok(reply.closedByServer, 'the guard closed the slow connection');
    t.equal(reply.status, 408);
    t.ok(sent < text.length, `cut after ${sent} of ${text.length} bytes`);
    const events = await guard.waitForEvents((e) => eventsAfter(before).includes(e) && e.event.reason === 'HTTP_TIMEOUT', 1);
    t.equal(events[0]!.http.response.status_code, 408);
    await sleep(200);
    t.same(eventsAfter(before).map((e) => e.event.reason).sort(), ['FORWARDED', 'HTTP_TIMEOUT'], 'one event each, the timeout not reported twice');
  });

  await t.test('a client that never starts its TLS handshake is cut at limits.handshake_timeout', async (t) => {
    const socket = tcpConnect(guard.port, '127.0.0.1');
    const closed = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      socket.on('error', () => undefined);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    socket.destroy();
    t.ok(closed, 'closed by the guard');
    const [event] = await guard.waitForEvents((e) => e.event.reason === 'TLS_HANDSHAKE_TIMEOUT', 1);
    t.equal(event!.source.ip, '127.0.0.1');
    t.ok(event!.source.port > 0, 'the client port is known before any TLS');
  });

  await t.test('limits.max_connections: connections past the cap are dropped; freed slots serve again', async (t) => {
    const held = [];
    for (let i = 0; i < 4; i++) held.push(await tlsConnect(guard.port, pki.caFile, { cert }));
    let refused = false;
    try {
      const extra = await tlsConnect(guard.port, pki.caFile, { cert });
      // Accepted by the kernel, then dropped by the guard before the handshake completes.
      refused = (await collect(extra, 3000)).closedByServer;
    } catch {
      refused = true;
    }
    t.ok(refused, 'the fifth connection is refused');
    const [event] = await guard.waitForEvents((e) => e.event.reason === 'LIMIT_CONNECTIONS_EXCEEDED', 1);
    t.equal(event!.event.action, 'tls-connection', 'cut at accept, audited');
    for (const s of held) s.destroy();
    await sleep(100);
    const reply = await post(guard.port, pki.caFile, { cert });
    t.equal(reply.status, 200);
  });
});

// The reloadable TLS context on a real TLS server: new handshakes get the reloaded certificate,
// invalid material is refused with the set in force kept, the trust fingerprint follows the CA
// bundle and CRL only, and a session issued before a CA change cannot be resumed after it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect, createServer, type TLSSocket } from 'node:tls';
import t from 'tap';
import { createOperationalLog } from '../../../src/log/operational.ts';
import { DevCa } from '../../../src/tls/dev-ca.ts';
import { createReloadableTlsContext } from '../../../src/tls/reloadable-context.ts';

const quietLog = () => createOperationalLog('debug', new Writable({ write: (_c, _e, done) => done() }) as never);
const ca = DevCa.create('unit CA');
const otherCa = DevCa.create('unit CA 2');
const server1 = ca.issueServer(['localhost']);
const server2 = ca.issueServer(['localhost']);
const client = ca.issueClient('calgary-01');
const dir = mkdtempSync(join(tmpdir(), 'replguard-tlsctx-'));
const files = { cert: join(dir, 'server.crt'), key: join(dir, 'server.key'), ca: join(dir, 'ca.crt') };
const write = (cert: string, key: string, caPem: string) => {
  writeFileSync(files.cert, cert);
  writeFileSync(files.key, key, { mode: 0o600 });
  writeFileSync(files.ca, caPem);
};
const tlsConfig = { cert_file: files.cert, key_file: files.key, client_ca_file: files.ca, min_version: 'TLSv1.3' as const };

async function startTlsServer() {
  write(server1.certPem, server1.keyPem, ca.certPem);
  const context = createReloadableTlsContext(tlsConfig, { log: quietLog(), now: Date.now, intervalMs: 0, watch: false });
  const server = createServer({ ...context.current().secureContext, requestCert: true, rejectUnauthorized: false }, (socket) => {
    socket.end(JSON.stringify({ authorized: socket.authorized, resumed: socket.isSessionReused() }));
  });
  context.serve(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { context, server, port: (server.address() as { port: number }).port };
}

interface Seen { sha256: string; authorized: boolean; resumed: boolean; session: Buffer | undefined }

function handshake(port: number, session?: Buffer): Promise<Seen> {
  return new Promise((resolve, reject) => {
    let newSession: Buffer | undefined;
    const socket: TLSSocket = connect({ port, host: '127.0.0.1', servername: 'localhost', ca: ca.certPem, cert: client.certPem, key: client.keyPem, ...(session ? { session } : {}) });
    let text = '';
    let sha256 = '';
    socket.on('session', (s: Buffer) => (newSession = s));
    socket.on('secureConnect', () => (sha256 = socket.getPeerCertificate().fingerprint256));
    socket.on('data', (d) => (text += d));
    socket.on('end', () => {
      const verdict = JSON.parse(text) as { authorized: boolean; resumed: boolean };
      resolve({ sha256, ...verdict, session: newSession });
    });
    socket.on('error', reject);
  });
}


t.test('rotation, refusal, trust fingerprint', async (t) => {
  const { context, server, port } = await startTlsServer();
  t.teardown(() => {
    context.close();
    server.close();
  });
  const { X509Certificate } = await import('node:crypto');
  const sha = (pem: string) => new X509Certificate(pem).fingerprint256;

  t.equal((await handshake(port)).sha256, sha(server1.certPem));
  const trust = context.trustFingerprint();

  write(server2.certPem, server2.keyPem, ca.certPem);
  t.same(context.reload('SIGHUP'), { changed: true });
  t.equal((await handshake(port)).sha256, sha(server2.certPem), 'a new handshake gets the new certificate');
  t.equal(context.trustFingerprint(), trust, 'a new server certificate is not a trust change');

  write(server1.certPem, server2.keyPem, ca.certPem);
  const refused = context.reload('SIGHUP');
  t.equal(refused.changed, false);
  t.match(refused.error, /tls\.key_file/, 'key not matching: refused, naming the key path');
  t.equal((await handshake(port)).sha256, sha(server2.certPem), 'the set in force stays');

  write(server2.certPem, server2.keyPem, ca.certPem + otherCa.certPem);
  t.same(context.reload('SIGHUP'), { changed: true });
  t.not(context.trustFingerprint(), trust, 'a new CA bundle is a trust change');
});

t.test('a session from before a CA change is not resumed after it', async (t) => {
  const { context, server, port } = await startTlsServer();
  t.teardown(() => {
    context.close();
    server.close();
  });
  const first = await handshake(port);
  t.ok(first.authorized && first.session, 'authorized, with a session ticket');
  const again = await handshake(port, first.session);
  t.ok(again.resumed && again.authorized, 'the ticket resumes while nothing changed (the check below can fail)');

  write(server1.certPem, server1.keyPem, otherCa.certPem);
  t.same(context.reload('SIGHUP'), { changed: true }, 'the client CA is replaced');
  const after = await handshake(port, first.session);
  t.same([after.resumed, after.authorized], [false, false], 'full handshake, and the client is no longer trusted');
});

t.test('the periodic check reloads without a trigger', async (t) => {
  write(server1.certPem, server1.keyPem, ca.certPem);
  const context = createReloadableTlsContext(tlsConfig, { log: quietLog(), now: Date.now, intervalMs: 50, watch: false });
  t.teardown(() => context.close());
  const before = context.current().serverCertificate.fingerprint256;
  write(server2.certPem, server2.keyPem, ca.certPem);
  const end = Date.now() + 5000;
  while (context.current().serverCertificate.fingerprint256 === before && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  t.not(context.current().serverCertificate.fingerprint256, before, 'picked up by the timer');
});

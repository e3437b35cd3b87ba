// TLS material reloads without a restart, under a steady stream of authorised requests: the
// server certificate (new handshakes see the new one), the client CA bundle (overlap, then the
// old CA removed: refused at the handshake, also when resuming a session, and on a connection
// that was already open), the CRL (the same three ways); and invalid new material (key not
// matching, garbage PEM, expired) leaves the guard serving with the old set.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DevCa } from '../../src/tls/dev-ca.ts';
import { call } from '../helpers/client.ts';
import { baseConfig, startGuard } from '../helpers/guard.ts';
import { makePki, type CertFiles } from '../helpers/pki.ts';
import { atomicWrite, keepAliveClient, probeTls, projectedSecret, reloadErrors, reloads, sighup, startTraffic, waitFor } from '../helpers/reload.ts';
import { startBackup } from '../helpers/upstream.ts';

const pki = makePki([]);
const dir = mkdtempSync(join(tmpdir(), 'replguard-reload-tls-'));
const calgary = pki.client('calgary-01');
const ca2 = DevCa.create('replguard test CA 2');
const calgaryCa2: CertFiles = (() => {
  const issued = ca2.issueClient('calgary-01');
  return { cert: atomicWrite(join(dir, 'calgary-ca2.crt'), issued.certPem, 0o644), key: atomicWrite(join(dir, 'calgary-ca2.key'), issued.keyPem) };
})();
const server1 = { certPem: readFileSync(pki.server.cert, 'utf8'), keyPem: readFileSync(pki.server.key, 'utf8') };
const server2 = pki.ca.issueServer(['localhost']);
const sha = (pem: string) => new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
const connectionRefusals = (guard: { audit(): Array<Record<string, any>> }, reason: string) => guard.audit().filter((e) => e.event.reason === reason).length;

t.test('rotation under a steady stream: server certificate, then the client CA with overlap', async (t) => {
  const backup = await startBackup();
  // The server certificate and key as a mounted Kubernetes Secret; the CA bundle a plain file.
  const secret = projectedSecret(join(dir, 'server-tls'), { 'tls.crt': server1.certPem, 'tls.key': server1.keyPem });
  const caBundle = atomicWrite(join(dir, 'clients-ca.crt'), pki.ca.certPem, 0o644);
  const guard = await startGuard(baseConfig(pki, backup.url, {
    tls: { cert_file: secret.path('tls.crt'), key_file: secret.path('tls.key'), client_ca_file: caBundle },
    auth: { methods: ['mtls'], reload_interval: '1h' },
    // Each refusal its own event: this file counts them (aggregation is tested in tls-gate.test.ts).
    audit: { repeat_window: '0s' },
  }));
  let clientCert = calgary;
  const traffic = startTraffic(guard.port, pki.caFile, () => ({ cert: clientCert }));
  t.teardown(async () => {
    await traffic.stop();
    await guard.stop();
    await backup.stop();
  });
  await traffic.more(3);

  await t.test('server certificate: the kubelet swaps ..data, new handshakes see the new one', async (t) => {
    const before = await probeTls(guard.port, pki.caFile, calgary);
    t.same(before.ok && before.serverSha256, sha(server1.certPem), 'the first certificate before');
    const count = reloads(guard, 'tls').length;
    secret.update({ 'tls.crt': server2.certPem, 'tls.key': server2.keyPem });
    t.ok(await waitFor(() => reloads(guard, 'tls').length === count + 1), 'reloaded once');
    t.equal(reloads(guard, 'tls').at(-1)!.trigger, 'file change', 'by the folder watch, no signal needed');
    const after = await probeTls(guard.port, pki.caFile, calgary);
    t.same(after.ok && after.serverSha256, sha(server2.certPem), 'a new handshake sees the new certificate');
    t.ok(await traffic.more(3));
    t.same(traffic.failures, [], 'no request failed');
  });

  await t.test('client CA: overlap bundle, clients move, old CA removed', async (t) => {
    t.notOk((await probeTls(guard.port, pki.caFile, calgaryCa2)).ok, 'a new-CA client is refused before the overlap');

    let count = reloads(guard, 'tls').length;
    atomicWrite(caBundle, pki.ca.certPem + ca2.certPem, 0o644);
    await sighup(guard, 'tls');
    t.ok(await waitFor(() => reloads(guard, 'tls').length === count + 1), 'overlap bundle in force');
    t.equal((await call(guard.port, pki.caFile, { cert: calgaryCa2 })).status, 200, 'new-CA client accepted');
    t.equal((await call(guard.port, pki.caFile, { cert: calgary })).status, 200, 'old-CA client still accepted');

    // The primary moves to its new certificate.
    clientCert = calgaryCa2;
    t.ok(await traffic.more(3), 'both loops are on the new certificate');
    // An old-CA client that keeps a connection open and a TLS session across the removal.
    const lingering = keepAliveClient(guard.port, pki.caFile, calgary);
    t.teardown(() => lingering.close());
    t.equal((await lingering.post()).status, 200);
    const held = await probeTls(guard.port, pki.caFile, calgary);
    t.ok(held.ok && held.session, 'a resumable session was issued');

    const untrusted = connectionRefusals(guard, 'TLS_CLIENT_CERT_UNTRUSTED');
    count = reloads(guard, 'tls').length;
    atomicWrite(caBundle, ca2.certPem, 0o644);
    await sighup(guard, 'tls');
    t.ok(await waitFor(() => reloads(guard, 'tls').length === count + 1), 'old CA removed');

    t.same(await probeTls(guard.port, pki.caFile, calgary), { ok: false, error: 'closed by the server' }, 'an old-CA client is refused at the handshake');
    const resumed = await probeTls(guard.port, pki.caFile, calgary, held.session);
    t.notOk(resumed.ok, 'also when it offers the session it got before the removal');
    t.ok(await guard.waitForEvents((e) => e.event.reason === 'TLS_CLIENT_CERT_UNTRUSTED', untrusted + 2), 'both audited as TLS_CLIENT_CERT_UNTRUSTED');

    const forwarded = backup.received().length;
    const last = await lingering.post();
    t.same([last.status, last.reused, last.connection], [401, true, 'close'], 'the open old-CA connection gets no further request through, and is closed');
    const [refusal] = await guard.waitForEvents((e) => e.event.reason === 'TLS_CLIENT_CERT_UNTRUSTED' && e.event.action === 'replication-request', 1);
    t.equal(refusal!.http.response.status_code, 401, 'audited as a refused request with the reason');
    t.ok(backup.received().slice(forwarded).every((r) => r.headers['x-replguard-client-cert-sha256'] !== sha(readFileSync(calgary.cert, 'utf8'))), 'nothing of it reached the backup');
    await t.rejects(lingering.post(), 'and cannot reconnect');

    t.ok(await traffic.more(3));
    t.same(traffic.failures, [], 'no request of the stream failed');
    t.ok(traffic.sent() > 20, `the stream kept flowing (${traffic.sent()} requests)`);
  });
});

t.test('invalid new material leaves the guard serving with the old set; a CRL reload refuses a revoked client', async (t) => {
  const backup = await startBackup();
  const cert = atomicWrite(join(dir, 'b-server.crt'), server1.certPem, 0o644);
  const key = atomicWrite(join(dir, 'b-server.key'), server1.keyPem);
  const crl = atomicWrite(join(dir, 'b-clients.crl'), readFileSync(pki.crl([]), 'utf8'), 0o644);
  const guard = await startGuard(baseConfig(pki, backup.url, {
    tls: { cert_file: cert, key_file: key, client_ca_file: pki.caFile, crl_file: crl },
    auth: { methods: ['mtls'], reload_interval: '1h' },
    audit: { repeat_window: '0s' },
  }));
  const traffic = startTraffic(guard.port, pki.caFile, () => ({ cert: calgary }));
  t.teardown(async () => {
    await traffic.stop();
    await guard.stop();
    await backup.stop();
  });

  const other = pki.ca.issueServer(['localhost']);
  const expired = pki.ca.issue({ commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], usage: 'server', notBefore: new Date(Date.now() - 3 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
  const cases: Array<[string, string, string]> = [
    ['key not matching the certificate', server2.certPem, server1.keyPem],
    ['garbage PEM', '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n', server1.keyPem],
    ['expired certificate', expired.certPem, expired.keyPem],
    ['a key file that is not a key', other.certPem, 'not a key\n'],
  ];
  for (const [name, certPem, keyPem] of cases) {
    await t.test(name, async (t) => {
      const errors = reloadErrors(guard, 'tls').length;
      const swaps = reloads(guard, 'tls').length;
      atomicWrite(cert, certPem, 0o644);
      atomicWrite(key, keyPem);
      await sighup(guard, 'tls');
      t.ok(await waitFor(() => reloadErrors(guard, 'tls').length > errors), 'an operational error is logged');
      t.match(reloadErrors(guard, 'tls').at(-1)!.problems, /tls\.(cert|key)_file/, 'naming the key path');
      t.equal(reloads(guard, 'tls').length, swaps, 'nothing was swapped in');
      t.equal(guard.child.exitCode, null, 'still running');
      const probe = await probeTls(guard.port, pki.caFile, calgary);
      t.same(probe.ok && probe.serverSha256, sha(server1.certPem), 'new handshakes still get the old certificate');
      t.equal((await call(guard.port, pki.caFile, { cert: calgary })).status, 200, 'and are served');
    });
  }

  await t.test('the good set back: nothing to swap (same as in force)', async (t) => {
    const swaps = reloads(guard, 'tls').length;
    atomicWrite(cert, server1.certPem, 0o644);
    atomicWrite(key, server1.keyPem);
    await sighup(guard, 'tls');
    const line = guard.operational().filter((l) => l.source === 'tls' && l.trigger === 'SIGHUP').at(-1)!;
    t.equal(line.changed, false, 'unchanged');
    t.equal(reloads(guard, 'tls').length, swaps);
  });

  await t.test('a new CRL revokes a client certificate at the next handshake and on its open connection', async (t) => {
    const victim = pki.client('calgary-01');
    t.ok((await probeTls(guard.port, pki.caFile, victim)).ok, 'accepted before');
    const open = keepAliveClient(guard.port, pki.caFile, victim);
    t.teardown(() => open.close());
    t.equal((await open.post()).status, 200, 'a keep-alive connection opened before the CRL');
    const revoked = connectionRefusals(guard, 'TLS_CLIENT_CERT_REVOKED');
    const swaps = reloads(guard, 'tls').length;
    atomicWrite(crl, readFileSync(pki.crl([victim]), 'utf8'), 0o644);
    await sighup(guard, 'tls');
    t.ok(await waitFor(() => reloads(guard, 'tls').length === swaps + 1), 'the new CRL is in force');
    t.notOk((await probeTls(guard.port, pki.caFile, victim)).ok, 'refused at the handshake');
    const forwarded = backup.received().length;
    const next = await open.post();
    t.same([next.status, next.reused, next.connection], [401, true, 'close'], 'its next request on the open connection is refused, and the connection closed');
    const victimSha = sha(readFileSync(victim.cert, 'utf8'));
    t.notOk(backup.received().slice(forwarded).some((r) => r.headers['x-replguard-client-cert-sha256'] === victimSha), 'nothing of it reached the backup (the stream of another certificate goes on)');
    t.ok(await guard.waitForEvents((e) => e.event.reason === 'TLS_CLIENT_CERT_REVOKED', revoked + 2), 'both audited as TLS_CLIENT_CERT_REVOKED');
  });

  t.ok(await traffic.more(2));
  t.same(traffic.failures, [], 'no request of the stream failed through all of it');
});

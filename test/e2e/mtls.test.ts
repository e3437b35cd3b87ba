// The guard in front of the real demo backup: who gets through, and what the upstream sees.
import t from 'tap';
import { makePki } from '../helpers/pki.ts';
import { startBackup } from '../helpers/upstream.ts';
import { baseConfig, startGuard } from '../helpers/guard.ts';
import { call, refusedAtConnection } from '../helpers/client.ts';
import { adminGet } from '../helpers/admin.ts';
import { parsePrometheusText } from '../helpers/prometheus.ts';

const DAY = 86_400_000;

t.test('mTLS identity', async (t) => {
  const pki = makePki([]);
  const good = pki.client('calgary-01');
  const spiffe = pki.client('denver-02', { commonName: 'not-used', dnsNames: [], uris: ['spiffe://replguard.test/pop/denver-02'] });
  const dnsPeer = pki.client('ignored-cn', { commonName: 'ignored-cn', dnsNames: ['oslo-03.pops.example'], uris: [] });
  const pinned = pki.client('lima-04');
  const pinnedOther = pki.client('lima-04');
  const unknownPop = pki.client('tokyo-05');
  const expired = pki.client('calgary-01', { notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
  const revoked = pki.client('calgary-01');
  const foreign = pki.foreignClient('calgary-01');
  const crl = pki.crl([revoked]);
  const { X509Certificate } = await import('node:crypto');
  const { readFileSync } = await import('node:fs');
  const pin = new X509Certificate(readFileSync(pinned.cert)).fingerprint256;

  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    tls: { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.caFile, crl_file: crl },
    peers: [
      { id: 'calgary-01', cert: { cn: 'calgary-01' } },
      { id: 'denver-02', cert: { uri_san: 'spiffe://replguard.test/pop/denver-02' } },
      { id: 'oslo-03', cert: { dns_san: 'OSLO-03.pops.example' } },
      { id: 'lima-04', cert: { cn: 'lima-04' }, cert_sha256: [pin] },
    ],
  }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });

  await t.test('the CRL\'s nextUpdate is a metric, by issuing CA', async (t) => {
    const { execFileSync } = await import('node:child_process');
    const nextUpdate = execFileSync('openssl', ['crl', '-in', crl, '-noout', '-nextupdate'], { encoding: 'utf8' }).trim().replace(/^nextUpdate=/, '');
    const samples = parsePrometheusText((await adminGet(guard.adminPort, '/metrics')).body).get('replguard_crl_expiry_timestamp_seconds')?.samples ?? [];
    t.equal(samples.length, 1, 'one issuer');
    t.equal(samples[0]?.value, Math.floor(Date.parse(nextUpdate) / 1000), `the nextUpdate openssl reads (${nextUpdate})`);
    t.equal(samples[0]?.labels.sha256, new X509Certificate(readFileSync(pki.caFile)).fingerprint256.replace(/:/g, '').toLowerCase(), 'labelled with the CA that signed it');
  });

  await t.test('an authorised POP gets through, and the upstream sees the identity headers', async (t) => {
    const reply = await call(guard.port, pki.caFile, {
      cert: good,
      headers: { 'x-replguard-source-pop': 'forged-pop', 'x-forwarded-for': '203.0.113.9', forwarded: 'for=203.0.113.9', 'x-real-ip': '203.0.113.9', 'x-replguard-anything': 'x' },
    });
    t.equal(reply.status, 200);
    t.equal(reply.headers['x-content-type-options'], 'nosniff');
    t.equal(reply.headers['cache-control'], 'no-store');
    t.match(reply.headers['x-replguard-request-id'], /^[0-9a-f-]{36}$/);
    const [seen] = backup.received();
    t.ok(seen, 'the backup received the request');
    t.equal(seen!.headers['x-replguard-source-pop'], 'calgary-01', 'identity from the certificate, the forged one dropped');
    t.equal(seen!.headers['x-replguard-request-id'], reply.headers['x-replguard-request-id']);
    t.match(seen!.headers['x-replguard-client-cert-sha256'], /^[0-9a-f]{64}$/);
    t.equal(seen!.headers['x-forwarded-for'], '127.0.0.1', 'set from the guard’s own view');
    t.notOk(seen!.headers.forwarded);
    t.notOk(seen!.headers['x-real-ip']);
    t.notOk(seen!.headers['x-replguard-anything']);
    t.equal(JSON.parse(seen!.body.toString()).source_pop, 'calgary-01', 'body forwarded byte for byte');
  });

  await t.test('URI SAN (SPIFFE) and DNS SAN identities, and a matching pin', async (t) => {
    for (const [cert, pop] of [[spiffe, 'denver-02'], [dnsPeer, 'oslo-03'], [pinned, 'lima-04']] as const) {
      const before = backup.received().length;
      // The body contract (step 7) wants the body's source_pop to name the authenticated POP.
      const body = JSON.stringify({ source_pop: pop, entries: [], timestamp: Math.floor(Date.now() / 1000) });
      const reply = await call(guard.port, pki.caFile, { cert, body });
      t.equal(reply.status, 200, pop);
      t.equal(backup.received()[before]?.headers['x-replguard-source-pop'], pop);
    }
  });

  await t.test('refused at the TLS layer, upstream never reached', async (t) => {
    const before = backup.received().length;
    t.ok(await refusedAtConnection(guard.port, pki.caFile, {}), 'no certificate');
    t.ok(await refusedAtConnection(guard.port, pki.caFile, { cert: foreign }), 'another CA');
    t.ok(await refusedAtConnection(guard.port, pki.caFile, { cert: expired }), 'expired');
    t.ok(await refusedAtConnection(guard.port, pki.caFile, { cert: revoked }), 'revoked by the CRL');
    const events = await guard.waitForEvents((e) => e.event.action === 'tls-connection', 4);
    t.same(events.map((e) => e.event.reason), ['TLS_CLIENT_CERT_MISSING', 'TLS_CLIENT_CERT_UNTRUSTED', 'TLS_CLIENT_CERT_EXPIRED', 'TLS_CLIENT_CERT_REVOKED']);
    t.ok(events.every((e) => e.event.kind === 'alert' && e.event.outcome === 'failure'));
    t.equal(backup.received().length, before);
  });

  await t.test('valid certificate of an unknown POP, and a pin mismatch: 403', async (t) => {
    const before = backup.received().length;
    const a = await call(guard.port, pki.caFile, { cert: unknownPop });
    const b = await call(guard.port, pki.caFile, { cert: pinnedOther });
    t.equal(a.status, 403);
    t.equal(b.status, 403);
    t.same(JSON.parse(a.body), { error: 'forbidden', request_id: a.headers['x-replguard-request-id'] }, 'generic body');
    const events = await guard.waitForEvents((e) => e.event.reason?.startsWith('AUTH_'), 2);
    t.same(events.map((e) => e.event.reason), ['AUTH_PEER_UNKNOWN', 'AUTH_CERT_PIN_MISMATCH']);
    t.same(events.map((e) => e.replguard.request_id), [a.headers['x-replguard-request-id'], b.headers['x-replguard-request-id']]);
    t.equal(backup.received().length, before);
  });
});

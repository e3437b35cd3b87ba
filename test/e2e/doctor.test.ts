// doctor: one line per check, ok or FAIL with the fix; exit 1 on any problem. It names an
// expired server certificate and an unreachable upstream, checks the signer's remote guard with a
// verified TLS handshake, finds a port in use, and sends no request to the upstream.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { makePki } from '../helpers/pki.ts';
import { baseConfig, runCli, startGuard, writeConfig } from '../helpers/guard.ts';
import { makeHmacKey, writeKeyFile } from '../helpers/signing.ts';
import { closedPortUrl, startHangingUpstream } from '../helpers/upstream.ts';

const pki = makePki(['calgary-01']);

t.test('a working guard config: every line ok, exit 0, and no request reached the upstream', async (t) => {
  const upstream = await startHangingUpstream();
  t.teardown(upstream.stop);
  const r = await runCli(['doctor', '-c', writeConfig(baseConfig(pki, upstream.url))]);
  t.equal(r.code, 0, r.stdout);
  t.match(r.stdout, /^ok {4}config: /m);
  t.match(r.stdout, /^ok {4}tls\.key_file: .*\(mode 600, owner uid \d+/m, 'files with mode and owner');
  t.match(r.stdout, /^ok {4}tls\.cert_file: "CN=localhost", valid until .*, names DNS:localhost/m, 'the certificate and its names');
  t.match(r.stdout, /^ok {4}upstream\.url: http:\/\/127\.0\.0\.1:\d+ accepts connections/m);
  t.match(r.stdout, /^ok {4}admin\.port: /m);
  t.notMatch(r.stdout, /^FAIL/m);
  t.equal(upstream.hits(), 0, 'doctor sends no request');
});

t.test('an expired server certificate and an unreachable upstream: both named with their fix, exit 1', async (t) => {
  const old = pki.ca.issue({ commonName: 'localhost', dnsNames: ['localhost'], usage: 'server', notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
  const dir = mkdtempSync(join(tmpdir(), 'replguard-doctor-'));
  writeFileSync(join(dir, 'server.crt'), old.certPem);
  writeFileSync(join(dir, 'server.key'), old.keyPem, { mode: 0o600 });
  const config = baseConfig(pki, await closedPortUrl(), { tls: { cert_file: join(dir, 'server.crt'), key_file: join(dir, 'server.key'), client_ca_file: pki.caFile } });
  const r = await runCli(['doctor', '-c', writeConfig(config), '--timeout', '2s']);
  t.equal(r.code, 1);
  t.match(r.stdout, /^FAIL {2}tls\.cert_file: .*the server certificate expired on .*; renew it/m);
  t.match(r.stdout, /^FAIL {2}upstream\.url: http:\/\/127\.0\.0\.1:\d+ does not answer \(ECONNREFUSED\): start the backup service, or fix upstream\.url/m);
  t.match(r.stdout, /^doctor: 2 problems found$/m);
});

t.test('the admin port in use: named, exit 1', async (t) => {
  const busy = createServer();
  busy.listen(0, '127.0.0.1');
  await once(busy, 'listening');
  t.teardown(() => busy.close());
  const upstream = await startHangingUpstream();
  t.teardown(upstream.stop);
  const port = (busy.address() as { port: number }).port;
  const r = await runCli(['doctor', '-c', writeConfig(baseConfig(pki, upstream.url, { admin: { host: '127.0.0.1', port } }))]);
  t.equal(r.code, 1);
  t.match(r.stdout, new RegExp(`^FAIL {2}admin\\.port: cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE; .*pick another port`, 'm'));
});

t.test('a refused config: each problem is a FAIL line, exit 1', async (t) => {
  const r = await runCli(['doctor', '-c', writeConfig({ ...baseConfig(pki, 'http://127.0.0.1:1'), lisen: {} })]);
  t.equal(r.code, 1);
  t.match(r.stdout, /^FAIL {2}lisen: unknown key; did you mean 'listen'\?/m);
});

t.test('a signer: the remote guard answers a verified TLS handshake; a wrong CA is named', async (t) => {
  const upstream = await startHangingUpstream();
  t.teardown(upstream.stop);
  const guard = await startGuard(baseConfig(pki, upstream.url));
  t.teardown(() => guard.stop());
  const client = pki.client('calgary-01');
  const signer = (caFile: string) => ({
    pop_id: 'calgary-01',
    role: 'primary',
    listen: { host: '127.0.0.1', port: 0 },
    backup: { id: 'zurich-01', url: `https://localhost:${guard.port}`, ca_file: caFile },
    client_tls: { cert_file: client.cert, key_file: client.key },
    signing_keys: [writeKeyFile(makeHmacKey().text)],
    admin: { host: '127.0.0.1', port: 0 },
  });
  const good = await runCli(['doctor', '-c', writeConfig(signer(pki.caFile))]);
  t.equal(good.code, 0, good.stdout);
  t.match(good.stdout, /^ok {4}backup\.url: https:\/\/localhost:\d+: TLS handshake verified against backup\.ca_file as localhost/m);
  const other = makePki([]);
  const bad = await runCli(['doctor', '-c', writeConfig(signer(other.caFile))]);
  t.equal(bad.code, 1);
  t.match(bad.stdout, /^FAIL {2}backup\.url: https:\/\/localhost:\d+: .*backup\.ca_file is the CA of its certificate/m);
  t.equal(upstream.hits(), 0, 'no replication request reached the backup');
});

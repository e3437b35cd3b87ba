import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import t from 'tap';
import { createSignerMetrics, type CertificateFacts } from '../../../src/metrics/signer-metrics.ts';
import { parsePrometheusText, sampleValue } from '../../helpers/prometheus.ts';

const scrape = async (m: ReturnType<typeof createSignerMetrics>) => parsePrometheusText((await m.render()).body);

t.test('the client certificate in force is read on every scrape: a reload shows on the next one', async (t) => {
  const m = createSignerMetrics();
  const NAME = 'replguard_signer_client_certificate_expiry_timestamp_seconds';
  t.same((await scrape(m)).get(NAME)?.samples ?? [], [], 'no series before a certificate is known');
  let cert: CertificateFacts | undefined = { subject: 'CN=calgary-01', sha256: 'ab'.repeat(32), notAfterMs: Date.parse('2031-02-03T04:05:06.789Z') };
  m.readClientCertificate(() => cert);
  t.equal(sampleValue(await scrape(m), NAME, { subject: 'CN=calgary-01', sha256: 'ab'.repeat(32) }), Math.floor(Date.parse('2031-02-03T04:05:06Z') / 1000), 'notAfter in Unix seconds');
  cert = { subject: 'CN=calgary-01', sha256: 'cd'.repeat(32), notAfterMs: Date.parse('2032-01-01T00:00:00Z') };
  const after = await scrape(m);
  t.equal(after.get(NAME)?.samples.length, 1, 'only the certificate in force has a series');
  t.equal(sampleValue(after, NAME, { subject: 'CN=calgary-01', sha256: 'cd'.repeat(32) }), Date.parse('2032-01-01T00:00:00Z') / 1000);
  cert = undefined;
  t.same((await scrape(m)).get(NAME)?.samples ?? [], [], 'none configured: no series');
});

t.test('connections to the guard: each socket counted once, until it closes', async (t) => {
  const server = createServer((s) => s.on('error', () => undefined));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const open = async () => {
    const s = connect(port, '127.0.0.1');
    await once(s, 'connect');
    return s;
  };
  const m = createSignerMetrics();
  const NAME = 'replguard_signer_guard_connections_open';
  t.equal(sampleValue(await scrape(m), NAME), 0, 'served from the start');
  const a: Socket = await open();
  const b: Socket = await open();
  m.guardConnection(a);
  m.guardConnection(a); // a keep-alive socket reused by the next attempt
  m.guardConnection(b);
  t.equal(sampleValue(await scrape(m), NAME), 2);
  a.destroy();
  await once(a, 'close');
  t.equal(sampleValue(await scrape(m), NAME), 1, 'a closed one no longer counts');
  b.destroy();
  await once(b, 'close');
  m.guardConnection(b);
  t.equal(sampleValue(await scrape(m), NAME), 0, 'nor one handed over already closed');
});

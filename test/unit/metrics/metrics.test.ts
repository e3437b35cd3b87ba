import { X509Certificate } from 'node:crypto';
import t from 'tap';
import { connectionEvent, type AuditEvent } from '../../../src/audit/event.ts';
import { createMetrics } from '../../../src/metrics/metrics.ts';
import { newConnection } from '../../../src/pipeline/context.ts';
import { StoreUnavailableError, type NonceResult, type NonceStore } from '../../../src/store/store.ts';
import { DevCa } from '../../../src/tls/dev-ca.ts';
import { parsePrometheusText, sampleSum, sampleValue } from '../../helpers/prometheus.ts';

const DAY = 86_400_000;
const peers = [{ id: 'calgary-01', cert: { cn: 'calgary-01' }, cert_sha256: [] }];

function event(reason: AuditEvent['event']['reason'], pop: string | undefined, extra: Partial<AuditEvent['replguard']> = {}, notAfter?: string): AuditEvent {
  return {
    ecs: { version: '8.11.0' },
    event: { kind: 'event', category: ['web'], type: ['access'], action: 'replication-request', outcome: reason === 'FORWARDED' ? 'success' : 'failure', reason, module: 'replguard', dataset: 'replguard.audit', duration: 2_000_000 },
    source: { ip: '127.0.0.1', port: 1 },
    ...(notAfter ? { tls: { client: { not_after: notAfter } } } : {}),
    replguard: { ...(pop ? { pop } : {}), ...extra },
  };
}

t.test('requests by outcome, reason and POP; unknown POP names never become labels', async (t) => {
  const m = createMetrics({ peers });
  m.observe(event('FORWARDED', 'calgary-01', { upstream_duration: 5_000_000 }));
  m.observe(event('FORWARDED', 'calgary-01', { upstream_duration: 7_000_000 }));
  m.observe(event('ROUTE_NOT_FOUND', undefined));
  // A POP id that is not configured (cannot happen today; must stay bounded if it ever does).
  m.observe(event('AUTH_PEER_UNKNOWN', 'attacker-chosen\nname'));
  const f = parsePrometheusText((await m.render()).body);
  t.equal(sampleValue(f, 'replguard_requests_total', { outcome: 'success', reason: 'FORWARDED', pop: 'calgary-01' }), 2);
  t.equal(sampleValue(f, 'replguard_requests_total', { outcome: 'failure', reason: 'ROUTE_NOT_FOUND', pop: 'unknown' }), 1);
  t.equal(sampleValue(f, 'replguard_requests_total', { reason: 'AUTH_PEER_UNKNOWN', pop: 'unknown' }), 1);
  t.same(new Set(f.get('replguard_requests_total')!.samples.map((s) => s.labels.pop)), new Set(['calgary-01', 'unknown']));
  t.equal(sampleValue(f, 'replguard_request_duration_seconds_count', { outcome: 'success' }), 2);
  t.equal(sampleValue(f, 'replguard_request_duration_seconds_sum', { outcome: 'success' }), 0.004);
  t.equal(sampleValue(f, 'replguard_upstream_duration_seconds_count'), 2);
  t.equal(sampleValue(f, 'replguard_upstream_duration_seconds_sum'), 0.012);
  t.equal(sampleValue(f, 'replguard_upstream_duration_seconds_bucket', { le: '0.005' }), 1);
});

t.test('TLS refusals are counted apart from requests', async (t) => {
  const m = createMetrics({ peers });
  const conn = newConnection({ remoteAddress: '127.0.0.1', remotePort: 1, tlsVersion: 'TLSv1.3' });
  m.observe(connectionEvent(conn, 'TLS_CLIENT_CERT_MISSING', undefined));
  const f = parsePrometheusText((await m.render()).body);
  t.equal(sampleValue(f, 'replguard_tls_refusals_total', { reason: 'TLS_CLIENT_CERT_MISSING' }), 1);
  t.equal(sampleSum(f, 'replguard_requests_total'), 0);
});

t.test('seconds until each certificate expires, on every scrape, from the injected clock', async (t) => {
  let now = Date.parse('2030-01-01T00:00:00Z');
  const ca = DevCa.create('metrics test CA');
  const leaf = new X509Certificate(ca.issue({ commonName: 'server', usage: 'server', notAfter: new Date(now + 10 * DAY) }).certPem);
  const caCert = new X509Certificate(ca.certPem);
  const m = createMetrics({ peers }, () => now);
  let list = [{ source: 'tls.cert_file', certificate: leaf }];
  m.trackCertificates(() => list);
  let f = parsePrometheusText((await m.render()).body);
  const leafLabels = { source: 'tls.cert_file', subject: 'CN=server', sha256: leaf.fingerprint256.replace(/:/g, '').toLowerCase() };
  t.equal(sampleValue(f, 'replguard_certificate_expiry_seconds', leafLabels), Math.floor((Date.parse(leaf.validTo) - now) / 1000));
  now += DAY;
  list = [...list, { source: 'tls.client_ca_file', certificate: caCert }];
  f = parsePrometheusText((await m.render()).body);
  t.equal(sampleValue(f, 'replguard_certificate_expiry_seconds', leafLabels), Math.floor((Date.parse(leaf.validTo) - now) / 1000), 'recomputed');
  t.equal(sampleValue(f, 'replguard_certificate_expiry_seconds', { source: 'tls.client_ca_file', subject: 'CN=metrics test CA, O=replguard demo' }), Math.floor((Date.parse(caCert.validTo) - now) / 1000), 'the CA is listed once the provider names it');
  t.equal(f.get('replguard_certificate_expiry_seconds')!.samples.length, 2);
  t.equal(sampleValue(f, 'replguard_certificate_expiry_timestamp_seconds', leafLabels), Math.floor(Date.parse(leaf.validTo) / 1000), 'notAfter as a timestamp');
  t.equal(f.get('replguard_certificate_expiry_timestamp_seconds')!.samples.length, 2, 'the CA too');
});

t.test('the client certificate each POP last used', async (t) => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  const m = createMetrics({ peers }, () => now);
  m.observe(event('FORWARDED', 'calgary-01', {}, '2030-01-03T00:00:00.000Z'));
  m.observe(event('FORWARDED', 'calgary-01', {}, '2030-01-02T00:00:00.000Z'));
  m.observe(event('AUTH_PEER_UNKNOWN', undefined, {}, '2020-01-01T00:00:00.000Z'));
  const f = parsePrometheusText((await m.render()).body);
  t.same(f.get('replguard_peer_certificate_expiry_seconds')!.samples, [{ name: 'replguard_peer_certificate_expiry_seconds', labels: { pop: 'calgary-01' }, value: 86400 }]);
});

t.test('reloads and audit errors start at zero and count', async (t) => {
  const m = createMetrics({ peers });
  let f = parsePrometheusText((await m.render()).body);
  t.equal(sampleValue(f, 'replguard_reloads_total', { result: 'failure' }), 0);
  t.equal(f.get('replguard_reloads_total')!.samples.length, 2, 'both results exported before the first reload');
  m.countReload('failure');
  m.countReload('success');
  m.countReload('success');
  m.countAuditError('file');
  f = parsePrometheusText((await m.render()).body);
  t.equal(sampleValue(f, 'replguard_reloads_total', { result: 'success' }), 2);
  t.equal(sampleValue(f, 'replguard_reloads_total', { result: 'failure' }), 1);
  t.equal(sampleValue(f, 'replguard_audit_write_errors_total', { destination: 'file' }), 1);
});

/** A minimal real implementation of the store interface (the memory store lives in issue 4/5). */
class MapNonceStore implements NonceStore {
  readonly seen = new Map<string, number>();
  down = false;
  constructor(readonly max: number) {}
  async recordNonce(key: string): Promise<NonceResult> {
    if (this.down) throw new StoreUnavailableError('down');
    if (this.seen.has(key)) return 'replayed';
    if (this.seen.size >= this.max) return 'full';
    this.seen.set(key, 1);
    return 'recorded';
  }
  async nonceCount(): Promise<number> {
    if (this.down) throw new StoreUnavailableError('down');
    return this.seen.size;
  }
  async close(): Promise<void> {}
}

t.test('nonce store: size on scrape, refusals by cause, results passed through unchanged', async (t) => {
  const m = createMetrics({ peers });
  const inner = new MapNonceStore(2);
  const store = m.instrumentNonceStore(inner);
  t.equal(await store.recordNonce('a', 1000), 'recorded');
  t.equal(await store.recordNonce('a', 1000), 'replayed');
  t.equal(await store.recordNonce('b', 1000), 'recorded');
  t.equal(await store.recordNonce('c', 1000), 'full');
  let f = parsePrometheusText((await m.render()).body);
  t.equal(sampleValue(f, 'replguard_nonce_store_size'), 2);
  t.equal(sampleValue(f, 'replguard_nonce_refusals_total', { cause: 'replayed' }), 1);
  t.equal(sampleValue(f, 'replguard_nonce_refusals_total', { cause: 'full' }), 1);
  inner.down = true;
  await t.rejects(store.recordNonce('d', 1000), StoreUnavailableError, 'fails closed: the error is passed on');
  f = parsePrometheusText((await m.render()).body);
  t.equal(sampleValue(f, 'replguard_nonce_refusals_total', { cause: 'unavailable' }), 1);
  t.ok(Number.isNaN(sampleValue(f, 'replguard_nonce_store_size')), 'an unavailable store reports NaN, the scrape still works');
});

t.test('a gauge registered by another module is read on every scrape', async (t) => {
  const m = createMetrics({ peers });
  let bans = 3;
  m.registerGaugeCollector('replguard_bans_active', 'Active bans.', () => bans);
  t.equal(sampleValue(parsePrometheusText((await m.render()).body), 'replguard_bans_active'), 3);
  bans = 0;
  t.equal(sampleValue(parsePrometheusText((await m.render()).body), 'replguard_bans_active'), 0);
  t.throws(() => m.registerGaugeCollector('replguard_bans_active', 'again', () => 1), 'a name is registered once');
});

t.test('the metrics registry is the guard’s own, not prom-client’s global one', async (t) => {
  const { register } = await import('prom-client');
  createMetrics({ peers }).observe(event('FORWARDED', 'calgary-01'));
  t.equal(await register.getSingleMetricAsString('replguard_requests_total').catch(() => 'absent'), 'absent');
});

t.test('the strict exposition parser refuses what Prometheus would refuse', async (t) => {
  const ok = '# HELP a_total x\n# TYPE a_total counter\na_total{k="v"} 1\n';
  t.ok(parsePrometheusText(ok).get('a_total'));
  for (const [name, text] of [
    ['no TYPE', 'a_total 1\n'],
    ['bad value', '# TYPE a counter\na 1x\n'],
    ['unterminated label', '# TYPE a counter\na{k="v} 1\n'],
    ['duplicate series', '# TYPE a counter\na{k="v"} 1\na{k="v"} 2\n'],
    ['missing final newline', '# TYPE a counter\na 1'],
    ['interleaved families', '# TYPE a counter\n# TYPE b counter\na 1\nb 1\na{x="1"} 1\n'],
    ['histogram not cumulative', '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'],
  ] as const) {
    t.throws(() => parsePrometheusText(text), name);
  }
});


// Every metric the Grafana dashboard (deploy/grafana/replguard-dashboard.json) and the alert
// rules (deploy/prometheus/replguard-rules.yaml) query is one the product exposes: a real guard's
// and a real signer's /metrics (the harness starts both, after a delivered batch, a refused
// request and a refused handshake, so that every labelled family has samples) plus the
// documented lists in docs/audit.md and docs/signer.md. Each label a query matches or groups on
// is one that metric has (or a target label Prometheus adds), and each reason code or closed
// label value it names exists. promtool checks the syntax of every dashboard query, Grafana
// variables replaced by plain values.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { REASONS } from '../../src/pipeline/reasons.ts';
import { adminGet } from '../helpers/admin.ts';
import { call, refusedAtConnection } from '../helpers/client.ts';
import { baseConfig, ROOT, startGuard } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { primaryPost } from '../helpers/primary.ts';
import { signerConfig } from '../helpers/signer-config.ts';
import { parsePrometheusText, type Family } from '../helpers/prometheus.ts';
import { startBackup } from '../helpers/upstream.ts';
import { until } from '../helpers/wait.ts';
import { alternatives, matcherAccepts, reads, withoutGrafanaVariables } from './promql.ts';

/** Grafana's data-source variable, as every panel and query names it. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JavaScript template.
const DATASOURCE = '${datasource}';
/** Labels Prometheus adds to every series from the scrape configuration. */
const TARGET_LABELS = new Set(['instance', 'job']);
/** Values for the dashboard's own variables (the datasource is not part of a query). */
const VARIABLES = { instance: '.*', signer: '.*', max_nonces: '20000' };

interface Known {
  type: string;
  labels: Set<string>;
  /** Closed sets of label values, where the product has one. */
  values: Map<string, Set<string>>;
}

/** docs/audit.md's (the guard's) and docs/signer.md's metrics tables: name, type, labels (values in parentheses where listed). */
function documentedMetrics(): Map<string, Known> {
  const markdown = ['audit.md', 'signer.md'].map((f) => readFileSync(join(ROOT, 'docs', f), 'utf8')).join('\n');
  const out = new Map<string, Known>();
  for (const m of markdown.matchAll(/^\| `(replguard_[a-z_]+)` \| (counter|gauge|histogram) \| ([^|]*) \|/gm)) {
    const known: Known = { type: m[2]!, labels: new Set(), values: new Map() };
    for (const part of m[3]!.split(/,(?![^(]*\))/)) {
      const label = /`([a-z_]+)`/.exec(part);
      if (!label) continue;
      known.labels.add(label[1]!);
      const values = /\(([^)]*)\)/.exec(part);
      if (values) known.values.set(label[1]!, new Set([...values[1]!.matchAll(/`([^`]+)`/g)].map((v) => v[1]!)));
    }
    out.set(m[1]!, known);
  }
  return out;
}

/** The names a family's samples carry (a histogram's _bucket, _sum, _count). */
function sampleNames(name: string, type: string): string[] {
  return type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : type === 'summary' ? [name, `${name}_sum`, `${name}_count`] : [name];
}

function merge(served: Map<string, Family>, documented: Map<string, Known>): Map<string, Known & { from: string[] }> {
  const out = new Map<string, Known & { from: string[] }>();
  const entry = (name: string, type: string) => {
    let e = out.get(name);
    if (!e) {
      e = { type, labels: new Set(), values: new Map(), from: [] };
      out.set(name, e);
    }
    return e;
  };
  for (const [family, f] of served) {
    for (const name of sampleNames(family, f.type)) {
      const e = entry(name, f.type);
      e.from.push('/metrics');
      for (const s of f.samples.filter((x) => x.name === name)) for (const l of Object.keys(s.labels)) e.labels.add(l);
    }
  }
  for (const [family, d] of documented) {
    for (const name of sampleNames(family, d.type)) {
      const e = entry(name, d.type);
      e.from.push('docs');
      for (const l of d.labels) e.labels.add(l);
      for (const [l, v] of d.values) e.values.set(l, v);
      if (name.endsWith('_bucket')) e.labels.add('le');
    }
  }
  return out;
}

interface Query {
  where: string;
  expr: string;
}

const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana', 'replguard-dashboard.json'), 'utf8')) as {
  panels: Array<{ id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; datasource?: { uid: string }; targets?: Array<{ refId: string; expr: string; datasource?: { uid: string } }> }>;
  templating: { list: Array<{ name: string; type: string; query: unknown }> };
};
const rules = YAML.parse(readFileSync(join(ROOT, 'deploy', 'prometheus', 'replguard-rules.yaml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };

const dashboardQueries: Query[] = dashboard.panels.flatMap((p) => (p.targets ?? []).map((tg) => ({ where: `panel ${p.id} "${p.title}" ${tg.refId}`, expr: withoutGrafanaVariables(tg.expr, VARIABLES) })));
const variableQueries: Query[] = dashboard.templating.list
  .filter((v) => v.type === 'query')
  .map((v) => {
    const text = typeof v.query === 'string' ? v.query : (v.query as { query: string }).query;
    const m = /^label_values\(([^,]+),\s*(\w+)\)$/.exec(text);
    if (!m) throw new Error(`variable ${v.name}: ${text} is not label_values(selector, label)`);
    return { where: `variable ${v.name}`, expr: `group by (${m[2]}) (${m[1]})` };
  });
const ruleQueries: Query[] = rules.groups.flatMap((g) => g.rules.map((r) => ({ where: `rule ${r.alert}`, expr: r.expr })));

t.test('the dashboard is a well-formed Grafana dashboard', async (t) => {
  const ids = dashboard.panels.map((p) => p.id);
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  t.ok(dashboard.templating.list.some((v) => v.name === 'datasource' && v.type === 'datasource' && v.query === 'prometheus'), 'a Prometheus data-source variable');
  const cells = new Map<string, number>();
  for (const p of dashboard.panels) {
    const { x, y, w, h } = p.gridPos;
    t.ok(x >= 0 && w > 0 && x + w <= 24 && h > 0, `panel ${p.id}: inside the 24-column grid`);
    for (let i = x; i < x + w; i++) for (let j = y; j < y + h; j++) {
      const other = cells.get(`${i},${j}`);
      if (other !== undefined) t.fail(`panel ${p.id} overlaps panel ${other}`);
      cells.set(`${i},${j}`, p.id);
    }
    t.equal(p.datasource?.uid, DATASOURCE, `panel ${p.id}: the data-source variable`);
    const refs = (p.targets ?? []).map((x) => x.refId);
    t.ok(refs.length > 0, `panel ${p.id} "${p.title}": has queries`);
    t.equal(new Set(refs).size, refs.length, `panel ${p.id}: refIds unique`);
    for (const x of p.targets ?? []) t.equal(x.datasource?.uid, DATASOURCE, `panel ${p.id} ${x.refId}: the data-source variable`);
  }
});

t.test('promtool parses every dashboard query', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'replguard-dash-'));
  const file = join(dir, 'dashboard-queries.yaml');
  const all = [...dashboardQueries, ...variableQueries];
  writeFileSync(file, YAML.stringify({ groups: [{ name: 'dashboard', rules: all.map((q, i) => ({ record: `replguard_dashboard_check:query_${i}`, expr: q.expr })) }] }));
  const run = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8', timeout: 60_000 });
  t.equal(run.error, undefined, `promtool runs${run.error ? ` (apt-get install prometheus): ${run.error.message}` : ''}`);
  t.equal(run.status, 0, `${run.stdout}${run.stderr}`);
  t.match(run.stdout, new RegExp(`SUCCESS: ${all.length} rules found`));
});

t.test('every metric the dashboard and the rules query is one the guard or the signer exposes, with its labels', async (t) => {
  const pki = makePki([]);
  const good = pki.client('calgary-01');
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url));
  const signer = await startGuard(signerConfig(pki, `https://127.0.0.1:${guard.port}`, good));
  t.teardown(async () => {
    await signer.stop();
    await guard.stop();
    await backup.stop();
  });
  // A forwarded request, a refused one, a handshake refused for its certificate: every labelled
  // family then has a sample, and its labels can be read off /metrics.
  t.equal((await call(guard.port, pki.caFile, { cert: good })).status, 200);
  t.equal((await call(guard.port, pki.caFile, { cert: good, path: '/nowhere' })).status, 404);
  t.ok(await refusedAtConnection(guard.port, pki.caFile, { cert: pki.foreignClient('calgary-01') }));
  await until(() => guard.audit().length >= 3, 'three audit events');
  t.equal((await primaryPost(signer.port, '{"entries":[{"id":1}]}')).status, 200, 'a batch delivered through the signer');
  await until(() => signer.audit().some((e) => e.replguard?.final === true), 'the signer\'s final event');

  const served = parsePrometheusText((await adminGet(guard.adminPort, '/metrics')).body);
  const signerServed = parsePrometheusText((await adminGet(signer.adminPort, '/metrics')).body);
  for (const family of ['replguard_signer_attempts_total', 'replguard_signer_deliveries_total', 'replguard_signer_client_certificate_expiry_timestamp_seconds', 'replguard_signer_guard_certificate_expiry_timestamp_seconds']) {
    t.ok((signerServed.get(family)?.samples.length ?? 0) > 0, `${family} has samples`);
  }
  for (const family of ['replguard_requests_total', 'replguard_tls_refusals_total', 'replguard_upstream_duration_seconds', 'replguard_peer_certificate_expiry_seconds']) {
    t.ok((served.get(family)?.samples.length ?? 0) > 0, `${family} has samples`);
  }
  const known = merge(new Map([...served, ...signerServed].filter(([name]) => name.startsWith('replguard_') && name !== 'replguard_build_info')), documentedMetrics());
  const info = [served.get('replguard_build_info'), signerServed.get('replguard_build_info')];
  t.ok(info.every((f) => f?.samples.length === 1), 'both serve replguard_build_info');
  // A request's outcome, or a connection code met by a request on an open connection.
  known.get('replguard_requests_total')?.values.set('reason', new Set(Object.entries(REASONS).filter(([, e]) => e.kind === 'request' || e.kind === 'connection').map(([c]) => c)));
  known.get('replguard_tls_refusals_total')?.values.set('reason', new Set(Object.entries(REASONS).filter(([, e]) => e.kind === 'connection').map(([c]) => c)));
  known.get('replguard_requests_total')?.values.set('outcome', new Set(['success', 'failure']));

  const read = new Set<string>();
  for (const q of [...dashboardQueries, ...variableQueries, ...ruleQueries]) {
    const { selectors, groupingLabels } = reads(q.expr);
    // A constant line (the max_nonces variable) is the one query that reads no metric.
    if (!/^vector\(\d+\)$/.test(q.expr)) t.ok(selectors.length > 0, `${q.where}: reads a metric`);
    const labelsHere = new Set(TARGET_LABELS);
    for (const s of selectors) {
      const name = s.name ?? '';
      const k = known.get(name);
      t.ok(k, `${q.where}: ${name} is exposed (${k?.from.join(' and ') ?? 'by neither /metrics nor docs/audit.md'})`);
      if (!k) continue;
      read.add(name);
      for (const l of k.labels) labelsHere.add(l);
      for (const m of s.matchers) {
        t.ok(k.labels.has(m.label) || TARGET_LABELS.has(m.label), `${q.where}: ${name} has the label ${m.label}`);
        const closed = k.values.get(m.label);
        if (!closed) continue;
        const parts = alternatives(m);
        t.ok(parts, `${q.where}: ${m.label}${m.op}"${m.value}" is an alternation the test can read`);
        for (const part of parts ?? []) {
          const hits = [...closed].filter((v) => matcherAccepts({ ...m, op: m.op.startsWith('!') ? (m.op === '!=' ? '=' : '=~') : m.op, value: part }, v));
          t.ok(hits.length > 0, `${q.where}: ${name}{${m.label}${m.op}"${part}"} matches a value the label takes`);
        }
      }
    }
    for (const l of groupingLabels) t.ok(labelsHere.has(l), `${q.where}: groups on ${l}, a label of what it reads`);
  }

  // The dashboard covers what it is for (a topic may come from more than one metric).
  const dashboardReads = new Set(dashboardQueries.flatMap((q) => reads(q.expr).selectors.map((s) => s.name)));
  for (const name of [
    'replguard_requests_total',
    'replguard_tls_refusals_total',
    'replguard_bans_active',
    'replguard_nonce_store_size',
    'replguard_nonce_refusals_total',
    'replguard_upstream_duration_seconds_bucket',
    'replguard_request_duration_seconds_bucket',
    'replguard_certificate_expiry_seconds',
    'replguard_peer_certificate_expiry_seconds',
    'replguard_reloads_total',
    'replguard_audit_write_errors_total',
    'replguard_signer_deliveries_total',
    'replguard_signer_attempts_total',
    'replguard_signer_retries_total',
    'replguard_signer_request_hold_seconds_bucket',
    'replguard_signer_requests_in_flight',
    'replguard_signer_guard_connections_open',
    'replguard_signer_client_certificate_expiry_timestamp_seconds',
    'replguard_signer_guard_certificate_expiry_timestamp_seconds',
  ]) {
    t.ok(dashboardReads.has(name), `a panel reads ${name}`);
  }
  t.ok(read.size >= 10, `${read.size} metrics read`);
});

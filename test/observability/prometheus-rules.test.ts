// deploy/prometheus/replguard-rules.yaml as Prometheus reads it: promtool (Debian's `prometheus`
// package, installed by .ci/run) checks the rules and runs their unit tests in
// deploy/prometheus/tests/; a missing promtool fails this test, it is never skipped. Then what
// promtool does not check: every alert has `for:`, a severity, a summary, a description and a
// runbook that exists in docs/audit.md; every alert is unit-tested firing and staying quiet; every
// alert-level reason code the guard counts in a metric is paged on by some rule, and every code a
// rule names exists.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { REASONS } from '../../src/pipeline/reasons.ts';
import { ROOT } from '../helpers/guard.ts';
import { alternatives, matcherAccepts, reads } from './promql.ts';

const RULES = join(ROOT, 'deploy', 'prometheus', 'replguard-rules.yaml');
const TESTS_DIR = join(ROOT, 'deploy', 'prometheus', 'tests');
const testFiles = readdirSync(TESTS_DIR).filter((f) => f.endsWith('.yaml')).sort().map((f) => join(TESTS_DIR, f));

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rulesDoc = YAML.parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ name: string; rules: AlertRule[] }> };
const alerts = rulesDoc.groups.flatMap((g) => g.rules);

function promtool(args: string[]) {
  const run = spawnSync('promtool', args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { ...run, output: `${run.stdout ?? ''}${run.stderr ?? ''}` };
}

t.test('promtool is installed (Debian package prometheus; .ci/run installs it)', async (t) => {
  const run = promtool(['--version']);
  t.equal(run.error, undefined, `promtool runs${run.error ? `: ${run.error.message}: apt-get install prometheus` : ''}`);
  t.equal(run.status, 0, 'promtool --version exits 0');
});

t.test('promtool check rules', async (t) => {
  const run = promtool(['check', 'rules', RULES]);
  t.equal(run.status, 0, run.output);
  t.match(run.output, new RegExp(`SUCCESS: ${alerts.length} rules found`), 'every rule is read');
});

t.test('promtool test rules: every unit test file passes', async (t) => {
  t.ok(testFiles.length >= 3, `${testFiles.length} test files`);
  const run = promtool(['test', 'rules', ...testFiles]);
  t.equal(run.status, 0, run.output);
  t.equal((run.output.match(/^\s+SUCCESS$/gm) ?? []).length, testFiles.length, 'one SUCCESS per file');
  t.notMatch(run.output, /FAILED/);
});

t.test('every alert has for:, a severity, a summary, a description and a runbook in docs/audit.md', async (t) => {
  const audit = readFileSync(join(ROOT, 'docs', 'audit.md'), 'utf8');
  // GitHub's anchors: lower case, punctuation dropped, spaces as hyphens.
  const anchors = new Set([...audit.matchAll(/^#+ (.+)$/gm)].map((m) => m[1]!.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-')));
  t.ok(alerts.length >= 10, `${alerts.length} alerts`);
  t.equal(new Set(alerts.map((a) => a.alert)).size, alerts.length, 'alert names are unique');
  for (const a of alerts) {
    t.match(a.alert, /^Replguard[A-Z][A-Za-z]+$/, `${a.alert}: named Replguard…`);
    t.match(a.for, /^\d+[smh]$/, `${a.alert}: for: ${a.for}`);
    t.ok(['warning', 'critical'].includes(a.labels?.severity ?? ''), `${a.alert}: severity ${a.labels?.severity}`);
    t.ok((a.annotations?.summary ?? '').length > 10, `${a.alert}: summary`);
    t.ok((a.annotations?.description ?? '').length > 20, `${a.alert}: description`);
    const runbook = a.annotations?.runbook_url ?? '';
    const m = /^docs\/audit\.md#([a-z0-9-]+)$/.exec(runbook);
    t.ok(m, `${a.alert}: runbook_url ${runbook} points into docs/audit.md`);
    if (m) t.ok(anchors.has(m[1]!), `${a.alert}: docs/audit.md has the heading #${m[1]}`);
  }
});

t.test('every alert is unit-tested firing, and listed in the healthy-guard test that expects nothing', async (t) => {
  type AlertTest = { alertname: string; exp_alerts?: unknown[] };
  const fired = new Set<string>();
  const quiet = new Set<string>();
  for (const file of testFiles) {
    const doc = YAML.parse(readFileSync(file, 'utf8')) as { tests: Array<{ alert_rule_test?: AlertTest[] }> };
    for (const test of doc.tests) {
      for (const c of test.alert_rule_test ?? []) {
        if ((c.exp_alerts ?? []).length > 0) fired.add(c.alertname);
        else if (file.endsWith('quiet.yaml')) quiet.add(c.alertname);
      }
    }
  }
  for (const a of alerts) {
    t.ok(fired.has(a.alert), `${a.alert} has a test in which it fires`);
    t.ok(quiet.has(a.alert), `${a.alert} is checked quiet on a healthy guard`);
  }
});

// The alert-level codes the guard counts in a metric (replguard_requests_total for a request,
// replguard_tls_refusals_total for a connection refused at the handshake; a code may be both).
// Left out: events that are not request outcomes (kind event: bans, reloads; and the admin
// listener's ban lifts and lists, "not a request outcome"), the admin listener's refusals
// (ADMIN_*: its events are not replication requests) and the signer's codes,
// which no guard metric counts: docs/audit.md's SIEM section covers them
// (test/observability/siem-docs.test.ts).
type Entry = { kind: 'request' | 'connection' | 'event' | 'signer'; alert: boolean; description: string };
const entries = Object.entries(REASONS as Record<string, Entry>);
const counted = (code: string, e: Entry) =>
  (e.kind === 'request' && !code.startsWith('ADMIN_') && !/^not a request outcome/.test(e.description)) || e.kind === 'connection';
const pagedCodes = entries.filter(([code, e]) => e.alert && counted(code, e));

/** The rules' selectors of one metric, with the matchers on `reason`. */
function reasonSelectors(metric: string) {
  return alerts.flatMap((a) => reads(a.expr).selectors.filter((s) => s.name === metric).map((s) => ({ alert: a.alert, matchers: s.matchers.filter((m) => m.label === 'reason') })));
}

t.test('every alert-level reason code a guard metric counts is paged on by some rule', async (t) => {
  t.ok(pagedCodes.length >= 30, `${pagedCodes.length} codes`);
  const requests = reasonSelectors('replguard_requests_total').filter((s) => s.matchers.length > 0);
  const refusals = reasonSelectors('replguard_tls_refusals_total').filter((s) => s.matchers.length > 0);
  for (const [code, e] of pagedCodes) {
    const selectors = e.kind === 'connection' ? refusals : requests;
    const by = selectors.filter((s) => s.matchers.every((m) => matcherAccepts(m, code)));
    t.ok(by.length > 0, `${code} (${e.kind === 'connection' ? 'replguard_tls_refusals_total' : 'replguard_requests_total'}): ${[...new Set(by.map((s) => s.alert))].join(', ') || 'no rule'}`);
  }
  // TLS_CLIENT_CERT_REVOKED is also a request outcome (a connection opened before the new CRL).
  t.ok(requests.some((s) => s.matchers.every((m) => matcherAccepts(m, 'TLS_CLIENT_CERT_REVOKED'))), 'TLS_CLIENT_CERT_REVOKED on a request too');
});

t.test('every reason a rule names exists, and no rule pages on an ordinary refusal', async (t) => {
  const codes = Object.keys(REASONS);
  for (const a of alerts) {
    for (const s of reads(a.expr).selectors) {
      for (const m of s.matchers.filter((x) => x.label === 'reason')) {
        const parts = alternatives(m);
        t.ok(parts, `${a.alert}: ${m.value} is an alternation the test can read`);
        for (const part of parts ?? []) {
          const matched = codes.filter((c) => new RegExp(`^(?:${part})$`).test(c));
          t.ok(matched.length > 0, `${a.alert}: reason alternative ${part} matches ${matched.length} code(s)`);
        }
      }
    }
  }
  // What a rule pages on, code by code: only alert-level codes, plus the upstream codes the
  // availability rules read as rates (they are events, not alerts, in the audit trail).
  const ordinary = entries.filter(([code, e]) => !e.alert && !code.startsWith('UPSTREAM_') && code !== 'FORWARDED').map(([code]) => code);
  for (const s of [...reasonSelectors('replguard_requests_total'), ...reasonSelectors('replguard_tls_refusals_total')]) {
    if (s.matchers.length === 0) continue;
    const hit = ordinary.filter((code) => s.matchers.every((m) => matcherAccepts(m, code)));
    t.same(hit, [], `${s.alert}: pages on no ordinary refusal`);
  }
});

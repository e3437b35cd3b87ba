// docs/audit.md's "Wiring alerts in a SIEM" table says, for every alert-level code of both roles
// (src/pipeline/reasons.ts: requests, connections, events such as reloads and bans, the signer's
// attempts), whether to page on it; every code it names
// exists. And its "Alerting rules and the dashboard" table lists the rules file's alerts with
// their severity and `for:`, as deploy/prometheus/replguard-rules.yaml has them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { REASONS } from '../../src/pipeline/reasons.ts';
import { ROOT } from '../helpers/guard.ts';
import { tableUnder } from '../helpers/markdown.ts';

const markdown = readFileSync(join(ROOT, 'docs', 'audit.md'), 'utf8');
const all = REASONS as Record<string, { alert: boolean }>;
const codes = Object.keys(all);

/** `X_*` in a cell is a pattern over codes, `X` one code. */
function patterns(cell: string): RegExp[] {
  return [...cell.matchAll(/`([A-Z][A-Z0-9_]*\*?)`/g)].map((m) => new RegExp(`^${m[1]!.replace('*', '.*')}$`));
}

t.test('every alert-level code has a row saying whether to page on it', async (t) => {
  const rows = tableUnder(markdown, 'Wiring alerts in a SIEM');
  t.ok(rows.length >= 8, `${rows.length} rows`);
  for (const row of rows) {
    t.match(row.Page, /^(at once|ticket|no|on a threshold)/, `page: ${row.Page}`);
    for (const p of patterns(row.Codes!)) t.ok(codes.some((c) => p.test(c)), `${p.source} names an existing code`);
  }
  const alerting = codes.filter((c) => all[c]!.alert);
  t.ok(alerting.length >= 40, `${alerting.length} alert-level codes`);
  for (const code of alerting) {
    t.ok(rows.some((r) => patterns(r.Codes!).some((p) => p.test(code))), `${code} has a row`);
  }
  // A row names only alert-level codes: the ordinary refusals are described as rates, below it.
  for (const row of rows) {
    for (const p of patterns(row.Codes!)) {
      const ordinary = codes.filter((c) => p.test(c) && !all[c]!.alert);
      t.same(ordinary, [], `${p.source} names no code that is not an alert`);
    }
  }
});

t.test('the alert table lists the rules file, with the same severity and for:', async (t) => {
  const rules = YAML.parse(readFileSync(join(ROOT, 'deploy', 'prometheus', 'replguard-rules.yaml'), 'utf8')) as {
    groups: Array<{ rules: Array<{ alert: string; for: string; labels: { severity: string } }> }>;
  };
  const alerts = rules.groups.flatMap((g) => g.rules);
  const rows = tableUnder(markdown, 'Alerting rules and the dashboard');
  t.same(rows.map((r) => r.Alert!.replace(/`/g, '')).sort(), alerts.map((a) => a.alert).sort(), 'the same alerts');
  for (const a of alerts) {
    const row = rows.find((r) => r.Alert === `\`${a.alert}\``);
    if (!row) continue;
    t.equal(row.Severity, a.labels.severity, `${a.alert} severity`);
    t.equal(row['`for`'], a.for, `${a.alert} for`);
  }
});
